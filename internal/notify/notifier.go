package notify

import (
	"context"
	"errors"
	"fmt"
	"github.com/kmsfix/kmsfix/internal/retry"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// Config configures a Notifier (docs/CONFIG.md names the environment variables).
type Config struct {
	TopicARN       string        // KMSFIX_TOPIC_ARN; empty: no SNS copy
	Table          string        // KMSFIX_TABLE_NAME; empty: no dedupe across containers
	SlackSecretARN string        // KMSFIX_SLACK_SECRET_ARN; empty: no Slack
	Window         time.Duration // KMSFIX_DEDUPE_WINDOW, default 1h
	Propagation    time.Duration // KMSFIX_PROPAGATION_WINDOW, default 10m

	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now

	// Slack delivery: attempts per message, total wait for Retry-After and backoff, first
	// backoff (doubled each attempt), HTTP client, and the sleep (tests pass a fake clock).
	SlackAttempts int
	SlackMaxWait  time.Duration
	SlackBackoff  time.Duration
	HTTPClient    *http.Client
	Sleep         func(context.Context, time.Duration) error
	// SlackReserve is the time Slack leaves before the invocation's deadline (default 3 s):
	// Slack gets its own deadline, so a Slack that never answers cannot use the whole
	// invocation, and the SNS copy and both channels' states are recorded before Lambda's
	// retry, which then re-sends only what is missing (SNS exactly once).
	SlackReserve time.Duration

	// Metrics receives one CloudWatch Embedded Metric Format line when Slack refuses the
	// webhook for good (4xx: revoked, channel archived), which no retry heals and which
	// the stack alarms on. Nil: none.
	Metrics io.Writer
}

// Clients are the AWS clients the notifier uses; *sns.Client, *dynamodb.Client and
// *secretsmanager.Client satisfy them. A nil client turns its feature off.
type Clients struct {
	SNS      Publisher
	DynamoDB Table
	Secrets  SecretGetter
}

// Notifier sends each finding once per dedupe window to SNS and Slack.
type Notifier struct {
	cfg   Config
	sns   Publisher
	slack *SlackSender
	store *store
	memo  *memo
	log   *slog.Logger
	now   func() time.Time

	metricsMu sync.Mutex // one metrics line at a time
}

// New builds a Notifier.
func New(cfg Config, c Clients) (*Notifier, error) {
	if cfg.Window <= 0 {
		cfg.Window = time.Hour
	}
	if cfg.Propagation <= 0 {
		cfg.Propagation = 10 * time.Minute
	}
	if cfg.SlackReserve <= 0 {
		cfg.SlackReserve = 3 * time.Second
	}
	nt := &Notifier{cfg: cfg, log: cfg.Logger, now: cfg.Now, memo: newMemo(50000)}
	if nt.log == nil {
		nt.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if nt.now == nil {
		nt.now = time.Now
	}
	if cfg.TopicARN != "" {
		if c.SNS == nil {
			return nil, errors.New("notify: a topic is configured but no SNS client given")
		}
		nt.sns = c.SNS
	}
	if cfg.SlackSecretARN != "" {
		if c.Secrets == nil {
			return nil, errors.New("notify: a Slack secret is configured but no Secrets Manager client given")
		}
		nt.slack = newSlackSender(c.Secrets, cfg.SlackSecretARN, cfg)
	}
	if cfg.Table != "" {
		if c.DynamoDB == nil {
			return nil, errors.New("notify: a table is configured but no DynamoDB client given")
		}
		nt.store = &store{db: c.DynamoDB, table: cfg.Table, window: cfg.Window}
	}
	if nt.sns == nil && nt.slack == nil {
		return nil, errors.New("notify: neither an SNS topic nor a Slack secret is configured")
	}
	return nt, nil
}

// Notify sends the finding unless it was sent within the window (then it only counts it).
// It returns an error only when retrying the whole event is safe and useful: a channel failed
// in a way that may heal, and the dedupe store recorded what was delivered, so the retry
// re-sends only what is missing. A report whose message announces an automatic change
// (Applied, not a dry run) also holds its finding back for the propagation window; repeats
// of it that were counted instead do not extend the hold.
func (nt *Notifier) Notify(ctx context.Context, r finding.Report) error {
	sent, err := nt.notify(ctx, r)
	if sent && r.Applied != nil && !r.Applied.DryRun {
		fp := finding.Fingerprint(r)
		if herr := nt.HoldBack(ctx, fp, nt.now().Add(nt.cfg.Propagation)); herr != nil {
			nt.log.Warn("notify: hold back after change failed", "fingerprint", fp, "error", herr.Error())
		}
	}
	return err
}

// HoldBack suppresses messages for a fingerprint until the given time: after an automatic
// change, KMS and IAM take minutes to apply it and the denials keep coming meanwhile. Events
// held back are counted and reported with the next message.
func (nt *Notifier) HoldBack(ctx context.Context, fingerprint string, until time.Time) error {
	nt.memo.hold(fingerprint, until)
	if nt.store == nil {
		return nil
	}
	return nt.store.holdBack(ctx, fingerprint, until)
}

// PropagationWindow is how long HoldBack should last after an automatic change.
func (nt *Notifier) PropagationWindow() time.Duration { return nt.cfg.Propagation }

// plan is what to do for one event.
type plan struct {
	send       bool
	slack, sns bool // channels to send
	repeats    int
	lastSent   time.Time
	tracked    bool   // the store records delivery (false: DynamoDB failed, notify anyway)
	owner      string // the event id the store knows the message by
}

// notify reports whether this call sent (or tried to send) the finding's message.
func (nt *Notifier) notify(ctx context.Context, r finding.Report) (bool, error) {
	if r.Ignored != "" {
		return false, nil
	}
	n := NewNotice(r)
	now := nt.now()
	p, err := nt.decide(ctx, n, now)
	if err != nil {
		// The design's choice: a finding that might be a duplicate beats a lost one. The
		// container's memory still stops a storm from flooding while DynamoDB is away.
		nt.log.Warn("notify: dedupe store unavailable, notifying without it", "event_id", r.EventID, "fingerprint", n.Fingerprint, "error", err.Error())
		if nt.memo.seen(n.Fingerprint, now, nt.cfg.Window) && madeChange(r) == "" {
			return false, nil
		}
		p = plan{send: true, slack: nt.slack != nil, sns: nt.sns != nil}
	}
	if !p.send {
		return false, nil
	}
	n.Repeats, n.LastSent = p.repeats, p.lastSent
	return true, nt.deliver(ctx, n, p)
}

// decide consults the store: send (which channels), or count as a repeat.
func (nt *Notifier) decide(ctx context.Context, n Notice, now time.Time) (plan, error) {
	if nt.store == nil {
		if nt.memo.seen(n.Fingerprint, now, nt.cfg.Window) && madeChange(n.Report) == "" {
			return plan{}, nil
		}
		return plan{send: true, slack: nt.slack != nil, sns: nt.sns != nil}, nil
	}
	eventID := n.Report.EventID
	first := true
	if eventID != "" {
		var err error
		if first, err = nt.store.markEvent(ctx, eventID, now); err != nil {
			return plan{}, err
		}
	} else {
		eventID = "no-event-id#" + now.Format(time.RFC3339Nano)
	}
	if !first {
		st, err := nt.store.get(ctx, n.Fingerprint)
		if err != nil {
			return plan{}, err
		}
		switch {
		case st.Found && st.Owner == eventID:
			// A retry of the event that owns the message: send what is still pending.
			// (A channel configured off since then is skipped.)
			p := plan{slack: st.Slack == statePending && nt.slack != nil, sns: st.SNS == statePending && nt.sns != nil,
				tracked: true, owner: eventID,
				repeats: st.MsgRepeats, lastSent: st.MsgLastSent}
			p.send = p.slack || p.sns
			return p, nil
		case st.Found && st.active(now):
			return plan{}, nil // counted (or covered) the first time
		}
		// The first attempt stopped before it claimed a window: carry on as if first.
	}
	slackState, snsState := stateOff, stateOff
	if nt.slack != nil {
		slackState = statePending
	}
	if nt.sns != nil {
		snsState = statePending
	}
	sum := summary{string(n.Report.Diagnosis), n.Report.Principal, n.Report.Key}
	if change := madeChange(n.Report); change != "" {
		old, claimed, err := nt.store.announce(ctx, n.Fingerprint, eventID, change, now, slackState, snsState, sum)
		if err != nil {
			return plan{}, err
		}
		if claimed {
			return plan{send: true, slack: nt.slack != nil, sns: nt.sns != nil, repeats: old.Since, lastSent: old.WindowStart, tracked: true, owner: eventID}, nil
		}
		// Announced already (another delivery of the same event): an ordinary repeat.
	}
	// Repeat first: in a storm nearly every event is one, and then it costs one write after
	// the event mark.
	for range 3 {
		counted, err := nt.store.countRepeat(ctx, n.Fingerprint, eventID, now)
		if err != nil {
			return plan{}, err
		}
		if counted {
			return plan{}, nil
		}
		old, claimed, err := nt.store.claim(ctx, n.Fingerprint, eventID, now, slackState, snsState, sum)
		if err != nil {
			return plan{}, err
		}
		if claimed {
			return plan{send: true, slack: nt.slack != nil, sns: nt.sns != nil, repeats: old.Since, lastSent: old.WindowStart, tracked: true, owner: eventID}, nil
		}
		// Another container claimed (or a window ended) between the two writes: look again.
	}
	return plan{}, fmt.Errorf("dedupe: no decision for %s after 3 rounds", n.Fingerprint)
}

// madeChange is the id of the automatic change this report made (not one it found in place,
// not a dry run), or "".
func madeChange(r finding.Report) string {
	a := r.Applied
	if a == nil || a.DryRun || a.ID == "" || r.EventID == "" || a.EventID != r.EventID {
		return ""
	}
	return a.ID
}

// deliver sends to the planned channels at once, so a Slack outage never holds up SNS, and
// records each channel's state as soon as its send ends. Slack works to its own deadline
// (SlackReserve before the invocation's), so a Slack that never answers still leaves the
// invocation time to record, and Lambda's retry publishes nothing twice.
func (nt *Notifier) deliver(ctx context.Context, n Notice, p plan) error {
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 2)
	var wg sync.WaitGroup
	send := func(name string, cctx context.Context, f func(context.Context) error) {
		wg.Go(func() {
			err := f(cctx)
			nt.record(ctx, n, p, name, err)
			results <- result{name, err}
		})
	}
	if p.sns {
		send("sns", ctx, func(ctx context.Context) error { return publishSNS(ctx, nt.sns, nt.cfg.TopicARN, n) })
	}
	if p.slack {
		sctx, cancel := nt.slackContext(ctx)
		defer cancel()
		send("slack", sctx, func(ctx context.Context) error { return nt.slack.Send(ctx, SlackMessage(n)) })
	}
	wg.Wait()
	close(results)

	var again []error
	delivered := false
	for res := range results {
		var de *DeliveryError
		switch {
		case res.err == nil:
			delivered = true
		case errors.As(res.err, &de) && !retry.IsPermanent(res.err):
			again = append(again, res.err)
		}
	}
	if len(again) == 0 {
		return nil
	}
	if !p.tracked && delivered {
		// Without the store a retry would send the delivered copy again: keep what went out.
		return nil
	}
	return fmt.Errorf("notify %s: %w", n.Report.EventID, errors.Join(again...))
}

// slackContext is ctx with Slack's own deadline: SlackReserve before ctx's (unchanged when
// ctx has none, as in the CLI; the sender's attempts and total wait bound it then).
func (nt *Notifier) slackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, dl.Add(-nt.cfg.SlackReserve))
}

// record logs a channel's outcome, counts a webhook Slack refuses for good, and stores the
// channel's state when the store tracks this message: sent, pending (a retry may send it)
// or failed (no retry will).
func (nt *Notifier) record(ctx context.Context, n Notice, p plan, channel string, err error) {
	state := stateSent
	if err != nil {
		var de *DeliveryError
		retryable := errors.As(err, &de) && !retry.IsPermanent(err)
		state = stateFailed
		if retryable {
			state = statePending
		}
		nt.log.Error("notify: delivery failed", "channel", channel, "event_id", n.Report.EventID,
			"fingerprint", n.Fingerprint, "retryable", retryable, "error", err.Error())
		if de != nil && de.Rejected() {
			nt.webhookRejected(de.Status)
		}
	}
	if p.tracked {
		if err := nt.store.setChannel(ctx, n.Fingerprint, p.owner, channel, state); err != nil {
			nt.log.Warn("notify: could not record delivery", "channel", channel, "event_id", n.Report.EventID, "error", err.Error())
		}
	}
}

// memo is the container's own dedupe, used when there is no store or it fails. Bounded: when
// full it forgets everything, which at worst sends a finding once more.
type memo struct {
	mu    sync.Mutex
	until map[string]time.Time
	max   int
}

func newMemo(max int) *memo { return &memo{until: map[string]time.Time{}, max: max} }

// seen reports whether fp is within its window, and opens one if not.
func (m *memo) seen(fp string, now time.Time, window time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.until[fp]; ok && t.After(now) {
		return true
	}
	if len(m.until) >= m.max {
		clear(m.until)
	}
	m.until[fp] = now.Add(window)
	return false
}

func (m *memo) hold(fp string, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.until[fp]; !ok || t.Before(until) {
		m.until[fp] = until
	}
}
