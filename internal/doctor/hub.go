package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// Check names of `kmsfix doctor --hub`, in table order.
const (
	NameHubBus            = "hub bus exists"
	NameHubBusPrincipals  = "hub bus admits only org spokes"
	NameHubBusEvents      = "hub bus admits only denials"
	NameHubRuleExists     = "hub rule exists"
	NameHubRuleState      = "hub rule state"
	NameHubRulePattern    = "hub rule pattern"
	NameHubRuleTarget     = "hub rule targets function"
	NameHubFunction       = "hub function active"
	NameHubMode           = "hub function in hub mode"
	NameStackSet          = "StackSet service-managed"
	NameStackSetAuto      = "StackSet auto-deployment"
	NameStackSetTargets   = "StackSet targets"
	NameStackSetInstances = "StackSet instances current"
	NameStackSetRegions   = "StackSet Regions deployed"
)

// cloudTrailDetailType is the detail-type EventBridge gives CloudTrail management events, the
// only one the hub bus admits.
const cloudTrailDetailType = "AWS API Call via CloudTrail"

// HubOptions say what the hub should be; Org is the configuration the hub was deployed with.
type HubOptions struct {
	Region string
	Org    *config.Org
	// Stack is the hub stack's name (the rule is <Stack>-KmsDenialRule...), default "KmsfixHub".
	Stack string
	// CallAs is how the StackSet is read: DELEGATED_ADMIN (the hub account, the default) or
	// SELF (the management account).
	CallAs cftypes.CallAs
}

// BusDescriber is the EventBridge call that reads a bus and its policy.
type BusDescriber interface {
	DescribeEventBus(ctx context.Context, in *eventbridge.DescribeEventBusInput, optFns ...func(*eventbridge.Options)) (*eventbridge.DescribeEventBusOutput, error)
}

// HubBusAPI is the EventBridge calls of the hub checks; *eventbridge.Client satisfies it.
type HubBusAPI interface {
	BusDescriber
	RuleAPI
}

// HubClients are the SDK clients of the hub checks.
type HubClients struct {
	EventBridge    HubBusAPI
	Lambda         FunctionAPI
	CloudFormation StackSetAPI
}

// RunHub checks the hub of an organization deployment, in the hub account and Region: its bus
// and the bus policy, the rule to the function, the function in hub mode, and the StackSet
// that deploys the spokes.
func RunHub(ctx context.Context, c HubClients, o HubOptions) []Check {
	if o.Stack == "" {
		o.Stack = "KmsfixHub"
	}
	if o.CallAs == "" {
		o.CallAs = cftypes.CallAsDelegatedAdmin
	}
	var out []Check

	bus, exists := CheckHubBus(ctx, c.EventBridge, o)
	out = append(out, exists)
	if bus == nil {
		out = append(out, skipped(NameHubBusPrincipals, "no bus"), skipped(NameHubBusEvents, "no bus"))
	} else {
		principals, events := CheckHubBusPolicy(bus, o.Org, o.Region)
		out = append(out, principals, events)
	}

	ro := Options{Region: o.Region, EventBus: config.HubBusName, Stack: o.Stack}
	rules, _, _, fn := checkRuleToFunction(ctx, c.EventBridge, c.Lambda, ro)
	for i, name := range []string{NameHubRuleExists, NameHubRuleState, NameHubRulePattern, NameHubRuleTarget, NameHubFunction} {
		out = append(out, renamed(rules[i], name))
	}
	if fn == nil {
		out = append(out, skipped(NameHubMode, "no function"))
	} else {
		out = append(out, CheckHubMode(fn, o.Org))
	}

	return append(out, CheckStackSet(ctx, c.CloudFormation, o)...)
}

// renamed gives a shared check its name in the hub's or a spoke's table.
func renamed(c Check, name string) Check {
	c.Name = name
	return c
}

// CheckHubBus passes when the hub's bus exists.
func CheckHubBus(ctx context.Context, api BusDescriber, o HubOptions) (*eventbridge.DescribeEventBusOutput, Check) {
	c := Check{Name: NameHubBus}
	out, err := api.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(config.HubBusName)})
	if isNotFound(err) {
		c.Status, c.Detail = Fail, fmt.Sprintf("no event bus %s in %s: the spokes' events have nowhere to go", config.HubBusName, o.Region)
		c.Fix = "deploy the hub in its account and Region (docs/org.md, Deploy): make deploy CDK_ARGS=\"-c deployment=org ... KmsfixHub\""
		return nil, c
	}
	if err != nil {
		return nil, cannotRead(c, "hub's event bus", err, "events:DescribeEventBus")
	}
	if arn := aws.ToString(out.Arn); arn != "" && arn != o.Org.HubBusARN {
		c.Status, c.Detail = Fail, fmt.Sprintf("the bus is %s, but the spokes target %s", arn, o.Org.HubBusARN)
		c.Fix = "run the doctor in the hub's account and Region, or deploy the spokes with this hub's account and Region (-c hubAccount, -c hubRegion)"
		return out, c
	}
	c.Status, c.Detail = Pass, o.Org.HubBusARN
	return out, c
}

// CheckHubBusPolicy reads the bus policy statement by statement. Every Allow must be as narrow
// as the one the hub deploys: any principal (the spokes' accounts are not listed) but only a
// kmsfix-forward role of the organization, and only PutEvents of CloudTrail KMS events.
// EventBridge documents Principal "*" with an aws:PrincipalOrgID condition for an organization,
// the condition keys aws:PrincipalOrgID, aws:PrincipalArn, events:source and
// events:detail-type in a bus policy, and that the senders' rules then need a role
// (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html).
func CheckHubBusPolicy(bus *eventbridge.DescribeEventBusOutput, org *config.Org, region string) (principalCheck, eventCheck Check) {
	principalCheck = Check{Name: NameHubBusPrincipals}
	eventCheck = Check{Name: NameHubBusEvents}
	fix := hubBusPolicyFix(org, region)
	raw := aws.ToString(bus.Policy)
	if raw == "" {
		principalCheck.Status, principalCheck.Detail, principalCheck.Fix = Fail, "the bus has no policy: no spoke can put events on it", fix
		return principalCheck, skipped(NameHubBusEvents, "no policy")
	}
	doc, err := parsePolicy(raw)
	if err != nil {
		principalCheck.Status, principalCheck.Detail, principalCheck.Fix = Fail, "cannot read the bus policy: "+err.Error(), fix
		return principalCheck, skipped(NameHubBusEvents, "policy not readable")
	}
	partition := arnPartition(org.HubBusARN)
	forwardAny := "arn:" + partition + ":iam::*:role/" + config.ForwardRoleName
	isForwardRole := func(v string) bool {
		if v == forwardAny {
			return true
		}
		acct, ok := strings.CutPrefix(v, "arn:"+partition+":iam::")
		acct, ok2 := strings.CutSuffix(acct, ":role/"+config.ForwardRoleName)
		return ok && ok2 && config.IsAccountID(acct)
	}
	var principalProblems, eventProblems []string
	allows := 0
	for i, s := range doc.Statement {
		if s.Effect != "Allow" {
			continue
		}
		allows++
		name := stmtName(s, i)
		var notPrincipal string
		if s.NotPrincipal != nil {
			notPrincipal = "uses NotPrincipal"
		}
		if p := problems(name, notPrincipal,
			requireCondition(s, "aws:PrincipalOrgID", []string{"StringEquals"}, func(v string) bool { return v == org.ID }, org.ID),
			requireCondition(s, "aws:PrincipalArn", []string{"ArnLike", "ArnEquals", "StringLike", "StringEquals"}, isForwardRole, forwardAny),
		); p != "" {
			principalProblems = append(principalProblems, p+" (principals "+strings.Join(principals(s), ", ")+")")
		}
		if p := problems(name, onlyActions(s, "events:putevents"),
			requireCondition(s, "events:source", []string{"StringEquals"}, func(v string) bool { return v == "aws.kms" }, "aws.kms"),
			requireCondition(s, "events:detail-type", []string{"StringEquals"}, func(v string) bool { return v == cloudTrailDetailType }, cloudTrailDetailType),
		); p != "" {
			eventProblems = append(eventProblems, p)
		}
	}
	if allows == 0 {
		principalCheck.Status, principalCheck.Detail, principalCheck.Fix = Fail, "no Allow statement: no spoke can put events on the bus", fix
		return principalCheck, skipped(NameHubBusEvents, "no Allow statement")
	}
	principalCheck.Status, principalCheck.Detail = Pass, fmt.Sprintf("%d statement(s): only %s roles of %s", allows, config.ForwardRoleName, org.ID)
	if len(principalProblems) > 0 {
		principalCheck.Status, principalCheck.Detail, principalCheck.Fix = Fail, strings.Join(principalProblems, " | "), fix
	}
	eventCheck.Status, eventCheck.Detail = Pass, "only events:PutEvents of source aws.kms, detail-type "+cloudTrailDetailType
	if len(eventProblems) > 0 {
		eventCheck.Status, eventCheck.Detail, eventCheck.Fix = Fail, strings.Join(eventProblems, " | "), fix
	}
	return principalCheck, eventCheck
}

// HubBusStatement is the statement the hub deploys on its bus (infra/org.go newHubBus); the
// infra test checks that the doctor passes on what the template renders.
func HubBusStatement(org *config.Org) map[string]any {
	return map[string]any{
		"Sid":       "kmsfix-denials-from-org-spokes",
		"Effect":    "Allow",
		"Principal": "*",
		"Action":    "events:PutEvents",
		"Resource":  org.HubBusARN,
		"Condition": map[string]any{
			"StringEquals": map[string]any{
				"aws:PrincipalOrgID": org.ID,
				"events:source":      "aws.kms",
				"events:detail-type": cloudTrailDetailType,
			},
			"ArnLike": map[string]any{
				"aws:PrincipalArn": "arn:" + arnPartition(org.HubBusARN) + ":iam::*:role/" + config.ForwardRoleName,
			},
		},
	}
}

func hubBusPolicyFix(org *config.Org, region string) string {
	return fmt.Sprintf("redeploy the hub (cdk deploy KmsfixHub restores its HubBusPolicy), and remove any other statement:\n"+
		"aws events remove-permission --region %s --event-bus-name %s --statement-id SID\n"+
		"the one statement the hub deploys: %s",
		quote.Shell(region), config.HubBusName, compactJSON(HubBusStatement(org)))
}

// CheckHubMode passes when the function serves the configured organization through the
// spokes' roles: KMSFIX_HUB_ORG_ID is the organization, and it runs as the role the spokes'
// roles trust by its exact ARN.
func CheckHubMode(fn *FunctionInfo, org *config.Org) Check {
	c := Check{Name: NameHubMode}
	var wrong []string
	switch got := fn.Env["KMSFIX_HUB_ORG_ID"]; got {
	case org.ID:
	case "":
		wrong = append(wrong, "KMSFIX_HUB_ORG_ID is not set: the function is not in hub mode and reads every account with its own credentials")
	default:
		wrong = append(wrong, fmt.Sprintf("KMSFIX_HUB_ORG_ID is %s, not %s", got, org.ID))
	}
	if fn.Role != org.HubRoleARN {
		wrong = append(wrong, fmt.Sprintf("the function runs as %s; the spokes' roles trust only %s", fn.Role, org.HubRoleARN))
	}
	if len(wrong) > 0 {
		c.Status, c.Detail = Fail, strings.Join(wrong, "; ")
		c.Fix = "redeploy the hub with the organization's parameters (docs/org.md, Deploy): make deploy CDK_ARGS=\"-c deployment=org -c orgId=" +
			quote.Shell(org.ID) + " ... KmsfixHub\""
		return c
	}
	c.Status, c.Detail = Pass, fmt.Sprintf("KMSFIX_HUB_ORG_ID=%s, role %s", org.ID, config.HubRoleName)
	return c
}

// arnPartition is an ARN's partition ("aws" when it cannot be read).
func arnPartition(arn string) string {
	if p := strings.SplitN(arn, ":", 3); len(p) == 3 && p[1] != "" {
		return p[1]
	}
	return config.HubPartition
}

// policyJSON renders a policy document for a command line.
func policyJSON(statements ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	return string(b)
}
