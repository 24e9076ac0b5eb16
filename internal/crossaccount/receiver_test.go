package crossaccount_test

import (
	"context"
	"encoding/json"
	"github.com/kmsfix/kmsfix/internal/retry"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/decision"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/world"
)

// The sample event 21: role ingest-lambda-role of 482910375610 refused GenerateDataKey on a
// key of 609284715320 (Bucket Key context), seen only in the caller's account.
const (
	callerAcct = "482910375610"
	ownerAcct  = "609284715320"
	otherAcct  = "999988887777"
	sampleKey  = "arn:aws:kms:eu-west-2:609284715320:key/d15f7a3c-0e92-4b6d-8c41-5b7e2a9f0d13"
	principal  = "arn:aws:iam::482910375610:role/ingest-lambda-role"
	bucketARN  = "arn:aws:s3:::amzn-s3-demo-partner-landing"
	region     = "eu-west-2"
)

var creds = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")

func defaultKeyPolicy(account string) string {
	return `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` +
		account + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

// callerReport is the caller's finding for the sample event, as its remediator makes it
// (it cannot read the other account's key).
func callerReport(t *testing.T, keyARN string) finding.Report {
	t.Helper()
	raw, err := os.ReadFile("../../events/21-cross-account-message-only/event.json")
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.ReplaceAll(string(raw), sampleKey, keyARN))
	item, err := cloudtrail.Parse(raw)
	if err != nil || item.Denial == nil {
		t.Fatalf("parse sample: %v %q", err, item.Ignored)
	}
	r := engine.Explain(item, &world.World{})
	if r.Diagnosis != finding.CrossAccountAccessMissing {
		t.Fatalf("sample diagnosis %s", r.Diagnosis)
	}
	return r
}

// detailOf is the request's detail as generic JSON, for tests to tamper with.
func detailOf(t *testing.T, r finding.Report) map[string]any {
	t.Helper()
	p, ok := crossaccount.KeyPolicyPatch(r)
	if !ok {
		t.Fatal("no key-policy patch")
	}
	b, err := json.Marshal(crossaccount.NewRequest(r, p, time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// envelope wraps a detail as EventBridge delivers it: account is the sender's account.
func envelope(t *testing.T, account string, detail any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": crossaccount.DetailType,
		"source": crossaccount.Source, "account": account, "time": "2026-11-29T06:00:00Z", "region": region,
		"resources": []string{sampleKey}, "detail": detail,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// optedIn is the opt-in tag apply mode's IAM policy requires on a key it changes.
var optedIn = map[string]string{config.AutoFixTagKey: config.AutoFixTagValue}

// keyWorld is an Enricher that knows one key of the owner's account (a fresh copy per call).
type keyWorld struct {
	key    string
	policy string // "" → unknown
	absent bool
	aws    bool
	tags   map[string]string // nil → unknown
}

func (k keyWorld) World(context.Context, *cloudtrail.Denial) *world.World {
	if k.absent {
		return &world.World{MissingKeys: []string{k.key}}
	}
	key := &world.Key{Manager: world.ManagerCustomer, State: world.StateEnabled}
	if k.aws {
		key.Manager = world.ManagerAWS
	}
	if k.policy != "" {
		doc, err := policy.Parse([]byte(k.policy))
		if err != nil {
			panic(err)
		}
		key.Policy = doc
	}
	key.Tags = k.tags
	return &world.World{Keys: map[string]*world.Key{k.key: key}}
}

func receiver(t *testing.T, enr crossaccount.Enricher, sandbox ...string) *crossaccount.Receiver {
	f := awsfake.NewSTS(t, ownerAcct)
	return &crossaccount.Receiver{
		Enricher:        enr,
		STS:             sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(f.URL), Credentials: creds}),
		Region:          region,
		TrustedAccounts: []string{callerAcct},
		Sandbox:         sandbox,
		Now:             func() time.Time { return sampleTime.Add(time.Minute) },
	}
}

// sampleTime is sample 21's eventTime: requests are judged a minute after their denial.
var sampleTime = time.Date(2025, 11, 4, 9, 12, 40, 0, time.UTC)

func set(path string, v any) func(map[string]any) {
	return func(m map[string]any) {
		parts := strings.Split(path, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			cur = cur[p].(map[string]any)
		}
		if v == nil {
			delete(cur, parts[len(parts)-1])
			return
		}
		cur[parts[len(parts)-1]] = v
	}
}

func TestReceiverRejects(t *testing.T) {
	base := callerReport(t, sampleKey)
	rc := receiver(t, keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)})
	otherKey := strings.Replace(sampleKey, ownerAcct, otherAcct, 1)
	tests := []struct {
		name    string
		account string // envelope account
		tamper  []func(map[string]any)
		report  *finding.Report // a different finding, rebuilt consistently (statement and all)
		want    string
	}{
		{name: "untrusted sender", account: otherAcct, want: "sending account 999988887777 is not trusted"},
		{name: "forged: detail claims a trusted account, envelope is not", account: otherAcct,
			tamper: []func(map[string]any){set("sender_account", callerAcct)}, want: "sending account 999988887777 is not trusted"},
		{name: "forged: trusted envelope, finding's principal in another account", account: callerAcct,
			tamper: []func(map[string]any){set("finding.principal_account", otherAcct)}, want: `principal_account "999988887777" is not the sending account 482910375610`},
		{name: "forged: detail's sender differs from envelope", account: callerAcct,
			tamper: []func(map[string]any){set("sender_account", otherAcct)}, want: "the detail claims sender account 999988887777 but EventBridge delivered it from account 482910375610"},
		{name: "from this account itself", account: ownerAcct, want: "comes from this account (609284715320) itself"},
		{name: "no envelope account", account: "", want: "names no sending account"},
		{name: "wrong-account key", account: callerAcct, report: withKey(callerReport(t, otherKey)),
			want: "key " + otherKey + ` (key_account "999988887777") is not in this account (609284715320)`},
		{name: "key in another Region", account: callerAcct, report: withKeyARN(base, strings.Replace(sampleKey, "eu-west-2", "us-east-1", 1)),
			want: "is in Region us-east-1; this remediator serves eu-west-2"},
		{name: "request's key differs from the finding's", account: callerAcct,
			tamper: []func(map[string]any){set("key", otherKey)}, want: "the request names key " + otherKey},
		{name: "Action kms:*", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Action", []any{"kms:*"})}, want: "Action kms:* has a wildcard"},
		{name: "extra action", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Action", []any{"kms:GenerateDataKey", "kms:Decrypt"})},
			want:   "Action [kms:GenerateDataKey, kms:Decrypt] is not the finding's actions [kms:GenerateDataKey]"},
		{name: "admin action", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Action", []any{"kms:GenerateDataKey", "kms:PutKeyPolicy"})},
			want:   "Action kms:PutKeyPolicy is not one of the data-key actions"},
		{name: "finding asks for another action too", account: callerAcct, report: withActions(base, "kms:GenerateDataKey", "kms:Encrypt"),
			want: `the finding's action "kms:Encrypt" is not one of kms:Decrypt, kms:GenerateDataKey`},
		{name: "Principal account root", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Principal", map[string]any{"AWS": "arn:aws:iam::" + callerAcct + ":root"})},
			want:   "Principal arn:aws:iam::482910375610:root is a whole account, not the finding's principal " + principal},
		{name: "Principal account id", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Principal", map[string]any{"AWS": callerAcct})},
			want:   "Principal 482910375610 is a whole account"},
		{name: `Principal "*"`, account: callerAcct,
			tamper: []func(map[string]any){set("statement.Principal", "*")}, want: `Principal is "*" (everyone)`},
		{name: "Principal another role", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Principal", map[string]any{"AWS": "arn:aws:iam::" + callerAcct + ":role/admin"})},
			want:   "Principal arn:aws:iam::482910375610:role/admin is not the finding's principal"},
		{name: "Principal two roles", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Principal", map[string]any{"AWS": []any{principal, "arn:aws:iam::" + callerAcct + ":role/admin"}})},
			want:   "Principal must be exactly one AWS principal"},
		{name: "finding's principal is a wildcard", account: callerAcct, report: withPrincipal(base, "arn:aws:iam::"+callerAcct+":role/*"),
			want: "has a wildcard"},
		{name: "missing kms:ViaService", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Condition.StringEquals.kms:ViaService", nil)},
			want:   "Condition lacks StringEquals kms:ViaService = [s3.eu-west-2.amazonaws.com]"},
		{name: "ViaService of another service", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Condition.StringEquals.kms:ViaService", "sqs.eu-west-2.amazonaws.com")},
			want:   "Condition StringEquals kms:ViaService is [sqs.eu-west-2.amazonaws.com]; want exactly [s3.eu-west-2.amazonaws.com]"},
		{name: "bucket wildcard", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Condition.StringLike.kms:EncryptionContext:aws:s3:arn", []any{"arn:aws:s3:::*"})},
			want:   "Condition StringLike kms:EncryptionContext:aws:s3:arn is [arn:aws:s3:::*]; want exactly [" + bucketARN + ", " + bucketARN + "/*]"},
		{name: "finding's bucket is a wildcard", account: callerAcct, report: withBucket(base, "amzn-s3-demo-*"),
			want: `the finding's bucket "amzn-s3-demo-*" is not an S3 bucket name`},
		{name: "no bucket", account: callerAcct, report: withBucket(base, ""), want: "a request must be limited to one bucket"},
		{name: "Resource *", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Resource", "*")}, want: "Resource [*] is not exactly the key " + "[" + sampleKey + "]"},
		{name: "NotAction", account: callerAcct,
			tamper: []func(map[string]any){set("statement.NotAction", []any{"kms:PutKeyPolicy"})}, want: "it has a NotAction element"},
		{name: "Effect Deny", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Effect", "Deny")}, want: `Effect is "Deny", not Allow`},
		{name: "extra condition", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Condition.Bool", map[string]any{"aws:SecureTransport": "true"})},
			want:   "Condition has Bool aws:SecureTransport"},
		{name: "Sid of another statement", account: callerAcct,
			tamper: []func(map[string]any){set("statement.Sid", "Enable IAM User Permissions")}, want: `Sid "Enable IAM User Permissions" is not`},
		{name: "no statement", account: callerAcct,
			tamper: []func(map[string]any){set("statement", nil)}, want: "the request carries no statement"},
		{name: "another diagnosis", account: callerAcct,
			tamper: []func(map[string]any){set("finding.diagnosis", "key-policy-missing")}, want: `diagnosis "key-policy-missing"`},
		{name: "version 0", account: callerAcct,
			tamper: []func(map[string]any){set("version", 0)}, want: "schema version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			if tt.report != nil {
				r = *tt.report
			}
			m := detailOf(t, r)
			for _, f := range tt.tamper {
				f(m)
			}
			_, _, _, _, err := rc.Receive(context.Background(), envelope(t, tt.account, m))
			if !retry.IsPermanent(err) {
				t.Fatalf("want a rejection, got %v", err)
			}
			if reason := retry.Reason(err); !strings.Contains(reason, tt.want) {
				t.Errorf("reason %q\nwant it to contain %q", reason, tt.want)
			}
		})
	}
}

// The key's own state refuses some requests that pass every field check.
func TestReceiverKeyChecks(t *testing.T) {
	base := callerReport(t, sampleKey)
	tests := []struct {
		name string
		enr  keyWorld
		want string
	}{
		{"key does not exist", keyWorld{key: sampleKey, absent: true}, "does not exist in account 609284715320"},
		{"AWS managed key", keyWorld{key: sampleKey, aws: true}, "is an AWS managed key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, _, err := receiver(t, tt.enr).Receive(context.Background(), envelope(t, callerAcct, detailOf(t, base)))
			if !retry.IsPermanent(err) || !strings.Contains(retry.Reason(err), tt.want) {
				t.Fatalf("got %v, want a rejection containing %q", err, tt.want)
			}
		})
	}
}

func TestReceiverAccepts(t *testing.T) {
	base := callerReport(t, sampleKey)
	want, _ := crossaccount.KeyPolicyPatch(base)
	tests := []struct {
		name         string
		enr          keyWorld
		sandbox      []string
		account      string
		verified     bool
		autoApply    bool
		merged       bool
		ignored      string
		unverifiedIn string
		blockedIn    string
	}{
		{name: "verified, not a sandbox", enr: keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)}, account: callerAcct, verified: true, merged: true},
		{name: "verified, sandbox", enr: keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct), tags: optedIn}, sandbox: []string{ownerAcct}, account: callerAcct, verified: true, autoApply: true, merged: true},
		// The key is the target of the statement: apply mode's IAM policy changes only keys
		// that carry the opt-in tag, so an untagged or unread key is not applied automatically.
		{name: "verified, sandbox, key not opted in", enr: keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct), tags: map[string]string{}}, sandbox: []string{ownerAcct}, account: callerAcct, verified: true, merged: true,
			blockedIn: "is not tagged kmsfix:auto-fix=enabled"},
		{name: "verified, sandbox, key tags unread", enr: keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)}, sandbox: []string{ownerAcct}, account: callerAcct, verified: true, merged: true,
			blockedIn: "could not be read"},
		{name: "key policy unreadable", enr: keyWorld{key: sampleKey}, sandbox: []string{ownerAcct}, account: callerAcct, unverifiedIn: "could not read the key policy"},
		{name: "a Deny in the key policy", account: callerAcct, sandbox: []string{ownerAcct}, merged: true,
			enr: keyWorld{key: sampleKey, policy: `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::609284715320:root"},"Action":"kms:*","Resource":"*"},` +
				`{"Sid":"NoPartners","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"609284715320"}}}]}`},
			unverifiedIn: "does not show the request allowed"},
		{name: "already allowed", account: callerAcct,
			enr:     keyWorld{key: sampleKey, policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":"kms:GenerateDataKey","Resource":"*"}]}`},
			ignored: "the key policy already allows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := receiver(t, tt.enr, tt.sandbox...)
			rep, _, w, ev, err := rc.Receive(context.Background(), envelope(t, tt.account, detailOf(t, base)))
			if err != nil {
				t.Fatal(err)
			}
			// The evaluator's decision, as the handler makes it before Access Analyzer's.
			decision.Decide(ev).Set(&rep)
			if tt.ignored != "" {
				if !strings.Contains(rep.Ignored, tt.ignored) {
					t.Fatalf("ignored = %q, want %q", rep.Ignored, tt.ignored)
				}
				return
			}
			if rep.Ignored != "" || w == nil {
				t.Fatalf("ignored %q", rep.Ignored)
			}
			if len(rep.Patches) != 1 || rep.Patches[0].Kind != finding.KindKeyPolicyStatement || rep.Patches[0].Account != ownerAcct {
				t.Fatalf("patches = %+v, want only the key-policy statement for %s", rep.Patches, ownerAcct)
			}
			if why := crossaccount.CheckStatement(rep.Patches[0].Statement, want.Statement); why != "" {
				t.Errorf("the owner's statement is not the caller's: %s", why)
			}
			if rep.Verified != tt.verified || rep.AutoApply != tt.autoApply {
				t.Errorf("verified=%v auto_apply=%v (%q, %q), want %v %v", rep.Verified, rep.AutoApply, rep.Unverified, rep.AutoApplyBlocked, tt.verified, tt.autoApply)
			}
			if !strings.Contains(rep.AutoApplyBlocked, tt.blockedIn) {
				t.Errorf("auto_apply_blocked = %q, want it to mention %q", rep.AutoApplyBlocked, tt.blockedIn)
			}
			if (rep.Patches[0].MergedKeyPolicy != nil) != tt.merged {
				t.Errorf("merged key policy present = %v, want %v", rep.Patches[0].MergedKeyPolicy != nil, tt.merged)
			}
			if tt.merged {
				merged, _ := json.Marshal(rep.Patches[0].MergedKeyPolicy)
				st, _ := json.Marshal(rep.Patches[0].Statement)
				if !strings.Contains(string(merged), string(st)) || !strings.Contains(string(merged), `"Sid":"`) {
					t.Errorf("merged policy lacks the statement:\n%s", merged)
				}
			}
			if !strings.Contains(rep.Unverified, tt.unverifiedIn) {
				t.Errorf("unverified = %q, want %q", rep.Unverified, tt.unverifiedIn)
			}
		})
	}
}

// withKey is the sample's finding for another key, made by the engine as a sender would:
// the statement matches the finding and only the key checks remain.
func withKey(r finding.Report) *finding.Report {
	raw, _ := os.ReadFile("../../events/21-cross-account-message-only/event.json")
	s := strings.ReplaceAll(string(raw), sampleKey, r.Key)
	item, err := cloudtrail.Parse([]byte(s))
	if err != nil || item.Denial == nil {
		panic("rebuild: " + item.Ignored)
	}
	out := engine.Explain(item, &world.World{})
	return &out
}

// withActions, withPrincipal and withBucket change a finding and its patches together
// (a forger who knows the code), so only the field checks can refuse it.
func withActions(r finding.Report, actions ...string) *finding.Report {
	r.Actions = actions
	return rebuild(r)
}

func withPrincipal(r finding.Report, p string) *finding.Report {
	r.Principal = p
	return rebuild(r)
}

func withKeyARN(r finding.Report, key string) *finding.Report {
	r.Key = key
	return rebuild(r)
}

func withBucket(r finding.Report, b string) *finding.Report {
	r.Bucket = b
	return rebuild(r)
}

func rebuild(r finding.Report) *finding.Report {
	d := &cloudtrail.Denial{
		KeyARN: r.Key, KeyAccount: r.KeyAccount, KeyRegion: region, Region: r.Region, Bucket: r.Bucket,
		ContextARN: "arn:aws:s3:::" + r.Bucket, Actions: r.Actions,
		Identity: cloudtrail.Identity{PrincipalARN: r.Principal, Account: r.PrincipalAccount, Kind: cloudtrail.KindRole},
	}
	if r.Bucket != "" {
		r.Patches = patchesFor(d)
		return &r
	}
	// patch.Build writes no patch without a valid bucket; build one for a bucket and drop its
	// bucket condition, as a sender that skipped the limit would.
	d.Bucket, d.ContextARN = "amzn-s3-demo-placeholder", "arn:aws:s3:::amzn-s3-demo-placeholder"
	r.Patches = patchesFor(d)
	for _, p := range r.Patches {
		if p.Statement != nil {
			delete(p.Statement.Condition, "StringLike")
		}
		if p.Policy != nil {
			for _, st := range p.Policy.Statement {
				delete(st.Condition, "StringLike")
			}
		}
	}
	return &r
}

func patchesFor(d *cloudtrail.Denial) []finding.Patch {
	return patch.Build(d, patch.Sides{NeedIdentity: true, NeedKeyPolicy: true}, &world.World{})
}
