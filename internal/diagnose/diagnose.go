// Package diagnose decides why KMS refused a request S3 made for a principal: pure, from the
// denial and whatever the world knows (docs/contract.md section 1).
package diagnose

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/request"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Finding is the diagnosis and what a fix must add.
type Finding struct {
	Code   finding.Code
	Detail string
	// NeedIdentity and NeedKeyPolicy say which sides a patch must add.
	NeedIdentity  bool
	NeedKeyPolicy bool
	// Advice lists steps or commands for findings no policy fixes.
	Advice   []string
	Escalate string
	// Needed is the statement a layer the remediator cannot edit (SCP, boundary, ...) would need.
	Needed *policy.Statement
	// Unknown lists what the decision could not read.
	Unknown []string
	// KnownEnough says the world held every part needed to verify a patch by evaluation.
	KnownEnough bool
}

// Inputs gathers what one decision reads, so helpers share it.
type inputs struct {
	d        *cloudtrail.Denial
	w        *world.World
	key      *world.Key
	princ    *world.Principal
	same     bool // caller and key in one account
	who      string
	action   string
	keyName  string
	unknowns []string
	// authorized memoizes authorize: the denial and the world do not change during a decision.
	authorized *policy.KMSResult
	// base memoizes request.For for the denial; only its Action differs between actions.
	base *policy.Request
}

// request is the denied request for one of its actions (request.For), its context built
// once per decision.
func (in *inputs) request(action string) policy.Request {
	if in.base == nil {
		r := request.For(in.d, in.w, action)
		in.base = &r
	}
	r := *in.base
	r.Action = action
	return r
}

// Diagnose decides one denial.
func Diagnose(d *cloudtrail.Denial, w *world.World) Finding {
	in := inputs{d: d, w: w, key: w.Key(d.KeyARN), princ: w.Principal(d.Identity.PrincipalARN)}
	in.same = d.KeyAccount != "" && d.KeyAccount == d.Identity.Account
	in.who = Describe(d.Identity)
	in.action = strings.Join(d.Actions, " and ")
	in.keyName = keyName(d, in.key)
	if in.key == nil {
		in.unknowns = append(in.unknowns, "the key (DescribeKey, GetKeyPolicy)")
	} else if request.KeyPolicy(d, in.key) == nil {
		in.unknowns = append(in.unknowns, "the key policy")
	}
	if in.princ == nil && d.Identity.PrincipalARN != "" {
		in.unknowns = append(in.unknowns, "the principal's identity policies")
	}
	if d.Doubt != "" {
		// Reported, never verified: the record may not be S3's call (cloudtrail.Denial.Doubt).
		in.unknowns = append(in.unknowns, "whether S3 made this call ("+d.Doubt+")")
	}
	f := in.decide()
	if f.NeedIdentity && d.Identity.Kind == cloudtrail.KindServiceLinkedRole && in.same {
		// IAM refuses to edit a service-linked role: name it in the key policy instead.
		f.NeedIdentity, f.NeedKeyPolicy = false, true
		f.Detail += " A service-linked role's policies cannot be edited, so the fix is a key-policy statement naming the role."
	}
	if f.NeedIdentity || f.NeedKeyPolicy {
		f.Detail += in.nearMissGrants()
	}
	if f.NeedKeyPolicy && request.AWSManaged(d, in.key) {
		// AWS owns an AWS managed key's policy: no statement can be added to it.
		f.NeedKeyPolicy = false
	}
	if d.DirectoryBucket && (f.NeedIdentity || f.NeedKeyPolicy) {
		f.Detail += " The bucket is an S3 directory bucket: its encryption context is the bucket ARN (aws:s3express:arn), which the patch names; the kms:ViaService value of its calls is not documented, so the patch requires aws:ViaAWSService instead and cannot be shown to admit S3 alone."
	}
	if d.Doubt != "" {
		f.Detail += " " + capitalize(d.Doubt) + "; so this finding is not verified and nothing is applied."
	}
	f.Unknown = append(in.unknowns, w.UnreadableList()...)
	return f
}

func (in *inputs) decide() Finding {
	d := in.d
	if d.KeyARN == "" && (d.Message.Kind == cloudtrail.MsgNotFound || strings.HasSuffix(d.ErrorCode, "NotFoundException")) {
		key := d.KeyRef
		if key == "" {
			key = d.Message.Resource
		}
		return in.notFound(fmt.Sprintf("KMS key %s does not exist in %s for account %s: it was deleted, or the bucket's default encryption or the request names a key (or an alias, which resolves in the caller's account) of another account or Region. Use the key's full ARN.", orUnknown(key), orUnknown(d.Region), orUnknown(d.Identity.Account)))
	}
	if d.KeyARN == "" {
		return Finding{Code: finding.Undetermined,
			Detail: "The event does not name the KMS key (no resources[] entry, no key ARN in requestParameters or the message); run `aws s3api head-object` on the object to find SSEKMSKeyId."}
	}
	if f, ok := in.keyProblem(); ok {
		return f
	}
	if f, ok := in.principalProblem(); ok {
		return f
	}
	if f, ok := in.fromMessageLayer(); ok {
		return f
	}
	if request.AWSManaged(d, in.key) {
		if !in.same {
			return in.awsManagedCrossAccount()
		}
		return in.awsManagedSameAccount()
	}
	if f, ok := in.evaluate(); ok {
		return f
	}
	return in.fromMessage()
}

// keyProblem covers keys that are missing, in another Region, or in a state that refuses
// every request: no policy helps.
func (in *inputs) keyProblem() (Finding, bool) {
	d := in.d
	state := ""
	if in.key != nil {
		state = in.key.State
	}
	switch {
	case in.w.KeyMissing(d.KeyARN) && !(d.KeyRegion != "" && d.Region != "" && d.KeyRegion != d.Region):
		return in.notFound(fmt.Sprintf("KMS key %s does not exist in %s (deleted, or the bucket's default encryption or the request names a key of another account or Region).", d.KeyARN, d.KeyRegion)), true
	case d.KeyRegion != "" && d.Region != "" && d.KeyRegion != d.Region:
		return in.notFound(fmt.Sprintf("The request ran in %s but key %s is in %s; S3 needs a key in the bucket's Region.", d.Region, d.KeyARN, d.KeyRegion)), true
	case d.Message.Kind == cloudtrail.MsgNotFound || strings.HasSuffix(d.ErrorCode, "NotFoundException"):
		return in.notFound(fmt.Sprintf("KMS key %s does not exist in %s (deleted, or the bucket's default encryption or the request names a key of another account or Region).", d.KeyARN, d.KeyRegion)), true
	case state == world.StateDisabled || (state == "" && d.Message.Kind == cloudtrail.MsgDisabled):
		return Finding{Code: finding.KeyDisabled,
			Detail: fmt.Sprintf("KMS key %s is disabled, so every %s fails whatever the policies say; enable it (no policy change helps).", in.keyName, in.action),
			Advice: []string{quote.Command("aws", "kms", "enable-key", "--key-id", d.KeyARN, "--region", d.KeyRegion)}}, true
	case state == world.StatePendingDeletion || state == world.StatePendingReplicaDeletion ||
		(state == "" && d.Message.Kind == cloudtrail.MsgPendingDeletion):
		return Finding{Code: finding.KeyPendingDeletion,
			Detail: fmt.Sprintf("KMS key %s is scheduled for deletion: data encrypted under it becomes unreadable for good when the waiting period ends. Cancel the deletion now, then enable the key.", in.keyName),
			Advice: []string{
				quote.Command("aws", "kms", "cancel-key-deletion", "--key-id", d.KeyARN, "--region", d.KeyRegion),
				quote.Command("aws", "kms", "enable-key", "--key-id", d.KeyARN, "--region", d.KeyRegion),
			},
			Escalate: "the key's owners, urgently"}, true
	case state == world.StatePendingImport || state == world.StateUnavailable || state == world.StateCreating ||
		state == world.StateUpdating || (state == "" && d.Message.Kind == cloudtrail.MsgInvalidState):
		if state == "" {
			state = d.Message.State
		}
		return Finding{Code: finding.KeyUnavailable,
			Detail: fmt.Sprintf("KMS key %s cannot be used in state %s; no policy change helps.", in.keyName, orUnknown(state)),
			Advice: unavailableAdvice(state, d)}, true
	}
	return Finding{}, false
}

func (in *inputs) notFound(detail string) Finding {
	d := in.d
	var f = Finding{Code: finding.KeyNotFound, Detail: detail}
	if d.KeyARN != "" {
		f.Advice = append(f.Advice, quote.Command("aws", "kms", "describe-key", "--key-id", d.KeyARN, "--region", d.KeyRegion))
	}
	if d.Bucket != "" {
		f.Advice = append(f.Advice,
			quote.Command("aws", "s3api", "get-bucket-encryption", "--bucket", d.Bucket),
			putBucketEncryption(d.Bucket, "<key ARN in "+d.Region+">"))
	}
	return f
}

func unavailableAdvice(state string, d *cloudtrail.Denial) []string {
	switch state {
	case world.StatePendingImport:
		return []string{quote.Command("aws", "kms", "get-parameters-for-import", "--key-id", d.KeyARN, "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_4096", "--region", d.KeyRegion) + "  # then import-key-material"}
	case world.StateUnavailable:
		return []string{"The key's custom key store is disconnected: aws kms describe-custom-key-stores, then aws kms connect-custom-key-store --custom-key-store-id <id>"}
	}
	return []string{"Wait for the multi-Region key operation to finish (" + quote.Command("aws", "kms", "describe-key", "--key-id", d.KeyARN) + "), then retry."}
}

// principalProblem covers callers no policy should name.
func (in *inputs) principalProblem() (Finding, bool) {
	id := in.d.Identity
	switch id.Kind {
	case cloudtrail.KindRoot:
		return Finding{Code: finding.UnsupportedPrincipal,
			Detail: "The root user made this request; kmsfix does not grant the root user. Use an IAM role, and grant that role instead.",
			Advice: []string{"Repeat the request with an IAM role or user; kmsfix will then propose the grant for it."}}, true
	case cloudtrail.KindAnonymous:
		return Finding{Code: finding.UnsupportedPrincipal,
			Detail: "An anonymous caller (public access, or a CloudFront origin access identity) read an SSE-KMS object; anonymous callers can never use a KMS key.",
			Advice: []string{"Serve the objects through CloudFront origin access control (OAC) and add a key-policy statement for cloudfront.amazonaws.com conditioned on AWS:SourceArn = the distribution ARN, or store public objects with SSE-S3."}}, true
	case cloudtrail.KindUnknown:
		// Unknown is not anonymous: an IdentityCenterUser, a missing or null userIdentity, or
		// a type this version does not know names a caller kmsfix cannot read from the record.
		what := "has no userIdentity"
		if id.Type != "" {
			what = fmt.Sprintf("has userIdentity type %q, which names no IAM principal kmsfix can grant", shorten(id.Type, 40))
		}
		return Finding{Code: finding.UnsupportedPrincipal,
			Detail: fmt.Sprintf("The caller is unknown: the record %s (account %s). Nothing is proposed for it.", what, orUnknown(id.Account)),
			Advice: []string{"Find the caller in the S3 data event of the same request (CloudTrail data events for the bucket) or in the caller account's copy of this event, then run kmsfix on that record."}}, true
	}
	if id.PrincipalARN == "" {
		return Finding{Code: finding.UnsupportedPrincipal,
			Detail: fmt.Sprintf("The event names no IAM principal (userIdentity type %s, account %s); find the caller in the S3 data event or the caller account's copy of this event.", orUnknown(id.Type), orUnknown(id.Account)),
		}, true
	}
	return Finding{}, false
}

// layer is a policy layer kmsfix cannot read or edit, as error messages name it.
type layer struct {
	owner       string       // who must act
	denyCode    finding.Code // "with an explicit deny in ..."
	denyWhat    string
	noAllowCode finding.Code // "because no ... allows"; empty when the layer only restricts
	noAllowWhat string
}

var layers = map[string]layer{
	cloudtrail.PolicySCP: {"the AWS Organizations administrator (SCP owner)",
		finding.ExplicitDenySCP, "a service control policy explicitly denies",
		finding.SCPDoesNotAllow, "no service control policy allows"},
	cloudtrail.PolicyRCP: {"the AWS Organizations administrator (RCP owner)",
		finding.ExplicitDenyRCP, "a resource control policy explicitly denies", "", ""},
	cloudtrail.PolicyBoundary: {"whoever owns the permissions boundary (usually the platform team)",
		finding.ExplicitDenyPermissionsBoundary, "the principal's permissions boundary explicitly denies",
		finding.BoundaryDoesNotAllow, "the principal's permissions boundary does not allow"},
	cloudtrail.PolicySession: {"whoever creates the session (AssumeRole/GetFederationToken caller)",
		finding.ExplicitDenySessionPolicy, "the session policy passed when the session was created explicitly denies",
		finding.SessionPolicyDoesNotAllow, "the session policy does not allow"},
	cloudtrail.PolicyVPCEndpoint: {"the owner of the VPC endpoint",
		finding.ExplicitDenyVPCEndpointPolicy, "a VPC endpoint policy explicitly denies",
		finding.VPCEndpointPolicyDoesNotAllow, "the VPC endpoint policy does not allow"},
}

// fromMessageLayer covers layers the error message names and the world cannot show.
func (in *inputs) fromMessageLayer() (Finding, bool) {
	m := in.d.Message
	l, known := layers[m.PolicyType]
	switch {
	case m.Kind == cloudtrail.MsgExplicitDeny && m.PolicyType == cloudtrail.PolicyIdentity:
		return in.identityDeny(in.denyRef(policy.LayerIdentity)), true
	case m.Kind == cloudtrail.MsgExplicitDeny && m.PolicyType == cloudtrail.PolicyResource:
		return in.keyPolicyDeny(in.denyRef(policy.LayerKeyPolicy)), true
	case m.Kind == cloudtrail.MsgExplicitDeny && known:
		return in.escalate(l.denyCode, l.denyWhat, l.owner), true
	case m.Kind == cloudtrail.MsgNoAllow && known && l.noAllowCode != "":
		return in.layerDoesNotAllow(l), true
	}
	return Finding{}, false
}

// layerDoesNotAllow escalates a layer without an allow, with the statement it would need.
func (in *inputs) layerDoesNotAllow(l layer) Finding {
	f := in.escalate(l.noAllowCode, l.noAllowWhat, l.owner)
	f.Needed = in.neededStatement()
	return f
}

func (in *inputs) escalate(code finding.Code, what, owner string) Finding {
	return Finding{Code: code,
		Detail:   fmt.Sprintf("%s was refused %s on key %s: %s %s%s; no change kmsfix may make can fix it.", capitalize(in.who), in.action, in.keyName, what, in.action, policyARN(in.d)),
		Escalate: owner,
		Advice:   []string{"Ask " + owner + " to change that policy for this request; kmsfix never edits it."},
	}
}

// neededStatement is what an SCP, boundary, session or endpoint policy would need to allow.
func (in *inputs) neededStatement() *policy.Statement {
	d := in.d
	return &policy.Statement{
		Sid: "AllowKmsViaS3", Effect: "Allow",
		Action:    policy.List(d.Actions...),
		Resource:  policy.V(d.KeyARN),
		Condition: viaS3(d),
	}
}

// viaS3 is the condition that limits a statement to S3's calls: kms:ViaService, or for a
// directory bucket, whose kms:ViaService value is not documented, aws:ViaAWSService.
func viaS3(d *cloudtrail.Denial) policy.Condition {
	if via := request.ViaService(d); via != "" {
		return policy.Condition{"StringEquals": {"kms:ViaService": policy.V(via)}}
	}
	return policy.Condition{"Bool": {"aws:ViaAWSService": policy.V("true")}}
}

func (in *inputs) identityDeny(ref *policy.StatementRef) Finding {
	where := "one of the principal's identity policies"
	if ref != nil {
		where = fmt.Sprintf("identity policy %q (statement %s)", ref.Policy, sidOrIndex(ref))
	}
	owner := "the owner of the principal's IAM policies"
	explain, advice := in.denyAdvice(in.statementOf(ref, policy.LayerIdentity), where, owner)
	return Finding{Code: finding.ExplicitDenyIdentityPolicy,
		Detail: fmt.Sprintf("%s was refused %s on key %s: %s explicitly denies it.%s",
			capitalize(in.who), in.action, in.keyName, where, explain),
		Escalate: owner,
		Advice:   advice,
	}
}

func (in *inputs) keyPolicyDeny(ref *policy.StatementRef) Finding {
	where := "a Deny statement in the key policy"
	if ref != nil {
		where = fmt.Sprintf("key policy statement %s", sidOrIndex(ref))
	}
	owner := fmt.Sprintf("the key's administrators (account %s)", in.d.KeyAccount)
	explain, advice := in.denyAdvice(in.statementOf(ref, policy.LayerKeyPolicy), where, owner)
	return Finding{Code: finding.ExplicitDenyKeyPolicy,
		Detail: fmt.Sprintf("%s was refused %s on key %s: %s explicitly denies it.%s",
			capitalize(in.who), in.action, in.keyName, where, explain),
		Escalate: owner,
		Advice:   advice,
	}
}

func (in *inputs) awsManagedCrossAccount() Finding {
	d := in.d
	return Finding{Code: finding.AWSManagedKeyCrossAccount,
		Detail:   fmt.Sprintf("The object is encrypted with the AWS managed key aws/s3 of account %s, which no other account can ever use, and %s is in account %s. Re-encrypt the objects with a customer managed key and make it the bucket's default.", d.KeyAccount, in.who, d.Identity.Account),
		Escalate: fmt.Sprintf("the bucket owner (account %s)", d.KeyAccount),
		Advice: []string{
			// A comment runs to the end of the line: quote.Text keeps a value from ending it.
			quote.Command("aws", "kms", "create-key", "--description", orUnknown(d.Bucket)+" data shared with "+d.Identity.Account, "--region", d.KeyRegion) +
				"   # in account " + quote.Text(d.KeyAccount) + "; then allow " + quote.Text(d.Identity.PrincipalARN) + " in its key policy",
			putBucketEncryption(orUnknown(d.Bucket), "<new key ARN>"),
			quote.Command("aws", "s3", "cp", "s3://"+orUnknown(d.Bucket)+"/", "s3://"+orUnknown(d.Bucket)+"/", "--recursive", "--sse", "aws:kms") + ` --sse-kms-key-id "$NEW_KEY_ARN"   # re-encrypt existing objects in place (bucket owner; NEW_KEY_ARN is the key created above)`,
		}}
}

// awsManagedSameAccount decides a same-account denial on the AWS managed key aws/s3 against
// its key policy, which AWS writes and nobody can change ("You cannot change any properties
// of AWS managed keys, rotate them, change their key policies":
// https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key). That
// policy lets every principal of the owning account use the key through S3 in its Region
// (Principal "*", kms:CallerAccount = the account, kms:ViaService = s3.<region>.amazonaws.com;
// its text as GetKeyPolicy returns it, mirrored in request.KeyPolicy), and S3's 403 guide says
// the requester "must be from the same account that owns the aws/s3 KMS key"
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshoot-403-errors.html). So a
// same-account refusal is never the key policy's: it is the principal's side or a layer that
// denies, and no key-policy statement is ever proposed.
func (in *inputs) awsManagedSameAccount() Finding {
	d := in.d
	res := in.authorize()
	if res.Decision == policy.ExplicitDeny {
		switch res.DenyLayer {
		case policy.LayerIdentity:
			return in.identityDeny(res.Deny)
		case policy.LayerBoundary:
			l := layers[cloudtrail.PolicyBoundary]
			return in.escalate(l.denyCode, fmt.Sprintf("the permissions boundary (statement %s) explicitly denies", sidOrIndex(res.Deny)), l.owner)
		}
	}
	if d.Message.Kind == cloudtrail.MsgNoIdentityAllow {
		f := in.identityMissing(false)
		f.Detail += " The key is the AWS managed key aws/s3, whose policy AWS fixes; only the principal's side can change."
		return f
	}
	region := d.KeyRegion
	if region == "" {
		region = d.Region
	}
	who := "The principal's identity policies could not be read."
	if in.princ != nil {
		who = "The principal's identity policies that were read hold no Deny that matches; the refusal is in a layer kmsfix cannot read."
	}
	return Finding{Code: finding.Undetermined,
		Detail: fmt.Sprintf("Key %s is the AWS managed key aws/s3 of account %s. AWS writes its key policy and nobody can change it; that policy lets every principal of account %s use the key through S3 in %s (kms:CallerAccount, kms:ViaService = s3.%s.amazonaws.com), so the key policy did not refuse %s. The refusal is on the principal's side: a Deny in its identity policies, a permissions boundary or session policy that does not allow it, or an SCP or VPC endpoint policy. %s",
			in.keyName, d.KeyAccount, d.KeyAccount, region, region, in.who, who),
		Escalate: "the owner of the principal's IAM policies (and the organization's SCPs)",
		Advice: []string{
			quote.Command(append(append([]string{"aws", "iam", "simulate-principal-policy", "--policy-source-arn", d.Identity.PrincipalARN, "--action-names"},
				d.Actions...), "--resource-arns", d.KeyARN)...) + "   # shows an identity-side Deny or a boundary",
		}}
}

// evaluate decides from the policies the world holds. ok is false when the world knows too
// little to decide. A decision that rests on condition keys whose values are unknown is
// undetermined, whatever the known part says.
func (in *inputs) evaluate() (Finding, bool) {
	f, ok := in.evaluateKnown()
	if res := in.authorize(); res.Undetermined() {
		return in.restsOnUnknown(res, f, ok), true
	}
	return f, ok
}

// restsOnUnknown is the undetermined finding of a decision that rests on unknown condition
// values: it names the keys, and keeps the sides (the most likely patch, never verified)
// of what the policies say if the unknowns do not match.
func (in *inputs) restsOnUnknown(res policy.KMSResult, f Finding, ok bool) Finding {
	keys := strings.Join(res.Unknown, ", ")
	for _, k := range res.Unknown {
		in.unknowns = append(in.unknowns, "the value of condition key "+k+" for this request")
	}
	detail := fmt.Sprintf("Whether the policies kmsfix read allow %s to %s with key %s depends on %s, whose value for this request is in neither the CloudTrail record nor the world.", in.who, in.action, in.keyName, keys)
	if res.Upper == policy.Allow {
		detail += " If it matches, those policies allow the request and the refusal comes from elsewhere."
	}
	if ok && f.Detail != "" {
		detail += " If it does not: " + f.Detail
	}
	return Finding{Code: finding.Undetermined, Detail: detail,
		NeedIdentity: ok && f.NeedIdentity, NeedKeyPolicy: ok && f.NeedKeyPolicy,
		Advice: f.Advice, Escalate: f.Escalate}
}

// evaluateKnown decides from the policies the world holds, taking every unknown condition
// value as against the request.
func (in *inputs) evaluateKnown() (Finding, bool) {
	keyKnown := request.KeyPolicy(in.d, in.key) != nil
	princKnown := in.princ != nil
	if !keyKnown && !princKnown {
		return Finding{}, false
	}
	res := in.authorize()
	switch res.Decision {
	case policy.ExplicitDeny:
		switch res.DenyLayer {
		case policy.LayerKeyPolicy:
			return in.keyPolicyDeny(res.Deny), true
		case policy.LayerIdentity:
			return in.identityDeny(res.Deny), true
		case policy.LayerBoundary:
			l := layers[cloudtrail.PolicyBoundary]
			return in.escalate(l.denyCode, fmt.Sprintf("the permissions boundary (statement %s) explicitly denies", sidOrIndex(res.Deny)), l.owner), true
		}
	case policy.Allow:
		if !keyKnown || !princKnown {
			return Finding{}, false // an unknown side may be what refuses
		}
		return Finding{Code: finding.Undetermined,
			Detail: fmt.Sprintf("The key policy and identity policies the remediator read allow %s to %s with key %s, yet KMS refused: the refusal comes from a layer it cannot read (an SCP, RCP, session policy or VPC endpoint policy), or the policies changed since.", in.who, in.action, in.keyName)}, true
	}

	// Implicit deny: which side lacks the allow?
	// A boundary that does not allow the action caps any identity policy and any key-policy
	// statement naming a role, so no patch kmsfix writes can help; only a key-policy statement
	// naming an IAM user gets past it (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
	userFixable := in.d.Identity.Kind == cloudtrail.KindUser && keyKnown && !res.KeyPolicyAdmits()
	if in.princ != nil && in.princ.PermissionsBoundary != nil && res.Boundary.Decision != policy.Allow && !userFixable {
		f := in.layerDoesNotAllow(layers[cloudtrail.PolicyBoundary])
		if res.Identity.Decision != policy.Allow {
			f.Detail += " No identity policy allows it either: once the boundary allows it, an identity policy is needed too."
		}
		return f, true
	}
	keyAdmits := res.KeyPolicyAdmits()
	identityAllows := res.Identity.Decision == policy.Allow
	if !in.same {
		return in.crossAccountFrom(res, keyKnown, princKnown), true
	}
	switch {
	case keyKnown && !keyAdmits:
		if key := mismatchKey(res.KeyPolicy); key != "" {
			return in.conditionMismatch(nearMiss{where: "key policy", ref: res.KeyPolicy.NearMiss, key: key, side: keyPolicySide, known: keyKnown && princKnown}), true
		}
		return in.keyPolicyMissing(true), true
	case !princKnown:
		// The key admits the caller (or is unknown); the identity side is unknown.
		if !keyKnown || !res.KeyPolicy.ViaAccount {
			return Finding{}, false // the key policy alone allows: the cause is elsewhere
		}
		if in.d.Message.Kind == cloudtrail.MsgNoIdentityAllow {
			return in.identityMissing(false), true
		}
		return in.likely(true, fmt.Sprintf("The key policy of %s lets account %s grant access through IAM; the principal's identity policies could not be read: if none allows it, an identity policy fixes it.", in.keyName, in.d.Identity.Account)), true
	default: // the identity side is known; the key admits the caller or is unknown
		if !identityAllows {
			if key := mismatchKey(res.Identity); key != "" {
				return in.conditionMismatch(nearMiss{where: fmt.Sprintf("identity policy %q", res.Identity.NearMiss.Policy), ref: res.Identity.NearMiss, key: key, side: identitySide, known: keyKnown}), true
			}
		}
		if key := mismatchKey(res.KeyPolicy); !identityAllows && key != "" && res.KeyPolicy.ViaAccount {
			// The key policy names the caller in a statement whose condition fails; the
			// account delegation alone is not what was meant to allow it.
			return in.conditionMismatch(nearMiss{where: "key policy", ref: res.KeyPolicy.NearMiss, key: key, side: keyPolicySide, known: keyKnown && princKnown}), true
		}
		if keyKnown {
			return in.identityMissing(true), true
		}
		if in.d.Message.Kind == cloudtrail.MsgNoResourceAllow {
			return in.keyPolicyMissing(false), true
		}
		if identityAllows {
			return in.likely(false, fmt.Sprintf("The identity policies of %s allow it; the key policy could not be read: if it neither names the principal nor lets account %s delegate through IAM, a key-policy statement fixes it.", in.who, in.d.KeyAccount)), true
		}
		return in.identityMissing(false), true
	}
}

// crossAccountFrom decides an implicit deny across accounts: a condition that no longer
// matches, or the sides (key policy, caller's IAM) that lack the allow. A side is left out
// only when the world shows it already allows (docs/contract.md, cross-account-access-missing).
func (in *inputs) crossAccountFrom(res policy.KMSResult, keyKnown, princKnown bool) Finding {
	keyAdmits := keyKnown && res.KeyPolicyAdmits()
	identityAllows := princKnown && res.Identity.Decision == policy.Allow
	known := keyKnown && princKnown
	if key := mismatchKey(res.Identity); princKnown && !identityAllows && keyAdmits && key != "" {
		return in.conditionMismatch(nearMiss{where: fmt.Sprintf("identity policy %q", res.Identity.NearMiss.Policy), ref: res.Identity.NearMiss, key: key, side: identitySide, known: known})
	}
	if key := mismatchKey(res.KeyPolicy); keyKnown && !keyAdmits && identityAllows && key != "" {
		return in.conditionMismatch(nearMiss{where: "key policy", ref: res.KeyPolicy.NearMiss, key: key, side: keyPolicySide, known: known})
	}
	return in.crossAccount(!identityAllows, !keyAdmits, known)
}

// keyPolicyMissing: the key policy read does not admit the caller, or KMS's message says no
// resource-based policy allows (when the key policy was not read).
func (in *inputs) keyPolicyMissing(known bool) Finding {
	detail := fmt.Sprintf("The key policy of %s neither names %s nor lets account %s delegate through IAM (no statement for arn:aws:iam::%s:root), so identity policies cannot grant %s; add a key-policy statement for the principal.", in.keyName, in.who, in.d.KeyAccount, in.d.KeyAccount, in.action)
	if !in.keyRead() {
		detail = fmt.Sprintf("KMS says no resource-based policy allows %s to %s with key %s. The key policy could not be read (GetKeyPolicy would show it): if it neither names the principal nor lets account %s delegate through IAM, the proposed key-policy statement fixes it.", in.who, in.action, in.keyName, in.d.KeyAccount)
	}
	return Finding{Code: finding.KeyPolicyMissing, NeedKeyPolicy: true, KnownEnough: known, Detail: detail}
}

// keyRead says the key policy was read (or is the documented policy of an AWS managed key).
func (in *inputs) keyRead() bool { return request.KeyPolicy(in.d, in.key) != nil }

// likely is the answer when the message gives no reason and a side that decides it was not
// read: undetermined, with the most likely patch (unverified) and what would settle it.
func (in *inputs) likely(needIdentity bool, why string) Finding {
	f := Finding{Code: finding.Undetermined, NeedIdentity: needIdentity, NeedKeyPolicy: !needIdentity}
	settle := "reading the principal's identity policies (its inline and attached IAM policies) would settle it"
	patch := "an identity policy"
	if !needIdentity {
		settle = "reading the key policy (kms get-key-policy) would settle it"
		patch = "a key-policy statement"
	}
	f.Detail = fmt.Sprintf("KMS refused %s %s on key %s, and its message does not say which policy refused. %s Most likely fix: %s (unverified); %s.", in.who, in.action, in.keyName, why, patch, settle)
	return f
}

// denyRef finds the Deny statement of a layer the message named, when the world holds it.
func (in *inputs) denyRef(layer string) *policy.StatementRef {
	if res := in.authorize(); res.DenyLayer == layer {
		return res.Deny
	}
	return nil
}

func (in *inputs) authorize() policy.KMSResult {
	if in.authorized != nil {
		return *in.authorized
	}
	ins := in.kmsInputs()
	// Every action must be allowed; report the first that is not.
	var res policy.KMSResult
	for _, a := range in.d.Actions {
		res = policy.AuthorizeKMS(in.request(a), ins)
		if res.Decision != policy.Allow {
			break
		}
	}
	in.authorized = &res
	return res
}

// kmsInputs is what the world holds for the evaluator.
func (in *inputs) kmsInputs() policy.KMSInputs { return request.Inputs(in.d, in.w) }

// identityMissing: no identity policy read allows the call, or KMS's message says none does
// (when they were not read). The key policy is described only when it was read.
func (in *inputs) identityMissing(known bool) Finding {
	var detail string
	switch {
	case in.princ != nil && in.keyRead():
		detail = fmt.Sprintf("The key policy of %s lets account %s grant access through IAM, but no identity policy of %s allows %s on it; attach an identity policy.", in.keyName, in.d.Identity.Account, in.who, in.action)
	case in.princ != nil:
		detail = fmt.Sprintf("No identity policy of %s allows %s on key %s; attach an identity policy. The key policy could not be read: if it does not let account %s delegate through IAM, a key-policy statement is needed as well.", in.who, in.action, in.keyName, in.d.KeyAccount)
	case in.keyRead():
		detail = fmt.Sprintf("KMS says no identity-based policy of %s allows %s on key %s, whose key policy lets account %s grant access through IAM; attach an identity policy. The principal's identity policies could not be read, so this is KMS's word, not checked.", in.who, in.action, in.keyName, in.d.Identity.Account)
	default:
		detail = fmt.Sprintf("KMS says no identity-based policy of %s allows %s on key %s; attach an identity policy. Neither the key policy nor the principal's policies could be read: if the key policy does not let account %s delegate through IAM, a key-policy statement is needed as well.", in.who, in.action, in.keyName, in.d.KeyAccount)
	}
	return Finding{Code: finding.IdentityPolicyMissing, NeedIdentity: true, KnownEnough: known && in.princ != nil, Detail: detail}
}

func (in *inputs) crossAccount(needIdentity, needKey, known bool) Finding {
	d := in.d
	var parts []string
	if needKey {
		p := fmt.Sprintf("a key-policy statement in account %s naming %s", d.KeyAccount, d.Identity.PrincipalARN)
		if !in.keyRead() {
			p += " (the key policy could not be read: not needed if it already admits the principal)"
		}
		parts = append(parts, p)
	}
	if needIdentity {
		p := fmt.Sprintf("an identity policy on %s in account %s", in.who, d.Identity.Account)
		if in.princ == nil {
			p += " (its identity policies could not be read: not needed if one already allows it)"
		}
		parts = append(parts, p)
	}
	f := Finding{Code: finding.CrossAccountAccessMissing, NeedIdentity: needIdentity, NeedKeyPolicy: needKey, KnownEnough: known,
		Detail: fmt.Sprintf("Key %s belongs to account %s and %s in account %s was refused %s; cross-account use needs the key policy and the caller's IAM to both allow it. Missing: %s.",
			in.keyName, d.KeyAccount, in.who, d.Identity.Account, in.action, strings.Join(parts, " and "))}
	if needKey {
		// Only the key-policy side is the key owner's to change.
		f.Escalate = fmt.Sprintf("the key's administrators in account %s (for the key-policy statement)", d.KeyAccount)
	}
	return f
}

// side is the policy a patch for a condition mismatch goes into.
type side int

const (
	identitySide side = iota
	keyPolicySide
)

// nearMiss is an allow statement whose condition on key does not match the request.
type nearMiss struct {
	where string // "key policy", "identity policy \"NAME\""
	ref   *policy.StatementRef
	key   string
	side  side
	known bool // every part needed to verify a patch was read
}

func (in *inputs) conditionMismatch(nm nearMiss) Finding {
	d, key := in.d, nm.key
	why := ""
	switch strings.ToLower(key) {
	case "kms:encryptioncontext:aws:s3express:arn":
		why = fmt.Sprintf(" The directory bucket's context is its bucket ARN %s.", d.ContextARN)
	case "kms:encryptioncontext:aws:s3:arn":
		if d.BucketKey {
			why = fmt.Sprintf(" The bucket uses S3 Bucket Keys, so the context is the bucket ARN arn:aws:s3:::%s, not an object ARN.", d.Bucket)
		} else {
			why = fmt.Sprintf(" The request's context is %s.", d.ContextARN)
		}
	case "kms:viaservice":
		if via := request.ViaService(d); via != "" {
			why = fmt.Sprintf(" The request came through %s.", via)
		}
	}
	f := Finding{Code: finding.ConditionMismatch, NeedIdentity: nm.side == identitySide, NeedKeyPolicy: nm.side == keyPolicySide, KnownEnough: nm.known,
		Detail: fmt.Sprintf("%s allows %s on %s, but its condition on %s does not match this request.%s", nm.where+" statement "+sidOrIndex(nm.ref), in.action, in.keyName, key, why)}
	f.Detail = capitalize(f.Detail)
	return f
}

// mismatchKey returns the condition key of a near-miss allow when it describes the request
// (not who the caller is, which is a different cause).
func mismatchKey(r policy.Result) string {
	if r.NearMiss == nil {
		return ""
	}
	switch k := strings.ToLower(r.NearMissKey); {
	case k == "kms:calleraccount", k == "aws:principalaccount", k == "aws:principalarn",
		k == "aws:principalorgid", k == "aws:principalorgpaths", k == "aws:userid", k == "aws:username",
		k == "aws:principaltype", strings.HasPrefix(k, "aws:principaltag/"):
		return ""
	}
	return r.NearMissKey
}

// fromMessage decides from the error message alone, when the world cannot.
func (in *inputs) fromMessage() Finding {
	d := in.d
	switch d.Message.Kind {
	case cloudtrail.MsgNoIdentityAllow:
		if !in.same {
			return in.crossAccount(true, !in.keyKnownToAdmit(), false)
		}
		return in.identityMissing(false)
	case cloudtrail.MsgNoResourceAllow:
		if in.same {
			return in.keyPolicyMissing(false)
		}
		return in.crossAccount(!in.identityKnownToAllow(), true, false)
	}
	if d.Message.Kind == cloudtrail.MsgExplicitDeny {
		// The message says a Deny matched but not where; unread policies cannot say which.
		return Finding{Code: finding.Undetermined,
			Detail:   fmt.Sprintf("KMS refused %s %s on key %s with an explicit deny, and the message does not name the policy type. %s Look for a Deny statement matching this request in the key policy first, then in the principal's identity policies, permissions boundary, session policy and the organization's SCPs and RCPs.", in.who, in.action, in.keyName, in.unreadSentence()),
			Escalate: "the owners of the key policy and of the principal's policies"}
	}
	if !in.same {
		// Ambiguous, old or unknown wording: cross-account denials look like this.
		return in.crossAccount(!in.identityKnownToAllow(), true, false)
	}
	if in.keyRead() {
		// The key policy read admits the caller (evaluate found nothing to fix on its side).
		return in.likely(true, fmt.Sprintf("The key policy of %s admits the principal; %s", in.keyName, in.unreadSentence()))
	}
	return in.likely(false, in.unreadSentence())
}

// unreadSentence says which sides could not be read.
func (in *inputs) unreadSentence() string {
	switch {
	case !in.keyRead() && in.princ == nil:
		return "Neither the key policy nor the principal's identity policies could be read."
	case !in.keyRead():
		return "The key policy could not be read."
	case in.princ == nil:
		return "The principal's identity policies could not be read."
	}
	return "Both the key policy and the principal's identity policies were read."
}

// keyKnownToAdmit says the world's key policy lets the caller (or its account) in.
func (in *inputs) keyKnownToAdmit() bool {
	if request.KeyPolicy(in.d, in.key) == nil {
		return false
	}
	return in.authorize().KeyPolicyAdmits()
}

func (in *inputs) identityKnownToAllow() bool {
	if in.princ == nil {
		return false
	}
	ins := in.kmsInputs()
	for _, a := range in.d.Actions {
		res := policy.AuthorizeKMS(in.request(a), ins)
		if res.Identity.Decision != policy.Allow || res.Boundary.Decision != policy.Allow {
			return false
		}
	}
	return true
}

// Describe names the principal for people: "role app/reader", "user report-uploader".
func Describe(id cloudtrail.Identity) string {
	arn := id.PrincipalARN
	i := strings.Index(arn, ":role/")
	if i < 0 {
		i = strings.Index(arn, ":user/")
	}
	if i < 0 {
		if arn == "" {
			return "the caller"
		}
		return arn
	}
	kind, name := "role", arn[i+len(":role/"):]
	if strings.HasPrefix(arn[i:], ":user/") {
		kind = "user"
	}
	switch id.Kind {
	case cloudtrail.KindSSORole:
		kind = "IAM Identity Center role"
	case cloudtrail.KindServiceLinkedRole:
		kind = "service-linked role"
	case cloudtrail.KindFederatedUser:
		kind = "federated user of"
	}
	return kind + " " + name
}

func keyName(d *cloudtrail.Denial, k *world.Key) string {
	if k != nil && len(k.Aliases) > 0 {
		return fmt.Sprintf("%s (%s)", d.KeyARN, k.Aliases[0])
	}
	return d.KeyARN
}

// policyARN names the denying policy when the message carries its ARN (2025 and later).
func policyARN(d *cloudtrail.Denial) string {
	if d.Message.PolicyARN == "" {
		return ""
	}
	return " (" + d.Message.PolicyARN + ")"
}

func sidOrIndex(r *policy.StatementRef) string {
	if r == nil {
		return ""
	}
	if r.Sid != "" {
		return fmt.Sprintf("%q", r.Sid)
	}
	return fmt.Sprintf("#%d", r.Index+1)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// putBucketEncryption is the command that makes key the bucket's default encryption with S3
// Bucket Keys; key may be a placeholder such as "<new key ARN>".
func putBucketEncryption(bucket, key string) string {
	type byDefault struct {
		SSEAlgorithm   string
		KMSMasterKeyID string
	}
	type rule struct {
		ApplyServerSideEncryptionByDefault byDefault
		BucketKeyEnabled                   bool
	}
	var cfg strings.Builder
	enc := json.NewEncoder(&cfg)
	// The placeholder's <> stay readable; the shell quoting protects them. Encode cannot fail
	// on strings and a bool.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct{ Rules []rule }{[]rule{{byDefault{"aws:kms", key}, true}}})
	return quote.Command("aws", "s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration", strings.TrimSuffix(cfg.String(), "\n"))
}
