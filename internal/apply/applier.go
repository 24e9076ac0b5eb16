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
	"strconv"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/notify"
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

// Fingerprint is the finding's identity, the same one the notifier deduplicates on.
func Fingerprint(r *finding.Report) string {
	if r.Fingerprint != "" {
		return r.Fingerprint
	}
	return notify.Fingerprint(*r)
}

func block(r *finding.Report, why string) {
	r.AutoApply = false
	r.AutoApplyBlocked = why
}

// Apply runs the guard and, when it passes, makes the change, records it and puts it on the
// report (r.Applied). A refusal is not an error: it goes to r.AutoApplyBlocked so the
// notification shows it. An error means retrying the event is safe and may succeed: the
// pending audit record lets the retry complete or roll back what this attempt started.
func (a *Applier) Apply(ctx context.Context, r *finding.Report, w *world.World) error {
	if r == nil || r.Ignored != "" {
		return nil
	}
	s := a.settings()
	dec := Decide(s, r, w)
	cands, refusal := dec.Candidates, dec.Refusal
	if !s.Enabled || a.Store == nil {
		if refusal == "" {
			refusal = "no audit table configured"
		}
		block(r, refusal)
		return nil
	}
	fp := Fingerprint(r)
	now := a.now()
	lg := a.log().With("event_id", r.EventID, "fingerprint", fp)

	ptr, err := a.Store.Pointer(ctx, fp)
	if err != nil {
		return err
	}
	reuseID := ""
	if ptr != nil && !Closed(ptr.Status) {
		rec, err := a.Store.Get(ctx, ptr.ID)
		if err != nil {
			return err
		}
		switch {
		case rec == nil && ptr.Owner != r.EventID && now.Before(ptr.Claimed.Add(s.Lease)):
			block(r, "another invocation is applying change "+ptr.ID+" for this finding")
			return nil
		case rec == nil:
			// A crash between claiming the finding and writing the record: nothing changed.
			reuseID = ptr.ID
		case rec.Status == StatusApplied && now.Before(rec.Expires()):
			lg.Info("apply: already applied", "id", rec.ID)
			a.fillApplied(r, rec)
			return nil
		case rec.Status == StatusApplied:
			// Expired and not swept yet: revert it now, then make a fresh change.
			if _, err := a.revert(ctx, rec, StatusReverted); err != nil {
				return err
			}
		case rec.Status == StatusPending && (rec.Owner == r.EventID || !now.Before(rec.Started().Add(s.Lease))):
			if refusal != "" {
				lg.Info("apply: rolling back an unfinished change the guard now refuses", "id", rec.ID, "reason", refusal)
				if _, err := a.revert(ctx, rec, StatusRolledBack); err != nil {
					return err
				}
				block(r, refusal)
				return nil
			}
			lg.Info("apply: completing an unfinished change", "id", rec.ID)
			return a.finish(ctx, r, rec, s)
		case rec.Status == StatusPending:
			block(r, "another invocation is applying change "+rec.ID+" for this finding")
			return nil
		}
	}
	if refusal != "" {
		lg.Info("apply: refused", "reason", refusal)
		block(r, refusal)
		return nil
	}

	var prep *prepared
	var cand Candidate
	var whys []string
	for _, c := range cands {
		p, why, err := a.prepare(ctx, c, r)
		if err != nil {
			why = "could not check it: " + err.Error()
		}
		if why != "" {
			whys = append(whys, c.Lever+": "+why)
			continue
		}
		prep, cand = p, c
		break
	}
	if prep == nil {
		// Another event of this finding may have made the change while we read: then our own
		// statement or policy is what the levers found, and that change is the answer.
		if p, err := a.Store.Pointer(ctx, fp); err == nil && p != nil && !Closed(p.Status) && p.ID != reuseID {
			if rec, err := a.Store.Get(ctx, p.ID); err == nil && rec != nil && rec.Status == StatusApplied {
				a.fillApplied(r, rec)
				return nil
			}
			block(r, "another invocation is applying change "+p.ID+" for this finding")
			return nil
		}
		why := strings.Join(append(whys, dec.Skipped...), "; ")
		lg.Info("apply: refused", "reason", why)
		block(r, why)
		return nil
	}
	rec := prep.rec
	rec.Lever, rec.Account, rec.Target, rec.Name = cand.Lever, cand.Patch.Account, cand.Patch.Target, cand.Patch.Name
	if cand.Lever != finding.KindIdentityPolicy {
		rec.Region = regionOf(cand.Patch.Target)
	}
	pj, err := json.Marshal(cand.Patch)
	if err != nil {
		return fmt.Errorf("apply: encode patch: %w", err)
	}
	rec.Patch = string(pj)

	if s.DryRun {
		for _, c := range prep.calls {
			lg.Info("apply: dry run, not calling", "call", c)
		}
		r.AutoApply, r.AutoApplyBlocked = true, ""
		r.Applied = &finding.Applied{
			Lever: rec.Lever, Account: rec.Account, Target: rec.Target, Name: rec.Name,
			AppliedAt: now.Format(time.RFC3339), ExpiresAt: now.Add(s.Expiry).Format(time.RFC3339),
			DryRun: true, Calls: prep.calls,
		}
		return nil
	}

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
	// The audit record comes first, so a crash after the change leaves a record to recover.
	if err := a.Store.Put(ctx, &rec, now); err != nil {
		return err
	}
	return a.finish(ctx, r, &rec, s)
}

// prepare reads what the lever changes and checks the result (Access Analyzer, quotas).
func (a *Applier) prepare(ctx context.Context, c Candidate, r *finding.Report) (*prepared, string, error) {
	switch c.Lever {
	case finding.KindIdentityPolicy:
		return a.prepareInline(ctx, c)
	case finding.KindKeyPolicyStatement:
		if a.KMS == nil {
			return nil, "no KMS client", nil
		}
		return a.prepareKeyPolicy(ctx, c, regionOf(c.Patch.Target))
	case finding.KindGrant:
		return a.prepareGrant(c)
	}
	return nil, "unknown lever " + c.Lever, nil
}

// finish makes the change recorded as pending (idempotently), verifies it by re-reading, and
// marks it applied; a change that fails is rolled back.
func (a *Applier) finish(ctx context.Context, r *finding.Report, rec *Record, s Settings) error {
	lg := a.log().With("event_id", r.EventID, "id", rec.ID, "lever", rec.Lever, "target", rec.Target)
	var err error
	switch rec.Lever {
	case finding.KindIdentityPolicy:
		err = a.applyInline(ctx, rec)
	case finding.KindKeyPolicyStatement:
		err = a.applyKeyPolicy(ctx, rec)
	case finding.KindGrant:
		err = a.applyGrant(ctx, rec)
	default:
		err = fmt.Errorf("unknown lever %q", rec.Lever)
	}
	if err != nil {
		lg.Error("apply: change failed, rolling back", "error", err.Error())
		rec.Error = "apply: " + err.Error()
		if _, rerr := a.revert(ctx, rec, StatusRolledBack); rerr != nil {
			// Left pending: the next retry or the sweeper rolls it back.
			return fmt.Errorf("apply %s failed (%v) and its rollback failed: %w", rec.ID, err, rerr)
		}
		block(r, "the change failed and was rolled back: "+err.Error())
		return nil
	}
	now := a.now()
	rec.Status, rec.Error = StatusApplied, ""
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
		ID: rec.ID, Lever: rec.Lever, Account: rec.Account, Target: rec.Target, Name: rec.Name,
		AppliedAt: rec.AppliedAt, ExpiresAt: rec.ExpiresAt,
		RevertCommand: a.settings().RevertCommand(rec.ID),
	}
}

// Revert removes a change now (`kmsfix revert ID`). Reverting a closed change does nothing.
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
	return a.revert(ctx, rec, status)
}

// revert removes exactly what the change added and records the outcome; a failure is
// recorded on the change (and retried by the next sweep).
func (a *Applier) revert(ctx context.Context, rec *Record, final string) (*Record, error) {
	if Closed(rec.Status) {
		return rec, nil
	}
	var note string
	var err error
	switch rec.Lever {
	case finding.KindIdentityPolicy:
		note, err = a.revertInline(ctx, rec)
	case finding.KindKeyPolicyStatement:
		note, err = a.revertKeyPolicy(ctx, rec)
	case finding.KindGrant:
		note, err = a.revertGrant(ctx, rec)
	default:
		err = fmt.Errorf("unknown lever %q", rec.Lever)
	}
	now := a.now()
	rec.Attempts++
	if err != nil {
		rec.Error = "revert: " + err.Error()
		if perr := a.Store.Put(ctx, rec, now); perr != nil {
			return rec, errors.Join(err, perr)
		}
		return rec, fmt.Errorf("revert %s: %w", rec.ID, err)
	}
	rec.Status, rec.Note, rec.EndedAt = final, note, now.Format(time.RFC3339)
	if final == StatusReverted {
		rec.Error = ""
	}
	if err := a.Store.Put(ctx, rec, now); err != nil {
		return rec, err
	}
	if err := a.Store.SetPointer(ctx, rec.Fingerprint, rec.ID, rec.Owner, final); err != nil {
		return rec, err
	}
	a.log().Info("apply: reverted", "id", rec.ID, "status", final, "note", note)
	return rec, nil
}

// SweepResult says what a sweep did.
type SweepResult struct {
	Reverted, RolledBack, Failed, Cleaned int
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
	var errs []error
	for _, id := range ids {
		rec, err := a.Store.Get(ctx, id)
		if err != nil {
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
		case rec.Status == StatusApplied && !now.Before(rec.Expires()):
			if _, err := a.revert(ctx, rec, StatusReverted); err != nil {
				res.Failed++
				errs = append(errs, err)
			} else {
				res.Reverted++
			}
		case rec.Status == StatusPending && !now.Before(rec.Started().Add(s.Lease)):
			if _, err := a.revert(ctx, rec, StatusRolledBack); err != nil {
				res.Failed++
				errs = append(errs, err)
			} else {
				res.RolledBack++
			}
		}
	}
	return res, errors.Join(errs...)
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

// WithSweeper routes the sweeper's scheduled events to a.Sweep and every other event to next,
// for lambda.Start(apply.WithSweeper(applier, h.Handle)). A sweep that could not revert
// everything returns an error, so the failure shows in the function's metrics; the next
// sweep retries it either way.
func WithSweeper[T any](a *Applier, next func(context.Context, json.RawMessage) (T, error)) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		if a == nil || !IsSweep(event) {
			return next(ctx, event)
		}
		res, err := a.Sweep(ctx, a.now())
		lg := a.log().With("outcome", "sweep", "reverted", res.Reverted, "rolled_back", res.RolledBack,
			"failed", res.Failed, "cleaned", res.Cleaned)
		if err != nil {
			lg.Error("apply: sweep", "error", err.Error())
			return res, err
		}
		lg.Info("apply: sweep")
		return res, nil
	}
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
