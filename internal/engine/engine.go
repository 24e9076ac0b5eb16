// Package engine runs the pure steps for one record: diagnose, patch, verify by evaluation.
// Examine gathers the report and the evidence; internal/decision decides verified and
// auto_apply from it. Explain is the offline path (kmsfix explain: no AWS, no Access Analyzer);
// internal/pipeline is the live one.
package engine

import (
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/decision"
	"github.com/kmsfix/kmsfix/internal/diagnose"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Explain turns one item into a report using what the world knows, offline: the evaluator
// alone decides verified. It never fails: what it cannot decide becomes an undetermined
// finding that says why.
func Explain(item cloudtrail.Item, w *world.World) finding.Report {
	r, ev := Examine(item, w)
	decision.Decide(ev).Set(&r)
	return r
}

// Examine diagnoses one item and builds and evaluates its patches, without deciding verified or
// auto_apply: it returns the report so far and the evidence for decision.Decide.
func Examine(item cloudtrail.Item, w *world.World) (finding.Report, decision.Evidence) {
	if item.Denial == nil {
		return finding.Report{EventID: item.EventID, Ignored: item.Ignored}, decision.Evidence{}
	}
	d := item.Denial
	f := diagnose.Diagnose(d, w)
	r := finding.Report{
		EventID:          d.EventID,
		Diagnosis:        f.Code,
		Detail:           f.Detail,
		Principal:        d.Identity.PrincipalARN,
		PrincipalAccount: d.Identity.Account,
		Key:              d.KeyARN,
		KeyAccount:       d.KeyAccount,
		Region:           d.Region,
		Bucket:           d.Bucket,
		Object:           d.Object,
		Actions:          d.Actions,
		Severity:         f.Code.Severity(),
		EventTime:        d.EventTime,
		EventName:        d.EventName,
		ErrorCode:        d.ErrorCode,
		SessionARN:       d.Identity.SessionARN,
		PrincipalType:    string(d.Identity.Kind),
		Advice:           f.Advice,
		Escalate:         f.Escalate,
		Unknown:          f.Unknown,
		NeededStatement:  f.Needed,
	}
	if k := w.Key(d.KeyARN); k != nil && len(k.Aliases) > 0 {
		r.KeyAlias = k.Aliases[0]
	}
	ev := decision.Evidence{
		Code: f.Code, KnownEnough: f.KnownEnough, Unknown: f.Unknown, IsSandbox: w.IsSandbox,
		Principal: d.Identity.PrincipalARN, Editable: d.Identity.Editable, NotEditable: d.Identity.NotEditable,
	}
	// The opt-in tag decides auto_apply (decision.Decide); nil tags: not read.
	ev.Key = d.KeyARN
	ev.TagsFrom(w)
	if f.Code != finding.Undetermined && !f.Code.PolicyFixable() {
		return r, ev // no policy patch for key states, denies, managed keys, principals
	}
	r.Patches = patch.Build(d, patch.Sides{NeedIdentity: f.NeedIdentity, NeedKeyPolicy: f.NeedKeyPolicy}, w)
	if len(r.Patches) == 0 {
		return r, ev
	}
	ev.Patches = r.Patches
	ev.Verification = patch.Verify(d, w, r.Patches)
	return r, ev
}
