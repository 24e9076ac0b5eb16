// Package pipeline is the one live path from a CloudTrail denial to a decided report, shared by
// the Lambda (internal/remediator) and every CLI command that reads AWS (kmsfix scan --live):
//
//	enrich (internal/enrich: the world from KMS, IAM, STS)
//	  → explain (internal/engine: diagnose, patch, verify by evaluation)
//	  → validate (Access Analyzer's ValidatePolicy on every proposed document)
//	  → decide (internal/decision: verified and auto_apply, with the reason)
//
// Because both use the same Live, `scan --live` and the Lambda say the same `verified` for the
// same event and the same AWS state.
package pipeline

import (
	"context"
	"slices"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/decision"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Enricher builds the world for a denial from live AWS; it never fails, it leaves unknown
// what it cannot read (internal/enrich).
type Enricher interface {
	World(ctx context.Context, d *cloudtrail.Denial) *world.World
}

// PatchChecker checks the proposed documents: problems clear `verified`, unknown names the
// checks that could not run (Validator, Access Analyzer).
type PatchChecker interface {
	Check(ctx context.Context, patches []finding.Patch) (problems, unknown []string)
}

// Live is the pipeline. Its fields live as long as the process (caches included).
type Live struct {
	Enricher Enricher
	// Checker validates the patches; nil means validation is not configured, so no patch is
	// verified (unknown is not false).
	Checker PatchChecker
	// Sandbox lists the accounts where automatic fixes are allowed (KMSFIX_SANDBOX_ACCOUNTS;
	// empty for the CLI, which never applies).
	Sandbox []string
}

// Explain runs the whole path for one parsed item and returns the report and the world it was
// made from (nil for an item that is not a denial).
func (l *Live) Explain(ctx context.Context, item cloudtrail.Item) (finding.Report, *world.World) {
	if item.Denial == nil {
		return engine.Explain(item, nil), nil
	}
	w := l.Enricher.World(ctx, item.Denial)
	w.SandboxAccounts = slices.Clone(l.Sandbox)
	return l.ExplainIn(ctx, item, w), w
}

// ExplainIn runs explain → validate → decide in a world the caller built (kmsfix why builds it
// from the object rather than from an event).
func (l *Live) ExplainIn(ctx context.Context, item cloudtrail.Item, w *world.World) finding.Report {
	rep, ev := engine.Examine(item, w)
	l.Decide(ctx, &rep, ev)
	return rep
}

// Decide validates the report's patches and makes the one decision of verified and
// auto_apply. The cross-account receiver's reports, which it builds itself, come through here.
func (l *Live) Decide(ctx context.Context, rep *finding.Report, ev decision.Evidence) {
	if len(ev.Patches) > 0 {
		ev.Validation = l.validate(ctx, ev.Patches)
	}
	decision.Decide(ev).Set(rep)
}

func (l *Live) validate(ctx context.Context, patches []finding.Patch) *decision.Validation {
	if l.Checker == nil {
		return &decision.Validation{Unknown: []string{"Access Analyzer validation is not configured"}}
	}
	problems, unknown := l.Checker.Check(ctx, patches)
	return &decision.Validation{Problems: problems, Unknown: unknown}
}
