package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/world"
)

func init() {
	commands["explain"] = command{
		summary: "explain KMS denials in CloudTrail files (or - for stdin) and propose the fix",
		run:     runExplain,
	}
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	worldPath := fs.String("world", "", "world file: what is known about keys and principals (CONTRACT.md section 2)")
	asJSON := fs.Bool("json", false, "print the report JSON, one line per event")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix explain [--world FILE] [--json] FILE...|-")
		fmt.Fprintln(stderr, "FILE: CloudTrail records, EventBridge events or CloudTrail log files (JSON, JSON lines, gzip)")
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
	status := 0
	for _, name := range fs.Args() {
		items, err := readInput(name, stdin)
		for _, it := range items {
			r := engine.Explain(it, w)
			if *asJSON {
				b, merr := r.Encode()
				if merr != nil {
					fmt.Fprintf(stderr, "kmsfix: %s: encoding the report: %v\n", it.Source, merr)
					status = 1
					continue
				}
				fmt.Fprintf(stdout, "%s\n", b)
			} else {
				writeHuman(stdout, r)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "kmsfix: %v\n", err)
			status = 1
		}
	}
	return status
}

// stdin is a variable so tests can feed it.
var stdin io.Reader = os.Stdin

func readInput(name string, in io.Reader) ([]cloudtrail.Item, error) {
	if name == "-" {
		return cloudtrail.ReadAll(in, "stdin")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err // names the file already
	}
	defer f.Close()
	return cloudtrail.ReadAll(f, name)
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
