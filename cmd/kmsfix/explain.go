package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/world"
)

func runExplain(sys env, args []string) int {
	stdout, stderr := sys.stdout, sys.stderr
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	worldPath := fs.String("world", "", "world file: what is known about keys and principals (docs/contract.md section 2)")
	asJSON := fs.Bool("json", false, "print the report JSON, one line per event")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix explain [--world FILE] [--json] FILE...|-")
		fmt.Fprintln(stderr, "FILE: CloudTrail records, EventBridge events, CloudTrail log files or lookup-events output (JSON, JSON lines, gzip);")
		fmt.Fprintln(stderr, "      a directory is walked for *.json and *.json.gz like scan --files")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	w := &world.World{}
	if *worldPath != "" {
		var err error
		if w, err = world.Load(*worldPath); err != nil {
			fmt.Fprintf(stderr, "kmsfix: world %v\n", err)
			return 2
		}
	}
	tuneGC()
	// Reports are buffered, and the buffer is written out before every read of an input
	// (flushingReader): a stdin that stays open still gets each report as soon as its record
	// has arrived, and a file does not cost a write per record.
	bw := bufio.NewWriterSize(stdout, 64<<10)
	defer bw.Flush()
	out := &explainer{w: w, asJSON: *asJSON, stdin: sys.stdin, stdout: bw, stderr: stderr}
	for _, name := range fs.Args() {
		out.input(name)
	}
	return out.status
}

// tuneGC trades memory the streaming reader does not use for CPU: the live heap of a
// streaming run is a few MB, so collecting at 4x it (instead of 2x) stays far below the
// 100 MB budget, and the soft limit keeps a run near 64 MiB whatever happens. GOGC and
// GOMEMLIMIT in the environment win. Figures: docs/streaming.md.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
}

// flushingReader flushes the output before each read of the input.
type flushingReader struct {
	r     io.Reader
	flush func() error
}

func (f flushingReader) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		return 0, fmt.Errorf("writing the reports: %w", err)
	}
	return f.r.Read(p)
}

// explainer explains and writes each record as soon as it is read: memory stays bounded by
// one record, and a stdin that stays open gets a report per record as it arrives.
type explainer struct {
	w      *world.World
	asJSON bool
	stdin  io.Reader // read for the input "-"
	stdout *bufio.Writer
	stderr io.Writer
	status int // 1 once an input or a record failed
}

// input reads a file, stdin ("-") or every log file under a directory.
func (e *explainer) input(name string) {
	if name == "-" {
		e.stream(e.stdin, "stdin")
		return
	}
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		err := scan.WalkLogFiles(name, func(path string) error {
			e.file(path)
			return nil
		})
		if err != nil {
			e.fail(name, 0, err)
		}
		return
	}
	e.file(name)
}

func (e *explainer) file(name string) {
	f, err := os.Open(name)
	if err != nil {
		e.fail(name, 0, err) // names the file already
		return
	}
	defer f.Close()
	e.stream(f, name)
}

func (e *explainer) stream(in io.Reader, source string) {
	rd := cloudtrail.NewReader(flushingReader{r: in, flush: e.stdout.Flush}, source, cloudtrail.Limits{})
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			var re *cloudtrail.RecordError
			index := 0
			if errors.As(err, &re) {
				index = re.Index
			}
			e.fail(source, index, err)
			continue // after an error that ends the input, Next says io.EOF
		}
		r := engine.Explain(it, e.w)
		if !e.asJSON {
			writeHuman(e.stdout, r)
			continue
		}
		b, merr := r.Encode()
		if merr != nil {
			e.fail(source, 0, fmt.Errorf("%s: encoding the report: %w", it.Source, merr))
			continue
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
}

// errorLine is what --json prints for an input or a record that could not be read, in the
// stream of reports (docs/contract.md).
type errorLine struct {
	Error  string `json:"error"`
	Source string `json:"source"`
	Record int    `json:"record,omitempty"`
}

// fail reports an input or record that could not be read: on stderr, and with --json as an
// error line on stdout. err names the source.
func (e *explainer) fail(source string, record int, err error) {
	e.status = 1
	if !e.asJSON {
		e.stdout.Flush() // the reports before the error come before it
	}
	// The message quotes the input (field names, file names): escaped for the terminal.
	fmt.Fprintf(e.stderr, "kmsfix: %s\n", quote.Text(err.Error()))
	if e.asJSON {
		b, _ := json.Marshal(errorLine{Error: err.Error(), Source: source, Record: record})
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
}

// writeHuman prints a compact explanation: what was denied, why, the fix and how to apply it.
// Every value passes quote.Text (or quote.Block for JSON laid out here), so a field of the
// event can neither start a line of its own nor send the terminal an escape sequence.
func writeHuman(w io.Writer, r finding.Report) {
	t := quote.Text
	if r.Ignored != "" {
		fmt.Fprintf(w, "event %s: ignored: %s\n\n", t(orDash(r.EventID)), t(r.Ignored))
		return
	}
	fmt.Fprintf(w, "event %s  %s %s  %s\n", t(r.EventID), t(r.EventName), t(r.Region), t(r.EventTime))
	fmt.Fprintf(w, "  denied      %s  %s\n", t(strings.Join(r.Actions, ", ")), t(r.Principal))
	key := r.Key
	if r.KeyAlias != "" {
		key += " (" + r.KeyAlias + ")"
	}
	fmt.Fprintf(w, "  key         %s\n", t(orDash(key)))
	if r.Bucket != "" {
		obj := "s3://" + t(r.Bucket)
		if r.Object != "" {
			obj += "/" + t(r.Object)
		} else {
			obj += "  (S3 Bucket Key: context is the bucket)"
		}
		fmt.Fprintf(w, "  object      %s\n", obj)
	}
	fmt.Fprintf(w, "  diagnosis   %s (%s)\n", t(string(r.Diagnosis)), t(r.Severity))
	fmt.Fprintf(w, "  why         %s\n", t(r.Detail))
	if r.Escalate != "" {
		fmt.Fprintf(w, "  who acts    %s\n", t(r.Escalate))
	}
	for i, p := range r.Patches {
		fmt.Fprintf(w, "  fix %d/%d     %s on %s (account %s)\n", i+1, len(r.Patches), t(p.Kind), t(p.Target), t(p.Account))
		var body any = p.Policy
		if p.Statement != nil {
			body = p.Statement
		}
		if b, err := json.MarshalIndent(body, "              ", "  "); err == nil {
			fmt.Fprintf(w, "              %s\n", quote.Block(string(b)))
		}
		for _, c := range p.Commands {
			// Shell text quote.Shell made: only a value holding a control character changes
			// here, and such a value is no name AWS accepts.
			fmt.Fprintf(w, "              $ %s\n", t(c))
		}
	}
	if r.NeededStatement != nil {
		if b, err := json.MarshalIndent(r.NeededStatement, "              ", "  "); err == nil {
			fmt.Fprintf(w, "  needs       that layer to allow:\n              %s\n", quote.Block(string(b)))
		}
	}
	for _, a := range r.Advice {
		fmt.Fprintf(w, "  advice      %s\n", t(a))
	}
	if len(r.Patches) > 0 {
		state := "verified: the request is allowed after the fix and nothing else is"
		if !r.Verified {
			state = "NOT verified"
			if r.Unverified != "" {
				state += ": " + r.Unverified
			}
		}
		fmt.Fprintf(w, "  check       %s\n", t(state))
		apply := "yes (sandbox account)"
		if !r.AutoApply {
			apply = "no: " + r.AutoApplyBlocked
		}
		fmt.Fprintf(w, "  auto-apply  %s\n", t(apply))
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
