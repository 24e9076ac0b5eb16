package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/kmsfix/kmsfix/internal/retry"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

// TestSlackHangsSNSOnce: a Slack endpoint that never answers. Slack gives up at its own
// deadline, SlackReserve before the invocation's, so the invocation records the SNS copy as
// sent and returns in time; Lambda's retries then publish nothing twice.
func TestSlackHangsSNSOnce(t *testing.T) {
	r := newRig(t, func(c *Config) { c.SlackReserve = time.Second })
	r.slack.Hang()
	invoke := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond) // the invocation's deadline
		defer cancel()
		start := time.Now()
		err := r.n.Notify(ctx, report(t, "ev-hang"))
		if ctx.Err() != nil {
			t.Errorf("Notify returned after the invocation's deadline (%s)", time.Since(start))
		}
		return time.Since(start), err
	}
	took, err := invoke()
	var de *DeliveryError
	if !errors.As(err, &de) || retry.IsPermanent(err) || de.Channel != "slack" {
		t.Fatalf("Notify = %v, want a retryable Slack error", err)
	}
	if took > 1200*time.Millisecond {
		t.Errorf("Notify took %s: Slack did not keep its reserve", took)
	}
	r.wantCounts(t, 0, 1)
	if st := r.state(t, finding.Fingerprint(report(t, "x"))); st.SNS != stateSent || st.Slack != statePending {
		t.Errorf("state = %+v, want SNS sent and Slack pending", st)
	}
	if _, err := invoke(); err == nil { // Lambda's retry, Slack still hanging
		t.Error("the retry succeeded while Slack hangs")
	}
	r.wantCounts(t, 0, 1)
	r.slack.Up()
	if _, err := invoke(); err != nil { // the last retry: Slack answers again
		t.Fatalf("retry after Slack is back: %v", err)
	}
	r.wantCounts(t, 1, 1)
	if a := r.env.sns.Receiver.Count(); a != 1 {
		t.Errorf("SNS published %d times, want exactly once", a)
	}
}

// TestWebhookRejectedMetric: a webhook Slack refuses for good (revoked: 404 no_service, 403
// invalid_token; archived channel: 410) writes one EMF line the stack alarms on; a failure a
// retry may heal (429, 5xx) writes none.
func TestWebhookRejectedMetric(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		metric bool
	}{
		{404, "no_service", true},
		{410, "channel_is_archived", true},
		{403, "invalid_token", true},
		{400, "invalid_payload", true},
		{429, "rate_limited", false},
		{503, "service_unavailable", false},
	} {
		var metrics bytes.Buffer
		r := newRig(t, func(c *Config) { c.Metrics = &metrics })
		r.slack.Down(awsfake.SlackFault{Status: tt.status, Body: tt.body, RetryAfter: "1"})
		_ = r.n.Notify(context.Background(), report(t, "ev-metric"))
		lines := strings.Split(strings.TrimSpace(metrics.String()), "\n")
		if !tt.metric {
			if metrics.Len() != 0 {
				t.Errorf("%d: metrics written: %s", tt.status, metrics.String())
			}
			continue
		}
		if len(lines) != 1 {
			t.Fatalf("%d: %d metrics lines, want 1: %q", tt.status, len(lines), metrics.String())
		}
		var emf struct {
			Rejected int `json:"SlackWebhookRejected"`
			Status   int `json:"SlackStatus"`
			AWS      struct {
				CloudWatchMetrics []struct {
					Namespace string
					Metrics   []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &emf); err != nil {
			t.Fatalf("%d: not JSON: %v", tt.status, err)
		}
		cw := emf.AWS.CloudWatchMetrics
		if emf.Rejected != 1 || emf.Status != tt.status || len(cw) != 1 || cw[0].Namespace != MetricNamespace ||
			len(cw[0].Metrics) != 1 || cw[0].Metrics[0].Name != MetricWebhookRejected {
			t.Errorf("%d: EMF line %s", tt.status, lines[0])
		}
	}
}
