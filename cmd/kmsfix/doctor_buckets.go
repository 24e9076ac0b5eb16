package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/drift"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/s3read"
)

// wantsBuckets says `doctor` was asked for the bucket checks instead of the pipeline's.
func wantsBuckets(args []string) bool {
	return slices.Contains(args, "--buckets") || slices.Contains(args, "-buckets")
}

// doctorBucketsOptions are the flags of `kmsfix doctor --buckets`.
type doctorBucketsOptions struct {
	aws   awsFlags
	names listFlag
}

// runDoctorBuckets finds default-encryption drift: exit 0 none, 1 drift (with the fix), 2 a
// bucket could not be checked, 3 usage or AWS error.
func runDoctorBuckets(args []string, stdout, stderr io.Writer) int {
	var o doctorBucketsOptions
	fs := o.aws.flagSet("doctor --buckets", stderr)
	fs.Bool("buckets", false, "check the buckets' default encryption keys")
	fs.Var(&o.names, "bucket", "check only this `BUCKET` (repeatable; default: every bucket of the account in the Region)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix doctor --buckets [--bucket B]... [--profile P] [--region R] [--output text|json]")
		fmt.Fprintln(stderr, "exit: 0 no drift, 1 drift found (each with its fix), 2 a bucket could not be checked, 3 usage or AWS error")
		fs.PrintDefaults()
	}
	fail := failer(stderr, "kmsfix doctor --buckets", exitError)
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	for _, n := range o.names {
		if !s3read.ValidBucketName(n) {
			return fail("%q is not a valid S3 bucket name", n)
		}
	}
	format, err := o.aws.format()
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := commandContext(5 * time.Minute)
	defer cancel()
	cfg, err := o.aws.config(ctx)
	if err != nil {
		return fail("%v", err)
	}
	account, err := callerAccount(ctx, cfg)
	if err != nil {
		return fail("%v", err)
	}
	done := newSlowStep(stderr).start("reading the buckets' default encryption")
	findings, err := drift.Check(ctx, s3Client(cfg), kms.NewFromConfig(cfg), cfg.Region, account, o.names)
	done()
	if err != nil {
		return fail("%v (name buckets with --bucket to check them without listing)", err)
	}
	code := exitAllowed
	for _, f := range findings {
		switch {
		case f.Problem == drift.Unreadable && code == exitAllowed:
			code = exitUndecided
		case f.Problem != "" && f.Problem != drift.Unreadable:
			code = exitDiagnosis
		}
	}
	if format == "json" {
		if err := printJSON(stdout, struct {
			Region   string          `json:"region"`
			Buckets  []drift.Finding `json:"buckets"`
			ExitCode int             `json:"exit_code"`
		}{cfg.Region, findings, code}); err != nil {
			return fail("%v", err)
		}
		return code
	}
	writeDrift(stdout, cfg.Region, findings, code)
	return code
}

// writeDrift prints one line per bucket, the fix under each drifted one, and a summary.
func writeDrift(w io.Writer, region string, fs []drift.Finding, code int) {
	fmt.Fprintf(w, "kmsfix doctor --buckets: Region %s\n", region)
	var drifted, unchecked int
	for _, f := range fs {
		key := f.KeyARN
		if key == "" {
			key = f.Key
		}
		enc := objectLine(f.SSE, key, f.BucketKey, "")
		switch f.Problem {
		case "":
			fmt.Fprintf(w, "ok         %s  %s\n", f.Bucket, enc)
		case drift.Unreadable:
			unchecked++
			line := fmt.Sprintf("UNCHECKED  %s  %s", f.Bucket, quote.Text(f.Detail))
			if f.Needs != "" {
				line += " (needs " + f.Needs + ")"
			}
			fmt.Fprintln(w, line)
		default:
			drifted++
			fmt.Fprintf(w, "DRIFT      %s  %s (%s): %s\n", f.Bucket, f.Problem, drift.Severity(f.Problem), quote.Text(f.Detail))
			for _, c := range f.Fix {
				if len(c) > 0 && c[0] == '#' {
					fmt.Fprintf(w, "             %s\n", c)
					continue
				}
				fmt.Fprintf(w, "             $ %s\n", c)
			}
		}
	}
	fmt.Fprintf(w, "%d buckets: %d with drift, %d not checked (exit %d)\n", len(fs), drifted, unchecked, code)
}
