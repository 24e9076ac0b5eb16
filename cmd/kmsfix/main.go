// Command kmsfix runs the remediator's pipeline from a terminal: explain a file of CloudTrail
// records, scan CloudTrail history, check an account's setup.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kmsfix/kmsfix/internal/scan"
)

// env is what a command reads from its surroundings: the process's in main, a test's own in
// tests (runWith), so no test swaps a package variable.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time // the clock of time flags (scan --since) and of why's CloudTrail window
	clock          scan.Clock       // paces LookupEvents
}

// command is one subcommand: its name, the line `kmsfix help` prints, and its run function
// (each in its own file, with its options struct where it has flags).
type command struct {
	name, summary string
	run           func(e env, args []string) int
}

// commands is the CLI, in the order help lists them (alphabetical).
func commands() []command {
	return []command{
		{"applied", "list the automatic changes still in place (or pending) in the audit table",
			func(e env, args []string) int { return runApplied(args, e.stdout, e.stderr) }},
		{"check", "preflight: will a principal be able to get/put a bucket's objects, KMS included? (exit 0 allowed, 1 denied with the fix, 2 undecided, 3 error)",
			func(e env, args []string) int { return runCheck(args, e.stdout, e.stderr) }},
		{"doctor", "check that KMS denials can reach the remediator and its alerts can go out; --hub/--spoke: an organization deployment (exit 1 on a failure)",
			func(e env, args []string) int { return runDoctor(args, e.stdout, e.stderr) }},
		{"explain", "explain KMS denials in CloudTrail files (or - for stdin) and propose the fix",
			func(e env, args []string) int { return runExplain(e, args) }},
		{"revert", "revert an automatic change now: kmsfix revert ID [--table T] [--region R]",
			func(e env, args []string) int { return runRevert(args, e.stdout, e.stderr) }},
		{"scan", "find the S3 KMS denials in CloudTrail history (LookupEvents, or log files with --files)",
			func(e env, args []string) int { return runScan(e, args) }},
		{"why", "why can't I read (or write) s3://BUCKET/KEY? from the object, not a CloudTrail record (exit 0 allowed, 1 diagnosis, 2 undecided, 3 error)",
			func(e env, args []string) int { return runWhy(e, args) }},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the CLI with the process's stdin, clock and pacing.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(env{stdin: os.Stdin, stdout: stdout, stderr: stderr, now: time.Now, clock: scan.RealClock{}}, args)
}

func runWith(e env, args []string) int {
	stderr := e.stderr
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "kmsfix: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kmsfix <command> [flags]")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}
