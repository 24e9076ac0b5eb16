// Command remediator is the Lambda function (provided.al2023, bootstrap): it reads and checks
// its configuration at cold start, builds the handler and its AWS clients once
// (internal/function, the one wiring, which bench/storm also runs), and hands each
// EventBridge event to internal/remediator.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/function"
	"github.com/kmsfix/kmsfix/internal/remediator"
)

// decorate lets a test build (faultinject.go) wrap the handler's parts; it does nothing in
// the shipped binary.
var decorate = func(*remediator.Handler) {}

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		log.Error("cold start: "+err.Error(), "phase", "config")
		os.Exit(1)
	}
	awsCfg, err := function.AWSConfig(context.Background())
	if err != nil {
		log.Error("cold start: AWS configuration: "+err.Error(), "phase", "config")
		os.Exit(1)
	}
	h, err := function.New(cfg, awsCfg, function.Options{Log: log, Metrics: os.Stdout})
	if err != nil {
		log.Error("cold start: "+err.Error(), "phase", "config")
		os.Exit(1)
	}
	decorate(h)
	// h.Invoke routes each payload once (remediator.Route): malformed, the sweeper's tick,
	// a key-policy request, or a CloudTrail record.
	lambda.Start(h)
}
