package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/doctor"
	"github.com/kmsfix/kmsfix/internal/eventpattern"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

// The organization checks against the synthesized templates are in infra
// (doctor_org_test.go); these run the command end to end: flags and their environment
// defaults, the real SDK clients built from the default configuration, the exit codes.

const (
	orgMember = "111122223333"
	orgHubBus = "arn:aws:events:eu-west-1:999988887777:event-bus/kmsfix-hub"
	orgHubRol = "arn:aws:iam::999988887777:role/kmsfix-hub-remediator"
)

// healthySpoke is a spoke as the template leaves member account 111122223333 (without the
// apply role), written out by hand.
func healthySpoke(t *testing.T) (*awsfake.Doctor, *awsfake.IAM, *awsfake.STS) {
	ev := awsfake.NewDoctor(t, "")
	var pattern map[string]any
	if err := json.Unmarshal([]byte(eventpattern.KMSDenial), &pattern); err != nil {
		t.Fatal(err)
	}
	pattern["account"] = []string{orgMember}
	p, _ := json.Marshal(pattern)
	ev.Rules = []*awsfake.Rule{{Name: "StackSet-kmsfix-spokes-1-KmsDenialRule-ABC", Bus: "default",
		State: "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", Pattern: string(p),
		Targets: []awsfake.Target{{ID: "HubBus", ARN: orgHubBus, RoleARN: "arn:aws:iam::" + orgMember + ":role/kmsfix-forward",
			DeadLetter: "arn:aws:sqs:us-east-1:" + orgMember + ":dlq", Retries: 185, MaxAge: 86400}}}}
	iamFake := awsfake.NewIAM(t)
	iamFake.PutPrincipal(awsfake.IAMPrincipal{ARN: "arn:aws:iam::" + orgMember + ":role/kmsfix-forward",
		Trust:  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`,
		Inline: []awsfake.IAMPolicy{{Name: "PutOnHubBus", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"` + orgHubBus + `"}]}`}}})
	iamFake.PutPrincipal(awsfake.IAMPrincipal{ARN: "arn:aws:iam::" + orgMember + ":role/kmsfix-reader",
		Trust:  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + orgHubRol + `"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}}]}`,
		Inline: []awsfake.IAMPolicy{{Name: "read", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:DescribeKey","iam:GetRole"],"Resource":"*"}]}`}}})
	return ev, iamFake, awsfake.NewSTS(t, orgMember)
}

func spokeEnv(t *testing.T, ev *awsfake.Doctor, iamFake *awsfake.IAM, stsFake *awsfake.STS) {
	awsTestEnv(t, map[string]string{"EVENTBRIDGE": ev.URL, "IAM": iamFake.URL, "STS": stsFake.URL})
	for k, v := range map[string]string{"KMSFIX_ORG_ID": "o-abcdefghij", "KMSFIX_HUB_ACCOUNT": "999988887777", "KMSFIX_HUB_REGION": "eu-west-1",
		"KMSFIX_SPOKE_TARGETS": "", "KMSFIX_SPOKE_REGIONS": "", "KMSFIX_SANDBOX_OUS": ""} {
		t.Setenv(k, v)
	}
}

func TestDoctorSpokeCommand(t *testing.T) {
	ev, iamFake, stsFake := healthySpoke(t)
	spokeEnv(t, ev, iamFake, stsFake)
	var stdout, stderr bytes.Buffer
	// The organization comes from the environment the CDK app reads.
	if code := run([]string{"doctor", "--spoke", "--sandbox=false"}, &stdout, &stderr); code != 0 {
		t.Fatalf("healthy spoke: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"kmsfix doctor --spoke: account 111122223333, Region us-east-1", "10 passed, 0 failed, 0 warnings, 1 skipped"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}

	// The reader trusts the hub of another organization: exit 1, the row and its fix.
	iamFake.EditPrincipal("role/kmsfix-reader", func(p *awsfake.IAMPrincipal) {
		p.Trust = strings.Replace(p.Trust, "o-abcdefghij", "o-zzzzzzzzzz", 1)
	})
	stdout.Reset()
	if code := run([]string{"doctor", "--spoke", "--json"}, &stdout, &stderr); code != 1 {
		t.Fatalf("broken reader trust: exit %d, want 1\n%s", code, stdout.String())
	}
	var checks []doctor.Check
	if err := json.Unmarshal(stdout.Bytes(), &checks); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	failed := map[string]bool{}
	for _, c := range checks {
		if c.Status == doctor.Fail {
			failed[c.Name] = true
		}
	}
	if len(checks) != 11 || len(failed) != 1 || !failed[doctor.NameReaderTrust] {
		t.Errorf("checks %+v", checks)
	}

	// A flag wins over the environment: another hub account, so every hub ARN differs.
	stdout.Reset()
	if code := run([]string{"doctor", "--spoke", "--hub-account", "123456789012"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stdout.String(), "not the hub bus arn:aws:events:eu-west-1:123456789012:event-bus/kmsfix-hub") {
		t.Errorf("--hub-account: exit %d\n%s", code, stdout.String())
	}
}

func TestDoctorHubCommand(t *testing.T) {
	ev, cf, stsFake := awsfake.NewDoctor(t, ""), awsfake.NewCloudFormation(t), awsfake.NewSTS(t, "999988887777")
	awsTestEnv(t, map[string]string{"EVENTBRIDGE": ev.URL, "LAMBDA": ev.URL, "CLOUDFORMATION": cf.URL, "STS": stsFake.URL})
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("KMSFIX_STACK_NAME", "")
	args := []string{"doctor", "--hub", "--org-id", "o-abcdefghij", "--hub-account", "999988887777", "--hub-region", "eu-west-1",
		"--spoke-targets", "ou-ab12-workload1", "--spoke-regions", "eu-west-1"}
	// Nothing deployed: every check fails or is skipped, each failure with its fix.
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 1 {
		t.Fatalf("nothing deployed: exit %d, want 1\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"hub bus exists                  FAIL", "no event bus kmsfix-hub in eu-west-1",
		"StackSet service-managed        FAIL", "no StackSet kmsfix-spokes (read as DELEGATED_ADMIN)", "rerun with --call-as SELF"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	// The StackSet read as the management account reads it.
	cf.PutStackSet(awsfake.StackSet{Name: "kmsfix-spokes", CallAs: "SELF", AutoDeployment: true, OUs: []string{"ou-ab12-workload1"},
		Regions: []string{"eu-west-1"}, Instances: []awsfake.StackInstance{{Account: orgMember, Region: "eu-west-1", OU: "ou-ab12-workload1"}}})
	stdout.Reset()
	run(append(args, "--call-as", "SELF", "--json"), &stdout, &stderr)
	var checks []doctor.Check
	if err := json.Unmarshal(stdout.Bytes(), &checks); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if strings.HasPrefix(c.Name, "StackSet") && c.Status != doctor.Pass {
			t.Errorf("%s: %s %s", c.Name, c.Status, c.Detail)
		}
	}
}

func TestDoctorOrgUsage(t *testing.T) {
	t.Setenv("KMSFIX_ORG_ID", "")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"doctor", "--spoke", "--hub-account", "999988887777", "--hub-region", "eu-west-1"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "orgId (KMSFIX_ORG_ID)") {
		t.Errorf("no org id: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"doctor", "--hub", "--org-id", "o-abcdefghij", "--hub-account", "999988887777", "--hub-region", "eu-west-1",
		"--spoke-targets", "ou-ab12-workload1", "--spoke-regions", "eu-west-1", "--call-as", "ME"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "--call-as") {
		t.Errorf("bad --call-as: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"doctor", "--spoke", "--sandbox", "maybe"}, &stdout, &stderr); code != 2 {
		t.Errorf("bad --sandbox: exit %d, stderr %q", code, stderr.String())
	}
}
