package scan

import (
	"cmp"
	"slices"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// Group is one finding with how often and when it was seen.
type Group struct {
	Fingerprint string
	// Report is the most recent occurrence's report.
	Report    finding.Report
	Count     int
	FirstSeen time.Time
	LastSeen  time.Time
}

// Grouper gathers reports by fingerprint.
type Grouper struct {
	byFP map[string]*Group
}

// NewGrouper returns an empty Grouper.
func NewGrouper() *Grouper { return &Grouper{byFP: map[string]*Group{}} }

// Add counts one report seen at t (events arrive in any order).
func (g *Grouper) Add(r finding.Report, t time.Time) {
	// The notifier's fingerprint, so a scan's findings match the alerts' dedupe keys.
	fp := finding.Fingerprint(r)
	r.Fingerprint = fp
	grp, ok := g.byFP[fp]
	if !ok {
		g.byFP[fp] = &Group{Fingerprint: fp, Report: r, Count: 1, FirstSeen: t, LastSeen: t}
		return
	}
	grp.Count++
	if t.Before(grp.FirstSeen) {
		grp.FirstSeen = t
	}
	if !t.Before(grp.LastSeen) {
		grp.LastSeen = t
		grp.Report = r
	}
}

// Groups returns the findings, most frequent first, then most recent, then by fingerprint.
func (g *Grouper) Groups() []Group {
	out := make([]Group, 0, len(g.byFP))
	for _, grp := range g.byFP {
		out = append(out, *grp)
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
	return out
}
