package cloudtrail

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// baseRecord returns the bare CloudTrail record of testdata/envelope-decrypt-role.json as a
// map, for tests that change one part of a realistic record.
func baseRecord(t testing.TB) map[string]any {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(readTestdata(t, "envelope-decrypt-role.json"), &env); err != nil {
		t.Fatal(err)
	}
	return env["detail"].(map[string]any)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustDenial parses raw and fails unless it is a Denial.
func mustDenial(t *testing.T, raw []byte) *Denial {
	t.Helper()
	it, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if it.Denial == nil {
		t.Fatalf("Parse: ignored (%s), want a denial", it.Ignored)
	}
	return it.Denial
}

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file string
		want Denial // Record, Message.Text and EncryptionContext are checked apart
	}{
		{
			file: "envelope-decrypt-role.json",
			want: Denial{
				EventID: "9bbaf034-90ca-4c86-ab61-7203230f9eb4", EventTime: "2025-05-01T09:03:12Z", EventName: "Decrypt",
				Region: "us-east-1", RecipientAccount: "111122223333", ErrorCode: "AccessDenied",
				Message: Message{Kind: MsgNoIdentityAllow, PolicyType: PolicyIdentity, PolicyPhrase: "identity-based policy",
					Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
				Identity: Identity{Type: "AssumedRole", Kind: KindRole, SessionARN: testSession,
					PrincipalARN: "arn:aws:iam::111122223333:role/data/etl-reader", Account: "111122223333", Editable: true,
					PrincipalID: "AROAOURCVMIYWZ5MJ6T3A:etl-run-42", Name: "etl-reader"},
				KeyARN: testKey, KeyAccount: "111122223333", KeyRegion: "us-east-1", Partition: "aws",
				ContextKey: S3ContextKey, ContextARN: "arn:aws:s3:::amzn-s3-demo-bucket/exports/2025/04/orders.parquet",
				Bucket: "amzn-s3-demo-bucket", Object: "exports/2025/04/orders.parquet",
				InvokedBy: "AWS Internal", Actions: []string{"kms:Decrypt"},
			},
		},
		{
			file: "bare-generatedatakey-user.json",
			want: Denial{
				EventID: "7d853b24-80a5-48c1-8a11-feb8f416e69b", EventTime: "2024-11-12T15:20:45Z", EventName: "GenerateDataKey",
				Region: "eu-west-1", RecipientAccount: "444455556666", ErrorCode: "AccessDenied",
				Message: Message{Kind: MsgNoResourceAllow, PolicyType: PolicyResource, PolicyPhrase: "resource-based policy",
					Caller: "arn:aws:iam::444455556666:user/uploaders/report-uploader", Action: "kms:GenerateDataKey",
					Resource: "arn:aws:kms:eu-west-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321"},
				Identity: Identity{Type: "IAMUser", Kind: KindUser, SessionARN: "arn:aws:iam::444455556666:user/uploaders/report-uploader",
					PrincipalARN: "arn:aws:iam::444455556666:user/uploaders/report-uploader", Account: "444455556666", Editable: true,
					PrincipalID: "AIDAFCXEQVH2O7GIBWBYQ", Name: "report-uploader"},
				KeyARN:     "arn:aws:kms:eu-west-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321",
				KeyAccount: "444455556666", KeyRegion: "eu-west-1", Partition: "aws",
				ContextKey: S3ContextKey, ContextARN: "arn:aws:s3:::amzn-s3-demo-reports/uploads/weekly report.pdf",
				Bucket: "amzn-s3-demo-reports", Object: "uploads/weekly report.pdf",
				InvokedBy: "AWS Internal", Actions: []string{"kms:GenerateDataKey"},
			},
		},
		{
			file: "envelope-cross-account-bucketkey.json",
			want: Denial{
				EventID: "14c5e97d-9791-41e0-b0ad-fca20be076cc", EventTime: "2025-02-10T08:00:30Z", EventName: "Decrypt",
				Region: "us-west-2", RecipientAccount: "777788889999", ErrorCode: "AccessDenied",
				Message: Message{Kind: MsgAmbiguous, Caller: "arn:aws:sts::777788889999:assumed-role/consumer/consumer-job", Action: "kms:Decrypt"},
				Identity: Identity{Type: "AssumedRole", Kind: KindRole, SessionARN: "arn:aws:sts::777788889999:assumed-role/consumer/consumer-job",
					PrincipalARN: "arn:aws:iam::777788889999:role/data/consumer", Account: "777788889999", Editable: true,
					PrincipalID: "AROAWB6QWWJME7BR32AVM:consumer-job", Name: "consumer"},
				KeyARN:     "arn:aws:kms:us-west-2:222233334444:key/abcd1234-ab12-cd34-ef56-abcdef123456",
				KeyAccount: "222233334444", KeyRegion: "us-west-2", Partition: "aws",
				ContextKey: S3ContextKey, ContextARN: "arn:aws:s3:::amzn-s3-demo-shared", Bucket: "amzn-s3-demo-shared", BucketKey: true,
				InvokedBy: "AWS Internal", Actions: []string{"kms:Decrypt"},
			},
		},
		{
			file: "bare-disabled-key.json",
			want: Denial{
				EventID: "9952ada2-c9eb-4c5d-a888-2c4b9f08e1d9", EventTime: "2025-03-03T12:00:07Z", EventName: "GenerateDataKey",
				Region: "ap-southeast-1", RecipientAccount: "123456789012", ErrorCode: "DisabledException",
				Message: Message{Kind: MsgDisabled, State: "Disabled", Resource: "arn:aws:kms:ap-southeast-1:123456789012:key/11112222-3333-4444-5555-666677778888"},
				Identity: Identity{Type: "AssumedRole", Kind: KindRole, SessionARN: "arn:aws:sts::123456789012:assumed-role/ingest-writer/ingest-writer",
					PrincipalARN: "arn:aws:iam::123456789012:role/service-role/ingest-writer", Account: "123456789012", Editable: true,
					PrincipalID: "AROAXB7CITUCO437YVUXP:ingest-writer", Name: "ingest-writer"},
				KeyARN:     "arn:aws:kms:ap-southeast-1:123456789012:key/11112222-3333-4444-5555-666677778888",
				KeyAccount: "123456789012", KeyRegion: "ap-southeast-1", Partition: "aws",
				ContextKey: S3ContextKey, ContextARN: "arn:aws:s3:::amzn-s3-demo-ingest/incoming/batch-17.json", Bucket: "amzn-s3-demo-ingest", Object: "incoming/batch-17.json",
				InvokedBy: "AWS Internal", Actions: []string{"kms:GenerateDataKey"},
			},
		},
		{
			file: "bare-sso-scp-deny.json",
			want: Denial{
				EventID: "3e1d6a9c-2b7f-4c55-9a41-6f0c2d8e7b13", EventTime: "2025-05-01T09:03:12Z", EventName: "Decrypt",
				Region: "us-east-1", RecipientAccount: "111122223333", ErrorCode: "AccessDenied",
				Message: Message{Kind: MsgExplicitDeny, PolicyType: PolicySCP, PolicyPhrase: "service control policy",
					Caller: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataAnalyst_0123456789abcdef/jane@example.com",
					Action: "kms:Decrypt", Resource: testKey},
				Identity: Identity{Type: "AssumedRole", Kind: KindSSORole,
					SessionARN:   "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataAnalyst_0123456789abcdef/jane@example.com",
					PrincipalARN: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_DataAnalyst_0123456789abcdef",
					Account:      "111122223333", NotEditable: whySSO,
					PrincipalID: "AROAQXJ7EXAMPLE6SSO:jane@example.com", Name: "AWSReservedSSO_DataAnalyst_0123456789abcdef"},
				KeyARN: testKey, KeyAccount: "111122223333", KeyRegion: "us-east-1", Partition: "aws",
				ContextKey: S3ContextKey, ContextARN: "arn:aws:s3:::amzn-s3-demo-bucket/exports/2025/04/orders.parquet",
				Bucket: "amzn-s3-demo-bucket", Object: "exports/2025/04/orders.parquet",
				InvokedBy: "AWS Internal", Actions: []string{"kms:Decrypt"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readTestdata(t, tt.file)
			it, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if it.Denial == nil || it.Ignored != "" {
				t.Fatalf("got ignored %q, want a denial", it.Ignored)
			}
			if it.EventID != tt.want.EventID {
				t.Errorf("Item.EventID = %q, want %q", it.EventID, tt.want.EventID)
			}
			got := *it.Denial
			checkRecord(t, raw, got.Record)
			if got.Message.Text == "" {
				t.Error("Message.Text is empty")
			}
			if got.EncryptionContext["aws:s3:arn"] != tt.want.ContextARN {
				t.Errorf("EncryptionContext = %v", got.EncryptionContext)
			}
			got.Record, got.Message.Text, got.EncryptionContext = nil, "", nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Denial\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// checkRecord asserts that rec is the CloudTrail record inside raw (the detail of an envelope).
func checkRecord(t *testing.T, raw, rec []byte) {
	t.Helper()
	var outer map[string]any
	if err := json.Unmarshal(raw, &outer); err != nil {
		t.Fatal(err)
	}
	if d, ok := outer["detail"]; ok {
		outer = d.(map[string]any)
	}
	var got map[string]any
	if err := json.Unmarshal(rec, &got); err != nil {
		t.Fatalf("Record is not JSON: %v", err)
	}
	if !reflect.DeepEqual(got, outer) {
		t.Errorf("Record is not the CloudTrail record:\n%s", rec)
	}
}

// TestParseRecordIsCopied: Parse must not keep the caller's buffer.
func TestParseRecordIsCopied(t *testing.T) {
	raw := readTestdata(t, "bare-generatedatakey-user.json")
	d := mustDenial(t, raw)
	want := string(d.Record)
	for i := range raw {
		raw[i] = ' '
	}
	if string(d.Record) != want {
		t.Error("Denial.Record aliases the input buffer")
	}
}

func TestParseIdentity(t *testing.T) {
	roleSession := map[string]any{
		"type": "AssumedRole", "principalId": "AROAOURCVMIYWZ5MJ6T3A:etl-run-42",
		"arn": testSession, "accountId": "111122223333", "invokedBy": "AWS Internal",
	}
	with := func(base map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	issuer := func(typ, arn, name string) map[string]any {
		return map[string]any{"sessionIssuer": map[string]any{
			"type": typ, "principalId": "AROAOURCVMIYWZ5MJ6T3A", "arn": arn, "accountId": "111122223333", "userName": name}}
	}
	tests := []struct {
		name     string
		identity map[string]any // nil: no userIdentity
		want     Identity       // Type, SessionARN and PrincipalID are not compared
	}{
		{
			name:     "IAM user with a path",
			identity: map[string]any{"type": "IAMUser", "principalId": "AIDAFCXEQVH2O7GIBWBYQ", "arn": "arn:aws:iam::111122223333:user/ops/alice", "accountId": "111122223333", "userName": "alice"},
			want:     Identity{Kind: KindUser, PrincipalARN: "arn:aws:iam::111122223333:user/ops/alice", Account: "111122223333", Editable: true, Name: "alice"},
		},
		{
			name:     "role with its path from sessionIssuer",
			identity: with(roleSession, "sessionContext", issuer("Role", "arn:aws:iam::111122223333:role/data/team-a/etl-reader", "etl-reader")),
			want:     Identity{Kind: KindRole, PrincipalARN: "arn:aws:iam::111122223333:role/data/team-a/etl-reader", Account: "111122223333", Editable: true, Name: "etl-reader"},
		},
		{
			name:     "role without sessionIssuer: rebuilt, path unknown",
			identity: roleSession,
			want: Identity{Kind: KindRole, PrincipalARN: "arn:aws:iam::111122223333:role/etl-reader", Account: "111122223333", Editable: true,
				Name: "etl-reader", PathUnknown: true, Note: notePath},
		},
		{
			name: "aws-cn role without sessionIssuer",
			identity: map[string]any{"type": "AssumedRole", "principalId": "AROAOURCVMIYWZ5MJ6T3A:s",
				"arn": "arn:aws-cn:sts::111122223333:assumed-role/reader/s", "accountId": "111122223333"},
			want: Identity{Kind: KindRole, PrincipalARN: "arn:aws-cn:iam::111122223333:role/reader", Account: "111122223333", Editable: true,
				Name: "reader", PathUnknown: true, Note: notePath},
		},
		{
			name: "aws-us-gov role",
			identity: with(roleSession, "arn", "arn:aws-us-gov:sts::111122223333:assumed-role/reader/s",
				"sessionContext", issuer("Role", "arn:aws-us-gov:iam::111122223333:role/apps/reader", "reader")),
			want: Identity{Kind: KindRole, PrincipalARN: "arn:aws-us-gov:iam::111122223333:role/apps/reader", Account: "111122223333", Editable: true, Name: "reader"},
		},
		{
			name: "IAM Identity Center role, home Region us-east-1 (no Region segment)",
			identity: with(roleSession, "arn", "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718/bob",
				"sessionContext", issuer("Role", "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718", "AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718")),
			want: Identity{Kind: KindSSORole, PrincipalARN: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718",
				Account: "111122223333", NotEditable: whySSO, Name: "AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718"},
		},
		{
			name:     "IAM Identity Center role without sessionIssuer",
			identity: with(roleSession, "arn", "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718/bob"),
			want: Identity{Kind: KindSSORole, PrincipalARN: "arn:aws:iam::111122223333:role/AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718",
				Account: "111122223333", NotEditable: whySSO, Name: "AWSReservedSSO_ReadOnly_a1b2c3d4e5f60718", PathUnknown: true, Note: notePath},
		},
		{
			name: "service-linked role",
			identity: with(roleSession, "arn", "arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForAmazonMacie/macie-job",
				"sessionContext", issuer("Role", "arn:aws:iam::111122223333:role/aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie", "AWSServiceRoleForAmazonMacie")),
			want: Identity{Kind: KindServiceLinkedRole, PrincipalARN: "arn:aws:iam::111122223333:role/aws-service-role/macie.amazonaws.com/AWSServiceRoleForAmazonMacie",
				Account: "111122223333", NotEditable: whySLR, Name: "AWSServiceRoleForAmazonMacie"},
		},
		{
			name: "SAML session arrives as AssumedRole",
			identity: with(roleSession, "principalId", "AROAOURCVMIYWZ5MJ6T3A:jane@corp.example.com",
				"arn", "arn:aws:sts::111122223333:assumed-role/ADFS-DataReaders/jane@corp.example.com",
				"sessionContext", issuer("Role", "arn:aws:iam::111122223333:role/federation/ADFS-DataReaders", "ADFS-DataReaders")),
			want: Identity{Kind: KindRole, PrincipalARN: "arn:aws:iam::111122223333:role/federation/ADFS-DataReaders", Account: "111122223333", Editable: true, Name: "ADFS-DataReaders"},
		},
		{
			name: "WebIdentityUser with a role sessionIssuer",
			identity: map[string]any{"type": "WebIdentityUser", "principalId": "accounts.google.com:1234567890", "userName": "1234567890",
				"identityProvider": "accounts.google.com",
				"sessionContext":   issuer("Role", "arn:aws:iam::111122223333:role/web/app-users", "app-users")},
			want: Identity{Kind: KindRole, PrincipalARN: "arn:aws:iam::111122223333:role/web/app-users", Account: "111122223333", Editable: true, Name: "app-users"},
		},
		{
			name:     "SAMLUser without a role",
			identity: map[string]any{"type": "SAMLUser", "principalId": "SomeProvider:jane", "userName": "jane", "identityProvider": "SomeProvider"},
			want:     Identity{Kind: KindUnknown, NotEditable: whyUnknown},
		},
		{
			name:     "root",
			identity: map[string]any{"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"},
			want:     Identity{Kind: KindRoot, Account: "111122223333", NotEditable: whyRoot},
		},
		{
			name: "federated user (GetFederationToken)",
			identity: map[string]any{"type": "FederatedUser", "principalId": "111122223333:report-bot",
				"arn": "arn:aws:sts::111122223333:federated-user/report-bot", "accountId": "111122223333",
				"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "IAMUser", "principalId": "AIDAFCXEQVH2O7GIBWBYQ",
					"arn": "arn:aws:iam::111122223333:user/bots/report-bot", "accountId": "111122223333", "userName": "report-bot"}}},
			want: Identity{Kind: KindFederatedUser, PrincipalARN: "arn:aws:iam::111122223333:user/bots/report-bot", Account: "111122223333",
				Editable: true, Name: "report-bot", Note: noteFederated},
		},
		{
			name: "federated user of the root user",
			identity: map[string]any{"type": "FederatedUser", "arn": "arn:aws:sts::111122223333:federated-user/tmp", "accountId": "111122223333",
				"sessionContext": map[string]any{"sessionIssuer": map[string]any{"type": "Root", "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"}}},
			want: Identity{Kind: KindFederatedUser, Account: "111122223333", NotEditable: whyRoot, Note: noteFederated},
		},
		{
			name:     "federated user without sessionIssuer",
			identity: map[string]any{"type": "FederatedUser", "arn": "arn:aws:sts::111122223333:federated-user/tmp", "accountId": "111122223333"},
			want:     Identity{Kind: KindFederatedUser, Account: "111122223333", NotEditable: whyNoIssuer, Note: noteFederated},
		},
		{
			name:     "another account (key owner's copy)",
			identity: map[string]any{"type": "AWSAccount", "principalId": "AROAWB6QWWJME7BR32AVM:consumer-job", "accountId": "777788889999"},
			want:     Identity{Kind: KindAWSAccount, Account: "777788889999", NotEditable: whyAWSAccount},
		},
		{
			name:     "unknown without ARN",
			identity: map[string]any{"type": "Unknown", "principalId": "AROAWB6QWWJME7BR32AVM:job", "accountId": "777788889999"},
			want:     Identity{Kind: KindUnknown, Account: "777788889999", NotEditable: whyUnknown},
		},
		{
			name:     "unknown with a session ARN",
			identity: map[string]any{"type": "Unknown", "arn": "arn:aws:sts::777788889999:assumed-role/consumer/job", "accountId": "777788889999"},
			want: Identity{Kind: KindRole, PrincipalARN: "arn:aws:iam::777788889999:role/consumer", Account: "777788889999", Editable: true,
				Name: "consumer", PathUnknown: true, Note: notePath},
		},
		{
			name:     "anonymous",
			identity: map[string]any{"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"},
			want:     Identity{Kind: KindAnonymous, Account: "ANONYMOUS_PRINCIPAL", NotEditable: whyAnonymous},
		},
		{
			name:     "anonymous principal id",
			identity: map[string]any{"type": "Unknown", "principalId": "anonymous"},
			want:     Identity{Kind: KindAnonymous, NotEditable: whyAnonymous},
		},
		{
			name: "no userIdentity",
			want: Identity{Kind: KindUnknown, NotEditable: whyUnknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := baseRecord(t)
			if tt.identity == nil {
				delete(rec, "userIdentity")
			} else {
				rec["userIdentity"] = tt.identity
			}
			d := mustDenial(t, mustJSON(t, rec))
			got := d.Identity
			if tt.identity != nil {
				if got.Type != tt.identity["type"] {
					t.Errorf("Type = %q, want %q", got.Type, tt.identity["type"])
				}
				arn, _ := tt.identity["arn"].(string)
				pid, _ := tt.identity["principalId"].(string)
				if got.SessionARN != arn || got.PrincipalID != pid {
					t.Errorf("SessionARN, PrincipalID = %q, %q; want %q, %q", got.SessionARN, got.PrincipalID, arn, pid)
				}
			}
			got.Type, got.SessionARN, got.PrincipalID = "", "", ""
			if got != tt.want {
				t.Errorf("Identity\n got %+v\nwant %+v", got, tt.want)
			}
			if got.Editable == (got.NotEditable != "") {
				t.Errorf("Editable = %v but NotEditable = %q", got.Editable, got.NotEditable)
			}
		})
	}
}

// TestParseAnonymousFromMessage: an Unknown identity whose message says "User: anonymous".
func TestParseAnonymousFromMessage(t *testing.T) {
	rec := baseRecord(t)
	rec["userIdentity"] = map[string]any{"type": "Unknown", "invokedBy": "AWS Internal"}
	rec["errorMessage"] = "User: anonymous is not authorized to perform: kms:Decrypt on resource: " + testKey + " because no resource-based policy allows the kms:Decrypt action"
	if got := mustDenial(t, mustJSON(t, rec)).Identity; got.Kind != KindAnonymous || got.Editable {
		t.Errorf("Identity = %+v, want anonymous, not editable", got)
	}
}

func TestParseKeySources(t *testing.T) {
	const alias = "arn:aws:kms:us-east-1:111122223333:alias/app-data"
	other := "arn:aws:kms:eu-central-1:999988887777:key/mrk-1234abcd12ab34cd56ef1234567890ab"
	tests := []struct {
		name      string
		resources any    // nil: field removed
		keyID     string // "": none
		message   string
		wantARN   string
		wantRef   string
	}{
		{name: "resources first", resources: []any{map[string]any{"type": "AWS::KMS::Key", "ARN": testKey, "accountId": "111122223333"}},
			keyID: other, wantARN: testKey},
		{name: "resources without type", resources: []any{map[string]any{"ARN": testKey}}, wantARN: testKey},
		{name: "resources skip non-key entries", resources: []any{map[string]any{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::b"}, map[string]any{"type": "AWS::KMS::Key", "ARN": other}},
			wantARN: other},
		{name: "keyId key ARN", keyID: other, wantARN: other},
		{name: "keyId alias ARN: kept as KeyRef, ARN from the message", keyID: alias,
			message: "User: " + testSession + " is not authorized to perform: kms:Decrypt on resource: " + testKey + " because no identity-based policy allows the kms:Decrypt action",
			wantARN: testKey, wantRef: alias},
		{name: "keyId bare id", keyID: "1234abcd-12ab-34cd-56ef-1234567890ab", wantRef: "1234abcd-12ab-34cd-56ef-1234567890ab",
			message: "User: " + testSession + " is not authorized to perform: kms:Decrypt on this resource because no identity-based policy allows the kms:Decrypt action"},
		{name: "key from the message only", wantARN: testKey},
		{name: "alias named by a not-found message", message: "Alias " + alias + " is not found.", wantRef: alias},
		{name: "nothing", message: "Access Denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := baseRecord(t)
			delete(rec, "resources")
			if tt.resources != nil {
				rec["resources"] = tt.resources
			}
			rp := rec["requestParameters"].(map[string]any)
			if tt.keyID != "" {
				rp["keyId"] = tt.keyID
			}
			if tt.message != "" {
				rec["errorMessage"] = tt.message
			}
			d := mustDenial(t, mustJSON(t, rec))
			if d.KeyARN != tt.wantARN || d.KeyRef != tt.wantRef {
				t.Errorf("KeyARN, KeyRef = %q, %q; want %q, %q", d.KeyARN, d.KeyRef, tt.wantARN, tt.wantRef)
			}
			wantAcct, wantRegion := "", ""
			if tt.wantARN != "" {
				p := strings.Split(tt.wantARN, ":")
				wantAcct, wantRegion = p[4], p[3]
			}
			if d.KeyAccount != wantAcct || d.KeyRegion != wantRegion {
				t.Errorf("KeyAccount, KeyRegion = %q, %q; want %q, %q", d.KeyAccount, d.KeyRegion, wantAcct, wantRegion)
			}
		})
	}
}

func TestParseActionsAndContext(t *testing.T) {
	tests := []struct {
		event, ctx            string
		action                string
		bucket, object        string
		bucketKey             bool
		partition, wantPartOf string
	}{
		{event: "Decrypt", ctx: "arn:aws:s3:::amzn-s3-demo-b1/a/b/c.txt", action: "kms:Decrypt", bucket: "amzn-s3-demo-b1", object: "a/b/c.txt"},
		{event: "GenerateDataKey", ctx: "arn:aws:s3:::amzn-s3-demo-b1", action: "kms:GenerateDataKey", bucket: "amzn-s3-demo-b1", bucketKey: true},
		{event: "GenerateDataKeyWithoutPlaintext", ctx: "arn:aws:s3:::amzn-s3-demo-b1/k", action: "kms:GenerateDataKeyWithoutPlaintext", bucket: "amzn-s3-demo-b1", object: "k"},
		{event: "GenerateDataKeyPair", ctx: "arn:aws:s3:::amzn-s3-demo-b1/k", action: "kms:GenerateDataKeyPair", bucket: "amzn-s3-demo-b1", object: "k"},
		{event: "GenerateDataKeyPairWithoutPlaintext", ctx: "arn:aws:s3:::amzn-s3-demo-b1/k", action: "kms:GenerateDataKeyPairWithoutPlaintext", bucket: "amzn-s3-demo-b1", object: "k"},
		{event: "Encrypt", ctx: "arn:aws:s3:::replica/k", action: "kms:Encrypt", bucket: "replica", object: "k"},
		{event: "Decrypt", ctx: "arn:aws:s3:::amzn-s3-demo-b1/key:with:colons/and/", action: "kms:Decrypt", bucket: "amzn-s3-demo-b1", object: "key:with:colons/and/"},
		{event: "Decrypt", ctx: "not-an-arn", action: "kms:Decrypt"},
	}
	for _, tt := range tests {
		rec := baseRecord(t)
		rec["eventName"] = tt.event
		rec["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:s3:arn": tt.ctx}
		d := mustDenial(t, mustJSON(t, rec))
		if !reflect.DeepEqual(d.Actions, []string{tt.action}) || d.EventName != tt.event {
			t.Errorf("%s: Actions = %v, EventName = %q", tt.event, d.Actions, d.EventName)
		}
		wantCtx := tt.ctx
		if tt.bucket == "" {
			wantCtx = "" // a context that names no valid bucket is not kept
			if d.Doubt == "" {
				t.Errorf("%s %s: no Doubt for a context that names no bucket", tt.event, tt.ctx)
			}
		}
		if d.ContextARN != wantCtx || d.Bucket != tt.bucket || d.Object != tt.object || d.BucketKey != tt.bucketKey {
			t.Errorf("%s %s: ContextARN, Bucket, Object, BucketKey = %q, %q, %q, %v", tt.event, tt.ctx, d.ContextARN, d.Bucket, d.Object, d.BucketKey)
		}
	}
}

func TestParseIgnored(t *testing.T) {
	tests := []struct {
		name   string
		raw    func(t *testing.T) []byte
		reason string // substring of Ignored
		id     string
	}{
		{"AWSService", fileRaw("bare-awsservice-cloudtrail.json"), "cloudtrail.amazonaws.com acting as itself", "b7d0c1e2-5f43-4a8e-9c21-3d6e7f8a9b0c"},
		{"not KMS", edit(func(r map[string]any) { r["eventSource"] = "s3.amazonaws.com"; r["eventName"] = "GetObject" }), "not a KMS call (eventSource s3.amazonaws.com)", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"ReEncrypt", edit(func(r map[string]any) { r["eventName"] = "ReEncrypt" }), "KMS ReEncrypt is not a data-key call", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"CreateGrant", edit(func(r map[string]any) { r["eventName"] = "CreateGrant" }), "KMS CreateGrant is not a data-key call", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"succeeded", edit(func(r map[string]any) { delete(r, "errorCode"); delete(r, "errorMessage") }), "succeeded (no errorCode)", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"other failure", edit(func(r map[string]any) { r["errorCode"] = "InvalidCiphertextException" }), "errorCode InvalidCiphertextException is not", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"no S3 context", edit(func(r map[string]any) {
			r["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:lambda:FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:f"}
		}), "no aws:s3:arn or aws:s3express:arn encryption context", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"requestParameters null", edit(func(r map[string]any) { r["requestParameters"] = nil }), "no aws:s3:arn or aws:s3express:arn encryption context", "9bbaf034-90ca-4c86-ab61-7203230f9eb4"},
		{"other EventBridge event", raw(`{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"KMS CMK Rotation","source":"aws.kms","account":"111122223333","time":"2025-05-01T00:00:00Z","region":"us-east-1","resources":["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"],"detail":{"key-id":"1234abcd-12ab-34cd-56ef-1234567890ab"}}`),
			`EventBridge event "KMS CMK Rotation" from "aws.kms" is not a CloudTrail API call`, "6a7e8feb-b491-4cf7-a9f1-bf3703467718"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := Parse(tt.raw(t))
			if err != nil {
				t.Fatal(err)
			}
			if it.Denial != nil || !strings.Contains(it.Ignored, tt.reason) {
				t.Errorf("Ignored = %q (denial %v), want it to mention %q", it.Ignored, it.Denial != nil, tt.reason)
			}
			if it.EventID != tt.id {
				t.Errorf("EventID = %q, want %q", it.EventID, tt.id)
			}
		})
	}
}

func TestParseAcceptedErrorCodes(t *testing.T) {
	for _, code := range []string{"AccessDenied", "AccessDeniedException", "DisabledException", "KMS.DisabledException",
		"KMSInvalidStateException", "KMS.KMSInvalidStateException", "NotFoundException", "KMS.NotFoundException"} {
		rec := baseRecord(t)
		rec["errorCode"] = code
		if d := mustDenial(t, mustJSON(t, rec)); d.ErrorCode != code {
			t.Errorf("ErrorCode = %q, want %q as logged", d.ErrorCode, code)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "not a JSON object"},
		{"array", `[{"eventSource":"kms.amazonaws.com"}]`, "not a JSON object"},
		{"number", `42`, "not a JSON object"},
		{"string", `"User: x"`, "not a JSON object"},
		{"truncated", `{"eventVersion":"1.11","eventSource":"kms.amazonaws.com","eventName":"Decr`, "not a CloudTrail record: invalid JSON at byte"},
		{"no eventName", `{"eventSource":"kms.amazonaws.com","eventID":"x"}`, "no eventName"},
		{"log file", `{"Records":[]}`, "ReadAll"},
		{"lookup-events output", `{"Events":[]}`, "ReadAll"},
		{"wrong type", `{"eventSource":"kms.amazonaws.com","eventName":5}`, "not a CloudTrail record: eventName is a JSON number, want a string"},
		{"wrong nested type", `{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","errorCode":"AccessDenied","userIdentity":{"sessionContext":{"sessionIssuer":{"arn":true}}}}`,
			"userIdentity.sessionContext.sessionIssuer.arn is a JSON bool, want a string"},
		{"wrong resources", `{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","errorCode":"AccessDenied","resources":[1]}`, "resources is a JSON number, want an object"},
		{"envelope without id or record", `{"detail-type":"KMS CMK Rotation","detail":{}}`, "no eventSource or eventName"},
		{"API call envelope without detail", `{"detail-type":"AWS API Call via CloudTrail","source":"aws.kms","detail":null}`, "without a CloudTrail record"},
		{"API call envelope with empty detail", `{"detail-type":"AWS API Call via CloudTrail","source":"aws.kms","detail":{}}`, "no eventSource or eventName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %+v, %v; want an error mentioning %q", tt.in, it, err, tt.want)
			}
		})
	}
}

// TestParseNotAPICalls: what is not an API-call record is ignored with the reason, not an
// error: a scan of a trail bucket meets Insights events and other services' records whose
// fields have other types than a KMS record's.
func TestParseNotAPICalls(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty object", `{}`, noEventSource},
		{"other JSON", `{"hello":"world"}`, noEventSource},
		{"Insights event", `{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:00Z","awsRegion":"us-east-1","eventID":"i-1",` +
			`"eventType":"AwsCloudTrailInsight","insightDetails":{"state":"Start","eventSource":"kms.amazonaws.com","eventName":"Decrypt"},"eventCategory":"Insight"}`, noEventSource},
		{"digest file", `{"awsAccountId":"111122223333","digestStartTime":"2026-01-01T00:00:00Z","logFiles":[]}`, noEventSource},
		{"KMS success, odd field types", `{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventID":"k-1","userIdentity":"x","resources":7}`,
			"KMS Decrypt succeeded (no errorCode)"},
		{"other service, odd field types", `{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventID":"e-1","userIdentity":"x","resources":{"a":1},"requestParameters":[1]}`,
			"not a KMS call (eventSource ec2.amazonaws.com)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := Parse([]byte(tt.in))
			if err != nil || it.Ignored != tt.want {
				t.Fatalf("Parse = %+v, %v; want ignored: %s", it, err, tt.want)
			}
			items, err := ReadAll(strings.NewReader(tt.in), "f.json")
			if err != nil || len(items) != 1 || items[0].Ignored != tt.want {
				t.Fatalf("ReadAll = %+v, %v; want ignored: %s", items, err, tt.want)
			}
		})
	}
}

// TestParseNoEventID: CloudTrail 1.0 records have no eventID; they are read all the same.
func TestParseNoEventID(t *testing.T) {
	rec := baseRecord(t)
	delete(rec, "eventID")
	if d := mustDenial(t, mustJSON(t, rec)); d.EventID != "" {
		t.Errorf("EventID = %q, want none", d.EventID)
	}
}

func fileRaw(name string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return readTestdata(t, name) }
}

func raw(s string) func(t *testing.T) []byte {
	return func(*testing.T) []byte { return []byte(s) }
}

func edit(f func(map[string]any)) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		rec := baseRecord(t)
		f(rec)
		return mustJSON(t, rec)
	}
}

// TestParseEnvelopeAndBareAgree: the same record gives the same Denial either way.
func TestParseEnvelopeAndBareAgree(t *testing.T) {
	env := readTestdata(t, "envelope-decrypt-role.json")
	bare := mustJSON(t, baseRecord(t))
	a, b := mustDenial(t, env), mustDenial(t, bare)
	a.Record, b.Record = nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Errorf("envelope and bare record differ:\n%+v\n%+v", a, b)
	}
	// Record of the envelope is the detail, byte for byte.
	d := mustDenial(t, env)
	var e struct{ Detail json.RawMessage }
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Record, e.Detail) {
		t.Error("envelope Record is not the detail bytes")
	}
}
