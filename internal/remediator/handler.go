// Package remediator is the Lambda handler: an EventBridge event in, a finding out. It parses
// the CloudTrail record, runs the live pipeline (internal/pipeline: enrich, explain, Access
// Analyzer, the one decision of verified and auto_apply), hands the report to the notifier
// (and the applier, when there is one), and writes one log line and one metrics line per event.
package remediator

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/kmsfix/kmsfix/internal/retry"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/decision"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Notifier delivers a finding (Slack, SNS). A returned error means the finding may not have
// been delivered: the handler returns an error so Lambda retries; the notifier dedupes, so a
// retry never posts twice.
type Notifier interface {
	Notify(ctx context.Context, r finding.Report) error
}

// Applier makes an automatic change for a finding that allows it; it may record what it did in
// r.Applied.
type Applier interface {
	Apply(ctx context.Context, r *finding.Report, d *cloudtrail.Denial, w *world.World) error
}

// KeyOwnerSender sends the key-policy half of a cross-account finding to the key's owner
// (internal/crossaccount); it says what it did ("sent", "duplicate", "no-bus", ...). An
// error means a retry may succeed.
type KeyOwnerSender interface {
	Send(ctx context.Context, r finding.Report) (string, error)
}

// RequestReceiver accepts key-policy change requests from other accounts' remediators
// (internal/crossaccount): it returns the key owner's report, its world and the evidence for
// the decision, or a retry.Permanent error (retry.Reason says why) for a request refused for good.
type RequestReceiver interface {
	Receive(ctx context.Context, event []byte) (finding.Report, *cloudtrail.Denial, *world.World, decision.Evidence, error)
}

// Handler handles one EventBridge event per call. Its fields live as long as the container.
type Handler struct {
	// Enricher and Validator are the live pipeline's (pipeline.Live): Validator nil means
	// patches are not validated, and so not verified.
	Enricher  pipeline.Enricher
	Validator *pipeline.Validator
	Notifier  Notifier
	Applier   Applier // nil: nothing is applied
	// KeyOwner sends cross-account findings' key-policy half to the key owner's bus (nil:
	// KMSFIX_KEY_OWNER_BUSES is empty). Requests accepts such requests from trusted
	// accounts (nil: KMSFIX_TRUSTED_ACCOUNTS is empty, requests are ignored).
	KeyOwner KeyOwnerSender
	Requests RequestReceiver
	// Sweeper reverts expired automatic changes on the schedule's tick (nil: notify mode).
	Sweeper Sweeper
	// Sandbox lists the accounts where automatic fixes are allowed (KMSFIX_SANDBOX_ACCOUNTS).
	Sandbox []string
	// Account is the one account this function serves (the single-account stack: the account
	// of KMSFIX_REMEDIATOR_ROLE_ARN). When set, only EventBridge CloudTrail envelopes of this
	// account are processed (origin.go); empty: every record is (tests, and a hub that
	// checks accounts itself).
	Account string
	// Hub is set in the organization's hub (KMSFIX_HUB_ORG_ID, docs/org.md): events of any
	// account are accepted when the record agrees with its envelope (foreignToHub), and
	// Enricher reads each in its own account. Account is then empty.
	Hub     bool
	Log     *slog.Logger
	Metrics io.Writer // EMF lines (stdout in Lambda)
	Now     func() time.Time
}

// outcome of one event, for the log line.
const (
	outcomeFinding   = "finding"
	outcomeIgnored   = "ignored"
	outcomeMalformed = "malformed"
	outcomeError     = "error"
	outcomeRejected  = "rejected" // a key-policy change request refused (crossaccount)
)

// Handle processes one event that is a JSON object: a key-policy change request or a
// CloudTrail record (Invoke routes every payload; tests and tools call Handle directly). It
// returns an error only for what a retry may fix (a notifier or applier failure) or a bug (a
// panic, recovered here so the container lives on). A malformed or irrelevant event is logged
// and dropped: a retry would fail the same way.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (finding.Report, error) {
	r, _ := route(event)
	if r != RouteKeyPolicyRequest {
		r = RouteCloudTrail // the record parser says what else is wrong with it
	}
	return h.handle(ctx, r, event)
}

// handle runs a request's or a record's path with the common frame: the AWS call counter,
// panic recovery, one log line and one metrics line.
func (h *Handler) handle(ctx context.Context, r Route, event json.RawMessage) (rep finding.Report, err error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	start := now()
	ctx, calls := enrich.WithCalls(ctx)
	var res result
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in the pipeline: %v", p)
			h.Log.ErrorContext(ctx, "panic", "event_id", rep.EventID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res.outcome, rep = outcomeError, finding.Report{EventID: rep.EventID}
		}
		h.record(ctx, rep, res.world, res.outcome, res.reason, err, calls, now().Sub(start), res.extra...)
	}()
	rep.EventID = envelopeID(event) // for the log line, should the path panic
	if r == RouteKeyPolicyRequest {
		rep, res, err = h.handleRequest(ctx, event)
	} else {
		rep, res, err = h.handleRecord(ctx, event)
	}
	return rep, err
}

// result is what a path tells the log line beyond the report.
type result struct {
	world   *world.World
	outcome string
	reason  string
	extra   []any // attributes of the log line beyond the common ones
}

// handleRequest is the key owner's path: validate the request, decide, apply, notify.
func (h *Handler) handleRequest(ctx context.Context, event json.RawMessage) (finding.Report, result, error) {
	res := result{outcome: outcomeError, extra: []any{"source", crossaccount.Source}}
	if h.Requests == nil {
		res.outcome, res.reason = outcomeIgnored, "a key-policy change request, but this remediator trusts no account (KMSFIX_TRUSTED_ACCOUNTS)"
		return finding.Report{EventID: envelopeID(event), Ignored: res.reason}, res, nil
	}
	rep, d, w, ev, rerr := h.Requests.Receive(ctx, event)
	res.world = w
	switch {
	case retry.IsPermanent(rerr): // refused for good: logged with its reason and dropped
		res.outcome, res.reason = outcomeRejected, retry.Reason(rerr)
		return finding.Report{EventID: envelopeID(event), Ignored: "key-policy change request rejected: " + res.reason}, res, nil
	case rerr != nil:
		rep.EventID = envelopeID(event)
		return rep, res, fmt.Errorf("key-policy change request %s: %w", rep.EventID, rerr)
	case rep.Ignored != "":
		res.outcome, res.reason = outcomeIgnored, rep.Ignored
		return rep, res, nil
	}
	h.live().Decide(ctx, &rep, ev)
	if err := h.deliver(ctx, &rep, d, w); err != nil {
		return rep, res, err
	}
	res.outcome = outcomeFinding
	return rep, res, nil
}

// handleRecord is a CloudTrail record's path: parse, the live pipeline, apply, notify, and
// the key owner's half of a cross-account finding.
func (h *Handler) handleRecord(ctx context.Context, event json.RawMessage) (finding.Report, result, error) {
	res := result{outcome: outcomeError}
	if why := refused(event, h.Account, h.Hub); why != "" {
		res.outcome, res.reason = outcomeRejected, why
		return finding.Report{EventID: envelopeID(event), Ignored: "refused: " + why}, res, nil
	}
	item, perr := cloudtrail.Parse(event)
	if perr != nil {
		res.outcome, res.reason = outcomeMalformed, perr.Error()
		return finding.Report{EventID: envelopeID(event), Ignored: "malformed event: " + perr.Error()}, res, nil
	}
	if item.Denial == nil {
		res.outcome, res.reason = outcomeIgnored, item.Ignored
		return engine.Explain(item, nil), res, nil
	}
	rep, w := h.live().Explain(ctx, item)
	res.world = w
	// The parsed denial travels with the report: apply builds its levers from it.
	if err := h.deliver(ctx, &rep, item.Denial, w); err != nil {
		return rep, res, err
	}
	// Only after the local notification went out: a retry of a failed send re-notifies
	// nothing (the notifier dedupes) and sends again.
	if h.KeyOwner != nil && rep.Diagnosis == finding.CrossAccountAccessMissing && !(h.Hub && keyPolicyRead(w, rep.Key)) {
		sent, serr := h.KeyOwner.Send(ctx, rep)
		res.extra = append(res.extra, "key_owner_request", sent)
		if serr != nil {
			return rep, res, fmt.Errorf("key-policy change request for %s: %w", rep.EventID, serr)
		}
	}
	res.outcome = outcomeFinding
	return rep, res, nil
}

// keyPolicyRead says whether the world holds key's policy. In the hub, a key owner inside the
// organization is read (and, in a sandbox, written) through its own spoke roles
// (docs/org.md), so the key owner's request event serves only a key owner the hub could not
// read: one outside the organization, or without a spoke.
func keyPolicyRead(w *world.World, key string) bool {
	return w != nil && w.Keys[key] != nil && w.Keys[key].Policy != nil
}

// live is the pipeline over the handler's enricher and validator.
func (h *Handler) live() *pipeline.Live {
	l := &pipeline.Live{Enricher: h.Enricher, Sandbox: h.Sandbox}
	if h.Validator != nil { // a nil *Validator in the interface would not be nil
		l.Checker = h.Validator
	}
	return l
}

// deliver applies what may be applied, and notifies. d is the denial rep was made from.
func (h *Handler) deliver(ctx context.Context, rep *finding.Report, d *cloudtrail.Denial, w *world.World) error {
	var err error
	// The applier's guard decides for every finding a policy can fix: when IAM cannot edit
	// the principal it may use the key policy or a grant instead, and it says why it refuses.
	if h.Applier != nil && (rep.AutoApply || (rep.Diagnosis.PolicyFixable() && len(rep.Patches) > 0)) {
		if aerr := h.Applier.Apply(ctx, rep, d, w); aerr != nil {
			err = fmt.Errorf("apply %s: %w", rep.EventID, aerr)
		}
	}
	if nerr := h.Notifier.Notify(ctx, *rep); nerr != nil {
		err = fmt.Errorf("notify %s: %w", rep.EventID, nerr)
	}
	return err
}

// record writes the event's log line and metrics line.
func (h *Handler) record(ctx context.Context, rep finding.Report, w *world.World, outcome, reason string, err error, calls *enrich.Calls, d time.Duration, extra ...any) {
	attrs := []any{
		"event_id", rep.EventID,
		"outcome", outcome,
		"duration_ms", float64(d.Microseconds()) / 1000,
		"aws_calls", calls.Total(),
		"aws_attempts", calls.Attempts(),
	}
	if ops := calls.ByOperation(); len(ops) > 0 {
		attrs = append(attrs, "aws_calls_by_operation", ops)
	}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	attrs = append(attrs, extra...)
	if rep.Diagnosis != "" {
		attrs = append(attrs, "diagnosis", rep.Diagnosis, "principal", rep.Principal, "key", rep.Key,
			"verified", rep.Verified, "auto_apply", rep.AutoApply)
		if len(rep.Unknown) > 0 {
			attrs = append(attrs, "unknown", rep.Unknown)
		}
	}
	if w != nil {
		// The world the finding was made from: `kmsfix explain --world` on it reproduces it.
		attrs = append(attrs, "world", w)
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, "error", err.Error())
	}
	h.Log.Log(ctx, level, "event", attrs...)

	if h.Metrics == nil {
		return
	}
	m := metrics{ignored: outcome == outcomeIgnored || outcome == outcomeMalformed || outcome == outcomeRejected, errored: err != nil,
		calls: calls.Total(), attempts: calls.Attempts(), duration: d}
	if rep.Diagnosis != "" && err == nil {
		m.diagnosis = string(rep.Diagnosis)
	}
	if werr := m.write(h.Metrics, time.Now()); werr != nil {
		h.Log.ErrorContext(ctx, "metrics", "error", werr.Error())
	}
}

// envelopeID reads the event id from an envelope or record that did not parse, for the log.
func envelopeID(event json.RawMessage) string {
	var v struct {
		ID     string `json:"id"`
		Detail struct {
			EventID string `json:"eventID"`
		} `json:"detail"`
		EventID string `json:"eventID"`
	}
	if json.Unmarshal(event, &v) != nil {
		return ""
	}
	switch {
	case v.Detail.EventID != "":
		return v.Detail.EventID
	case v.EventID != "":
		return v.EventID
	}
	return v.ID
}
