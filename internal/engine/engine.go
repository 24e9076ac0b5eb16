// Package engine runs the pure pipeline for one record: diagnose, patch, verify.
package engine

import (
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/diagnose"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Explain turns one item into a report using what the world knows. It never fails: what it
// cannot decide becomes an undetermined finding that says why.
func Explain(item cloudtrail.Item, w *world.World) finding.Report {
	if item.Denial == nil {
		return finding.Report{EventID: item.EventID, Ignored: item.Ignored}
	}
	d := item.Denial
	f := diagnose.Diagnose(d, w)
	r := finding.Report{
		EventID:          d.EventID,
		Diagnosis:        f.Code,
		Detail:           f.Detail,
		Principal:        d.Identity.PrincipalARN,
		PrincipalAccount: d.Identity.Account,
		Key:              d.KeyARN,
		KeyAccount:       d.KeyAccount,
		Region:           d.Region,
		Bucket:           d.Bucket,
		Object:           d.Object,
		Actions:          d.Actions,
		Severity:         f.Code.Severity(),
		EventTime:        d.EventTime,
		EventName:        d.EventName,
		ErrorCode:        d.ErrorCode,
		SessionARN:       d.Identity.SessionARN,
		PrincipalType:    string(d.Identity.Kind),
		Advice:           f.Advice,
		Escalate:         f.Escalate,
		Unknown:          f.Unknown,
		NeededStatement:  f.Needed,
	}
	if k := w.Key(d.KeyARN); k != nil && len(k.Aliases) > 0 {
		r.KeyAlias = k.Aliases[0]
	}
	if f.Code != finding.Undetermined && !f.Code.PolicyFixable() {
		return r // no policy patch for key states, denies, managed keys, principals
	}
	r.Patches = patch.Build(d, patch.Sides{NeedIdentity: f.NeedIdentity, NeedKeyPolicy: f.NeedKeyPolicy}, w)
	if len(r.Patches) == 0 {
		return r
	}
	v := patch.Verify(d, w, r.Patches)
	// Verified means every part the decision needs was read: never with unknowns.
	r.Verified = f.Code != finding.Undetermined && f.KnownEnough && len(f.Unknown) == 0 && v.OK()
	switch {
	case !v.AllowedAfter:
		r.Unverified = "evaluating the known policies with the patch does not show the request allowed"
		if len(f.Unknown) > 0 {
			r.Unverified += " (unknown: " + strings.Join(f.Unknown, ", ") + ")"
		}
	case len(v.Widened) > 0:
		r.Unverified = "the patch would also allow: " + strings.Join(v.Widened, "; ")
	case !r.Verified && len(f.Unknown) > 0:
		r.Unverified = "not verified: could not read " + strings.Join(f.Unknown, ", ")
	}
	r.AutoApply, r.AutoApplyBlocked = autoApply(d, f, w, r, v)
	return r
}

// autoApply says whether this finding may be applied automatically under the current config:
// an implicit deny a policy fixes, a patch for a sandbox account, an editable principal for an
// identity patch, and a verified patch.
func autoApply(d *cloudtrail.Denial, f diagnose.Finding, w *world.World, r finding.Report, v patch.Verification) (bool, string) {
	if !f.Code.PolicyFixable() {
		return false, "only implicit denies that a policy fixes are applied automatically"
	}
	if !r.Verified {
		return false, "the patch is not verified"
	}
	// Each side is applied by the remediator of its own account, and only where that account
	// is a sandbox (issue: "for cross-account-access-missing only the side whose account is
	// this sandbox"); half of a cross-account fix allows nothing on its own.
	eligible, reason := 0, "no patch is for a sandbox account"
	for _, p := range r.Patches {
		switch {
		case !w.IsSandbox(p.Account):
			continue
		case p.Kind == finding.KindIdentityPolicy && !d.Identity.Editable:
			reason = "IAM cannot edit " + d.Identity.PrincipalARN + ": " + d.Identity.NotEditable
			continue
		}
		eligible++
	}
	if eligible == 0 {
		return false, reason
	}
	return true, ""
}
