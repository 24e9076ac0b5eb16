package cloudtrail

import (
	"strings"
	"testing"
)

const (
	testKey     = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testSession = "arn:aws:sts::111122223333:assumed-role/etl-reader/etl-run-42"
)

// messageCases are realistic full messages; they also seed FuzzParseMessage.
var messageCases = func() []struct {
	name string
	text string
	want Message // Text is not compared
} {
	user := "User: " + testSession + " is not authorized to perform: "
	return []struct {
		name string
		text string
		want Message
	}{
		{
			name: "no identity-based allow",
			text: user + "kms:Decrypt on resource: " + testKey + " because no identity-based policy allows the kms:Decrypt action",
			want: Message{Kind: MsgNoIdentityAllow, PolicyType: PolicyIdentity, PolicyPhrase: "identity-based policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "no resource-based allow",
			text: "User: arn:aws:iam::444455556666:user/report-uploader is not authorized to perform: kms:GenerateDataKey on resource: " + testKey + " because no resource-based policy allows the kms:GenerateDataKey action",
			want: Message{Kind: MsgNoResourceAllow, PolicyType: PolicyResource, PolicyPhrase: "resource-based policy", Caller: "arn:aws:iam::444455556666:user/report-uploader", Action: "kms:GenerateDataKey", Resource: testKey},
		},
		{
			name: "no identity-based allow on this resource",
			text: user + "kms:GenerateDataKey on this resource because no identity-based policy allows the kms:GenerateDataKey action",
			want: Message{Kind: MsgNoIdentityAllow, PolicyType: PolicyIdentity, PolicyPhrase: "identity-based policy", Caller: testSession, Action: "kms:GenerateDataKey"},
		},
		{
			name: "ambiguous on this resource",
			text: user + "kms:GenerateDataKey on this resource because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access",
			want: Message{Kind: MsgAmbiguous, Caller: testSession, Action: "kms:GenerateDataKey"},
		},
		{
			name: "ambiguous on the ciphertext",
			text: user + "kms:Decrypt on the resource associated with this ciphertext because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access",
			want: Message{Kind: MsgAmbiguous, Caller: testSession, Action: "kms:Decrypt"},
		},
		{
			name: "old ciphertext wording",
			text: "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.",
			want: Message{Kind: MsgCiphertext},
		},
		{
			name: "explicit deny SCP",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a service control policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicySCP, PolicyPhrase: "service control policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny RCP",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a resource control policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyRCP, PolicyPhrase: "resource control policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny boundary",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a permissions boundary",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyBoundary, PolicyPhrase: "permissions boundary", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny session policy",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a session policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicySession, PolicyPhrase: "session policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny sessions policy (IAM's spelling)",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a sessions policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicySession, PolicyPhrase: "sessions policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny VPC endpoint",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a VPC endpoint policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyVPCEndpoint, PolicyPhrase: "VPC endpoint policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny identity-based",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in an identity-based policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyIdentity, PolicyPhrase: "identity-based policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny resource-based",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a resource-based policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyResource, PolicyPhrase: "resource-based policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny transitively through SCP",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a VPC endpoint policy transitively through a service control policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyVPCEndpoint, PolicyPhrase: "VPC endpoint policy", Transitive: PolicySCP, Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny SCP with the policy ARN (2025 wording)",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a service control policy: arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicySCP, PolicyPhrase: "service control policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey,
				PolicyARN: "arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd"},
		},
		{
			name: "explicit deny identity-based with the policy ARN",
			text: user + "kms:GenerateDataKey on resource: " + testKey + " with an explicit deny in an identity-based policy: arn:aws:iam::111122223333:policy/deny-outside-vpc.",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyIdentity, PolicyPhrase: "identity-based policy", Caller: testSession, Action: "kms:GenerateDataKey", Resource: testKey,
				PolicyARN: "arn:aws:iam::111122223333:policy/deny-outside-vpc"},
		},
		{
			name: "explicit deny transitively, with the policy ARN",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in a VPC endpoint policy transitively through a service control policy: arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicyVPCEndpoint, PolicyPhrase: "VPC endpoint policy", Transitive: PolicySCP, Caller: testSession, Action: "kms:Decrypt", Resource: testKey,
				PolicyARN: "arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd"},
		},
		{
			name: "explicit deny without type (key policy Deny)",
			text: user + "kms:GenerateDataKey on resource: " + testKey + " with an explicit deny",
			want: Message{Kind: MsgExplicitDeny, Caller: testSession, Action: "kms:GenerateDataKey", Resource: testKey},
		},
		{
			name: "explicit deny of an unknown policy type",
			text: user + "kms:Decrypt on resource: " + testKey + " with an explicit deny in the role trust policy",
			want: Message{Kind: MsgExplicitDeny, PolicyPhrase: "role trust policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "explicit deny, no resource clause",
			text: user + "kms:Decrypt with an explicit deny in a service control policy",
			want: Message{Kind: MsgExplicitDeny, PolicyType: PolicySCP, PolicyPhrase: "service control policy", Caller: testSession, Action: "kms:Decrypt"},
		},
		{
			name: "no SCP allow",
			text: user + "kms:Decrypt because no service control policy allows the kms:Decrypt action",
			want: Message{Kind: MsgNoAllow, PolicyType: PolicySCP, PolicyPhrase: "service control policy", Caller: testSession, Action: "kms:Decrypt"},
		},
		{
			name: "no boundary allow",
			text: user + "kms:Decrypt on resource: " + testKey + " because no permissions boundary allows the kms:Decrypt action",
			want: Message{Kind: MsgNoAllow, PolicyType: PolicyBoundary, PolicyPhrase: "permissions boundary", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "no session policy allow",
			text: user + "kms:Decrypt on resource: " + testKey + " because no session policy allows the kms:Decrypt action",
			want: Message{Kind: MsgNoAllow, PolicyType: PolicySession, PolicyPhrase: "session policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "no VPC endpoint allow",
			text: user + "kms:Decrypt on resource: " + testKey + " because no VPC endpoint policy allows the kms:Decrypt action",
			want: Message{Kind: MsgNoAllow, PolicyType: PolicyVPCEndpoint, PolicyPhrase: "VPC endpoint policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "no allow of an unknown type",
			text: user + "kms:Decrypt because no role trust policy allows the kms:Decrypt action",
			want: Message{Kind: MsgUnknown, PolicyPhrase: "role trust policy", Caller: testSession, Action: "kms:Decrypt"},
		},
		{
			name: "no reason (pre-2021 format)",
			text: user + "kms:GenerateDataKey on resource: " + testKey,
			want: Message{Kind: MsgNoReason, Caller: testSession, Action: "kms:GenerateDataKey", Resource: testKey},
		},
		{
			name: "no reason, trailing period",
			text: user + "kms:Decrypt on resource: " + testKey + ".",
			want: Message{Kind: MsgNoReason, Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "quoted resource (S3 style)",
			text: user + `kms:Decrypt on resource: "` + testKey + `" because no identity-based policy allows the kms:Decrypt action`,
			want: Message{Kind: MsgNoIdentityAllow, PolicyType: PolicyIdentity, PolicyPhrase: "identity-based policy", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "anonymous caller",
			text: "User: anonymous is not authorized to perform: kms:Decrypt on resource: " + testKey + " because no resource-based policy allows the kms:Decrypt action",
			want: Message{Kind: MsgNoResourceAllow, PolicyType: PolicyResource, PolicyPhrase: "resource-based policy", Caller: "anonymous", Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "other case and spacing",
			text: "  user: " + testSession + " IS NOT AUTHORIZED TO PERFORM: kms:Decrypt ON RESOURCE: " + testKey + " BECAUSE NO IDENTITY-BASED POLICY ALLOWS THE kms:Decrypt ACTION ",
			want: Message{Kind: MsgNoIdentityAllow, PolicyType: PolicyIdentity, PolicyPhrase: "IDENTITY-BASED POLICY", Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
		{
			name: "disabled",
			text: testKey + " is disabled.",
			want: Message{Kind: MsgDisabled, State: "Disabled", Resource: testKey},
		},
		{
			name: "pending deletion",
			text: testKey + " is pending deletion.",
			want: Message{Kind: MsgPendingDeletion, State: "PendingDeletion", Resource: testKey},
		},
		{
			name: "pending replica deletion",
			text: testKey + " is pending replica deletion.",
			want: Message{Kind: MsgPendingDeletion, State: "PendingReplicaDeletion", Resource: testKey},
		},
		{
			name: "pending import",
			text: testKey + " is pending import.",
			want: Message{Kind: MsgInvalidState, State: "PendingImport", Resource: testKey},
		},
		{
			name: "unavailable",
			text: testKey + " is unavailable.",
			want: Message{Kind: MsgInvalidState, State: "Unavailable", Resource: testKey},
		},
		{
			name: "creating",
			text: testKey + " is creating.",
			want: Message{Kind: MsgInvalidState, State: "Creating", Resource: testKey},
		},
		{
			name: "updating",
			text: testKey + " is updating.",
			want: Message{Kind: MsgInvalidState, State: "Updating", Resource: testKey},
		},
		{
			name: "external key store",
			text: "The external key store proxy rejected the request because the specified ciphertext or additional authenticated data is corrupted, missing, or otherwise invalid.",
			want: Message{Kind: MsgInvalidState, State: StateCustomKeyStore},
		},
		{
			name: "custom key store disconnected",
			text: "The custom key store cks-1234567890abcdef0 that contains KMS key " + testKey + " is not connected.",
			want: Message{Kind: MsgInvalidState, State: StateCustomKeyStore},
		},
		{
			name: "key does not exist",
			text: "Key '" + testKey + "' does not exist",
			want: Message{Kind: MsgNotFound, Resource: testKey},
		},
		{
			name: "invalid keyId",
			text: "Invalid keyId 'fake-key-id'",
			want: Message{Kind: MsgNotFound, Resource: "fake-key-id"},
		},
		{
			name: "invalid arn",
			text: "Invalid arn us-east-1",
			want: Message{Kind: MsgNotFound},
		},
		{
			name: "alias not found",
			text: "Alias arn:aws:kms:us-east-1:111122223333:alias/app-data is not found.",
			want: Message{Kind: MsgNotFound, Resource: "arn:aws:kms:us-east-1:111122223333:alias/app-data"},
		},
		{name: "empty", text: "", want: Message{Kind: MsgUnknown}},
		{name: "generic Access Denied", text: "Access Denied", want: Message{Kind: MsgUnknown}},
		{
			name: "User: without the IAM shape",
			text: "User: something unexpected happened",
			want: Message{Kind: MsgUnknown},
		},
		{
			name: "unfamiliar reason keeps caller and action",
			text: user + "kms:Decrypt on resource: " + testKey + " because the moon is full",
			want: Message{Kind: MsgUnknown, Caller: testSession, Action: "kms:Decrypt", Resource: testKey},
		},
	}
}()

func TestParseMessage(t *testing.T) {
	for _, tt := range messageCases {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseMessage(tt.text)
			if got.Text != tt.text {
				t.Errorf("Text = %q, want the input", got.Text)
			}
			got.Text = ""
			if got != tt.want {
				t.Errorf("ParseMessage(%q)\n got %+v\nwant %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestClassifyUsesErrorCode(t *testing.T) {
	tests := []struct {
		code, text string
		kind       MessageKind
		state      string
	}{
		{"DisabledException", "", MsgDisabled, "Disabled"},
		{"KMS.DisabledException", "Key is not usable", MsgDisabled, "Disabled"},
		// KMS may answer DisabledException for a key pending deletion: the text wins.
		{"DisabledException", testKey + " is pending deletion.", MsgPendingDeletion, "PendingDeletion"},
		{"NotFoundException", "", MsgNotFound, ""},
		{"KMS.NotFoundException", "Key '" + testKey + "' does not exist", MsgNotFound, ""},
		{"KMSInvalidStateException", testKey + " is pending import.", MsgInvalidState, "PendingImport"},
		{"KMSInvalidStateException", "something new", MsgInvalidState, ""},
		{"KMSInvalidStateException", testKey + " is pending deletion.", MsgPendingDeletion, "PendingDeletion"},
		{"AccessDenied", "", MsgUnknown, ""},
		{"AccessDeniedException", "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.", MsgCiphertext, ""},
	}
	for _, tt := range tests {
		got := Classify(tt.code, tt.text)
		if got.Kind != tt.kind || got.State != tt.state {
			t.Errorf("Classify(%q, %q) = %s/%q, want %s/%q", tt.code, tt.text, got.Kind, got.State, tt.kind, tt.state)
		}
	}
}

// TestParseMessageTotal feeds prefixes of every known shape: ParseMessage must not panic and
// must always name a kind.
func TestParseMessageTotal(t *testing.T) {
	full := "User: " + testSession + " is not authorized to perform: kms:Decrypt on resource: \"" + testKey +
		"\" with an explicit deny in a VPC endpoint policy transitively through a service control policy"
	for i := 0; i <= len(full); i++ {
		for _, s := range []string{full[:i], full[i:], strings.ToUpper(full[:i])} {
			if m := ParseMessage(s); m.Kind == "" {
				t.Fatalf("ParseMessage(%q): empty kind", s)
			}
		}
	}
	// Non-ASCII case folding must not shift offsets (strings.ToLower would).
	m := ParseMessage("User: İİİ is not authorized to perform: kms:Decrypt on resource: " + testKey)
	if m.Caller != "İİİ" || m.Action != "kms:Decrypt" || m.Resource != testKey {
		t.Errorf("non-ASCII caller: got %+v", m)
	}
}
