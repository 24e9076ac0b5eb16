package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
)

// Realistic reports, one per diagnosis code, written the way the engine fills them. The
// renderer must not depend on the engine, so they are built here.
const (
	acctApp   = "111122223333"
	acctData  = "444455556666"
	roleARN   = "arn:aws:iam::111122223333:role/app/reader"
	sessARN   = "arn:aws:sts::111122223333:assumed-role/reader/i-0a1b2c3d4e5f67890"
	keyARN    = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	xKeyARN   = "arn:aws:kms:us-east-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321"
	awsKeyARN = "arn:aws:kms:us-east-1:444455556666:key/5e6f7a8b-1c2d-3e4f-5a6b-7c8d9e0f1a2b"
	bucket    = "app-data-prod"
	object    = "reports/2026/11/28/summary.parquet"
)

func mustDoc(t testing.TB, s string) *policy.Document {
	t.Helper()
	d, err := policy.Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	return d
}

func mustStmt(t testing.TB, s string) *policy.Statement {
	t.Helper()
	var st policy.Statement
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatalf("parse statement: %v", err)
	}
	return &st
}

func identityPolicy(key, region, bkt string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"KmsfixDecryptAppData","Effect":"Allow",
"Action":"kms:Decrypt","Resource":%q,"Condition":{"StringEquals":{"kms:ViaService":"s3.%s.amazonaws.com"},
"StringLike":{"kms:EncryptionContext:aws:s3:arn":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}}}]}`, key, region, bkt, bkt)
}

func base(code finding.Code) finding.Report {
	return finding.Report{
		EventID:          "3f8c1c9e-6b0a-4d8e-9e52-6f1b2a7c9d10",
		Diagnosis:        code,
		Principal:        roleARN,
		PrincipalAccount: acctApp,
		Key:              keyARN,
		KeyAccount:       acctApp,
		Region:           "us-east-1",
		Bucket:           bucket,
		Object:           object,
		Actions:          []string{"kms:Decrypt"},
		Severity:         code.Severity(),
		EventTime:        "2026-11-28T09:14:07Z",
		EventName:        "Decrypt",
		ErrorCode:        "AccessDenied",
		SessionARN:       sessARN,
		PrincipalType:    "role",
		KeyAlias:         "alias/app-data",
	}
}

func putRolePolicy(name string) string {
	return "aws iam put-role-policy --role-name reader --policy-name " + name + " --policy-document file://" + name + ".json"
}

// sampleReports returns one report per diagnosis code.
func sampleReports(t testing.TB) map[finding.Code]finding.Report {
	t.Helper()
	out := map[finding.Code]finding.Report{}

	r := base(finding.IdentityPolicyMissing)
	r.Detail = "The key policy of alias/app-data delegates to account 111122223333, but no identity-based policy of role app/reader allows kms:Decrypt on the key."
	r.Patches = []finding.Patch{{
		Kind: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN, Name: "kmsfix-decrypt-app-data",
		Policy:   mustDoc(t, identityPolicy(keyARN, "us-east-1", bucket)),
		Commands: []string{putRolePolicy("kmsfix-decrypt-app-data")},
	}}
	r.AutoApply, r.Verified = true, true
	out[r.Diagnosis] = r

	r = base(finding.KeyPolicyMissing)
	r.Detail = "The key policy of alias/app-data has no statement for account 111122223333 (no account-root delegation) and does not name role app/reader."
	r.Patches = []finding.Patch{{
		Kind: finding.KindKeyPolicyStatement, Account: acctApp, Target: keyARN, Name: "KmsfixAppReaderDecrypt",
		Statement: mustStmt(t, `{"Sid":"KmsfixAppReaderDecrypt","Effect":"Allow","Principal":{"AWS":"`+roleARN+`"},
"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"},
"StringLike":{"kms:EncryptionContext:aws:s3:arn":["arn:aws:s3:::app-data-prod","arn:aws:s3:::app-data-prod/*"]}}}`),
		Commands: []string{
			"aws kms get-key-policy --key-id " + keyARN + " --policy-name default --query Policy --output text > key-policy.json",
			"# append the statement above to key-policy.json, then:",
			"aws kms put-key-policy --key-id " + keyARN + " --policy-name default --policy file://key-policy.json",
		},
	}}
	r.AutoApplyBlocked = "account 111122223333 is not a sandbox account"
	r.Verified = true
	out[r.Diagnosis] = r

	r = base(finding.CrossAccountAccessMissing)
	r.Key, r.KeyAccount, r.KeyAlias = xKeyARN, acctData, "alias/shared-data"
	r.Bucket, r.Object = "shared-data-lake", "exports/2026-11-28/part-00017.csv.gz"
	r.Detail = "Key alias/shared-data belongs to account 444455556666. Its key policy does not allow account 111122223333, and role app/reader has no identity policy for the key: both sides are needed."
	r.Patches = []finding.Patch{
		{
			Kind: finding.KindKeyPolicyStatement, Account: acctData, Target: xKeyARN, Name: "KmsfixAllow111122223333Decrypt",
			Statement: mustStmt(t, `{"Sid":"KmsfixAllow111122223333Decrypt","Effect":"Allow","Principal":{"AWS":"`+roleARN+`"},
"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"},
"StringLike":{"kms:EncryptionContext:aws:s3:arn":["arn:aws:s3:::shared-data-lake","arn:aws:s3:::shared-data-lake/*"]}}}`),
			Commands: []string{"aws kms put-key-policy --key-id " + xKeyARN + " --policy-name default --policy file://key-policy.json   # run in account 444455556666"},
		},
		{
			Kind: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN, Name: "kmsfix-decrypt-shared-data",
			Policy:   mustDoc(t, identityPolicy(xKeyARN, "us-east-1", "shared-data-lake")),
			Commands: []string{putRolePolicy("kmsfix-decrypt-shared-data")},
		},
	}
	r.AutoApplyBlocked = "the key-policy side is in account 444455556666, which this function does not manage"
	r.Verified = true
	out[r.Diagnosis] = r

	r = base(finding.AWSManagedKeyCrossAccount)
	r.Key, r.KeyAccount, r.KeyAlias = awsKeyARN, acctData, "alias/aws/s3"
	r.Bucket, r.Object = "partner-dropbox", "incoming/orders-2026-11-28.json"
	r.Detail = "The object is encrypted with the AWS managed key aws/s3 of account 444455556666. An AWS managed key cannot be used from another account, and its policy cannot be edited."
	r.Advice = []string{
		"Create a customer managed key in account 444455556666 whose policy allows account 111122223333.",
		"aws s3api put-bucket-encryption --bucket partner-dropbox --server-side-encryption-configuration '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"arn:aws:kms:us-east-1:444455556666:key/NEW-KEY-ID\"},\"BucketKeyEnabled\":true}]}'",
		"aws s3 cp s3://partner-dropbox/incoming/ s3://partner-dropbox/incoming/ --recursive --sse aws:kms --sse-kms-key-id arn:aws:kms:us-east-1:444455556666:key/NEW-KEY-ID",
	}
	out[r.Diagnosis] = r

	r = base(finding.ConditionMismatch)
	r.Object = ""
	r.Detail = "An identity policy allows kms:Decrypt on the key, but its condition kms:EncryptionContext:aws:s3:arn lists object ARNs while S3 Bucket Keys make the context the bucket ARN arn:aws:s3:::app-data-prod."
	r.Patches = []finding.Patch{{
		Kind: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN, Name: "kmsfix-decrypt-app-data",
		Policy:   mustDoc(t, identityPolicy(keyARN, "us-east-1", bucket)),
		Commands: []string{putRolePolicy("kmsfix-decrypt-app-data")},
	}}
	r.AutoApply, r.Verified = true, true
	out[r.Diagnosis] = r

	r = base(finding.ExplicitDenyKeyPolicy)
	r.Detail = "Statement \"DenyOutsideVpce\" of the key policy of alias/app-data denies kms:Decrypt unless aws:SourceVpce is vpce-0f1e2d3c; S3 calls KMS from outside your VPC endpoint."
	r.Escalate = "The administrators of key alias/app-data (account 111122223333): review statement DenyOutsideVpce; add a condition exempting kms:ViaService s3.us-east-1.amazonaws.com if S3 access is intended."
	out[r.Diagnosis] = r

	r = base(finding.ExplicitDenyIdentityPolicy)
	r.Detail = "Statement \"DenyKmsOutsideApp\" of the managed policy app-guardrails attached to role app/reader denies kms:Decrypt on keys without the tag team=app."
	out[r.Diagnosis] = r

	for _, c := range []struct {
		code   finding.Code
		detail string
	}{
		{finding.ExplicitDenySCP, "The error message says a service control policy explicitly denies kms:Decrypt for this principal."},
		{finding.ExplicitDenyRCP, "The error message says a resource control policy explicitly denies kms:Decrypt on this key."},
		{finding.ExplicitDenyPermissionsBoundary, "The error message says the permissions boundary of role app/reader explicitly denies kms:Decrypt."},
		{finding.ExplicitDenySessionPolicy, "The error message says the session policy of session reader/i-0a1b2c3d4e5f67890 explicitly denies kms:Decrypt."},
		{finding.ExplicitDenyVPCEndpointPolicy, "The error message says a VPC endpoint policy explicitly denies kms:Decrypt."},
		{finding.SCPDoesNotAllow, "The error message says no service control policy allows kms:Decrypt for account 111122223333."},
		{finding.BoundaryDoesNotAllow, "The error message says the permissions boundary of role app/reader does not allow kms:Decrypt."},
		{finding.SessionPolicyDoesNotAllow, "The error message says the session policy does not allow kms:Decrypt."},
		{finding.VPCEndpointPolicyDoesNotAllow, "The error message says the VPC endpoint policy does not allow kms:Decrypt."},
	} {
		r = base(c.code)
		r.Detail = c.detail
		if strings.HasSuffix(string(c.code), "does-not-allow") {
			r.Advice = []string{"The layer needs a statement like: {\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"" + keyARN + "\"}"}
		}
		out[r.Diagnosis] = r
	}

	r = base(finding.KeyDisabled)
	r.Detail = "Key alias/app-data is Disabled: every use of it fails until it is enabled."
	r.Advice = []string{"Check why the key was disabled (CloudTrail DisableKey) before enabling it.", "aws kms enable-key --key-id " + keyARN}
	out[r.Diagnosis] = r

	r = base(finding.KeyPendingDeletion)
	r.Detail = "Key alias/app-data is scheduled for deletion. When the waiting period ends, every object encrypted with it becomes unreadable for good."
	r.Advice = []string{"aws kms cancel-key-deletion --key-id " + keyARN, "aws kms enable-key --key-id " + keyARN}
	out[r.Diagnosis] = r

	r = base(finding.KeyUnavailable)
	r.Detail = "Key alias/app-data is in state PendingImport: its key material was never imported or has expired."
	r.Advice = []string{"Import the key material again (aws kms get-parameters-for-import, then aws kms import-key-material)."}
	out[r.Diagnosis] = r

	r = base(finding.KeyNotFound)
	r.KeyAlias = ""
	r.Key = "arn:aws:kms:us-east-1:111122223333:key/deadbeef-0000-4000-8000-000000000000"
	r.Detail = "The bucket's default encryption names key deadbeef-0000-4000-8000-000000000000, which does not exist in us-east-1 (deleted, or in another Region)."
	r.Advice = []string{"aws s3api get-bucket-encryption --bucket app-data-prod", "Point the bucket's default encryption at an existing key, or fix the key id the application passes."}
	out[r.Diagnosis] = r

	r = base(finding.UnsupportedPrincipal)
	r.Principal, r.PrincipalType, r.SessionARN = "", "anonymous", ""
	r.Detail = "The request was anonymous: no policy can grant kms:Decrypt to an anonymous caller."
	r.Advice = []string{"Sign the request with an IAM role or user, or serve the object through a presigned URL."}
	out[r.Diagnosis] = r

	r = base(finding.Undetermined)
	r.Detail = "The error message does not say which policy denied, and the key policy could not be read (AccessDenied on kms:GetKeyPolicy). The most likely fix is an identity policy."
	r.Unknown = []string{"key policy of " + keyARN + " (kms:GetKeyPolicy: AccessDenied)"}
	r.Patches = []finding.Patch{{
		Kind: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN, Name: "kmsfix-decrypt-app-data",
		Policy:   mustDoc(t, identityPolicy(keyARN, "us-east-1", bucket)),
		Commands: []string{putRolePolicy("kmsfix-decrypt-app-data")},
	}}
	r.AutoApplyBlocked = "the finding is not verified"
	out[r.Diagnosis] = r

	for _, c := range finding.AllCodes {
		if _, ok := out[c]; !ok {
			t.Fatalf("no sample report for %s", c)
		}
	}
	return out
}
