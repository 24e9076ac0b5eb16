package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/corpus"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// The why world: account 111122223333 in eu-west-2 (local-kms), keys of account 444455556666
// answered by the KMS shim, roles in the IAM fake. S3 is testenv's wire fake: no S3 that runs
// here returns SSE-KMS metadata (docs/why-check.md).
const (
	whyAcct   = "111122223333"
	whyOther  = "444455556666"
	whyRegion = "eu-west-2"

	keyReports  = "arn:aws:kms:eu-west-2:111122223333:key/11111111-1111-4111-8111-111111111111"
	keyDisabled = "arn:aws:kms:eu-west-2:111122223333:key/22222222-2222-4222-8222-222222222222"
	keyDeleted  = "arn:aws:kms:eu-west-2:111122223333:key/33333333-3333-4333-8333-333333333333"
	keyScoped   = "arn:aws:kms:eu-west-2:111122223333:key/44444444-4444-4444-8444-444444444444"
	keyOpaque   = "arn:aws:kms:eu-west-2:111122223333:key/55555555-5555-4555-8555-555555555555"
	keyPartner  = "arn:aws:kms:eu-west-2:444455556666:key/66666666-6666-4666-8666-666666666666"
	keyManagedB = "arn:aws:kms:eu-west-2:444455556666:key/77777777-7777-4777-8777-777777777777"

	keyGone     = "arn:aws:kms:eu-west-2:111122223333:key/88888888-8888-4888-8888-888888888888"
	keyManagedA = "arn:aws:kms:eu-west-2:111122223333:key/99999999-9999-4999-8999-999999999999"

	roleReader = "arn:aws:iam::111122223333:role/app/reader"
	roleAdmin  = "arn:aws:iam::111122223333:role/data-admin"
)

func mustPolicy(t *testing.T, s string) *policy.Document {
	t.Helper()
	d, err := policy.Parse([]byte(s))
	if err != nil {
		t.Fatalf("policy %s: %v", s, err)
	}
	return d
}

func whyWorld(t *testing.T) *world.World {
	delegate := func(acct string) string {
		return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"EnableIAM","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"kms:*","Resource":"*"}]}`, acct)
	}
	// keyScoped admits the reader only for objects under arn:aws:s3:::scoped-bucket/*: with S3
	// Bucket Keys the context is the bucket ARN, which that pattern does not match.
	scoped := `{"Version":"2012-10-17","Statement":[
	  {"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/data-admin"},"Action":"kms:*","Resource":"*"},
	  {"Sid":"ReaderObjects","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app/reader"},"Action":"kms:Decrypt","Resource":"*",
	   "Condition":{"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::scoped-bucket/*"}}}]}`
	s3Only := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]}`
	kmsAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}]}`
	return &world.World{
		Keys: map[string]*world.Key{
			keyReports:  {Manager: "CUSTOMER", State: "Enabled", Aliases: []string{"alias/reports"}, Policy: mustPolicy(t, delegate(whyAcct))},
			keyDisabled: {Manager: "CUSTOMER", State: "Disabled", Policy: mustPolicy(t, delegate(whyAcct))},
			keyDeleted:  {Manager: "CUSTOMER", State: "PendingDeletion", Policy: mustPolicy(t, delegate(whyAcct))},
			keyScoped:   {Manager: "CUSTOMER", State: "Enabled", Policy: mustPolicy(t, scoped)},
			keyOpaque:   {Manager: "CUSTOMER", State: "Enabled"}, // its policy is not readable
			keyPartner:  {Manager: "CUSTOMER", State: "Enabled"},
			keyManagedB: {Manager: "AWS", State: "Enabled", Aliases: []string{"alias/aws/s3"}},
			keyManagedA: {Manager: "AWS", State: "Enabled", Aliases: []string{"alias/aws/s3"}},
		},
		MissingKeys: []string{keyGone},
		Principals: map[string]*world.Principal{
			roleReader: {Policies: []world.NamedPolicy{{Name: "s3-read", Document: mustPolicy(t, s3Only)}}},
			roleAdmin:  {Policies: []world.NamedPolicy{{Name: "data", Document: mustPolicy(t, kmsAll)}}},
		},
	}
}

type whyFixture struct {
	env *emulator.Services
	s3  *awsfake.S3Fake
	ct  *awsfake.CloudTrail
}

var whyClock = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

// startWhy starts local-kms, the IAM, STS and CloudTrail fakes and the S3 fake with the why
// world, one bucket per case, and points the CLI at them. records are CloudTrail's history.
func startWhy(t *testing.T, records []corpus.Record) *whyFixture {
	t.Helper()
	f := &whyFixture{}
	f.env = emulator.StartServices(t, emulator.ServicesOptions{Account: whyAcct, Region: whyRegion, World: whyWorld(t)})
	f.s3 = awsfake.NewS3Fake(t)
	f.ct = awsfake.NewCloudTrail(t, records)
	f.ct.Now = func() time.Time { return whyClock }
	f.ct.RateLimit = 1000 // why makes one LookupEvents call per step; pacing is scan's concern
	awsTestEnv(t, nil)
	for _, kv := range f.env.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", f.s3.URL)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", f.ct.URL)

	kmsObj := func(key string, bucketKey bool) awsfake.S3Object {
		return awsfake.S3Object{Body: []byte("quarterly"), SSE: "aws:kms", KMSKeyID: key, BucketKey: bucketKey}
	}
	bucket := func(name string, enc *awsfake.S3Encryption, objs map[string]awsfake.S3Object) {
		f.s3.PutBucket(name, awsfake.S3Bucket{Region: whyRegion, Encryption: enc, Objects: objs})
	}
	kmsDefault := func(key string) *awsfake.S3Encryption {
		return &awsfake.S3Encryption{SSE: "aws:kms", KMSKeyID: key}
	}
	bucket("reports", kmsDefault(keyReports), map[string]awsfake.S3Object{"q3.csv": kmsObj(keyReports, false)})
	bucket("plain", &awsfake.S3Encryption{SSE: "AES256"}, map[string]awsfake.S3Object{"a.txt": {Body: []byte("x"), SSE: "AES256"}})
	bucket("locked", kmsDefault(keyReports), map[string]awsfake.S3Object{"secret.csv": kmsObj(keyReports, false)})
	bucket("scoped-bucket", kmsDefault(keyScoped), map[string]awsfake.S3Object{"r.csv": kmsObj(keyScoped, true)})
	bucket("old-key", kmsDefault(keyDisabled), map[string]awsfake.S3Object{"d.csv": kmsObj(keyDisabled, false), "p.csv": kmsObj(keyDeleted, false)})
	bucket("opaque", kmsDefault(keyOpaque), map[string]awsfake.S3Object{"o.csv": kmsObj(keyOpaque, false)})
	bucket("partner-data", kmsDefault(keyPartner), map[string]awsfake.S3Object{"p.csv": kmsObj(keyPartner, false), "m.csv": kmsObj(keyManagedB, false)})
	bucket("inbox", kmsDefault(keyOpaque), nil)
	return f
}

// caller makes STS name this session as the caller.
func (f *whyFixture) caller(arn string) { f.env.STS.SetCaller(arn) }

// refuseKMS makes S3 answer the first-byte GetObject with KMS's refusal, as S3 does.
func (f *whyFixture) refuseKMS(bucket, key, msg string) {
	f.s3.Refuse("GetObject", bucket, key, awsfake.S3Error{Code: "AccessDenied", Message: msg})
}

func runWhyCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(env{stdout: &stdout, stderr: &stderr, now: func() time.Time { return whyClock }, clock: scan.RealClock{}},
		append([]string{"why"}, args...))
	return code, stdout.String(), stderr.String()
}

type whyOut struct {
	Verdict  string   `json:"verdict"`
	Exit     int      `json:"exit_code"`
	Refused  []string `json:"refused"`
	NotSeen  []string `json:"not_seen"`
	Principl string   `json:"principal"`
	Steps    []struct {
		Verdict  string   `json:"verdict"`
		Action   string   `json:"action"`
		Key      string   `json:"key"`
		Evidence []string `json:"evidence"`
		Note     string   `json:"note"`
		Report   *struct {
			Diagnosis string `json:"diagnosis"`
			Verified  bool   `json:"verified"`
			Patches   []struct {
				Kind   string `json:"kind"`
				Target string `json:"target"`
			} `json:"patches"`
			EventID string `json:"event_id"`
		} `json:"report"`
	} `json:"steps"`
}

func whyJSONRun(t *testing.T, args ...string) (int, whyOut) {
	t.Helper()
	code, stdout, stderr := runWhyCmd(t, append(args, "--output", "json")...)
	var out whyOut
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("why %v: exit %d, not JSON: %v\nstdout: %s\nstderr: %s", args, code, err, stdout, stderr)
	}
	if out.Exit != code {
		t.Errorf("JSON exit_code %d, process exit %d", out.Exit, code)
	}
	return code, out
}

const noIdentityAllow = "User: arn:aws:sts::111122223333:assumed-role/reader/alice is not authorized to perform: kms:Decrypt on resource: %s because no identity-based policy allows the kms:Decrypt action"

func TestWhy(t *testing.T) {
	f := startWhy(t, []corpus.Record{kmsDenialRecord(keyOpaque, "arn:aws:s3:::opaque/o.csv", whyClock.Add(-3*time.Minute))})
	alice := "arn:aws:sts::111122223333:assumed-role/reader/alice"

	t.Run("own denial, policies readable: the verified identity fix, golden", func(t *testing.T) {
		f.caller(alice)
		f.refuseKMS("reports", "q3.csv", fmt.Sprintf(noIdentityAllow, keyReports))
		code, stdout, stderr := runWhyCmd(t, "s3://reports/q3.csv")
		if code != exitDiagnosis {
			t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
		}
		cliGolden(t, "why-identity-policy-missing.txt", stdout)
		if len(f.env.AA.Validated()) == 0 {
			t.Error("the fix was not validated by Access Analyzer: why must run the live pipeline")
		}
		_, out := whyJSONRun(t, "s3://reports/q3.csv")
		s := out.Steps[0]
		if out.Principl != roleReader || s.Report == nil || s.Report.Diagnosis != "identity-policy-missing" || !s.Report.Verified ||
			len(s.Report.Patches) != 1 || s.Report.Patches[0].Target != roleReader {
			t.Errorf("got %+v", out)
		}
	})

	t.Run("the fix applied: allowed now, exit 0", func(t *testing.T) {
		f.caller("arn:aws:sts::111122223333:assumed-role/data-admin/ops")
		f.s3.Allow("GetObject", "reports", "q3.csv")
		code, out := whyJSONRun(t, "s3://reports/q3.csv")
		if code != exitAllowed || out.Verdict != "allowed" || len(out.NotSeen) != 0 {
			t.Errorf("exit %d %+v", code, out)
		}
	})

	t.Run("own denial without read rights: undetermined from S3's message, KMS's own message from CloudTrail decides", func(t *testing.T) {
		f.caller(alice)
		f.refuseKMS("opaque", "o.csv", "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")
		code, out := whyJSONRun(t, "s3://opaque/o.csv")
		s := out.Steps[0]
		if code != exitDiagnosis || s.Report == nil || s.Report.Diagnosis != "identity-policy-missing" || s.Report.Verified {
			t.Fatalf("exit %d %+v", code, out)
		}
		if s.Report.EventID != "ct-opaque-1" || len(s.Evidence) != 2 || !strings.Contains(s.Evidence[1], "no identity-based policy allows") {
			t.Errorf("CloudTrail evidence not used: %+v", s)
		}
		if !anyContains(out.Refused, "kms:GetKeyPolicy") {
			t.Errorf("refused reads %v do not name kms:GetKeyPolicy", out.Refused)
		}
	})

	t.Run("without read rights and no CloudTrail record: undetermined, exit 2", func(t *testing.T) {
		// bob's role is not readable either, and CloudTrail holds a record for alice only.
		f.caller("arn:aws:sts::111122223333:assumed-role/temp/bob")
		f.refuseKMS("inbox", "x.csv", "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")
		f.s3.PutObject("inbox", "x.csv", awsfake.S3Object{Body: []byte("x"), SSE: "aws:kms", KMSKeyID: keyOpaque})
		code, stdout, _ := runWhyCmd(t, "s3://inbox/x.csv")
		if code != exitUndecided {
			t.Fatalf("exit %d\n%s", code, stdout)
		}
		cliGolden(t, "why-undetermined.txt", stdout)
		code, out := whyJSONRun(t, "s3://inbox/x.csv")
		if code != exitUndecided || out.Verdict != "undetermined" || !anyContains(out.Refused, "kms:GetKeyPolicy") || !anyContains(out.Refused, "iam:GetRole") {
			t.Errorf("exit %d %+v", code, out)
		}
	})

	t.Run("--as evaluates without reproducing", func(t *testing.T) {
		f.caller("arn:aws:sts::111122223333:assumed-role/data-admin/ops")
		calls := f.s3.Calls("GetObject")
		code, out := whyJSONRun(t, "s3://reports/q3.csv", "--as", roleReader)
		if code != exitDiagnosis || out.Steps[0].Report == nil || out.Steps[0].Report.Diagnosis != "identity-policy-missing" || !out.Steps[0].Report.Verified {
			t.Errorf("exit %d %+v", code, out)
		}
		if f.s3.Calls("GetObject") != calls {
			t.Error("--as read the object: only the caller's own access may be reproduced")
		}
		code, out = whyJSONRun(t, "s3://reports/q3.csv", "--as", roleAdmin)
		if code != exitAllowed || out.Verdict != "allowed" || len(out.NotSeen) == 0 {
			t.Errorf("admin: exit %d %+v (an evaluated allow names the layers not seen)", code, out)
		}
	})

	t.Run("SSE-S3: KMS is not involved", func(t *testing.T) {
		f.caller(alice)
		code, out := whyJSONRun(t, "s3://plain/a.txt")
		if code != exitAllowed || out.Verdict != "kms-not-involved" {
			t.Errorf("exit %d %+v", code, out)
		}
	})

	t.Run("refused HeadObject: S3 access, not KMS", func(t *testing.T) {
		f.caller(alice)
		f.s3.Refuse("HeadObject", "locked", "secret.csv", awsfake.S3Error{Code: "AccessDenied"})
		kmsCalls := f.env.KMS.Calls("DescribeKey")
		code, stdout, _ := runWhyCmd(t, "s3://locked/secret.csv")
		if code != exitDiagnosis {
			t.Errorf("exit %d\n%s", code, stdout)
		}
		cliGolden(t, "why-s3-access.txt", stdout)
		if f.env.KMS.Calls("DescribeKey") != kmsCalls {
			t.Error("why read KMS after S3 refused HeadObject")
		}
	})

	t.Run("S3 Bucket Keys: the condition on the object ARN does not match the bucket ARN", func(t *testing.T) {
		code, out := whyJSONRun(t, "s3://scoped-bucket/r.csv", "--as", roleReader)
		if code != exitDiagnosis || out.Steps[0].Report == nil || out.Steps[0].Report.Diagnosis != "condition-mismatch" {
			t.Errorf("exit %d %+v", code, out)
		}
	})

	t.Run("cross-account key", func(t *testing.T) {
		f.caller(alice)
		f.refuseKMS("partner-data", "p.csv", fmt.Sprintf("User: %s is not authorized to perform: kms:Decrypt on resource: %s because no resource-based policy allows the kms:Decrypt action", alice, keyPartner))
		code, out := whyJSONRun(t, "s3://partner-data/p.csv")
		if code != exitDiagnosis || out.Steps[0].Report == nil || out.Steps[0].Report.Diagnosis != "cross-account-access-missing" {
			t.Errorf("exit %d %+v", code, out)
		}
	})

	t.Run("AWS managed key of another account", func(t *testing.T) {
		code, out := whyJSONRun(t, "s3://partner-data/m.csv", "--as", roleAdmin)
		if code != exitDiagnosis || out.Steps[0].Report == nil || out.Steps[0].Report.Diagnosis != "aws-managed-key-cross-account" {
			t.Errorf("exit %d %+v", code, out)
		}
	})

	t.Run("disabled and deleted keys", func(t *testing.T) {
		for obj, want := range map[string]string{"d.csv": "key-disabled", "p.csv": "key-pending-deletion"} {
			code, out := whyJSONRun(t, "s3://old-key/"+obj, "--as", roleAdmin)
			if code != exitDiagnosis || out.Steps[0].Report == nil || out.Steps[0].Report.Diagnosis != want {
				t.Errorf("%s: exit %d %+v", obj, code, out)
			}
		}
	})

	t.Run("put uses the bucket's default key; copy checks both keys", func(t *testing.T) {
		code, out := whyJSONRun(t, "s3://reports/new.csv", "--action", "put", "--as", roleReader)
		s := out.Steps[0]
		if code != exitDiagnosis || s.Action != "kms:GenerateDataKey" || s.Key != keyReports || s.Report == nil || s.Report.Diagnosis != "identity-policy-missing" {
			t.Errorf("put: exit %d %+v", code, out)
		}
		code, out = whyJSONRun(t, "s3://reports/q3.csv", "--action", "copy", "--to", "s3://old-key/copy.csv", "--as", roleAdmin)
		if code != exitDiagnosis || len(out.Steps) != 2 || out.Steps[0].Verdict != "allowed" ||
			out.Steps[1].Report == nil || out.Steps[1].Report.Diagnosis != "key-disabled" {
			t.Errorf("copy: exit %d %+v", code, out)
		}
		code, out = whyJSONRun(t, "s3://plain/new.txt", "--action", "put", "--as", roleReader)
		if code != exitAllowed || out.Verdict != "kms-not-involved" {
			t.Errorf("put to SSE-S3 bucket: exit %d %+v", code, out)
		}
	})

	t.Run("a message that reorders text is printed escaped", func(t *testing.T) {
		// XML cannot carry C0 controls (S3's error documents never hold them), but it carries
		// bidi overrides, which reorder what a terminal shows.
		f.caller(alice)
		f.s3.PutObject("inbox", "esc.csv", awsfake.S3Object{Body: []byte("x"), SSE: "aws:kms", KMSKeyID: keyReports})
		f.refuseKMS("inbox", "esc.csv", "Access Denied \u202egnp.exe")
		_, stdout, _ := runWhyCmd(t, "s3://inbox/esc.csv")
		if strings.Contains(stdout, "\u202e") || !strings.Contains(stdout, `Access Denied \u202egnp.exe`) {
			t.Errorf("a bidi override reached the terminal:\n%q", stdout)
		}
	})

	t.Run("a bucket of another Region: exit 3 naming the Region to use", func(t *testing.T) {
		f.s3.PutBucket("far-bucket", awsfake.S3Bucket{Region: "us-east-1", Objects: map[string]awsfake.S3Object{"x.csv": {Body: []byte("x"), SSE: "aws:kms", KMSKeyID: keyReports}}})
		code, _, stderr := runWhyCmd(t, "s3://far-bucket/x.csv")
		if code != exitError || !strings.Contains(stderr, "rerun with --region us-east-1") || strings.Contains(stderr, "needs s3:") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("usage and AWS errors exit 3", func(t *testing.T) {
		for _, args := range [][]string{{}, {"reports/q3.csv"}, {"s3://reports"}, {"s3://reports/q3.csv", "--action", "copy"}, {"s3://reports/q3.csv", "--output", "yaml"}, {"s3://reports/missing.csv"}, {"s3://reports/q3.csv", "--profile", "no-such-profile"}} {
			if code, stdout, stderr := runWhyCmd(t, args...); code != exitError {
				t.Errorf("why %v: exit %d, want 3\n%s%s", args, code, stdout, stderr)
			}
		}
	})
}

func anyContains(xs []string, sub string) bool {
	for _, x := range xs {
		if strings.Contains(x, sub) {
			return true
		}
	}
	return false
}

// kmsDenialRecord is the CloudTrail record KMS writes when it refuses S3's Decrypt for alice.
func kmsDenialRecord(key, contextARN string, at time.Time) corpus.Record {
	rec := map[string]any{
		"eventVersion": "1.11",
		"userIdentity": map[string]any{
			"type": "AssumedRole", "principalId": "AROAREADER:alice",
			"arn": "arn:aws:sts::111122223333:assumed-role/reader/alice", "accountId": whyAcct,
			"sessionContext": map[string]any{"sessionIssuer": map[string]any{
				"type": "Role", "principalId": "AROAREADER", "arn": roleReader, "accountId": whyAcct, "userName": "reader"}},
			"invokedBy": "AWS Internal",
		},
		"eventTime": at.Format(time.RFC3339), "eventSource": "kms.amazonaws.com", "eventName": "Decrypt",
		"awsRegion": whyRegion, "sourceIPAddress": "AWS Internal", "userAgent": "AWS Internal",
		"errorCode":    "AccessDenied",
		"errorMessage": fmt.Sprintf(noIdentityAllow, key),
		"requestParameters": map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
			"encryptionContext": map[string]string{"aws:s3:arn": contextARN}},
		"eventID": "ct-opaque-1", "readOnly": true, "eventType": "AwsApiCall", "recipientAccountId": whyAcct,
		"resources": []map[string]string{{"accountId": whyAcct, "type": "AWS::KMS::Key", "ARN": key}},
	}
	b, _ := json.Marshal(rec)
	return corpus.Record{ID: "ct-opaque-1", Name: "Decrypt", Source: "kms.amazonaws.com", Time: at, JSON: b, Group: -1}
}
