package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kmsfix/kmsfix/internal/doctor"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runDoctor(args []string, stdout, stderr io.Writer) int {
	if wantsBuckets(args) {
		return runDoctorBuckets(args, stdout, stderr)
	}
	if which := wantsOrg(args); which != "" {
		return runDoctorOrg(which, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o doctor.Options
	var dlqs listFlag
	region := fs.String("region", "", "AWS Region to check (default: the SDK's, e.g. AWS_REGION)")
	fs.StringVar(&o.Rule, "rule", os.Getenv("KMSFIX_RULE_NAME"), "name of the EventBridge rule (default: $KMSFIX_RULE_NAME, else found by the stack's naming convention)")
	fs.StringVar(&o.Stack, "stack", envOr("KMSFIX_STACK_NAME", "Kmsfix"), "CloudFormation stack name, for finding the rule (<stack>-KmsDenialRule...)")
	fs.StringVar(&o.EventBus, "event-bus", "default", "event bus of the rule")
	fs.StringVar(&o.Function, "function", "", "name or ARN of the remediator function (default: the rule's Lambda target)")
	fs.Var(&dlqs, "dlq", "dead-letter queue `URL` (repeatable; default: the rule target's and the function's)")
	fs.StringVar(&o.SlackSecret, "slack-secret", "", "Slack webhook secret `ARN` (default: the function's KMSFIX_SLACK_SECRET_ARN)")
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix doctor [--region R] [--rule NAME | --stack NAME] [--function NAME] [--dlq URL] [--slack-secret ARN] [--json]")
		fmt.Fprintln(stderr, "       kmsfix doctor --buckets [--bucket B]... [--profile P] [--region R] [--output text|json]   # default-encryption drift")
		fmt.Fprintln(stderr, "       kmsfix doctor --hub --org-id O --hub-account A --hub-region R --spoke-targets OU,... --spoke-regions R,... [--json]   # organization hub")
		fmt.Fprintln(stderr, "       kmsfix doctor --spoke --org-id O --hub-account A --hub-region R [--sandbox true|false] [--json]   # organization spoke")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kmsfix doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	o.DeadLetterQueues = dlqs

	ctx, cancel := commandContext(2 * time.Minute)
	defer cancel()
	cfg, err := loadAWSConfig(ctx, *region, "", regionFlagHint)
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix doctor: %v\n", err)
		return 1
	}
	o.Region = cfg.Region
	checks := doctor.Run(ctx, doctor.Clients{
		CloudTrail:  cloudtrail.NewFromConfig(cfg),
		EventBridge: eventbridge.NewFromConfig(cfg),
		Lambda:      lambda.NewFromConfig(cfg),
		SQS:         sqs.NewFromConfig(cfg),
		Secrets:     secretsmanager.NewFromConfig(cfg),
	}, o)
	if *asJSON {
		err = doctor.WriteJSON(stdout, checks)
	} else {
		fmt.Fprintf(stdout, "kmsfix doctor: Region %s\n", o.Region)
		err = doctor.WriteTable(stdout, checks)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix doctor: %v\n", err)
		return 1
	}
	if doctor.Failed(checks) {
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
