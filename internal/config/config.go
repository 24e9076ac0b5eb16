// Package config reads the remediator's environment variables (docs/CONFIG.md) once, at cold
// start, and says clearly which ones are wrong.
package config

import (
	"errors"
	"fmt"
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
	SandboxAccounts   []string
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
	KeyOwnerBuses   map[string]string
	TrustedAccounts []string
	// TrustedOrgID accepts requests from any account of this organization (the stack's bus
	// policy checks aws:PrincipalOrgID).
	TrustedOrgID      string
	RemediatorRoleARN string
}

// DefaultApplyDiagnoses are the codes applied automatically unless KMSFIX_APPLY_DIAGNOSES says
// otherwise.
var DefaultApplyDiagnoses = []finding.Code{
	finding.IdentityPolicyMissing, finding.KeyPolicyMissing, finding.ConditionMismatch,
	finding.CrossAccountAccessMissing,
}

// MaxApplyExpiry bounds how long an automatic change may live.
const MaxApplyExpiry = 168 * time.Hour

// Load reads the configuration through getenv (os.Getenv in the Lambda). Every problem is
// reported, one per line, each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		Mode:              p.oneOf("KMSFIX_MODE", ModeNotify, ModeNotify, ModeApply),
		SandboxAccounts:   p.accounts("KMSFIX_SANDBOX_ACCOUNTS"),
		ApplyDiagnoses:    p.codes("KMSFIX_APPLY_DIAGNOSES"),
		ApplyExpiry:       p.duration("KMSFIX_APPLY_EXPIRY", 24*time.Hour, MaxApplyExpiry),
		DryRun:            p.boolean("KMSFIX_DRY_RUN"),
		SlackSecretARN:    p.arn("KMSFIX_SLACK_SECRET_ARN", false),
		TopicARN:          p.arn("KMSFIX_TOPIC_ARN", true),
		TableName:         p.tableName("KMSFIX_TABLE_NAME"),
		DedupeWindow:      p.duration("KMSFIX_DEDUPE_WINDOW", time.Hour, 0),
		PropagationWindow: p.duration("KMSFIX_PROPAGATION_WINDOW", 10*time.Minute, 0),
		KeyOwnerBuses:     p.buses("KMSFIX_KEY_OWNER_BUSES"),
		TrustedAccounts:   p.accounts("KMSFIX_TRUSTED_ACCOUNTS"),
		TrustedOrgID:      p.orgID("KMSFIX_TRUSTED_ORG_ID"),
		RemediatorRoleARN: p.arn("KMSFIX_REMEDIATOR_ROLE_ARN", false),
	}
	if c.Mode == ModeApply && len(c.SandboxAccounts) == 0 {
		p.fail("KMSFIX_MODE", "is apply but KMSFIX_SANDBOX_ACCOUNTS is empty: nothing could be applied")
	}
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

// IsSandbox says whether automatic fixes are allowed in account.
func (c Config) IsSandbox(account string) bool { return slices.Contains(c.SandboxAccounts, account) }

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
}

func (p *parser) get(name string) string { return strings.TrimSpace(p.getenv(name)) }

// list splits a comma-separated value, dropping empty items.
func (p *parser) list(name string) []string {
	var out []string
	for item := range strings.SplitSeq(p.get(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (p *parser) oneOf(name, def string, allowed ...string) string {
	v := p.get(name)
	if v == "" {
		return def
	}
	if !slices.Contains(allowed, v) {
		p.fail(name, "is %q; want one of %s", v, strings.Join(allowed, ", "))
		return def
	}
	return v
}

func (p *parser) accounts(name string) []string {
	out := p.list(name)
	for _, a := range out {
		if !isAccount(a) {
			p.fail(name, "has %q; want 12-digit account ids separated by commas", a)
		}
	}
	return out
}

func (p *parser) codes(name string) []finding.Code {
	items := p.list(name)
	if p.get(name) == "" {
		return slices.Clone(DefaultApplyDiagnoses)
	}
	var out []finding.Code
	for _, it := range items {
		c := finding.Code(it)
		switch {
		case !slices.Contains(finding.AllCodes, c):
			p.fail(name, "has %q, which is not a diagnosis code (see CONTRACT.md section 1)", it)
		case !c.PolicyFixable():
			p.fail(name, "has %q, which no policy change can fix", it)
		default:
			out = append(out, c)
		}
	}
	return out
}

// duration reads a Go duration; max 0 means unbounded.
func (p *parser) duration(name string, def, max time.Duration) time.Duration {
	v := p.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.fail(name, "is %q; want a Go duration such as 1h or 10m", v)
		return def
	case d <= 0:
		p.fail(name, "is %q; want a positive duration", v)
		return def
	case max > 0 && d > max:
		p.fail(name, "is %q; the maximum is %s", v, max)
		return def
	}
	return d
}

func (p *parser) boolean(name string) bool {
	v := p.get(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "is %q; want true or false", v)
	}
	return b
}

func (p *parser) arn(name string, required bool) string {
	v := p.get(name)
	switch {
	case v == "" && required:
		p.fail(name, "is required")
	case v != "" && !isARN(v):
		p.fail(name, "is %q; want an ARN (arn:aws:...)", v)
	}
	return v
}

func (p *parser) tableName(name string) string {
	v := p.get(name)
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
		switch {
		case !ok:
			p.fail(name, "has %q; want ACCOUNT=busARN", it)
		case acct != "*" && !isAccount(acct):
			p.fail(name, "has account %q; want a 12-digit account id or *", acct)
		case !isARN(bus) || !strings.Contains(bus, ":event-bus/"):
			p.fail(name, "has %q for %s; want an event bus ARN", bus, acct)
		case out[acct] != "":
			p.fail(name, "names account %s twice", acct)
		default:
			out[acct] = bus
		}
	}
	return out
}

func (p *parser) orgID(name string) string {
	v := p.get(name)
	if v != "" && !isOrgID(v) {
		p.fail(name, "is %q; want an organization id (o-...)", v)
	}
	return v
}

// BusFor returns the key-owner bus for an account, falling back to "*".
func (c Config) BusFor(account string) string {
	if b, ok := c.KeyOwnerBuses[account]; ok {
		return b
	}
	return c.KeyOwnerBuses["*"]
}

// The checks below are plain loops rather than regular expressions: compiling those at
// package init showed up in the Lambda's cold start.

func isAccount(s string) bool { return len(s) == 12 && allOf(s, "0123456789") }

// isARN checks arn:aws[-partition]:service:region:account:resource, account empty or digits.
func isARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	return len(p) == 6 && p[0] == "arn" && strings.HasPrefix(p[1], "aws") && allOf(p[1], lowerDigits+"-") &&
		p[2] != "" && allOf(p[2], lowerDigits+"-") && allOf(p[3], lowerDigits+"-") &&
		len(p[4]) <= 12 && allOf(p[4], "0123456789") && p[5] != ""
}

func isTableName(s string) bool {
	return len(s) >= 3 && len(s) <= 255 && allOf(s, lowerDigits+"ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-")
}

func isOrgID(s string) bool {
	rest, ok := strings.CutPrefix(s, "o-")
	return ok && len(rest) >= 10 && len(rest) <= 32 && allOf(rest, lowerDigits)
}

const lowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"

func allOf(s, chars string) bool {
	for _, r := range s {
		if !strings.ContainsRune(chars, r) {
			return false
		}
	}
	return true
}
