package policy

// Unit tests for evaluator fixes found by the differential test against iam-simulate
// (differential_test.go). Each case cites the AWS documentation that decides it.

import "testing"

func TestDiffFixes(t *testing.T) {
	const (
		acct    = "111122223333"
		key     = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		role    = "arn:aws:iam::111122223333:role/service-role/app"
		session = "arn:aws:sts::111122223333:assumed-role/app/s1"
		user    = "arn:aws:iam::111122223333:user/alice"
		root    = "arn:aws:iam::111122223333:root"
	)
	sessionCaller := Caller{ARN: role, SessionARN: session, Account: acct}
	userCaller := Caller{ARN: user, Account: acct}
	keyPolicy := func(stmts string) string { return `{"Version":"2012-10-17","Statement":[` + stmts + `]}` }
	allowRoot := `{"Effect":"Allow","Principal":{"AWS":"` + root + `"},"Action":"kms:*","Resource":"*"}`
	allowUser := `{"Effect":"Allow","Principal":{"AWS":"` + user + `"},"Action":"kms:*","Resource":"*"}`
	allowIAM := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`
	boundaryKMS := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	boundaryS3 := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`

	tests := []struct {
		name     string
		caller   Caller
		key      string
		identity string
		boundary string
		want     Decision
	}{
		// IAM User Guide, "NotPrincipal With Allow": the statement grants everyone except the
		// principals listed; listing the caller (or its account) leaves it out.
		{name: "Allow NotPrincipal listing the session leaves the session out", caller: sessionCaller,
			key: keyPolicy(`{"Effect":"Allow","NotPrincipal":{"AWS":"` + session + `"},"Action":"kms:*","Resource":"*"}`), want: ImplicitDeny},
		{name: "Allow NotPrincipal listing the user leaves the user out", caller: userCaller,
			key: keyPolicy(`{"Effect":"Allow","NotPrincipal":{"AWS":"` + user + `"},"Action":"kms:*","Resource":"*"}`), want: ImplicitDeny},
		{name: "Allow NotPrincipal listing the account leaves its users out", caller: userCaller,
			key: keyPolicy(`{"Effect":"Allow","NotPrincipal":{"AWS":"` + root + `"},"Action":"kms:*","Resource":"*"}`), want: ImplicitDeny},
		{name: "Allow NotPrincipal listing someone else grants the caller", caller: userCaller,
			key: keyPolicy(`{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}`), want: Allow},
		// {"AWS":"*"} is the same as "*": NotPrincipal lists everyone.
		{name: `Allow NotPrincipal {"AWS":"*"} grants nobody`, caller: userCaller,
			key: keyPolicy(`{"Effect":"Allow","NotPrincipal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}`), want: ImplicitDeny},
		{name: `Deny NotPrincipal {"AWS":"*"} denies nobody`, caller: userCaller,
			key: keyPolicy(allowUser + `,{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}`), want: Allow},
		// IAM User Guide, "NotPrincipal With Deny": list the session, the role and the account.
		{name: "Deny NotPrincipal listing session, role and account spares the session", caller: sessionCaller,
			key:      keyPolicy(allowRoot + `,{"Effect":"Deny","NotPrincipal":{"AWS":["` + session + `","` + role + `","` + root + `"]},"Action":"kms:*","Resource":"*"}`),
			identity: allowIAM, want: Allow},
		{name: "Deny NotPrincipal listing the session only may deny it", caller: sessionCaller,
			key:      keyPolicy(allowRoot + `,{"Effect":"Deny","NotPrincipal":{"AWS":"` + session + `"},"Action":"kms:*","Resource":"*"}`),
			identity: allowIAM, want: ExplicitDeny},
		// IAM User Guide, access_policies_boundaries: "The NotPrincipal element with a Deny effect
		// will always deny any IAM principal that has a permissions boundary policy attached,
		// regardless of the values specified in the NotPrincipal element."
		{name: "Deny NotPrincipal denies a user with a boundary even when listed", caller: userCaller,
			key:      keyPolicy(allowUser + `,{"Effect":"Deny","NotPrincipal":{"AWS":["` + user + `","` + root + `"]},"Action":"kms:*","Resource":"*"}`),
			boundary: boundaryKMS, want: ExplicitDeny},
		{name: "Deny NotPrincipal with a boundary still needs its action to match", caller: userCaller,
			key:      keyPolicy(allowUser + `,{"Effect":"Deny","NotPrincipal":{"AWS":["` + user + `","` + root + `"]},"Action":"kms:PutKeyPolicy","Resource":"*"}`),
			boundary: boundaryKMS, want: Allow},
		{name: "Deny NotPrincipal with a boundary still needs its condition to hold", caller: userCaller,
			key:      keyPolicy(allowUser + `,{"Effect":"Deny","NotPrincipal":{"AWS":["` + user + `","` + root + `"]},"Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:ViaAWSService":"false"}}}`),
			boundary: boundaryKMS, want: Allow},
		// IAM User Guide, evaluation logic, "Resource-based policies": a grant to the role ARN is
		// limited by the boundary's implicit deny, a grant to the session ARN is not; the
		// session statement counts even when a role statement comes first.
		{name: "boundary caps a key policy naming the role", caller: sessionCaller,
			key:      keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"kms:*","Resource":"*"}`),
			boundary: boundaryS3, want: ImplicitDeny},
		{name: "boundary does not cap a key policy naming the session after one naming the role", caller: sessionCaller,
			key: keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"kms:*","Resource":"*"},` +
				`{"Effect":"Allow","Principal":{"AWS":"` + session + `"},"Action":"kms:Decrypt","Resource":"*"}`),
			boundary: boundaryS3, want: Allow},
		{name: "the session statement must apply to the action", caller: sessionCaller,
			key: keyPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"kms:*","Resource":"*"},` +
				`{"Effect":"Allow","Principal":{"AWS":"` + session + `"},"Action":"kms:Encrypt","Resource":"*"}`),
			boundary: boundaryS3, want: ImplicitDeny},
		{name: "Deny NotPrincipal listing the user and account spares it without a boundary", caller: userCaller,
			key:  keyPolicy(allowUser + `,{"Effect":"Deny","NotPrincipal":{"AWS":["` + user + `","` + root + `"]},"Action":"kms:*","Resource":"*"}`),
			want: Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := KMSInputs{KeyAccount: acct, KeyPolicy: diffMustParse(t, tt.key)}
			if tt.identity != "" {
				in.Identity = []NamedDocument{{Name: "inline", Doc: diffMustParse(t, tt.identity)}}
			}
			if tt.boundary != "" {
				in.Boundary = diffMustParse(t, tt.boundary)
			}
			req := Request{Action: "kms:Decrypt", Resource: key, Caller: tt.caller, Context: map[string]string{
				"kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:ViaAWSService": "true", "kms:CallerAccount": acct,
				"aws:PrincipalArn": tt.caller.ARN, "aws:PrincipalAccount": acct,
			}}
			if got := AuthorizeKMS(req, in).Decision; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func diffMustParse(t *testing.T, s string) *Document {
	t.Helper()
	d, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return d
}
