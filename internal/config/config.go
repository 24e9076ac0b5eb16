// Package config is the one place that knows kmsfix's deployment parameters: their names (CDK
// context and environment variable), defaults, limits and validation. Two readers use it:
//
//   - the remediator Lambda, at cold start: Load(os.Getenv) reads the environment the stack set;
//   - the CDK app (infra/), at synth: LoadDeployment reads context, validates with the same rules
//     and Config.Environment renders the function's environment.
//
// Because both sides parse with the same code, a value `cdk synth` accepts is a value the
// function accepts (infra's stack test runs the synthesized environment through Load).
// docs/CONFIG.md and docs/deploy.md list the parameters.
package config

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// Modes.
const (
	ModeNotify = "notify"
	ModeApply  = "apply"
)

// Config is the validated configuration of the remediator Lambda.
type Config struct {
	Mode              string
	SandboxAccounts   []string // sorted, without duplicates
	ApplyDiagnoses    []finding.Code
	ApplyExpiry       time.Duration
	DryRun            bool
	SlackSecretARN    string // empty: no Slack
	TopicARN          string
	TableName         string
	DedupeWindow      time.Duration
	PropagationWindow time.Duration
	// KeyOwnerBuses maps a key-owner account (or "*") to the event bus that receives
	// key-policy requests for it.
	KeyOwnerBuses map[string]string
	// TrustedSenderRoles are the senders' remediator roles (exact IAM role ARNs, sorted, without
	// duplicates): the stack's bus policy admits events:PutEvents from these principals only.
	TrustedSenderRoles []string
	// TrustedAccounts are the accounts of TrustedSenderRoles (sorted, without duplicates): the
	// receiver checks the envelope's account against them, the request rule filters on them.
	TrustedAccounts []string
	// TrustedOrgID, with TrustedSenderRoles, adds aws:PrincipalOrgID to the bus policy: the
	// roles must also be of this organization. It admits no account on its own.
	TrustedOrgID      string
	RemediatorRoleARN string
	// MaxKeyStatements caps kmsfix's statements in one key policy (key-owner side): a request
	// that would add one more is refused, so requests cannot push a key policy toward its
	// 32 KB limit.
	MaxKeyStatements int
	// AuditKeyARN is the HMAC_256 KMS key that seals apply's audit records; apply mode
	// refuses every change without it (internal/apply, seal.go).
	AuditKeyARN string
	// HubOrgID is set in hub mode (docs/org.md): events of this organization's accounts are
	// served through each account's reader role; empty for the single-account stack.
	HubOrgID string
	// Routes send an account's findings to its own Slack secret and/or SNS topic
	// (KMSFIX_ROUTES, routes.go); accounts without a route use TopicARN and SlackSecretARN.
	Routes map[string]Route
	// OURoutes (by OU id) and TagRoutes (in their configured order) route the accounts under
	// an OU or carrying a tag; hub only (the Organizations API resolves them, internal/orgroute).
	OURoutes  map[string]Route
	TagRoutes []TagRoute
}

// Deployment is what the CDK app needs: the function's configuration (without the values the
// stack fills in from its own resources: topic, table, role) plus the stack-only parameters.
type Deployment struct {
	Function            Config
	SlackSecretKeyARN   string   // customer managed key of the Slack secret, when it has one
	NotifyEmails        []string // e-mail subscriptions to the topic
	ReservedConcurrency int
	LogRetentionDays    int
	CreateTrail         bool // create a trail for an account that has none
	// Org is the organization deployment (hub, spokes and their StackSet); nil for the
	// default single-account stack.
	Org *Org
}

// Scope says who sets a parameter.
type Scope int

const (
	// Function parameters are chosen by the deployer and passed to the function.
	Function Scope = iota
	// Stack parameters are set by the stack from its own resources; the deployer never gives them.
	Stack
	// Deployment parameters shape the stack only; the function never sees them.
	DeploymentOnly
)

// Param describes one parameter.
type Param struct {
	Context string // CDK context name; empty for Stack parameters
	Env     string // environment variable (the function's, or the CDK app's fallback)
	Default string // empty: none
	Help    string
	Scope   Scope
}

// The opt-in tag of apply mode: the stack lets the function change only roles, users and
// keys tagged AutoFixTagKey=AutoFixTagValue (docs/deploy.md); one definition for the stack's
// policy and the function's own checks.
const (
	AutoFixTagKey   = "kmsfix:auto-fix"
	AutoFixTagValue = "enabled"
)

// Limits (docs/deploy.md).
const (
	MinApplyExpiry       = 15 * time.Minute
	MaxApplyExpiry       = 168 * time.Hour
	MinDedupeWindow      = time.Minute
	MaxDedupeWindow      = 168 * time.Hour
	MinPropagationWindow = time.Minute
	MaxPropagationWindow = 24 * time.Hour
	MinConcurrency       = 1
	MaxConcurrency       = 100
)

// Params is the parameter table (docs/deploy.md and docs/CONFIG.md show it).
var Params = []Param{
	{"slackSecretArn", "KMSFIX_SLACK_SECRET_ARN", "", "complete ARN of the Secrets Manager secret with the Slack webhook URL; empty: no Slack", Function},
	{"slackSecretKeyArn", "KMSFIX_SLACK_SECRET_KEY_ARN", "", "ARN of the customer managed KMS key encrypting that secret, if not aws/secretsmanager", DeploymentOnly},
	{"notifyEmails", "KMSFIX_NOTIFY_EMAILS", "", "comma-separated e-mail addresses subscribed to the SNS topic", DeploymentOnly},
	{"mode", "KMSFIX_MODE", ModeNotify, "notify (report only) or apply (may fix in sandbox accounts)", Function},
	{"sandboxAccounts", "KMSFIX_SANDBOX_ACCOUNTS", "", "comma-separated 12-digit accounts where apply mode may change policies; required with mode=apply", Function},
	{"applyDiagnoses", "KMSFIX_APPLY_DIAGNOSES", "", "diagnosis codes that may be applied (empty: " + codesString(DefaultApplyDiagnoses) + ")", Function},
	{"applyExpiry", "KMSFIX_APPLY_EXPIRY", "24h", "lifetime of an automatic change, 15m to 168h", Function},
	{"dryRun", "KMSFIX_DRY_RUN", "false", "apply mode only logs the calls it would make", Function},
	{"dedupeWindow", "KMSFIX_DEDUPE_WINDOW", "1h", "one notification per finding per window, 1m to 168h", Function},
	{"propagationWindow", "KMSFIX_PROPAGATION_WINDOW", "10m", "after an automatic change, hold back the same finding, 1m to 24h", Function},
	{"keyOwnerBuses", "KMSFIX_KEY_OWNER_BUSES", "", "caller side: ACCOUNT=busARN,... and/or *=busARN (an account's own entry wins) to send key-policy change requests to", Function},
	{"trustedSenderRoles", "KMSFIX_TRUSTED_SENDER_ROLES", "", "key-owner side: comma-separated IAM role ARNs of the senders' remediators, the only principals the bus policy lets put key-policy change requests", Function},
	{"trustedAccounts", "KMSFIX_TRUSTED_ACCOUNTS", "", "key-owner side: the accounts of trustedSenderRoles (derived when empty; when set, must be exactly those accounts)", Function},
	{"trustedOrgId", "KMSFIX_TRUSTED_ORG_ID", "", "key-owner side: with trustedSenderRoles, also require the senders to be of this organization (o-...)", Function},
	{"maxKeyStatements", "KMSFIX_MAX_KEY_STATEMENTS", "5", "key-owner side: most kmsfix statements one key policy may hold before requests for it are refused, 1 to 50", Function},
	{"reservedConcurrency", "KMSFIX_RESERVED_CONCURRENCY", "5", "reserved concurrent executions of the function, 1 to 100", DeploymentOnly},
	{"logRetentionDays", "KMSFIX_LOG_RETENTION_DAYS", "365", "retention of the function's log group (a CloudWatch Logs value)", DeploymentOnly},
	{"createTrail", "KMSFIX_CREATE_TRAIL", "false", "create a CloudTrail trail (management events, KMS included) for an account without one", DeploymentOnly},
	{"deployment", "KMSFIX_DEPLOYMENT", DeploySingle, "single (one stack per account, the default) or org (a hub, its spoke template and the spokes' StackSet; docs/org.md)", DeploymentOnly},
	{"orgId", "KMSFIX_ORG_ID", "", "deployment=org: the organization id (o-...) the hub serves", DeploymentOnly},
	{"hubAccount", "KMSFIX_HUB_ACCOUNT", "", "deployment=org: the delegated-administrator account that runs the hub", DeploymentOnly},
	{"hubRegion", "KMSFIX_HUB_REGION", "", "deployment=org: the hub's home Region", DeploymentOnly},
	{"spokeTargets", "KMSFIX_SPOKE_TARGETS", "", "deployment=org: comma-separated OU ids (ou-...) or the root (r-...) the StackSet deploys spokes to", DeploymentOnly},
	{"spokeRegions", "KMSFIX_SPOKE_REGIONS", "", "deployment=org: comma-separated Regions the StackSet deploys spokes to", DeploymentOnly},
	{"sandboxOus", "KMSFIX_SANDBOX_OUS", "", "deployment=org: OUs (ou-...) whose spokes also get the apply role the hub assumes in apply mode", DeploymentOnly},
	{"routes", "KMSFIX_ROUTES", "", "SELECTOR=slack:SECRET_ARN|sns:TOPIC_ARN,... sends the findings of an account (SELECTOR: its 12-digit id; hub only: ou-ID for the accounts under an OU, tag:KEY=VALUE percent-encoded for those carrying a tag) there instead of the default topic and secret; docs/org.md", Function},
	{"", "KMSFIX_TOPIC_ARN", "", "SNS topic for the report JSON", Stack},
	{"", "KMSFIX_TABLE_NAME", "", "DynamoDB table for dedupe and the audit trail", Stack},
	{"", "KMSFIX_REMEDIATOR_ROLE_ARN", "", "the function's own role, the grant retiring principal", Stack},
	{"", "KMSFIX_HUB_ORG_ID", "", "hub mode: the organization whose accounts the function serves through their reader roles", Stack},
	{"", "KMSFIX_AUDIT_KEY_ARN", "", "HMAC_256 KMS key sealing apply's audit records; apply mode refuses every change without it", Stack},
}

// MaxKeyStatements is the highest KMSFIX_MAX_KEY_STATEMENTS accepted.
const MaxKeyStatements = 50

// DefaultApplyDiagnoses are the codes applied automatically unless KMSFIX_APPLY_DIAGNOSES says
// otherwise.
var DefaultApplyDiagnoses = []finding.Code{
	finding.IdentityPolicyMissing, finding.KeyPolicyMissing, finding.ConditionMismatch,
	finding.CrossAccountAccessMissing,
}

// LogRetentions are the retentions CloudWatch Logs accepts, in days
// (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html).
var LogRetentions = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Load reads the function's configuration through getenv (os.Getenv in the Lambda). Every
// problem is reported, one per line, each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	p := parser{get: func(pr Param) string { return getenv(pr.Env) }, label: func(pr Param) string { return pr.Env }}
	c := p.function()
	c.TopicARN = p.arn("KMSFIX_TOPIC_ARN", true)
	c.TableName = p.tableName("KMSFIX_TABLE_NAME")
	c.RemediatorRoleARN = p.arn("KMSFIX_REMEDIATOR_ROLE_ARN", false)
	c.AuditKeyARN = p.arn("KMSFIX_AUDIT_KEY_ARN", false)
	c.HubOrgID = p.orgID("KMSFIX_HUB_ORG_ID")
	if c.HubOrgID == "" {
		p.singleAccountRoutes(c)
	}
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// LoadDeployment reads the deployer's parameters through lookup (the CDK app: context first,
// then the environment variable) with the same rules as Load, reporting every problem at once.
func LoadDeployment(lookup func(Param) string) (Deployment, error) {
	p := parser{get: lookup, label: func(pr Param) string { return pr.Context + " (" + pr.Env + ")" }}
	d := Deployment{Function: p.function()}
	if v := p.value("slackSecretKeyArn"); v != "" {
		if !isKeyARN(v) {
			p.fail("slackSecretKeyArn", "is %q; want a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", v)
		}
		if d.Function.SlackSecretARN == "" {
			p.fail("slackSecretKeyArn", "is set only together with slackSecretArn")
		}
		d.SlackSecretKeyARN = v
	}
	for _, e := range p.list("notifyEmails") {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			p.fail("notifyEmails", "has %q, which is not a plain e-mail address", e)
			continue
		}
		d.NotifyEmails = append(d.NotifyEmails, e)
	}
	d.ReservedConcurrency = p.integer("reservedConcurrency")
	if d.ReservedConcurrency < MinConcurrency || d.ReservedConcurrency > MaxConcurrency {
		p.fail("reservedConcurrency", "is %d; want %d to %d", d.ReservedConcurrency, MinConcurrency, MaxConcurrency)
	}
	d.LogRetentionDays = p.integer("logRetentionDays")
	if !slices.Contains(LogRetentions, d.LogRetentionDays) {
		p.fail("logRetentionDays", "is %d, which is not a CloudWatch Logs retention; one of %v", d.LogRetentionDays, LogRetentions)
	}
	d.CreateTrail = p.boolean("createTrail")
	if p.oneOf("deployment", DeploySingle, DeployOrg) == DeployOrg {
		d.Org = p.org()
	} else {
		p.singleAccountRoutes(d.Function)
	}
	if err := errors.Join(p.errs...); err != nil {
		return Deployment{}, fmt.Errorf("invalid kmsfix parameters:\n%w", err)
	}
	return d, nil
}

// Environment renders the deployer-chosen part of c as the function's environment variables
// (the Function parameters; the stack adds the Stack ones). Load reads them back unchanged.
func (c Config) Environment() map[string]string {
	env := map[string]string{
		"KMSFIX_MODE":                 c.Mode,
		"KMSFIX_SANDBOX_ACCOUNTS":     strings.Join(c.SandboxAccounts, ","),
		"KMSFIX_APPLY_EXPIRY":         c.ApplyExpiry.String(),
		"KMSFIX_DRY_RUN":              strconv.FormatBool(c.DryRun),
		"KMSFIX_DEDUPE_WINDOW":        c.DedupeWindow.String(),
		"KMSFIX_PROPAGATION_WINDOW":   c.PropagationWindow.String(),
		"KMSFIX_KEY_OWNER_BUSES":      c.keyOwnerBusesEnv(),
		"KMSFIX_TRUSTED_ACCOUNTS":     strings.Join(c.TrustedAccounts, ","),
		"KMSFIX_TRUSTED_SENDER_ROLES": strings.Join(c.TrustedSenderRoles, ","),
		"KMSFIX_TRUSTED_ORG_ID":       c.TrustedOrgID,
		"KMSFIX_MAX_KEY_STATEMENTS":   strconv.Itoa(c.MaxKeyStatements),
	}
	// Optional ones are left out when unset, as a deployer who never set them would expect.
	if c.SlackSecretARN != "" {
		env["KMSFIX_SLACK_SECRET_ARN"] = c.SlackSecretARN
	}
	if len(c.Routes) > 0 || c.OrgRoutes() {
		env["KMSFIX_ROUTES"] = c.routesEnv()
	}
	if !slices.Equal(c.ApplyDiagnoses, DefaultApplyDiagnoses) {
		env["KMSFIX_APPLY_DIAGNOSES"] = codesString(c.ApplyDiagnoses)
	}
	return env
}

// IsSandbox says whether automatic fixes are allowed in account.
func (c Config) IsSandbox(account string) bool { return slices.Contains(c.SandboxAccounts, account) }

// BusFor returns the key-owner bus for an account, falling back to "*".
func (c Config) BusFor(account string) string {
	if b, ok := c.KeyOwnerBuses[account]; ok {
		return b
	}
	return c.KeyOwnerBuses["*"]
}

// BusAccounts lists the accounts of KeyOwnerBuses in a stable order: sorted, "*" last.
func (c Config) BusAccounts() []string {
	accts := make([]string, 0, len(c.KeyOwnerBuses))
	for a := range c.KeyOwnerBuses {
		if a != "*" {
			accts = append(accts, a)
		}
	}
	slices.Sort(accts)
	if _, ok := c.KeyOwnerBuses["*"]; ok {
		accts = append(accts, "*")
	}
	return accts
}

// AcceptsRequests reports whether this deployment is a key owner that accepts key-policy change
// requests from other accounts.
func (c Config) AcceptsRequests() bool { return len(c.TrustedSenderRoles) > 0 }

func (c Config) keyOwnerBusesEnv() string {
	var parts []string
	for _, a := range c.BusAccounts() {
		parts = append(parts, a+"="+c.KeyOwnerBuses[a])
	}
	return strings.Join(parts, ",")
}

func codesString(codes []finding.Code) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = string(c)
	}
	return strings.Join(s, ",")
}

// parser reads parameters by name (context name or environment variable) and collects every
// problem; label names a parameter in messages the way its reader knows it.
type parser struct {
	get   func(Param) string
	label func(Param) string
	errs  []error
}

func param(name string) Param {
	for _, p := range Params {
		if p.Context == name || p.Env == name {
			return p
		}
	}
	panic("config: unknown parameter " + name)
}

// function parses the Function parameters, the part both readers share.
func (p *parser) function() Config {
	c := Config{
		Mode:               p.oneOf("mode", ModeNotify, ModeApply),
		SandboxAccounts:    p.accounts("sandboxAccounts"),
		ApplyDiagnoses:     p.codes("applyDiagnoses"),
		ApplyExpiry:        p.duration("applyExpiry", MinApplyExpiry, MaxApplyExpiry),
		DryRun:             p.boolean("dryRun"),
		SlackSecretARN:     p.secretARN("slackSecretArn"),
		DedupeWindow:       p.duration("dedupeWindow", MinDedupeWindow, MaxDedupeWindow),
		PropagationWindow:  p.duration("propagationWindow", MinPropagationWindow, MaxPropagationWindow),
		KeyOwnerBuses:      p.buses("keyOwnerBuses"),
		TrustedSenderRoles: p.roles("trustedSenderRoles"),
		TrustedOrgID:       p.orgID("trustedOrgId"),
		MaxKeyStatements:   p.integer("maxKeyStatements"),
	}
	c.Routes, c.OURoutes, c.TagRoutes = p.routes("routes")
	c.TrustedAccounts = p.trustedAccounts(c.TrustedSenderRoles)
	if c.TrustedOrgID != "" && len(c.TrustedSenderRoles) == 0 {
		p.fail("trustedOrgId", "is set but trustedSenderRoles (KMSFIX_TRUSTED_SENDER_ROLES) is empty: an organization admits no sender on its own; list the senders' remediator roles")
	}
	if c.MaxKeyStatements < 1 || c.MaxKeyStatements > MaxKeyStatements {
		p.fail("maxKeyStatements", "is %d; want 1 to %d", c.MaxKeyStatements, MaxKeyStatements)
	}
	if c.Mode == ModeApply && len(c.SandboxAccounts) == 0 {
		p.fail("sandboxAccounts", "is empty but mode is apply: changes are only ever made in sandbox accounts, so nothing could be applied")
	}
	return c
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s %s", p.label(param(name)), fmt.Sprintf(format, args...)))
}

// value is the trimmed value, or the default when unset.
func (p *parser) value(name string) string {
	pr := param(name)
	if v := strings.TrimSpace(p.get(pr)); v != "" {
		return v
	}
	return pr.Default
}

// list splits a comma-separated value, dropping empty items.
func (p *parser) list(name string) []string {
	var out []string
	for item := range strings.SplitSeq(p.value(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := p.value(name)
	if !slices.Contains(allowed, v) {
		p.fail(name, "is %q; want one of %s", v, strings.Join(allowed, ", "))
		return param(name).Default
	}
	return v
}

// accounts returns the listed account ids sorted and without duplicates.
func (p *parser) accounts(name string) []string {
	out := p.list(name)
	for _, a := range out {
		if !IsAccountID(a) {
			p.fail(name, "has %q, which is not a 12-digit account id", a)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// roles returns the listed IAM role ARNs sorted and without duplicates. Each is one exact
// role (no wildcard): the bus policy names it as its principal.
func (p *parser) roles(name string) []string {
	out := p.list(name)
	for _, r := range out {
		if _, ok := roleAccount(r); !ok {
			p.fail(name, "has %q, which is not an IAM role ARN (arn:aws:iam::123456789012:role/name, no wildcard)", r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// trustedAccounts derives the trusted accounts from the sender roles. A trustedAccounts value
// must name exactly those accounts: an account without a role would be trusted by the code
// while the bus policy admits no principal of it, and the old meaning (the account's root in
// the bus policy, so any principal there allowed events:PutEvents) is gone.
func (p *parser) trustedAccounts(roles []string) []string {
	var derived []string
	for _, r := range roles {
		if a, ok := roleAccount(r); ok {
			derived = append(derived, a)
		}
	}
	slices.Sort(derived)
	derived = slices.Compact(derived)
	given := p.accounts("trustedAccounts")
	if len(given) > 0 && !slices.Equal(given, derived) {
		p.fail("trustedAccounts", "is %s but the accounts of trustedSenderRoles (KMSFIX_TRUSTED_SENDER_ROLES) are %q: list each sender's remediator role; the accounts follow from them",
			strings.Join(given, ","), strings.Join(derived, ","))
	}
	return derived
}

func (p *parser) codes(name string) []finding.Code {
	items := p.list(name)
	if len(items) == 0 {
		return slices.Clone(DefaultApplyDiagnoses)
	}
	var out []finding.Code
	for _, it := range items {
		c := finding.Code(it)
		switch {
		case !slices.Contains(finding.AllCodes, c):
			p.fail(name, "has %q, which is not a diagnosis code (docs/contract.md)", it)
		case !c.PolicyFixable():
			p.fail(name, "has %q, which no policy change can fix", it)
		case !slices.Contains(out, c):
			out = append(out, c)
		}
	}
	return out
}

// duration reads a Go duration within [lo, hi].
func (p *parser) duration(name string, lo, hi time.Duration) time.Duration {
	def, _ := time.ParseDuration(param(name).Default)
	v := p.value(name)
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.fail(name, "is %q; want a Go duration such as 10m or 24h", v)
		return def
	case d <= 0:
		p.fail(name, "is %q; want a positive duration of at least %s", v, short(lo))
		return def
	case d < lo:
		p.fail(name, "is %q; the minimum is %s", v, short(lo))
		return def
	case d > hi:
		p.fail(name, "is %q; the maximum is %s", v, short(hi))
		return def
	}
	return d
}

// short prints 168h rather than 168h0m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "h0m0s") {
		return strings.TrimSuffix(s, "0m0s")
	}
	return strings.TrimSuffix(s, "0s")
}

func (p *parser) boolean(name string) bool {
	v := p.value(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "is %q; want true or false", v)
	}
	return b
}

func (p *parser) integer(name string) int {
	v := p.value(name)
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, "is %q, which is not an integer", v)
	}
	return n
}

func (p *parser) arn(name string, required bool) string {
	v := p.value(name)
	switch {
	case v == "" && required:
		p.fail(name, "is required")
	case v != "" && !isARN(v):
		p.fail(name, "is %q; want an ARN (arn:aws:...)", v)
	}
	return v
}

// secretARN wants the complete ARN (with its random suffix): IAM policies and GetSecretValue
// name the secret by it.
func (p *parser) secretARN(name string) string {
	v := p.value(name)
	if v != "" && !isSecretARN(v) {
		// The value is not echoed: a webhook URL pasted here by mistake is itself the secret.
		p.fail(name, "is not a complete secret ARN; want an ARN arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX "+
			"(`aws secretsmanager describe-secret --secret-id NAME --query ARN` prints it); the value is not shown")
	}
	return v
}

func (p *parser) tableName(name string) string {
	v := p.value(name)
	switch {
	case v == "":
		p.fail(name, "is required")
	case !isTableName(v):
		p.fail(name, "is %q; want a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)", v)
	}
	return v
}

func (p *parser) buses(name string) map[string]string {
	items := p.list(name)
	if len(items) == 0 {
		return nil
	}
	out := make(map[string]string, len(items))
	for _, it := range items {
		acct, bus, ok := strings.Cut(it, "=")
		acct, bus = strings.TrimSpace(acct), strings.TrimSpace(bus)
		owner, isBus := busAccount(bus)
		switch {
		case !ok:
			p.fail(name, "has %q; want ACCOUNT=busARN or *=busARN", it)
		case acct != "*" && !IsAccountID(acct):
			p.fail(name, "has account %q; want a 12-digit account id or *", acct)
		case !isBus:
			p.fail(name, "has %q for %s; want an event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)", bus, acct)
		case acct != "*" && owner != acct:
			p.fail(name, "has a bus for %s that belongs to account %s", acct, owner)
		case out[acct] != "":
			p.fail(name, "names account %s twice", acct)
		default:
			out[acct] = bus
		}
	}
	return out
}

func (p *parser) orgID(name string) string {
	v := p.value(name)
	if v != "" && !isOrgID(v) {
		p.fail(name, "is %q, which is not an organization id (o-...)", v)
	}
	return v
}

// The checks below are plain loops rather than regular expressions: compiling those at
// package init showed up in the Lambda's cold start.

// IsAccountID says whether s is a 12-digit AWS account id.
func IsAccountID(s string) bool { return len(s) == 12 && allOf(s, digits) }

// arnParts splits arn:aws[-partition]:service:region:account:resource, account empty or digits.
func arnParts(s string) (service, region, account, resource string, ok bool) {
	p := strings.SplitN(s, ":", 6)
	ok = len(p) == 6 && p[0] == "arn" && strings.HasPrefix(p[1], "aws") && allOf(p[1], lowerDigits+"-") &&
		p[2] != "" && allOf(p[2], lowerDigits+"-") && allOf(p[3], lowerDigits+"-") &&
		len(p[4]) <= 12 && allOf(p[4], digits) && p[5] != ""
	if !ok {
		return "", "", "", "", false
	}
	return p[2], p[3], p[4], p[5], true
}

func isARN(s string) bool { _, _, _, _, ok := arnParts(s); return ok }

// isSecretARN: secret:NAME-XXXXXX, the six characters Secrets Manager appends
// (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html#iam-resources).
func isSecretARN(s string) bool {
	service, region, account, resource, ok := arnParts(s)
	name, found := strings.CutPrefix(resource, "secret:")
	if !ok || service != "secretsmanager" || region == "" || !IsAccountID(account) || !found {
		return false
	}
	i := strings.LastIndexByte(name, '-')
	return i > 0 && len(name)-i-1 == 6 && allOf(name[i+1:], letters+digits) &&
		allOf(name[:i], letters+digits+"/_+=.@-")
}

func isKeyARN(s string) bool {
	service, region, account, resource, ok := arnParts(s)
	id, found := strings.CutPrefix(resource, "key/")
	return ok && service == "kms" && region != "" && IsAccountID(account) && found && id != "" &&
		allOf(id, "abcdef0123456789-")
}

// busAccount returns the account of an event bus ARN.
func busAccount(s string) (string, bool) {
	service, region, account, resource, ok := arnParts(s)
	name, found := strings.CutPrefix(resource, "event-bus/")
	ok = ok && service == "events" && region != "" && IsAccountID(account) && found && name != "" &&
		allOf(name, letters+digits+"._/-")
	return account, ok
}

// roleAccount returns the account of an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/[path/]name),
// the name and path in IAM's character set, so never a wildcard
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html#reference_iam-quotas-names).
func roleAccount(s string) (string, bool) {
	service, region, account, resource, ok := arnParts(s)
	name, found := strings.CutPrefix(resource, "role/")
	ok = ok && service == "iam" && region == "" && IsAccountID(account) && found && name != "" &&
		!strings.HasSuffix(name, "/") && !strings.HasPrefix(name, "/") && allOf(name, letters+digits+"+=.@_-/") // IAM also allows "," but the list is comma-separated
	return account, ok
}

func isTableName(s string) bool {
	return len(s) >= 3 && len(s) <= 255 && allOf(s, letters+digits+"_.-")
}

func isOrgID(s string) bool {
	rest, ok := strings.CutPrefix(s, "o-")
	return ok && len(rest) >= 10 && len(rest) <= 32 && allOf(rest, lowerDigits)
}

const (
	digits      = "0123456789"
	lowerDigits = "abcdefghijklmnopqrstuvwxyz" + digits
	letters     = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

func allOf(s, chars string) bool {
	for _, r := range s {
		if !strings.ContainsRune(chars, r) {
			return false
		}
	}
	return true
}

// ParamByContext returns the parameter with this CDK context name (or environment variable).
func ParamByContext(name string) Param { return param(name) }
