package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kmsfix/kmsfix/internal/scan"
)

// awsFlags are the AWS CLI's own conventions, shared by the commands that start from an
// address or a principal (why, check, doctor --buckets): --profile, --region, --output. The
// SDK reads the standard variables (AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, ...,
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>) as the CLI does.
type awsFlags struct {
	Profile string
	Region  string
	Output  string // text or json
	JSON    bool   // --json, the same as --output json
}

func (a *awsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.Profile, "profile", "", "named profile from the shared AWS config files (default: $AWS_PROFILE, else default)")
	fs.StringVar(&a.Region, "region", "", "AWS Region (default: the SDK's, e.g. $AWS_REGION or the profile's)")
	fs.StringVar(&a.Output, "output", "text", "output format: text or json")
	fs.BoolVar(&a.JSON, "json", false, "the same as --output json")
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

// config loads the SDK configuration for the profile and Region, with the same request-body
// workaround as loadAWSConfig.
func (a *awsFlags) config(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if a.Region != "" {
		opts = append(opts, awsconfig.WithRegion(a.Region))
	}
	if a.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(a.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS Region: set --region, AWS_REGION or the profile's region")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = scan.BufferBodies(cfg.HTTPClient)
	return cfg, nil
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
