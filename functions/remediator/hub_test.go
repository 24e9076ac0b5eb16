package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// TestHubApplyThroughTheBootstrap: the real bootstrap configured as the hub stack configures it
// in apply mode (KMSFIX_HUB_ORG_ID, KMSFIX_MODE=apply, the sandbox list, the audit key). The
// caller's copy of sample 25 arrives on the hub's bus; the function reads each account through
// its reader role and applies each half through that account's kmsfix-apply role: the STS fake
// issues per-account credentials and the routers send every call to the signer's account only.
func TestHubApplyThroughTheBootstrap(t *testing.T) {
	const (
		hubAcct = "999988887777"
		caller  = "111122223333"
		owner   = "111122224444"
		region  = "eu-west-1"
		hubKey  = "AKIAHUBFUNCTION00001"
	)
	s := loadSample(t, "25-cross-account-both-sandboxes")
	members := map[string]*emulator.Services{}
	kmsURLs, iamURLs := map[string]string{}, map[string]string{}
	for _, acct := range []string{caller, owner} {
		members[acct] = emulator.StartServices(t, emulator.ServicesOptions{Account: acct, Region: region, World: s.world})
		kmsURLs[acct], iamURLs[acct] = members[acct].KMS.URL, members[acct].IAM.URL
	}
	hubKMS := emulator.LocalKMSEndpoint(t, hubAcct, region)
	kmsURLs[hubAcct] = hubKMS
	stsFake := awsfake.NewSTS(t, hubAcct)
	stsFake.AddMember(caller)
	stsFake.AddMember(owner)
	stsFake.Know(hubKey, hubAcct) // the function's own credentials: its audit key, nothing else
	kmsRouter := awsfake.NewAccountRouter(t, stsFake, kmsURLs)
	iamRouter := awsfake.NewAccountRouter(t, stsFake, iamURLs)
	mac, err := kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(hubKMS),
		Credentials: credentials.NewStaticCredentialsProvider(hubKey, "secret", "")}).CreateKey(context.Background(),
		&kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	keyBefore, err := members[owner].KMS.Client.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{
		KeyId: aws.String(s.item.Denial.KeyARN), PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}

	vars := []string{
		"AWS_REGION=" + region, "AWS_DEFAULT_REGION=" + region, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=" + hubKey, "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=token",
		"AWS_ENDPOINT_URL_KMS=" + kmsRouter.URL, "AWS_ENDPOINT_URL_IAM=" + iamRouter.URL,
		"AWS_ENDPOINT_URL_STS=" + stsFake.URL, "AWS_ENDPOINT_URL_ACCESSANALYZER=" + members[caller].AA.URL,
		"AWS_ENDPOINT_URL_SNS=" + snsEmu.Endpoint, "AWS_ENDPOINT_URL_DYNAMODB=" + ddb.Endpoint,
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_TIMEOUT=20",
		"KMSFIX_TOPIC_ARN=" + snsEmu.TopicARN, "KMSFIX_TABLE_NAME=" + ownTable(t),
		"KMSFIX_HUB_ORG_ID=o-abcdefghij", "KMSFIX_MODE=apply",
		"KMSFIX_SANDBOX_ACCOUNTS=" + caller + "," + owner,
		"KMSFIX_REMEDIATOR_ROLE_ARN=arn:aws:iam::" + hubAcct + ":role/kmsfix-hub-remediator",
		"KMSFIX_AUDIT_KEY_ARN=" + aws.ToString(mac.KeyMetadata.Arn),
	}
	hub := &fn{rie: emulator.StartRIE(t, bootstrap, vars)}

	raw, err := os.ReadFile(filepath.Join("..", "..", "events", s.name, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var detail map[string]any
	if err := json.Unmarshal(raw, &detail); err != nil {
		t.Fatal(err)
	}
	event, err := json.Marshal(map[string]any{"version": "0", "id": "hub-apply-1", "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": caller, "time": detail["eventTime"], "region": region, "resources": []any{}, "detail": detail})
	if err != nil {
		t.Fatal(err)
	}
	rep, inv := hub.invoke(t, event)
	if inv.Error || rep.Applied == nil || len(rep.AppliedMore) != 1 {
		t.Fatalf("hub apply: %s\n%s", inv.Body, hub.rie.Logs())
	}
	byAcct := map[string]finding.Applied{rep.Applied.Account: *rep.Applied, rep.AppliedMore[0].Account: rep.AppliedMore[0]}
	if byAcct[caller].Lever != finding.KindIdentityPolicy || byAcct[owner].Lever != finding.KindKeyPolicyStatement ||
		byAcct[caller].Role != "arn:aws:iam::"+caller+":role/kmsfix-apply" || byAcct[owner].Role != "arn:aws:iam::"+owner+":role/kmsfix-apply" {
		t.Errorf("halves: %+v", byAcct)
	}
	// The command a person runs to revert early: the break-glass role the spokes trust, the audit key.
	if !strings.HasSuffix(rep.Applied.RevertCommand, " --hub --role arn:aws:iam::"+hubAcct+":role/kmsfix-break-glass --audit-key "+aws.ToString(mac.KeyMetadata.Arn)) {
		t.Errorf("revert command %q", rep.Applied.RevertCommand)
	}
	if n := iamRouter.Ops("arn:aws:iam::" + caller + ":role/kmsfix-apply")["PutRolePolicy"]; n != 1 {
		t.Errorf("PutRolePolicy by the caller's apply role: %d", n)
	}
	if n := kmsRouter.Ops("arn:aws:iam::" + owner + ":role/kmsfix-apply")["PutKeyPolicy"]; n != 1 {
		t.Errorf("PutKeyPolicy by the owner's apply role: %d", n)
	}
	// The function's own credentials sealed the audit and changed nothing.
	for op, n := range kmsRouter.Ops("") {
		if op != "GenerateMac" && op != "VerifyMac" {
			t.Errorf("the function's own credentials called kms:%s %d times", op, n)
		}
	}
	if n := len(iamRouter.Ops("")); n != 0 || kmsRouter.Foreign() != 0 {
		t.Errorf("IAM calls with the function's own credentials: %v; cross-account key-policy calls: %d", iamRouter.Ops(""), kmsRouter.Foreign())
	}
	after, err := members[owner].KMS.Client.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{
		KeyId: aws.String(s.item.Denial.KeyARN), PolicyName: aws.String("default")})
	if err != nil || aws.ToString(after.Policy) == aws.ToString(keyBefore.Policy) || !strings.Contains(aws.ToString(after.Policy), byAcct[owner].Name) {
		t.Errorf("the owner's key policy after the hub's apply (%v):\n%s", err, aws.ToString(after.Policy))
	}
	if got := members[caller].IAM.Inline("role/ml-trainer"); got[byAcct[caller].Name] == "" {
		t.Errorf("the caller's role has no %s: %v", byAcct[caller].Name, got)
	}
}
