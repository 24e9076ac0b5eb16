package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/eventpattern"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// Check names of `kmsfix doctor --spoke`, in table order.
const (
	NameSpokeRuleExists   = "spoke rule exists"
	NameSpokeRuleState    = "spoke rule state"
	NameSpokeRulePattern  = "spoke rule pattern"
	NameSpokeTarget       = "spoke rule targets hub bus"
	NameSpokeDelivery     = "spoke target retries and DLQ"
	NameForwardTrust      = "forward role trust"
	NameForwardPermission = "forward role permissions"
	NameReaderTrust       = "reader role trust"
	NameReaderPermission  = "reader role read-only"
	NameApplyTrust        = "apply role trust"
	NameApplyPermission   = "apply role fenced"
)

// SpokeOptions say what a spoke should be.
type SpokeOptions struct {
	Region  string
	Account string // the member account the doctor runs in
	Org     *config.Org
	// Rule is the spoke rule's name; empty: the rule on the default bus whose target is the
	// hub's bus, else the one named *KmsDenialRule*.
	Rule string
	// Sandbox says whether the account is in a sandbox OU (the apply role belongs there
	// only); nil: not known, the apply role is checked if present.
	Sandbox *bool
}

// SpokeClients are the SDK clients of the spoke checks.
type SpokeClients struct {
	EventBridge RuleAPI
	IAM         RoleAPI
}

// RunSpoke checks a spoke in a member account and Region: the rule that forwards denials to
// the hub's bus and its delivery settings, and the roles of the spoke (forwarding, reader,
// apply). The roles are global: the account's spoke of the hub's Region creates them and every
// Region's rule uses the forwarding role by its fixed name, so their checks read the same IAM
// roles whichever Region the doctor runs in.
func RunSpoke(ctx context.Context, c SpokeClients, o SpokeOptions) []Check {
	var out []Check
	rule, exists := findSpokeRule(ctx, c.EventBridge, o)
	out = append(out, exists)
	if rule == nil {
		out = append(out, skippedAll("no rule", NameSpokeRuleState, NameSpokeRulePattern, NameSpokeTarget, NameSpokeDelivery)...)
	} else {
		out = append(out, renamed(CheckRuleState(rule), NameSpokeRuleState), CheckSpokePattern(rule, o.Account))
		out = append(out, checkSpokeTargets(ctx, c.EventBridge, rule, o)...)
	}
	out = append(out, checkForwardRole(ctx, c.IAM, o)...)
	out = append(out, checkReaderRole(ctx, c.IAM, o)...)
	return append(out, checkApplyRole(ctx, c.IAM, o)...)
}

// findSpokeRule finds the spoke's rule on the default bus: by name, else the rule whose target
// is the hub's bus, else the one the spoke template names *-KmsDenialRule-* (a StackSet
// instance's stack is StackSet-kmsfix-spokes-<id>, so its rule name has that prefix).
func findSpokeRule(ctx context.Context, api RuleAPI, o SpokeOptions) (*eventbridge.DescribeRuleOutput, Check) {
	c := Check{Name: NameSpokeRuleExists}
	bus := aws.String("default")
	describe := func(name string) (*eventbridge.DescribeRuleOutput, Check) {
		r, err := api.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name), EventBusName: bus})
		if err != nil && !isNotFound(err) {
			return nil, cannotRead(c, "rule "+name, err, "events:DescribeRule")
		}
		if err != nil {
			return nil, missingSpokeRule(c, o, fmt.Sprintf("no rule %s on the default bus", name))
		}
		c.Status, c.Detail = Pass, name+" on the default bus"
		return r, c
	}
	if o.Rule != "" {
		return describe(o.Rule)
	}
	byTarget, err := api.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(o.Org.HubBusARN), EventBusName: bus})
	if err != nil {
		return nil, cannotRead(c, "rules targeting the hub bus", err, "events:ListRuleNamesByTarget")
	}
	names := byTarget.RuleNames
	if len(names) == 0 {
		// A rule whose target is wrong is still the spoke's rule: found by its name.
		in := &eventbridge.ListRulesInput{EventBusName: bus}
		for {
			page, err := api.ListRules(ctx, in)
			if err != nil {
				return nil, cannotRead(c, "rules of the default bus", err, "events:ListRules")
			}
			for _, r := range page.Rules {
				if n := aws.ToString(r.Name); strings.Contains(n, "-KmsDenialRule") {
					names = append(names, n)
				}
			}
			if aws.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	if len(names) == 0 {
		return nil, missingSpokeRule(c, o, "no rule on the default bus targets "+o.Org.HubBusARN+" or is named *-KmsDenialRule*")
	}
	r, c := describe(names[0])
	if r != nil && len(names) > 1 {
		c.Status = Warn
		c.Detail += fmt.Sprintf("; %d candidate rules (%s), checking the first: pass --rule", len(names), strings.Join(names, ", "))
	}
	return r, c
}

func missingSpokeRule(c Check, o SpokeOptions, detail string) Check {
	c.Status, c.Detail = Fail, detail+": this account's denials do not reach the hub"
	c.Fix = fmt.Sprintf("add this account's OU to the StackSet (-c spokeTargets, then redeploy KmsfixSpokes), or deploy the spoke here: "+
		"make deploy CDK_ARGS=\"-c deployment=org -c orgId=%s ... KmsfixSpoke\"", quote.Shell(o.Org.ID))
	return c
}

// CheckSpokePattern passes when the rule's pattern is exactly the one pattern
// (eventpattern.KMSDenial) plus the spoke's own account: the hub then receives exactly what a
// single-account stack would.
func CheckSpokePattern(r *eventbridge.DescribeRuleOutput, account string) Check {
	c := Check{Name: NameSpokeRulePattern}
	var got, want map[string]any
	if err := json.Unmarshal([]byte(eventpattern.KMSDenial), &want); err != nil {
		panic(err) // a constant
	}
	want["account"] = []any{account}
	err := json.Unmarshal([]byte(aws.ToString(r.EventPattern)), &got)
	switch {
	case err != nil:
		c.Detail = "the pattern is not a JSON object: " + err.Error()
	case reflect.DeepEqual(got, want):
		c.Status, c.Detail = Pass, "the one denial pattern, account "+account
		return c
	default:
		var diff []string
		for k := range merged(got, want) {
			if !reflect.DeepEqual(got[k], want[k]) {
				diff = append(diff, fmt.Sprintf("%s is %s, want %s", k, compactJSON(got[k]), compactJSON(want[k])))
			}
		}
		slices.Sort(diff)
		c.Detail = strings.Join(diff, "; ")
	}
	c.Status = Fail
	c.Fix = fmt.Sprintf("redeploy the spoke (the StackSet restores it), or:\naws events put-rule --name %s --event-bus-name default --state %s --event-pattern %s",
		quote.Shell(aws.ToString(r.Name)), RuleState, quote.Shell(compactJSON(want)))
	return c
}

// checkSpokeTargets: the rule's one target is the hub's bus with this account's forwarding
// role (EventBridge needs a role for a bus in another account of an organization:
// https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html), a
// retry policy and a dead-letter queue, so an event the hub cannot take is kept
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
func checkSpokeTargets(ctx context.Context, api TargetLister, r *eventbridge.DescribeRuleOutput, o SpokeOptions) []Check {
	tc, dc := Check{Name: NameSpokeTarget}, Check{Name: NameSpokeDelivery}
	out, err := api.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: r.Name, EventBusName: aws.String(busName(r))})
	if err != nil {
		return []Check{cannotRead(tc, "rule's targets", err, "events:ListTargetsByRule"), skipped(NameSpokeDelivery, "targets not read")}
	}
	roleARN := config.RoleARN(arnPartition(o.Org.HubBusARN), o.Account, config.ForwardRoleName)
	want := fmt.Sprintf("Id=HubBus,Arn=%s,RoleArn=%s,DeadLetterConfig={Arn=QUEUE_ARN},RetryPolicy={MaximumRetryAttempts=185,MaximumEventAgeInSeconds=86400}", o.Org.HubBusARN, roleARN)
	fix := fmt.Sprintf("redeploy the spoke (the StackSet restores it), or:\naws events put-targets --rule %s --event-bus-name default --targets %s",
		quote.Shell(aws.ToString(r.Name)), quote.Shell(want))
	var hub *ebtypes.Target
	var others []string
	for i, t := range out.Targets {
		if aws.ToString(t.Arn) == o.Org.HubBusARN && hub == nil {
			hub = &out.Targets[i]
			continue
		}
		others = append(others, aws.ToString(t.Arn))
	}
	var wrong []string
	switch {
	case hub == nil && len(others) == 0:
		wrong = append(wrong, "the rule has no target")
	case hub == nil:
		wrong = append(wrong, fmt.Sprintf("targets %s, not the hub bus %s", strings.Join(others, ", "), o.Org.HubBusARN))
	case len(others) > 0:
		wrong = append(wrong, "also targets "+strings.Join(others, ", "))
	}
	if hub != nil && aws.ToString(hub.RoleArn) != roleARN {
		if aws.ToString(hub.RoleArn) == "" {
			wrong = append(wrong, "no RoleArn: EventBridge needs a role to put events on a bus of another account")
		} else {
			wrong = append(wrong, fmt.Sprintf("RoleArn is %s, not %s", aws.ToString(hub.RoleArn), roleARN))
		}
	}
	if len(wrong) > 0 {
		tc.Status, tc.Detail, tc.Fix = Fail, strings.Join(wrong, "; "), fix
	} else {
		tc.Status, tc.Detail = Pass, fmt.Sprintf("%s as %s", o.Org.HubBusARN, config.ForwardRoleName)
	}
	if hub == nil {
		return []Check{tc, skipped(NameSpokeDelivery, "no hub target")}
	}
	var missing []string
	if hub.RetryPolicy == nil || aws.ToInt32(hub.RetryPolicy.MaximumRetryAttempts) == 0 {
		missing = append(missing, "no retry policy (an event the hub throttles is dropped)")
	}
	if hub.DeadLetterConfig == nil || aws.ToString(hub.DeadLetterConfig.Arn) == "" {
		missing = append(missing, "no dead-letter queue (an event that cannot be delivered is lost without a trace)")
	}
	if len(missing) > 0 {
		dc.Status, dc.Detail, dc.Fix = Fail, strings.Join(missing, "; "), fix
	} else {
		dc.Status = Pass
		dc.Detail = fmt.Sprintf("%d retries over %ds, dead letters to %s", aws.ToInt32(hub.RetryPolicy.MaximumRetryAttempts),
			aws.ToInt32(hub.RetryPolicy.MaximumEventAgeInSeconds), aws.ToString(hub.DeadLetterConfig.Arn))
	}
	return []Check{tc, dc}
}

func merged(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
