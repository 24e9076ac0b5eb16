package scan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kmsfix/kmsfix/internal/quote"
)

// WriteJSON writes one contract report (docs/contract.md section 3) per finding and line, the most
// recent occurrence's, with three added fields: count, first_seen, last_seen (RFC 3339).
func WriteJSON(w io.Writer, groups []Group) error {
	bw := bufio.NewWriter(w)
	for _, g := range groups {
		line, err := json.Marshal(g.Report)
		if err != nil {
			return fmt.Errorf("encoding finding %s: %w", g.Fingerprint, err)
		}
		extra, err := json.Marshal(struct {
			Count     int    `json:"count"`
			FirstSeen string `json:"first_seen"`
			LastSeen  string `json:"last_seen"`
		}{g.Count, g.FirstSeen.UTC().Format(time.RFC3339), g.LastSeen.UTC().Format(time.RFC3339)})
		if err != nil {
			return err
		}
		// Report has its own MarshalJSON, which embedding would promote over the added
		// fields: splice the two objects instead.
		line = bytes.TrimSuffix(line, []byte("}"))
		bw.Write(line)
		bw.WriteByte(',')
		bw.Write(extra[1:])
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteTable writes the findings as an aligned table, then a summary line.
func WriteTable(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(res.Groups) > 0 {
		fmt.Fprintln(tw, "COUNT\tFIRST SEEN\tLAST SEEN\tDIAGNOSIS\tACTIONS\tPRINCIPAL\tKEY\tBUCKET")
		for _, g := range res.Groups {
			r := g.Report
			// Values from the records: quote.Text keeps each in its cell (a tab or line
			// break would shift or forge rows) and sends the terminal no escape sequence.
			t := quote.Text
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Count,
				stamp(g.FirstSeen), stamp(g.LastSeen), t(string(r.Diagnosis)), t(strings.Join(r.Actions, ",")),
				t(dash(r.Principal)), t(dash(r.Key)), t(dash(r.Bucket)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, Summary(res))
	return err
}

// Summary is one line on what the scan covered and found.
func Summary(res *Result) string {
	var b strings.Builder
	if res.Denials == 0 {
		b.WriteString("no S3 KMS denials")
	} else {
		fmt.Fprintf(&b, "%d S3 KMS denial(s) in %d finding(s)", res.Denials, len(res.Groups))
	}
	fmt.Fprintf(&b, "; %d record(s) read", res.Records)
	if res.Files > 0 {
		fmt.Fprintf(&b, " from %d file(s)", res.Files)
	}
	if res.Pages > 0 {
		fmt.Fprintf(&b, " in %d page(s)", res.Pages)
	}
	if res.Retries > 0 {
		fmt.Fprintf(&b, ", %d retried", res.Retries)
	}
	if res.Unreadable > 0 {
		fmt.Fprintf(&b, ", %d unreadable", res.Unreadable)
	}
	switch {
	case !res.Since.IsZero() && !res.Until.IsZero():
		fmt.Fprintf(&b, "; window %s to %s", stamp(res.Since), stamp(res.Until))
	case !res.Since.IsZero():
		fmt.Fprintf(&b, "; since %s", stamp(res.Since))
	case !res.Until.IsZero():
		fmt.Fprintf(&b, "; until %s", stamp(res.Until))
	}
	if res.Outside > 0 {
		fmt.Fprintf(&b, " (%d denial(s) outside it skipped)", res.Outside)
	}
	return b.String()
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
