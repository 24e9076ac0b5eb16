package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"
	"github.com/aws/smithy-go"

	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
)

// PolicyValidator is IAM Access Analyzer's ValidatePolicy.
type PolicyValidator interface {
	ValidatePolicy(context.Context, *accessanalyzer.ValidatePolicyInput, ...func(*accessanalyzer.Options)) (*accessanalyzer.ValidatePolicyOutput, error)
}

var (
	_ PolicyValidator = (*accessanalyzer.Client)(nil)
	_ PatchChecker    = (*Validator)(nil)
)

// Validator checks every proposed policy with Access Analyzer (the pipeline's PatchChecker). An ERROR or SECURITY_WARNING
// finding, or a check that could not run, means the patch is not verified.
type Validator struct {
	api         PolicyValidator
	callTimeout time.Duration
	cache       *enrich.Cache[validation]
}

type validation struct {
	problems []string // ERROR and SECURITY_WARNING findings
	err      string   // the check could not run
}

// NewValidator returns a Validator; results are reused for identical documents for ttl.
func NewValidator(api PolicyValidator, ttl, callTimeout time.Duration) *Validator {
	return &Validator{api: api, callTimeout: callTimeout, cache: enrich.NewCache[validation](ttl, nil)}
}

// Check validates the patches' documents. problems are findings that clear `verified`;
// unknown names the checks that could not run.
func (v *Validator) Check(ctx context.Context, patches []finding.Patch) (problems, unknown []string) {
	for _, p := range patches {
		doc, typ, resource := patchDocument(p)
		if doc == nil {
			continue
		}
		b, err := json.Marshal(doc)
		if err != nil {
			unknown = append(unknown, fmt.Sprintf("%s patch for %s: %v", p.Kind, p.Target, err))
			continue
		}
		sum := sha256.Sum256(append([]byte(string(typ)+"\x00"), b...))
		ck := hex.EncodeToString(sum[:])
		res, ok := v.cache.Get(ck)
		if !ok {
			res = v.validate(ctx, string(b), typ, resource)
			if res.err == "" {
				v.cache.Put(ck, res)
			}
		}
		for _, pr := range res.problems {
			problems = append(problems, fmt.Sprintf("Access Analyzer on the %s patch for %s: %s", p.Kind, p.Target, pr))
		}
		if res.err != "" {
			unknown = append(unknown, fmt.Sprintf("accessanalyzer:ValidatePolicy on the %s patch for %s: %s", p.Kind, p.Target, res.err))
		}
	}
	return problems, unknown
}

// patchDocument returns the policy a patch would leave in place: the identity policy, or the
// whole key policy with the statement appended (the statement alone when the policy is
// unknown). Grants have no policy document. Access Analyzer has no resource type for KMS
// keys, so key policies get its general resource-policy checks.
func patchDocument(p finding.Patch) (*policy.Document, types.PolicyType, types.ValidatePolicyResourceType) {
	switch p.Kind {
	case finding.KindIdentityPolicy:
		if p.Policy != nil {
			return p.Policy, types.PolicyTypeIdentityPolicy, ""
		}
	case finding.KindKeyPolicyStatement:
		if p.MergedKeyPolicy != nil {
			return p.MergedKeyPolicy, types.PolicyTypeResourcePolicy, ""
		}
		if p.Statement != nil {
			return (&policy.Document{}).With(*p.Statement), types.PolicyTypeResourcePolicy, ""
		}
	}
	return nil, "", ""
}

func (v *Validator) validate(ctx context.Context, doc string, typ types.PolicyType, resource types.ValidatePolicyResourceType) validation {
	ctx, cancel := context.WithTimeout(ctx, v.callTimeout)
	defer cancel()
	in := &accessanalyzer.ValidatePolicyInput{PolicyDocument: aws.String(doc), PolicyType: typ, ValidatePolicyResourceType: resource}
	var res validation
	p := accessanalyzer.NewValidatePolicyPaginator(v.api, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return validation{err: reason(err)}
		}
		for _, f := range out.Findings {
			if f.FindingType == types.ValidatePolicyFindingTypeError || f.FindingType == types.ValidatePolicyFindingTypeSecurityWarning {
				res.problems = append(res.problems, fmt.Sprintf("%s %s: %s", f.FindingType, aws.ToString(f.IssueCode), aws.ToString(f.FindingDetails)))
			}
		}
	}
	return res
}

func reason(err error) string {
	var ae smithy.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &ae):
		return ae.ErrorCode()
	}
	return err.Error()
}
