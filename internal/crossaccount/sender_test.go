package crossaccount_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

const (
	ownerBus = "arn:aws:events:eu-west-2:609284715320:event-bus/default"
	orgBus   = "arn:aws:events:eu-west-2:111111111111:event-bus/kmsfix-org"
)

func eventsClient(url string) *eventbridge.Client {
	return eventbridge.New(eventbridge.Options{Region: region, BaseEndpoint: aws.String(url), Credentials: creds, Retryer: aws.NopRetryer{}})
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestSenderRoutesByKeyAccount(t *testing.T) {
	third := strings.Replace(sampleKey, ownerAcct, otherAcct, 1)
	tests := []struct {
		name  string
		buses map[string]string
		key   string
		want  string // outcome
		bus   string // where the entry went
	}{
		{"the key account's bus", map[string]string{ownerAcct: ownerBus, "*": orgBus}, sampleKey, crossaccount.Sent, ownerBus},
		{"the organisation bus for any other account", map[string]string{ownerAcct: ownerBus, "*": orgBus}, third, crossaccount.Sent, orgBus},
		{"no bus for the account", map[string]string{ownerAcct: ownerBus}, third, crossaccount.NoBus, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eb := awsfake.NewEventBridge(t, callerAcct)
			eb.AddBus(ownerBus)
			eb.AddBus(orgBus)
			s := &crossaccount.Sender{Events: eventsClient(eb.URL), Buses: tt.buses}
			r := callerReport(t, tt.key)
			got, err := s.Send(context.Background(), r)
			if err != nil || got != tt.want {
				t.Fatalf("Send = %q, %v; want %q", got, err, tt.want)
			}
			entries := eb.Entries()
			if tt.bus == "" {
				if len(entries) != 0 {
					t.Fatalf("sent %d entries, want none", len(entries))
				}
				return
			}
			if len(entries) != 1 || entries[0].EventBusName != tt.bus || entries[0].Source != crossaccount.Source || entries[0].DetailType != crossaccount.DetailType {
				t.Fatalf("entries = %+v", entries)
			}
			envs := eb.Take(tt.bus)
			if len(envs) != 1 {
				t.Fatalf("delivered %d envelopes", len(envs))
			}
			var env crossaccount.Envelope
			var req crossaccount.Request
			if err := json.Unmarshal(envs[0], &env); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(env.Detail, &req); err != nil {
				t.Fatal(err)
			}
			p, _ := crossaccount.KeyPolicyPatch(r)
			if env.Account != callerAcct || req.Version != crossaccount.Version || req.Key != tt.key ||
				req.SenderAccount != callerAcct || req.Finding.EventID != r.EventID || len(req.Finding.Patches) != 2 {
				t.Errorf("envelope %+v\nrequest %+v", env, req)
			}
			if why := crossaccount.CheckStatement(req.Statement, p.Statement); why != "" {
				t.Errorf("sent statement: %s", why)
			}
		})
	}
}

func TestSenderNotNeeded(t *testing.T) {
	eb := awsfake.NewEventBridge(t, callerAcct)
	eb.AddBus(ownerBus)
	s := &crossaccount.Sender{Events: eventsClient(eb.URL), Buses: map[string]string{"*": ownerBus}}
	base := callerReport(t, sampleKey)
	identityOnly := base
	identityOnly.Patches = base.Patches[:1] // the key policy already allows
	sameAccount := base
	sameAccount.Diagnosis = finding.KeyPolicyMissing
	for name, r := range map[string]finding.Report{"identity half only": identityOnly, "not cross-account": sameAccount, "ignored": {EventID: "x", Ignored: "not a denial"}} {
		if got, err := s.Send(context.Background(), r); err != nil || got != crossaccount.NotNeeded {
			t.Errorf("%s: Send = %q, %v", name, got, err)
		}
	}
	if n := len(eb.Entries()); n != 0 {
		t.Errorf("sent %d entries", n)
	}
}

// One request per finding per window; a failed put is not remembered, so the retry sends.
func TestSenderDedupeAndFailures(t *testing.T) {
	eb := awsfake.NewEventBridge(t, callerAcct)
	eb.AddBus(ownerBus)
	clock := &fakeClock{t: time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)}
	s := &crossaccount.Sender{Events: eventsClient(eb.URL), Buses: map[string]string{ownerAcct: ownerBus}, Window: time.Hour, Now: clock.Now}
	r := callerReport(t, sampleKey)
	ctx := context.Background()

	eb.FailEntries(1)
	if _, err := s.Send(ctx, r); err == nil || !strings.Contains(err.Error(), "InternalFailure") {
		t.Fatalf("FailedEntryCount 1: err = %v, want the entry's error", err)
	}
	eb.Fail("PutEvents", testenv.AWSFault{Code: "InternalException", Status: 500, Times: 1})
	if _, err := s.Send(ctx, r); err == nil {
		t.Fatal("PutEvents 500: no error")
	}
	steps := []struct {
		after time.Duration
		want  string
	}{
		{0, crossaccount.Sent},
		{10 * time.Minute, crossaccount.Duplicate},
		{59 * time.Minute, crossaccount.Duplicate},
		{time.Hour, crossaccount.Sent},
	}
	start := clock.t
	for _, st := range steps {
		clock.t = start.Add(st.after)
		if got, err := s.Send(ctx, r); err != nil || got != st.want {
			t.Fatalf("after %s: Send = %q, %v; want %q", st.after, got, err, st.want)
		}
	}
	if n := len(eb.Take(ownerBus)); n != 2 {
		t.Errorf("delivered %d requests, want 2 (one per window)", n)
	}
}

// The request is a stable interface (docs/cross-account.md): these names never change. A new
// field is added here and in the document together.
func TestRequestFieldsAreStable(t *testing.T) {
	m := detailOf(t, callerReport(t, sampleKey))
	want := []string{"denial_event_id", "denial_time", "finding", "key", "key_account", "request_id", "requested_at", "sender_account", "statement", "version"}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("detail fields %v, want %v", got, want)
	}
	doc, err := os.ReadFile("../../docs/cross-account.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(want, crossaccount.Source, crossaccount.DetailType) {
		if !strings.Contains(string(doc), "`"+f+"`") {
			t.Errorf("docs/cross-account.md does not document `%s`", f)
		}
	}
	if m["version"] != float64(crossaccount.Version) {
		t.Errorf("version = %v", m["version"])
	}
}

func TestIsRequest(t *testing.T) {
	for _, tt := range []struct {
		event string
		want  bool
	}{
		{`{"source":"kmsfix.remediator","detail-type":"x"}`, true},
		{`{"source":"aws.kms","detail":{"userAgent":"kmsfix.remediator"}}`, false},
		{`{"eventSource":"kms.amazonaws.com"}`, false},
		{`not json kmsfix.remediator`, false},
	} {
		if got := crossaccount.IsRequest([]byte(tt.event)); got != tt.want {
			t.Errorf("IsRequest(%s) = %v", tt.event, got)
		}
	}
}
