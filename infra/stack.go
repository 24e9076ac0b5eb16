package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
)

// The facts that make the events arrive (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html;
// docs/cloudtrail.md).
const (
	ruleState         = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
	requestSource     = "kmsfix.remediator"
	requestDetailType = "KMS Key Policy Change Requested"
	// Function sizing: the handler is I/O bound (a handful of AWS calls per event); 256 MB gives
	// an arm64 share of CPU that keeps cold start low, 30 s covers the slowest enrichment path
	// with SDK retries (see docs/deploy.md).
	memoryMB       = 256
	timeoutSeconds = 30
)

// StackProps configures the kmsfix stack.
type StackProps struct {
	awscdk.StackProps
	// Config is the validated deployment (internal/config: the function reads the same rules).
	Config config.Deployment
	// AssetDir is the directory holding the Lambda's `bootstrap` (dist/ after `make build`).
	AssetDir string
}

// NewKmsfixStack defines everything one account and Region needs.
func NewKmsfixStack(scope constructs.Construct, id string, props *StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	deployment := props.Config
	cfg := deployment.Function

	key := newStackKey(stack)
	topic := newTopic(stack, key, deployment.NotifyEmails)
	table := newTable(stack)
	deadLetters := newDeadLetterQueue(stack, key)
	fn := newRemediator(stack, remediatorProps{deployment: deployment, assetDir: props.AssetDir,
		key: key, topic: topic, table: table, deadLetters: deadLetters, org: deployment.Org})

	onlyFunctionPublishes(topic, fn.role)
	onlyFunctionWrites(table, fn.role)
	var hubBus awsevents.IEventBus
	if deployment.Org != nil {
		hubBus = newHubBus(stack, deployment.Org)
	}
	rule := newDenialRule(stack, fn.target(), hubBus)
	if cfg.AcceptsRequests() {
		addRequestRule(stack, cfg, fn.target())
	}
	if cfg.Mode == config.ModeApply && deployment.Org != nil {
		// The hub changes nothing with its own role: every change is made through the
		// kmsfix-apply role of the account that owns it (hubAssumeStatements). It only seals
		// the audit records, a dry run's too: the applier keys a finding's changes by the
		// audit key's MAC of its fingerprint, and refuses everything without it.
		auditKey := addAuditKey(stack, fn)
		addExpirySweeper(stack, fn.target())
		newBreakGlassRole(stack, cfg, deployment.Org, table, auditKey)
	} else if deployment.Org != nil {
		newBreakGlassRole(stack, cfg, deployment.Org, table, nil) // the spokes' trust names it
	} else if cfg.Mode == config.ModeApply {
		addApplyPermissions(stack, cfg, fn, key)
		addExpirySweeper(stack, fn.target())
	}
	addAlarms(stack, fn.fn, deadLetters, topic, cfg.SlackSecretARN != "", cfg.Mode == config.ModeApply, cfg.OrgRoutes())
	if deployment.CreateTrail {
		addTrail(stack, key)
	}

	awscdk.NewCfnOutput(stack, jsii.String("TopicArn"), &awscdk.CfnOutputProps{Value: topic.TopicArn()})
	awscdk.NewCfnOutput(stack, jsii.String("FunctionName"), &awscdk.CfnOutputProps{Value: fn.fn.FunctionName()})
	awscdk.NewCfnOutput(stack, jsii.String("RuleName"), &awscdk.CfnOutputProps{Value: rule.RuleName()})
	awscdk.NewCfnOutput(stack, jsii.String("DeadLetterQueueUrl"), &awscdk.CfnOutputProps{Value: deadLetters.QueueUrl()})
	return stack
}
