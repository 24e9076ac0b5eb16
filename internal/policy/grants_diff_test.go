package policy

// KMS grants are outside the differential test (iam-simulate has no grants), so they are
// checked here against the KMS Developer Guide (grants.md, create-grant-overview.md,
// key-policy-modifying-external-accounts.md).

import "testing"

func TestGrantsTable(t *testing.T) {
	const (
		caller   = "111122223333"
		owner    = "444455556666"
		role     = "arn:aws:iam::111122223333:role/app"
		session  = "arn:aws:sts::111122223333:assumed-role/app/s1"
		objARN   = "arn:aws:s3:::bkt/reports/q1.csv"
		keyOther = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	)
	// The key owner's default policy: it admits no one from the caller's account.
	ownerOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}]}`
	denyDecrypt := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"},` +
		`{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:ViaService":"sqs.us-east-1.amazonaws.com"}}}]}`

	tests := []struct {
		name   string
		key    string
		action string
		ctx    map[string]string // encryption context (key without the kms:EncryptionContext: prefix)
		grant  Grant
		want   Decision
	}{
		// "users and roles in the external account cannot use the KMS key until you attach IAM
		// policies that delegate those permissions, or use grants": the grant needs no IAM side.
		{name: "cross-account grant to the role, no key policy or IAM allow", key: ownerOnly, action: "kms:Decrypt",
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}}, want: Allow},
		{name: "grant to this session", key: ownerOnly, action: "kms:Decrypt",
			grant: Grant{Grantee: session, Operations: []string{"Decrypt"}}, want: Allow},
		{name: "grant to another session of the same role", key: ownerOnly, action: "kms:Decrypt",
			grant: Grant{Grantee: "arn:aws:sts::111122223333:assumed-role/app/other", Operations: []string{"Decrypt"}}, want: ImplicitDeny},
		{name: "grant to another role", key: ownerOnly, action: "kms:Decrypt",
			grant: Grant{Grantee: "arn:aws:iam::111122223333:role/other", Operations: []string{"Decrypt"}}, want: ImplicitDeny},
		{name: "grant operation names the action without the kms: prefix", key: ownerOnly, action: "kms:GenerateDataKey",
			grant: Grant{Grantee: role, Operations: []string{"Decrypt", "GenerateDataKey"}}, want: Allow},
		{name: "grant for Decrypt does not cover Encrypt", key: ownerOnly, action: "kms:Encrypt",
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}}, want: ImplicitDeny},
		// A grant only allows; an explicit deny in the key policy still wins.
		{name: "explicit deny in the key policy beats a grant", key: denyDecrypt, action: "kms:Decrypt",
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}}, want: ExplicitDeny},
		// Constraints: EncryptionContextSubset = these pairs among others; Equals = exactly these.
		{name: "subset constraint on the bucket ARN, Bucket Key context", key: ownerOnly, action: "kms:Decrypt",
			ctx:   map[string]string{"aws:s3:arn": "arn:aws:s3:::bkt"},
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}, EncryptionContextSubset: map[string]string{"aws:s3:arn": "arn:aws:s3:::bkt"}}, want: Allow},
		{name: "subset constraint on the bucket ARN, object context", key: ownerOnly, action: "kms:Decrypt",
			ctx:   map[string]string{"aws:s3:arn": objARN},
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}, EncryptionContextSubset: map[string]string{"aws:s3:arn": "arn:aws:s3:::bkt"}}, want: ImplicitDeny},
		{name: "subset constraint with an extra pair in the request", key: ownerOnly, action: "kms:Decrypt",
			ctx:   map[string]string{"aws:s3:arn": objARN, "team": "data"},
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}, EncryptionContextSubset: map[string]string{"aws:s3:arn": objARN}}, want: Allow},
		{name: "equals constraint with an extra pair in the request", key: ownerOnly, action: "kms:Decrypt",
			ctx:   map[string]string{"aws:s3:arn": objARN, "team": "data"},
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}, EncryptionContextEquals: map[string]string{"aws:s3:arn": objARN}}, want: ImplicitDeny},
		{name: "equals constraint, exact context", key: ownerOnly, action: "kms:Decrypt",
			ctx:   map[string]string{"aws:s3:arn": objARN},
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}, EncryptionContextEquals: map[string]string{"aws:s3:arn": objARN}}, want: Allow},
		{name: "constraint but no encryption context in the request", key: ownerOnly, action: "kms:Decrypt",
			grant: Grant{Grantee: role, Operations: []string{"Decrypt"}, EncryptionContextSubset: map[string]string{"aws:s3:arn": objARN}}, want: ImplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := map[string]string{
				"kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:ViaAWSService": "true", "kms:CallerAccount": caller,
				"aws:PrincipalArn": role, "aws:PrincipalAccount": caller,
			}
			for k, v := range tt.ctx {
				ctx["kms:EncryptionContext:"+k] = v
			}
			req := Request{Action: tt.action, Resource: keyOther, Caller: Caller{ARN: role, SessionARN: session, Account: caller}, Context: ctx}
			in := KMSInputs{KeyAccount: owner, KeyPolicy: diffMustParse(t, tt.key), Grants: []Grant{tt.grant}}
			got := AuthorizeKMS(req, in)
			if got.Decision != tt.want {
				t.Fatalf("got %v, want %v", got.Decision, tt.want)
			}
			if (got.Grant != nil) != (tt.want == Allow) {
				t.Errorf("KMSResult.Grant = %v for decision %v", got.Grant, got.Decision)
			}
		})
	}
}
