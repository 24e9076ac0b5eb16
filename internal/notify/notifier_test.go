package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kmsfix/kmsfix/internal/retry"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// The emulators are shared by the tests of this package (started on first use, stopped after
// all tests); each test has its own table, Slack receiver and secret.
var (
	shared     sharedEnv
	sharedOnce sync.Once
)

type sharedEnv struct {
	dyn *emulator.Dynalite
	sns *emulator.Goaws
}

// mainHarness lets TestMain own emulators that outlive one test.
type mainHarness struct{ cleanups []func() }

func (h *mainHarness) Helper()                           {}
func (h *mainHarness) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (h *mainHarness) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (h *mainHarness) Cleanup(f func())                  { h.cleanups = append(h.cleanups, f) }

var harness = &mainHarness{}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(harness.cleanups) - 1; i >= 0; i-- {
		harness.cleanups[i]()
	}
	os.Exit(code)
}

func emulators(t *testing.T) sharedEnv {
	t.Helper()
	var failed any
	sharedOnce.Do(func() {
		defer func() { failed = recover() }()
		shared.dyn = emulator.StartDynalite(harness)
		shared.sns = emulator.StartGoaws(harness, "kmsfix-findings")
	})
	if failed != nil {
		t.Fatalf("emulators: %v", failed)
	}
	if shared.dyn == nil || shared.sns == nil {
		t.Fatal("emulators did not start (see the first failure)")
	}
	shared.dyn.Proxy.Clear()
	shared.sns.Proxy.Clear()
	shared.sns.Receiver.Reset()
	return shared
}

// rig is one test's notifier with its parts.
type rig struct {
	env     sharedEnv
	n       *Notifier
	slack   *awsfake.SlackReceiver
	secrets *awsfake.Secrets
	clock   *testenv.Clock
	logs    *testenv.LockedBuffer
	table   string

	mu     sync.Mutex
	sleeps []time.Duration
}

const secretARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/slack-AbCdEf"

var tableSeq struct {
	sync.Mutex
	n int
}

func newRig(t *testing.T, edit func(*Config)) *rig {
	t.Helper()
	env := emulators(t)
	tableSeq.Lock()
	tableSeq.n++
	table := fmt.Sprintf("kmsfix-%d", tableSeq.n)
	tableSeq.Unlock()
	env.dyn.CreateTable(t, table)

	r := &rig{env: env, slack: awsfake.NewSlackReceiver(t), secrets: awsfake.NewSecrets(t),
		clock: testenv.NewClock(time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)), logs: &testenv.LockedBuffer{}, table: table}
	r.secrets.Put(secretARN, r.slack.WebhookURL)
	cfg := Config{
		TopicARN: env.sns.TopicARN, Table: table, SlackSecretARN: secretARN,
		Window: time.Hour, Propagation: 10 * time.Minute,
		Logger: slog.New(slog.NewJSONHandler(r.logs, nil)),
		Now:    r.clock.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			r.mu.Lock()
			r.sleeps = append(r.sleeps, d)
			r.mu.Unlock()
			return nil
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg, Clients{SNS: env.sns.Client(1), DynamoDB: env.dyn.Client(1), Secrets: r.secrets.Client()})
	if err != nil {
		t.Fatal(err)
	}
	r.n = n
	t.Cleanup(func() { r.assertNoLeak(t) })
	return r
}

// assertNoLeak: no log line may hold the webhook URL or its secret path.
func (r *rig) assertNoLeak(t *testing.T) {
	t.Helper()
	secret := r.slack.WebhookURL[strings.LastIndexByte(r.slack.WebhookURL, '/')+1:]
	if logs := r.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, r.slack.WebhookURL) {
		t.Errorf("logs contain the webhook URL:\n%s", logs)
	}
}

func (r *rig) assertErrClean(t *testing.T, err error) {
	t.Helper()
	secret := r.slack.WebhookURL[strings.LastIndexByte(r.slack.WebhookURL, '/')+1:]
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("error contains the webhook secret: %v", err)
	}
}

func (r *rig) counts() (slack, sns int) { return r.slack.Count(), r.env.sns.Receiver.Count() }

func (r *rig) wantCounts(t *testing.T, slack, sns int) {
	t.Helper()
	if gs, gn := r.counts(); gs != slack || gn != sns {
		t.Errorf("delivered %d Slack and %d SNS messages, want %d and %d", gs, gn, slack, sns)
	}
}

func (r *rig) state(t *testing.T, fp string) fpState {
	t.Helper()
	st, err := (&store{db: r.env.dyn.Client(1), table: r.table}).get(context.Background(), fp)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func report(t *testing.T, eventID string) finding.Report {
	r := sampleReports(t)[finding.IdentityPolicyMissing]
	r.EventID = eventID
	return r
}

func TestNotifyOncePerWindowThenCounts(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	for i := range 5 {
		if err := r.n.Notify(ctx, report(t, fmt.Sprintf("ev-%d", i))); err != nil {
			t.Fatal(err)
		}
		r.clock.Add(time.Minute)
	}
	r.wantCounts(t, 1, 1)
	fp := finding.Fingerprint(report(t, "x"))
	if st := r.state(t, fp); st.Total != 5 || st.Since != 4 || st.Owner != "ev-0" || st.Slack != stateSent || st.SNS != stateSent {
		t.Errorf("state = %+v", st)
	}

	r.clock.Add(time.Hour) // the window is over: the next event sends, saying how many were held back
	if err := r.n.Notify(ctx, report(t, "ev-late")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 2, 2)
	payload := string(r.slack.Payloads()[1])
	if !strings.Contains(payload, "seen 4 more times since the last message (2026-11-28 09:00 UTC)") {
		t.Errorf("second Slack message does not state the repeats:\n%s", payload)
	}
	d := r.env.sns.Receiver.Deliveries()[1]
	var body map[string]any
	if err := json.Unmarshal([]byte(d.ForProtocol("sqs")), &body); err != nil {
		t.Fatalf("SNS default message is not the report JSON: %v", err)
	}
	note, _ := body["notification"].(map[string]any)
	if body["event_id"] != "ev-late" || note["repeats_since_last"] != float64(4) {
		t.Errorf("report JSON: event_id %v, notification %v", body["event_id"], note)
	}
	want := map[string]string{"diagnosis": "identity-policy-missing", "principal_account": acctApp, "key_account": acctApp,
		"severity": "medium", "auto_apply": "true", "repeats": "4", "fingerprint": fp}
	for k, v := range want {
		if d.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, d.Attributes[k], v)
		}
	}
	if !strings.HasPrefix(d.Subject, "role app/reader cannot decrypt") {
		t.Errorf("subject %q", d.Subject)
	}
	if email := d.ForProtocol("email"); !strings.Contains(email, "Repeats:    seen 4 more times") {
		t.Errorf("e-mail text:\n%s", email)
	}
}

func TestRetriedEventNeverPostsTwice(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	for range 3 {
		if err := r.n.Notify(ctx, report(t, "ev-retried")); err != nil {
			t.Fatal(err)
		}
	}
	r.wantCounts(t, 1, 1)
	if st := r.state(t, finding.Fingerprint(report(t, "x"))); st.Total != 1 {
		t.Errorf("a retried event was counted %d times", st.Total)
	}
	// A retry after the window ended still does not post again.
	r.clock.Add(2 * time.Hour)
	if err := r.n.Notify(ctx, report(t, "ev-retried")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
}

// TestSlackDownSNSStillSent: a Slack outage does not stop the SNS copy; the error asks Lambda
// to retry, and the retry sends only Slack.
func TestSlackDownSNSStillSent(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.slack.Down(awsfake.SlackFault{Status: 503, Body: "service_unavailable"})
	err := r.n.Notify(ctx, report(t, "ev-1"))
	var de *DeliveryError
	if !errors.As(err, &de) || retry.IsPermanent(err) || de.Channel != "slack" {
		t.Fatalf("Notify = %v, want a retryable Slack error", err)
	}
	r.assertErrClean(t, err)
	r.wantCounts(t, 0, 1)
	if a := r.slack.Attempts(); a != 4 {
		t.Errorf("%d Slack attempts, want 4", a)
	}
	if st := r.state(t, finding.Fingerprint(report(t, "x"))); st.Slack != statePending || st.SNS != stateSent {
		t.Errorf("state = %+v", st)
	}
	// Another event of the same finding meanwhile: counted, not sent.
	if err := r.n.Notify(ctx, report(t, "ev-2")); err != nil {
		t.Fatal(err)
	}
	r.slack.Up()
	if err := r.n.Notify(ctx, report(t, "ev-1")); err != nil { // Lambda's retry
		t.Fatalf("retry: %v", err)
	}
	r.wantCounts(t, 1, 1)
	// The retried message says what the SNS copy said (no repeats), not ev-2's count.
	if p := string(r.slack.Payloads()[0]); strings.Contains(p, "more time") {
		t.Errorf("the retried Slack message counts repeats of its own window:\n%s", p)
	}
	if err := r.n.Notify(ctx, report(t, "ev-1")); err != nil { // and once more: nothing left
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
}

// TestRetryKeepsAnnouncedRepeats: a retry re-sending Slack announces the same repeats as the
// SNS copy that already went out.
func TestRetryKeepsAnnouncedRepeats(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	for _, id := range []string{"ev-1", "ev-2", "ev-3"} {
		if err := r.n.Notify(ctx, report(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	r.clock.Add(2 * time.Hour)
	r.slack.Down(awsfake.SlackFault{Status: 503})
	if err := r.n.Notify(ctx, report(t, "ev-4")); err == nil {
		t.Fatal("want a retryable error while Slack is down")
	}
	r.slack.Up()
	if err := r.n.Notify(ctx, report(t, "ev-4")); err != nil {
		t.Fatal(err)
	}
	if r.wantCounts(t, 2, 2); t.Failed() {
		t.FailNow()
	}
	if p := string(r.slack.Payloads()[1]); !strings.Contains(p, "seen 2 more times since the last message (2026-11-28 09:00 UTC)") {
		t.Errorf("retried message:\n%s", p)
	}
	if d := r.env.sns.Receiver.Deliveries()[1]; d.Attributes["repeats"] != "2" {
		t.Errorf("SNS repeats %q", d.Attributes["repeats"])
	}
}

func TestSlackRateLimitHonoursRetryAfter(t *testing.T) {
	r := newRig(t, nil)
	r.slack.FailNext(awsfake.SlackFault{Status: 429, RetryAfter: "3", Body: "rate_limited"})
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
	if len(r.sleeps) != 1 || r.sleeps[0] != 3*time.Second {
		t.Errorf("waited %v, want [3s]", r.sleeps)
	}
}

func TestSlackRetryAfterBeyondBudgetIsRetryable(t *testing.T) {
	r := newRig(t, nil)
	r.slack.FailNext(awsfake.SlackFault{Status: 429, RetryAfter: "120", Body: "rate_limited"})
	err := r.n.Notify(context.Background(), report(t, "ev-1"))
	var de *DeliveryError
	if !errors.As(err, &de) || retry.IsPermanent(err) {
		t.Fatalf("Notify = %v, want a retryable error (Lambda retries later)", err)
	}
	if len(r.sleeps) != 0 {
		t.Errorf("slept %v inside the invocation", r.sleeps)
	}
	r.wantCounts(t, 0, 1)
}

func TestSlack5xxBacksOff(t *testing.T) {
	r := newRig(t, nil)
	r.slack.FailNext(awsfake.SlackFault{Status: 500, Body: "oops"}, awsfake.SlackFault{Status: 502, Body: "bad gateway"})
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
	if len(r.sleeps) != 2 || r.sleeps[0] < 500*time.Millisecond || r.sleeps[1] < time.Second || r.sleeps[1] <= r.sleeps[0] {
		t.Errorf("backoff %v, want two growing waits from 500ms", r.sleeps)
	}
}

// TestSlackPermanentFailure: a 404 (webhook revoked) is logged, not retried.
func TestSlackPermanentFailure(t *testing.T) {
	r := newRig(t, nil)
	r.slack.Down(awsfake.SlackFault{Status: 404, Body: "no_service"})
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatalf("Notify = %v, want nil: retrying cannot fix a revoked webhook", err)
	}
	r.wantCounts(t, 0, 1)
	if r.slack.Attempts() != 1 {
		t.Errorf("%d attempts", r.slack.Attempts())
	}
	if !strings.Contains(r.logs.String(), "delivery failed") {
		t.Errorf("failure not logged:\n%s", r.logs.String())
	}
	if st := r.state(t, finding.Fingerprint(report(t, "x"))); st.Slack != stateFailed {
		t.Errorf("slack state %q", st.Slack)
	}
}

// TestSNSFailsSlackStillSent: the other way round, and the retry sends only SNS.
func TestSNSFailsSlackStillSent(t *testing.T) {
	r := newRig(t, nil)
	r.env.sns.Proxy.Fail("Publish", testenv.AWSFault{Code: "InternalError", Status: 500})
	err := r.n.Notify(context.Background(), report(t, "ev-1"))
	var de *DeliveryError
	if !errors.As(err, &de) || retry.IsPermanent(err) || de.Channel != "sns" {
		t.Fatalf("Notify = %v, want a retryable SNS error", err)
	}
	r.wantCounts(t, 1, 0)
	r.env.sns.Proxy.Clear()
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
}

func TestSNSPermanentFailureNotRetried(t *testing.T) {
	r := newRig(t, nil)
	r.env.sns.Proxy.Fail("Publish", testenv.AWSFault{Code: "AuthorizationError", Status: 403})
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatalf("Notify = %v, want nil", err)
	}
	r.wantCounts(t, 1, 0)
}

// TestDynamoDBDownStillNotifies: without the store a finding is sent (maybe twice across
// containers) rather than lost; the container's memory still stops a storm.
func TestDynamoDBDownStillNotifies(t *testing.T) {
	r := newRig(t, nil)
	r.env.dyn.Proxy.FailAll(testenv.AWSFault{Code: "InternalServerError", Status: 500})
	ctx := context.Background()
	for i := range 10 {
		if err := r.n.Notify(ctx, report(t, fmt.Sprintf("ev-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	r.wantCounts(t, 1, 1)
	if !strings.Contains(r.logs.String(), "dedupe store unavailable") {
		t.Error("the fallback is not logged")
	}
	// Slack fails meanwhile: SNS went out, so no retry (it would send SNS again).
	other := report(t, "ev-other")
	other.Bucket = "another-bucket"
	r.slack.Down(awsfake.SlackFault{Status: 503})
	if err := r.n.Notify(ctx, other); err != nil {
		t.Errorf("Notify = %v, want nil when the store cannot record delivery", err)
	}
	r.wantCounts(t, 1, 2)
}

func TestDynamoDBThrottledMidway(t *testing.T) {
	r := newRig(t, nil)
	// The event mark succeeds, the window claim fails: the finding is still sent.
	r.env.dyn.Proxy.Fail("UpdateItem", testenv.AWSFault{Code: "ProvisionedThroughputExceededException", Status: 400, Times: 1})
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
}

func TestHoldBackAfterChange(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Window = time.Minute })
	ctx := context.Background()
	rep := report(t, "ev-1")
	rep.Applied = &finding.Applied{ID: "chg-1", Lever: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN,
		Name: "kmsfix-decrypt-app-data", ExpiresAt: "2026-11-29T09:00:00Z"}
	if err := r.n.Notify(ctx, rep); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
	if !strings.Contains(string(r.slack.Payloads()[0]), "Applied automatically") {
		t.Error("the message does not say the change was applied")
	}
	r.clock.Add(5 * time.Minute) // window over, propagation hold (10m) still on
	again := report(t, "ev-2")
	again.Applied = rep.Applied // the applier re-applies idempotently: counted, the hold not extended
	if err := r.n.Notify(ctx, again); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
	r.clock.Add(6 * time.Minute) // the hold is over: denials still coming mean the fix did not work
	if err := r.n.Notify(ctx, report(t, "ev-3")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 2, 2)
	if !strings.Contains(string(r.slack.Payloads()[1]), "seen 1 more time since") {
		t.Errorf("the message after the hold does not count the held event:\n%s", r.slack.Payloads()[1])
	}
}

// Issue 15 item 5: two events of one finding race; the one that did not apply notifies first
// ("auto-apply: no, another invocation is applying…"). The report that made the change is
// still announced, once, saying it was applied, and is not counted as a repeat; a retry of
// it and later events of the finding are not announced again.
func TestChangeAnnouncedByTheReportThatMadeIt(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	loser := report(t, "ev-b")
	loser.AutoApply, loser.AutoApplyBlocked = false, "another invocation is applying change chg-1 for this finding"
	if err := r.n.Notify(ctx, loser); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
	maker := report(t, "ev-a")
	maker.AutoApply = true
	maker.Applied = &finding.Applied{ID: "chg-1", EventID: "ev-a", Lever: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN,
		Name: "kmsfix-s3-0123456789ab", ExpiresAt: "2026-11-29T09:00:00Z"}
	if err := r.n.Notify(ctx, maker); err != nil {
		t.Fatal(err)
	}
	if r.wantCounts(t, 2, 2); t.Failed() {
		t.FailNow()
	}
	if p := string(r.slack.Payloads()[1]); !strings.Contains(p, "Applied automatically") || !strings.Contains(p, "chg-1") {
		t.Fatalf("the second message does not announce the change:\n%s", p)
	}
	if st := r.state(t, finding.Fingerprint(maker)); st.Owner != "ev-a" {
		t.Fatalf("the window belongs to %q, want the report that made the change", st.Owner)
	}
	// A retry of the same event, and another delivery of it, send nothing more.
	if err := r.n.Notify(ctx, maker); err != nil {
		t.Fatal(err)
	}
	// A later event finds the change in place (made by ev-a): an ordinary repeat, held back.
	later := report(t, "ev-c")
	later.Applied = maker.Applied
	if err := r.n.Notify(ctx, later); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 2, 2)
}

func TestHoldBackExplicit(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	fp := finding.Fingerprint(report(t, "x"))
	if err := r.n.HoldBack(ctx, fp, r.clock.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.n.Notify(ctx, report(t, "ev-1")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 0, 0)
	r.clock.Add(11 * time.Minute)
	if err := r.n.Notify(ctx, report(t, "ev-2")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 1, 1)
}

// TestWebhookURLNeverLeaks drives every Slack failure and checks errors and logs.
func TestWebhookURLNeverLeaks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/services/T0KMSFIX0/B0NOTIFY0/s3cr3tT0k3nNeverLogged"
	l.Close()
	tests := []struct {
		name   string
		secret func(r *rig) string
		fault  *awsfake.SlackFault
	}{
		{"connection refused", func(*rig) string { return closed }, nil},
		{"connection refused, JSON secret", func(*rig) string { return `{"url":"` + closed + `"}` }, nil},
		{"404", func(r *rig) string { return r.slack.WebhookURL }, &awsfake.SlackFault{Status: 404, Body: "no_service"}},
		{"500", func(r *rig) string { return r.slack.WebhookURL }, &awsfake.SlackFault{Status: 500, Body: "err"}},
		{"not a URL", func(*rig) string { return "s3cr3tT0k3nNeverLogged not a url" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil)
			secret := tt.secret(r)
			r.secrets.Put(secretARN, secret)
			if tt.fault != nil {
				r.slack.Down(*tt.fault)
			}
			err := r.n.Notify(context.Background(), report(t, "ev-1"))
			r.assertErrClean(t, err)
			for _, s := range []string{"s3cr3tT0k3nNeverLogged", r.slack.WebhookURL} {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error holds the webhook: %v", err)
				}
				if strings.Contains(r.logs.String(), s) {
					t.Errorf("logs hold the webhook:\n%s", r.logs.String())
				}
			}
			if r.env.sns.Receiver.Count() != 1 {
				t.Error("the SNS copy was not sent")
			}
		})
	}
}

func TestSecretReadOncePerContainer(t *testing.T) {
	r := newRig(t, nil)
	r.secrets.Put(secretARN, `{"url": "`+r.slack.WebhookURL+`"}`)
	ctx := context.Background()
	for i := range 3 {
		rep := report(t, fmt.Sprintf("ev-%d", i))
		rep.Bucket = fmt.Sprintf("bucket-%d", i) // three findings
		if err := r.n.Notify(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	r.wantCounts(t, 3, 3)
	if c := r.secrets.Calls(); c != 1 {
		t.Errorf("%d GetSecretValue calls, want 1", c)
	}
}

func TestSecretsManagerFaults(t *testing.T) {
	tests := []struct {
		code      string
		status    int
		retryable bool
	}{
		{"ResourceNotFoundException", 400, false},
		{"AccessDeniedException", 400, false},
		{"ThrottlingException", 400, true},
		{"InternalServiceError", 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			r := newRig(t, nil)
			r.secrets.Fail(testenv.AWSFault{Code: tt.code, Status: tt.status})
			err := r.n.Notify(context.Background(), report(t, "ev-1"))
			if (err != nil) != tt.retryable {
				t.Errorf("Notify = %v, want retryable=%v", err, tt.retryable)
			}
			r.wantCounts(t, 0, 1)
		})
	}
}

// TestContainersRace: several containers (notifiers) on one table agree on who sends.
func TestContainersRace(t *testing.T) {
	r := newRig(t, nil)
	var ns []*Notifier
	for range 4 {
		n, err := New(r.n.cfg, Clients{SNS: r.env.sns.Client(3), DynamoDB: r.env.dyn.Client(3), Secrets: r.secrets.Client()})
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, n)
	}
	const events, findings = 200, 10
	var wg sync.WaitGroup
	errs := make(chan error, events)
	for i := range events {
		wg.Go(func() {
			rep := report(t, fmt.Sprintf("ev-%d", i))
			rep.Bucket = fmt.Sprintf("bucket-%d", i%findings)
			errs <- ns[i%len(ns)].Notify(context.Background(), rep)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	r.wantCounts(t, findings, findings)
	for f := range findings {
		rep := report(t, "x")
		rep.Bucket = fmt.Sprintf("bucket-%d", f)
		if st := r.state(t, finding.Fingerprint(rep)); st.Total != events/findings || st.Since != events/findings-1 {
			t.Errorf("finding %d: total %d since %d", f, st.Total, st.Since)
		}
	}
}

func TestIgnoredNeverNotifies(t *testing.T) {
	r := newRig(t, nil)
	if err := r.n.Notify(context.Background(), finding.Report{EventID: "ev-1", Ignored: "not a KMS call made by S3"}); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 0, 0)
}

func TestWithoutSlack(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SlackSecretARN = "" })
	if err := r.n.Notify(context.Background(), report(t, "ev-1")); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(t, 0, 1)
	if st := r.state(t, finding.Fingerprint(report(t, "x"))); st.Slack != stateOff || st.SNS != stateSent {
		t.Errorf("state = %+v", st)
	}
	if r.secrets.Calls() != 0 {
		t.Error("read the secret without Slack configured")
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		c    Clients
	}{
		{"nothing to send to", Config{Table: "t"}, Clients{DynamoDB: &fakeTable{}}},
		{"topic without client", Config{TopicARN: "arn:aws:sns:us-east-1:1:t"}, Clients{}},
		{"secret without client", Config{SlackSecretARN: secretARN}, Clients{}},
		{"table without client", Config{TopicARN: "arn:aws:sns:us-east-1:1:t", Table: "t"}, Clients{SNS: &fakePublisher{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.c); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

type fakeTable struct{ Table }
type fakePublisher struct{ Publisher }
