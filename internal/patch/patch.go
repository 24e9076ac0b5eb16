// Package patch writes the least-privilege fix for a finding (docs/contract.md section 3) and
// verifies it by evaluation: the denied request becomes allowed and nothing else does.
package patch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/request"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Name is the deterministic name of this fix: the inline policy name and, without dashes, the
// statement Sid, so a repeat finds and replaces its own change.
func Name(d *cloudtrail.Denial) string {
	actions := slices.Clone(d.Actions)
	slices.Sort(actions)
	h := sha256.Sum256([]byte(d.Identity.PrincipalARN + "|" + d.KeyARN + "|" + strings.Join(actions, ",") + "|" + d.Bucket))
	return "kmsfix-s3-" + hex.EncodeToString(h[:6])
}

// Sid is the statement id for Name: IAM Sids allow only letters and digits.
func Sid(d *cloudtrail.Denial) string {
	return "KmsfixS3" + strings.TrimPrefix(Name(d), "kmsfix-s3-")
}

// Sides says which sides of the authorization a fix must add to: the principal's identity
// policy, the key policy, or both (a diagnosis decides; patch only writes).
type Sides struct {
	NeedIdentity  bool
	NeedKeyPolicy bool
}

// Build returns the patches for the sides a diagnosis found missing. It builds none when the
// record names no valid bucket: every statement must be limited to the bucket's encryption
// context, and a name S3 would refuse (a wildcard, a shell character) never reaches a patch.
func Build(d *cloudtrail.Denial, f Sides, w *world.World) []finding.Patch {
	if d.Bucket == "" || d.ContextARN == "" {
		return nil
	}
	var out []finding.Patch
	if f.NeedIdentity {
		out = append(out, identityPatch(d))
	}
	if f.NeedKeyPolicy {
		out = append(out, keyPolicyPatch(d, w.Key(d.KeyARN)))
	}
	return out
}

// conditions limit a statement to S3 in the request's Region and to this bucket's objects (or
// the bucket itself, which is the context when the bucket uses S3 Bucket Keys).
//
// A directory bucket's context is its bucket ARN under aws:s3express:arn
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-express-UsingKMSEncryption.html,
// "Encryption context"): the statement names exactly that value. The kms:ViaService value of
// S3 Express One Zone's calls is not documented there nor found elsewhere (unverified), so
// instead of guessing it the statement requires aws:ViaAWSService, which is true on every
// forward access session (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-viaawsservice):
// direct calls stay refused, but "through S3 only" cannot be shown, so such a patch is never
// verified (the probe through another service is allowed by it).
func conditions(d *cloudtrail.Denial, withCallerAccount bool) policy.Condition {
	eq := map[string]policy.Values{}
	if withCallerAccount {
		eq["kms:CallerAccount"] = policy.V(d.Identity.Account)
	}
	if d.DirectoryBucket {
		eq["kms:EncryptionContext:"+cloudtrail.DirectoryContextKey] = policy.V(d.ContextARN)
		return policy.Condition{"StringEquals": eq, "Bool": {"aws:ViaAWSService": policy.V("true")}}
	}
	eq["kms:ViaService"] = policy.V(request.ViaService(d))
	c := policy.Condition{"StringEquals": eq}
	if b := bucketARN(d); b != "" {
		c["StringLike"] = map[string]policy.Values{
			"kms:EncryptionContext:aws:s3:arn": policy.List(b, b+"/*"),
		}
	}
	return c
}

func bucketARN(d *cloudtrail.Denial) string {
	if d.Bucket == "" {
		return ""
	}
	partition := "aws"
	if p := strings.SplitN(d.ContextARN, ":", 3); len(p) == 3 && p[1] != "" {
		partition = p[1]
	}
	return "arn:" + partition + ":s3:::" + d.Bucket
}

func identityPatch(d *cloudtrail.Denial) finding.Patch {
	doc := &policy.Document{Version: "2012-10-17", Statement: policy.Statements{{
		Sid:       Sid(d),
		Effect:    "Allow",
		Action:    policy.List(d.Actions...),
		Resource:  policy.V(d.KeyARN),
		Condition: conditions(d, false),
	}}}
	p := finding.Patch{
		Kind:    finding.KindIdentityPolicy,
		Account: d.Identity.Account,
		Target:  d.Identity.PrincipalARN,
		Policy:  doc,
		Name:    Name(d),
	}
	p.Commands = identityCommands(d, p)
	return p
}

func keyPolicyPatch(d *cloudtrail.Denial, k *world.Key) finding.Patch {
	st := &policy.Statement{
		Sid:       Sid(d),
		Effect:    "Allow",
		Principal: policy.AWSPrincipal(d.Identity.PrincipalARN),
		Action:    policy.List(d.Actions...),
		Resource:  policy.V(d.KeyARN),
		Condition: conditions(d, true),
	}
	if pattern, ok := PermissionSetPattern(d.Identity); ok {
		// IAM Identity Center replaces a permission set's role, with a new suffix, whenever
		// its assignments are removed and added again, and a key policy naming the old ARN then
		// names a deleted role: AWS's page on referencing permission sets in resource policies
		// and KMS key policies documents the ARN format and that change
		// (https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html).
		// The durable form matches the role by ArnLike aws:PrincipalArn with only the suffix
		// wildcarded, with the account as Principal (the form in common use; whether the page
		// prints this exact statement could not be re-read here: unverified). The role's own
		// IAM policy (the permission set) must then allow too, as for any principal of the
		// account, and the condition picks this permission set's role in this Region only.
		st.Principal = policy.AWSPrincipal("arn:" + partitionOf(d.Identity.PrincipalARN) + ":iam::" + d.Identity.Account + ":root")
		st.Condition["ArnLike"] = map[string]policy.Values{"aws:PrincipalArn": policy.V(pattern)}
	}
	p := finding.Patch{
		Kind:      finding.KindKeyPolicyStatement,
		Account:   d.KeyAccount,
		Target:    d.KeyARN,
		Statement: st,
		Name:      Sid(d),
	}
	if k != nil && k.Policy != nil {
		if _, exists := k.Policy.StatementBySid(st.Sid); !exists {
			p.MergedKeyPolicy = k.Policy.With(*st)
		}
	}
	p.Commands = keyPolicyCommands(d, p)
	return p
}

// Every value in a command came from the event or from AWS: each goes through quote.Shell,
// so a pasted command passes it as one argument, byte for byte, and runs nothing else.
func identityCommands(d *cloudtrail.Denial, p finding.Patch) []string {
	doc := quote.Shell(compact(p.Policy))
	arn := d.Identity.PrincipalARN
	name := quote.Shell(arn[strings.LastIndex(arn, "/")+1:])
	switch {
	case strings.Contains(arn, ":user/"):
		return []string{fmt.Sprintf("aws iam put-user-policy --user-name %s --policy-name %s --policy-document %s", name, quote.Shell(p.Name), doc)}
	case d.Identity.Kind == cloudtrail.KindSSORole:
		// Two lines, each one line of shell text: no command holds a line break of its own.
		// The ARNs kmsfix cannot know are shell variables, not <placeholders> a paste would
		// read as redirections.
		// put-inline-policy-to-permission-set replaces the permission set's whole inline
		// policy, so the statement is merged into the current one (an empty one when there is
		// none), then the permission set is provisioned to its accounts again.
		st := quote.Shell(compact(p.Policy.Statement[0]))
		return []string{"# IAM Identity Center owns this role: add the statement to its permission set's inline policy in the management account (set INSTANCE_ARN and PERMISSION_SET_ARN first); putting the policy replaces the whole inline policy, so merge it:",
			`aws sso-admin get-inline-policy-for-permission-set --instance-arn "$INSTANCE_ARN" --permission-set-arn "$PERMISSION_SET_ARN" --query InlinePolicy --output json > permission-set-policy.json`,
			`jq --argjson s ` + st + ` '(if . == null or . == "" then {"Version":"2012-10-17","Statement":[]} else fromjson end) | .Statement += [$s]' permission-set-policy.json > permission-set-policy.new.json`,
			`aws sso-admin put-inline-policy-to-permission-set --instance-arn "$INSTANCE_ARN" --permission-set-arn "$PERMISSION_SET_ARN" --inline-policy file://permission-set-policy.new.json`,
			`aws sso-admin provision-permission-set --instance-arn "$INSTANCE_ARN" --permission-set-arn "$PERMISSION_SET_ARN" --target-type ALL_PROVISIONED_ACCOUNTS`}
	}
	return []string{fmt.Sprintf("aws iam put-role-policy --role-name %s --policy-name %s --policy-document %s", name, quote.Shell(p.Name), doc)}
}

func keyPolicyCommands(d *cloudtrail.Denial, p finding.Patch) []string {
	region, key := quote.Shell(d.KeyRegion), quote.Shell(d.KeyARN)
	if p.MergedKeyPolicy != nil {
		return []string{fmt.Sprintf("aws kms put-key-policy --region %s --key-id %s --policy-name default --policy %s", region, key, quote.Shell(compact(p.MergedKeyPolicy)))}
	}
	return []string{
		fmt.Sprintf("aws kms get-key-policy --region %s --key-id %s --policy-name default --query Policy --output text > key-policy.json", region, key),
		fmt.Sprintf("jq --argjson s %s '.Statement += [$s]' key-policy.json > key-policy.new.json", quote.Shell(compact(p.Statement))),
		fmt.Sprintf("aws kms put-key-policy --region %s --key-id %s --policy-name default --policy file://key-policy.new.json", region, key),
	}
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<unencodable: %v>", err)
	}
	return string(b)
}

// PermissionSetPattern is the durable aws:PrincipalArn pattern for an IAM Identity Center
// role: its ARN with the unique suffix after the permission set's name wildcarded
// (arn:aws:iam::A:role/aws-reserved/sso.amazonaws.com/REGION/AWSReservedSSO_NAME_*). ok is
// false for any other principal, and for a name or path with characters IAM does not allow
// (a wildcard there would widen the pattern).
func PermissionSetPattern(id cloudtrail.Identity) (string, bool) {
	if id.Kind != cloudtrail.KindSSORole || id.Account == "" {
		return "", false
	}
	arn := id.PrincipalARN
	i := strings.LastIndex(arn, "/AWSReservedSSO_")
	j := strings.LastIndexByte(arn, '_')
	if i < 0 || j <= i+len("/AWSReservedSSO_") || !strings.Contains(arn[:i+1], ":role/aws-reserved/sso.amazonaws.com/") {
		return "", false
	}
	for _, c := range arn[:j] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":/_+=,.@-", c)) {
			return "", false
		}
	}
	for _, c := range arn[j+1:] {
		if !(c >= 'a' && c <= 'f' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return arn[:j+1] + "*", true
}

func partitionOf(arn string) string {
	if p := strings.SplitN(arn, ":", 3); len(p) == 3 && p[1] != "" {
		return p[1]
	}
	return "aws"
}
