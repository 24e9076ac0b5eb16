package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/world"
)

// lookupHorizon is how far back LookupEvents reaches.
const lookupHorizon = 90 * 24 * time.Hour

// scanOptions are the flags of `kmsfix scan`, checked, with the window resolved.
type scanOptions struct {
	start, end time.Time // zero: open (log files without --since / --until)
	region     string
	asJSON     bool
	live       bool
	files      string // "": LookupEvents
	quiet      bool
	progress   string // auto, always, never
	rate       float64
}

// runScan parses the options, then runs the scan.
func runScan(e env, args []string) int {
	o, code := parseScanOptions(e, args)
	if code >= 0 {
		return code
	}
	return o.run(e)
}

// parseScanOptions reads and checks the flags; code is the exit code when it stops (2: a
// usage error), else -1.
func parseScanOptions(e env, args []string) (o scanOptions, code int) {
	stderr := e.stderr
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "24h", "start of the window: a duration back from now (90m, 24h, 7d), an RFC 3339 time or a date")
	until := fs.String("until", "", "end of the window, same forms (default now)")
	fs.StringVar(&o.region, "region", "", "AWS Region to scan (default: the SDK's, e.g. AWS_REGION)")
	fs.BoolVar(&o.asJSON, "json", false, "print one contract report per finding and line, with count, first_seen, last_seen")
	fs.BoolVar(&o.live, "live", false, "read keys and principals from AWS (KMS, IAM, STS) and validate patches with Access Analyzer, like the Lambda; without it the event alone decides")
	fs.StringVar(&o.files, "files", "", "scan CloudTrail log files (*.json, *.json.gz) under `DIR` instead of calling LookupEvents")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar and no summary on stderr")
	fs.StringVar(&o.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
	fs.Float64Var(&o.rate, "rate", scan.DefaultRate, "LookupEvents requests per second (the API allows 2)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix scan [--since 24h] [--until T] [--region R] [--json] [--live] [--quiet]")
		fmt.Fprintln(stderr, "       kmsfix scan --files DIR [--since T] [--until T] [--json] [--live]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmsfix scan: unexpected argument %q\n", fs.Arg(0))
		return o, 2
	}
	if o.rate <= 0 || o.rate > scan.MaxRate {
		fmt.Fprintf(stderr, "kmsfix scan: --rate must be above 0 and at most %g (LookupEvents' limit)\n", scan.MaxRate)
		return o, 2
	}
	if o.progress != "auto" && o.progress != "always" && o.progress != "never" {
		fmt.Fprintf(stderr, "kmsfix scan: --progress must be auto, always or never, not %q\n", o.progress)
		return o, 2
	}

	now := e.now().UTC()
	// Log files hold whatever was downloaded: the window applies only when asked for.
	if o.files == "" || set["since"] {
		t, err := parseWhen(*since, now)
		if err != nil {
			fmt.Fprintf(stderr, "kmsfix scan: --since: %v\n", err)
			return o, 2
		}
		o.start = t
	}
	if *until != "" {
		t, err := parseWhen(*until, now)
		if err != nil {
			fmt.Fprintf(stderr, "kmsfix scan: --until: %v\n", err)
			return o, 2
		}
		o.end = t
	} else if o.files == "" {
		o.end = now
	}
	if !o.start.IsZero() && !o.end.IsZero() && !o.start.Before(o.end) {
		fmt.Fprintf(stderr, "kmsfix scan: the window is empty: --since %s is not before --until %s\n", o.start.Format(time.RFC3339), o.end.Format(time.RFC3339))
		return o, 2
	}
	if o.files == "" && now.Sub(o.start) > lookupHorizon {
		fmt.Fprintf(stderr, "kmsfix scan: note: LookupEvents holds 90 days; for older events download the trail's log files and use --files\n")
	}
	return o, -1
}

// run reads the events, explains and groups them, and prints the result.
func (o scanOptions) run(e env) int {
	stdout, stderr := e.stdout, e.stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var cfg aws.Config
	if o.files == "" || o.live {
		var err error
		if cfg, err = loadAWSConfig(ctx, o.region, "", regionFlagHint); err != nil {
			fmt.Fprintf(stderr, "kmsfix scan: %v\n", err)
			return 1
		}
	}
	explain := func(_ context.Context, it cloudtrail.Item) finding.Report { return engine.Explain(it, &world.World{}) }
	if o.live {
		explain = scanExplainer(livePipeline(cfg))
	}

	if o.files != "" {
		tuneGC()
	}
	bar := scan.NewBar(stderr, o.quiet || o.progress == "never", o.progress == "always")
	opts := scan.Options{Explain: explain, Progress: bar.Update}
	var res *scan.Result
	var err error
	if o.files != "" {
		res, err = scan.FromFiles(ctx, o.files, o.start, o.end, opts)
	} else {
		client := awsct.NewFromConfig(cfg)
		res, err = scan.FromLookup(ctx, scan.NewLookup(client, e.clock, o.rate), o.start, o.end, opts)
	}
	bar.Clear()

	if o.asJSON {
		if werr := scan.WriteJSON(stdout, res.Groups); werr != nil {
			fmt.Fprintf(stderr, "kmsfix scan: %v\n", werr)
			return 1
		}
		if !o.quiet {
			fmt.Fprintln(stderr, scan.Summary(res))
		}
	} else if werr := scan.WriteTable(stdout, res); werr != nil {
		fmt.Fprintf(stderr, "kmsfix scan: %v\n", werr)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix scan: incomplete: %s\n", quote.Block(err.Error())) // names files and quotes records
		var pe *scan.PageError
		if (errors.As(err, &pe) || errors.Is(err, context.Canceled)) && o.files == "" {
			start, reached := o.start.Format(time.RFC3339), res.Reached.UTC().Format(time.RFC3339)
			fmt.Fprintf(stderr, "kmsfix scan: the findings above cover %s to %s; events from %s to %s were not read (rerun with --since %s --until %s)\n",
				reached, o.end.Format(time.RFC3339), start, reached, start, reached)
		}
		return 1
	}
	return 0
}

// parseWhen reads a time flag: a duration back from now ("90m", "24h", "7d"), an RFC 3339
// time, "2006-01-02T15:04" (UTC) or a date (UTC midnight).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 {
			return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: give a duration back from now without a sign", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a duration (24h, 7d), an RFC 3339 time or a date", s)
}

// livePipeline is the Lambda's pipeline (enrich, explain, Access Analyzer, decide) over the
// CLI's clients; its caches live for the whole command. The CLI never applies: no sandbox.
func livePipeline(cfg aws.Config) *pipeline.Live {
	return &pipeline.Live{
		Enricher: enrich.New(kms.NewFromConfig(cfg), iam.NewFromConfig(cfg), sts.NewFromConfig(cfg),
			enrich.Options{TTL: time.Hour, CallTimeout: 3 * time.Second}),
		Checker: pipeline.NewValidator(accessanalyzer.NewFromConfig(cfg), time.Hour, 3*time.Second),
	}
}

// scanExplainer explains each denial through the live pipeline.
func scanExplainer(l *pipeline.Live) scan.Explainer {
	return func(ctx context.Context, it cloudtrail.Item) finding.Report {
		rep, _ := l.Explain(ctx, it)
		return rep
	}
}
