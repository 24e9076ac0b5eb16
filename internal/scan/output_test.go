package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func sampleResult() *Result {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	g := NewGrouper()
	role := "arn:aws:iam::111122223333:role/app-reader"
	key := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for i := range 3 {
		g.Add(finding.Report{
			EventID: "ev-" + string(rune('a'+i)), Diagnosis: finding.IdentityPolicyMissing,
			Detail: "No identity-based policy of the role allows kms:Decrypt on the key.", Principal: role,
			PrincipalAccount: "111122223333", Key: key, KeyAccount: "111122223333", Region: "us-east-1",
			Bucket: "amzn-s3-demo-reports", Actions: []string{"kms:Decrypt"},
		}, t0.Add(time.Duration(i)*time.Hour))
	}
	g.Add(finding.Report{
		EventID: "ev-z", Diagnosis: finding.KeyDisabled, Principal: "arn:aws:iam::111122223333:role/service-role/ingest-writer",
		Key: key, Bucket: "amzn-s3-demo-ingest", Actions: []string{"kms:GenerateDataKey"},
	}, t0.Add(90*time.Minute))
	return &Result{Since: t0.Add(-time.Hour), Until: t0.Add(23 * time.Hour), Records: 1234, Denials: 4, Ignored: 1230, Pages: 25, Retries: 2, Complete: true, Groups: g.Groups()}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleResult()); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.txt", buf.Bytes())
}

func TestWriteTableEmpty(t *testing.T) {
	var buf bytes.Buffer
	res := &Result{Since: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), Pages: 1, Complete: true}
	if err := WriteTable(&buf, res); err != nil {
		t.Fatal(err)
	}
	want := "no S3 KMS denials; 0 record(s) read in 1 page(s); window 2026-11-27 00:00:00Z to 2026-11-28 00:00:00Z\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleResult().Groups); err != nil {
		t.Fatal(err)
	}
	golden(t, "findings.jsonl", buf.Bytes())
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	// Every line is one JSON object with the contract's fields and the three additions.
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"event_id", "diagnosis", "detail", "principal", "key", "actions", "patches", "auto_apply", "verified", "fingerprint"} {
		if _, ok := first[f]; !ok {
			t.Errorf("line 1 lacks %q", f)
		}
	}
	if first["count"] != 3.0 || first["first_seen"] != "2026-11-27T00:00:00Z" || first["last_seen"] != "2026-11-27T02:00:00Z" || first["event_id"] != "ev-c" {
		t.Errorf("line 1: count %v first %v last %v event %v", first["count"], first["first_seen"], first["last_seen"], first["event_id"])
	}
}

func TestRenderProgress(t *testing.T) {
	tests := []struct {
		p    Progress
		want string
	}{
		{Progress{}, "[..........]   0%  0 events  0 denials"},
		{Progress{Fraction: 0.5, Records: 1200, Denials: 37, Note: "page 24"}, "[#####.....]  50%  1200 events  37 denials  page 24"},
		{Progress{Fraction: 1, Records: 3, Note: "file 2/2"}, "[##########] 100%  3 events  0 denials  file 2/2"},
		{Progress{Fraction: 1.7}, "[##########] 100%  0 events  0 denials"},
		{Progress{Fraction: -1}, "[..........]   0%  0 events  0 denials"},
	}
	for _, tt := range tests {
		if got := renderProgress(tt.p, 10); got != tt.want {
			t.Errorf("renderProgress(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	if NewBar(&buf, false, false) != nil {
		t.Error("a bar on a buffer (not a terminal) without force")
	}
	if NewBar(&buf, true, true) != nil {
		t.Error("a bar despite quiet")
	}
	var nilBar *Bar
	nilBar.Update(Progress{Fraction: 0.5}) // a nil bar draws nothing and does not panic
	nilBar.Clear()

	clock := newFakeClock()
	b := NewBar(&buf, false, true)
	b.clock, b.width = clock, 4
	b.Update(Progress{Fraction: 0.25, Records: 10})
	b.Update(Progress{Fraction: 0.5, Records: 20}) // within 100ms: skipped
	clock.Sleep(context.Background(), 200*time.Millisecond)
	b.Update(Progress{Fraction: 0.75, Records: 30})
	b.Update(Progress{Fraction: 1, Records: 40}) // final state: always drawn
	b.Clear()
	want := "\r[#...]  25%  10 events  0 denials\x1b[K" +
		"\r[###.]  75%  30 events  0 denials\x1b[K" +
		"\r[####] 100%  40 events  0 denials\x1b[K" +
		"\r\x1b[K"
	if buf.String() != want {
		t.Errorf("bar wrote %q, want %q", buf.String(), want)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(&bytes.Buffer{}) {
		t.Error("a regular file or a buffer taken for a terminal")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !IsTerminal(tty) {
			t.Error("/dev/tty not taken for a terminal")
		}
	}
}

func TestPacer(t *testing.T) {
	clock := newFakeClock()
	p := NewPacer(clock, 2)
	ctx := context.Background()
	var at []time.Time
	for range 3 {
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		at = append(at, clock.Now())
		clock.Sleep(ctx, 100*time.Millisecond) // the request takes 100ms
		p.Done()
	}
	// Spacing counts from the end of the previous request: 100ms + 500ms.
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d != 600*time.Millisecond {
			t.Errorf("start %d came %v after the previous, want 600ms", i, d)
		}
	}
	p.Delay(3 * time.Second)
	before := clock.Now()
	p.Wait(ctx)
	if d := clock.Now().Sub(before); d != 3*time.Second {
		t.Errorf("after Delay(3s) waited %v", d)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	p.Done()
	if err := p.Wait(cancelled); err == nil {
		t.Error("Wait on a cancelled context succeeded")
	}
}
