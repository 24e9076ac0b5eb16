package crossaccount_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

type failingNotifier struct{ calls int }

func (f *failingNotifier) Notify(context.Context, finding.Report) error {
	f.calls++
	return errors.New("slack is down")
}

func callerHandler(t *testing.T, n remediator.Notifier, bridge *awsfake.EventBridge, log *logLines) *remediator.Handler {
	return &remediator.Handler{
		Enricher: callerWorld{},
		Notifier: n,
		KeyOwner: &crossaccount.Sender{Events: eventsClient(bridge.URL), Buses: map[string]string{ownerAcct: ownerBus}},
		Log:      slog.New(slog.NewJSONHandler(log, nil)),
		Metrics:  &bytes.Buffer{},
	}
}

// A failed put is returned (Lambda retries the event) only after the local notification
// went out; a failed notification is retried before anything is sent.
func TestHandlerSendFailures(t *testing.T) {
	ctx := context.Background()
	event := sampleEvent(t, sampleKey)

	t.Run("put fails after notifying: error, then the retry sends", func(t *testing.T) {
		bridge := awsfake.NewEventBridge(t, callerAcct)
		bridge.AddBus(ownerBus)
		bridge.Fail("PutEvents", testenv.AWSFault{Code: "InternalException", Status: 500, Times: 1})
		sent, log := &testenv.Reports{}, &logLines{}
		h := callerHandler(t, sent, bridge, log)
		if _, err := h.Handle(ctx, event); err == nil || !strings.Contains(err.Error(), "key-policy change request") {
			t.Fatalf("err = %v, want the failed put", err)
		}
		if len(sent.All()) != 1 {
			t.Fatal("the local notification did not go out first")
		}
		if _, err := h.Handle(ctx, event); err != nil {
			t.Fatal(err)
		}
		if n := len(bridge.Take(ownerBus)); n != 1 {
			t.Errorf("%d requests delivered, want 1", n)
		}
	})
	t.Run("failed entry counts as a failure", func(t *testing.T) {
		bridge := awsfake.NewEventBridge(t, callerAcct)
		bridge.AddBus(ownerBus)
		bridge.FailEntries(1)
		h := callerHandler(t, &testenv.Reports{}, bridge, &logLines{})
		if _, err := h.Handle(ctx, event); err == nil || !strings.Contains(err.Error(), "refused the request") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("notify fails: nothing is sent", func(t *testing.T) {
		bridge := awsfake.NewEventBridge(t, callerAcct)
		bridge.AddBus(ownerBus)
		n := &failingNotifier{}
		h := callerHandler(t, n, bridge, &logLines{})
		if _, err := h.Handle(ctx, event); err == nil || n.calls != 1 {
			t.Fatalf("err = %v, notify calls %d", err, n.calls)
		}
		if c := bridge.Calls("PutEvents"); c != 0 {
			t.Errorf("PutEvents called %d times before the notification went out", c)
		}
	})
}

func TestHandlerRequestRouting(t *testing.T) {
	ctx := context.Background()
	req := envelope(t, callerAcct, detailOf(t, callerReport(t, sampleKey)))

	t.Run("not configured: ignored with the reason", func(t *testing.T) {
		log := &logLines{}
		sent := &testenv.Reports{}
		h := &remediator.Handler{Enricher: callerWorld{}, Notifier: sent, Log: slog.New(slog.NewJSONHandler(log, nil))}
		rep, err := h.Handle(ctx, req)
		if err != nil || !strings.Contains(rep.Ignored, "KMSFIX_TRUSTED_ACCOUNTS") || len(sent.All()) != 0 {
			t.Fatalf("rep %+v, err %v", rep, err)
		}
		if l := log.events(); len(l) != 1 || l[0]["outcome"] != "ignored" {
			t.Errorf("log: %v", l)
		}
	})
	t.Run("own account unknown: retried", func(t *testing.T) {
		f := awsfake.NewSTS(t, ownerAcct)
		f.Fail("GetCallerIdentity", testenv.AWSFault{Code: "Throttling", Status: 400})
		h := &remediator.Handler{Enricher: callerWorld{}, Notifier: &testenv.Reports{}, Log: slog.New(slog.NewJSONHandler(&logLines{}, nil)),
			Requests: &crossaccount.Receiver{
				Enricher:        keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)},
				STS:             sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(f.URL), Credentials: creds, Retryer: aws.NopRetryer{}}),
				TrustedAccounts: []string{callerAcct},
			}}
		if _, err := h.Handle(ctx, req); err == nil || !strings.Contains(err.Error(), "GetCallerIdentity") {
			t.Fatalf("err = %v, want a retryable error", err)
		}
	})
}
