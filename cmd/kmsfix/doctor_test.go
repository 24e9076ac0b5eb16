package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/doctor"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

func doctorEnv(t *testing.T, f *awsfake.Doctor) {
	t.Helper()
	awsTestEnv(t, map[string]string{
		"CLOUDTRAIL": f.URL, "EVENTBRIDGE": f.URL, "LAMBDA": f.URL, "SQS": f.URL, "SECRETS_MANAGER": f.URL,
	})
	t.Setenv("KMSFIX_STACK_NAME", "")
	t.Setenv("KMSFIX_RULE_NAME", "")
}

// TestDoctorCommand runs `kmsfix doctor` end to end: the real SDK clients built from the
// default configuration reach the fake through AWS_ENDPOINT_URL_<SERVICE>.
func TestDoctorCommand(t *testing.T) {
	f := awsfake.NewDoctor(t, doctor.StackPattern)
	doctorEnv(t, f)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"doctor"}, &stdout, &stderr); code != 0 {
		t.Fatalf("healthy account: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "kmsfix doctor: Region us-east-1") || !strings.Contains(stdout.String(), "9 passed, 0 failed, 0 warnings, 0 skipped") || stderr.Len() != 0 {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}

	// Break the rule state: exit 1, the failing row, its fix.
	f.Lock()
	f.Rules[1].State = "ENABLED"
	f.Unlock()
	stdout.Reset()
	if code := run([]string{"doctor", "--region", "us-east-1"}, &stdout, &stderr); code != 1 {
		t.Fatalf("broken rule state: exit %d, want 1\n%s", code, stdout.String())
	}
	for _, want := range []string{"rule state               FAIL", "fix:", "--state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", "8 passed, 1 failed"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}

	stdout.Reset()
	if code := run([]string{"doctor", "--json", "--rule", awsfake.DoctorRuleName}, &stdout, &stderr); code != 1 {
		t.Fatalf("--json: exit %d, want 1", code)
	}
	var checks []doctor.Check
	if err := json.Unmarshal(stdout.Bytes(), &checks); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	if len(checks) != 9 || checks[3].Name != doctor.NameRuleState || checks[3].Status != doctor.Fail {
		t.Errorf("checks %+v", checks)
	}
}

func TestDoctorCommandUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"doctor", "extra"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "unexpected argument") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
