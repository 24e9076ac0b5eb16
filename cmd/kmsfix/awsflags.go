package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/scan"
)

// awsFlags are the AWS CLI's own conventions, shared by the commands that start from an
// address or a principal (why, check, doctor --buckets/--hub/--spoke): --profile, --region, --output. The
// SDK reads the standard variables (AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, ...,
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>) as the CLI does.
type awsFlags struct {
	Profile string
	Region  string
	Output  string // text or json
	JSON    bool   // --json, the same as --output json
}

// flagSet is a command's flag set, printing on stderr, with these flags registered.
func (a *awsFlags) flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.Profile, "profile", "", "named profile from the shared AWS config files (default: $AWS_PROFILE, else default)")
	fs.StringVar(&a.Region, "region", "", "AWS Region (default: the SDK's, e.g. $AWS_REGION or the profile's)")
	fs.StringVar(&a.Output, "output", "text", "output format: text or json")
	fs.BoolVar(&a.JSON, "json", false, "the same as --output json")
	return fs
}

// format checks --output and returns "text" or "json".
func (a *awsFlags) format() (string, error) {
	if a.JSON {
		return "json", nil
	}
	if a.Output != "text" && a.Output != "json" {
		return "", fmt.Errorf("--output must be text or json, not %q", a.Output)
	}
	return a.Output, nil
}

// config loads the SDK configuration for the profile and Region (loadAWSConfig).
func (a *awsFlags) config(ctx context.Context) (aws.Config, error) {
	return loadAWSConfig(ctx, a.Region, a.Profile, "set --region, AWS_REGION or the profile's region")
}

// loadAWSConfig loads the SDK's default configuration (environment, shared files, role), with
// the Region and profile flags (either may be empty) and the request-body workaround of
// scan.BufferBodies. Endpoints follow AWS_ENDPOINT_URL_<SERVICE>. regionHint says, when no
// Region is configured, where the command takes one from.
func loadAWSConfig(ctx context.Context, region, profile, regionHint string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS Region: " + regionHint)
	}
	// Wrapped after loading, so what the loader set on the client (AWS_CA_BUNDLE) stays.
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = scan.BufferBodies(cfg.HTTPClient)
	return cfg, nil
}

// regionFlagHint is loadAWSConfig's regionHint for the commands without --profile.
const regionFlagHint = "set --region or AWS_REGION"

// commandContext is a command's context: cancelled by Ctrl-C or after timeout.
func commandContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, func() { cancel(); stop() }
}

// printJSON writes v as one line of JSON (the --output json document).
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s\n", b)
	return nil
}

// callerAccount is the account of the credentials in cfg.
func callerAccount(ctx context.Context, cfg aws.Config) (string, error) {
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts:GetCallerIdentity: %w", err)
	}
	return aws.ToString(id.Account), nil
}

// failer returns a function that prints "prefix: message" on w and returns code: a
// command's one way out on a usage or AWS error.
func failer(w io.Writer, prefix string, code int) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(w, prefix+": "+format+"\n", a...)
		return code
	}
}

// s3Client uses path-style addresses when an endpoint is configured (a local S3 or a proxy
// rarely serves bucket subdomains), as AWS_S3_USE_PATH_STYLE asks, or never otherwise.
func s3Client(cfg aws.Config) *s3.Client {
	pathStyle := os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_S3_USE_PATH_STYLE") == "true"
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		// A 1-byte ranged read carries no whole-object checksum: do not log that on every run.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// slowStep prints "kmsfix: <what>..." on a terminal when a step takes longer than a second,
// and clears it when the step ends; it prints nothing when w is not a terminal.
type slowStep struct {
	w       io.Writer
	enabled bool
}

func newSlowStep(w io.Writer) *slowStep { return &slowStep{w: w, enabled: scan.IsTerminal(w)} }

// start shows what after a second unless done is called first.
func (p *slowStep) start(what string) (done func()) {
	if p == nil || !p.enabled {
		return func() {}
	}
	var mu sync.Mutex
	shown, finished := false, false
	t := time.AfterFunc(time.Second, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			fmt.Fprintf(p.w, "\rkmsfix: %s...\x1b[K", what)
			shown = true
		}
	})
	return func() {
		t.Stop()
		mu.Lock()
		defer mu.Unlock()
		finished = true
		if shown {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
	}
}
