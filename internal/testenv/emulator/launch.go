package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// emuToolsDir is .tools (KMSFIX_TOOLS, else found by walking up to go.mod).
func emuToolsDir(t testenv.Harness) string {
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
func emuTool(t testenv.Harness, rel string) string {
	t.Helper()
	p := filepath.Join(emuToolsDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make tools`", p)
	}
	return p
}

// Command is a program the launcher runs: Args and Env get the loopback ports it was given
// (Ports of them, at least one); the first port is the one it must listen on to be ready.
type Command struct {
	Name  string // in messages
	Path  string
	Args  func(ports []int) []string
	Env   func(ports []int) []string // nil: the test's environment
	Ports int
	// Limit is how long the process may live at most (it runs under `timeout`, so a test
	// binary killed without its cleanups leaves nothing behind). Default 1h.
	Limit time.Duration
}

// Process is a child the launcher started and saw listening. It and everything it started
// (its process group) are killed at cleanup.
type Process struct {
	Ports []int
	Out   *testenv.LockedBuffer // stdout and stderr
	cmd   *exec.Cmd
	done  chan struct{}
}

// Launch is the one way tests start an emulator or the Lambda emulator. It picks free
// loopback ports, starts the command in its own process group, and is ready only when a
// process of that group listens on the first port: it reads the listening socket's inode in
// /proc/net/tcp{,6} and finds it among the group's /proc/<pid>/fd, so a port taken meanwhile
// by another process is never mistaken for the child. A child that exits before listening
// (a bind failure), or does not listen within 20s while someone else holds its port, is
// killed and started again on fresh ports, three times at most.
func Launch(t testenv.Harness, c Command) *Process {
	t.Helper()
	var errs []error
	for range 3 {
		p, err := launchOnce(t, c)
		if err == nil {
			return p
		}
		errs = append(errs, err)
	}
	t.Fatalf("%s does not start: %v", c.Name, errors.Join(errs...))
	return nil
}

func launchOnce(t testenv.Harness, c Command) (*Process, error) {
	ports, err := freePorts(max(c.Ports, 1))
	if err != nil {
		return nil, err
	}
	limit := c.Limit
	if limit == 0 {
		limit = time.Hour
	}
	p := &Process{Ports: ports, Out: &testenv.LockedBuffer{Max: 4 << 20}, done: make(chan struct{})}
	p.cmd = exec.Command("timeout", append([]string{strconv.Itoa(int(limit.Seconds())), c.Path}, c.Args(ports)...)...)
	if c.Env != nil {
		p.cmd.Env = c.Env(ports)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.Out, p.Out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Path, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	started := time.Now()
	for {
		ours, others := listeners(ports[0], p.cmd.Process.Pid)
		switch {
		case ours:
			t.Cleanup(p.kill)
			return p, nil
		case others && time.Since(started) > 2*time.Second:
			// Someone else holds the port and our child has not bound it for 2s: fresh ports.
			p.kill()
			return nil, fmt.Errorf("port %d is taken by another process", ports[0])
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before listening on port %d:\n%s", c.Name, ports[0], p.Out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(started) > 20*time.Second {
			p.kill()
			return nil, fmt.Errorf("%s does not listen on port %d after 20s:\n%s", c.Name, ports[0], p.Out.String())
		}
	}
}

// kill stops the process group: SIGTERM, then SIGKILL after 3s.
func (p *Process) kill() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// The group may outlive its leader for a moment; make sure nothing of it stays.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// URL is http://127.0.0.1:<first port>.
func (p *Process) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.Ports[0]) }

// PeakRSS is the peak resident memory in KiB (VmHWM) of the largest process of the group,
// or 0 when unknown.
func (p *Process) PeakRSS() int64 {
	var peak int64
	for _, pid := range groupPIDs(p.cmd.Process.Pid) {
		peak = max(peak, procPeakRSS(pid))
	}
	return peak
}

// freePorts returns n distinct loopback ports nobody listened on when they were picked.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listeners says whether a process of group pgid listens on port, and whether any other
// process does.
func listeners(port, pgid int) (ours, others bool) {
	inodes := listeningInodes(port)
	if len(inodes) == 0 {
		return false, false
	}
	for _, pid := range groupPIDs(pgid) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.Trim(link[len("socket:"):], "[]")] {
				return true, false
			}
		}
	}
	return false, true
}

// listeningInodes reads /proc/net/tcp and tcp6 for sockets in state LISTEN (0A) on port.
func listeningInodes(port int) map[string]bool {
	out := map[string]bool{}
	suffix := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(line)
			if len(fields) > 9 && strings.HasSuffix(fields[1], suffix) && fields[3] == "0A" {
				out[fields[9]] = true
			}
		}
	}
	return out
}

// groupPIDs lists the processes whose process group is pgid.
func groupPIDs(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so read after the last ')'.
		rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(rest) > 2 && rest[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

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
