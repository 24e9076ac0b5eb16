package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Harness is the part of testing.TB the Lambda emulator helpers use, so that a command
// (`make invoke`) can start the same emulators as the tests.
type Harness interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// LambdaTool returns the path of a pinned tool under .tools/bin, failing with the fix when it
// is missing.
func LambdaTool(t Harness, name string) string {
	t.Helper()
	return emuTool(t, filepath.Join("bin", name))
}

// lambdaFreeAddr returns a loopback address with a port nobody listens on right now.
func lambdaFreeAddr(t Harness) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", emuFreePort(t))
}

// lambdaWaitTCP waits until something accepts connections on addr.
func lambdaWaitTCP(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lambdaStart runs a tool in its own process group under `timeout`, and stops the whole group
// at cleanup.
func lambdaStart(t Harness, limit time.Duration, env []string, out io.Writer, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("timeout", append([]string{fmt.Sprintf("%.0f", limit.Seconds()), name}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd
}

// RIE is one aws-lambda-rie process running a bootstrap.
type RIE struct {
	URL     string // the invoke endpoint
	Started time.Time
	out     *LockedBuffer
}

// StartRIE runs bootstrap under the Lambda Runtime Interface Emulator with env (plus PATH)
// as the function's environment. The emulator and the function are stopped at cleanup.
func StartRIE(t Harness, bootstrap string, env []string) *RIE {
	t.Helper()
	rie := LambdaTool(t, "aws-lambda-rie")
	api, rapid := lambdaFreeAddr(t), lambdaFreeAddr(t)
	out := &LockedBuffer{}
	env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	started := time.Now()
	// Both addresses must be given: the defaults listen on every interface.
	lambdaStart(t, 5*time.Minute, env, out, rie,
		"--runtime-interface-emulator-address", api, "--runtime-api-address", rapid, bootstrap)
	if err := lambdaWaitTCP(api, 10*time.Second); err != nil {
		t.Fatalf("aws-lambda-rie: %v\n%s", err, out.String())
	}
	return &RIE{URL: "http://" + api + "/2015-03-31/functions/function/invocations", Started: started, out: out}
}

// Invocation is the emulator's answer to one invoke.
type Invocation struct {
	Body     []byte
	Error    bool // the function returned an error (or panicked)
	Duration time.Duration
}

// Invoke sends one event and waits for the function's answer.
func (r *RIE) Invoke(ctx context.Context, payload []byte) (Invocation, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(payload))
	if err != nil {
		return Invocation{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Invocation{}, fmt.Errorf("invoke: %w\n%s", err, r.Logs())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Invocation{}, err
	}
	inv := Invocation{Body: body, Duration: time.Since(start)}
	if resp.StatusCode != http.StatusOK {
		return inv, fmt.Errorf("invoke: HTTP %d: %s", resp.StatusCode, body)
	}
	// The emulator marks function errors with this header; older builds only with the body.
	inv.Error = resp.Header.Get("X-Amz-Function-Error") != "" || bytes.HasPrefix(bytes.TrimSpace(body), []byte(`{"errorMessage"`))
	return inv, nil
}

// Logs is everything the emulator and the function wrote so far.
func (r *RIE) Logs() string { return r.out.String() }

// LogLines returns the lines of the function's output that contain all of the given strings.
func (r *RIE) LogLines(contains ...string) []string {
	var out []string
	for line := range strings.SplitSeq(r.Logs(), "\n") {
		ok := true
		for _, c := range contains {
			ok = ok && strings.Contains(line, c)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}
