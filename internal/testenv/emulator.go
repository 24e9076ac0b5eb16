package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// emuToolsDir is .tools (KMSFIX_TOOLS, else found by walking up to go.mod).
func emuToolsDir(t Harness) string {
	t.Helper()
	if dir := os.Getenv("KMSFIX_TOOLS"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".tools")
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

// emuTool returns the path of a file under .tools, failing with the fix when it is missing.
func emuTool(t Harness, rel string) string {
	t.Helper()
	p := filepath.Join(emuToolsDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make tools`", p)
	}
	return p
}

// emuFreePort returns a loopback port nobody listens on right now.
func emuFreePort(t Harness) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LockedBuffer collects what is written to it concurrently (a process's output, a logger's
// lines). With Max > 0 it keeps only about the first Max bytes: enough to diagnose, and an
// emulator in a storm does not grow it without bound.
type LockedBuffer struct {
	Max int
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.buf.Len() > b.Max {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// emuProcess is a started emulator, killed (with its process group) at cleanup.
type emuProcess struct {
	cmd *exec.Cmd
	out *LockedBuffer
}

// emuStart runs an emulator on a free port and waits until it accepts connections. args
// builds the command line for a port; a port taken meanwhile by someone else (the free port
// is only free when it is picked) makes it try again with another.
func emuStart(t Harness, name string, args func(port int) []string) (*emuProcess, int) {
	t.Helper()
	var last error
	for range 3 {
		port := emuFreePort(t)
		p, err := emuTryStart(t, port, name, args(port))
		if err == nil {
			return p, port
		}
		last = err
	}
	t.Fatalf("%v", last)
	return nil, 0
}

func emuTryStart(t Harness, port int, name string, args []string) (*emuProcess, error) {
	p := &emuProcess{cmd: exec.Command(name, args...), out: &LockedBuffer{Max: 1 << 20}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	kill := func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			t.Cleanup(kill)
			return p, nil
		}
		select {
		case <-done:
			return nil, fmt.Errorf("%s exited before listening on %s:\n%s", filepath.Base(name), addr, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			kill()
			return nil, fmt.Errorf("%s does not listen on %s after 20s:\n%s", filepath.Base(name), addr, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the emulator's process id (to read its memory use).
func (p *emuProcess) Pid() int { return p.cmd.Process.Pid }

// PeakRSS is the emulator's peak resident memory in KiB (VmHWM), or 0 when unknown.
func (p *emuProcess) PeakRSS() int64 { return procPeakRSS(p.cmd.Process.Pid) }

func procPeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			_, _ = fmt.Sscanf(string(bytes.TrimPrefix(line, []byte("VmHWM:"))), "%d", &kb)
		}
	}
	return kb
}
