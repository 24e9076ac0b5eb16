package testenv

import (
	"fmt"
	"os"
)

// Harness is the part of testing.TB the emulators and fakes use, so that a command
// (`make invoke`, the storm benchmark) can start the same ones as the tests.
type Harness interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// ProcessHarness is a Harness outside a test (a TestMain, a command), for emulators that
// outlive one test: Close runs the cleanups, last first; Fatalf prints the message (after
// Prefix), runs them and exits with status 1.
type ProcessHarness struct {
	Prefix   string
	cleanups []func()
}

func (h *ProcessHarness) Helper()                      {}
func (h *ProcessHarness) Logf(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
func (h *ProcessHarness) Cleanup(f func())             { h.cleanups = append(h.cleanups, f) }

func (h *ProcessHarness) Fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, h.Prefix+format+"\n", a...)
	h.Close()
	os.Exit(1)
}

// Close runs the cleanups registered so far, last first, once each.
func (h *ProcessHarness) Close() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}
