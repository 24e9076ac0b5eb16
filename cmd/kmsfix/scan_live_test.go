package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// TestScanCommandLive runs `kmsfix scan --live` over log files with the Lambda's enricher
// reading local-kms and the IAM/STS fakes: the world decides the diagnosis (a condition that
// no longer matches with S3 Bucket Keys), which the event alone cannot show.
func TestScanCommandLive(t *testing.T) {
	const sample = "../../events/30-condition-mismatch-bucket-key"
	w, err := world.Load(filepath.Join(sample, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expect struct {
		Diagnosis string `json:"diagnosis"`
		Principal string `json:"principal"`
	}
	raw, err := os.ReadFile(filepath.Join(sample, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile(filepath.Join(sample, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Three repeats of the denial (distinct event ids) in one file.
	var file bytes.Buffer
	for _, id := range []string{"a1", "a2", "a3"} {
		file.WriteString(strings.Replace(string(event), "89f45e9f-d500-4d80-8866-b974e0cc974e", "89f45e9f-d500-4d80-8866-b974e0cc97"+id, 1))
		file.WriteByte('\n')
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "denials.json"), file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	env := emulator.StartServices(t, emulator.ServicesOptions{Account: "560718293412", Region: "us-east-1", World: w})
	// Access Analyzer (the pipeline's validation step) answers from a local fake.
	awsTestEnv(t, map[string]string{"ACCESSANALYZER": awsfake.NewAccessAnalyzer(t).URL})
	for _, kv := range env.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--files", dir, "--live", "--json", "--quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got scanLine
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || strings.Count(stdout.String(), "\n") != 1 {
		t.Fatalf("want one finding line, got %q (%v)", stdout.String(), err)
	}
	if got.Diagnosis != expect.Diagnosis || got.Count != 3 || got.Principal != expect.Principal {
		t.Errorf("live finding %+v, want %s x3 for %s", got, expect.Diagnosis, expect.Principal)
	}
	if env.IAM.Total() == 0 || env.KMS.Calls("GetKeyPolicy") == 0 {
		t.Errorf("the enricher made no calls (IAM %d, KMS GetKeyPolicy %d)", env.IAM.Total(), env.KMS.Calls("GetKeyPolicy"))
	}
}
