package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/corpus"
)

// awsTestEnv points the SDK's default configuration at fakes only: static credentials, no
// shared files, no instance metadata, and AWS_ENDPOINT_URL_<SERVICE> for each fake.
func awsTestEnv(t *testing.T, endpoints map[string]string) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	for svc, url := range endpoints {
		t.Setenv("AWS_ENDPOINT_URL_"+svc, url)
	}
}

// dayEnv is the CLI's environment with "now" at the end of the generated corpus' day.
func dayEnv(stdout, stderr io.Writer, clock scan.Clock) env {
	return env{stdout: stdout, stderr: stderr, clock: clock,
		now: func() time.Time { return time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC) }}
}

type scanLine struct {
	Principal string   `json:"principal"`
	Key       string   `json:"key"`
	Bucket    string   `json:"bucket"`
	Actions   []string `json:"actions"`
	Diagnosis string   `json:"diagnosis"`
	Count     int      `json:"count"`
	FirstSeen string   `json:"first_seen"`
	LastSeen  string   `json:"last_seen"`
}

// checkScanJSON asserts the JSON lines are exactly the corpus' findings.
func checkScanJSON(t *testing.T, out string, c *corpus.Corpus) {
	t.Helper()
	want := map[string]corpus.DenialGroup{}
	for _, g := range c.Groups {
		want[g.Principal+" "+g.Key+" "+g.Bucket+" "+g.Action] = g
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(c.Groups) {
		t.Errorf("%d findings, want %d", len(lines), len(c.Groups))
	}
	total := 0
	for _, l := range lines {
		var got scanLine
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		k := got.Principal + " " + got.Key + " " + got.Bucket + " " + strings.Join(got.Actions, ",")
		w, ok := want[k]
		if !ok {
			t.Errorf("unexpected finding %s (%s)", k, got.Diagnosis)
			continue
		}
		delete(want, k)
		total += got.Count
		if got.Count != w.Count || got.FirstSeen != w.First.Format(time.RFC3339) || got.LastSeen != w.Last.Format(time.RFC3339) {
			t.Errorf("%s: count %d %s..%s, want %d %s..%s", k, got.Count, got.FirstSeen, got.LastSeen, w.Count, w.First.Format(time.RFC3339), w.Last.Format(time.RFC3339))
		}
		if got.Diagnosis == "" {
			t.Errorf("%s: no diagnosis", k)
		}
	}
	for k := range want {
		t.Errorf("missing finding %s", k)
	}
	if total != c.S3Denials {
		t.Errorf("counts add up to %d, want %d", total, c.S3Denials)
	}
}

// TestScanCommandLookup runs `kmsfix scan` end to end against the CloudTrail fake in real
// time at the default rate: the fake throttles above 2 requests per rolling second and also
// throttles one request on purpose.
func TestScanCommandLookup(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 11, Successes: 150, Others: 10, Groups: 8, MaxCount: 6})
	fake := awsfake.NewCloudTrail(t, day.Records)
	fake.ThrottleCalls = map[int]bool{2: true}
	awsTestEnv(t, map[string]string{"CLOUDTRAIL": fake.URL})
	var stdout, stderr bytes.Buffer
	code := runWith(dayEnv(&stdout, &stderr, scan.RealClock{}), []string{"scan", "--since", "24h", "--json", "--progress", "always"})
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	checkScanJSON(t, stdout.String(), day)
	st := fake.Stats()
	if st.Violations != 0 || st.MaxPerSecond > 2 {
		t.Errorf("rate limit: %d requests over it, at most %d in a rolling second", st.Violations, st.MaxPerSecond)
	}
	if st.Injected != 1 || st.Requests != len(st.Pages)+1 {
		t.Errorf("fake saw %d requests for %d pages with %d injected throttle(s)", st.Requests, len(st.Pages), st.Injected)
	}
	errText := stderr.String()
	if !strings.Contains(errText, "\r[") || !strings.Contains(errText, "100%") {
		t.Errorf("no progress bar on stderr: %q", errText)
	}
	if !strings.Contains(errText, "S3 KMS denial(s) in 8 finding(s)") || !strings.Contains(errText, "1 retried") {
		t.Errorf("summary missing from stderr: %q", errText)
	}
}

// noWait is a clock whose sleeps return at once, for the tests of retries.
type noWait struct{}

func (noWait) Now() time.Time                                   { return time.Now() }
func (noWait) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func TestScanCommandPartialFailure(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 12, Successes: 200, Groups: 6})
	fake := awsfake.NewCloudTrail(t, day.Records)
	fake.RateLimit = 1000
	fake.FailPages = map[int]int{3: 1000}
	awsTestEnv(t, map[string]string{"CLOUDTRAIL": fake.URL})
	var stdout, stderr bytes.Buffer
	code := runWith(dayEnv(&stdout, &stderr, noWait{}), []string{"scan"})
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	out, errText := stdout.String(), stderr.String()
	if !strings.Contains(out, "100 record(s) read in 2 page(s)") {
		t.Errorf("stdout does not report the two pages read:\n%s", out)
	}
	for _, want := range []string{"incomplete: LookupEvents page 3 failed after 6 attempt(s)", "InternalFailure", "were not read (rerun with --since 2026-11-27T00:00:00Z --until "} {
		if !strings.Contains(errText, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errText)
		}
	}
	if strings.Contains(errText, "\r[") {
		t.Error("progress bar drawn on a stderr that is not a terminal")
	}
}

func TestScanCommandEmptyWindow(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 13, Successes: 50, Groups: 3})
	fake := awsfake.NewCloudTrail(t, day.Records)
	awsTestEnv(t, map[string]string{"CLOUDTRAIL": fake.URL})
	var stdout, stderr bytes.Buffer
	code := runWith(dayEnv(&stdout, &stderr, scan.RealClock{}), []string{"scan", "--since", "2026-11-20", "--until", "2026-11-21"})
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	want := "no S3 KMS denials; 0 record(s) read in 1 page(s); window 2026-11-20 00:00:00Z to 2026-11-21 00:00:00Z\n"
	if stdout.String() != want || stderr.Len() != 0 {
		t.Errorf("stdout %q stderr %q; want stdout %q", stdout.String(), stderr.String(), want)
	}
}

func TestScanCommandFiles(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 14, Successes: 800, NonKMS: 100, Groups: 20})
	dir := t.TempDir()
	corpus.WriteLogFiles(t, dir, day.Records)
	// No AWS at all: files mode without --live needs no configuration.
	awsTestEnv(t, map[string]string{"CLOUDTRAIL": "http://127.0.0.1:1"})
	var stdout, stderr bytes.Buffer
	code := run([]string{"scan", "--files", dir, "--json", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	checkScanJSON(t, stdout.String(), day)
	if stderr.Len() != 0 {
		t.Errorf("--quiet still wrote %q", stderr.String())
	}
}

func TestScanCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"scan", "--rate", "3"},
		{"scan", "--since", "yesterday"},
		{"scan", "--since", "1h", "--until", "2h"},
		{"scan", "--progress", "sometimes"},
		{"scan", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr.String())
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"1.5d", now.Add(-36 * time.Hour)},
		{"2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-11-01T08:30", time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC)},
		{"2026-11-01T08:30:00+02:00", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-1h", "soon", "2026-13-01"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
}

// BenchmarkScanDay runs `kmsfix scan` in real time at the default rate over a generated day
// of KMS events served by the CloudTrail fake (which throttles above 2 requests per rolling
// second, and throttles two calls on purpose). One iteration takes about 40 s:
//
//	go test ./cmd/kmsfix -run XXX -bench ScanDay -benchtime 1x
func BenchmarkScanDay(b *testing.B) {
	day := corpus.KMSDay(corpus.Options{Seed: 1})
	for b.Loop() {
		fake := awsfake.NewCloudTrail(b, day.Records)
		fake.ThrottleCalls = map[int]bool{10: true, 30: true}
		for k, v := range map[string]string{
			"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1",
			"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
			"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_CLOUDTRAIL": fake.URL,
		} {
			b.Setenv(k, v)
		}
		var stdout, stderr bytes.Buffer
		start := time.Now()
		if code := runWith(dayEnv(&stdout, &stderr, scan.RealClock{}), []string{"scan", "--json"}); code != 0 {
			b.Fatalf("exit %d: %s", code, stderr.String())
		}
		elapsed := time.Since(start)
		if n := strings.Count(stdout.String(), "\n"); n != len(day.Groups) {
			b.Fatalf("%d findings, want %d", n, len(day.Groups))
		}
		st := fake.Stats()
		if st.Violations != 0 {
			b.Fatalf("%d requests over the rate limit", st.Violations)
		}
		b.ReportMetric(float64(len(day.Records)), "events")
		b.ReportMetric(float64(st.Requests), "requests")
		b.ReportMetric(float64(st.MaxPerSecond), "max-req/rolling-s")
		b.ReportMetric(float64(st.MinGap.Milliseconds()), "min-gap-ms")
		b.ReportMetric(elapsed.Seconds(), "s/scan")
	}
}
