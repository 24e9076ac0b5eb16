package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Applier applies fixes automatically in sandbox accounts. Its Apply matches the interface
// internal/remediator declares.
type Applier struct {
	Settings Settings
	Store    *Store
	KMS      KeyPolicyAPI
	Grants   GrantAPI
	IAM      IAMAPI
	Analyzer AnalyzerAPI
	Logger   *slog.Logger
	Now      func() time.Time
	// Alerter sends the message of a change that needs review (nil: the log line and the
	// metric only); Metrics receives the EMF lines of the alerts (nil: none).
	Alerter Alerter
	Metrics io.Writer
	// Sleep waits between re-reads of an eventually consistent answer (nil: a timer).
	Sleep func(context.Context, time.Duration) error
	// Accounts, in the organization's hub, gives each member account's levers: every change
	// and every revert is then made in the account that owns it, through its kmsfix-apply
	// role (hubapply.go), and KMS, Grants and IAM are not used. Nil: the function's own account.
	Accounts AccountLevers

	scoped bool // a copy acting in one account of the hub (in)
}

func (a *Applier) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return a.Logger
}

func (a *Applier) now() time.Time {
	if a.Now == nil {
		return time.Now().UTC()
	}
	return a.Now().UTC()
}

func (a *Applier) settings() Settings { return a.Settings.withDefaults() }

// fingerprint is the key of the finding's change: in the hub, each account's half of a fix
// is a change of its own, so the account is part of it.
func (a *Applier) fingerprint(r *finding.Report) string {
	if a.scoped {
		return Fingerprint(r) + "@" + a.Settings.Account
	}
	return Fingerprint(r)
}

// Fingerprint is the finding's identity, the same one the notifier deduplicates on.
func Fingerprint(r *finding.Report) string {
	if r.Fingerprint != "" {
		return r.Fingerprint
	}
	return finding.Fingerprint(*r)
}

func block(r *finding.Report, why string) {
	r.AutoApply = false
	r.AutoApplyBlocked = why
}

// Apply runs the guard and, when it passes, makes the change, records it and puts it on the
// report (r.Applied). A refusal is not an error: it goes to r.AutoApplyBlocked so the
// notification shows it. An error means retrying the event is safe and may succeed: the
// pending audit record lets the retry complete or roll back what this attempt started.
//
// The steps: resume (a change this finding already has), choose (the first lever the checks
// accept), dry run, commit. Stored records are evidence, never instructions: what is made is
// always rebuilt from the current finding and checked again (guard, evaluator, Access
// Analyzer); a record only says whether a change exists and who owns it, and is read only
// when its integrity code checks out.
func (a *Applier) Apply(ctx context.Context, r *finding.Report, d *cloudtrail.Denial, w *world.World) error {
	if r == nil || r.Ignored != "" {
		return nil
	}
	if a.Accounts != nil {
		return a.applyHub(ctx, r, d, w)
	}
	s := a.settings()
	dec := Decide(s, r, d, w)
	if !s.Enabled || a.Store == nil {
		refusal := dec.Refusal
		if refusal == "" {
			refusal = "no audit table configured"
		}
		block(r, refusal)
		return nil
	}
	if a.Store.Sealer == nil {
		refusal := dec.Refusal
		if refusal == "" {
			refusal = "no audit integrity key is configured (KMSFIX_AUDIT_KEY_ARN): a change could not be recorded so that only kmsfix can vouch for it"
		}
		block(r, refusal)
		return nil
	}
	fp := a.fingerprint(r)
	reuseID, done, err := a.resume(ctx, r, dec, fp, s)
	if err != nil || done {
		return err
	}
	if dec.Refusal != "" {
		a.log().Info("apply: refused", "event_id", r.EventID, "reason", dec.Refusal)
		block(r, dec.Refusal)
		return nil
	}
	prep, cand, why, err := a.choose(ctx, r, dec, nil)
	if err != nil {
		return err
	}
	if prep == nil {
		// Another event of this finding may have made the change while we read: then our own
		// statement or policy is what the levers found, and that change is the answer.
		if p, err := a.Store.Pointer(ctx, fp); err == nil && p != nil && !Closed(p.Status) && p.ID != reuseID {
			if rec, err := a.Store.Get(ctx, p.ID); err == nil && rec != nil && rec.Fingerprint == fp && rec.Status == StatusApplied {
				a.fillApplied(r, rec)
				return nil
			}
			block(r, "another invocation is applying change "+p.ID+" for this finding")
			return nil
		}
		a.log().Info("apply: refused", "event_id", r.EventID, "reason", why)
		block(r, why)
		return nil
	}
	if s.DryRun {
		a.dryRun(r, prep, s)
		return nil
	}
	return a.commit(ctx, r, fp, prep, cand, reuseID, s)
}

// resume deals with the change the finding already has, if any. done means the report says
// what happened; otherwise reuseID is the id a crashed attempt claimed without recording.
func (a *Applier) resume(ctx context.Context, r *finding.Report, dec Decision, fp string, s Settings) (reuseID string, done bool, err error) {
	now := a.now()
	lg := a.log().With("event_id", r.EventID, "fingerprint", fp)
	ptr, err := a.Store.Pointer(ctx, fp)
	if err != nil {
		return "", false, err
	}
	if ptr == nil || Closed(ptr.Status) {
		return "", false, nil
	}
	rec, err := a.Store.Get(ctx, ptr.ID)
	switch {
	case errors.Is(err, ErrTampered):
		lg.Error("apply: the finding's audit record fails its integrity check; not acting on it", "id", ptr.ID, "error", err.Error())
		block(r, "the audit record of change "+ptr.ID+" for this finding fails its integrity check (not written by kmsfix, or changed since); nothing is done on its word")
		return "", true, nil
	case err != nil:
		return "", false, err
	case rec != nil && rec.Fingerprint != fp:
		lg.Error("apply: the finding's pointer names a change of another finding; not acting on it", "id", ptr.ID)
		block(r, "the audit pointer of this finding names change "+ptr.ID+" of another finding; nothing is done on its word")
		return "", true, nil
	}
	switch {
	case rec == nil && ptr.Owner != r.EventID && now.Before(ptr.Claimed.Add(s.Lease)):
		block(r, "another invocation is applying change "+ptr.ID+" for this finding")
		return "", true, nil
	case rec == nil:
		// A crash between claiming the finding and writing the record: nothing changed.
		return ptr.ID, false, nil
	case rec.Status == StatusNeedsReview:
		block(r, "change "+rec.ID+" of this finding could not be reverted exactly and needs a person ("+rec.Note+"); nothing more is applied until it is settled")
		return "", true, nil
	case rec.Status == StatusApplied && now.Before(rec.Expires()):
		lg.Info("apply: already applied", "id", rec.ID)
		a.fillApplied(r, rec)
		return "", true, nil
	case rec.Status == StatusApplied:
		// Expired and not swept yet: revert it now, then make a fresh change.
		out, err := a.revert(ctx, rec, StatusReverted, r.EventID)
		if err != nil {
			return "", false, err
		}
		if !Closed(out.Status) {
			block(r, "the expired change "+rec.ID+" of this finding could not be reverted exactly: "+out.Note)
			return "", true, nil
		}
		return "", false, nil
	case rec.Status == StatusPending && (rec.Owner == r.EventID || !now.Before(rec.leaseEnd(s.Lease))):
		return "", true, a.resumePending(ctx, r, dec, rec, s)
	case rec.Status == StatusPending:
		block(r, "another invocation is applying change "+rec.ID+" for this finding")
		return "", true, nil
	}
	return "", false, nil
}

// resumePending completes an unfinished change only when the current finding calls for
// exactly that change and it passes the checks again; otherwise it rolls it back.
func (a *Applier) resumePending(ctx context.Context, r *finding.Report, dec Decision, rec *Record, s Settings) error {
	lg := a.log().With("event_id", r.EventID, "id", rec.ID)
	rollback := func(why string) error {
		lg.Info("apply: rolling back an unfinished change", "reason", why)
		out, err := a.revert(ctx, rec, StatusRolledBack, r.EventID)
		if errors.Is(err, errLost) {
			block(r, "another invocation is handling change "+rec.ID+" for this finding")
			return nil
		}
		if err != nil {
			return err
		}
		if !Closed(out.Status) {
			why += "; and its rollback could not be proven exact: " + out.Note
		}
		block(r, why)
		return nil
	}
	if dec.Refusal != "" {
		return rollback(dec.Refusal)
	}
	cand, ok := matching(dec.Candidates, rec)
	if !ok {
		return rollback("the unfinished change " + rec.ID + " is not what the current finding calls for; rolled back")
	}
	prep, _, why, err := a.choose(ctx, r, Decision{Candidates: []Candidate{cand}}, rec)
	if err != nil {
		return err
	}
	if prep == nil {
		return rollback("the unfinished change " + rec.ID + " no longer passes its checks: " + why)
	}
	if err := a.take(ctx, rec, r.EventID, s); err != nil {
		if errors.Is(err, errLost) {
			block(r, "another invocation is handling change "+rec.ID+" for this finding")
			return nil
		}
		return err
	}
	lg.Info("apply: completing an unfinished change")
	return a.finish(ctx, r, rec, cand, s)
}

// matching is the current candidate that is exactly the recorded change.
func matching(cands []Candidate, rec *Record) (Candidate, bool) {
	for _, c := range cands {
		pj, err := json.Marshal(c.Patch)
		if err == nil && c.Lever == rec.Lever && c.Patch.Target == rec.Target && c.Patch.Name == rec.Name && string(pj) == rec.Patch {
			return c, true
		}
	}
	return Candidate{}, false
}

// take makes owner the holder of the change for a lease; errLost when another invocation
// wrote the record since it was read.
func (a *Applier) take(ctx context.Context, rec *Record, owner string, s Settings) error {
	now := a.now()
	rec.Owner, rec.LeaseUntil = owner, now.Add(s.Lease).Format(time.RFC3339Nano)
	return a.Store.Put(ctx, rec, now)
}

// choose returns the first candidate whose change passes the checks (Access Analyzer,
// quotas, nothing of the same name already there), with the reasons the others failed.
// resuming is the unfinished change being completed: its own artefact may already exist.
func (a *Applier) choose(ctx context.Context, r *finding.Report, dec Decision, resuming *Record) (*prepared, Candidate, string, error) {
	var whys []string
	for _, c := range dec.Candidates {
		p, why, err := a.prepare(ctx, c, r, resuming != nil)
		if err != nil {
			why = "could not check it: " + err.Error()
		}
		if why != "" {
			whys = append(whys, c.Lever+": "+why)
			continue
		}
		return p, c, "", nil
	}
	return nil, Candidate{}, strings.Join(append(whys, dec.Skipped...), "; "), nil
}

// dryRun puts on the report what the change would be, and logs the exact calls.
func (a *Applier) dryRun(r *finding.Report, prep *prepared, s Settings) {
	now := a.now()
	for _, c := range prep.calls {
		a.log().Info("apply: dry run, not calling", "event_id", r.EventID, "call", c)
	}
	r.AutoApply, r.AutoApplyBlocked = true, ""
	r.Applied = &finding.Applied{
		Lever: prep.cand.Lever, Account: prep.cand.Patch.Account, Role: s.RemediatorRoleARN,
		Target: prep.cand.Patch.Target, Name: prep.cand.Patch.Name,
		AppliedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(s.Expiry).Format(time.RFC3339),
		DryRun: true, Calls: prep.calls,
	}
}

// commit claims the finding, writes the pending record, and makes the change.
func (a *Applier) commit(ctx context.Context, r *finding.Report, fp string, prep *prepared, cand Candidate, reuseID string, s Settings) error {
	now := a.now()
	rec := prep.rec
	rec.Lever, rec.Account, rec.Target, rec.Name = cand.Lever, cand.Patch.Account, cand.Patch.Target, cand.Patch.Name
	rec.Role = s.RemediatorRoleARN
	if cand.Lever != finding.KindIdentityPolicy {
		rec.Region = regionOf(cand.Patch.Target)
	}
	pj, err := json.Marshal(cand.Patch)
	if err != nil {
		return fmt.Errorf("apply: encode patch: %w", err)
	}
	rec.Patch = string(pj)
	rec.ID = reuseID
	if rec.ID == "" {
		rec.ID = changeID(fp, r.EventID, now)
	}
	if err := a.Store.Claim(ctx, fp, rec.ID, r.EventID, now); errors.Is(err, errClaimed) {
		block(r, "another invocation is applying a change for this finding")
		return nil
	} else if err != nil {
		return err
	}
	rep, _ := json.Marshal(r)
	rec.Status, rec.Fingerprint, rec.EventID, rec.Owner = StatusPending, fp, r.EventID, r.EventID
	rec.StartedAt, rec.Finding = now.Format(time.RFC3339), string(rep)
	rec.LeaseUntil = now.Add(s.Lease).Format(time.RFC3339Nano)
	// The audit record comes first, so a crash after the change leaves a record to recover.
	if err := a.Store.Put(ctx, &rec, now); errors.Is(err, errLost) {
		block(r, "another invocation is applying change "+rec.ID+" for this finding")
		return nil
	} else if err != nil {
		return err
	}
	return a.finish(ctx, r, &rec, cand, s)
}

// prepare reads what the lever changes and checks the result (Access Analyzer, quotas).
func (a *Applier) prepare(ctx context.Context, c Candidate, r *finding.Report, resuming bool) (*prepared, string, error) {
	if why := ownedArtefact(c.Lever, c.Patch, a.settings().Account); why != "" {
		return nil, why, nil
	}
	var p *prepared
	var why string
	var err error
	switch c.Lever {
	case finding.KindIdentityPolicy:
		p, why, err = a.prepareInline(ctx, c, resuming)
	case finding.KindKeyPolicyStatement:
		if a.KMS == nil {
			return nil, "no KMS client", nil
		}
		p, why, err = a.prepareKeyPolicy(ctx, c, regionOf(c.Patch.Target), resuming)
	case finding.KindGrant:
		p, why, err = a.prepareGrant(c)
	default:
		return nil, "unknown lever " + c.Lever, nil
	}
	if p != nil {
		p.cand = c
	}
	return p, why, err
}

// finish makes the change recorded as pending (idempotently), verifies it by re-reading, and
// marks it applied; a change that fails is rolled back.
func (a *Applier) finish(ctx context.Context, r *finding.Report, rec *Record, c Candidate, s Settings) error {
	lg := a.log().With("event_id", r.EventID, "id", rec.ID, "lever", rec.Lever, "target", rec.Target)
	var err error
	switch rec.Lever {
	case finding.KindIdentityPolicy:
		err = a.applyInline(ctx, rec, c.Patch)
	case finding.KindKeyPolicyStatement:
		err = a.applyKeyPolicy(ctx, rec, c.Patch)
	case finding.KindGrant:
		err = a.applyGrant(ctx, rec, c.Patch)
	default:
		err = fmt.Errorf("unknown lever %q", rec.Lever)
	}
	if err != nil {
		lg.Error("apply: change failed, rolling back", "error", err.Error())
		rec.Error = "apply: " + err.Error()
		if _, rerr := a.revert(ctx, rec, StatusRolledBack, rec.Owner); rerr != nil {
			// Left pending: the next retry or the sweeper rolls it back.
			return fmt.Errorf("apply %s failed (%v) and its rollback failed: %w", rec.ID, err, rerr)
		}
		block(r, "the change failed and was rolled back: "+err.Error())
		return nil
	}
	now := a.now()
	rec.Status, rec.Error, rec.LeaseUntil = StatusApplied, "", ""
	rec.AppliedAt, rec.ExpiresAt = now.Format(time.RFC3339), now.Add(s.Expiry).Format(time.RFC3339)
	if err := a.Store.Put(ctx, rec, now); err != nil {
		return err // the retry finds the pending record and completes it
	}
	if err := a.Store.SetPointer(ctx, rec.Fingerprint, rec.ID, rec.Owner, StatusApplied); err != nil {
		lg.Warn("apply: could not update the finding's pointer", "error", err.Error())
	}
	// No hold-back here: notify.Notifier.Notify holds the finding back itself once it has
	// sent the message announcing this change (holding back first would suppress it).
	lg.Info("apply: applied", "expires_at", rec.ExpiresAt)
	a.fillApplied(r, rec)
	return nil
}

func (a *Applier) fillApplied(r *finding.Report, rec *Record) {
	r.AutoApply, r.AutoApplyBlocked = true, ""
	r.Applied = &finding.Applied{
		ID: rec.ID, Lever: rec.Lever, Account: rec.Account, Role: rec.Role, Target: rec.Target, Name: rec.Name,
		AppliedAt: rec.AppliedAt, ExpiresAt: rec.ExpiresAt, EventID: rec.EventID,
		RevertCommand: a.settings().RevertCommand(rec.ID),
	}
}

// Revert removes a change now (`kmsfix revert ID`). Reverting a closed change does nothing;
// a change that needs review is tried again.
func (a *Applier) Revert(ctx context.Context, id string) (*Record, error) {
	rec, err := a.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("no change %s in table %s", id, a.Store.Table)
	}
	status := StatusReverted
	if rec.Status == StatusPending {
		status = StatusRolledBack
	}
	v, err := a.in(ctx, rec.Account)
	if err != nil {
		return rec, fmt.Errorf("change %s in account %s: %w", rec.ID, rec.Account, err)
	}
	return v.revert(ctx, rec, status, "kmsfix-revert")
}

// revert takes the change (a conditional write: one owner at a time), removes exactly what
// it added, and records the outcome. What it removes must be a kmsfix-named artefact whose
// current content is what kmsfix wrote; anything changed since is left in place and the
// change becomes StatusNeedsReview (metric, message, still listed). A failure is recorded on
// the change and retried by the next sweep.
func (a *Applier) revert(ctx context.Context, rec *Record, final, owner string) (*Record, error) {
	if Closed(rec.Status) {
		return rec, nil
	}
	s := a.settings()
	now := a.now()
	if rec.Owner != owner && now.Before(rec.leaseEnd(s.Lease)) && rec.LeaseUntil != "" {
		return rec, fmt.Errorf("%w: change %s is held by %s until %s", errLost, rec.ID, rec.Owner, rec.LeaseUntil)
	}
	if err := a.take(ctx, rec, owner, s); err != nil {
		return rec, err
	}
	var note string
	var err error
	exact := true
	if why := a.ownedRecord(rec); why != "" {
		note, exact = "not reverted: "+why, false
	} else {
		switch rec.Lever {
		case finding.KindIdentityPolicy:
			note, exact, err = a.revertInline(ctx, rec)
		case finding.KindKeyPolicyStatement:
			note, exact, err = a.revertKeyPolicy(ctx, rec)
		case finding.KindGrant:
			note, exact, err = a.revertGrant(ctx, rec)
		}
	}
	now = a.now()
	rec.Attempts++
	rec.LeaseUntil = ""
	if err != nil {
		rec.Error = "revert: " + err.Error()
		if perr := a.Store.Put(ctx, rec, now); perr != nil {
			return rec, errors.Join(err, perr)
		}
		return rec, fmt.Errorf("revert %s: %w", rec.ID, err)
	}
	if !exact {
		final = StatusNeedsReview
	}
	rec.Status, rec.Note = final, note
	if Closed(final) {
		rec.EndedAt = now.Format(time.RFC3339)
	}
	if final == StatusReverted {
		rec.Error = ""
	}
	if err := a.Store.Put(ctx, rec, now); err != nil {
		return rec, err
	}
	if err := a.Store.SetPointer(ctx, rec.Fingerprint, rec.ID, rec.Owner, final); err != nil {
		return rec, err
	}
	if !exact {
		a.log().Error("apply: revert not exact", "alert", AlertRevertNotExact, "id", rec.ID, "lever", rec.Lever,
			"target", rec.Target, "name", rec.Name, "note", note)
		a.alert(ctx, rec)
		return rec, nil
	}
	a.log().Info("apply: reverted", "id", rec.ID, "status", final, "note", note)
	return rec, nil
}

// revertIn reverts the change in its own account: in the hub, through that account's levers
// (an account whose roles cannot be assumed now fails, and the next sweep tries again).
func (a *Applier) revertIn(ctx context.Context, rec *Record, final, owner string) (*Record, error) {
	v, err := a.in(ctx, rec.Account)
	if err != nil {
		return rec, fmt.Errorf("revert %s in account %s: %w", rec.ID, rec.Account, err)
	}
	return v.revert(ctx, rec, final, owner)
}

// SweepResult says what a sweep did. NeedsReview counts the changes a person must settle
// (their metric keeps the alarm on until then); Tampered counts records whose integrity
// check failed (never acted on); Deferred counts the active changes the sweep did not reach
// before its time budget ran out (the next run takes them).
type SweepResult struct {
	Reverted, RolledBack, Failed, Cleaned, NeedsReview, Tampered, Deferred int
}

// Sweep reverts every applied change past its expiry and rolls back every pending change
// older than the lease. It reads the active index, so it needs neither a scan nor TTL. A
// revert that fails stays active and is retried by the next sweep.
func (a *Applier) Sweep(ctx context.Context, now time.Time) (SweepResult, error) {
	var res SweepResult
	s := a.settings()
	ids, err := a.Store.Active(ctx)
	if err != nil {
		return res, err
	}
	// In a random order: a change whose revert keeps failing slowly cannot use every run's
	// budget before the others are reached.
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var errs []error
	count := func(rec *Record, err error, ok *int) {
		switch {
		case errors.Is(err, errLost):
			// Another invocation holds the change: it is theirs this time.
		case err != nil:
			res.Failed++
			errs = append(errs, err)
		case rec.Status == StatusNeedsReview:
			res.NeedsReview++
		default:
			*ok++
		}
	}
	for i, id := range ids {
		if !sweepTimeLeft(ctx, s.SweepReserve) {
			res.Deferred = len(ids) - i
			a.log().Warn("apply: sweep out of time, the next run continues", "deferred", res.Deferred, "reserve", s.SweepReserve.String())
			break
		}
		rec, err := a.Store.Get(ctx, id)
		switch {
		case errors.Is(err, ErrTampered):
			// Never acted on, never deleted: the index entry stays so the alarm stays on.
			res.Tampered++
			a.log().Error("apply: sweep skips a record that fails its integrity check", "alert", AlertTampered, "id", id, "error", err.Error())
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		switch {
		case rec == nil || Closed(rec.Status):
			// The index outlived its record's end (a crash between the two writes).
			if _, err := a.Store.DB.DeleteItem(ctx, deleteActive(a.Store.Table, id)); err != nil {
				errs = append(errs, err)
			} else {
				res.Cleaned++
			}
		case rec.Status == StatusNeedsReview:
			res.NeedsReview++
		case rec.Status == StatusApplied && !now.Before(rec.Expires()):
			out, err := a.revertIn(ctx, rec, StatusReverted, "sweeper")
			count(out, err, &res.Reverted)
		case rec.Status == StatusPending && !now.Before(rec.leaseEnd(s.Lease)):
			out, err := a.revertIn(ctx, rec, StatusRolledBack, "sweeper")
			count(out, err, &res.RolledBack)
		}
	}
	a.sweepMetrics(res)
	return res, errors.Join(errs...)
}

// sweepTimeLeft says more than reserve is left before ctx's deadline (always, without one).
func sweepTimeLeft(ctx context.Context, reserve time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > reserve
}

// SweeperSource is the "source" of the scheduled event that runs Sweep.
const SweeperSource = "kmsfix.sweeper"

// IsSweep says whether a Lambda event is the sweeper's schedule: {"source":"kmsfix.sweeper"}
// (a rule target with that input), or the plain event of an EventBridge schedule rule
// (source aws.events, detail-type "Scheduled Event"), the only scheduled event the function
// receives.
func IsSweep(event []byte) bool {
	var e struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	if json.Unmarshal(event, &e) != nil {
		return false
	}
	return e.Source == SweeperSource || (e.Source == "aws.events" && e.DetailType == "Scheduled Event")
}

// SweepDue runs the sweep now, for the handler's sweeper route, and writes its log line. A
// sweep that could not revert everything returns an error, so the failure shows in the
// function's metrics; the next sweep retries it either way.
func (a *Applier) SweepDue(ctx context.Context) (SweepResult, error) {
	res, err := a.Sweep(ctx, a.now())
	lg := a.log().With("outcome", "sweep", "reverted", res.Reverted, "rolled_back", res.RolledBack,
		"failed", res.Failed, "cleaned", res.Cleaned, "needs_review", res.NeedsReview, "tampered", res.Tampered,
		"deferred", res.Deferred)
	if err != nil {
		lg.Error("apply: sweep", "error", err.Error())
		return res, err
	}
	lg.Info("apply: sweep")
	return res, nil
}

func changeID(fp, eventID string, now time.Time) string {
	h := sha256.Sum256([]byte(fp + "|" + eventID + "|" + strconv.FormatInt(now.UnixNano(), 10)))
	return "chg-" + hex.EncodeToString(h[:8])
}

// regionOf is the Region field of an ARN.
func regionOf(arn string) string {
	p := strings.SplitN(arn, ":", 5)
	if len(p) < 5 {
		return ""
	}
	return p[3]
}
