package main

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config holds the deployment parameters. Each one comes from CDK context (`-c name=value` or
// cdk.json) or, when the context does not set it, from the environment variable in Params.
type Config struct {
	SlackSecretARN      string        // complete ARN of the secret holding the Slack webhook URL
	SlackSecretKeyARN   string        // customer managed key of that secret, when it has one
	NotifyEmails        []string      // e-mail subscriptions to the topic
	Mode                string        // "notify" or "apply"
	SandboxAccounts     []string      // accounts where apply mode may change policies
	ApplyDiagnoses      string        // passed through to the function (it owns the vocabulary)
	ApplyExpiry         time.Duration // lifetime of an automatic change
	DryRun              bool          // apply mode logs the calls it would make
	DedupeWindow        time.Duration // one notification per fingerprint per window
	PropagationWindow   time.Duration // hold-back after an automatic change
	KeyOwnerBuses       []Bus         // where key-policy change requests are sent (caller side)
	TrustedAccounts     []string      // accounts whose requests are accepted (key-owner side)
	TrustedOrgID        string        // or: any account of this organization
	ReservedConcurrency int
	LogRetentionDays    int
	CreateTrail         bool // create a trail for an account that has none
}

// Bus is one entry of keyOwnerBuses: the key-owner account ("*" for any) and its bus ARN.
type Bus struct {
	Account string
	ARN     string
}

// Param describes one deployment parameter.
type Param struct {
	Context, Env, Default, Help string
}

// Params is the parameter table, also rendered in docs/deploy.md.
var Params = []Param{
	{"slackSecretArn", "KMSFIX_SLACK_SECRET_ARN", "", "complete ARN of the Secrets Manager secret with the Slack webhook URL; empty: no Slack"},
	{"slackSecretKeyArn", "KMSFIX_SLACK_SECRET_KEY_ARN", "", "ARN of the customer managed KMS key encrypting that secret, if not aws/secretsmanager"},
	{"notifyEmails", "KMSFIX_NOTIFY_EMAILS", "", "comma-separated e-mail addresses subscribed to the SNS topic"},
	{"mode", "KMSFIX_MODE", "notify", "notify (report only) or apply (may fix in sandbox accounts)"},
	{"sandboxAccounts", "KMSFIX_SANDBOX_ACCOUNTS", "", "comma-separated 12-digit accounts where apply mode may change policies; required with mode=apply"},
	{"applyDiagnoses", "KMSFIX_APPLY_DIAGNOSES", "", "diagnosis codes that may be applied (empty: the function's default)"},
	{"applyExpiry", "KMSFIX_APPLY_EXPIRY", "24h", "lifetime of an automatic change, 15m to 168h"},
	{"dryRun", "KMSFIX_DRY_RUN", "false", "apply mode only logs the calls it would make"},
	{"dedupeWindow", "KMSFIX_DEDUPE_WINDOW", "1h", "one notification per finding per window, 1m to 168h"},
	{"propagationWindow", "KMSFIX_PROPAGATION_WINDOW", "10m", "after an automatic change, hold back the same finding, 0 to 24h"},
	{"keyOwnerBuses", "KMSFIX_KEY_OWNER_BUSES", "", "caller side: ACCOUNT=busARN,... and/or *=busARN (an account's own entry wins) to send key-policy change requests to"},
	{"trustedAccounts", "KMSFIX_TRUSTED_ACCOUNTS", "", "key-owner side: comma-separated accounts allowed to send key-policy change requests"},
	{"trustedOrgId", "KMSFIX_TRUSTED_ORG_ID", "", "key-owner side: accept requests from any account of this organization (o-...)"},
	{"reservedConcurrency", "KMSFIX_RESERVED_CONCURRENCY", "5", "reserved concurrent executions of the function, 1 to 100"},
	{"logRetentionDays", "KMSFIX_LOG_RETENTION_DAYS", "365", "retention of the function's log group (a CloudWatch Logs value)"},
	{"createTrail", "KMSFIX_CREATE_TRAIL", "false", "create a CloudTrail trail (management events, KMS included) for an account without one"},
}

var (
	accountRe   = regexp.MustCompile(`^\d{12}$`)
	secretARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$`)
	keyARNRe    = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+$`)
	busARNRe    = regexp.MustCompile(`^arn:aws[a-z-]*:events:[a-z0-9-]+:(\d{12}):event-bus/[A-Za-z0-9._/-]+$`)
	orgIDRe     = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	diagnosisRe = regexp.MustCompile(`^[a-z][a-z-]*$`)
	retentions  = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

// LoadConfig reads every parameter through lookup (context first, then environment, then the
// default) and validates them all, reporting every problem at once.
func LoadConfig(lookup func(p Param) string) (Config, error) {
	var errs []error
	bad := func(p Param, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s (%s): %s", p.Context, p.Env, fmt.Sprintf(format, a...)))
	}
	get := func(name string) (Param, string) {
		for _, p := range Params {
			if p.Context == name {
				v := strings.TrimSpace(lookup(p))
				if v == "" {
					v = p.Default
				}
				return p, v
			}
		}
		panic("unknown parameter " + name)
	}
	list := func(v string) []string {
		var out []string
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	accounts := func(name string) []string {
		p, v := get(name)
		out := list(v)
		for _, a := range out {
			if !accountRe.MatchString(a) {
				bad(p, "%q is not a 12-digit account id", a)
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	duration := func(name string, lo, hi time.Duration) time.Duration {
		p, v := get(name)
		d, err := time.ParseDuration(v)
		if err != nil {
			bad(p, "%q is not a Go duration such as 30m or 24h", v)
			return 0
		}
		if d < lo || d > hi {
			bad(p, "%s is outside %s..%s", d, lo, hi)
		}
		return d
	}
	integer := func(name string) int {
		p, v := get(name)
		n, err := strconv.Atoi(v)
		if err != nil {
			bad(p, "%q is not an integer", v)
		}
		return n
	}
	boolean := func(name string) bool {
		p, v := get(name)
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(p, "%q is not true or false", v)
		}
		return b
	}

	var c Config
	if p, v := get("slackSecretArn"); v != "" {
		if !secretARNRe.MatchString(v) {
			// The value is not echoed: a webhook URL pasted here by mistake is itself the secret.
			bad(p, "not a complete secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX; "+
				"`aws secretsmanager describe-secret --secret-id NAME --query ARN` prints it); the value is not shown")
		}
		c.SlackSecretARN = v
	}
	if p, v := get("slackSecretKeyArn"); v != "" {
		if !keyARNRe.MatchString(v) {
			bad(p, "%q is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", v)
		}
		if c.SlackSecretARN == "" {
			bad(p, "set only together with slackSecretArn")
		}
		c.SlackSecretKeyARN = v
	}
	if p, v := get("notifyEmails"); v != "" {
		for _, e := range list(v) {
			a, err := mail.ParseAddress(e)
			if err != nil || a.Address != e {
				bad(p, "%q is not a plain e-mail address", e)
				continue
			}
			c.NotifyEmails = append(c.NotifyEmails, e)
		}
	}
	p, mode := get("mode")
	if mode != "notify" && mode != "apply" {
		bad(p, "%q: want notify or apply", mode)
	}
	c.Mode = mode
	c.SandboxAccounts = accounts("sandboxAccounts")
	if c.Mode == "apply" && len(c.SandboxAccounts) == 0 {
		p, _ := get("sandboxAccounts")
		bad(p, "mode=apply needs at least one sandbox account: changes are only ever made there")
	}
	if p, v := get("applyDiagnoses"); v != "" {
		for _, d := range list(v) {
			if !diagnosisRe.MatchString(d) {
				bad(p, "%q is not a diagnosis code", d)
			}
		}
		c.ApplyDiagnoses = strings.Join(list(v), ",")
	}
	c.ApplyExpiry = duration("applyExpiry", 15*time.Minute, 168*time.Hour)
	c.DryRun = boolean("dryRun")
	c.DedupeWindow = duration("dedupeWindow", time.Minute, 168*time.Hour)
	c.PropagationWindow = duration("propagationWindow", 0, 24*time.Hour)

	if p, v := get("keyOwnerBuses"); v != "" {
		seen := map[string]bool{}
		for _, entry := range list(v) {
			acct, arn, ok := strings.Cut(entry, "=")
			m := busARNRe.FindStringSubmatch(arn)
			switch {
			case !ok:
				bad(p, "%q: want ACCOUNT=busARN or *=busARN", entry)
			case acct != "*" && !accountRe.MatchString(acct):
				bad(p, "%q: %q is not a 12-digit account id or *", entry, acct)
			case m == nil:
				bad(p, "%q: %q is not an event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)", entry, arn)
			case acct != "*" && m[1] != acct:
				bad(p, "%q: the bus belongs to account %s, not %s", entry, m[1], acct)
			case seen[acct]:
				bad(p, "%q: account %s listed twice", entry, acct)
			default:
				seen[acct] = true
				c.KeyOwnerBuses = append(c.KeyOwnerBuses, Bus{Account: acct, ARN: arn})
			}
		}
	}
	c.TrustedAccounts = accounts("trustedAccounts")
	if p, v := get("trustedOrgId"); v != "" {
		if !orgIDRe.MatchString(v) {
			bad(p, "%q is not an organization id (o-...)", v)
		}
		c.TrustedOrgID = v
	}

	c.ReservedConcurrency = integer("reservedConcurrency")
	if c.ReservedConcurrency < 1 || c.ReservedConcurrency > 100 {
		p, _ := get("reservedConcurrency")
		bad(p, "%d is outside 1..100", c.ReservedConcurrency)
	}
	c.LogRetentionDays = integer("logRetentionDays")
	if !slices.Contains(retentions, c.LogRetentionDays) {
		p, _ := get("logRetentionDays")
		bad(p, "%d is not a CloudWatch Logs retention; one of %v", c.LogRetentionDays, retentions)
	}
	c.CreateTrail = boolean("createTrail")

	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid kmsfix parameters:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// KeyOwnerBusesEnv renders KeyOwnerBuses in the KMSFIX_KEY_OWNER_BUSES format.
func (c Config) KeyOwnerBusesEnv() string {
	parts := make([]string, len(c.KeyOwnerBuses))
	for i, b := range c.KeyOwnerBuses {
		parts[i] = b.Account + "=" + b.ARN
	}
	return strings.Join(parts, ",")
}

// AcceptsRequests reports whether this deployment is a key owner that accepts key-policy change
// requests from other accounts.
func (c Config) AcceptsRequests() bool {
	return len(c.TrustedAccounts) > 0 || c.TrustedOrgID != ""
}
