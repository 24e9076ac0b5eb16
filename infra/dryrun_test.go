package main

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// A single-account dry run keeps its audit key: the applier addresses a finding's change by
// the key's MAC of its fingerprint and refuses everything without it, so a dry run without the
// key reported "no audit integrity key" for every finding. The key is there, in the function's
// environment, the function may GenerateMac/VerifyMac with it, and the dry run still holds no
// write lever; cdk-nag and cfn-guard pass.
func TestDryRunKeepsTheAuditKey(t *testing.T) {
	s := synth(t, "dryrun")
	var auditKey string
	for id, k := range s.resources("AWS::KMS::Key") {
		if k["KeySpec"] == "HMAC_256" && k["KeyUsage"] == "GENERATE_VERIFY_MAC" {
			auditKey = id
		}
	}
	if auditKey == "" {
		t.Fatal("the dry run has no audit key")
	}
	_, fn := s.one(t, "AWS::Lambda::Function")
	env := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	if got := asJSON(env["KMSFIX_AUDIT_KEY_ARN"]); got != `{"Fn::GetAtt":["`+auditKey+`","Arn"]}` {
		t.Errorf("KMSFIX_AUDIT_KEY_ARN = %s, want the audit key %s", got, auditKey)
	}
	if env["KMSFIX_DRY_RUN"] != "true" {
		t.Errorf("KMSFIX_DRY_RUN = %v", env["KMSFIX_DRY_RUN"])
	}
	macs := false
	for _, st := range s.statements() {
		if st.effect != "Allow" {
			continue
		}
		for _, a := range st.actions {
			if strings.HasPrefix(a, "iam:Put") || strings.HasPrefix(a, "iam:Delete") ||
				a == "kms:PutKeyPolicy" || a == "kms:CreateGrant" || a == "kms:RetireGrant" {
				t.Errorf("the dry run may %s (%s)", a, st.policy)
			}
		}
		if strings.Join(st.actions, ",") == "kms:GenerateMac,kms:VerifyMac" &&
			strings.Contains(strings.Join(st.resources, ","), auditKey) {
			macs = true
		}
	}
	if !macs {
		t.Error("the function may not GenerateMac/VerifyMac with the audit key")
	}
	for id := range s.resources("AWS::IAM::Policy") {
		if strings.HasPrefix(id, "ApplyPolicy") {
			t.Errorf("the dry run has the apply policy %s", id)
		}
	}
	var ann assertions.Annotations
	if err := try(func() { ann = assertions.Annotations_FromStack(s.stack) }); err != nil {
		t.Fatal(err)
	}
	if err := try(func() {
		ann.HasNoError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
	}); err != nil {
		t.Errorf("unsuppressed cdk-nag errors: %v", err)
	}
	if out, err := runGuard(t, guardRules(t), s.raw); err != nil {
		t.Errorf("cfn-guard failed (%v):\n%s", err, out)
	}
}
