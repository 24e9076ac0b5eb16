package diagnose

import (
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

const (
	keyARN   = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	roleARN  = "arn:aws:iam::111122223333:role/app/reader"
	xRoleARN = "arn:aws:iam::999988887777:role/consumer"
)

func doc(t *testing.T, s string) *policy.Document {
	t.Helper()
	d, err := policy.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func denial(principal, account string, msg cloudtrail.MessageKind, ctx string) *cloudtrail.Denial {
	bucket, object, _ := strings.Cut(strings.TrimPrefix(ctx, "arn:aws:s3:::"), "/")
	return &cloudtrail.Denial{
		EventID: "e1", EventName: "Decrypt", Region: "us-east-1", ErrorCode: "AccessDenied",
		Message:  cloudtrail.Message{Kind: msg},
		Identity: cloudtrail.Identity{Kind: cloudtrail.KindRole, PrincipalARN: principal, Account: account, SessionARN: "arn:aws:sts::" + account + ":assumed-role/x/s", Editable: true},
		KeyARN:   keyARN, KeyAccount: "111122223333", KeyRegion: "us-east-1",
		ContextARN: ctx, Bucket: bucket, Object: object, BucketKey: object == "",
		Actions: []string{"kms:Decrypt"},
	}
}

const rootDelegation = `{"Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

func TestDiagnose(t *testing.T) {
	allowIAM := `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"` + keyARN + `"}]}`
	objectOnly := `{"Statement":[{"Sid":"Objects","Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::bkt/*"}}}]}`
	xAccountKey := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt","Resource":"*"}]}`
	denyKey := `{"Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"DenyOutsideVpc","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1"}}}]}`
	boundary := `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`

	tests := []struct {
		name            string
		d               *cloudtrail.Denial
		w               *world.World
		want            finding.Code
		needID, needKey bool
		mention         string
	}{
		{"same account, IAM missing", denial(roleARN, "111122223333", cloudtrail.MsgUnknown, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Manager: "CUSTOMER", State: "Enabled", Policy: doc(t, rootDelegation)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{}}}},
			finding.IdentityPolicyMissing, true, false, ""},
		{"bucket key context, object-only condition", denial(roleARN, "111122223333", cloudtrail.MsgNoIdentityAllow, "arn:aws:s3:::bkt"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, rootDelegation)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{{Name: "read", Document: doc(t, objectOnly)}}}}},
			finding.ConditionMismatch, true, false, "kms:EncryptionContext:aws:s3:arn"},
		{"cross-account, IAM allows: key side only", denial(xRoleARN, "999988887777", cloudtrail.MsgAmbiguous, "arn:aws:s3:::bkt/o"),
			&world.World{Principals: map[string]*world.Principal{xRoleARN: {Policies: []world.NamedPolicy{{Name: "kms", Document: doc(t, allowIAM)}}}}},
			finding.CrossAccountAccessMissing, false, true, ""},
		{"cross-account, key admits account: identity side only", denial(xRoleARN, "999988887777", cloudtrail.MsgNoIdentityAllow, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, xAccountKey)}}, Principals: map[string]*world.Principal{xRoleARN: {Policies: []world.NamedPolicy{}}}},
			finding.CrossAccountAccessMissing, true, false, ""},
		{"cross-account, message only", denial(xRoleARN, "999988887777", cloudtrail.MsgCiphertext, "arn:aws:s3:::bkt/o"), &world.World{},
			finding.CrossAccountAccessMissing, true, true, ""},
		{"AWS managed key cross-account", denial(xRoleARN, "999988887777", cloudtrail.MsgAmbiguous, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Manager: "AWS", Aliases: []string{"alias/aws/s3"}}}},
			finding.AWSManagedKeyCrossAccount, false, false, "customer managed key"},
		{"AWS managed key, same account: its fixed policy already allows via S3", denial(roleARN, "111122223333", cloudtrail.MsgNoReason, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Aliases: []string{"alias/aws/s3"}}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{}}}},
			finding.Undetermined, false, false, "cannot read"},
		{"key policy names the caller with a condition that fails", denial(roleARN, "111122223333", cloudtrail.MsgNoIdentityAllow, "arn:aws:s3:::bkt"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, `{"Statement":[`+strings.TrimSuffix(strings.TrimPrefix(rootDelegation, `{"Statement":[`), `]}`)+`,{"Sid":"Reader","Effect":"Allow","Principal":{"AWS":"`+roleARN+`"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::bkt/*"}}}]}`)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{}}}},
			finding.ConditionMismatch, false, true, "Reader"},
		{"explicit deny in key policy names the Sid", denial(roleARN, "111122223333", cloudtrail.MsgAmbiguous, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, denyKey)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{{Name: "kms", Document: doc(t, allowIAM)}}}}},
			// The Deny applies unless S3's call carries aws:SourceVpce vpce-1, which neither the
			// record nor the world shows, and the message does not say a Deny refused.
			finding.Undetermined, false, false, "aws:SourceVpce"},
		{"explicit deny in key policy named by the message", func() *cloudtrail.Denial {
			d := denial(roleARN, "111122223333", cloudtrail.MsgExplicitDeny, "arn:aws:s3:::bkt/o")
			d.Message.PolicyType = cloudtrail.PolicyResource
			return d
		}(), &world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, denyKey)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{{Name: "kms", Document: doc(t, allowIAM)}}}}},
			finding.ExplicitDenyKeyPolicy, false, false, "DenyOutsideVpc"},
		{"boundary caps IAM", denial(roleARN, "111122223333", cloudtrail.MsgUnknown, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, rootDelegation)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{{Name: "kms", Document: doc(t, allowIAM)}}, PermissionsBoundary: doc(t, boundary)}}},
			finding.BoundaryDoesNotAllow, false, false, ""},
		{"everything readable allows", denial(roleARN, "111122223333", cloudtrail.MsgNoReason, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc(t, rootDelegation)}}, Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{{Name: "kms", Document: doc(t, allowIAM)}}}}},
			finding.Undetermined, false, false, "cannot read"},
		{"key in another Region", func() *cloudtrail.Denial {
			d := denial(roleARN, "111122223333", cloudtrail.MsgAmbiguous, "arn:aws:s3:::bkt/o")
			d.Region = "eu-west-1"
			return d
		}(), &world.World{}, finding.KeyNotFound, false, false, "us-east-1"},
		{"pending deletion from the world", denial(roleARN, "111122223333", cloudtrail.MsgUnknown, "arn:aws:s3:::bkt/o"),
			&world.World{Keys: map[string]*world.Key{keyARN: {State: "PendingDeletion"}}}, finding.KeyPendingDeletion, false, false, "cancel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Diagnose(tt.d, tt.w)
			if f.Code != tt.want {
				t.Fatalf("code = %s, want %s (%s)", f.Code, tt.want, f.Detail)
			}
			if f.NeedIdentity != tt.needID || f.NeedKeyPolicy != tt.needKey {
				t.Errorf("sides = identity %v key %v, want %v %v", f.NeedIdentity, f.NeedKeyPolicy, tt.needID, tt.needKey)
			}
			if tt.mention != "" && !strings.Contains(strings.ToLower(f.Detail+strings.Join(f.Advice, " ")), strings.ToLower(tt.mention)) {
				t.Errorf("detail %q does not mention %q", f.Detail, tt.mention)
			}
		})
	}
}

// Issue 14: an allow conditioned on a key the request context did not carry was read as
// "does not match", giving condition-mismatch and a verified redundant patch. A key whose
// value is unknown makes the decision undetermined, naming the key; a key the event or the
// world determines is evaluated.
func TestUnknownConditionKeyIsNotAMismatch(t *testing.T) {
	withCondition := func(op, key, value string) *world.World {
		p := `{"Statement":[{"Sid":"Team","Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"` + op + `":{"` + key + `":"` + value + `"}}}]}`
		return &world.World{
			Keys:       map[string]*world.Key{keyARN: {Manager: "CUSTOMER", State: "Enabled", Policy: doc(t, rootDelegation)}},
			Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{{Name: "team", Document: doc(t, p)}}}},
		}
	}
	tests := []struct {
		name    string
		w       *world.World
		d       func(*cloudtrail.Denial)
		want    finding.Code
		unknown string // a key Unknown must name, or ""
	}{
		{"principal tag not read", withCondition("StringEquals", "aws:PrincipalTag/team", "payments"), nil,
			finding.Undetermined, "aws:PrincipalTag/team"},
		{"principal tag read and matching", func() *world.World {
			w := withCondition("StringEquals", "aws:PrincipalTag/team", "payments")
			w.Principals[roleARN].Tags = map[string]string{"team": "payments"}
			return w
		}(), nil, finding.Undetermined, ""}, // allowed: the refusal comes from a layer it cannot read
		{"principal tag read and different", func() *world.World {
			w := withCondition("StringEquals", "aws:PrincipalTag/team", "payments")
			w.Principals[roleARN].Tags = map[string]string{"team": "ledger"}
			return w
		}(), nil, finding.IdentityPolicyMissing, ""}, // a condition on who the caller is: not a mismatch of the request
		{"encryption context keys from the record", withCondition("ForAllValues:StringEquals", "kms:EncryptionContextKeys", "aws:s3:arn"),
			nil, finding.Undetermined, ""}, // allowed by the known policies
		{"encryption context keys with no logged context", withCondition("ForAnyValue:StringEquals", "kms:EncryptionContextKeys", "aws:s3:arn"),
			func(d *cloudtrail.Denial) { d.ContextARN, d.Bucket, d.Object = "", "", "" }, finding.Undetermined, "kms:EncryptionContextKeys"},
		{"organization id not read", withCondition("StringEquals", "aws:PrincipalOrgID", "o-a1b2c3d4e5"), nil,
			finding.Undetermined, "aws:PrincipalOrgID"},
		{"source IP of S3's call is not in the record", withCondition("IpAddress", "aws:SourceIp", "192.0.2.0/24"), nil,
			finding.Undetermined, "aws:SourceIp"},
		{"a key the catalogue does not model", withCondition("StringEquals", "aws:SomeFutureKey", "x"), nil,
			finding.Undetermined, "aws:SomeFutureKey"},
		{"another service's key is absent from a KMS request", withCondition("StringEquals", "s3:prefix", "x"), nil,
			finding.ConditionMismatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := denial(roleARN, "111122223333", cloudtrail.MsgNoIdentityAllow, "arn:aws:s3:::bkt/o")
			if tt.d != nil {
				tt.d(d)
			}
			f := Diagnose(d, tt.w)
			if f.Code != tt.want {
				t.Fatalf("code = %s, want %s (%s)", f.Code, tt.want, f.Detail)
			}
			if f.KnownEnough && f.Code == finding.Undetermined {
				t.Errorf("an undetermined finding claims KnownEnough")
			}
			if tt.unknown != "" {
				if !strings.Contains(f.Detail, tt.unknown) || !strings.Contains(strings.Join(f.Unknown, "; "), tt.unknown) {
					t.Errorf("the finding does not name %s: detail %q, unknown %q", tt.unknown, f.Detail, f.Unknown)
				}
			} else if len(f.Unknown) > 0 {
				t.Errorf("unknown = %q, want none", f.Unknown)
			}
		})
	}
}

// TestDenyAdvice: a Deny's advice comes from the statement itself, and a ViaAWSService or
// ViaService exception is suggested only where the Deny is keyed on the network or on a
// kms:ViaService list that lacks S3 (issue 14 item 7).
func TestDenyAdvice(t *testing.T) {
	deny := func(cond string) string {
		c := ""
		if cond != "" {
			c = `,"Condition":` + cond
		}
		return `{"Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},` +
			`{"Sid":"D","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"` + c + `}]}`
	}
	tests := []struct {
		name, cond   string
		want, absent string
	}{
		{"network only", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, `"aws:ViaAWSService": "false"`, ""},
		{"network, already exempted", `{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"},"StringNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/x"}}`, "Ask", "aws:ViaAWSService"},
		{"ViaService list without S3", `{"StringNotEquals":{"kms:ViaService":["sqs.us-east-1.amazonaws.com"]}}`, `add "s3.us-east-1.amazonaws.com" to the kms:ViaService list`, "aws:ViaAWSService"},
		{"principal tag", `{"StringNotEquals":{"aws:PrincipalTag/team":"finance"}}`, "Ask", "aws:ViaAWSService"},
		{"no condition", "", "should use this key at all", "aws:ViaAWSService"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &world.World{Keys: map[string]*world.Key{keyARN: {Manager: "CUSTOMER", State: "Enabled", Policy: doc(t, deny(tt.cond))}},
				Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{}}}}
			// The message names the layer, as KMS does for an explicit deny in a key policy.
			d := denial(roleARN, "111122223333", cloudtrail.MsgExplicitDeny, "arn:aws:s3:::bkt/o")
			d.Message.PolicyType = cloudtrail.PolicyResource
			f := Diagnose(d, w)
			if f.Code != finding.ExplicitDenyKeyPolicy {
				t.Fatalf("code %s: %s", f.Code, f.Detail)
			}
			all := f.Detail + " " + strings.Join(f.Advice, " ")
			if !strings.Contains(all, tt.want) || (tt.absent != "" && strings.Contains(strings.Join(f.Advice, " "), tt.absent)) {
				t.Errorf("want %q and not %q in advice:\n%s", tt.want, tt.absent, all)
			}
		})
	}
}

// TestNearMissGrant: a grant for the principal that does not allow this request is named with
// what differs.
func TestNearMissGrant(t *testing.T) {
	d := denial(roleARN, "111122223333", cloudtrail.MsgNoIdentityAllow, "arn:aws:s3:::bkt/o")
	d.EncryptionContext = map[string]string{"aws:s3:arn": "arn:aws:s3:::bkt/o"}
	for _, tt := range []struct {
		name  string
		grant world.Grant
		want  string
	}{
		{"operations", world.Grant{Name: "g1", Grantee: roleARN, Operations: []string{"Encrypt"}}, `grant "g1" names role app/reader but allows Encrypt, not Decrypt`},
		{"context", world.Grant{Name: "g2", Grantee: roleARN, Operations: []string{"Decrypt"},
			Constraints: &world.GrantConstraints{EncryptionContextSubset: map[string]string{"aws:s3:arn": "arn:aws:s3:::other/o"}}}, `grant "g2" names role app/reader but requires the encryption context to include`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &world.World{Keys: map[string]*world.Key{keyARN: {Manager: "CUSTOMER", State: "Enabled", Policy: doc(t, rootDelegation), Grants: []world.Grant{tt.grant}, GrantsKnown: true}},
				Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{}}}}
			f := Diagnose(d, w)
			if !strings.Contains(f.Detail, tt.want) {
				t.Errorf("detail lacks %q:\n%s", tt.want, f.Detail)
			}
		})
	}
}
