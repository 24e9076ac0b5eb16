package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// `kmsfix revert --hub` and `kmsfix applied --hub` on the hub's table: the change is reverted in
// its own account, read through that account's kmsfix-reader role and written through its
// kmsfix-apply role (the STS fake issues each account's credentials; the router sends each
// call to the signer's account only); a change in an account whose roles cannot be assumed
// is left as it is, and the error names the role.
func TestRevertCommandInTheHub(t *testing.T) {
	const hubAcct, member, outsider, region, table = "999988887777", "111122224444", "555566667777", "eu-west-1", "kmsfix-hub-cli"
	ctx := context.Background()
	static := credentials.NewStaticCredentialsProvider("AKIDHUBPERSON", "secret", "")
	memberKMS := emulator.StartLocalKMS(t, emulator.LocalKMSOptions{Account: member, Region: region})
	hubKMSURL := emulator.LocalKMSEndpoint(t, hubAcct, region)
	dynURL := emulator.DynaliteEndpoint(t)
	stsFake := awsfake.NewSTS(t, hubAcct)
	stsFake.AddMember(member)
	stsFake.Know("AKIDHUBPERSON", hubAcct)
	router := awsfake.NewAccountRouter(t, stsFake, map[string]string{member: memberKMS.URL, hubAcct: hubKMSURL})
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KMS": router.URL, "AWS_ENDPOINT_URL_DYNAMODB": dynURL, "AWS_ENDPOINT_URL_STS": stsFake.URL,
		"AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:1",
		"AWS_ACCESS_KEY_ID":    "AKIDHUBPERSON", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": region,
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
		"KMSFIX_TABLE_NAME": "", "KMSFIX_HUB_ORG_ID": "",
	} {
		t.Setenv(k, v)
	}

	before := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Sid\": \"Admin\", \"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"arn:aws:iam::" + member + ":role/admin\"}, \"Action\": \"kms:*\", \"Resource\": \"*\"}\n  ]\n}"
	key, err := memberKMS.Client.CreateKey(ctx, &kms.CreateKeyInput{Policy: &before})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	sid := "KmsfixS3aaaabbbbcccc"
	stmt := `{"Sid":"` + sid + `","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:Decrypt"],"Resource":"*"}`
	after := strings.Replace(before, "\n  ]", ","+stmt+"\n  ]", 1)
	if _, err := memberKMS.Client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default"), Policy: &after}); err != nil {
		t.Fatal(err)
	}
	hubKMS := kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(hubKMSURL), Credentials: static})
	mk, err := hubKMS.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KMSFIX_AUDIT_KEY_ARN", aws.ToString(mk.KeyMetadata.Arn))
	db := dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(dynURL), Credentials: static})
	emulator.CreateDynamoTable(t, db, table)
	store := &apply.Store{DB: db, Table: table, Sealer: apply.KMSSealer{API: hubKMS, KeyID: aws.ToString(mk.KeyMetadata.Arn)}}
	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	record := func(id, acct, target string) *apply.Record {
		patch := `{"kind":"key-policy-statement","account":"` + acct + `","target":"` + target + `","name":"` + sid + `","statement":` + stmt + `}`
		r := &apply.Record{ID: id, Status: apply.StatusApplied, Fingerprint: "fp@" + acct, EventID: "ev-1", Owner: "ev-1",
			Lever: finding.KindKeyPolicyStatement, Account: acct, Role: "arn:aws:iam::" + acct + ":role/kmsfix-apply", Region: region,
			Target: target, Name: sid, Patch: patch, Before: before, After: after, StartedAt: now.Format(time.RFC3339),
			AppliedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(time.Hour).Format(time.RFC3339)}
		if err := store.Put(ctx, r, now); err != nil {
			t.Fatal(err)
		}
		return r
	}
	rec := record("chg-0123456789abcdef", member, keyARN)
	lost := record("chg-00000000000000aa", outsider, strings.Replace(keyARN, member, outsider, 1))

	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := cli("applied", "--table", table, "--hub", "--json"); code != 0 ||
		!strings.Contains(out, `"role":"arn:aws:iam::`+member+`:role/kmsfix-apply"`) || !strings.Contains(out, `"account":"`+outsider+`"`) {
		t.Fatalf("applied --hub: %d\n%s%s", code, out, errs)
	}
	code, out, errs := cli("revert", rec.ID, "--table", table, "--hub")
	if code != 0 || !strings.Contains(out, "change "+rec.ID+" reverted") || !strings.Contains(out, "byte-for-byte") {
		t.Fatalf("revert --hub: %d\n%s%s", code, out, errs)
	}
	got, err := memberKMS.Client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default")})
	if err != nil || aws.ToString(got.Policy) != before {
		t.Fatalf("key policy after revert (%v):\n%s", err, aws.ToString(got.Policy))
	}
	applyOps, reader := router.Ops("arn:aws:iam::"+member+":role/kmsfix-apply"), router.Ops("arn:aws:iam::"+member+":role/kmsfix-reader")
	if applyOps["PutKeyPolicy"] != 1 || applyOps["GetKeyPolicy"] != 0 || reader["GetKeyPolicy"] == 0 || reader["PutKeyPolicy"] != 0 {
		t.Errorf("calls: apply role %v, reader role %v", applyOps, reader)
	}
	if router.Ops("")["PutKeyPolicy"]+router.Ops("")["GetKeyPolicy"] != 0 || router.Foreign() != 0 {
		t.Errorf("the person's own credentials touched a key policy: %v (foreign %d)", router.Ops(""), router.Foreign())
	}

	// An account without the spoke's roles: nothing is done, and the error names the role.
	code, _, errs = cli("revert", lost.ID, "--table", table, "--hub")
	if code != 1 || !strings.Contains(errs, "arn:aws:iam::"+outsider+":role/kmsfix-") {
		t.Fatalf("revert --hub in an account without roles: %d %s", code, errs)
	}
	if r, err := store.Get(ctx, lost.ID); err != nil || r.Status != apply.StatusApplied {
		t.Errorf("the record of the unreachable account: %+v %v", r, err)
	}
}
