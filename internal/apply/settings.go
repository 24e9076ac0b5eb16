// Package apply makes automatic fixes in sandbox accounts: a pure guard decides whether a
// finding may be applied and with which lever (an inline IAM policy, a statement appended to
// the key policy, or a KMS grant); the applier writes an audit record, makes the change,
// re-reads and verifies it, and a sweeper reverts it when it expires.
package apply

import (
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/arns"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// Settings are the apply part of the configuration (docs/CONFIG.md).
type Settings struct {
	Enabled         bool // KMSFIX_MODE=apply
	SandboxAccounts []string
	Diagnoses       []finding.Code
	Expiry          time.Duration // how long a change lives
	DryRun          bool          // log the exact API calls, make none
	// Account is the account this function runs in and may change; taken from
	// RemediatorRoleARN unless set.
	Account           string
	RemediatorRoleARN string // the grants' retiring principal
	Table             string // audit table (shared; pk/sk strings)
	// Hub: the table is the organization hub's (KMSFIX_HUB_ORG_ID): the revert command says
	// --hub, so it acts in each change's own account.
	Hub    bool
	Region string // of the table, for the revert command
	// AuditKeyARN is the audit key (KMSFIX_AUDIT_KEY_ARN): the revert command names it, since
	// `kmsfix revert` trusts no record it cannot check with it.
	AuditKeyARN string
	// BreakGlassRoleARN (the hub only) is the role the revert command assumes with the
	// person's credentials: the spokes' reader and apply roles trust the hub function's role
	// and this one alone (docs/apply.md, "Early revert by a person").
	BreakGlassRoleARN string
	// Lease is how long a pending change belongs to the invocation that started it; after it,
	// another invocation (or the sweeper) completes or rolls it back. At least the function's
	// timeout.
	Lease time.Duration
	// Retention is how long audit records stay after a change ends (expires_at TTL).
	Retention time.Duration
	// ConsistentReads is how many reads of IAM must agree before an absence is concluded
	// (IAM is eventually consistent: a policy just written may read as missing for a while),
	// ReadDelay the wait before the first re-read (doubled each time).
	ConsistentReads int
	ReadDelay       time.Duration
	// SweepReserve is the time a sweep keeps before its invocation's deadline: it starts no
	// revert with less left, and leaves the rest (SweepResult.Deferred) to the next run,
	// which the schedule starts anyway. More than one revert takes (IAM reads included).
	SweepReserve time.Duration
}

// Defaults.
const (
	DefaultExpiry    = 24 * time.Hour
	DefaultLease     = 5 * time.Minute
	DefaultRetention = 90 * 24 * time.Hour
	// Five reads over about 3 s: "changes … typically take a few seconds to propagate"
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
	DefaultConsistentReads = 5
	DefaultReadDelay       = 200 * time.Millisecond
	DefaultSweepReserve    = 8 * time.Second
)

// SettingsFrom takes the apply settings from the Lambda configuration.
func SettingsFrom(c config.Config, region string) Settings {
	return Settings{
		Enabled:           c.Mode == config.ModeApply,
		SandboxAccounts:   c.SandboxAccounts,
		Diagnoses:         c.ApplyDiagnoses,
		Expiry:            c.ApplyExpiry,
		DryRun:            c.DryRun,
		Account:           AccountOf(c.RemediatorRoleARN),
		RemediatorRoleARN: c.RemediatorRoleARN,
		Table:             c.TableName,
		Region:            region,
		Hub:               c.HubOrgID != "",
		AuditKeyARN:       c.AuditKeyARN,
		BreakGlassRoleARN: breakGlassRole(c),
	}
}

// breakGlassRole is the hub account's kmsfix-break-glass role (the account and partition of
// the function's role), or "" outside the hub.
func breakGlassRole(c config.Config) string {
	p := strings.SplitN(c.RemediatorRoleARN, ":", 6)
	if c.HubOrgID == "" || len(p) < 6 || !config.IsAccountID(p[4]) {
		return ""
	}
	return "arn:" + p[1] + ":iam::" + p[4] + ":role/" + config.BreakGlassRoleName
}

func (s Settings) withDefaults() Settings {
	if s.Expiry <= 0 {
		s.Expiry = DefaultExpiry
	}
	if s.Expiry > config.MaxApplyExpiry {
		s.Expiry = config.MaxApplyExpiry
	}
	if s.Lease <= 0 {
		s.Lease = DefaultLease
	}
	if s.Retention <= 0 {
		s.Retention = DefaultRetention
	}
	if s.Account == "" {
		s.Account = AccountOf(s.RemediatorRoleARN)
	}
	if s.ConsistentReads <= 0 {
		s.ConsistentReads = DefaultConsistentReads
	}
	if s.ReadDelay <= 0 {
		s.ReadDelay = DefaultReadDelay
	}
	if s.SweepReserve <= 0 {
		s.SweepReserve = DefaultSweepReserve
	}
	return s
}

// AccountOf returns the account field of an ARN (arn:partition:service:region:account:...),
// or "" for text that is not an ARN.
func AccountOf(arn string) string { return arns.Account(arn) }

// RevertCommand is the one command that reverts a change now: it names the table, its Region
// and the audit key (the command reads no record without it); in the hub it says --hub and
// --role with the break-glass role, which the command assumes with the caller's credentials
// (the spokes' roles trust no person's own).
func (s Settings) RevertCommand(id string) string {
	words := []string{"kmsfix", "revert", id}
	if s.Table != "" {
		words = append(words, "--table", s.Table)
	}
	if s.Region != "" {
		words = append(words, "--region", s.Region)
	}
	if s.Hub {
		words = append(words, "--hub")
		if s.BreakGlassRoleARN != "" {
			words = append(words, "--role", s.BreakGlassRoleARN)
		}
	}
	if s.AuditKeyARN != "" {
		words = append(words, "--audit-key", s.AuditKeyARN)
	}
	return quote.Command(words...) // one shell word each, as every command kmsfix suggests
}
