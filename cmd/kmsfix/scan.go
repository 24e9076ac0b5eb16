package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
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

func init() {
	commands["scan"] = command{
		summary: "find the S3 KMS denials in CloudTrail history (LookupEvents, or log files with --files)",
		run:     runScan,
	}
}

// lookupHorizon is how far back LookupEvents reaches.
const lookupHorizon = 90 * 24 * time.Hour

// scanNow is the clock of the window flags and scanClock paces LookupEvents; tests replace
// them.
var (
	scanNow              = time.Now
	scanClock scan.Clock = scan.RealClock{}
)

func runScan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.String("since", "24h", "start of the window: a duration back from now (90m, 24h, 7d), an RFC 3339 time or a date")
	until := fs.String("until", "", "end of the window, same forms (default now)")
	region := fs.String("region", "", "AWS Region to scan (default: the SDK's, e.g. AWS_REGION)")
	asJSON := fs.Bool("json", false, "print one contract report per finding and line, with count, first_seen, last_seen")
	live := fs.Bool("live", false, "read keys and principals from AWS (KMS, IAM, STS) and validate patches with Access Analyzer, like the Lambda; without it the event alone decides")
	files := fs.String("files", "", "scan CloudTrail log files (*.json, *.json.gz) under `DIR` instead of calling LookupEvents")
	quiet := fs.Bool("quiet", false, "no progress bar and no summary on stderr")
	progress := fs.String("progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
	rate := fs.Float64("rate", scan.DefaultRate, "LookupEvents requests per second (the API allows 2)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix scan [--since 24h] [--until T] [--region R] [--json] [--live] [--quiet]")
		fmt.Fprintln(stderr, "       kmsfix scan --files DIR [--since T] [--until T] [--json] [--live]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmsfix scan: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *rate <= 0 || *rate > scan.MaxRate {
		fmt.Fprintf(stderr, "kmsfix scan: --rate must be above 0 and at most %g (LookupEvents' limit)\n", scan.MaxRate)
		return 2
	}
	if *progress != "auto" && *progress != "always" && *progress != "never" {
		fmt.Fprintf(stderr, "kmsfix scan: --progress must be auto, always or never, not %q\n", *progress)
		return 2
	}

	now := scanNow().UTC()
	var start, end time.Time
	// Log files hold whatever was downloaded: the window applies only when asked for.
	if *files == "" || set["since"] {
		t, err := parseWhen(*since, now)
		if err != nil {
			fmt.Fprintf(stderr, "kmsfix scan: --since: %v\n", err)
			return 2
		}
		start = t
	}
	if *until != "" {
		t, err := parseWhen(*until, now)
		if err != nil {
			fmt.Fprintf(stderr, "kmsfix scan: --until: %v\n", err)
			return 2
		}
		end = t
	} else if *files == "" {
		end = now
	}
	if !start.IsZero() && !end.IsZero() && !start.Before(end) {
		fmt.Fprintf(stderr, "kmsfix scan: the window is empty: --since %s is not before --until %s\n", start.Format(time.RFC3339), end.Format(time.RFC3339))
		return 2
	}
	if *files == "" && now.Sub(start) > lookupHorizon {
		fmt.Fprintf(stderr, "kmsfix scan: note: LookupEvents holds 90 days; for older events download the trail's log files and use --files\n")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var cfg aws.Config
	if *files == "" || *live {
		var err error
		if cfg, err = loadAWSConfig(ctx, *region); err != nil {
			fmt.Fprintf(stderr, "kmsfix scan: %v\n", err)
			return 1
		}
	}
	explain := func(_ context.Context, it cloudtrail.Item) finding.Report { return engine.Explain(it, &world.World{}) }
	if *live {
		explain = scanExplainer(livePipeline(cfg))
	}

	if *files != "" {
		tuneGC()
	}
	bar := scan.NewBar(stderr, *quiet || *progress == "never", *progress == "always")
	opts := scan.Options{Explain: explain, Progress: bar.Update}
	var res *scan.Result
	var err error
	if *files != "" {
		res, err = scan.FromFiles(ctx, *files, start, end, opts)
	} else {
		client := awsct.NewFromConfig(cfg)
		res, err = scan.FromLookup(ctx, scan.NewLookup(client, scanClock, *rate), start, end, opts)
	}
	bar.Clear()

	if *asJSON {
		if werr := scan.WriteJSON(stdout, res.Groups); werr != nil {
			fmt.Fprintf(stderr, "kmsfix scan: %v\n", werr)
			return 1
		}
		if !*quiet {
			fmt.Fprintln(stderr, scan.Summary(res))
		}
	} else if werr := scan.WriteTable(stdout, res); werr != nil {
		fmt.Fprintf(stderr, "kmsfix scan: %v\n", werr)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix scan: incomplete: %s\n", quote.Block(err.Error())) // names files and quotes records
		var pe *scan.PageError
		if (errors.As(err, &pe) || errors.Is(err, context.Canceled)) && *files == "" {
			fmt.Fprintf(stderr, "kmsfix scan: the findings above cover %s to %s; events from %s to %s were not read (rerun with --since %s --until %s)\n",
				res.Reached.UTC().Format(time.RFC3339), end.Format(time.RFC3339),
				start.Format(time.RFC3339), res.Reached.UTC().Format(time.RFC3339),
				start.Format(time.RFC3339), res.Reached.UTC().Format(time.RFC3339))
		}
		return 1
	}
	return 0
}

// loadAWSConfig loads the SDK's default configuration (environment, shared files, role), with
// the Region flag and the request-body workaround of scan.BufferBodies. Endpoints follow
// AWS_ENDPOINT_URL_<SERVICE>.
func loadAWSConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS Region: set --region or AWS_REGION")
	}
	// Wrapped after loading, so what the loader set on the client (AWS_CA_BUNDLE) stays.
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = scan.BufferBodies(cfg.HTTPClient)
	return cfg, nil
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
