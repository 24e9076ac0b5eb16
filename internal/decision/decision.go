// Package decision is the one place that decides whether a finding's patch is `verified` and
// whether it may be applied automatically (`auto_apply`), each with the reason shown to people
// when it is not. Every path reaches it: engine.Explain offline, and internal/pipeline for the
// Lambda and every CLI command that reads AWS (after Access Analyzer has checked the patch).
//
// The rules, in order:
//
//	verified    the diagnosis is decided (not undetermined), every part of the world the
//	            decision needs was read (nothing unknown), the evaluator shows the patched
//	            request allowed and nothing else newly allowed, and, when the patch was
//	            validated (live), Access Analyzer found no ERROR or SECURITY_WARNING and ran.
//	auto_apply  the diagnosis is an implicit deny a policy fixes, the patch is verified, the
//	            principal is one IAM can edit (never an Identity Center role, a service-linked
//	            role or root, whatever the patch kind), at least one patch is for a
//	            sandbox account, and the target of every sandbox patch (the principal for an
//	            identity-policy patch, the key for a key-policy statement or a grant) is known
//	            to carry the opt-in tag kmsfix:auto-fix=enabled, the only resources apply
//	            mode's IAM policy lets the function change (docs/apply.md).
//
// The apply guard (internal/apply) then chooses the lever in the remediator's own account; it
// may refuse what auto_apply allows (mode, KMSFIX_APPLY_DIAGNOSES, its own account), and it
// refuses a principal IAM cannot edit whatever the lever.
package decision

import (
	"strings"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Evidence is what the decision reads, each part from the step of the pipeline that knows it.
type Evidence struct {
	Code        finding.Code    // diagnose
	KnownEnough bool            // diagnose: the world held every part needed to verify by evaluation
	Unknown     []string        // diagnose: what the decision could not read
	Patches     []finding.Patch // patch.Build
	// Verification is the evaluator's run of the request with the patches (patch.Verify).
	Verification patch.Verification
	// Validation is Access Analyzer's check of the patches' documents. Nil when no AWS is read
	// (kmsfix explain with a world file): then the evaluator alone decides.
	Validation *Validation
	// IsSandbox says whether automatic changes are allowed in an account.
	IsSandbox func(account string) bool
	// The principal, and whether IAM can edit its policies (and why not).
	Principal   string
	Editable    bool
	NotEditable string
	// The tags of the principal and of the key (world.Principal.Tags, world.Key.Tags); nil:
	// not read. The opt-in tag must be on the target of each patch applied automatically.
	PrincipalTags map[string]string
	KeyTags       map[string]string
	Key           string
}

// TagsFrom reads the tags of e's principal and key from w; one w does not hold keeps nil (not
// read), so the opt-in tag is then unknown, never absent.
func (e *Evidence) TagsFrom(w *world.World) {
	if p := w.Principal(e.Principal); p != nil {
		e.PrincipalTags = p.Tags
	}
	if k := w.Key(e.Key); k != nil {
		e.KeyTags = k.Tags
	}
}

// Validation is Access Analyzer's verdict on the proposed documents.
type Validation struct {
	Problems []string // ERROR and SECURITY_WARNING findings
	Unknown  []string // checks that could not run (or no validator is configured)
}

func (v *Validation) reasons() []string {
	if v == nil {
		return nil
	}
	return append(append([]string(nil), v.Problems...), v.Unknown...)
}

// Decision is the outcome, in the report's vocabulary.
type Decision struct {
	Verified         bool
	Unverified       string // why not verified, when there is a patch
	AutoApply        bool
	AutoApplyBlocked string   // why not, for a finding a policy fixes
	Unknown          []string // checks that could not run, added to the report's unknowns
}

// Decide makes the decision. A finding without a patch has nothing to verify or apply.
func Decide(e Evidence) Decision {
	if len(e.Patches) == 0 {
		return Decision{}
	}
	var d Decision
	if e.Validation != nil {
		d.Unknown = e.Validation.Unknown
	}
	rejected := e.Validation.reasons()
	evaluated := e.Code != finding.Undetermined && e.KnownEnough && len(e.Unknown) == 0 && e.Verification.OK()
	d.Verified = evaluated && len(rejected) == 0

	v := e.Verification
	switch {
	case !v.AllowedAfter:
		d.Unverified = "evaluating the known policies with the patch does not show the request allowed"
		if len(e.Unknown) > 0 {
			d.Unverified += " (unknown: " + strings.Join(e.Unknown, ", ") + ")"
		}
	case len(v.Widened) > 0:
		d.Unverified = "the patch would also allow: " + strings.Join(v.Widened, "; ")
	case !evaluated && len(e.Unknown) > 0:
		d.Unverified = "not verified: could not read " + strings.Join(e.Unknown, ", ")
	case evaluated && len(rejected) > 0:
		d.Unverified = strings.Join(rejected, "; ")
	}

	d.AutoApply, d.AutoApplyBlocked = autoApply(e, evaluated)
	if d.AutoApply && len(rejected) > 0 {
		d.AutoApply, d.AutoApplyBlocked = false, "the patch is not verified: "+strings.Join(rejected, "; ")
	}
	return d
}

// autoApply: an implicit deny a policy fixes, a patch the evaluator verified, and one part of
// the fix in a sandbox account. Each side is applied by the remediator of its own account,
// and only where that account is a sandbox; half of a cross-account fix allows nothing on its
// own, which the apply guard checks for its account.
func autoApply(e Evidence, evaluated bool) (bool, string) {
	if !e.Code.PolicyFixable() {
		return false, "only implicit denies that a policy fixes are applied automatically"
	}
	if !evaluated {
		return false, "the patch is not verified"
	}
	// A principal IAM cannot edit (an IAM Identity Center role, a service-linked role, the
	// root user) is never the target of an automatic change, whatever the patch kind: its
	// permission set, its service or the account owner decides (docs/contract.md,
	// "Principals never changed automatically"). apply.IdentityEditable reads this prefix.
	if !e.Editable {
		return false, "IAM cannot edit " + e.Principal + ": " + e.NotEditable
	}
	eligible := 0
	for _, p := range e.Patches {
		if e.IsSandbox == nil || !e.IsSandbox(p.Account) {
			continue
		}
		eligible++
		if why := e.notOptedIn(p); why != "" {
			return false, why
		}
	}
	if eligible == 0 {
		return false, "no patch is for a sandbox account"
	}
	return true, ""
}

// notOptedIn says why a sandbox patch's target does not carry the opt-in tag, or "". Apply
// mode's IAM policy lets the function change only roles, users and keys tagged
// config.AutoFixTagKey=config.AutoFixTagValue (infra/apply.go), so an untagged target would
// be announced "auto-apply: yes" and then fail with AccessDenied.
func (e Evidence) notOptedIn(p finding.Patch) string {
	target, tags := e.Principal, e.PrincipalTags
	if p.Kind == finding.KindKeyPolicyStatement || p.Kind == finding.KindGrant {
		target, tags = e.Key, e.KeyTags
	}
	if tags == nil {
		return "the tags of " + target + " could not be read: only resources tagged " + optIn + " are changed automatically"
	}
	if !HasOptInTag(tags) {
		return target + " is not tagged " + optIn + ": only resources that opt in are changed automatically"
	}
	return ""
}

const optIn = config.AutoFixTagKey + "=" + config.AutoFixTagValue

// HasOptInTag reports whether tags carry the opt-in tag as IAM matches aws:ResourceTag/<key>:
// the key case-insensitively, the value exactly under StringEquals
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag).
func HasOptInTag(tags map[string]string) bool {
	for k, v := range tags {
		if strings.EqualFold(k, config.AutoFixTagKey) && v == config.AutoFixTagValue {
			return true
		}
	}
	return false
}

// Set writes the decision into the report.
func (d Decision) Set(r *finding.Report) {
	r.Verified, r.Unverified = d.Verified, d.Unverified
	r.AutoApply, r.AutoApplyBlocked = d.AutoApply, d.AutoApplyBlocked
	r.Unknown = append(r.Unknown, d.Unknown...)
}
