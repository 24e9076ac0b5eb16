// Package request builds what the policy evaluator reads for one denial: the KMS request S3
// made for the principal, and the policies the world holds for it (key policy, identity
// policies, permissions boundary, grants). diagnose and patch both evaluate through it, so
// the request a diagnosis judges is the one a patch is verified against.
package request

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Inputs is what the world holds for the evaluator on the denial's key and principal; a
// key or principal the world does not know contributes nothing.
func Inputs(d *cloudtrail.Denial, w *world.World) policy.KMSInputs {
	in := policy.KMSInputs{KeyAccount: d.KeyAccount}
	if k := w.Key(d.KeyARN); k != nil {
		in.KeyPolicy = KeyPolicy(d, k)
		in.Grants = Grants(k)
	}
	if p := w.Principal(d.Identity.PrincipalARN); p != nil {
		in.Identity = Identity(p)
		in.Boundary = p.PermissionsBoundary
	}
	return in
}

// For is the request KMS authorized when S3 called it for the principal (a forward access
// session): every condition key AWS documents for it, with its value when the event or the
// world determines it, known absent when AWS documents it absent, and unknown otherwise, so
// a condition that reads an unknown key is unknown, never false.
//
// What a forward access session carries, and why each key is what it is here:
//   - kms:ViaService is S3's endpoint in the Region; kms:CallerAccount the principal's account;
//     kms:EncryptionContext:<k> and kms:EncryptionContextKeys the request's encryption
//     context, which CloudTrail logs whole (requestParameters.encryptionContext);
//     kms:RequestAlias is present only when the request named the key by an alias; kms:KeySpec,
//     kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion and kms:ResourceAliases are properties of
//     the key (DescribeKey, ListAliases): from the world, else unknown. The kms:Grant* keys
//     are only in grant operations' requests. AWS KMS condition keys:
//     https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
//   - aws:ViaAWSService is true on every forward access session; aws:PrincipalArn,
//     aws:PrincipalAccount, aws:PrincipalType, aws:userid and aws:username describe the
//     principal whose session S3 forwarded. Forward access sessions:
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/access_forward_access_sessions.html
//   - aws:CalledVia, aws:CalledViaFirst and aws:CalledViaLast: the page above says a forward
//     access session fills them with the calling service's principal, while the key's own
//     entry lists the services that set it (S3 was not among them when checked): unknown.
//   - aws:SourceIp is present with the original caller's address ("the original requester's
//     IP address is preserved",
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-ip.html),
//     which the KMS record does not carry (sourceIPAddress is S3's): present, value unknown.
//     Whether aws:SourceVpce, aws:SourceVpc and aws:VpcSourceIp reach S3's call to KMS is not
//     documented: unknown. aws:SecureTransport, aws:UserAgent, aws:Referer, the session's
//     MFA and token-issue keys, aws:SourceIdentity and the EC2 instance keys are session or
//     connection attributes the record does not show: unknown.
//   - aws:SourceArn, aws:SourceAccount, aws:SourceOrgID and aws:SourceOrgPaths are only in
//     requests a service principal makes, aws:PrincipalServiceName(sList) only when the
//     principal is a service, aws:RequestTag and aws:TagKeys only in requests that carry tags:
//     absent. aws:PrincipalIsAWSService is false (the principal is not a service principal).
//   - aws:PrincipalTag/<k>, aws:ResourceTag/<k>, aws:PrincipalOrgID, aws:PrincipalOrgPaths,
//     aws:ResourceOrgID and aws:ResourceOrgPaths come from the world (tags, accounts), else
//     unknown. aws:RequestedRegion is the Region of the call, aws:ResourceAccount the key's
//     account, aws:CurrentTime and aws:EpochTime the event's time. AWS global condition
//     context keys: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
//   - Any other aws: or kms: key is unknown (not modelled); other services' keys are never in
//     a KMS request: absent.
func For(d *cloudtrail.Denial, w *world.World, action string) policy.Request {
	id := d.Identity
	b := &builder{ctx: make(map[string]string, 24), multi: map[string][]string{}}
	b.state, b.prefixes = b.stateBuf[:0], b.prefixBuf[:0]
	b.set("kms:ViaService", ViaService(d))
	b.set("kms:CallerAccount", id.Account)
	b.set("aws:PrincipalArn", id.PrincipalARN)
	b.set("aws:PrincipalAccount", id.Account)
	b.set("aws:ViaAWSService", "true")
	b.set("aws:PrincipalIsAWSService", "false")
	b.set("aws:RequestedRegion", d.Region)
	b.set("aws:ResourceAccount", d.KeyAccount)
	b.principal(id)
	b.eventTime(d.EventTime)
	b.encryptionContext(d)
	if alias := requestAlias(d.KeyRef); alias != "" {
		b.set("kms:RequestAlias", alias)
	}
	b.key(w.Key(d.KeyARN))
	var tags map[string]string
	if p := w.Principal(id.PrincipalARN); p != nil {
		tags = p.Tags
	}
	b.tags("aws:PrincipalTag/", tags)
	b.org("aws:PrincipalOrg", w.Account(id.Account))
	b.org("aws:ResourceOrg", w.Account(d.KeyAccount))
	// A KMS cryptographic request carries no tags of its own.
	b.prefixes = append(b.prefixes, prefixState{"aws:requesttag/", policy.KeyAbsent})

	session := ""
	if id.SessionARN != "" && id.SessionARN != id.PrincipalARN {
		session = id.SessionARN
	}
	return policy.Request{
		Action:   action,
		Resource: d.KeyARN,
		Caller:   policy.Caller{ARN: id.PrincipalARN, SessionARN: session, Account: id.Account},
		Context:  b.ctx,
		Multi:    b.multi,
		Unknown:  b.classify,
	}
}

// builder collects a request's context: values, multivalued keys, and what is known of the
// keys it does not list (state and prefixes by lower-case name; prefixes end in "/" or ":").
type builder struct {
	ctx      map[string]string
	multi    map[string][]string
	state    []keyState // what this request leaves unknown, by name (any case)
	prefixes []prefixState
	// Backing arrays: a request marks about a dozen keys and sets five prefixes.
	stateBuf  [16]keyState
	prefixBuf [8]prefixState
}

type keyState struct {
	key   string // as For spells it; compared case-insensitively
	state policy.KeyState
}

type prefixState struct {
	prefix string // lower case
	state  policy.KeyState
}

// static is what is known of a key whatever the request, when the builder did not set it:
// keys the builder sets are absent from a request derived without them (a probe of a direct
// call drops kms:ViaService), keys only other operations or callers carry are absent, and
// aws:SourceIp is present with the original caller's address, which no record shows.
var static = func() map[string]policy.KeyState {
	m := map[string]policy.KeyState{"aws:sourceip": policy.KeyUnknownValue}
	for _, k := range []string{
		// set by For when the record or the world says
		"kms:ViaService", "kms:CallerAccount", "aws:PrincipalArn", "aws:PrincipalAccount", "aws:ViaAWSService",
		"aws:PrincipalIsAWSService", "aws:RequestedRegion", "aws:ResourceAccount", "aws:PrincipalType",
		"aws:username", "aws:userid", "aws:CurrentTime", "aws:EpochTime", "kms:RequestAlias",
		"kms:EncryptionContextKeys", "kms:KeySpec", "kms:CustomerMasterKeySpec", "kms:KeyUsage",
		"kms:CustomerMasterKeyUsage", "kms:KeyOrigin", "kms:MultiRegion", "kms:ResourceAliases",
		"aws:PrincipalOrgID", "aws:PrincipalOrgPaths", "aws:ResourceOrgID", "aws:ResourceOrgPaths",
		// only in requests of service principals, of other operations, or with tags
		"aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths",
		"aws:PrincipalServiceName", "aws:PrincipalServiceNamesList", "aws:TagKeys", "aws:AssumedRoot",
		"kms:GrantIsForAWSResource", "kms:GrantOperations", "kms:GranteePrincipal", "kms:RetiringPrincipal",
		"kms:GrantConstraintType", "kms:BypassPolicyLockoutSafetyCheck", "kms:DataKeyPairSpec", "kms:MacAlgorithm",
		"kms:SigningAlgorithm", "kms:MessageType", "kms:WrappingAlgorithm", "kms:WrappingKeySpec",
		"kms:ExpirationModel", "kms:ValidTo", "kms:ReEncryptOnSameKey", "kms:PrimaryRegion", "kms:ReplicaRegion",
		"kms:ScheduleKeyDeletionPendingWindowInDays", "kms:RotationPeriodInDays", "kms:KeyAgreementAlgorithm",
	} {
		m[strings.ToLower(k)] = policy.KeyAbsent
	}
	return m
}()

// set records a known value; an empty value (the event did not say) leaves the key unknown.
func (b *builder) set(key, value string) {
	if value == "" {
		b.mark(key, policy.KeyUnknown)
		return
	}
	b.ctx[key] = value
}

// mark records what is known of a key the context does not list. Keys are For's own
// names (ASCII), so EqualFold is lower-case equality.
func (b *builder) mark(key string, st policy.KeyState) {
	for i := range b.state {
		if strings.EqualFold(b.state[i].key, key) {
			b.state[i].state = st
			return
		}
	}
	b.state = append(b.state, keyState{key, st})
}

func (b *builder) unknown(key string) { b.mark(key, policy.KeyUnknown) }

// classify is policy.Request.Unknown: what is known of a key the context does not list.
func (b *builder) classify(key string) policy.KeyState {
	var buf [128]byte
	if k := lowerASCII(buf[:0], key); k != nil {
		return b.classifyLower(k) // lower-cased on the stack: no allocation per lookup
	}
	return b.classifyLower([]byte(strings.ToLower(key)))
}

// classifyLower is classify of a key already lower case (strings.ToLower's answer).
func (b *builder) classifyLower(k []byte) policy.KeyState {
	for _, e := range b.state {
		if lowerEquals(e.key, k) {
			return e.state
		}
	}
	if st, ok := static[string(k)]; ok { // the conversion in a map index does not allocate
		return st
	}
	hasPrefix := func(p string) bool { return len(k) >= len(p) && string(k[:len(p)]) == p }
	for _, p := range b.prefixes {
		if hasPrefix(p.prefix) {
			return p.state
		}
	}
	if hasPrefix("aws:") || hasPrefix("kms:") {
		return policy.KeyUnknown // a key this catalogue does not model
	}
	return policy.KeyAbsent // other services' keys are not in a KMS request
}

// lowerEquals says strings.ToLower(key) is lower.
func lowerEquals(key string, lower []byte) bool {
	if len(key) != len(lower) {
		// Lower-casing keeps an ASCII key's length; a key that is not ASCII is compared
		// the long way.
		return !isASCII(key) && strings.ToLower(key) == string(lower)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x80 {
			return strings.ToLower(key) == string(lower)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lowerASCII appends the lower case of an ASCII key that fits in dst's capacity (the key
// classify is asked about, lower-cased without allocating); nil otherwise.
func lowerASCII(dst []byte, key string) []byte {
	if len(key) > cap(dst) {
		return nil
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 0x80:
			return nil
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// principal sets the keys that describe the principal whose session S3 forwarded.
func (b *builder) principal(id cloudtrail.Identity) {
	switch id.Kind {
	case cloudtrail.KindUser:
		b.set("aws:PrincipalType", "User")
		b.set("aws:username", id.Name)
		b.set("aws:userid", id.PrincipalID)
	case cloudtrail.KindRole, cloudtrail.KindSSORole, cloudtrail.KindServiceLinkedRole:
		b.set("aws:PrincipalType", "AssumedRole")
		b.set("aws:userid", id.PrincipalID)                  // roles have no aws:username: absent
		b.mark("aws:TokenIssueTime", policy.KeyUnknownValue) // every session has one
	case cloudtrail.KindFederatedUser:
		b.set("aws:PrincipalType", "FederatedUser")
		b.set("aws:userid", id.PrincipalID)
		b.mark("aws:TokenIssueTime", policy.KeyUnknownValue)
	default:
		b.unknown("aws:PrincipalType")
		b.unknown("aws:username")
		b.unknown("aws:userid")
	}
}

func (b *builder) eventTime(t string) {
	at, err := time.Parse(time.RFC3339, t)
	if err != nil {
		b.unknown("aws:CurrentTime")
		b.unknown("aws:EpochTime")
		return
	}
	b.set("aws:CurrentTime", at.UTC().Format(time.RFC3339))
	b.set("aws:EpochTime", strconv.FormatInt(at.Unix(), 10))
}

// encryptionContext sets kms:EncryptionContext:<k> for each pair the record logged and
// kms:EncryptionContextKeys; without a logged context both are unknown.
func (b *builder) encryptionContext(d *cloudtrail.Denial) {
	extra := "" // the context key S3 adds when the record's context lacks it
	if d.ContextARN != "" {
		extra = d.ContextKey // aws:s3:arn, or aws:s3express:arn for a directory bucket
		if extra == "" {
			extra = cloudtrail.S3ContextKey
		}
		if _, ok := d.EncryptionContext[extra]; ok {
			extra = ""
		}
	}
	if len(d.EncryptionContext) == 0 && extra == "" {
		b.prefixes = append(b.prefixes, prefixState{"kms:encryptioncontext:", policy.KeyUnknown})
		b.unknown("kms:EncryptionContextKeys")
		return
	}
	keys := make([]string, 0, len(d.EncryptionContext)+1)
	for k, v := range d.EncryptionContext {
		b.ctx["kms:EncryptionContext:"+k] = v
		keys = append(keys, k)
	}
	if extra != "" {
		b.ctx["kms:EncryptionContext:"+extra] = d.ContextARN
		keys = append(keys, extra)
	}
	slices.Sort(keys)
	b.multi["kms:EncryptionContextKeys"] = keys
	b.prefixes = append(b.prefixes, prefixState{"kms:encryptioncontext:", policy.KeyAbsent})
}

// key sets the keys that are properties of the KMS key, from what the world read.
func (b *builder) key(k *world.Key) {
	if k == nil {
		k = &world.Key{}
	}
	b.set("kms:KeySpec", k.KeySpec)
	b.set("kms:CustomerMasterKeySpec", k.KeySpec) // the deprecated name of kms:KeySpec
	b.set("kms:KeyUsage", k.KeyUsage)
	b.set("kms:CustomerMasterKeyUsage", k.KeyUsage)
	b.set("kms:KeyOrigin", k.Origin)
	if k.MultiRegion != nil {
		b.set("kms:MultiRegion", strconv.FormatBool(*k.MultiRegion))
	} else {
		b.unknown("kms:MultiRegion")
	}
	if k.Aliases != nil {
		b.multi["kms:ResourceAliases"] = slices.Clone(k.Aliases)
	} else {
		b.unknown("kms:ResourceAliases")
	}
	b.tags("aws:ResourceTag/", k.Tags)
}

// tags sets prefix+<tag key> for each tag; nil tags leave every such key unknown. Tag keys
// in condition keys compare case-insensitively, as the context does.
func (b *builder) tags(prefix string, tags map[string]string) {
	if tags == nil {
		b.prefixes = append(b.prefixes, prefixState{strings.ToLower(prefix), policy.KeyUnknown})
		return
	}
	for k, v := range tags {
		b.ctx[prefix+k] = v
	}
	b.prefixes = append(b.prefixes, prefixState{strings.ToLower(prefix), policy.KeyAbsent})
}

// org sets <prefix>ID and <prefix>Paths (aws:PrincipalOrgID, aws:PrincipalOrgPaths, ...)
// from what the world knows of the account; an account known to be in no organization has
// neither.
func (b *builder) org(prefix string, a *world.Account) {
	if a == nil || a.OrgID == "" {
		b.unknown(prefix + "ID")
	} else {
		b.set(prefix+"ID", a.OrgID)
	}
	if a == nil || a.OrgPaths == nil {
		b.unknown(prefix + "Paths")
	} else {
		b.multi[prefix+"Paths"] = slices.Clone(a.OrgPaths)
	}
}

// requestAlias is the alias name a request used for the key ("alias/app-data"), or "".
func requestAlias(ref string) string {
	if i := strings.Index(ref, ":alias/"); i >= 0 {
		return ref[i+1:]
	}
	if strings.HasPrefix(ref, "alias/") {
		return ref
	}
	return ""
}

// ViaService is the kms:ViaService value of S3 in the request's Region. It is empty for a
// directory bucket: the value S3 Express One Zone's calls carry is not documented
// (unverified), so it is not claimed.
func ViaService(d *cloudtrail.Denial) string {
	if d.DirectoryBucket {
		return ""
	}
	region := d.Region
	if region == "" {
		region = d.KeyRegion
	}
	return "s3." + region + ".amazonaws.com"
}

// Identity lists a principal's identity policies for the evaluator.
func Identity(p *world.Principal) []policy.NamedDocument {
	out := make([]policy.NamedDocument, 0, len(p.Policies))
	for _, np := range p.Policies {
		out = append(out, policy.NamedDocument{Name: np.Name, Doc: np.Document})
	}
	return out
}

// Grants converts a key's grants for the evaluator.
func Grants(k *world.Key) []policy.Grant {
	out := make([]policy.Grant, 0, len(k.Grants))
	for _, g := range k.Grants {
		pg := policy.Grant{Grantee: g.Grantee, Operations: g.Operations}
		if g.Constraints != nil {
			pg.EncryptionContextEquals = g.Constraints.EncryptionContextEquals
			pg.EncryptionContextSubset = g.Constraints.EncryptionContextSubset
		}
		out = append(out, pg)
	}
	return out
}

// AWSManaged says the key is an AWS managed key (aws/s3): its policy cannot be edited and no
// other account can use it.
func AWSManaged(d *cloudtrail.Denial, k *world.Key) bool {
	if k != nil {
		if k.Manager == world.ManagerAWS {
			return true
		}
		for _, a := range k.Aliases {
			if strings.HasPrefix(a, "alias/aws/") {
				return true
			}
		}
	}
	return strings.HasSuffix(d.KeyRef, "alias/aws/s3")
}

// KeyPolicy is the key policy to evaluate: the world's, or for an AWS managed key whose
// policy was not read, the policy AWS gives every aws/s3 key (fixed, documented).
func KeyPolicy(d *cloudtrail.Denial, k *world.Key) *policy.Document {
	if k != nil && k.Policy != nil {
		return k.Policy
	}
	if !AWSManaged(d, k) || d.KeyAccount == "" {
		return nil
	}
	region := d.KeyRegion
	if region == "" {
		region = d.Region
	}
	return &policy.Document{Version: "2012-10-17", ID: "auto-s3-2", Statement: policy.Statements{
		{
			Sid: "Allow access through S3 for all principals in the account that are authorized to use S3", Effect: "Allow",
			Principal: policy.AWSPrincipal("*"),
			Action:    policy.List("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"),
			Resource:  policy.V("*"),
			Condition: policy.Condition{"StringEquals": {
				"kms:CallerAccount": policy.V(d.KeyAccount),
				"kms:ViaService":    policy.V("s3." + region + ".amazonaws.com"),
			}},
		},
		{
			Sid: "Allow direct access to key metadata to the account", Effect: "Allow",
			Principal: policy.AWSPrincipal("arn:aws:iam::" + d.KeyAccount + ":root"),
			Action:    policy.List("kms:Describe*", "kms:Get*", "kms:List*"),
			Resource:  policy.V("*"),
		},
	}}
}
