package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) (code int) {
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{}
	fs.IntVar(&cfg.Events, "events", 10000, "denial events")
	fs.IntVar(&cfg.Findings, "findings", 500, "distinct findings among them")
	fs.IntVar(&cfg.Containers, "containers", 16, "Lambda containers (handlers, each with its own notifier); as many as workers is how Lambda runs")
	fs.IntVar(&cfg.Workers, "workers", 16, "concurrent invocations")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "shuffle seed")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Findings <= 0 || cfg.Events < cfg.Findings || cfg.Containers <= 0 || cfg.Workers <= 0 {
		fmt.Fprintln(stderr, "storm: need events >= findings > 0, containers > 0, workers > 0")
		return 2
	}
	h := &harness{}
	defer h.close()
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "storm: %v\n", p)
			code = 1
		}
	}()
	res, err := run(context.Background(), h, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "storm: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		report(stdout, cfg, res)
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(stderr, "storm: FAILED:\n  %s\n", strings.Join(res.Problems[:min(len(res.Problems), 20)], "\n  "))
		return 1
	}
	return 0
}

func report(w io.Writer, cfg config, r *result) {
	fmt.Fprintf(w, "storm: %d events, %d distinct findings, %d containers, %d concurrent invocations, GOMAXPROCS %d\n",
		r.Events, r.Findings, cfg.Containers, cfg.Workers, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "  delivered:   %d Slack (%d distinct), %d SNS (%d distinct); handler errors %d\n",
		r.Slack, r.DistinctSlack, r.SNS, r.DistinctSNS, r.HandlerErrors)
	fmt.Fprintf(w, "  counts:      %d of %d findings counted every event (total = events, since = events-1)\n", r.CountOK, r.CountsChecked)
	fmt.Fprintf(w, "  throughput:  %.0f events/s (%.2f s)\n", r.EventsPerSec, r.Duration.Seconds())
	fmt.Fprintf(w, "  memory:      Go heap %.1f MiB before, peak %.1f MiB, %.1f MiB after; max RSS %.1f MiB (Go process); dynalite %.1f MiB, goaws %.1f MiB\n",
		r.HeapBeforeMiB, r.PeakHeapMiB, r.HeapAfterMiB, r.MaxRSSMiB, r.DynaliteRSSMiB, r.GoawsRSSMiB)
	fmt.Fprintf(w, "  heap peak per quarter of the events: %.1f, %.1f, %.1f, %.1f MiB\n",
		r.QuarterPeakMiB[0], r.QuarterPeakMiB[1], r.QuarterPeakMiB[2], r.QuarterPeakMiB[3])
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "  result:      OK")
	}
}

// harness lets the command start the same emulators as the tests.
type harness struct{ cleanups []func() }

func (h *harness) Helper()                           {}
func (h *harness) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (h *harness) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (h *harness) Cleanup(f func())                  { h.cleanups = append(h.cleanups, f) }
func (h *harness) close() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
}
