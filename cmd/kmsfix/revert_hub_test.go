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
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// `kmsfix revert --hub` and `kmsfix applied --hub` on the hub's table: the change is reverted in
// its own account, read through that account's kmsfix-reader role and written through its
// kmsfix-apply role (the STS fake issues each account's credentials; the router sends each
// call to the signer's account only); a change in an account whose roles cannot be assumed
// is left as it is, and the error names the role.
//
// The trust is modelled as the templates write it (infra: TestSpokeRolesTrustTheHubAndBreakGlass,
// TestHubBreakGlassRole): the spokes' reader and apply roles admit the hub function's role and
// the hub's kmsfix-break-glass only; kmsfix-break-glass admits the hub account's principals.
// A person of the hub account runs exactly the command the message shows (--role names the
// break-glass role, --audit-key the key) and the change is reverted early, byte-for-byte; the
// same person without --role, and a member account's administrator with it, are refused by
// the trust and nothing changes.
func TestRevertCommandInTheHub(t *testing.T) {
	const hubAcct, member, outsider, region, table = "999988887777", "111122224444", "555566667777", "eu-west-1", "kmsfix-hub-cli"
	const (
		hubRole     = "arn:aws:iam::" + hubAcct + ":role/kmsfix-hub-remediator"
		breakGlass  = "arn:aws:iam::" + hubAcct + ":role/kmsfix-break-glass"
		person      = "arn:aws:iam::" + hubAcct + ":user/alice"
		memberAdmin = "arn:aws:iam::" + member + ":role/admin"
	)
	ctx := context.Background()
	static := credentials.NewStaticCredentialsProvider("AKIDHUBPERSON", "secret", "")
	memberKMS := emulator.StartLocalKMS(t, emulator.LocalKMSOptions{Account: member, Region: region})
	hubKMSURL := emulator.LocalKMSEndpoint(t, hubAcct, region)
	dynURL := emulator.DynaliteEndpoint(t)
	stsFake := awsfake.NewSTS(t, hubAcct)
	stsFake.AddMember(member)
	stsFake.AddMember(hubAcct) // its break-glass role
	stsFake.KnowAs("AKIDHUBPERSON", hubAcct, person)
	stsFake.KnowAs("AKIDMEMBERADMIN", member, memberAdmin)
	stsFake.Trust(config.ReaderRoleName, hubRole, breakGlass)
	stsFake.Trust(config.ApplyRoleName, hubRole, breakGlass)
	stsFake.Trust(config.BreakGlassRoleName, "arn:aws:iam::"+hubAcct+":root")
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
	// The command the hub's messages show for this change, as the hub function builds it.
	hubCfg := config.Config{HubOrgID: "o-abcdefghij", RemediatorRoleARN: hubRole, TableName: table,
		AuditKeyARN: aws.ToString(mk.KeyMetadata.Arn)}
	shown := apply.SettingsFrom(hubCfg, region).RevertCommand(rec.ID)
	want := "kmsfix revert " + rec.ID + " --table " + table + " --region " + region + " --hub --role " + breakGlass +
		" --audit-key " + aws.ToString(mk.KeyMetadata.Arn)
	if shown != want {
		t.Fatalf("the message's revert command:\n%s\nwant\n%s", shown, want)
	}
	words := strings.Fields(shown) // every word plain (no quoting needed): the shell splits it so
	unchanged := func(why string) {
		t.Helper()
		got, err := memberKMS.Client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default")})
		if err != nil || aws.ToString(got.Policy) != after {
			t.Fatalf("%s: the key policy changed (%v)", why, err)
		}
		if r, err := store.Get(ctx, rec.ID); err != nil || r.Status != apply.StatusApplied {
			t.Fatalf("%s: the record %+v %v", why, r, err)
		}
	}

	// The person's own credentials: the spoke's reader role does not trust them.
	code, _, errs := cli("revert", rec.ID, "--table", table, "--hub")
	if code != 1 || !strings.Contains(errs, "arn:aws:iam::"+member+":role/kmsfix-reader") || !strings.Contains(errs, "AccessDenied") {
		t.Fatalf("revert --hub as the person: %d %s", code, errs)
	}
	unchanged("the person without the break-glass role")
	// A member account's administrator, with the message's command: the break-glass role
	// trusts the hub account only; and the spoke's roles do not trust it directly either.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDMEMBERADMIN")
	code, _, errs = cli(words[1:]...)
	if code != 1 || !strings.Contains(errs, "sts:AssumeRole "+breakGlass) || !strings.Contains(errs, "AccessDenied") {
		t.Fatalf("the message's command as a member account's administrator: %d %s", code, errs)
	}
	// (Its table and audit-key calls would be refused by their policies too; the fakes do not
	// model those, so only its refused AssumeRole is checked, below.)
	if code, _, errs = cli("revert", rec.ID, "--table", table, "--hub"); code != 1 {
		t.Fatalf("revert --hub as a member account's administrator: %d %s", code, errs)
	}
	unchanged("a member account's administrator")
	if n := len(stsFake.AssumedBy(breakGlass)) + len(stsFake.AssumedBy("arn:aws:iam::"+member+":role/kmsfix-apply")); n != 0 {
		t.Fatalf("roles were assumed for the refused callers: %d", n)
	}

	// The person, with exactly the message's command: reverted early, byte-for-byte.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDHUBPERSON")
	code, out, errs := cli(words[1:]...)
	if code != 0 || !strings.Contains(out, "change "+rec.ID+" reverted") || !strings.Contains(out, "byte-for-byte") {
		t.Fatalf("the message's revert command: %d\n%s%s", code, out, errs)
	}
	if got := stsFake.AssumedBy(breakGlass); len(got) != 1 || got[0] != person {
		t.Errorf("the break-glass role was assumed by %v, want the person once", got)
	}
	for _, r := range []string{"arn:aws:iam::" + member + ":role/kmsfix-apply", "arn:aws:iam::" + member + ":role/kmsfix-reader"} {
		if got := stsFake.AssumedBy(r); len(got) != 1 || got[0] != breakGlass {
			t.Errorf("%s was assumed by %v, want the break-glass role once", r, got)
		}
	}
	if bg := router.Ops(breakGlass); bg["GenerateMac"] == 0 || bg["VerifyMac"] == 0 || bg["PutKeyPolicy"]+bg["GetKeyPolicy"] != 0 {
		t.Errorf("the break-glass role's own calls: %v (it seals the records; the spoke's roles touch the key)", bg)
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
	code, _, errs = cli("revert", lost.ID, "--table", table, "--hub", "--role", breakGlass)
	if code != 1 || !strings.Contains(errs, "arn:aws:iam::"+outsider+":role/kmsfix-") {
		t.Fatalf("revert --hub in an account without roles: %d %s", code, errs)
	}
	if r, err := store.Get(ctx, lost.ID); err != nil || r.Status != apply.StatusApplied {
		t.Errorf("the record of the unreachable account: %+v %v", r, err)
	}
}
