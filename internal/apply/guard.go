package apply

import (
	"fmt"
	"slices"
	"strings"

	accesstypes "github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/decision"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Quotas a change must stay within (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html,
// https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html).
const (
	MaxKeyPolicyBytes   = 32768 // PutKeyPolicy: LimitExceededException above
	MaxRoleInlineChars  = 10240 // aggregate inline policies of a role, whitespace not counted
	MaxUserInlineChars  = 2048  // aggregate inline policies of a user
	lockoutSafetyBypass = false // never true: the lockout safety check stays on
)

// AdminActions are the KMS actions an automatic change must never grant; Access Analyzer's
// CheckAccessNotGranted proves the patch does not.
var AdminActions = []string{"kms:PutKeyPolicy", "kms:CreateGrant", "kms:ScheduleKeyDeletion", "kms:DisableKey"}

// grantOperations are the only operations an automatic grant may carry: the data keys S3
// asks KMS for (the stack's kms:GrantOperations condition allows the same two).
var grantOperations = []string{"Decrypt", "GenerateDataKey"}

// Candidate is one lever that could apply the fix, with the patch it would apply.
type Candidate struct {
	Lever string // finding.KindIdentityPolicy, KindKeyPolicyStatement or KindGrant
	Patch finding.Patch
	// Why this lever rather than the report's own patch, when it is a fallback.
	Fallback string
}

// Decision is what the guard decided: the levers that may apply the fix, best first, or
// why none may; Skipped says why other levers were left out.
type Decision struct {
	Candidates []Candidate
	Refusal    string
	Skipped    []string
}

// Decide is the pure part of the guard: whether this finding may be applied automatically
// in this account, and with which levers, best first. A refusal says why in words a person
// reading the notification understands. d is the parsed denial the report was made from (it
// travels with the report; nothing is rebuilt from the report's fields): the alternative
// levers are built and verified against it.
func Decide(s Settings, r *finding.Report, d *cloudtrail.Denial, w *world.World) Decision {
	cands, why, skipped := decide(s, r, d, w)
	return Decision{Candidates: cands, Refusal: why, Skipped: skipped}
}

func decide(s Settings, r *finding.Report, d *cloudtrail.Denial, w *world.World) ([]Candidate, string, []string) {
	switch {
	case !s.Enabled:
		return nil, "automatic fixes are off (KMSFIX_MODE is not apply)", nil
	case r.Ignored != "":
		return nil, "ignored event", nil
	case !r.Diagnosis.PolicyFixable():
		return nil, fmt.Sprintf("diagnosis %s is not an implicit deny that a policy fixes", r.Diagnosis), nil
	case !slices.Contains(s.Diagnoses, r.Diagnosis):
		return nil, fmt.Sprintf("diagnosis %s is not in KMSFIX_APPLY_DIAGNOSES", r.Diagnosis), nil
	case s.Account == "":
		return nil, "the remediator's own account is unknown (KMSFIX_REMEDIATOR_ROLE_ARN is not set)", nil
	case !slices.Contains(s.SandboxAccounts, s.Account):
		return nil, fmt.Sprintf("account %s is not a sandbox account (KMSFIX_SANDBOX_ACCOUNTS)", s.Account), nil
	case len(r.Patches) == 0:
		return nil, "the finding has no patch", nil
	case !r.Verified:
		why := r.Unverified
		if why == "" {
			why = "not verified"
		}
		return nil, "the engine did not verify the patch: " + why, nil
	}
	if why := principalRefusal(r); why != "" {
		return nil, why, nil
	}
	// Only the side of the fix in this account: a cross-account finding has a side in the
	// key's account and a side in the caller's, and this function can edit only its own.
	var own []finding.Patch
	for _, p := range r.Patches {
		if p.Account == s.Account {
			own = append(own, p)
		}
	}
	if len(own) == 0 {
		return nil, fmt.Sprintf("no part of the fix is in this account (%s); the patches are for %s", s.Account, patchAccounts(r.Patches)), nil
	}
	if len(own) > 1 {
		return nil, "the fix needs more than one change in this account; applying only part of it would not fix the request", nil
	}
	p := own[0]
	if d == nil {
		return nil, "the request the finding describes is not known (no parsed denial came with the report)", nil
	}
	var out []Candidate
	var why []string
	switch p.Kind {
	case finding.KindIdentityPolicy:
		if editable, reason := IdentityEditable(r); editable {
			out = append(out, Candidate{Lever: finding.KindIdentityPolicy, Patch: p})
		} else {
			why = append(why, "IAM cannot edit "+r.Principal+": "+reason)
		}
		// The key's side serves only when the key is in this account too, and only if the
		// evaluator shows it fixes the request and opens nothing else.
		if r.KeyAccount == s.Account {
			kp := keyPolicyAlternative(d, w)
			out, why = addVerified(out, why, d, w, kp, "the key policy names the principal instead of its IAM policy")
			out, why = addGrant(out, why, s, d, w)
		}
	case finding.KindKeyPolicyStatement:
		out = append(out, Candidate{Lever: finding.KindKeyPolicyStatement, Patch: p})
		out, why = addGrant(out, why, s, d, w)
	default:
		return nil, "patch kind " + p.Kind + " is not applied automatically", nil
	}
	out, why = optedIn(out, why, r, w)
	if len(out) == 0 {
		return nil, strings.Join(why, "; "), nil
	}
	return out, "", why
}

// optedIn keeps the levers whose target carries the opt-in tag (decision.HasOptInTag): apply
// mode's IAM policy changes only such roles, users and keys, so any other lever would fail
// with AccessDenied after being announced.
func optedIn(out []Candidate, why []string, r *finding.Report, w *world.World) ([]Candidate, []string) {
	var kept []Candidate
	for _, c := range out {
		target := r.Principal
		var tags map[string]string
		if c.Lever == finding.KindIdentityPolicy {
			if p := w.Principal(r.Principal); p != nil {
				tags = p.Tags
			}
		} else {
			target = r.Key
			if k := w.Key(r.Key); k != nil {
				tags = k.Tags
			}
		}
		switch {
		case tags == nil:
			why = append(why, "no "+c.Lever+": the tags of "+target+" could not be read")
		case !decision.HasOptInTag(tags):
			why = append(why, "no "+c.Lever+": "+target+" is not tagged "+config.AutoFixTagKey+"="+config.AutoFixTagValue)
		default:
			kept = append(kept, c)
		}
	}
	return kept, why
}

func addGrant(out []Candidate, why []string, s Settings, d *cloudtrail.Denial, w *world.World) ([]Candidate, []string) {
	if s.RemediatorRoleARN == "" {
		return out, append(why, "no grant: the retiring principal (KMSFIX_REMEDIATOR_ROLE_ARN) is not set")
	}
	if d.ContextARN == "" {
		return out, append(why, "no grant: the request's encryption context is unknown, so a grant could not be limited to it")
	}
	return addVerified(out, why, d, w, grantAlternative(s, d), "a grant limited to the request's encryption context")
}

// addVerified adds an alternative lever when the engine's evaluator shows it allows the
// request and nothing it must not. A grant cannot carry kms:ViaService, so for a grant the
// probes that differ only in the calling service (a direct call, another service) are
// accepted: its encryption-context constraint still limits it to ciphertexts of this object
// (or, with S3 Bucket Keys, this bucket). The evaluator's inputs are per key, so its "on
// another key" probe sees this key's grants; a grant lives on one key, so that probe is
// dropped too. Every other widening refuses it (docs/apply.md).
func addVerified(out []Candidate, why []string, d *cloudtrail.Denial, w *world.World, p finding.Patch, fallback string) ([]Candidate, []string) {
	v := patch.Verify(d, w, []finding.Patch{p})
	widened := v.Widened
	if p.Kind == finding.KindGrant {
		widened = slices.DeleteFunc(slices.Clone(widened), func(name string) bool {
			return strings.HasSuffix(name, " called directly (no kms:ViaService)") ||
				strings.HasSuffix(name, " through another service") || strings.HasSuffix(name, " on another key")
		})
	}
	switch {
	case !v.AllowedAfter:
		return out, append(why, "no "+p.Kind+": the evaluator does not show it allowing the request")
	case len(widened) > 0:
		return out, append(why, "no "+p.Kind+": it would also allow "+strings.Join(widened, "; "))
	}
	return append(out, Candidate{Lever: p.Kind, Patch: p, Fallback: fallback}), why
}

func keyPolicyAlternative(d *cloudtrail.Denial, w *world.World) finding.Patch {
	ps := patch.Build(d, patch.Sides{NeedKeyPolicy: true}, w)
	return ps[0]
}

func grantAlternative(s Settings, d *cloudtrail.Denial) finding.Patch {
	var ops []string
	for _, a := range d.Actions {
		ops = append(ops, strings.TrimPrefix(a, "kms:"))
	}
	ctx := map[string]string{"aws:s3:arn": d.ContextARN}
	return finding.Patch{
		Kind:    finding.KindGrant,
		Account: d.KeyAccount,
		Target:  d.KeyARN,
		Name:    patch.Name(d),
		Grant: &finding.GrantPatch{
			Grantee:     d.Identity.PrincipalARN,
			Operations:  ops,
			Constraints: map[string]any{"EncryptionContextSubset": ctx},
			Retiring:    s.RemediatorRoleARN,
			Context:     ctx,
		},
	}
}

// principalRefusal refuses principals no automatic change may name at all.
func principalRefusal(r *finding.Report) string {
	switch {
	case r.Principal == "":
		return "the event names no IAM principal to grant"
	case cloudtrail.PrincipalKind(r.PrincipalType) == cloudtrail.KindRoot || strings.HasSuffix(r.Principal, ":root"):
		return "the root user is never granted automatically"
	case !strings.Contains(r.Principal, ":role/") && !strings.Contains(r.Principal, ":user/"):
		return "principal " + r.Principal + " is not an IAM role or user"
	case cloudtrail.PrincipalKind(r.PrincipalType) == cloudtrail.KindSSORole || strings.Contains(r.Principal, ":role/aws-reserved/sso.amazonaws.com/"):
		// Whatever the lever: the permission set governs this role (docs/contract.md,
		// "Principals never changed automatically").
		return "IAM cannot edit " + r.Principal + " (an IAM Identity Center role, governed by its permission set), so nothing is changed for it automatically, whatever the patch kind"
	case cloudtrail.PrincipalKind(r.PrincipalType) == cloudtrail.KindServiceLinkedRole || strings.Contains(r.Principal, ":role/aws-service-role/"):
		return "IAM cannot edit " + r.Principal + " (a service-linked role, governed by its service), so nothing is changed for it automatically, whatever the patch kind"
	}
	return ""
}

// IdentityEditable says whether IAM lets us attach an inline policy to the report's principal:
// not an IAM Identity Center role, not a service-linked role, not root, and a role whose ARN
// the event named (not rebuilt without its path).
func IdentityEditable(r *finding.Report) (bool, string) {
	arn := r.Principal
	switch kind := cloudtrail.PrincipalKind(r.PrincipalType); {
	case kind == cloudtrail.KindSSORole || strings.Contains(arn, ":role/aws-reserved/sso.amazonaws.com/"):
		return false, "an IAM Identity Center role (AWSReservedSSO_*) is protected; only its permission set can change it"
	case kind == cloudtrail.KindServiceLinkedRole || strings.Contains(arn, ":role/aws-service-role/"):
		return false, "a service-linked role cannot be edited"
	case kind == cloudtrail.KindRoot || strings.HasSuffix(arn, ":root"):
		return false, "the root user"
	case kind != "" && kind != cloudtrail.KindRole && kind != cloudtrail.KindUser:
		return false, "a " + string(kind) + " session is not an IAM role or user we can edit"
	case strings.HasPrefix(r.AutoApplyBlocked, "IAM cannot edit"):
		return false, "the engine says so (" + r.AutoApplyBlocked + ")"
	}
	return true, ""
}

// Validation is what the applier read before a change: Access Analyzer's answers and the
// size of the result against its quota.
type Validation struct {
	Findings []accesstypes.ValidatePolicyFindingType // ValidatePolicy finding types
	Messages []string                                // their texts, for the refusal
	// NotGranted is CheckAccessNotGranted's result for AdminActions (PASS or FAIL); empty
	// when the lever has no policy document (a grant).
	NotGranted    accesstypes.CheckAccessNotGrantedResult
	NotGrantedWhy string
	Size, Limit   int
	What          string // "key policy", "inline policies of role x"
}

// CheckValidation is the second, pure half of the guard: it refuses Access Analyzer errors and
// security warnings, a policy that grants an admin action, and a result over its quota.
func CheckValidation(v Validation, needNotGranted bool) string {
	for i, f := range v.Findings {
		if f == accesstypes.ValidatePolicyFindingTypeError || f == accesstypes.ValidatePolicyFindingTypeSecurityWarning {
			msg := ""
			if i < len(v.Messages) {
				msg = ": " + v.Messages[i]
			}
			return fmt.Sprintf("IAM Access Analyzer ValidatePolicy reports %s%s", f, msg)
		}
	}
	if needNotGranted && v.NotGranted != accesstypes.CheckAccessNotGrantedResultPass {
		res := string(v.NotGranted)
		if res == "" {
			res = "no result"
		}
		why := ""
		if v.NotGrantedWhy != "" {
			why = " (" + v.NotGrantedWhy + ")"
		}
		return fmt.Sprintf("IAM Access Analyzer CheckAccessNotGranted for %s: %s%s", strings.Join(AdminActions, ", "), res, why)
	}
	if v.Limit > 0 && v.Size > v.Limit {
		return fmt.Sprintf("the %s would be %d, over the quota of %d", v.What, v.Size, v.Limit)
	}
	return ""
}

// CheckGrantOperations refuses a grant with an operation other than the data-plane ones.
func CheckGrantOperations(ops []string) string {
	if len(ops) == 0 {
		return "the grant has no operations"
	}
	for _, o := range ops {
		if !slices.Contains(grantOperations, o) {
			return "grant operation " + o + " is not applied automatically"
		}
	}
	return ""
}

func patchAccounts(ps []finding.Patch) string {
	var a []string
	for _, p := range ps {
		if !slices.Contains(a, p.Account) {
			a = append(a, p.Account)
		}
	}
	return strings.Join(a, ", ")
}
