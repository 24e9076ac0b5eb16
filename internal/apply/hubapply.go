package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// The organization's hub (docs/org.md) applies a fix in the accounts that own it: the
// identity half (an inline policy on the principal) in the principal's account, the key half
// (a key-policy statement, or a grant) in the key owner's account, each through that
// account's kmsfix-apply role, and each only where that account is in the hub's
// KMSFIX_SANDBOX_ACCOUNTS. A fix that needs a half the hub may not make is not applied at
// all: half of a cross-account fix allows nothing, and would only be a change to explain.
//
// Which accounts are written comes from the parsed denial only (the principal's and the
// key's ARNs; the handler checked the record against the event's account), never from other
// text: every patch must name the denial's principal or key, in that ARN's account.

// half is one account's part of a fix.
type half struct {
	account string
	whose   string // for people: "the principal's account", "the key owner's account"
}

// halves are the accounts the fix writes in, or why it must not be applied.
func halves(r *finding.Report, d *cloudtrail.Denial) ([]half, string) {
	if d == nil {
		return nil, "the request the finding describes is not known (no parsed denial came with the report)"
	}
	if len(r.Patches) == 0 {
		return nil, "the finding has no patch"
	}
	var out []half
	for _, p := range r.Patches {
		var target, whose string
		switch p.Kind {
		case finding.KindIdentityPolicy:
			target, whose = d.Identity.PrincipalARN, "the principal's account"
		case finding.KindKeyPolicyStatement, finding.KindGrant:
			target, whose = d.KeyARN, "the key owner's account"
		default:
			return nil, "patch kind " + p.Kind + " is not applied automatically"
		}
		acct := AccountOf(target)
		if p.Target != target || p.Account != acct || !config.IsAccountID(acct) {
			return nil, fmt.Sprintf("the %s patch names %s in account %q, which is not the denial's %s: nothing is applied",
				p.Kind, p.Target, p.Account, target)
		}
		if !slices.ContainsFunc(out, func(h half) bool { return h.account == acct }) {
			out = append(out, half{account: acct, whose: whose})
		}
	}
	if !slices.ContainsFunc(out, func(h half) bool { return h.account == d.RecipientAccount }) {
		return nil, "no part of the fix is in account " + d.RecipientAccount + ", whose record this is: nothing is applied"
	}
	return out, ""
}

const noHalfFix = "nothing is applied in any account (no half-fix)"

// applyHub applies every half of the fix, or none. The checks of every half (its account in
// the sandbox list, its apply role assumed, its guard, and the reads, Access Analyzer and
// quotas just before writing, against that account as its reader role sees it) pass before
// the first write; a half refused after another was made in this invocation rolls that one
// back. An error means a retry may succeed: each half's pending record lets it complete.
func (a *Applier) applyHub(ctx context.Context, r *finding.Report, d *cloudtrail.Denial, w *world.World) error {
	s := a.settings()
	switch {
	case !s.Enabled:
		block(r, "automatic fixes are off (KMSFIX_MODE is not apply)")
		return nil
	case a.Store == nil:
		block(r, "no audit table configured")
		return nil
	case a.Store.Sealer == nil:
		block(r, "no audit integrity key is configured (KMSFIX_AUDIT_KEY_ARN): a change could not be recorded so that only kmsfix can vouch for it")
		return nil
	}
	refuse := func(why string) error {
		a.log().Info("apply: refused", "event_id", r.EventID, "reason", why)
		block(r, why)
		return nil
	}
	hs, why := halves(r, d)
	if why != "" {
		return refuse(why)
	}
	for _, h := range hs {
		if !slices.Contains(s.SandboxAccounts, h.account) {
			return refuse(fmt.Sprintf("%s %s is not a sandbox account of the hub (KMSFIX_SANDBOX_ACCOUNTS; an account of a sandbox OU whose spoke has the %s role is changed only when listed there): %s",
				h.whose, h.account, config.ApplyRoleName, noHalfFix))
		}
	}
	views := make([]*Applier, len(hs))
	for i, h := range hs {
		v, err := a.in(ctx, h.account)
		if err != nil {
			return refuse(fmt.Sprintf("the levers of %s %s could not be had (%v): %s", h.whose, h.account, err, noHalfFix))
		}
		views[i] = v
	}
	// Every half's checks before any write.
	for i, v := range views {
		dec := Decide(v.settings(), r, d, w)
		if dec.Refusal != "" {
			return refuse(fmt.Sprintf("%s %s: %s; %s", hs[i].whose, hs[i].account, dec.Refusal, noHalfFix))
		}
		p, err := v.Store.Pointer(ctx, v.fingerprint(r))
		if err != nil {
			return err
		}
		if p != nil && !Closed(p.Status) {
			continue // this half has its change already: Apply resumes or reports it
		}
		prep, _, why, err := v.choose(ctx, r, dec, nil)
		if err != nil {
			return err
		}
		if prep == nil {
			return refuse(fmt.Sprintf("%s %s: %s; %s", hs[i].whose, hs[i].account, why, noHalfFix))
		}
	}
	var made []finding.Applied
	for i, v := range views {
		part := *r
		part.Applied, part.AppliedMore = nil, nil
		if err := v.Apply(ctx, &part, d, w); err != nil {
			return err
		}
		if part.Applied == nil {
			why := fmt.Sprintf("%s %s: %s", hs[i].whose, hs[i].account, part.AutoApplyBlocked)
			held, err := v.Store.Pointer(ctx, v.fingerprint(r))
			if err != nil {
				return err
			}
			if held != nil && !Closed(held.Status) && len(made) > 0 {
				// Another invocation holds this half (an event of the same finding at the same
				// time): it completes the same fix, so what this event made stays.
				block(r, why+"; the change made here stays: that change completes the fix")
				r.Applied, r.AppliedMore = &made[0], made[1:]
				return nil
			}
			if undone := a.undo(ctx, views[:i], made, r.EventID); undone != "" {
				why += "; " + undone
			}
			return refuse(why)
		}
		made = append(made, *part.Applied)
	}
	r.AutoApply, r.AutoApplyBlocked = true, ""
	r.Applied, r.AppliedMore = &made[0], made[1:]
	return nil
}

// undo rolls back the halves this event made, when a later half was refused; it says what it did.
func (a *Applier) undo(ctx context.Context, views []*Applier, made []finding.Applied, eventID string) string {
	var out []string
	for i, m := range made {
		if m.DryRun || m.ID == "" || m.EventID != eventID {
			continue // a dry run changed nothing; a change of an earlier event lives to its expiry
		}
		rec, err := a.Store.Get(ctx, m.ID)
		if err == nil && rec != nil {
			rec, err = views[i].revert(ctx, rec, StatusRolledBack, eventID)
		}
		switch {
		case err != nil:
			out = append(out, "change "+m.ID+" in account "+m.Account+" could not be rolled back ("+err.Error()+"); the sweeper reverts it at its expiry")
		case rec != nil && !Closed(rec.Status):
			out = append(out, "change "+m.ID+" in account "+m.Account+" needs review: "+rec.Note)
		default:
			out = append(out, "change "+m.ID+" in account "+m.Account+" rolled back")
		}
	}
	if len(out) == 0 {
		return noHalfFix
	}
	return strings.Join(out, "; ") + " (no half-fix)"
}
