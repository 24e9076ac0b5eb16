package emulator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// Tool returns the path of a pinned tool under .tools/bin, failing with the fix when it
// is missing.
func Tool(t testenv.Harness, name string) string {
	t.Helper()
	return emuTool(t, filepath.Join("bin", name))
}

// RIE is one aws-lambda-rie process running a bootstrap.
type RIE struct {
	URL     string // the invoke endpoint
	Started time.Time
	out     *testenv.LockedBuffer
}

// StartRIE runs bootstrap under the Lambda Runtime Interface Emulator with env (plus PATH)
// as the function's environment. The emulator and the function are stopped at cleanup.
func StartRIE(t testenv.Harness, bootstrap string, env []string) *RIE {
	t.Helper()
	started := time.Now()
	p := Launch(t, Command{
		Name: "aws-lambda-rie", Path: Tool(t, "aws-lambda-rie"), Ports: 2,
		// Both addresses must be given: the defaults listen on every interface.
		Args: func(ports []int) []string {
			return []string{"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
				"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", ports[1]), bootstrap}
		},
		Env: func([]int) []string { return append([]string{"PATH=" + os.Getenv("PATH")}, env...) },
	})
	return &RIE{URL: p.URL() + "/2015-03-31/functions/function/invocations", Started: started, out: p.Out}
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
func (r *RIE) LogLines(contains ...string) []string { return r.out.Lines(contains...) }

// WaitFor waits until at least n lines of the output contain all of want (see
// testenv.LockedBuffer.WaitFor): the emulator relays the function's output on its own pipe, so the
// answer to an invocation can arrive before the lines the function wrote while serving it.
func (r *RIE) WaitFor(limit time.Duration, n int, want ...string) ([]string, error) {
	return r.out.WaitFor(limit, n, want...)
}
