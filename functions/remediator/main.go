// Command remediator is the Lambda function (provided.al2023, bootstrap): it reads and checks
// its configuration at cold start, builds the AWS clients once, and hands each EventBridge
// event to internal/remediator.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/hub"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/orgroute"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/remediator"
)

// Lookups are reused for a minute per container; each AWS call gets at most 3 s; throttling
// is retried 5 times with backoff capped at 1 s.
const (
	cacheTTL    = time.Minute
	callTimeout = 3 * time.Second
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
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = time.Second
			})
		}),
		awsconfig.WithAPIOptions(enrich.APIOptions))
	if err != nil {
		log.Error("cold start: AWS configuration: "+err.Error(), "phase", "config")
		os.Exit(1)
	}
	kmsClient := kms.NewFromConfig(awsCfg)
	iamClient := iam.NewFromConfig(awsCfg)
	analyzer := accessanalyzer.NewFromConfig(awsCfg)
	ddb := dynamodb.NewFromConfig(awsCfg)

	snsClient := sns.NewFromConfig(awsCfg)
	nc := notify.Clients{SNS: snsClient, DynamoDB: ddb}
	if cfg.SlackSecretARN != "" {
		nc.Secrets = secretsmanager.NewFromConfig(awsCfg)
	}
	notifier, err := notify.New(notify.Config{
		TopicARN: cfg.TopicARN, Table: cfg.TableName, SlackSecretARN: cfg.SlackSecretARN,
		Window: cfg.DedupeWindow, Propagation: cfg.PropagationWindow, Logger: log,
		Metrics: os.Stdout, // EMF: a webhook Slack refuses for good (the stack alarms on it)
	}, nc)
	if err != nil {
		log.Error("cold start: "+err.Error(), "phase", "config")
		os.Exit(1)
	}
	var sender remediator.Notifier = notifier
	if len(cfg.Routes) > 0 || cfg.OrgRoutes() {
		// Findings of a routed account go to its own secret and topic (KMSFIX_ROUTES); every
		// route shares the table, so one finding is one message wherever it was seen.
		if nc.Secrets == nil {
			nc.Secrets = secretsmanager.NewFromConfig(awsCfg)
		}
		newRoute := func(r config.Route) (notify.Sender, error) {
			return notify.New(notify.Config{
				TopicARN: r.TopicARN, Table: cfg.TableName, SlackSecretARN: r.SlackSecretARN,
				Window: cfg.DedupeWindow, Propagation: cfg.PropagationWindow, Logger: log, Metrics: os.Stdout,
			}, nc)
		}
		var resolver *orgroute.Resolver
		if cfg.OrgRoutes() {
			// OU and tag entries (the hub only; config refuses them elsewhere): the account's
			// OU chain and tags come from Organizations, cached per account (internal/orgroute).
			resolver = &orgroute.Resolver{Org: organizations.NewFromConfig(awsCfg), Log: log, Metrics: os.Stdout}
		}
		rt, err := orgroute.Routed(cfg, notifier, newRoute, resolver)
		if err != nil {
			log.Error("cold start: "+err.Error(), "phase", "config")
			os.Exit(1)
		}
		sender = rt
	}

	stsClient := sts.NewFromConfig(awsCfg)
	enrichOpts := enrich.Options{TTL: cacheTTL, CallTimeout: callTimeout}
	var enricher pipeline.Enricher = enrich.New(kmsClient, iamClient, stsClient, enrichOpts)
	var accounts *hub.Accounts // the organization's hub, else nil
	if cfg.HubOrgID != "" {
		// The organization's hub (docs/org.md): each account's world is read through its
		// reader role, with credentials of that account only.
		accounts = &hub.Accounts{Base: awsCfg, STS: stsClient, Partition: config.HubPartition, Enrich: enrichOpts}
		enricher = accounts
	}
	h := &remediator.Handler{
		Enricher:  enricher,
		Validator: pipeline.NewValidator(analyzer, cacheTTL, callTimeout),
		Notifier:  sender,
		Sandbox:   cfg.SandboxAccounts,
		// The single-account stack serves its own account only (internal/remediator/origin.go).
		Account: apply.AccountOf(cfg.RemediatorRoleARN),
		Hub:     cfg.HubOrgID != "",
		Log:     log,
		Metrics: os.Stdout,
	}
	if cfg.Mode == config.ModeApply {
		store := &apply.Store{DB: ddb, Table: cfg.TableName}
		if cfg.AuditKeyARN != "" {
			store.Sealer = apply.KMSSealer{API: kmsClient, KeyID: cfg.AuditKeyARN}
		}
		applier := &apply.Applier{
			Settings: apply.SettingsFrom(cfg, awsCfg.Region),
			Store:    store,
			KMS:      kmsClient, Grants: kmsClient, IAM: iamClient, Analyzer: analyzer,
			Logger:  log, // no Hold: notify.Notifier.Notify holds the finding back itself after announcing the change
			Metrics: os.Stdout,
			Alerter: topicAlerter{sns: snsClient, topic: cfg.TopicARN},
		}
		if accounts != nil {
			// In the hub every change is made in the account that owns it, through that
			// account's kmsfix-apply role; the function's own credentials write nothing.
			applier.KMS, applier.Grants, applier.IAM = nil, nil, nil
			applier.Accounts = accounts
		}
		h.Applier = applier
		h.Sweeper = applier
	}
	// Cross-account (docs/cross-account.md): send the key-policy half of a cross-account
	// finding to the key owner's bus; accept such requests from trusted accounts.
	if len(cfg.KeyOwnerBuses) > 0 {
		h.KeyOwner = &crossaccount.Sender{
			Events: eventbridge.NewFromConfig(awsCfg), Buses: cfg.KeyOwnerBuses,
			Log:    &crossaccount.TableSentLog{DB: ddb, Table: cfg.TableName},
			Window: cfg.DedupeWindow, Logger: log,
		}
	}
	// The trusted accounts are those of KMSFIX_TRUSTED_SENDER_ROLES (the bus policy admits only
	// those roles); an organization id only narrows the bus policy, so it is not passed on:
	// the receiver checks the envelope's account against the senders' accounts exactly.
	if cfg.AcceptsRequests() {
		h.Requests = &crossaccount.Receiver{
			Enricher: h.Enricher, STS: stsClient, Region: awsCfg.Region,
			TrustedAccounts: cfg.TrustedAccounts, Sandbox: cfg.SandboxAccounts,
			Window: cfg.DedupeWindow, MaxStatements: cfg.MaxKeyStatements,
			Seen: &crossaccount.TableSeenLog{DB: ddb, Table: cfg.TableName},
		}
	}
	if h.Hub {
		h.Account = "" // the hub checks each event against its own record (foreignToHub)
	}
	decorate(h)
	// h.Invoke routes each payload once (remediator.Route): malformed, the sweeper's tick,
	// a key-policy request, or a CloudTrail record.
	lambda.Start(h)
}

// topicAlerter publishes apply's alerts (a change whose revert could not be proven exact) to
// the findings topic, with the attribute kind=alert so subscribers can filter them apart from
// report JSON.
type topicAlerter struct {
	sns   *sns.Client
	topic string
}

func (t topicAlerter) Alert(ctx context.Context, subject, text string) error {
	_, err := t.sns.Publish(ctx, &sns.PublishInput{
		TopicArn: &t.topic, Subject: &subject, Message: &text,
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"kind": {DataType: aws.String("String"), StringValue: aws.String("alert")},
		},
	})
	return err
}
