package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// TestSingleAccountDryRunThroughTheBootstrap: the real bootstrap configured as the
// single-account stack configures a dry run (KMSFIX_MODE=apply, KMSFIX_DRY_RUN=true, and the
// audit key, which infra/apply.go now creates in a dry run too: TestDryRunKeepsTheAuditKey).
// Sample 11 (key-policy-missing in a sandbox) is reported with the exact call it would make,
// and nothing is written. Without the audit key (what the stack used to deploy) the same
// event is refused with "no audit integrity key": the defect this fixes.
func TestSingleAccountDryRunThroughTheBootstrap(t *testing.T) {
	s := loadSample(t, "11-key-policy-missing-sandbox")
	d := s.item.Denial
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", s.name, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var detail map[string]any // the sample is a bare record: the rule's envelope around it
	if err := json.Unmarshal(raw, &detail); err != nil {
		t.Fatal(err)
	}
	event, err := json.Marshal(map[string]any{"version": "0", "id": "dry-run-1", "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": d.RecipientAccount, "time": detail["eventTime"], "region": d.Region, "resources": []any{}, "detail": detail})
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, withKey bool) (string, string, []string) {
		env := emulator.StartServices(t, emulator.ServicesOptions{Account: d.RecipientAccount, Region: d.Region, World: s.world})
		ctx := context.Background()
		before, err := env.KMS.Client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(d.KeyARN), PolicyName: aws.String("default")})
		if err != nil {
			t.Fatal(err)
		}
		vars := append(env.Env(),
			"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_TIMEOUT=20",
			"KMSFIX_TOPIC_ARN="+snsEmu.TopicARN, "KMSFIX_TABLE_NAME="+ownTable(t),
			"AWS_ENDPOINT_URL_SNS="+snsEmu.Endpoint, "AWS_ENDPOINT_URL_DYNAMODB="+ddb.Endpoint,
			"KMSFIX_SANDBOX_ACCOUNTS="+strings.Join(s.world.SandboxAccounts, ","),
			"KMSFIX_MODE=apply", "KMSFIX_DRY_RUN=true",
			"KMSFIX_REMEDIATOR_ROLE_ARN=arn:aws:iam::"+d.RecipientAccount+":role/kmsfix-remediator",
		)
		if withKey {
			mac, err := env.KMS.Client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
			if err != nil {
				t.Fatal(err)
			}
			vars = append(vars, "KMSFIX_AUDIT_KEY_ARN="+aws.ToString(mac.KeyMetadata.Arn))
		}
		f := &fn{aws: env, rie: emulator.StartRIE(t, bootstrap, vars)}
		rep, inv := f.invoke(t, event)
		if inv.Error {
			t.Fatalf("invoke: %s\n%s", inv.Body, f.rie.Logs())
		}
		after, err := env.KMS.Client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(d.KeyARN), PolicyName: aws.String("default")})
		if err != nil || aws.ToString(after.Policy) != aws.ToString(before.Policy) {
			t.Errorf("a dry run changed the key policy (%v):\n%s", err, aws.ToString(after.Policy))
		}
		var calls []string
		if rep.Applied != nil {
			if !rep.Applied.DryRun || rep.Applied.ID != "" {
				t.Errorf("applied = %+v; want a dry run with no change id", rep.Applied)
			}
			calls = rep.Applied.Calls
		}
		return rep.AutoApplyBlocked, f.rie.Logs(), calls
	}

	t.Run("with the audit key", func(t *testing.T) {
		blocked, logs, calls := run(t, true)
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "kms:PutKeyPolicy {") || !strings.Contains(calls[0], `"KeyId":"`+d.KeyARN+`"`) ||
			!strings.Contains(calls[0], `"BypassPolicyLockoutSafetyCheck":false`) {
			t.Fatalf("dry-run calls %q (blocked %q)\n%s", calls, blocked, logs)
		}
		if !strings.Contains(logs, "apply: dry run, not calling") {
			t.Errorf("the call is not logged:\n%s", logs)
		}
	})
	t.Run("without it, as the stack deployed before", func(t *testing.T) {
		blocked, _, calls := run(t, false)
		if len(calls) != 0 || !strings.Contains(blocked, "no audit integrity key") {
			t.Errorf("calls %q, blocked %q; want refused for the missing key", calls, blocked)
		}
	})
}
