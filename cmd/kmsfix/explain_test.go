package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite events/*/golden.txt from the current output")

// TestExplainEvents runs `kmsfix explain --world W E` over every bundled sample and compares
// the human output with events/<folder>/golden.txt, rewritten with
//
//	go test ./cmd/kmsfix -run TestExplainEvents -update
//
// It also checks that `--json` prints exactly events/<folder>/golden.json, which
// internal/engine's TestEvents writes and judges: the CLI and the judged path are one.
func TestExplainEvents(t *testing.T) {
	dirs := eventDirs(t)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			world, event := filepath.Join(dir, "world.json"), filepath.Join(dir, "event.json")

			out, errOut, code := runCLI(t, "", "explain", "--world", world, event)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden := filepath.Join(dir, "golden.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want := readGolden(t, golden, "go test ./cmd/kmsfix -run TestExplainEvents -update"); out != want {
				t.Errorf("human output differs from %s (rewrite with -update if intended):\n--- got\n%s--- want\n%s", golden, out, want)
			}

			jsonOut, errOut, code := runCLI(t, "", "explain", "--json", "--world", world, event)
			if code != 0 || errOut != "" {
				t.Fatalf("--json: exit %d, stderr %q", code, errOut)
			}
			if want := readGolden(t, filepath.Join(dir, "golden.json"), "go test ./internal/engine -run TestEvents -update"); jsonOut != want {
				t.Errorf("--json output differs from golden.json:\n got: %s\nwant: %s", jsonOut, want)
			}
		})
	}
}

// TestExplainBadInput: each bad input gets one message naming the file and the problem, the
// exit status is non-zero, and the good inputs of the same run are still reported.
func TestExplainBadInput(t *testing.T) {
	good := filepath.Join(eventDirs(t)[0], "event.json")
	tmp := t.TempDir()
	write := func(name, content string) string { return writeFile(t, tmp, name, content) }
	missing := filepath.Join(tmp, "no-such-event.json")
	truncated := write("truncated.json", `{"eventVersion": "1.11", "eventID": "0f1e2d3c-4b5a-4697-8877-665544332211", "eventSource": `)
	garbage := write("garbage.json", "eventID,eventName\n1,Decrypt\n")
	notTrail := write("not-cloudtrail.json", `{"eventSource": "kms.amazonaws.com", "eventName": 5}`)

	tests := []struct {
		name  string
		bad   string   // the input that must be named
		wants []string // what the one message must say besides the file name
	}{
		{"missing file", missing, []string{"no such file"}},
		{"truncated JSON", truncated, []string{"JSON"}},
		{"not JSON", garbage, []string{"JSON"}},
		{"not a CloudTrail record", notTrail, []string{"not a CloudTrail record"}},
	}
	if os.Geteuid() != 0 { // root reads any file: the case only exists for other users
		locked := write("locked.json", "{}")
		if err := os.Chmod(locked, 0); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name  string
			bad   string
			wants []string
		}{"permission denied", locked, []string{"permission denied"}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "", "explain", "--json", good, tc.bad, good)
			if code == 0 {
				t.Errorf("exit 0 with a bad input")
			}
			checkOneMessage(t, errOut, tc.bad, tc.wants)
			reports, errLines := splitJSONLines(t, out)
			if reports != 2 {
				t.Errorf("%d report lines, want 2 (the good inputs before and after the bad one):\n%s", reports, out)
			}
			if len(errLines) != 1 || errLines[0].Source != tc.bad {
				t.Errorf("--json error lines %+v, want one naming %s", errLines, tc.bad)
			}
		})
	}
}

// splitJSONLines counts the report lines of --json output and returns its error lines.
func splitJSONLines(t *testing.T, out string) (reports int, errs []errorLine) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var e errorLine
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("--json line is not JSON: %v: %s", err, line)
		}
		if e.Error != "" {
			errs = append(errs, e)
		} else {
			reports++
		}
	}
	return reports, errs
}

// TestExplainRecordErrors: a record that cannot be read is reported with its file and
// index, the records after it are still explained, and the exit status is 1.
func TestExplainRecordErrors(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(eventDirs(t)[0], "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compacted bytes.Buffer
	if err := json.Compact(&compacted, event); err != nil {
		t.Fatal(err)
	}
	rec := compacted.String()
	insight := `{"eventVersion":"1.08","eventType":"AwsCloudTrailInsight","eventID":"i-1","insightDetails":{"state":"Start"}}`
	logFile := `{"Records":[` + rec + `,` + insight + `,{"eventSource":"kms.amazonaws.com","eventName":7},` + rec + `]}`
	path := writeFile(t, t.TempDir(), "log.json", logFile)
	out, errOut, code := runCLI(t, "", "explain", "--json", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	checkOneMessage(t, errOut, path+": record 3", []string{"eventName"})
	reports, errLines := splitJSONLines(t, out)
	if reports != 3 || len(errLines) != 1 || errLines[0].Record != 3 || errLines[0].Source != path {
		t.Errorf("reports %d, error lines %+v; want 3 reports (the Insights event ignored) and one error for record 3:\n%s", reports, errLines, out)
	}
}

// TestExplainDirectory: a directory is walked like scan --files: log files in, digest and
// Insights folders and other files out.
func TestExplainDirectory(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(eventDirs(t)[0], "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, p := range []string{
		"AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/a.json",
		"AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/2026/12/01/b.json",
		"AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/12/01/d.json",
		"AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/12/01/i.json",
		"AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/notes.txt",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		content := event
		if !strings.Contains(p, "/CloudTrail/") || strings.HasSuffix(p, ".txt") {
			content = []byte("not JSON at all")
		}
		if err := os.WriteFile(full, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runCLI(t, "", "explain", "--json", root)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if reports, errLines := splitJSONLines(t, out); reports != 2 || len(errLines) != 0 {
		t.Errorf("%d reports and errors %+v, want the 2 log files' reports", reports, errLines)
	}
}

// TestExplainBadWorld: a world file that cannot be used stops the run before any report,
// with one message naming the file and the problem.
func TestExplainBadWorld(t *testing.T) {
	event := filepath.Join(eventDirs(t)[0], "event.json")
	tmp := t.TempDir()
	write := func(name, content string) string { return writeFile(t, tmp, name, content) }
	tests := []struct {
		name  string
		world string
		wants []string
	}{
		{"missing", filepath.Join(tmp, "no-such-world.json"), []string{"no such file"}},
		{"not JSON", write("world-broken.json", `{"keys": {`), []string{"JSON"}},
		{"wrong type", write("world-type.json", `{"sandbox_accounts": "111122223333"}`), []string{"sandbox_accounts"}},
		{"bad policy", write("world-policy.json", `{"keys": {"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab": {"policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "kms:*", "Resource": "*"}]}}}}`), []string{"Permit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "", "explain", "--json", "--world", tc.world, event)
			if code == 0 {
				t.Errorf("exit 0 with a bad world")
			}
			if out != "" {
				t.Errorf("reports printed with a bad world:\n%s", out)
			}
			checkOneMessage(t, errOut, tc.world, tc.wants)
		})
	}
}

// TestExplainStdin: "-" reads standard input, as a file would be read.
func TestExplainStdin(t *testing.T) {
	dir := eventDirs(t)[0]
	event, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, string(event), "explain", "--json", "--world", filepath.Join(dir, "world.json"), "-")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if want := readGolden(t, filepath.Join(dir, "golden.json"), "go test ./internal/engine -run TestEvents -update"); out != want {
		t.Errorf("stdin report differs from the file's:\n got: %s\nwant: %s", out, want)
	}

	out, errOut, code = runCLI(t, "{\"eventVersion\":", "explain", "-")
	if code == 0 || out != "" {
		t.Errorf("truncated stdin: exit %d, stdout %q", code, out)
	}
	checkOneMessage(t, errOut, "stdin", []string{"JSON"})
}

func TestExplainUsage(t *testing.T) {
	_, errOut, code := runCLI(t, "", "explain")
	if code != 2 || !strings.Contains(errOut, "usage: kmsfix explain") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and the usage", code, errOut)
	}
}

// checkOneMessage wants exactly one line on stderr, naming the input and saying the problem.
func checkOneMessage(t *testing.T, errOut, name string, wants []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if errOut == "" || len(lines) != 1 {
		t.Fatalf("want one message on stderr, got %d lines: %q", len(lines), errOut)
	}
	msg := lines[0]
	if !strings.HasPrefix(msg, "kmsfix: ") || !strings.Contains(msg, name) {
		t.Errorf("message %q does not start with \"kmsfix: \" and name %s", msg, name)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not say %q", msg, w)
		}
	}
}

func runCLI(t *testing.T, in string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = runWith(env{stdin: strings.NewReader(in), stdout: &o, stderr: &e, now: time.Now}, args)
	return o.String(), e.String(), code
}

func readGolden(t *testing.T, path, how string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing: run %s", path, how)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventDirs lists events/<folder> in order, from the repository root.
func eventDirs(t *testing.T) []string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	entries, err := os.ReadDir(filepath.Join(dir, "events"))
	if err != nil {
		t.Fatalf("the bundled samples are missing: %v", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, "events", e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatal("no folders in events/")
	}
	return out
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExplainStdinStaysOpen: with a stdin that stays open, each record's report is written
// as soon as the record has arrived, before the next one is written.
func TestExplainStdinStaysOpen(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(eventDirs(t)[0], "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	if err := json.Compact(&rec, event); err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer outR.Close()
	done := make(chan int)
	go func() {
		code := runWith(env{stdin: inR, stdout: outW, stderr: io.Discard, now: time.Now}, []string{"explain", "--json", "-"})
		outW.Close()
		done <- code
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for i := range 3 {
		if _, err := inW.Write(append(rec.Bytes(), '\n')); err != nil {
			t.Fatal(err)
		}
		select {
		case line := <-lines:
			if !strings.Contains(line, `"event_id"`) {
				t.Fatalf("record %d: line %q is not a report", i+1, line)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no report for record %d while stdin stays open", i+1)
		}
	}
	inW.Close()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestExplainErrorEscaped: an error message quoting the input (here its file name, with an
// escape sequence) reaches the terminal escaped.
func TestExplainErrorEscaped(t *testing.T) {
	path := writeFile(t, t.TempDir(), "evil\x1b[2J.json", `not JSON`)
	_, errOut, code := runCLI(t, "", "explain", path)
	if code != 1 || strings.ContainsRune(errOut, 0x1b) || !strings.Contains(errOut, "not a JSON object") {
		t.Errorf("exit %d, stderr %q: want 1, the error, and no raw ESC", code, errOut)
	}
}

// TestScanFilesTrailBucket: `scan --files` over a trail bucket as `aws s3 sync` lays it out,
// with digest and Insights folders and an Insights record in a log file, exits 0 and reports
// the denial; one unreadable record makes it say incomplete and exit 1, the denial after it
// still counted.
func TestScanFilesTrailBucket(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(eventDirs(t)[0], "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env struct{ Detail json.RawMessage }
	if err := json.Unmarshal(event, &env); err != nil || env.Detail == nil {
		t.Fatalf("sample 01 is not an EventBridge event: %v", err)
	}
	var rec bytes.Buffer
	if err := json.Compact(&rec, env.Detail); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	put := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	insight := `{"eventVersion":"1.08","eventType":"AwsCloudTrailInsight","eventID":"i-1","eventCategory":"Insight"}`
	put("AWSLogs/o-exampleorgid/210987654321/CloudTrail/eu-west-1/2025/06/03/a.json", `{"Records":[`+insight+`,`+rec.String()+`]}`)
	put("AWSLogs/o-exampleorgid/210987654321/CloudTrail-Digest/eu-west-1/2025/06/03/d.json.gz", "not gzip")
	put("AWSLogs/o-exampleorgid/210987654321/CloudTrail-Insight/eu-west-1/2025/06/03/i.json", "{")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--files", root, "--json", "--quiet"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("clean bucket: exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"identity-policy-missing"`) {
		t.Errorf("the denial is not reported:\n%s", stdout.String())
	}

	second := strings.Replace(rec.String(), `"eventID":"`, `"eventID":"x`, 1)
	put("AWSLogs/o-exampleorgid/210987654321/CloudTrail/eu-west-1/2025/06/03/b.json", `{"Records":[{"eventSource":"kms.amazonaws.com","eventName":7},`+second+`]}`)
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"scan", "--files", root, "--json", "--quiet"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "incomplete") || !strings.Contains(stderr.String(), "b.json: record 1:") {
		t.Errorf("bad record: exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"count":2`) {
		t.Errorf("the denial after the bad record is not counted:\n%s", stdout.String())
	}
}
