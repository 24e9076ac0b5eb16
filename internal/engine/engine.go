// Package engine runs the pure pipeline for one record: diagnose, patch, verify.
package engine

import (
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Explain turns one item into a report using what the world knows. It never fails: what it
// cannot decide becomes an undetermined finding that says why.
func Explain(item cloudtrail.Item, w *world.World) finding.Report {
	if item.Denial == nil {
		return finding.Report{EventID: item.EventID, Ignored: item.Ignored}
	}
	d := item.Denial
	return finding.Report{EventID: d.EventID, Diagnosis: finding.Undetermined, Detail: "engine being written"}
}
