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
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// `kmsfix revert ID` against local-kms and dynalite: the statement goes, the key policy is
// byte-for-byte what it was, the audit says so, and a second revert is a no-op.
func TestRevertCommand(t *testing.T) {
	const account, region, table = "111122223333", "us-east-1", "kmsfix-cli"
	kmsURL := emulator.LocalKMSEndpoint(t, account, region)
	dynURL := emulator.DynaliteEndpoint(t)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_KMS": kmsURL, "AWS_ENDPOINT_URL_DYNAMODB": dynURL, "AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:1",
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": region,
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
		"KMSFIX_TABLE_NAME": "",
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	kc := kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(kmsURL), Credentials: creds})
	db := dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(dynURL), Credentials: creds})

	before := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Sid\": \"Admin\", \"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"arn:aws:iam::111122223333:role/admin\"}, \"Action\": \"kms:*\", \"Resource\": \"*\"}\n  ]\n}"
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Policy: &before})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	sid := "KmsfixS3aaaabbbbcccc"
	after := strings.Replace(before, "\n  ]", `,{"Sid":"`+sid+`","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:Decrypt"],"Resource":"*"}`+"\n  ]", 1)
	if _, err := kc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default"), Policy: &after}); err != nil {
		t.Fatal(err)
	}
	emulator.CreateDynamoTable(t, db, table)
	mk, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KMSFIX_AUDIT_KEY_ARN", aws.ToString(mk.KeyMetadata.Arn))
	store := &apply.Store{DB: db, Table: table, Sealer: apply.KMSSealer{API: kc, KeyID: aws.ToString(mk.KeyMetadata.Arn)}}
	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	stmt := `{"Sid":"` + sid + `","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:Decrypt"],"Resource":"*"}`
	patchJSON := `{"kind":"key-policy-statement","account":"` + account + `","target":"` + keyARN + `","name":"` + sid + `","statement":` + stmt + `}`
	rec := &apply.Record{ID: "chg-0123456789abcdef", Status: apply.StatusApplied, Fingerprint: "fp", EventID: "ev-1", Owner: "ev-1",
		Lever: finding.KindKeyPolicyStatement, Account: account, Region: region, Target: keyARN, Name: sid, Patch: patchJSON,
		Before: before, After: after, StartedAt: now.Format(time.RFC3339), AppliedAt: now.Format(time.RFC3339),
		ExpiresAt: now.Add(24 * time.Hour).Format(time.RFC3339)}
	if err := store.Put(ctx, rec, now); err != nil {
		t.Fatal(err)
	}

	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := cli("applied", "--table", table); code != 0 || !strings.Contains(out, rec.ID) || !strings.Contains(out, sid) {
		t.Fatalf("applied: %d\n%s%s", code, out, errs)
	}
	code, out, errs := cli("revert", rec.ID, "--table", table, "--region", region)
	if code != 0 || !strings.Contains(out, "change "+rec.ID+" reverted") || !strings.Contains(out, "byte-for-byte") {
		t.Fatalf("revert: %d\n%s%s", code, out, errs)
	}
	got, err := kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default")})
	if err != nil || aws.ToString(got.Policy) != before {
		t.Fatalf("key policy after revert (%v):\n%s", err, aws.ToString(got.Policy))
	}
	if r, err := store.Get(ctx, rec.ID); err != nil || r.Status != apply.StatusReverted {
		t.Fatalf("audit after revert: %+v %v", r, err)
	}
	if code, out, _ := cli("revert", rec.ID, "--table", table); code != 0 || !strings.Contains(out, "already reverted") {
		t.Fatalf("second revert: %d %s", code, out)
	}
	if code, out, _ := cli("applied", "--table", table); code != 0 || strings.Contains(out, rec.ID) {
		t.Fatalf("applied after revert: %d %s", code, out)
	}
	if code, _, errs := cli("revert", "chg-missing", "--table", table); code != 1 || !strings.Contains(errs, "no change chg-missing") {
		t.Fatalf("unknown id: %d %s", code, errs)
	}
	if code, _, _ := cli("revert"); code != 2 {
		t.Fatalf("no id: exit %d, want 2", code)
	}
	if code, _, errs := cli("revert", rec.ID); code != 2 || !strings.Contains(errs, "KMSFIX_TABLE_NAME") {
		t.Fatalf("no table: exit %d %s", code, errs)
	}

	// A record edited in the table (here: pointed at an administrator's statement) is never
	// trusted: revert refuses it and touches nothing, applied lists it and exits 1.
	if _, err := kc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default"), Policy: &after}); err != nil {
		t.Fatal(err)
	}
	rec2 := *rec
	rec2.ID, rec2.Status, rec2.Version, rec2.EndedAt, rec2.Note = "chg-fedcba9876543210", apply.StatusApplied, 0, "", ""
	if err := store.Put(ctx, &rec2, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "apply#" + rec2.ID}, "sk": &ddbtypes.AttributeValueMemberS{Value: "change"}},
		UpdateExpression:          aws.String("SET #n = :n"),
		ExpressionAttributeNames:  map[string]string{"#n": "name"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":n": &ddbtypes.AttributeValueMemberS{Value: "Admin"}},
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli("revert", rec2.ID, "--table", table); code != 1 || !strings.Contains(errs, "integrity check") {
		t.Fatalf("revert of a tampered record: %d %s", code, errs)
	}
	if got, _ := kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default")}); aws.ToString(got.Policy) != after {
		t.Fatalf("a tampered record changed the key policy:\n%s", aws.ToString(got.Policy))
	}
	if code, out, _ := cli("applied", "--table", table); code != 1 || !strings.Contains(out, rec2.ID) || !strings.Contains(out, "integrity-check-failed") {
		t.Fatalf("applied with a tampered record: %d %s", code, out)
	}
	t.Setenv("KMSFIX_AUDIT_KEY_ARN", "")
	if code, _, errs := cli("applied", "--table", table); code != 1 || !strings.Contains(errs, "--audit-key") {
		t.Fatalf("without the audit key: %d %s", code, errs)
	}
}
