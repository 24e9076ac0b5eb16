// Package cloudtrail turns CloudTrail records (bare, in an EventBridge envelope, or in a log
// file as S3 stores it) into Denials: KMS calls that S3 made for a principal and that KMS
// refused. Anything else becomes an Ignored item with the reason.
package cloudtrail

import "encoding/json"

// PrincipalKind classifies the caller named by userIdentity.
type PrincipalKind string

const (
	KindRole              PrincipalKind = "role"                // an IAM role (assumed-role session)
	KindUser              PrincipalKind = "user"                // an IAM user
	KindSSORole           PrincipalKind = "sso-role"            // IAM Identity Center role (AWSReservedSSO_*): IAM cannot edit it
	KindServiceLinkedRole PrincipalKind = "service-linked-role" // /aws-service-role/: IAM cannot edit it
	KindRoot              PrincipalKind = "root"
	KindFederatedUser     PrincipalKind = "federated-user" // GetFederationToken session of an IAM user
	KindAnonymous         PrincipalKind = "anonymous"
	KindAWSAccount        PrincipalKind = "aws-account" // another account, no principal named
	KindAWSService        PrincipalKind = "aws-service" // a service acting as itself
	KindUnknown           PrincipalKind = "unknown"
)

// Identity is the caller, reduced to the IAM principal a fix must name.
type Identity struct {
	Type       string        // userIdentity.type as logged
	Kind       PrincipalKind // what it is
	SessionARN string        // userIdentity.arn (the session ARN for roles)
	// PrincipalARN is the IAM ARN to grant: the role ARN with its path from
	// sessionContext.sessionIssuer.arn, or the IAM user ARN. Empty when none can be named.
	PrincipalARN string
	Account      string
	// Editable says IAM can attach an inline policy to PrincipalARN (not SSO, not
	// service-linked, not root); NotEditable says why when it cannot.
	Editable    bool
	NotEditable string

	PrincipalID string // userIdentity.principalId ("AROA...:session"), to resolve a principal the event does not name
	// Name is the role or user name (no path), from sessionIssuer.userName or the ARN.
	Name string
	// PathUnknown is set when PrincipalARN was rebuilt from a session ARN because the event has
	// no sessionContext.sessionIssuer: the role's path is then unknown (assumed "/").
	PathUnknown bool
	// Note is what a fix must also consider, e.g. the session policy of a federated user.
	Note string
}

// MessageKind is what the error message says about why KMS refused.
type MessageKind string

const (
	MsgNoIdentityAllow MessageKind = "no-identity-allow" // because no identity-based policy allows
	MsgNoResourceAllow MessageKind = "no-resource-allow" // because no resource-based policy allows
	// MsgAmbiguous: "because the resource does not exist in this Region, no resource-based
	// policies allow access, or a resource-based policy explicitly denies access".
	MsgAmbiguous       MessageKind = "ambiguous"
	MsgCiphertext      MessageKind = "ciphertext"    // old "The ciphertext refers to a customer master key ..."
	MsgExplicitDeny    MessageKind = "explicit-deny" // "with an explicit deny in a <PolicyType>" (PolicyType may be empty)
	MsgNoAllow         MessageKind = "no-allow"      // "because no <PolicyType> allows" for SCP, boundary, session, VPC endpoint
	MsgNoReason        MessageKind = "no-reason"     // "User: X is not authorized to perform: A on resource: R" and nothing more
	MsgDisabled        MessageKind = "disabled"      // "<key ARN> is disabled."
	MsgPendingDeletion MessageKind = "pending-deletion"
	MsgInvalidState    MessageKind = "invalid-state" // pending import, unavailable, creating, updating, custom key store
	MsgNotFound        MessageKind = "not-found"     // "Key '...' does not exist", "Invalid keyId ..."
	MsgUnknown         MessageKind = "unknown"       // wording we do not recognise: the world decides
)

// Policy types named by error messages (MsgExplicitDeny and MsgNoAllow).
const (
	PolicySCP         = "scp"
	PolicyRCP         = "rcp"
	PolicyBoundary    = "permissions-boundary"
	PolicySession     = "session-policy"
	PolicyVPCEndpoint = "vpc-endpoint-policy"
	PolicyIdentity    = "identity-policy"
	PolicyResource    = "resource-policy"
)

// Message is the parsed errorMessage.
type Message struct {
	Kind       MessageKind
	PolicyType string // one of the Policy* constants, for MsgExplicitDeny / MsgNoAllow
	Caller     string // "User: <arn>"
	Action     string // "kms:Decrypt"
	Resource   string // key ARN when the message names it
	State      string // for MsgInvalidState: the KMS key state it names (PendingImport, ...)
	Text       string // the message as logged

	// PolicyPhrase is the policy type as the message writes it ("service control policy"),
	// also when PolicyType does not know it.
	PolicyPhrase string
	// Transitive is the Policy* type after "transitively through" ("... in a VPC endpoint
	// policy transitively through a service control policy").
	Transitive string
	// PolicyARN is the denying policy's ARN that newer messages append to an explicit deny
	// ("... with an explicit deny in a service control policy: arn:aws:organizations::...").
	PolicyARN string
}

// Denial is one KMS call that S3 made for a principal and that was refused.
type Denial struct {
	EventID          string
	EventTime        string // RFC 3339, as logged
	EventName        string // Decrypt, GenerateDataKey, ...
	Region           string // awsRegion
	RecipientAccount string
	ErrorCode        string
	Message          Message
	Identity         Identity

	KeyARN     string // from resources[], then requestParameters.keyId, then the message
	KeyAccount string
	KeyRegion  string
	// KeyRef is requestParameters.keyId when it is not a key ARN (an alias name or ARN, a bare
	// key id): a lead to the key, not its ARN.
	KeyRef string
	// Partition is the ARN partition (aws, aws-cn, aws-us-gov) of the key, else of the caller,
	// else of the encryption context.
	Partition string

	// ContextKey is the S3 encryption-context key of the call: S3ContextKey, or
	// DirectoryContextKey for a directory bucket.
	ContextKey string
	// ContextARN is requestParameters.encryptionContext[ContextKey]: the object ARN, or the
	// bucket ARN when the bucket uses S3 Bucket Keys (always for a directory bucket). Empty
	// when it does not name a valid bucket (see Doubt).
	ContextARN string
	// Bucket is the bucket the context names, checked against S3's naming rules; empty when
	// it is not a valid name (a wildcard or a shell character never gets here).
	Bucket          string
	Object          string // empty with S3 Bucket Keys
	BucketKey       bool
	DirectoryBucket bool // an S3 directory bucket (S3 Express One Zone)
	// Doubt says why this record may not be a call S3 made for the principal: no mark of a
	// service call, or a context that names no valid bucket. A doubtful denial is reported,
	// never verified, never applied.
	Doubt string
	// EncryptionContext is requestParameters.encryptionContext as logged (for conditions on
	// kms:EncryptionContext:<key> other than aws:s3:arn).
	EncryptionContext map[string]string
	InvokedBy         string // userIdentity.invokedBy ("AWS Internal" for S3's calls)
	VPCEndpointID     string // vpcEndpointId, when the call came through a KMS VPC endpoint

	// Actions are the KMS actions the request needed ("kms:Decrypt").
	Actions []string

	Record json.RawMessage // the CloudTrail record as read
}

// Item is one record read from input: a Denial, or an ignored record with the reason.
type Item struct {
	EventID string
	Denial  *Denial // nil when Ignored is set
	Ignored string
	// Source names where the record came from ("file.json", "file.json.gz#12") for errors.
	Source string
}
