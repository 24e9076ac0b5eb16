package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// skippedFolders are the folders of a trail bucket that hold no API-call records: digest
// files (AWSLogs/<account>/CloudTrail-Digest/...) and Insights events
// (AWSLogs/<account>/CloudTrail-Insight/..., "/CloudTrail-Insight folder" in
// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/insights-events-understanding.html).
var skippedFolders = map[string]bool{
	"CloudTrail-Digest":   true,
	"CloudTrail-Insight":  true,
	"CloudTrail-Insights": true,
}

// WalkLogFiles calls fn for every log file under dir in lexical order, recursively: the
// layout of a trail's bucket, AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/, or an
// organization trail's AWSLogs/<org-id>/<account>/CloudTrail/.... Digest and Insights
// folders are skipped by name. dir may also be a single file.
func WalkLogFiles(dir string, fn func(path string) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && skippedFolders[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if path == dir || IsLogFile(d.Name()) {
			return fn(path)
		}
		return nil
	})
}

// maxRecordErrors is how many record errors a scan keeps word for word; the others are
// counted in Result.Unreadable.
const maxRecordErrors = 20

// FromFiles scans every *.json and *.json.gz under dir (see WalkLogFiles), reading each file
// as a stream: memory stays bounded by one record. A zero since or until leaves that side of
// the window open. A record that cannot be read is counted as unreadable and named in the
// error; the rest of its file is still read. A file that cannot be read to its end is named
// in the error after the others have been scanned; the records read before count.
func FromFiles(ctx context.Context, dir string, since, until time.Time, opt Options) (*Result, error) {
	var files []string
	err := WalkLogFiles(dir, func(path string) error {
		files = append(files, path)
		return nil
	})
	if err != nil {
		return &Result{Since: since, Until: until}, fmt.Errorf("listing %s: %w", dir, err)
	}
	c := newCollector(ctx, opt.Explain, since, until)
	var errs []error
	recordErrs := 0
	for i, path := range files {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		for _, err := range readFile(path, dir, c) {
			var re *cloudtrail.RecordError
			if errors.As(err, &re) {
				if recordErrs++; recordErrs > maxRecordErrors {
					continue
				}
			}
			errs = append(errs, err)
		}
		c.res.Files++
		opt.progress(Progress{
			Fraction: float64(i+1) / float64(len(files)),
			Records:  c.res.Records, Denials: c.res.Denials,
			Note: fmt.Sprintf("file %d/%d", i+1, len(files)),
		})
	}
	if recordErrs > maxRecordErrors {
		errs = append(errs, fmt.Errorf("%d more unreadable records", recordErrs-maxRecordErrors))
	}
	res := c.result()
	res.Complete = len(errs) == 0
	return res, errors.Join(errs...)
}

// readFile streams one file into c and returns its errors: one per record that could not be
// read, then the one that ended the file early, if any.
func readFile(path, dir string, c *collector) []error {
	f, err := os.Open(path)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	name, err := filepath.Rel(dir, path)
	if err != nil || name == "." {
		name = path
	}
	var errs []error
	rd := cloudtrail.NewReader(f, name, cloudtrail.Limits{})
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return errs
		}
		if err != nil {
			var re *cloudtrail.RecordError
			if errors.As(err, &re) {
				c.res.Records++
				c.res.Unreadable++
			}
			errs = append(errs, err) // the Reader names the source
			continue
		}
		c.add(it, time.Time{})
	}
}
