// Package finding defines the diagnosis codes and the report (docs/contract.md sections 1 and 3),
// the one shape every step after diagnosis reads.
package finding

import (
	"encoding/json"

	"github.com/kmsfix/kmsfix/internal/policy"
)

// Code is a diagnosis code from docs/contract.md section 1. Codes never change name or meaning.
type Code string

const (
	IdentityPolicyMissing           Code = "identity-policy-missing"
	KeyPolicyMissing                Code = "key-policy-missing"
	CrossAccountAccessMissing       Code = "cross-account-access-missing"
	AWSManagedKeyCrossAccount       Code = "aws-managed-key-cross-account"
	ConditionMismatch               Code = "condition-mismatch"
	ExplicitDenyKeyPolicy           Code = "explicit-deny-key-policy"
	ExplicitDenyIdentityPolicy      Code = "explicit-deny-identity-policy"
	ExplicitDenySCP                 Code = "explicit-deny-scp"
	ExplicitDenyRCP                 Code = "explicit-deny-rcp"
	ExplicitDenyPermissionsBoundary Code = "explicit-deny-permissions-boundary"
	ExplicitDenySessionPolicy       Code = "explicit-deny-session-policy"
	ExplicitDenyVPCEndpointPolicy   Code = "explicit-deny-vpc-endpoint-policy"
	SCPDoesNotAllow                 Code = "scp-does-not-allow"
	BoundaryDoesNotAllow            Code = "permissions-boundary-does-not-allow"
	SessionPolicyDoesNotAllow       Code = "session-policy-does-not-allow"
	VPCEndpointPolicyDoesNotAllow   Code = "vpc-endpoint-policy-does-not-allow"
	KeyDisabled                     Code = "key-disabled"
	KeyPendingDeletion              Code = "key-pending-deletion"
	KeyUnavailable                  Code = "key-unavailable"
	KeyNotFound                     Code = "key-not-found"
	UnsupportedPrincipal            Code = "unsupported-principal"
	Undetermined                    Code = "undetermined"
)

// AllCodes lists every code, in the contract's order.
var AllCodes = []Code{
	IdentityPolicyMissing, KeyPolicyMissing, CrossAccountAccessMissing, AWSManagedKeyCrossAccount,
	ConditionMismatch, ExplicitDenyKeyPolicy, ExplicitDenyIdentityPolicy, ExplicitDenySCP,
	ExplicitDenyRCP, ExplicitDenyPermissionsBoundary, ExplicitDenySessionPolicy,
	ExplicitDenyVPCEndpointPolicy, SCPDoesNotAllow, BoundaryDoesNotAllow, SessionPolicyDoesNotAllow,
	VPCEndpointPolicyDoesNotAllow, KeyDisabled, KeyPendingDeletion, KeyUnavailable, KeyNotFound,
	UnsupportedPrincipal, Undetermined,
}

// PolicyFixable says a policy patch can turn this denial into an allow (an implicit deny).
func (c Code) PolicyFixable() bool {
	switch c {
	case IdentityPolicyMissing, KeyPolicyMissing, CrossAccountAccessMissing, ConditionMismatch:
		return true
	}
	return false
}

// Severity ranks a code for routing: "critical" for data about to become unreadable for
// good, "high" for what a policy owner outside the team must fix, "medium" otherwise.
func (c Code) Severity() string {
	switch c {
	case KeyPendingDeletion:
		return "critical"
	case AWSManagedKeyCrossAccount, ExplicitDenyKeyPolicy, ExplicitDenyIdentityPolicy, ExplicitDenySCP,
		ExplicitDenyRCP, ExplicitDenyPermissionsBoundary, ExplicitDenySessionPolicy,
		ExplicitDenyVPCEndpointPolicy, KeyDisabled, KeyNotFound, KeyUnavailable:
		return "high"
	}
	return "medium"
}

// Patch kinds.
const (
	KindIdentityPolicy     = "identity-policy"
	KindKeyPolicyStatement = "key-policy-statement"
	KindGrant              = "grant"
)

// Patch is one change that, with the others in the same report, fixes the denial.
type Patch struct {
	Kind      string            `json:"kind"`
	Account   string            `json:"account"`
	Target    string            `json:"target"`
	Policy    *policy.Document  `json:"policy,omitempty"`
	Statement *policy.Statement `json:"statement,omitempty"`
	Grant     *GrantPatch       `json:"grant,omitempty"`
	// Name is the inline policy name, the statement Sid or the grant name: deterministic, so
	// a repeat finds and replaces its own earlier change.
	Name string `json:"name,omitempty"`
	// MergedKeyPolicy is the whole key policy with the statement appended, ready for
	// `aws kms put-key-policy`, when the current policy is known.
	MergedKeyPolicy *policy.Document `json:"merged_key_policy,omitempty"`
	// Commands are the AWS CLI commands that apply this patch.
	Commands []string `json:"commands,omitempty"`
}

// GrantPatch is the `grant` field of a grant patch.
type GrantPatch struct {
	Grantee     string            `json:"grantee"`
	Operations  []string          `json:"operations"`
	Constraints map[string]any    `json:"constraints,omitempty"`
	Retiring    string            `json:"retiring_principal,omitempty"`
	Context     map[string]string `json:"-"`
}

// Report is one finding as the contract's report JSON (docs/contract.md section 3) plus additions.
type Report struct {
	EventID          string   `json:"event_id"`
	Ignored          string   `json:"ignored,omitempty"`
	Diagnosis        Code     `json:"diagnosis"`
	Detail           string   `json:"detail"`
	Principal        string   `json:"principal"`
	PrincipalAccount string   `json:"principal_account"`
	Key              string   `json:"key"`
	KeyAccount       string   `json:"key_account"`
	Region           string   `json:"region"`
	Bucket           string   `json:"bucket,omitempty"`
	Object           string   `json:"object,omitempty"`
	Actions          []string `json:"actions"`
	Patches          []Patch  `json:"patches"`
	AutoApply        bool     `json:"auto_apply"`
	Verified         bool     `json:"verified"`

	// Additions to the contract.
	Severity      string   `json:"severity,omitempty"`
	EventTime     string   `json:"event_time,omitempty"`
	EventName     string   `json:"event_name,omitempty"`
	ErrorCode     string   `json:"error_code,omitempty"`
	SessionARN    string   `json:"session_arn,omitempty"`
	PrincipalType string   `json:"principal_type,omitempty"`
	KeyAlias      string   `json:"key_alias,omitempty"`
	Advice        []string `json:"advice,omitempty"`   // commands or steps for findings no policy fixes
	Escalate      string   `json:"escalate,omitempty"` // who must act when it is not the caller's team
	Unknown       []string `json:"unknown,omitempty"`  // what the diagnosis could not read
	Fingerprint   string   `json:"fingerprint,omitempty"`
	// AutoApplyBlocked says why auto_apply is false for a policy-fixable finding.
	AutoApplyBlocked string `json:"auto_apply_blocked,omitempty"`
	// Unverified says why a proposed patch is not verified.
	Unverified string `json:"unverified,omitempty"`
	// NeededStatement is what a layer kmsfix cannot edit (SCP, permissions boundary, session or
	// VPC endpoint policy) would need to allow; it is advice, never a patch.
	NeededStatement *policy.Statement `json:"needed_statement,omitempty"`
	// Applied is the automatic change made for this finding in a sandbox account, if any.
	Applied *Applied `json:"applied,omitempty"`
	// AppliedMore are the other changes of the same fix when it needs one in each of two
	// accounts (the organization's hub applies both halves of a cross-account fix, or none).
	AppliedMore []Applied `json:"applied_more,omitempty"`
}

// Applied describes an automatic change (internal/apply): what was changed, when it is
// reverted, and the command that reverts it now.
type Applied struct {
	ID      string `json:"id"`
	Lever   string `json:"lever"` // identity-policy, key-policy-statement or grant
	Account string `json:"account"`
	// Role is the role that made the change: the function's own, or in the hub the account's
	// kmsfix-apply role.
	Role      string `json:"role,omitempty"`
	Target    string `json:"target"` // role/user ARN or key ARN
	Name      string `json:"name"`   // inline policy name, statement Sid or grant name
	AppliedAt string `json:"applied_at"`
	ExpiresAt string `json:"expires_at"`
	// EventID is the CloudTrail event whose invocation made the change: the report of that
	// event announces it (internal/notify), whatever the dedupe window says.
	EventID       string   `json:"event_id,omitempty"`
	RevertCommand string   `json:"revert_command,omitempty"`
	DryRun        bool     `json:"dry_run,omitempty"`
	Calls         []string `json:"calls,omitempty"` // dry run: the exact API calls it would make
}

type reportFields Report

// ignoredReport is the whole report of an ignored event.
type ignoredReport struct {
	EventID   string `json:"event_id"`
	Ignored   string `json:"ignored"`
	EventName string `json:"event_name,omitempty"`
}

// shape returns what is written for r: an ignored event as just its id and the reason, a
// finding with every contract field (empty lists as [], not null).
func (r Report) shape() any {
	if r.Ignored != "" {
		return ignoredReport{r.EventID, r.Ignored, r.EventName}
	}
	if r.Patches == nil {
		r.Patches = []Patch{}
	}
	if r.Actions == nil {
		r.Actions = []string{}
	}
	return reportFields(r)
}

// MarshalJSON writes the report JSON (docs/contract.md section 3).
func (r Report) MarshalJSON() ([]byte, error) { return json.Marshal(r.shape()) }

// Encode returns the same bytes as json.Marshal(r) without encoding/json's second pass over a
// Marshaler's output (validate and compact), which is a fifth of the pure pipeline's time.
func (r Report) Encode() ([]byte, error) { return json.Marshal(r.shape()) }
