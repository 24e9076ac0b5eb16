package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/kmsfix/kmsfix/internal/eventpattern"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// RuleState is the rule state that delivers read-only management events such as kms:Decrypt.
const RuleState = ebtypes.RuleStateEnabledWithAllCloudtrailManagementEvents

// StackPattern is the event pattern the stack gives its rule, for the fix of a rule that does
// not exist or does not match.
const StackPattern = eventpattern.KMSDenial

// RuleAPI is the EventBridge calls of the rule checks.
type RuleAPI interface {
	RuleDescriber
	RuleLister
	TargetLister
}

type RuleDescriber interface {
	DescribeRule(ctx context.Context, in *eventbridge.DescribeRuleInput, optFns ...func(*eventbridge.Options)) (*eventbridge.DescribeRuleOutput, error)
}

type RuleLister interface {
	ListRules(ctx context.Context, in *eventbridge.ListRulesInput, optFns ...func(*eventbridge.Options)) (*eventbridge.ListRulesOutput, error)
	ListRuleNamesByTarget(ctx context.Context, in *eventbridge.ListRuleNamesByTargetInput, optFns ...func(*eventbridge.Options)) (*eventbridge.ListRuleNamesByTargetOutput, error)
}

type TargetLister interface {
	ListTargetsByRule(ctx context.Context, in *eventbridge.ListTargetsByRuleInput, optFns ...func(*eventbridge.Options)) (*eventbridge.ListTargetsByRuleOutput, error)
}

// FindRule finds the remediator's rule: by name (o.Rule), else by the stack's naming
// convention (CloudFormation names it <Stack>-KmsDenialRule<hash>-<suffix>), else among the
// rules targeting o.Function the one for aws.kms events.
func FindRule(ctx context.Context, api RuleAPI, fns FunctionGetter, o Options) (*eventbridge.DescribeRuleOutput, Check) {
	c := Check{Name: NameRuleExists}
	bus := aws.String(o.EventBus)
	describe := func(name string) (*eventbridge.DescribeRuleOutput, error) {
		return api.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name), EventBusName: bus})
	}
	missing := func(detail string) (*eventbridge.DescribeRuleOutput, Check) {
		name := o.Rule
		if name == "" {
			name = "kmsfix-kms-denials"
		}
		c.Status, c.Detail = Fail, detail
		c.Fix = fmt.Sprintf("deploy the stack (cdk deploy), or create the rule by hand:\n"+
			"aws events put-rule --region %s --name %s --event-bus-name %s --state %s --event-pattern %s",
			quote.Shell(o.Region), quote.Shell(name), quote.Shell(o.EventBus), RuleState, quote.Shell(StackPattern))
		return nil, c
	}

	if o.Rule != "" {
		r, err := describe(o.Rule)
		if isNotFound(err) {
			return missing(fmt.Sprintf("no rule %q on event bus %q", o.Rule, o.EventBus))
		}
		if err != nil {
			return nil, cannotRead(c, "rule", err, "events:DescribeRule")
		}
		c.Status, c.Detail = Pass, fmt.Sprintf("%s on event bus %s", o.Rule, o.EventBus)
		return r, c
	}

	prefix := o.Stack + "-KmsDenialRule"
	out, listErr := api.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String(prefix), EventBusName: bus})
	if listErr == nil && len(out.Rules) > 0 {
		name := aws.ToString(out.Rules[0].Name)
		r, err := describe(name)
		if err != nil {
			return nil, cannotRead(c, "rule", err, "events:DescribeRule")
		}
		c.Status, c.Detail = Pass, fmt.Sprintf("%s on event bus %s (found by the prefix %s)", name, o.EventBus, prefix)
		if len(out.Rules) > 1 {
			c.Status = Warn
			c.Detail += fmt.Sprintf("; %d rules share the prefix, checking the first: pass --rule", len(out.Rules))
		}
		return r, c
	}

	// Not found by name (or ListRules refused): the rules that target the function.
	if o.Function != "" && fns != nil {
		fn, err := fns.GetFunction(ctx, lambdaGetFunction(o.Function))
		if err == nil && fn.Configuration != nil {
			names, err := api.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: fn.Configuration.FunctionArn, EventBusName: bus})
			if err != nil {
				return nil, cannotRead(c, "rules targeting the function", err, "events:ListRuleNamesByTarget")
			}
			for _, name := range names.RuleNames {
				r, err := describe(name)
				if err == nil && strings.Contains(aws.ToString(r.EventPattern), "aws.kms") {
					c.Status, c.Detail = Pass, fmt.Sprintf("%s on event bus %s (a rule for aws.kms targeting %s)", name, o.EventBus, o.Function)
					return r, c
				}
			}
		}
	}
	if listErr != nil {
		return nil, cannotRead(c, "rules (looking for "+prefix+"*; or pass --rule NAME)", listErr, "events:ListRules")
	}
	return missing(fmt.Sprintf("no rule named %s* on event bus %q (pass --rule NAME or --stack NAME)", prefix, o.EventBus))
}

// CheckRuleState passes when the rule receives read-only management events: Decrypt and
// GenerateDataKey are read-only, and a rule in state ENABLED may not see them.
func CheckRuleState(r *eventbridge.DescribeRuleOutput) Check {
	c := Check{Name: NameRuleState}
	if r.State == RuleState {
		c.Status, c.Detail = Pass, string(r.State)
		return c
	}
	c.Status = Fail
	switch r.State {
	case ebtypes.RuleStateDisabled:
		c.Detail = "DISABLED: the rule matches nothing"
	case ebtypes.RuleStateEnabled:
		c.Detail = "ENABLED: read-only management events (kms:Decrypt, kms:GenerateDataKey) may not reach the rule"
	default:
		c.Detail = string(r.State)
	}
	// put-rule replaces the rule: repeat what it has, change only the state.
	cmd := fmt.Sprintf("aws events put-rule --name %s --event-bus-name %s --state %s --event-pattern %s",
		quote.Shell(aws.ToString(r.Name)), quote.Shell(busName(r)), RuleState, quote.Shell(aws.ToString(r.EventPattern)))
	if d := aws.ToString(r.Description); d != "" {
		cmd += " --description " + quote.Shell(d)
	}
	if role := aws.ToString(r.RoleArn); role != "" {
		cmd += " --role-arn " + quote.Shell(role)
	}
	c.Fix = cmd + "\n(the stack sets this state; a later `cdk deploy` keeps it)"
	return c
}

func busName(r *eventbridge.DescribeRuleOutput) string {
	if b := aws.ToString(r.EventBusName); b != "" {
		return b
	}
	return "default"
}

// sampleDenials are S3 KMS denials as EventBridge delivers them: the rule must match both.
var sampleDenials = []string{
	`{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],` +
		`"detail":{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","errorCode":"AccessDenied","readOnly":true,` +
		`"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s","invokedBy":"AWS Internal"},` +
		`"requestParameters":{"encryptionContext":{"aws:s3:arn":"arn:aws:s3:::bucket/object"}}}}`,
	`{"version":"0","id":"2","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"111122223333","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],` +
		`"detail":{"eventSource":"kms.amazonaws.com","eventName":"GenerateDataKey","errorCode":"AccessDenied","readOnly":true,` +
		`"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","invokedBy":"AWS Internal"},` +
		`"requestParameters":{"encryptionContext":{"aws:s3:arn":"arn:aws:s3:::bucket"}}}}`,
}

// CheckRulePattern passes when the rule's pattern matches S3 KMS denials (Decrypt for a read,
// GenerateDataKey for a write), evaluated offline with EventBridge's matching rules.
func CheckRulePattern(r *eventbridge.DescribeRuleOutput) Check {
	c := Check{Name: NameRulePattern}
	p, err := eventpattern.Compile([]byte(aws.ToString(r.EventPattern)))
	if err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("cannot evaluate the pattern here: %v", err)
		return c
	}
	var missed []string
	for i, ev := range sampleDenials {
		ok, err := p.Match([]byte(ev))
		if err != nil {
			c.Status, c.Detail = Warn, fmt.Sprintf("cannot evaluate the pattern here: %v", err)
			return c
		}
		if !ok {
			missed = append(missed, []string{"kms:Decrypt", "kms:GenerateDataKey"}[i])
		}
	}
	if len(missed) == 0 {
		c.Status, c.Detail = Pass, "matches S3 KMS denials of kms:Decrypt and kms:GenerateDataKey"
		return c
	}
	c.Status = Fail
	c.Detail = "does not match an S3 KMS denial of " + strings.Join(missed, " or ")
	c.Fix = fmt.Sprintf("deploy the stack (cdk deploy) to restore its pattern, or:\n"+
		"aws events put-rule --name %s --event-bus-name %s --state %s --event-pattern %s",
		quote.Shell(aws.ToString(r.Name)), quote.Shell(busName(r)), RuleState, quote.Shell(StackPattern))
	return c
}

// TargetInfo is what the rule's targets say about the function and its dead-letter queues.
type TargetInfo struct {
	FunctionARN    string
	DeadLetterARNs []string
}

// CheckRuleTarget passes when the rule targets the function (by name or ARN), or when no
// function is named, a Lambda function.
func CheckRuleTarget(ctx context.Context, api TargetLister, r *eventbridge.DescribeRuleOutput, function string) (Check, TargetInfo) {
	c := Check{Name: NameRuleTarget}
	var info TargetInfo
	out, err := api.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: r.Name, EventBusName: aws.String(busName(r))})
	if err != nil {
		return cannotRead(c, "rule's targets", err, "events:ListTargetsByRule"), info
	}
	var lambdas []string
	for _, t := range out.Targets {
		arn := aws.ToString(t.Arn)
		if !strings.Contains(arn, ":lambda:") {
			continue
		}
		lambdas = append(lambdas, arn)
		if function != "" && functionName(arn) != functionName(function) {
			continue
		}
		if info.FunctionARN == "" {
			info.FunctionARN = arn
			if t.DeadLetterConfig != nil && aws.ToString(t.DeadLetterConfig.Arn) != "" {
				info.DeadLetterARNs = append(info.DeadLetterARNs, aws.ToString(t.DeadLetterConfig.Arn))
			}
		}
	}
	if info.FunctionARN != "" {
		c.Status, c.Detail = Pass, "targets "+functionName(info.FunctionARN)
		return c, info
	}
	c.Status = Fail
	fn := function
	if fn == "" {
		fn = "FUNCTION_ARN"
	}
	if len(lambdas) > 0 {
		c.Detail = fmt.Sprintf("targets %s, not %s", strings.Join(lambdas, ", "), function)
	} else {
		c.Detail = fmt.Sprintf("%d target(s), none a Lambda function", len(out.Targets))
	}
	c.Fix = fmt.Sprintf("aws events put-targets --rule %s --event-bus-name %s --targets %s\n"+
		"aws lambda add-permission --function-name %s --statement-id kmsfix-events --action lambda:InvokeFunction --principal events.amazonaws.com --source-arn %s",
		quote.Shell(aws.ToString(r.Name)), quote.Shell(busName(r)), quote.Shell("Id=remediator,Arn="+fn+",DeadLetterConfig={Arn=QUEUE_ARN}"),
		quote.Shell(fn), quote.Shell(aws.ToString(r.Arn)))
	return c, info
}

// functionName is the function's name from a name, a partial or a full ARN (qualifier dropped).
func functionName(s string) string {
	if i := strings.Index(s, ":function:"); i >= 0 {
		s = s[i+len(":function:"):]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

func isNotFound(err error) bool {
	var nf *ebtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}
