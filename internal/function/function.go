// Package function builds the remediator function's handler from its configuration: the one
// wiring that the Lambda (functions/remediator) runs and that the organization storm
// (bench/storm) measures, so the benchmark cannot drift from what ships.
package function

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
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
	CacheTTL    = time.Minute
	CallTimeout = 3 * time.Second
)

// AWSConfig is the SDK configuration of the function: the default chain, its retryer and the
// enricher's API options.
func AWSConfig(ctx context.Context) (aws.Config, error) {
	return awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = time.Second
			})
		}),
		awsconfig.WithAPIOptions(enrich.APIOptions))
}

// Options are what the environment does not say.
type Options struct {
	Log     *slog.Logger
	Metrics io.Writer // EMF lines (the Lambda: stdout)
	// HubSTS wraps the STS client the hub assumes its member accounts' roles with (the storm
	// counts AssumeRole per container); nil: the client as is.
	HubSTS func(stscreds.AssumeRoleAPIClient) stscreds.AssumeRoleAPIClient
}

// New builds the handler cfg describes, over clients made from awsCfg.
func New(cfg config.Config, awsCfg aws.Config, o Options) (*remediator.Handler, error) {
	kmsClient := kms.NewFromConfig(awsCfg)
	iamClient := iam.NewFromConfig(awsCfg)
	analyzer := accessanalyzer.NewFromConfig(awsCfg)
	ddb := dynamodb.NewFromConfig(awsCfg)
	snsClient := sns.NewFromConfig(awsCfg)

	sender, err := notifier(cfg, awsCfg, notify.Clients{SNS: snsClient, DynamoDB: ddb}, o)
	if err != nil {
		return nil, err
	}

	stsClient := sts.NewFromConfig(awsCfg)
	enrichOpts := enrich.Options{TTL: CacheTTL, CallTimeout: CallTimeout}
	var enricher pipeline.Enricher = enrich.New(kmsClient, iamClient, stsClient, enrichOpts)
	var accounts *hub.Accounts // the organization's hub, else nil
	if cfg.HubOrgID != "" {
		// The organization's hub (docs/org.md): each account's world is read through its
		// reader role, with credentials of that account only.
		var assumer stscreds.AssumeRoleAPIClient = stsClient
		if o.HubSTS != nil {
			assumer = o.HubSTS(stsClient)
		}
		accounts = &hub.Accounts{Base: awsCfg, STS: assumer, Partition: config.HubPartition, Enrich: enrichOpts}
		enricher = accounts
	}
	h := &remediator.Handler{
		Enricher:  enricher,
		Validator: pipeline.NewValidator(analyzer, CacheTTL, CallTimeout),
		Notifier:  sender,
		Sandbox:   cfg.SandboxAccounts,
		// The single-account stack serves its own account only (internal/remediator/origin.go);
		// the hub checks each event against its own record (foreignToHub).
		Account: apply.AccountOf(cfg.RemediatorRoleARN),
		Hub:     cfg.HubOrgID != "",
		Log:     o.Log,
		Metrics: o.Metrics,
	}
	if h.Hub {
		h.Account = ""
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
			Logger:  o.Log, // no Hold: notify.Notifier.Notify holds the finding back itself after announcing the change
			Metrics: o.Metrics,
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
			Window: cfg.DedupeWindow, Logger: o.Log,
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
	return h, nil
}

// notifier is the function's notifier, with its routes (KMSFIX_ROUTES): findings of a routed
// account, OU or tag go to their own secret and topic; every route shares the table, so one
// finding is one message wherever it was seen.
func notifier(cfg config.Config, awsCfg aws.Config, nc notify.Clients, o Options) (remediator.Notifier, error) {
	routed := len(cfg.Routes) > 0 || cfg.OrgRoutes()
	if cfg.SlackSecretARN != "" || routed {
		nc.Secrets = secretsmanager.NewFromConfig(awsCfg)
	}
	newSender := func(topic, secret string) (*notify.Notifier, error) {
		return notify.New(notify.Config{
			TopicARN: topic, Table: cfg.TableName, SlackSecretARN: secret,
			Window: cfg.DedupeWindow, Propagation: cfg.PropagationWindow, Logger: o.Log,
			Metrics: o.Metrics, // EMF: a webhook Slack refuses for good (the stack alarms on it)
		}, nc)
	}
	def, err := newSender(cfg.TopicARN, cfg.SlackSecretARN)
	if err != nil {
		return nil, err
	}
	if !routed {
		return def, nil
	}
	var resolver *orgroute.Resolver
	if cfg.OrgRoutes() {
		// OU and tag entries (the hub only; config refuses them elsewhere): the account's OU
		// chain and tags come from Organizations, cached per account (internal/orgroute).
		resolver = &orgroute.Resolver{Org: organizations.NewFromConfig(awsCfg), Log: o.Log, Metrics: o.Metrics}
	}
	rt, err := orgroute.Routed(cfg, def, func(r config.Route) (notify.Sender, error) {
		return newSender(r.TopicARN, r.SlackSecretARN)
	}, resolver)
	if err != nil {
		return nil, err
	}
	return rt, nil
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
