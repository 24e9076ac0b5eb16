package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/world"
)

// base is a same-account identity-policy-missing sample: everything it needs is live-readable.
const base = "01-identity-policy-missing"

func TestLookupDenied(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s)
	f.aws.IAM.Fail("GetRolePolicy", testenv.AWSFault{Code: "AccessDenied"})
	f.aws.IAM.Fail("ListRolePolicies", testenv.AWSFault{Code: "AccessDenied"})
	rep, inv := f.invoke(t, s.event)
	if inv.Error {
		t.Fatalf("a denied lookup must not fail the event: %s", inv.Body)
	}
	if rep.Diagnosis == "" || rep.Verified || !strings.Contains(strings.Join(rep.Unknown, "\n"), "iam:ListRolePolicies orders-api: access denied") {
		t.Errorf("want a finding, unverified, naming the denied read; got %s", asJSON(t, rep))
	}
	if rep.Unverified == "" && len(rep.Patches) > 0 {
		t.Errorf("an unverified patch must say why: %s", asJSON(t, rep))
	}
	checkReproducible(t, s, rep, f.lastLine(t, s.item.EventID))
}

func TestThrottledThenSuccess(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s)
	f.aws.IAM.Fail("GetRole", testenv.AWSFault{Code: "Throttling", Times: 2})
	f.aws.KMS.Fail("DescribeKey", testenv.AWSFault{Code: "ThrottlingException", Times: 1})
	rep, inv := f.invoke(t, s.event)
	if inv.Error {
		t.Fatalf("function error: %s", inv.Body)
	}
	if string(rep.Diagnosis) != s.expect.Diagnosis || !rep.Verified || len(rep.Unknown) > 0 {
		t.Errorf("retries should have read everything; got %s", asJSON(t, rep))
	}
	if got := f.aws.IAM.Calls("GetRole"); got != 3 {
		t.Errorf("GetRole reached IAM %d times, want 3 (2 throttled + 1)", got)
	}
	line := f.lastLine(t, s.item.EventID)
	if line.AWSAttempts != line.AWSCalls+3 {
		t.Errorf("attempts %d, calls %d: want 3 retries counted", line.AWSAttempts, line.AWSCalls)
	}
}

// TestTimeout: a lookup that hangs is abandoned at its deadline, inside the function's
// timeout, and the finding is still produced.
func TestTimeout(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s, "AWS_LAMBDA_FUNCTION_TIMEOUT=4")
	f.aws.IAM.Fail("GetRole", testenv.AWSFault{Delay: time.Minute})
	rep, inv := f.invoke(t, s.event)
	if inv.Error {
		t.Fatalf("the function must answer before its own timeout: %s\n%s", inv.Body, f.rie.Logs())
	}
	if rep.Diagnosis == "" || rep.Verified || !strings.Contains(strings.Join(rep.Unknown, "\n"), "iam:GetRole orders-api: timed out") {
		t.Errorf("want an unverified finding naming the timed-out read; got %s", asJSON(t, rep))
	}
}

func TestMalformedAndIgnored(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s)
	tests := []struct {
		name, event, outcome string
	}{
		{"not CloudTrail", `{"version":"0","id":"m-1","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`, ""},
		{"detail not an object", `{"version":"0","id":"m-2","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","detail":"garbage"}`, ""},
		{"empty object", `{}`, ""},
		{"a JSON string", `"hello"`, ""},
		// Payloads the runtime could not even decode used to be function errors (retried,
		// no kmsfix log line): remediator.Payloads drops them with one line.
		{"not JSON", `hello`, ""},
		{"empty", ``, ""},
		{"truncated", `{"id":"m-3","detail":`, ""},
		{"too deeply nested", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, inv := f.invoke(t, []byte(tt.event))
			if inv.Error {
				t.Fatalf("a malformed or irrelevant event must be dropped, not retried: %s", inv.Body)
			}
			if rep.Ignored == "" || rep.Diagnosis != "" {
				t.Errorf("report = %s, want ignored", asJSON(t, rep))
			}
		})
	}
	lines := f.rie.LogLines(`"message":"event"`)
	if len(lines) != len(tests) {
		t.Fatalf("want one log line per event, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, `"outcome":"malformed"`) && !strings.Contains(l, `"outcome":"ignored"`) {
			t.Errorf("log line %s: want outcome malformed or ignored", l)
		}
	}
	// The container still handles a real event.
	if rep, inv := f.invoke(t, s.event); inv.Error || string(rep.Diagnosis) != s.expect.Diagnosis {
		t.Errorf("after dropped events: %s %s", inv.Body, asJSON(t, rep))
	}
}

// TestPanicKeepsContainer: a panic in the pipeline fails that event (so Lambda retries it and
// the on-failure destination keeps it) and the same process serves the next events.
func TestPanicKeepsContainer(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s)
	if _, inv := f.invoke(t, s.event); inv.Error {
		t.Fatalf("first invocation: %s", inv.Body)
	}
	panicking := strings.Replace(string(s.event), s.item.EventID, "faultinject-panic-1", 1)
	_, inv := f.invoke(t, []byte(panicking))
	if !inv.Error || !strings.Contains(string(inv.Body), "panic in the pipeline") {
		t.Fatalf("want a function error for the panic, got %s", inv.Body)
	}
	line := f.lastLine(t, "faultinject-panic-1")
	if line.Outcome != "error" || !strings.Contains(line.Error, "fault injected") {
		t.Errorf("log line = %+v", line)
	}
	for i := range 2 {
		rep, inv := f.invoke(t, s.event)
		if inv.Error || string(rep.Diagnosis) != s.expect.Diagnosis {
			t.Fatalf("invocation %d after the panic: %s %s", i+1, inv.Body, asJSON(t, rep))
		}
	}
	// STS is asked once per container: a second call would mean a new process.
	if n := f.aws.STS.Calls("GetCallerIdentity"); n != 1 {
		t.Errorf("GetCallerIdentity called %d times: the container restarted", n)
	}
}

// TestAccessAnalyzerClearsVerified: a SECURITY_WARNING on the proposed policy means the patch
// is not verified, whatever the evaluator says.
func TestAccessAnalyzerClearsVerified(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s)
	f.aws.AA.FlagWhenContains("kms:Decrypt", awsfake.AAFinding{FindingType: "SECURITY_WARNING", IssueCode: "PASS_ROLE_WITH_STAR_IN_RESOURCE", Details: "test finding"})
	rep, inv := f.invoke(t, s.event)
	if inv.Error {
		t.Fatalf("function error: %s", inv.Body)
	}
	if rep.Verified || rep.AutoApply || !strings.Contains(rep.Unverified, "SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_RESOURCE") {
		t.Errorf("report = %s", asJSON(t, rep))
	}
	v := f.aws.AA.Validated()
	if len(v) != len(rep.Patches) || len(v) == 0 || v[0].Type != "IDENTITY_POLICY" {
		t.Errorf("validated %+v for %d patches", v, len(rep.Patches))
	}
}

// TestWarmInvocationUsesCache: the same denial again in a warm container makes no AWS call.
func TestWarmInvocationUsesCache(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s)
	first, _ := f.invoke(t, s.event)
	second, _ := f.invoke(t, s.event)
	lines := f.eventLines(t, s.item.EventID)
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %d", len(lines))
	}
	cold, warm := lines[0], lines[1]
	// Cold: STS, KMS (DescribeKey, GetKeyPolicy, ListAliases, ListGrants), IAM (GetRole,
	// ListRolePolicies, GetRolePolicy, ListAttachedRolePolicies), Access Analyzer, SNS and
	// DynamoDB for the notifier.
	if cold.CallsByOpera["STS.GetCallerIdentity"] != 1 || cold.CallsByOpera["KMS.DescribeKey"] != 1 ||
		cold.CallsByOpera["AccessAnalyzer.ValidatePolicy"] != 1 {
		t.Errorf("cold calls = %v", cold.CallsByOpera)
	}
	for op := range warm.CallsByOpera {
		if strings.HasPrefix(op, "KMS.") || strings.HasPrefix(op, "IAM.") || strings.HasPrefix(op, "STS.") || strings.HasPrefix(op, "AccessAnalyzer.") {
			t.Errorf("warm invocation called %s; lookups should come from the cache", op)
		}
	}
	if asJSON(t, first) != asJSON(t, second) {
		t.Errorf("warm report differs:\n%s\n%s", asJSON(t, first), asJSON(t, second))
	}
}

// TestNotified: the finding reaches the SNS topic (goaws) through the notifier.
func TestNotified(t *testing.T) {
	s := loadSample(t, "10-key-policy-missing")
	f := start(t, s)
	mark := snsEmu.Receiver.Count() // the topic is shared: look only at what this test caused
	rep, inv := f.invoke(t, s.event)
	if inv.Error {
		t.Fatalf("function error: %s", inv.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range snsEmu.Receiver.Deliveries()[mark:] {
			var got finding.Report
			if json.Unmarshal([]byte(d.ForProtocol("default")), &got) == nil && got.EventID == rep.EventID {
				if got.Diagnosis != rep.Diagnosis {
					t.Errorf("SNS report diagnosis %s, want %s", got.Diagnosis, rep.Diagnosis)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("no SNS delivery for %s; got %d deliveries", rep.EventID, snsEmu.Receiver.Count())
}

// TestConfigErrorAtColdStart: a bad configuration stops the function at cold start with a
// message naming the variable.
func TestConfigErrorAtColdStart(t *testing.T) {
	s := loadSample(t, base)
	f := start(t, s, "KMSFIX_TOPIC_ARN=", "KMSFIX_MODE=fix")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv, err := f.rie.Invoke(ctx, s.event)
	if err == nil && !inv.Error {
		t.Fatalf("want the invocation to fail, got %s", inv.Body)
	}
	// The emulator may answer before it has relayed the function's last words: wait for them.
	for _, want := range []string{"KMSFIX_TOPIC_ARN is required", `KMSFIX_MODE is \"fix\"`} {
		if _, err := f.rie.WaitFor(5*time.Second, 1, want); err != nil {
			t.Errorf("cold-start log does not say %q: %v", want, err)
		}
	}
}

// TestKeyDisabledLive: the key's state is read live from local-kms after DisableKey (the
// sample's own world is empty and decides from the message alone).
func TestKeyDisabledLive(t *testing.T) {
	s := loadSample(t, "60-key-disabled-message-only")
	d := s.item.Denial
	w, err := world.Parse([]byte(`{"keys": {"` + d.KeyARN + `": {"manager": "CUSTOMER", "state": "Disabled",
	  "policy": {"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
	    "Principal": {"AWS": "arn:aws:iam::` + d.KeyAccount + `:root"}, "Action": "kms:*", "Resource": "*"}]}}},
	  "principals": {"` + d.Identity.PrincipalARN + `": {"policies": []}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s.world = w
	f := start(t, s)
	rep, inv := f.invoke(t, s.event)
	if inv.Error {
		t.Fatalf("function error: %s", inv.Body)
	}
	line := f.lastLine(t, s.item.EventID)
	logged, err := world.Parse(line.World)
	if err != nil {
		t.Fatal(err)
	}
	if k := logged.Key(d.KeyARN); k == nil || k.State != world.StateDisabled {
		t.Fatalf("live world = %s, want the key read as Disabled", line.World)
	}
	if rep.Diagnosis != finding.KeyDisabled || len(rep.Unknown) > 0 {
		t.Errorf("report = %s", asJSON(t, rep))
	}
	checkReproducible(t, s, rep, line)
}
