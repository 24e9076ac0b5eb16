package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hub" {
		return hubCLI(args[1:], stdout, stderr)
	}
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
	return runStorm("storm", stdout, stderr, *asJSON,
		func(h *harness) (*result, error) { return run(context.Background(), h, cfg) },
		func(r *result) []string { return r.Problems },
		func(w io.Writer, r *result) { report(w, cfg, r) })
}

// runStorm runs one storm against fresh emulators, prints its result (JSON or the report) and
// its problems, and returns the exit status: 1 when it could not run or found a problem.
func runStorm[R any](name string, stdout, stderr io.Writer, asJSON bool, run func(*harness) (R, error),
	problems func(R) []string, report func(io.Writer, R)) (code int) {
	h := newHarness()
	defer h.close()
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, p)
			code = 1
		}
	}()
	res, err := run(h)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		report(stdout, res)
	}
	if p := problems(res); len(p) > 0 {
		fmt.Fprintf(stderr, "%s: FAILED:\n  %s\n", name, strings.Join(p[:min(len(p), 20)], "\n  "))
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

// harness lets the command start the same emulators as the tests. An interrupt (Ctrl-C,
// kill) runs the cleanups too, so no emulator outlives the command.
type harness struct {
	mu       sync.Mutex
	cleanups []func()
	once     sync.Once
}

func newHarness() *harness {
	h := new(harness)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "storm: %v: stopping the emulators\n", s)
		h.close()
		os.Exit(130)
	}()
	return h
}

func (h *harness) Helper()                           {}
func (h *harness) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (h *harness) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (h *harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}
func (h *harness) close() {
	h.once.Do(func() {
		h.mu.Lock()
		cs := h.cleanups
		h.mu.Unlock()
		for i := len(cs) - 1; i >= 0; i-- {
			cs[i]()
		}
	})
}

// hubCLI is `storm hub`: the organization storm through the hub handler (hub.go).
func hubCLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storm hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := hubConfig{}
	fs.IntVar(&cfg.Events, "events", 100000, "denial events")
	fs.IntVar(&cfg.Findings, "findings", 5000, "distinct findings among them (at least one per account)")
	fs.IntVar(&cfg.Accounts, "accounts", 1000, "member accounts")
	fs.IntVar(&cfg.Regions, "regions", 3, "Regions (1 to 3), one local-kms each")
	fs.IntVar(&cfg.Routed, "routed", 16, "accounts with a KMSFIX_ROUTES account route (each takes about 150 bytes of Lambda's 4 KB environment)")
	fs.IntVar(&cfg.OURouted, "ou-routed", 200, "the next accounts, in team OUs routed by KMSFIX_ROUTES OU entries (one per channel); the others use the default channel")
	fs.IntVar(&cfg.Channels, "channels", 4, "team channels (a Slack webhook and an SNS topic each) the routed accounts share")
	fs.IntVar(&cfg.Containers, "containers", 5, "Lambda containers (the hub's reserved concurrency, 5 by default)")
	fs.IntVar(&cfg.Workers, "workers", 5, "concurrent invocations")
	fs.DurationVar(&cfg.Lifetime, "lifetime", 0, "usable lifetime of the reader roles' credentials (0: the STS default hour, usable 55m); short makes the hub renew")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "shuffle seed")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the storm (the Go process) to this file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Progress = stderr
	if cfg.Accounts <= 0 || cfg.Findings < cfg.Accounts || cfg.Events < cfg.Findings || cfg.Regions < 1 || cfg.Regions > len(hubRegions) ||
		cfg.Containers <= 0 || cfg.Workers <= 0 || cfg.Routed < 0 || cfg.OURouted < 0 || cfg.Channels < 0 || (cfg.Routed+cfg.OURouted > 0 && cfg.Channels == 0) || cfg.Lifetime < 0 {
		fmt.Fprintln(stderr, "storm hub: need events >= findings >= accounts > 0, 1 to 3 regions, containers and workers > 0, channels > 0 when routed > 0")
		return 2
	}
	return runStorm("storm hub", stdout, stderr, *asJSON,
		func(h *harness) (*hubResult, error) { return runHub(context.Background(), h, cfg) },
		func(r *hubResult) []string { return r.Problems },
		func(w io.Writer, r *hubResult) { reportHub(w, cfg, r) })
}

func reportHub(w io.Writer, cfg hubConfig, r *hubResult) {
	fmt.Fprintf(w, "storm hub: %d events, %d findings, %d accounts in %d Regions; %d containers, %d concurrent invocations, GOMAXPROCS %d\n",
		r.Events, r.Findings, r.Accounts, cfg.Regions, cfg.Containers, cfg.Workers, runtime.GOMAXPROCS(0))
	chans := slices.Sorted(maps.Keys(r.Want))
	fmt.Fprintf(w, "  delivered:   ")
	for i, ch := range chans {
		if i > 0 {
			fmt.Fprint(w, "; ")
		}
		fmt.Fprintf(w, "%s %d Slack/%d SNS (want %d)", ch, r.Slack[ch], r.SNS[ch], r.Want[ch])
	}
	fmt.Fprintf(w, "\n  counts:      %d of %d findings counted every event; events wrong or unverified %d, unverified only by a call's timeout %d\n", r.CountOK, r.Findings, r.HandlerErrors, r.TimedOut)
	fmt.Fprintf(w, "  credentials: %d AssumeRole (%d accounts x %d containers; at most %d per account and container, bound %d; %d pairs renewed); %d KMS and %d IAM calls, each signed by its own account\n",
		r.AssumeTotal, r.Accounts, cfg.Containers, r.MaxAssumePerContainer, r.AssumeBound, r.Renewed, r.KMSCalls, r.IAMCalls)
	fmt.Fprintf(w, "  throughput:  %.0f events/s (%.1f s); %.0f events per CPU second of all processes, %.0f per CPU second of the Go process\n",
		r.EventsPerSec, r.Duration.Seconds(), r.EventsPerCPUSec, r.EventsPerGoCPUSec)
	fmt.Fprintf(w, "  CPU seconds: ")
	for i, name := range slices.Sorted(maps.Keys(r.CPU)) {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s %.1f", name, r.CPU[name])
	}
	fmt.Fprintf(w, "; load average %s before, %s after\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "  live heap before the storm %.1f MiB, at each tenth (MiB): %s\n  second half above the half-way mark: %s\n", r.HeapBeforeMiB, tenths(r.LiveHeapMiB), r.MemoryCheck)
	fmt.Fprintf(w, "  RSS at each tenth (MiB):       %s; heap in use peak %.1f MiB; dynalite peak RSS %.1f MiB, goaws %.1f MiB\n",
		tenths(r.RSSMiB), r.PeakHeapMiB, r.EmulatorPeakRSSMiB["dynalite"], r.EmulatorPeakRSSMiB["goaws"])
	fmt.Fprintf(w, "  routes:      %d accounts by account, %d by OU; KMSFIX_ROUTES %d bytes, kmsfix environment %d bytes (Lambda: 4 KB); %d Organizations calls\n",
		min(cfg.Routed, cfg.Accounts), min(cfg.OURouted, max(cfg.Accounts-cfg.Routed, 0)), r.RoutesEnvBytes, r.EnvBytes, r.OrgCalls)
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "  result:      OK")
	}
}

func tenths(v [10]float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, " ")
}
