package remediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/world"
)

// fileWorld is an Enricher that returns a world file (a fresh copy per call).
type fileWorld struct{ raw []byte }

func (f fileWorld) World(context.Context, *cloudtrail.Denial) *world.World {
	w, err := world.Parse(f.raw)
	if err != nil {
		panic(err)
	}
	return w
}

type recorder struct {
	got []finding.Report
	err error
}

func (r *recorder) Notify(_ context.Context, rep finding.Report) error {
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, rep)
	return nil
}

type panicker struct{}

func (panicker) Notify(context.Context, finding.Report) error { panic("boom") }

// validatorFunc is a pipeline.PolicyValidator from a function.
type validatorFunc func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error)

func (f validatorFunc) ValidatePolicy(_ context.Context, in *accessanalyzer.ValidatePolicyInput, _ ...func(*accessanalyzer.Options)) (*accessanalyzer.ValidatePolicyOutput, error) {
	return f(in)
}

var clean = validatorFunc(func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error) {
	return &accessanalyzer.ValidatePolicyOutput{}, nil
})

func sample(t *testing.T, name string) (event, worldJSON []byte) {
	t.Helper()
	dir := filepath.Join("..", "..", "events", name)
	event, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	worldJSON, err = os.ReadFile(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	return event, worldJSON
}

type harness struct {
	h       *Handler
	logs    bytes.Buffer
	metrics bytes.Buffer
	notes   *recorder
}

func newHarness(t *testing.T, worldJSON []byte, v pipeline.PolicyValidator) *harness {
	t.Helper()
	x := &harness{notes: &recorder{}}
	x.h = &Handler{
		Enricher: fileWorld{worldJSON},
		Notifier: x.notes,
		Log:      slog.New(slog.NewJSONHandler(&x.logs, nil)),
		Metrics:  &x.metrics,
	}
	if v != nil {
		x.h.Validator = pipeline.NewValidator(v, time.Minute, time.Second)
	}
	return x
}

func (x *harness) lines(t *testing.T, w *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(w.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHandleFinding(t *testing.T) {
	event, wj := sample(t, "01-identity-policy-missing")
	x := newHarness(t, wj, clean)
	rep, err := x.h.Handle(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Diagnosis != finding.IdentityPolicyMissing || !rep.Verified {
		t.Errorf("report = %+v", rep)
	}
	if len(x.notes.got) != 1 || x.notes.got[0].EventID != rep.EventID {
		t.Errorf("notified %d reports", len(x.notes.got))
	}
	logs := x.lines(t, &x.logs)
	if len(logs) != 1 || logs[0]["msg"] != "event" || logs[0]["outcome"] != "finding" ||
		logs[0]["diagnosis"] != "identity-policy-missing" || logs[0]["world"] == nil || logs[0]["event_id"] != rep.EventID {
		t.Errorf("log = %v", logs)
	}
	m := x.lines(t, &x.metrics)
	if len(m) != 1 || m[0]["Diagnosis"] != "identity-policy-missing" || m[0]["Findings"] != 1.0 || m[0]["_aws"] == nil {
		t.Fatalf("EMF = %v", m)
	}
	directives := m[0]["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)
	if len(directives) != 2 {
		t.Errorf("EMF directives = %v", directives)
	}
}

func TestHandleIgnoredAndMalformed(t *testing.T) {
	ignored, _ := os.ReadFile(filepath.Join("..", "..", "events", "90-ignored-successful-decrypt", "event.json"))
	tests := []struct {
		name, event, outcome string
	}{
		{"ignored", string(ignored), "ignored"},
		{"malformed", `{"id":"x-1","detail-type":"AWS API Call via CloudTrail","detail":[]}`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newHarness(t, []byte(`{}`), clean)
			rep, err := x.h.Handle(context.Background(), json.RawMessage(tt.event))
			if err != nil {
				t.Fatalf("dropped events must not be retried: %v", err)
			}
			if rep.Ignored == "" || len(x.notes.got) != 0 {
				t.Errorf("report = %+v, notified %d", rep, len(x.notes.got))
			}
			if l := x.lines(t, &x.logs); len(l) != 1 || l[0]["outcome"] != tt.outcome {
				t.Errorf("log = %v", l)
			}
			if m := x.lines(t, &x.metrics); len(m) != 1 || m[0]["IgnoredEvents"] != 1.0 || m[0]["Findings"] != nil {
				t.Errorf("EMF = %v", m)
			}
		})
	}
}

func TestHandleErrors(t *testing.T) {
	event, wj := sample(t, "01-identity-policy-missing")
	t.Run("notifier fails: retry", func(t *testing.T) {
		x := newHarness(t, wj, clean)
		x.notes.err = errors.New("SNS throttled")
		if _, err := x.h.Handle(context.Background(), event); err == nil || !strings.Contains(err.Error(), "SNS throttled") {
			t.Errorf("err = %v, want the notifier's error returned", err)
		}
		if m := x.lines(t, &x.metrics); m[0]["Errors"] != 1.0 {
			t.Errorf("EMF = %v", m)
		}
	})
	t.Run("panic: recovered, error returned", func(t *testing.T) {
		x := newHarness(t, wj, clean)
		x.h.Notifier = panicker{}
		_, err := x.h.Handle(context.Background(), event)
		if err == nil || !strings.Contains(err.Error(), "panic in the pipeline: boom") {
			t.Errorf("err = %v", err)
		}
		// The handler is still usable.
		x.h.Notifier = x.notes
		if _, err := x.h.Handle(context.Background(), event); err != nil {
			t.Errorf("after a panic: %v", err)
		}
	})
}

func TestHandleValidation(t *testing.T) {
	event, wj := sample(t, "01-identity-policy-missing")
	tests := []struct {
		name      string
		v         pipeline.PolicyValidator
		verified  bool
		unverMsg  string
		unknownIn string
	}{
		{"clean", clean, true, "", ""},
		{"security warning", validatorFunc(func(in *accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error) {
			if in.PolicyType != types.PolicyTypeIdentityPolicy {
				t.Errorf("policy type %s", in.PolicyType)
			}
			return &accessanalyzer.ValidatePolicyOutput{Findings: []types.ValidatePolicyFinding{
				{FindingType: types.ValidatePolicyFindingTypeSuggestion, IssueCode: aws.String("EMPTY_ARRAY_ACTION")},
				{FindingType: types.ValidatePolicyFindingTypeSecurityWarning, IssueCode: aws.String("PASS_ROLE_WITH_STAR_IN_RESOURCE"), FindingDetails: aws.String("x")},
			}}, nil
		}), false, "SECURITY_WARNING PASS_ROLE_WITH_STAR_IN_RESOURCE", ""},
		{"validator down", validatorFunc(func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error) {
			return nil, errors.New("connection refused")
		}), false, "connection refused", "accessanalyzer:ValidatePolicy"},
		{"no validator", nil, false, "not configured", "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newHarness(t, wj, tt.v)
			rep, err := x.h.Handle(context.Background(), event)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verified != tt.verified || !strings.Contains(rep.Unverified, tt.unverMsg) ||
				(tt.unknownIn != "" && !strings.Contains(strings.Join(rep.Unknown, ";"), tt.unknownIn)) {
				t.Errorf("verified=%v unverified=%q unknown=%v", rep.Verified, rep.Unverified, rep.Unknown)
			}
		})
	}
}

// TestPayloadsMalformed: what is not a JSON object is logged with one line and dropped
// without a function error (Lambda would retry it); a valid payload reaches the handler.
func TestPayloadsMalformed(t *testing.T) {
	tests := []struct{ name, payload, reason string }{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"not JSON", "hello", "not JSON"},
		{"truncated", `{"id":`, "not JSON"},
		{"array", `[1,2]`, "not a JSON object"},
		{"string", `"x"`, "not a JSON object"},
		{"too deep", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "exceeded max depth"},
		{"huge", `{"a":"` + strings.Repeat("x", MaxPayload) + `"}`, "more than the 1048576-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newHarness(t, []byte(`{}`), clean)
			enriched := &countingEnricher{Enricher: x.h.Enricher}
			x.h.Enricher = enriched
			out, err := x.h.Invoke(context.Background(), []byte(tt.payload))
			if called := enriched.n > 0 || len(x.notes.got) > 0; err != nil || called {
				t.Fatalf("err %v, handler called %v; want the payload dropped without an error", err, called)
			}
			var rep finding.Report
			if json.Unmarshal(out, &rep) != nil || !strings.HasPrefix(rep.Ignored, "malformed payload: ") {
				t.Errorf("response %s", out)
			}
			l := x.lines(t, &x.logs)
			if len(l) != 1 || l[0]["outcome"] != "malformed" || !strings.Contains(fmt.Sprint(l[0]["reason"]), tt.reason) {
				t.Errorf("log = %v, want one malformed line saying %q", l, tt.reason)
			}
		})
	}
	// A JSON object reaches the record path, whose parser says what it is.
	x := newHarness(t, []byte(`{}`), clean)
	out, err := x.h.Invoke(context.Background(), []byte(`{"id":"1"}`))
	var rep finding.Report
	if err != nil || json.Unmarshal(out, &rep) != nil || rep.Ignored == "" || strings.HasPrefix(rep.Ignored, "malformed payload") {
		t.Errorf("valid payload: %s, %v", out, err)
	}
}

type countingEnricher struct {
	pipeline.Enricher
	n int
}

func (c *countingEnricher) World(ctx context.Context, d *cloudtrail.Denial) *world.World {
	c.n++
	return c.Enricher.World(ctx, d)
}

type sweeps struct{ n int }

func (s *sweeps) SweepDue(context.Context) (apply.SweepResult, error) {
	s.n++
	return apply.SweepResult{Reverted: 1}, nil
}

// Invoke decides once what a payload is and hands it to that path only.
func TestRouter(t *testing.T) {
	event, wj := sample(t, "01-identity-policy-missing")
	tests := []struct {
		name, payload string
		route         Route
	}{
		{"malformed", "[]", RouteMalformed},
		{"sweeper input", `{"source":"kmsfix.sweeper"}`, RouteSweep},
		{"schedule rule", `{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`, RouteSweep},
		{"key-policy request", `{"source":"kmsfix.remediator","detail-type":"KMS Key Policy Change Requested","account":"444455556666","detail":{}}`, RouteKeyPolicyRequest},
		{"cloudtrail denial", string(event), RouteCloudTrail},
		{"other cloudtrail", `{"source":"aws.kms","detail-type":"AWS API Call via CloudTrail","detail":{}}`, RouteCloudTrail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, _ := route([]byte(tt.payload)); r != tt.route {
				t.Fatalf("route = %s, want %s", r, tt.route)
			}
			x := newHarness(t, wj, clean)
			sw := &sweeps{}
			x.h.Sweeper = sw
			out, err := x.h.Invoke(context.Background(), []byte(tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if (sw.n == 1) != (tt.route == RouteSweep) || (len(x.notes.got) == 1) != (tt.name == "cloudtrail denial") {
				t.Errorf("sweeps %d, notifications %d (response %s)", sw.n, len(x.notes.got), out)
			}
			if tt.route == RouteSweep && !strings.Contains(string(out), `"Reverted":1`) {
				t.Errorf("sweep response %s", out)
			}
			if tt.route == RouteKeyPolicyRequest && !strings.Contains(string(out), "trusts no account") {
				t.Errorf("request response %s", out)
			}
		})
	}
	// Without a sweeper (notify mode) a tick is ignored, not parsed as a record.
	x := newHarness(t, wj, clean)
	if out, err := x.h.Invoke(context.Background(), []byte(`{"source":"kmsfix.sweeper"}`)); err != nil || !strings.Contains(string(out), "a sweeper tick") || len(x.notes.got) != 0 {
		t.Errorf("tick in notify mode: %s %v", out, err)
	}
}
