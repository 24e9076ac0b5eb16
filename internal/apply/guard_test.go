package apply

import (
	"slices"
	"strings"
	"testing"

	accesstypes "github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

func settings() Settings {
	return Settings{
		Enabled: true, SandboxAccounts: []string{sandbox}, Diagnoses: config.DefaultApplyDiagnoses,
		Account: sandbox, RemediatorRoleARN: remARN,
	}
}

const (
	ssoARN = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_0123456789abcdef"
	slrARN = "arn:aws:iam::111122223333:role/aws-service-role/replication.s3.amazonaws.com/AWSServiceRoleForS3Replication"
)

func TestDecide(t *testing.T) {
	key := keyARNIn(sandbox)
	otherKey := keyARNIn(other)
	delegating := worldFor(key, keyPolicy(sandbox, true), roleARN)
	closed := worldFor(key, keyPolicy(sandbox, false), roleARN)

	identity := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow}, delegating)
	keyMissing := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow}, closed)
	bucketKey := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, bucketKey: true}, closed)

	disabledWorld := worldFor(key, keyPolicy(sandbox, true), roleARN)
	disabledWorld.Keys[key].State = world.StateDisabled
	disabled := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow}, disabledWorld)

	// Cross account: key in `other`, caller in the sandbox; the key policy admits neither.
	crossWorld := worldFor(otherKey, keyPolicy(other, false), roleARN)
	crossWorld.SandboxAccounts = []string{sandbox, other}
	cross := report(denialOpts{msg: cloudtrail.MsgAmbiguous, key: otherKey}, crossWorld)

	sso := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, kind: cloudtrail.KindSSORole, principal: ssoARN}, worldFor(key, keyPolicy(sandbox, true), ssoARN))
	slr := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, kind: cloudtrail.KindServiceLinkedRole, principal: slrARN}, worldFor(key, keyPolicy(sandbox, true), slrARN))
	userARN := "arn:aws:iam::111122223333:user/uploader"
	user := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, kind: cloudtrail.KindUser, principal: userARN}, worldFor(key, keyPolicy(sandbox, true), userARN))

	mod := func(r finding.Report, f func(*finding.Report)) finding.Report {
		f(&r)
		return r
	}
	with := func(f func(*Settings)) Settings {
		s := settings()
		f(&s)
		return s
	}
	cases := []struct {
		name    string
		s       Settings
		r       finding.Report
		w       *world.World
		levers  []string // expected candidates, best first
		refusal string   // substring of the refusal
	}{
		{"identity policy missing: inline policy first, then the key's levers", settings(), identity, delegating,
			[]string{finding.KindIdentityPolicy, finding.KindKeyPolicyStatement, finding.KindGrant}, ""},
		{"key policy missing: statement, then grant", settings(), keyMissing, closed,
			[]string{finding.KindKeyPolicyStatement, finding.KindGrant}, ""},
		{"bucket key: grant limited to the bucket context", settings(), bucketKey, closed,
			[]string{finding.KindKeyPolicyStatement, finding.KindGrant}, ""},
		{"IAM user", settings(), user, user2World(key, userARN), []string{finding.KindIdentityPolicy, finding.KindKeyPolicyStatement, finding.KindGrant}, ""},
		{"apply mode off", with(func(s *Settings) { s.Enabled = false }), identity, delegating, nil, "automatic fixes are off"},
		{"ignored event", settings(), finding.Report{EventID: "x", Ignored: "not a KMS denial"}, delegating, nil, "ignored"},
		{"not policy fixable", settings(), disabled, disabledWorld, nil, "diagnosis key-disabled is not an implicit deny"},
		{"diagnosis not allowed", with(func(s *Settings) { s.Diagnoses = []finding.Code{finding.KeyPolicyMissing} }), identity, delegating, nil, "not in KMSFIX_APPLY_DIAGNOSES"},
		{"account unknown", with(func(s *Settings) { s.Account = "" }), identity, delegating, nil, "own account is unknown"},
		{"not a sandbox", with(func(s *Settings) { s.SandboxAccounts = []string{other} }), identity, delegating, nil, "is not a sandbox account"},
		{"no patch", settings(), mod(identity, func(r *finding.Report) { r.Patches = nil }), delegating, nil, "has no patch"},
		{"unverified", settings(), mod(identity, func(r *finding.Report) { r.Verified, r.Unverified = false, "could not read the key policy" }), delegating, nil, "did not verify the patch: could not read"},
		{"root", settings(), mod(identity, func(r *finding.Report) {
			r.PrincipalType, r.Principal = string(cloudtrail.KindRoot), "arn:aws:iam::111122223333:root"
		}), delegating, nil, "root user is never granted"},
		{"no principal", settings(), mod(identity, func(r *finding.Report) { r.Principal = "" }), delegating, nil, "names no IAM principal"},
		{"not an IAM role or user", settings(), mod(identity, func(r *finding.Report) {
			r.Principal = "arn:aws:sts::111122223333:federated-user/bob"
		}), delegating, nil, "is not an IAM role or user"},
		{"two changes in this account", settings(), mod(identity, func(r *finding.Report) {
			r.Patches = append(slices.Clone(r.Patches), keyMissing.Patches...)
		}), delegating, nil, "more than one change"},
		{"unknown patch kind", settings(), mod(identity, func(r *finding.Report) {
			r.Patches = []finding.Patch{{Kind: "scp", Account: sandbox}}
		}), delegating, nil, "patch kind scp is not applied"},
		{"no encryption context: no grant", settings(), mod(keyMissing, func(r *finding.Report) { r.Bucket, r.Object = "", "" }), closed,
			[]string{finding.KindKeyPolicyStatement}, ""},
		// A principal IAM cannot edit is never changed automatically, whatever the lever
		// (issue 14 item 6, docs/contract.md).
		{"SSO role: refused, no key-policy or grant lever either", settings(), sso, worldFor(key, keyPolicy(sandbox, true), ssoARN),
			nil, "IAM Identity Center role"},
		{"service-linked role: refused, no key-policy or grant lever either", settings(), slr, worldFor(key, keyPolicy(sandbox, true), slrARN),
			nil, "service-linked role"},
		{"SSO role with a key-policy patch: refused", settings(), mod(sso, func(r *finding.Report) { r.Patches = keyMissing.Patches }), worldFor(key, keyPolicy(sandbox, true), ssoARN),
			nil, "whatever the patch kind"},
		{"cross account from the caller's sandbox: only the identity side", settings(), cross, crossWorld, []string{finding.KindIdentityPolicy}, ""},
		{"cross account, key owner's sandbox: the statement", with(func(s *Settings) {
			s.Account, s.SandboxAccounts, s.RemediatorRoleARN = other, []string{other}, ""
		}), cross, crossWorld, []string{finding.KindKeyPolicyStatement}, ""},
		{"cross account, neither side here", with(func(s *Settings) { s.Account, s.SandboxAccounts = "999988887777", []string{"999988887777"} }), cross, crossWorld, nil, "no part of the fix is in this account"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			dec := Decide(c.s, &r, denialOf(&r), c.w)
			got, why := dec.Candidates, dec.Refusal
			var levers []string
			for _, g := range got {
				levers = append(levers, g.Lever)
			}
			if c.refusal != "" {
				if !strings.Contains(why, c.refusal) || len(got) > 0 {
					t.Fatalf("Decide = %v, %q; want refusal containing %q", levers, why, c.refusal)
				}
				return
			}
			if why != "" || !slices.Equal(levers, c.levers) {
				t.Logf("skipped: %q", dec.Skipped)
				t.Fatalf("Decide = %v, %q; want %v", levers, why, c.levers)
			}
		})
	}
}

func user2World(key, user string) *world.World { return worldFor(key, keyPolicy(sandbox, true), user) }

func TestDecideGrantIsLimitedToTheRequestContext(t *testing.T) {
	key := keyARNIn(sandbox)
	w := worldFor(key, keyPolicy(sandbox, false), roleARN)
	for _, bk := range []bool{false, true} {
		r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, bucketKey: bk}, w)
		dec := Decide(settings(), &r, denialOf(&r), w)
		got, why := dec.Candidates, dec.Refusal
		if why != "" || len(got) != 2 {
			t.Fatalf("bucketKey=%v: Decide = %+v, %q", bk, got, why)
		}
		g := got[1].Patch.Grant
		want := "arn:aws:s3:::" + bucket
		if !bk {
			want += "/" + objectKey
		}
		if g.Context["aws:s3:arn"] != want || g.Retiring != remARN || !slices.Equal(g.Operations, []string{"Decrypt"}) {
			t.Fatalf("bucketKey=%v: grant = %+v; want context %s, retiring %s, Decrypt only", bk, g, want, remARN)
		}
	}
}

func TestIdentityEditable(t *testing.T) {
	cases := []struct {
		kind, arn, blocked string
		want               bool
	}{
		{"role", roleARN, "", true},
		{"user", "arn:aws:iam::111122223333:user/u", "", true},
		{"sso-role", ssoARN, "", false},
		{"role", ssoARN, "", false}, // the ARN alone gives it away
		{"service-linked-role", slrARN, "", false},
		{"role", slrARN, "", false},
		{"root", "arn:aws:iam::111122223333:root", "", false},
		{"federated-user", "arn:aws:iam::111122223333:user/u", "", false},
		{"role", roleARN, "IAM cannot edit x: path unknown", false},
	}
	for _, c := range cases {
		r := &finding.Report{PrincipalType: c.kind, Principal: c.arn, AutoApplyBlocked: c.blocked}
		if got, why := IdentityEditable(r); got != c.want || (!got && why == "") {
			t.Errorf("IdentityEditable(%s %s) = %v %q, want %v", c.kind, c.arn, got, why, c.want)
		}
	}
}

func TestCheckValidation(t *testing.T) {
	pass := accesstypes.CheckAccessNotGrantedResultPass
	fail := accesstypes.CheckAccessNotGrantedResultFail
	cases := []struct {
		name    string
		v       Validation
		need    bool
		refusal string
	}{
		{"clean", Validation{NotGranted: pass, Size: 100, Limit: 200}, true, ""},
		{"warnings and suggestions pass", Validation{Findings: []accesstypes.ValidatePolicyFindingType{"WARNING", "SUGGESTION"}, NotGranted: pass}, true, ""},
		{"error", Validation{Findings: []accesstypes.ValidatePolicyFindingType{"SUGGESTION", "ERROR"}, Messages: []string{"a", "MISSING_VERSION x"}, NotGranted: pass}, true, "reports ERROR: MISSING_VERSION"},
		{"security warning", Validation{Findings: []accesstypes.ValidatePolicyFindingType{"SECURITY_WARNING"}, NotGranted: pass}, true, "SECURITY_WARNING"},
		{"admin action granted", Validation{NotGranted: fail, NotGrantedWhy: "grants kms:PutKeyPolicy"}, true, "CheckAccessNotGranted for kms:PutKeyPolicy, kms:CreateGrant, kms:ScheduleKeyDeletion, kms:DisableKey: FAIL (grants kms:PutKeyPolicy)"},
		{"no check result", Validation{}, true, "no result"},
		{"no check needed", Validation{}, false, ""},
		{"at the quota", Validation{NotGranted: pass, Size: MaxKeyPolicyBytes, Limit: MaxKeyPolicyBytes}, true, ""},
		{"over the quota", Validation{NotGranted: pass, Size: MaxKeyPolicyBytes + 1, Limit: MaxKeyPolicyBytes, What: "key policy (bytes)"}, true, "key policy (bytes) would be 32769, over the quota of 32768"},
	}
	for _, c := range cases {
		got := CheckValidation(c.v, c.need)
		if (c.refusal == "") != (got == "") || !strings.Contains(got, c.refusal) {
			t.Errorf("%s: CheckValidation = %q, want %q", c.name, got, c.refusal)
		}
	}
}

func TestCheckGrantOperations(t *testing.T) {
	cases := []struct {
		ops []string
		ok  bool
	}{
		{[]string{"Decrypt"}, true},
		{[]string{"Decrypt", "GenerateDataKey"}, true},
		{nil, false},
		{[]string{"Decrypt", "CreateGrant"}, false},
		{[]string{"RetireGrant"}, false},
		{[]string{"ReEncryptFrom"}, false},
		{[]string{"Encrypt"}, false},
	}
	for _, c := range cases {
		if got := CheckGrantOperations(c.ops) == ""; got != c.ok {
			t.Errorf("CheckGrantOperations(%v) ok = %v, want %v", c.ops, got, c.ok)
		}
	}
}

// The fixture's denial is the request the hand-written report describes.
func TestDenialOfRebuildsTheRequest(t *testing.T) {
	r := &finding.Report{Principal: roleARN, PrincipalAccount: sandbox, PrincipalType: "role", Key: keyARNIn(sandbox),
		KeyAccount: sandbox, Region: region, Bucket: bucket, Object: objectKey, Actions: []string{"kms:Decrypt"}}
	d := denialOf(r)
	if d.ContextARN != "arn:aws:s3:::data-bucket/reports/2026/q3.csv" || d.KeyRegion != region || !d.Identity.Editable || d.BucketKey {
		t.Fatalf("DenialOf = %+v", d)
	}
	r.Object = ""
	if d := denialOf(r); d.ContextARN != "arn:aws:s3:::data-bucket" || !d.BucketKey {
		t.Fatalf("bucket key: DenialOf = %+v", d)
	}
}

// The reasons other levers were left out travel with the decision, so a later refusal of
// the remaining lever can say everything.
func TestDecideSkippedReasons(t *testing.T) {
	key := keyARNIn(sandbox)
	userARN := "arn:aws:iam::111122223333:user/uploader"
	w := worldFor(key, keyPolicy(sandbox, true), userARN)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, kind: cloudtrail.KindUser, principal: userARN}, w)
	s := settings()
	s.RemediatorRoleARN = ""
	dec := Decide(s, &r, denialOf(&r), w)
	all := strings.Join(dec.Skipped, "; ")
	for _, want := range []string{"retiring principal"} {
		if !strings.Contains(all, want) {
			t.Errorf("skipped %q lacks %q", all, want)
		}
	}
}

// S3 Bucket Keys made the context the bucket ARN while the role's allow names object ARNs:
// condition-mismatch, fixed by a new statement like any implicit deny.
func TestDecideConditionMismatch(t *testing.T) {
	key := keyARNIn(sandbox)
	w := worldFor(key, keyPolicy(sandbox, true), roleARN)
	doc, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"` + key +
		`","Condition":{"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::` + bucket + `/*"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	w.Principals[roleARN].Policies = []world.NamedPolicy{{Name: "app", Document: doc}}
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, bucketKey: true}, w)
	if r.Diagnosis != finding.ConditionMismatch {
		t.Fatalf("diagnosis = %s (%s)", r.Diagnosis, r.Detail)
	}
	dec := Decide(settings(), &r, denialOf(&r), w)
	if dec.Refusal != "" || len(dec.Candidates) == 0 || dec.Candidates[0].Lever != finding.KindIdentityPolicy {
		t.Fatalf("Decide = %+v", dec)
	}
	s := settings()
	s.Diagnoses = []finding.Code{finding.IdentityPolicyMissing}
	if dec := Decide(s, &r, denialOf(&r), w); !strings.Contains(dec.Refusal, "condition-mismatch is not in KMSFIX_APPLY_DIAGNOSES") {
		t.Fatalf("refusal = %q", dec.Refusal)
	}
}

// The opt-in tag (issue 15 item 8): the guard keeps only levers whose target carries
// kmsfix:auto-fix=enabled, the only roles, users and keys apply mode's IAM policy may change;
// an untagged target is refused before any call rather than failing with AccessDenied.
func TestDecideNeedsTheOptInTag(t *testing.T) {
	key := keyARNIn(sandbox)
	tests := []struct {
		name       string
		change     func(*world.World)
		wantLevers []string
		wantWhy    string
	}{
		{"both tagged", func(*world.World) {}, []string{finding.KindIdentityPolicy, finding.KindKeyPolicyStatement, finding.KindGrant}, ""},
		{"principal untagged: only the key's levers", func(w *world.World) { w.Principals[roleARN].Tags = map[string]string{} },
			[]string{finding.KindKeyPolicyStatement, finding.KindGrant}, "is not tagged kmsfix:auto-fix=enabled"},
		{"key tags unread: only the identity policy", func(w *world.World) { w.Keys[key].Tags = nil },
			[]string{finding.KindIdentityPolicy}, "the tags of " + key + " could not be read"},
		{"neither opted in", func(w *world.World) {
			w.Principals[roleARN].Tags = map[string]string{"KMSFIX:AUTO-FIX": "Enabled"}
			w.Keys[key].Tags = map[string]string{}
		}, nil, "is not tagged"},
		{"key matched case-insensitively", func(w *world.World) {
			w.Principals[roleARN].Tags = map[string]string{"KMSFIX:Auto-Fix": "enabled"}
		}, []string{finding.KindIdentityPolicy, finding.KindKeyPolicyStatement, finding.KindGrant}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := worldFor(key, keyPolicy(sandbox, true), roleARN)
			r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow}, w)
			tt.change(w)
			dec := Decide(settings(), &r, denialOf(&r), w)
			var levers []string
			for _, c := range dec.Candidates {
				levers = append(levers, c.Lever)
			}
			if !slices.Equal(levers, tt.wantLevers) {
				t.Errorf("levers = %v, want %v (refusal %q, skipped %q)", levers, tt.wantLevers, dec.Refusal, dec.Skipped)
			}
			all := dec.Refusal + " " + strings.Join(dec.Skipped, "; ")
			if !strings.Contains(all, tt.wantWhy) {
				t.Errorf("reasons %q lack %q", all, tt.wantWhy)
			}
		})
	}
}
