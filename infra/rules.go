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

// addRequestRule (key-owner side) accepts key-policy change requests sent by the senders'
// remediators: a bus policy lets exactly their roles put exactly that kind of event, and a
// rule hands them to the function.
//
// The bus policy's Principal is the list of role ARNs (cfg.TrustedSenderRoles), never an
// account root (which would admit any principal there allowed events:PutEvents) nor "*": the
// envelope does not say which principal put an event, so this policy is the only place the
// role can be checked; the receiver checks the envelope's account against the same roles'
// accounts (cfg.TrustedAccounts). A bus policy is a resource-based policy that admits
// PutEvents from other accounts' principals, with IAM conditions such as events:source and
// events:detail-type
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html).
// EventBridge's own examples name account roots; a role ARN as Principal is IAM's general
// resource-policy grammar
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-roles),
// not exercised against a live bus here (unverified). IAM rewrites a role principal to the
// role's unique id when the role is deleted: a sender that recreates its role must be
// listed again (redeploy this stack).
func addRequestRule(stack awscdk.Stack, cfg config.Config, target awsevents.IRuleTarget) {
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	busARN := fmt.Sprintf("arn:%s:events:%s:%s:event-bus/default", partition, region, account)
	conditions := map[string]any{"events:source": requestSource, "events:detail-type": requestDetailType}
	if cfg.TrustedOrgID != "" {
		// Defence in depth: the roles must also belong to the organization.
		conditions["aws:PrincipalOrgID"] = cfg.TrustedOrgID
	}
	awsevents.NewCfnEventBusPolicy(stack, jsii.String("TrustedSenderRolesPutRequests"), &awsevents.CfnEventBusPolicyProps{
		EventBusName: jsii.String("default"),
		StatementId:  jsii.String("kmsfix-requests-from-sender-roles"),
		Statement: map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": cfg.TrustedSenderRoles},
			"Action":    "events:PutEvents",
			"Resource":  busARN,
			"Condition": map[string]any{"StringEquals": conditions},
		},
	})
	// EventBridge sets `account` to the sender's account, so it cannot be forged; only the
	// senders' accounts are taken (never this account's own events).
	awsevents.NewRule(stack, jsii.String("KeyPolicyRequestRule"), &awsevents.RuleProps{
		Description: jsii.String("kmsfix: key-policy change requests from the trusted senders' remediator roles"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings(requestSource),
			DetailType: jsii.Strings(requestDetailType),
			Account:    jsii.Strings(cfg.TrustedAccounts...),
		},
		Targets: &[]awsevents.IRuleTarget{target},
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
