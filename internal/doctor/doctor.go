// Package doctor checks that an account and Region are set up for the remediator's events to
// arrive and its alerts to go out: a logging trail that records KMS read-only management
// events, the EventBridge rule in the state that receives them and targeting the function, an
// empty dead-letter queue, a readable Slack secret. Each check is a small function over the
// one or two SDK calls it needs, and each failure carries the exact fix.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/kmsfix/kmsfix/internal/quote"
)

// Status of one check.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL" // events or alerts cannot arrive: the exit status is non-zero
	Warn Status = "WARN" // something to look at that does not stop delivery on its own
	Skip Status = "SKIP" // not applicable, or an earlier check failed
)

// Check is one row of the doctor's table.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Check names, in table order.
const (
	NameTrailLogging   = "trail logging"
	NameTrailSelectors = "trail records KMS reads"
	NameRuleExists     = "rule exists"
	NameRuleState      = "rule state"
	NameRulePattern    = "rule pattern"
	NameRuleTarget     = "rule targets function"
	NameFunction       = "function active"
	NameDeadLetters    = "dead-letter queue empty"
	NameSlackSecret    = "Slack secret readable"
)

// Options say what to check; zero values are discovered.
type Options struct {
	Region string
	// Rule is the EventBridge rule's name; empty: found by the stack's naming convention
	// (<Stack>-KmsDenialRule...), then among the rules targeting Function.
	Rule     string
	EventBus string // default "default"
	Stack    string // CloudFormation stack name, default "Kmsfix"
	// Function is the remediator's name or ARN; empty: the rule's Lambda target.
	Function string
	// DeadLetterQueues are queue URLs; empty: the rule target's and the function's.
	DeadLetterQueues []string
	// SlackSecret is the secret ARN; empty: the function's KMSFIX_SLACK_SECRET_ARN.
	SlackSecret string
}

// Clients are the SDK clients the checks use; *cloudtrail.Client, *eventbridge.Client,
// *lambda.Client, *sqs.Client and *secretsmanager.Client satisfy them.
type Clients struct {
	CloudTrail  TrailAPI
	EventBridge RuleAPI
	Lambda      FunctionAPI
	SQS         QueueAPI
	Secrets     SecretAPI
}

// Run runs every check in order; a check that depends on an earlier one that failed is
// skipped with the reason.
func Run(ctx context.Context, c Clients, o Options) []Check {
	if o.EventBus == "" {
		o.EventBus = "default"
	}
	if o.Stack == "" {
		o.Stack = "Kmsfix"
	}
	var out []Check

	logging, trails := CheckTrailLogging(ctx, c.CloudTrail, o.Region)
	out = append(out, logging)
	if logging.Status == Fail && len(trails) == 0 {
		out = append(out, skipped(NameTrailSelectors, "no trail"))
	} else {
		out = append(out, CheckTrailSelectors(ctx, c.CloudTrail, o.Region, trails))
	}

	rules, rule, target, fn := checkRuleToFunction(ctx, c.EventBridge, c.Lambda, o)
	out = append(out, rules...)

	queues := o.DeadLetterQueues
	var queueARNs []string
	if len(queues) == 0 {
		queueARNs = append(queueARNs, target.DeadLetterARNs...)
		if fn != nil {
			queueARNs = append(queueARNs, fn.DeadLetterARNs...)
		}
	}
	out = append(out, CheckDeadLetters(ctx, c.SQS, queues, queueARNs, rule, fn))

	secret := o.SlackSecret
	if secret == "" && fn != nil {
		secret = fn.Env["KMSFIX_SLACK_SECRET_ARN"]
	}
	out = append(out, CheckSlackSecret(ctx, c.Secrets, secret, fn != nil))
	return out
}

// checkRuleToFunction finds the rule and checks its state, pattern and target, then the
// function (o.Function, else the rule's Lambda target): five checks in table order, shared by
// the single-account doctor and the hub's. The rule (nil when not found), what its targets say
// and the function (nil when not found) are for the later checks.
func checkRuleToFunction(ctx context.Context, rules RuleAPI, fns FunctionAPI, o Options) ([]Check, *eventbridge.DescribeRuleOutput, TargetInfo, *FunctionInfo) {
	rule, exists := FindRule(ctx, rules, fns, o)
	out := []Check{exists}
	var t TargetInfo
	name := o.Function
	if rule == nil {
		out = append(out, skippedAll("no rule", NameRuleState, NameRulePattern, NameRuleTarget)...)
	} else {
		var target Check
		target, t = CheckRuleTarget(ctx, rules, rule, o.Function)
		out = append(out, CheckRuleState(rule), CheckRulePattern(rule), target)
		if name == "" {
			name = t.FunctionARN
		}
	}
	fnCheck, fn := CheckFunction(ctx, fns, name, o.Region)
	return append(out, fnCheck), rule, t, fn
}

func skipped(name, why string) Check {
	return Check{Name: name, Status: Skip, Detail: "skipped: " + why}
}

// skippedAll skips each of names for the same reason.
func skippedAll(why string, names ...string) []Check {
	out := make([]Check, len(names))
	for i, n := range names {
		out[i] = skipped(n, why)
	}
	return out
}

// Failed says whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// WriteTable prints one row per check, and under each failure or warning its fix.
func WriteTable(w io.Writer, checks []Check) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
	for _, c := range checks {
		// Details and fixes quote names and values AWS returned: quote.Text keeps each line
		// one line, with no escape sequence for the terminal.
		fmt.Fprintf(tw, "%s\t%s\t%s\n", quote.Text(c.Name), c.Status, quote.Text(c.Detail))
		if c.Fix != "" {
			for i, line := range strings.Split(c.Fix, "\n") {
				label := "  "
				if i == 0 {
					label = "  fix:"
				}
				fmt.Fprintf(tw, "%s\t\t%s\n", label, quote.Text(line))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := map[Status]int{}
	for _, c := range checks {
		counts[c.Status]++
	}
	_, err := fmt.Fprintf(w, "%d passed, %d failed, %d warnings, %d skipped\n", counts[Pass], counts[Fail], counts[Warn], counts[Skip])
	return err
}

// WriteJSON prints the checks as one JSON array.
func WriteJSON(w io.Writer, checks []Check) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(checks)
}

// compactJSON renders v as one line of JSON for a command line.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
