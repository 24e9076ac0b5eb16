package apply

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/emf"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/retry"
)

// Alerts the applier raises. Each is a log line at error level carrying "alert", a metric
// in the kmsfix namespace (EMF, written to Applier.Metrics), and a message through
// Applier.Alerter when one is set.
const (
	// AlertRevertNotExact: a revert could not be proven exact; the change is StatusNeedsReview.
	AlertRevertNotExact = "RevertNotExact"
	// AlertTampered: an audit record failed its integrity check.
	AlertTampered = "AuditRecordTampered"
)

// Alerter sends a message people read (the SNS topic); nil sends none.
type Alerter interface {
	Alert(ctx context.Context, subject, text string) error
}

func (a *Applier) alert(ctx context.Context, rec *Record) {
	a.metric(AlertRevertNotExact, 1)
	if a.Alerter == nil {
		return
	}
	text := fmt.Sprintf("kmsfix could not revert change %s exactly, so it left it for a person.\n"+
		"lever: %s\ntarget: %s\nname: %s\nwhy: %s\n"+
		"The change stays listed by `kmsfix applied`; once settled, run: %s",
		rec.ID, rec.Lever, rec.Target, rec.Name, rec.Note, a.settings().RevertCommand(rec.ID))
	if err := a.Alerter.Alert(ctx, "kmsfix: change "+rec.ID+" needs review", text); err != nil {
		a.log().Error("apply: alert not sent", "id", rec.ID, "error", err.Error())
	}
}

// metric writes one EMF line with one count in the kmsfix namespace.
func (a *Applier) metric(name string, v int) {
	if a.Metrics == nil {
		return
	}
	_ = emf.Count(a.Metrics, a.now(), name, v, nil)
}

// sweepMetrics keeps the two alarms' metrics fed on every sweep: they stay above zero until
// a person settles every change that needs review and every record that fails its check.
func (a *Applier) sweepMetrics(res SweepResult) {
	a.metric(AlertRevertNotExact, res.NeedsReview)
	a.metric(AlertTampered, res.Tampered)
}

// Names of kmsfix's own artefacts (internal/patch.Name and Sid): nothing else is ever
// changed or removed automatically.
const (
	artefactPrefix = "kmsfix-s3-"
	sidPrefix      = "KmsfixS3"
)

// ownedArtefact refuses a change whose artefact is not kmsfix-named, or whose target is not
// in this account (the only account the function may change).
func ownedArtefact(lever string, p finding.Patch, account string) string {
	name := p.Name
	switch lever {
	case finding.KindIdentityPolicy, finding.KindGrant:
		if !strings.HasPrefix(name, artefactPrefix) {
			return fmt.Sprintf("%q is not a kmsfix name (%s…)", name, artefactPrefix)
		}
	case finding.KindKeyPolicyStatement:
		if !strings.HasPrefix(name, sidPrefix) || p.Statement == nil || p.Statement.Sid != name {
			return fmt.Sprintf("statement %q is not a kmsfix statement (%s…)", name, sidPrefix)
		}
	default:
		return "unknown lever " + lever
	}
	if account != "" && (AccountOf(p.Target) != account || p.Account != account) {
		return fmt.Sprintf("%s is not in this account (%s)", p.Target, account)
	}
	return ""
}

// ownedRecord checks that a record describes a kmsfix artefact consistently: the patch it
// carries names the same lever, target and name as the record.
func (a *Applier) ownedRecord(rec *Record) string {
	p, err := decodePatch(rec)
	if err != nil {
		return err.Error()
	}
	if p.Kind != rec.Lever || p.Target != rec.Target || p.Name != rec.Name {
		return "the record's patch does not match its lever, target and name"
	}
	// The CLI may not know its account: then the record's own account must agree with the target.
	return ownedArtefact(rec.Lever, p, a.settings().Account)
}

// sleep waits d unless the context ends first.
func (a *Applier) sleep(ctx context.Context, d time.Duration) error {
	if a.Sleep != nil {
		return a.Sleep(ctx, d)
	}
	return retry.Sleep(ctx, d)
}
