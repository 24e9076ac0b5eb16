// Package scan finds the S3 KMS denials that EventBridge delivery may have missed: it reads
// CloudTrail history (LookupEvents, paced under its rate limit, or downloaded log files),
// explains each denial with the same engine as the Lambda, and groups the findings by
// fingerprint with counts and first/last seen.
package scan

import (
	"context"
	"hash/maphash"
	"time"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
)

// Explainer turns one denial into a report: engine.Explain over an empty world, or over a
// world enriched from live AWS.
type Explainer func(ctx context.Context, item cloudtrail.Item) finding.Report

// Result is what a scan found. It is meaningful also when the scan stopped early.
type Result struct {
	Since, Until time.Time
	Records      int // CloudTrail records read (KMS events for LookupEvents; all records in files)
	Denials      int // KMS denials made by S3 for a principal, in the window
	Ignored      int // records that are not such denials (successes, other callers, other services)
	Duplicates   int // denials seen twice (same eventID)
	Unreadable   int // records the parser rejected
	Outside      int // denials outside the window (files only)
	Pages        int // LookupEvents pages
	Retries      int // LookupEvents retries (throttling, server errors)
	Files        int // log files read
	Groups       []Group

	// Complete is false when the scan stopped early; Reached is then the oldest event time
	// read (LookupEvents runs newest first, so [Since, Reached) was not read).
	Complete bool
	Reached  time.Time
}

// collector explains and groups items, counting what it skips.
type collector struct {
	ctx     context.Context
	explain Explainer
	since   time.Time
	until   time.Time
	seen    map[uint64]struct{} // hashes of the denials' event ids
	seed    maphash.Seed
	groups  *Grouper
	res     *Result
}

func newCollector(ctx context.Context, explain Explainer, since, until time.Time) *collector {
	return &collector{
		ctx: ctx, explain: explain, since: since, until: until,
		seen:   map[uint64]struct{}{},
		seed:   maphash.MakeSeed(),
		groups: NewGrouper(),
		res:    &Result{Since: since, Until: until},
	}
}

// add takes one parsed item; fallback is the event time when the record has none.
func (c *collector) add(item cloudtrail.Item, fallback time.Time) {
	c.res.Records++
	if item.Denial == nil {
		c.res.Ignored++
		return
	}
	// Only denials are remembered: the set grows with the denials, not with the records.
	if item.EventID != "" {
		// 8 bytes a denial instead of the id: a scan of millions of denials stays small. Two
		// ids colliding among a million is a chance of about 3e-8.
		h := maphash.String(c.seed, item.EventID)
		if _, dup := c.seen[h]; dup {
			c.res.Duplicates++
			return
		}
		c.seen[h] = struct{}{}
	}
	t := fallback
	if parsed, err := time.Parse(time.RFC3339, item.Denial.EventTime); err == nil {
		t = parsed
	}
	if !c.since.IsZero() && t.Before(c.since) || !c.until.IsZero() && t.After(c.until) {
		c.res.Outside++
		return
	}
	c.res.Denials++
	c.groups.Add(c.explain(c.ctx, item), t)
}

func (c *collector) result() *Result {
	c.res.Groups = c.groups.Groups()
	return c.res
}
