package apply

import (
	"context"
	"testing"
	"time"
)

// TestSweepWorksToATimeBudget: a sweep starts no revert with less than SweepReserve left
// before its invocation's deadline; what it leaves is counted as deferred, not failed, and
// the next run, with time, reverts it.
func TestSweepWorksToATimeBudget(t *testing.T) {
	e := newEnv(t, adminOnly)
	a := mustApply(t, e, keyMissingReport(e, "ev-budget"))
	e.clock.Add(25 * time.Hour) // past expiry

	short, cancel := context.WithTimeout(ctx, DefaultSweepReserve-time.Second)
	defer cancel()
	res, err := e.a.Sweep(short, e.clock.Now())
	if err != nil || res.Deferred != 1 || res.Reverted != 0 || res.Failed != 0 {
		t.Fatalf("sweep without time = %+v, %v; want the change deferred", res, err)
	}
	if _, ok := e.keyDoc().StatementBySid(a.Name); !ok {
		t.Fatal("the change was touched by a sweep that had no time for it")
	}

	long, cancel2 := context.WithTimeout(ctx, DefaultSweepReserve+30*time.Second)
	defer cancel2()
	res, err = e.a.Sweep(long, e.clock.Now())
	if err != nil || res.Reverted != 1 || res.Deferred != 0 {
		t.Fatalf("next sweep = %+v, %v; want the change reverted", res, err)
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatalf("key policy after the next run differs from before:\n%q\n%q", got, e.before)
	}
}
