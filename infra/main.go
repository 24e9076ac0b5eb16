// Command infra is the kmsfix CDK app: `cdk synth` / `cdk deploy` run it (cdk.json), one stack
// per account and Region. Parameters come from CDK context or environment variables
// (config.Params; internal/config validates them with the rules the function itself uses).
//
// The stack (stack.go) is assembled from small pieces, one file each,
// in the order an event meets them:
//
//	rules.go          the EventBridge rules (denials, key-policy requests, the expiry sweeper)
//	function.go       the function, its role and exactly the calls it makes
//	apply.go          apply mode's levers, fenced to the sandbox accounts
//	table.go          dedupe and audit table
//	notifications.go  the findings topic and the dead-letter queue
//	alarms.go         alarms on the function and the queue, to the topic
//	key.go            the stack's customer managed key
//	trail.go          the optional CloudTrail trail
//
// The function's environment comes from internal/config, which also validates the parameters.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
)

func main() {
	if err := run(); err != nil {
		jsii.Close()
		fmt.Fprintln(os.Stderr, "kmsfix infra:", err)
		os.Exit(1)
	}
	jsii.Close()
}

func run() error {
	app := awscdk.NewApp(nil)
	lookup := func(name, env string) string {
		if v := contextString(app.Node().TryGetContext(jsii.String(name))); v != "" {
			return v
		}
		return os.Getenv(env)
	}
	cfg, err := config.LoadDeployment(func(p config.Param) string { return lookup(p.Context, p.Env) })
	if err != nil {
		return err
	}
	assetDir := lookup("assetDir", "KMSFIX_ASSET_DIR")
	if assetDir == "" {
		assetDir = "dist"
	}
	if _, err := os.Stat(filepath.Join(assetDir, "bootstrap")); err != nil {
		return fmt.Errorf("the Lambda binary %s is missing: run `make build` first (%w)",
			filepath.Join(assetDir, "bootstrap"), errors.Unwrap(err))
	}
	name := lookup("stackName", "KMSFIX_STACK_NAME")
	if name == "" {
		name = "Kmsfix"
	}
	nag := func(stack awscdk.Stack) {
		// The security linter platform teams run: an unsuppressed error fails `cdk synth`.
		awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	}
	if org := cfg.Org; org != nil {
		// The organization deployment (docs/org.md): the hub, the spoke template on its own,
		// and the StackSet that deploys it.
		hubEnv := &awscdk.Environment{Account: jsii.String(org.HubAccount), Region: jsii.String(org.HubRegion)}
		nag(NewKmsfixStack(app, name+"Hub", &StackProps{
			StackProps: awscdk.StackProps{Env: hubEnv,
				Description: jsii.String("kmsfix hub: explains S3 SSE-KMS access denials for the organization's accounts")},
			Config: cfg, AssetDir: assetDir,
		}))
		nag(NewSpokeStack(app, name+"Spoke", &SpokeProps{Org: org}))
		body, err := SpokeTemplate(org)
		if err != nil {
			return fmt.Errorf("spoke template: %w", err)
		}
		nag(NewSpokeStackSet(app, name+"Spokes", awscdk.StackProps{Env: hubEnv}, org, body))
	} else {
		nag(NewKmsfixStack(app, name, &StackProps{
			StackProps: awscdk.StackProps{
				Description: jsii.String("kmsfix: explains S3 SSE-KMS access denials (CloudTrail -> EventBridge -> Lambda)"),
			},
			Config:   cfg,
			AssetDir: assetDir,
		}))
	}
	app.Synth(nil)
	return nil
}

// contextString flattens a context value: `-c k=v` gives a string, cdk.json may give a list,
// a boolean or a number.
func contextString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case []any:
		parts := make([]string, 0, len(t))
		for _, x := range t {
			parts = append(parts, contextString(x))
		}
		return strings.Join(parts, ",")
	case float64:
		return fmt.Sprint(t)
	default:
		return fmt.Sprint(t)
	}
}
