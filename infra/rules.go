package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/eventpattern"
)

// KmsDenialPattern is the event pattern of the main rule (eventpattern.KMSDenial, which
// `kmsfix doctor` prints in its fix for the rule).
func KmsDenialPattern() *awsevents.EventPattern {
	f := eventpattern.KMSDenialFields()
	return &awsevents.EventPattern{
		Source:     jsii.Strings(f.Source...),
		DetailType: jsii.Strings(f.DetailType...),
		Detail:     &f.Detail,
	}
}

// newDenialRule sends the refused KMS calls S3 made for a principal to the function. The stack
// serves one account: the rule takes only events of this account (EventBridge writes the
// envelope's "account"; a bus that received events from elsewhere does not pass them on).
// The Lambda permission the target adds admits events.amazonaws.com for this rule's ARN only
// (aws:SourceArn), the one way in besides the stack's other rules
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions).
//
// A hub (hubBus set) takes the events the spokes forward to its own bus, from every account of
// the organization; the bus policy admits only those, and the function checks each event's
// account against its record (docs/org.md).
func newDenialRule(stack awscdk.Stack, target awsevents.IRuleTarget, hubBus awsevents.IEventBus) awsevents.Rule {
	pattern := KmsDenialPattern()
	if hubBus == nil {
		pattern.Account = jsii.Strings(*awscdk.Aws_ACCOUNT_ID())
	}
	rule := awsevents.NewRule(stack, jsii.String("KmsDenialRule"), &awsevents.RuleProps{
		Description:  jsii.String("kmsfix: KMS data-key calls made by S3 for a principal and refused"),
		EventPattern: pattern,
		EventBus:     hubBus,
		Targets:      &[]awsevents.IRuleTarget{target},
	})
	// Decrypt and GenerateDataKey are read-only management events; the L2 construct only knows
	// ENABLED/DISABLED, so the documented opt-in state is set on the L1 resource.
	rule.Node().DefaultChild().(awsevents.CfnRule).AddPropertyOverride(jsii.String("State"), jsii.String(ruleState))
	return rule
}

// addRequestRule (key-owner side) accepts key-policy change requests sent by kmsfix in trusted
// accounts: a bus policy lets them put exactly that kind of event, and a rule hands them to the function.
func addRequestRule(stack awscdk.Stack, cfg config.Config, target awsevents.IRuleTarget) {
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	busARN := fmt.Sprintf("arn:%s:events:%s:%s:event-bus/default", partition, region, account)
	onlyRequests := map[string]any{"events:source": requestSource, "events:detail-type": requestDetailType}

	pattern := &awsevents.EventPattern{
		Source:     jsii.Strings(requestSource),
		DetailType: jsii.Strings(requestDetailType),
	}
	if len(cfg.TrustedAccounts) > 0 {
		var roots []string
		for _, a := range cfg.TrustedAccounts {
			roots = append(roots, fmt.Sprintf("arn:%s:iam::%s:root", partition, a))
		}
		awsevents.NewCfnEventBusPolicy(stack, jsii.String("TrustedAccountsPutRequests"), &awsevents.CfnEventBusPolicyProps{
			EventBusName: jsii.String("default"),
			StatementId:  jsii.String("kmsfix-requests-from-accounts"),
			Statement: map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"AWS": roots},
				"Action":    "events:PutEvents",
				"Resource":  busARN,
				"Condition": map[string]any{"StringEquals": onlyRequests},
			},
		})
	}
	if cfg.TrustedOrgID != "" {
		awsevents.NewCfnEventBusPolicy(stack, jsii.String("TrustedOrgPutRequests"), &awsevents.CfnEventBusPolicyProps{
			EventBusName: jsii.String("default"),
			StatementId:  jsii.String("kmsfix-requests-from-org"),
			Statement: map[string]any{
				"Effect":    "Allow",
				"Principal": "*", // narrowed to the organization by aws:PrincipalOrgID
				"Action":    "events:PutEvents",
				"Resource":  busARN,
				"Condition": map[string]any{"StringEquals": mergeMaps(onlyRequests,
					map[string]any{"aws:PrincipalOrgID": cfg.TrustedOrgID})},
			},
		})
	}
	// EventBridge sets `account` to the sender's account, so it cannot be forged; local
	// principals could put the same source, hence this account is never accepted.
	if len(cfg.TrustedAccounts) > 0 && cfg.TrustedOrgID == "" {
		pattern.Account = jsii.Strings(cfg.TrustedAccounts...)
	} else {
		pattern.Account = awsevents.Match_AnythingBut(account)
	}
	awsevents.NewRule(stack, jsii.String("KeyPolicyRequestRule"), &awsevents.RuleProps{
		Description:  jsii.String("kmsfix: key-policy change requests from trusted caller accounts"),
		EventPattern: pattern,
		Targets:      &[]awsevents.IRuleTarget{target},
	})
}

// addExpirySweeper runs the function every 15 minutes to revert automatic changes whose time is up.
func addExpirySweeper(stack awscdk.Stack, target awsevents.IRuleTarget) {
	awsevents.NewRule(stack, jsii.String("ExpirySweeper"), &awsevents.RuleProps{
		Description: jsii.String("kmsfix: revert automatic changes whose expiry has passed"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(15))),
		Targets:     &[]awsevents.IRuleTarget{target},
	})
}
