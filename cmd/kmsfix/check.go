package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/s3read"
	"github.com/kmsfix/kmsfix/internal/why"
	"github.com/kmsfix/kmsfix/internal/world"
)

// checkOptions are the flags of `kmsfix check`.
type checkOptions struct {
	aws       awsFlags
	principal string
	bucket    string
	prefix    string
	actions   string
	key       string
	bucketKey string
	world     string
	assume    string
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	var o checkOptions
	fs := o.aws.flagSet("check", stderr)
	fs.StringVar(&o.principal, "principal", "", "the IAM role or user ARN (with its path) that will use the bucket")
	fs.StringVar(&o.bucket, "bucket", "", "the bucket")
	fs.StringVar(&o.prefix, "prefix", "", "the key prefix the principal works under")
	fs.StringVar(&o.actions, "action", "get,put", "comma-separated S3 actions: get, put (put includes multipart uploads)")
	fs.StringVar(&o.key, "key", "", "the bucket's default KMS key ARN (required with --world; live: read from GetBucketEncryption)")
	fs.StringVar(&o.bucketKey, "bucket-key", "auto", "S3 Bucket Keys: true, false, or auto (live: the bucket's setting; offline: both contexts)")
	fs.StringVar(&o.world, "world", "", "world file: evaluate offline with what it holds (no AWS calls; for CI)")
	fs.StringVar(&o.assume, "assume", "", "comma-separated layers kmsfix cannot read that you have checked allow the requests: scp, rcp, session, vpc-endpoint, or all")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix check --principal ARN --bucket B [--prefix P] [--action get,put] [--key ARN] [--world FILE] [--assume LAYERS] [--output text|json] [--profile P] [--region R]")
		fmt.Fprintln(stderr, "exit: 0 every request allowed, 1 one is denied (the fix is printed), 2 could not decide or a layer kmsfix cannot see could still deny, 3 usage or AWS error")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	fail := failer(stderr, "kmsfix check", exitError)
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if o.principal == "" || o.bucket == "" {
		fs.Usage()
		return exitError
	}
	if !s3read.ValidBucketName(o.bucket) {
		return fail("%q is not a valid S3 bucket name", o.bucket)
	}
	format, err := o.aws.format()
	if err != nil {
		return fail("%v", err)
	}
	req := why.CheckRequest{Principal: o.principal, Bucket: o.bucket, Prefix: o.prefix, Key: o.key, Region: o.aws.Region, Actions: splitList(o.actions)}
	if o.assume == "all" {
		req.Assume = why.UnseenLayers
	} else {
		req.Assume = splitList(o.assume)
	}
	switch o.bucketKey {
	case "auto":
	case "true", "false":
		on := o.bucketKey == "true"
		req.BucketKey = &on
	default:
		return fail("--bucket-key must be true, false or auto, not %q", o.bucketKey)
	}
	if o.key != "" && !(strings.HasPrefix(o.key, "arn:") && strings.Contains(o.key, ":key/")) {
		return fail("--key must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not %q", o.key)
	}

	ctx, cancel := commandContext(2 * time.Minute)
	defer cancel()
	var res *why.Check
	if o.world != "" {
		w, err := world.Load(o.world)
		if err != nil {
			return fail("world %v", err)
		}
		if req.Region == "" && o.key != "" {
			req.Region = strings.Split(o.key, ":")[3]
		}
		res, err = why.RunCheck(ctx, nil, req, w)
		if err != nil {
			return fail("%v", err)
		}
	} else {
		cfg, err := o.aws.config(ctx)
		if err != nil {
			return fail("%v", err)
		}
		req.Region = cfg.Region
		c := &why.Clients{S3: s3Client(cfg), KMS: kms.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg), Live: livePipeline(cfg)}
		done := newSlowStep(stderr).start("reading S3, KMS and IAM")
		res, err = why.RunCheck(ctx, c, req, nil)
		done()
		if err != nil {
			return fail("%v", err)
		}
	}
	if format == "json" {
		if err := printJSON(stdout, res); err != nil {
			return fail("%v", err)
		}
	} else {
		writeCheck(stdout, res)
	}
	return res.Exit
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// writeCheck prints one line per finding, then the fixes (each once), what was not seen and
// the verdict.
func writeCheck(w io.Writer, c *why.Check) {
	t := quote.Text // principal, prefix and AWS answers are untrusted terminal text
	fmt.Fprintf(w, "check %s on s3://%s/%s (key %s)\n", t(c.Principal), c.Bucket, t(c.Prefix), t(orDash(c.Key)))
	var fixes, proposed []string
	seen := map[string]bool{}
	for _, f := range c.Findings {
		label := map[why.Verdict]string{why.Allowed: "ALLOWED", why.Diagnosed: "DENIED", why.Undetermined: "UNDECIDED", why.NotKMS: "NO-KMS"}[f.Verdict]
		line := fmt.Sprintf("%-9s  %-13s  %-19s  %s", label, orDash(f.Action), orDash(f.KMSAction), t(orDash(f.Context)))
		switch {
		case f.Verdict == why.Diagnosed:
			state := "fix NOT verified"
			if f.Verified {
				state = "fix verified"
			}
			if f.Report != nil && len(f.Report.Patches) == 0 {
				state = "no policy fix: see advice"
			}
			line += fmt.Sprintf("  %s (%s)", f.Diagnosis, state)
		case f.Verdict != why.Allowed && f.Note != "":
			line += "  " + t(f.Note)
		}
		fmt.Fprintln(w, line)
		if f.Report == nil || f.Verdict == why.Allowed {
			continue
		}
		into := &fixes
		if f.Verdict != why.Diagnosed {
			into = &proposed
		}
		for _, p := range f.Report.Patches {
			for _, cmd := range p.Commands {
				if !seen[cmd] {
					seen[cmd] = true
					*into = append(*into, "$ "+cmd)
				}
			}
		}
		for _, a := range f.Report.Advice {
			if !seen[a] {
				seen[a] = true
				*into = append(*into, a)
			}
		}
	}
	for _, list := range []struct {
		title string
		items []string
	}{{"fix:", fixes}, {"proposed from what could be read (not verified):", proposed}} {
		if len(list.items) == 0 {
			continue
		}
		fmt.Fprintln(w, list.title)
		for _, f := range list.items {
			fmt.Fprintf(w, "  %s\n", t(f))
		}
	}
	for _, r := range c.Refused {
		fmt.Fprintf(w, "could not read: %s\n", t(r))
	}
	if len(c.NotSeen) > 0 {
		fmt.Fprintf(w, "not seen (could still deny): %s; after checking them, declare with --assume %s\n", strings.Join(c.NotSeen, ", "), strings.Join(c.NotSeen, ","))
	}
	if len(c.Assumed) > 0 {
		fmt.Fprintf(w, "assumed to allow (--assume): %s\n", strings.Join(c.Assumed, ", "))
	}
	fmt.Fprintf(w, "verdict: %s (exit %d)\n", c.Verdict, c.Exit)
}
