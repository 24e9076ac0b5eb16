package scan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
)

// Progress is what a progress bar shows.
type Progress struct {
	Fraction float64 // 0..1 of the work
	Records  int
	Denials  int
	Note     string // "page 12", "file 3/40"
}

// Options are shared by both sources.
type Options struct {
	Explain  Explainer
	Progress func(Progress) // nil: none
}

func (o Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// FromLookup scans [since, until] with LookupEvents. On a *PageError or a cancelled ctx the
// result holds everything read before it, with Complete false.
func FromLookup(ctx context.Context, l *Lookup, since, until time.Time, opt Options) (*Result, error) {
	c := newCollector(ctx, opt.Explain, since, until)
	span := until.Sub(since)
	reached := until
	onEvent := func(ev cttypes.Event) error {
		var fallback time.Time
		if ev.EventTime != nil {
			fallback = *ev.EventTime
		}
		if ev.CloudTrailEvent == nil {
			c.res.Records++
			c.res.Unreadable++
			return nil
		}
		item, err := cloudtrail.Parse([]byte(*ev.CloudTrailEvent))
		if err != nil {
			c.res.Records++
			c.res.Unreadable++
			return nil
		}
		c.add(item, fallback)
		return nil
	}
	onPage := func(p PageInfo) {
		c.res.Pages = p.Page
		c.res.Retries = p.Retries
		if !p.Oldest.IsZero() && p.Oldest.Before(reached) {
			reached = p.Oldest
		}
		frac := 1.0
		if span > 0 && !p.Last {
			frac = float64(until.Sub(reached)) / float64(span)
		}
		opt.progress(Progress{Fraction: frac, Records: c.res.Records, Denials: c.res.Denials, Note: fmt.Sprintf("page %d", p.Page)})
	}
	err := l.Events(ctx, since, until, onEvent, onPage)
	res := c.result()
	res.Reached = reached
	res.Complete = err == nil
	return res, err
}

// IsLogFile says whether a file name is a CloudTrail log file as S3 stores it (or unzipped).
func IsLogFile(name string) bool {
	return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".json.gz")
}

// FromFiles scans every *.json and *.json.gz under dir, recursively (the layout of a trail's
// S3 prefix: AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/). A zero since or until
// leaves that side of the window open. Files that fail to read are reported in the error,
// after the others have been scanned; the records read before a file's error count.
func FromFiles(ctx context.Context, dir string, since, until time.Time, opt Options) (*Result, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && IsLogFile(d.Name()) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return &Result{Since: since, Until: until}, fmt.Errorf("listing %s: %w", dir, err)
	}
	c := newCollector(ctx, opt.Explain, since, until)
	var errs []error
	for i, path := range files {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := readFile(path, dir, c); err != nil {
			errs = append(errs, err)
		}
		c.res.Files++
		opt.progress(Progress{
			Fraction: float64(i+1) / float64(len(files)),
			Records:  c.res.Records, Denials: c.res.Denials,
			Note: fmt.Sprintf("file %d/%d", i+1, len(files)),
		})
	}
	res := c.result()
	res.Complete = len(errs) == 0
	return res, errors.Join(errs...)
}

func readFile(path, dir string, c *collector) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	name, err := filepath.Rel(dir, path)
	if err != nil {
		name = path
	}
	items, err := cloudtrail.ReadAll(f, name)
	for _, it := range items {
		c.add(it, time.Time{})
	}
	if err != nil {
		return err // ReadAll names the source
	}
	return nil
}
