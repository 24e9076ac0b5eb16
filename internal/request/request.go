// Package request builds what the policy evaluator reads for one denial: the KMS request S3
// made for the principal, and the policies the world holds for it (key policy, identity
// policies, permissions boundary, grants). diagnose and patch both evaluate through it, so
// the request a diagnosis judges is the one a patch is verified against.
package request

import (
	"strings"

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

// For is the request KMS authorized: the principal's session, via S3, with S3's
// encryption context.
func For(d *cloudtrail.Denial, w *world.World, action string) policy.Request {
	id := d.Identity
	ctx := map[string]string{
		"kms:ViaService":       ViaService(d),
		"kms:CallerAccount":    id.Account,
		"aws:PrincipalArn":     id.PrincipalARN,
		"aws:PrincipalAccount": id.Account,
		"aws:ViaAWSService":    "true",
	}
	if d.ContextARN != "" {
		ctx["kms:EncryptionContext:aws:s3:arn"] = d.ContextARN
	}
	session := ""
	if id.SessionARN != "" && id.SessionARN != id.PrincipalARN {
		session = id.SessionARN
	}
	return policy.Request{
		Action:   action,
		Resource: d.KeyARN,
		Caller:   policy.Caller{ARN: id.PrincipalARN, SessionARN: session, Account: id.Account},
		Context:  ctx,
	}
}

// ViaService is the kms:ViaService value of S3 in the request's Region.
func ViaService(d *cloudtrail.Denial) string {
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
