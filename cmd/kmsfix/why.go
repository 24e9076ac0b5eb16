package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/s3read"
	"github.com/kmsfix/kmsfix/internal/why"
)

// Exit codes of why and check (docs/why-check.md).
const (
	exitAllowed   = 0
	exitDiagnosis = 1
	exitUndecided = 2
	exitError     = 3
)

// whyOptions are the flags of `kmsfix why`.
type whyOptions struct {
	aws       awsFlags
	as        string
	action    string
	to        string
	versionID string
	since     time.Duration
}

func runWhy(e env, args []string) int {
	stdout, stderr := e.stdout, e.stderr
	var o whyOptions
	fs := o.aws.flagSet("why", stderr)
	fs.StringVar(&o.as, "as", "", "diagnose this principal (IAM role or user ARN, or STS session ARN) instead of the caller")
	fs.StringVar(&o.action, "action", "get", "the S3 request: get (download), put (upload with the bucket's default key) or copy (needs --to)")
	fs.StringVar(&o.to, "to", "", "destination s3://BUCKET/KEY of a copy")
	fs.StringVar(&o.versionID, "version-id", "", "object version")
	fs.DurationVar(&o.since, "since", 15*time.Minute, "how far back CloudTrail is searched for KMS's own message")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix why s3://BUCKET/KEY [--as ARN] [--action get|put|copy] [--to s3://DEST/KEY] [--version-id V] [--profile P] [--region R] [--output text|json]")
		fmt.Fprintln(stderr, "exit: 0 allowed now (or KMS not involved), 1 a diagnosis, 2 could not decide, 3 usage or AWS error")
		fs.PrintDefaults()
	}
	fail := failer(stderr, "kmsfix why", exitError)
	// The address may come before or after the flags, as with the AWS CLI.
	var addr string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		addr, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if addr == "" && fs.NArg() > 0 {
		addr = fs.Arg(0)
		fs.Parse(fs.Args()[1:])
	}
	if addr == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError
	}
	format, err := o.aws.format()
	if err != nil {
		return fail("%v", err)
	}
	req := why.Request{Action: o.action, VersionID: o.versionID, As: o.as, Lookback: o.since}
	if req.Bucket, req.Key, err = s3read.ParseURL(addr, false); err != nil {
		return fail("%v", err)
	}
	switch {
	case o.action == why.ActionCopy && o.to == "":
		return fail("--action copy needs --to s3://DEST/KEY")
	case o.action != why.ActionCopy && o.to != "":
		return fail("--to goes with --action copy")
	case o.to != "":
		if req.DestBucket, req.DestKey, err = s3read.ParseURL(o.to, false); err != nil {
			return fail("--to: %v", err)
		}
	}

	ctx, cancel := commandContext(2 * time.Minute)
	defer cancel()
	cfg, err := o.aws.config(ctx)
	if err != nil {
		return fail("%v", err)
	}
	req.Region = cfg.Region
	clients := why.Clients{
		S3: s3Client(cfg), KMS: kms.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg),
		STS: sts.NewFromConfig(cfg), CloudTrail: awsct.NewFromConfig(cfg),
		Live: livePipeline(cfg),
	}
	done := newSlowStep(stderr).start("reading S3, KMS, IAM and CloudTrail")
	res, err := why.Why(ctx, clients, req, e.now().UTC()) // the env's clock: a test's own
	done()
	if err != nil { // a *why.FatalError or any other: no answer
		return fail("%v", err)
	}
	if format == "json" {
		if err := printJSON(stdout, whyJSON{Result: res, Exit: res.Verdict.ExitCode()}); err != nil {
			return fail("%v", err)
		}
	} else {
		writeWhy(stdout, res)
	}
	return res.Verdict.ExitCode()
}

// whyJSON is the --output json document: the result and the exit code it gives.
type whyJSON struct {
	*why.Result
	Exit int `json:"exit_code"`
}

// writeWhy prints the result for people: who, each step's facts and evidence, the finding in
// `explain`'s own layout, what could not be read, and the verdict.
func writeWhy(w io.Writer, res *why.Result) {
	t := quote.Text // every value below came from AWS or a flag: untrusted terminal text
	fmt.Fprintf(w, "principal     %s (from %s)\n", t(res.Principal), res.Source)
	blank := false // writeHuman ends with an empty line
	for _, s := range res.Steps {
		if !blank {
			fmt.Fprintln(w)
		}
		blank = false
		fmt.Fprintf(w, "%s: %s\n", t(s.What), s.Verdict)
		if o := s.Object; o != nil {
			fmt.Fprintf(w, "  object      %s\n", t(objectLine(o.SSE, o.KMSKeyID, o.BucketKey, o.VersionID)))
		}
		if d := s.Default; d != nil {
			key := d.KMSKeyID
			if key == "" && s3read.UsesKMS(d.SSE) {
				key = "aws/s3 (the AWS managed key)"
			}
			fmt.Fprintf(w, "  default     %s\n", t(objectLine(d.SSE, key, d.BucketKey, "")))
		}
		if k := s.Key; k != nil && s.KeyARN != "" {
			fmt.Fprintf(w, "  key         %s\n", t(keyLine(s.KeyARN, k)))
		}
		for _, e := range s.Evidence {
			fmt.Fprintf(w, "  evidence    %s\n", t(e))
		}
		if s.Note != "" {
			fmt.Fprintf(w, "  result      %s\n", t(s.Note))
		}
		if s.Report != nil {
			r := *s.Report
			if r.EventID == "" {
				r.EventID = "none (reconstructed by kmsfix why)"
			}
			fmt.Fprintln(w)
			writeHuman(w, r)
			blank = true
		}
	}
	if !blank {
		fmt.Fprintln(w)
	}
	if len(res.Refused) > 0 {
		fmt.Fprintln(w, "could not read (the permission named would let kmsfix see more):")
		for _, r := range res.Refused {
			fmt.Fprintf(w, "  - %s\n", t(r))
		}
	}
	if len(res.NotSeen) > 0 {
		fmt.Fprintf(w, "not seen (could still deny): %s\n", strings.Join(res.NotSeen, ", "))
	}
	fmt.Fprintf(w, "verdict: %s (exit %d)\n", res.Verdict, res.Verdict.ExitCode())
}

func objectLine(sse, key string, bucketKey bool, version string) string {
	var b strings.Builder
	switch sse {
	case s3read.SSEKMS:
		b.WriteString("SSE-KMS")
	case s3read.SSEKMSDSSE:
		b.WriteString("DSSE-KMS")
	case s3read.SSES3:
		b.WriteString("SSE-S3")
	case "":
		b.WriteString("no encryption reported")
	default:
		b.WriteString(sse)
	}
	if key != "" {
		b.WriteString(", key " + key)
	}
	if s3read.UsesKMS(sse) {
		if bucketKey {
			b.WriteString(", S3 Bucket Key on (KMS sees the bucket ARN as context)")
		} else {
			b.WriteString(", S3 Bucket Key off")
		}
	}
	if version != "" {
		b.WriteString(", version " + version)
	}
	return b.String()
}

func keyLine(arn string, k *why.KeyFacts) string {
	if k.Missing {
		return arn + ": does not exist"
	}
	parts := []string{orDash(k.State)}
	switch k.Manager {
	case "AWS":
		parts = append(parts, "AWS managed")
	case "CUSTOMER":
		parts = append(parts, "customer managed")
	}
	if k.Region != "" {
		parts = append(parts, k.Region)
	}
	if k.MultiRegion {
		parts = append(parts, "multi-Region")
	}
	if len(k.Aliases) > 0 {
		parts = append(parts, strings.Join(k.Aliases, " "))
	}
	if k.State == "" && k.Manager == "" {
		parts[0] = "state unknown (kms:DescribeKey not readable)"
	}
	return strings.Join(parts, ", ")
}
