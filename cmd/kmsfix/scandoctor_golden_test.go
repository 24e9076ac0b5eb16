package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/doctor"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/corpus"
)

// cliGolden compares a command's output with testdata/NAME; -update rewrites it. These files
// are also the example output in docs/scan-doctor.md.
func cliGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readGolden(t, path, "go test ./cmd/kmsfix -run Golden -update")
	if got != want {
		t.Errorf("output differs from %s (rewrite with -update if intended):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestScanGoldenTable(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 21, Successes: 600, Others: 40, Groups: 10, NonKMS: 50})
	dir := t.TempDir()
	corpus.WriteLogFiles(t, dir, day.Records)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--files", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cliGolden(t, "scan-files.txt", stdout.String())
}

func TestDoctorGoldenTables(t *testing.T) {
	f := awsfake.NewDoctor(t, doctor.StackPattern)
	doctorEnv(t, f)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"doctor"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	cliGolden(t, "doctor-pass.txt", stdout.String())

	f.Lock()
	f.Trails[0].EventSelectors = `[{"ReadWriteType":"All","IncludeManagementEvents":true,"ExcludeManagementEventSources":["kms.amazonaws.com"]}]`
	f.Rules[1].State = "ENABLED"
	f.Queues[0].Visible = 3
	f.Unlock()
	stdout.Reset()
	if code := run([]string{"doctor"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1: %s%s", code, stdout.String(), stderr.String())
	}
	cliGolden(t, "doctor-fail.txt", strings.ReplaceAll(stdout.String(), f.URL, "https://sqs.us-east-1.amazonaws.com"))
}
