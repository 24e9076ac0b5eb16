package notify

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// hostileSuffix is what a principal who controls an object key (or forges a record) would
// put in a Slack message: a channel mention, a disguised link, a backtick that ends a code
// span, a line break that forges a line, a terminal escape and a bidi override.
const hostileSuffix = "`<!channel>` <https://evil.example|AWS console> & \n*verified* \x1b[2K\u202e `"

// taint appends suffix to every plain string of a report: its fields, list items, patches
// and the applied change (named string types such as the diagnosis code keep their value).
func taint(v reflect.Value, suffix string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			taint(v.Elem(), suffix)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				taint(v.Field(i), suffix)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			taint(v.Index(i), suffix)
		}
	case reflect.String:
		if v.Type() == reflect.TypeFor[string]() && v.CanSet() {
			v.SetString(v.String() + suffix)
		}
	}
}

// slackTexts lists every text Slack shows: the fallback text, each text object (mrkdwn or
// plain_text, with its type) and each rich-text element, in payload order.
func slackTexts(t *testing.T, n Notice) (kinds, texts []string) {
	t.Helper()
	b, err := json.Marshal(SlackMessage(n))
	if err != nil {
		t.Fatal(err)
	}
	var msg any
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatal(err)
	}
	top := msg.(map[string]any)
	kinds, texts = append(kinds, "fallback"), append(texts, top["text"].(string))
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				kind, _ := x["type"].(string)
				kinds, texts = append(kinds, kind), append(texts, s)
			}
			for _, k := range []string{"blocks", "text", "fields", "elements", "accessory"} {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(top["blocks"])
	return kinds, texts
}

// TestSlackHostileFields renders every golden notice twice, once with a harmless suffix on
// every string and once with hostileSuffix, and compares them text by text: the hostile
// version may hold no '<' or '>' (Slack's control characters), no control character but the
// line feeds of the harmless version, and exactly as many backticks and line feeds as it
// (so no value opened or closed a code span or started a line).
func TestSlackHostileFields(t *testing.T) {
	for name, n := range goldenNotices(t) {
		t.Run(name, func(t *testing.T) {
			render := func(suffix string) ([]string, []string) {
				r := n.Report
				r.Patches = append([]finding.Patch(nil), r.Patches...)
				r.Advice, r.Unknown, r.Actions = clone(r.Advice), clone(r.Unknown), clone(r.Actions)
				if r.Applied != nil {
					a := *r.Applied
					a.Calls = clone(a.Calls)
					r.Applied = &a
				}
				for i := range r.Patches {
					r.Patches[i].Commands = clone(r.Patches[i].Commands)
				}
				taint(reflect.ValueOf(&r).Elem(), suffix)
				m := n
				m.Report = r
				return slackTexts(t, m)
			}
			benignKinds, benign := render(" zz")
			kinds, hostile := render(hostileSuffix)
			if !slicesEqual(kinds, benignKinds) {
				t.Fatalf("the hostile message has another structure:\n%v\n%v", kinds, benignKinds)
			}
			if !strings.Contains(strings.Join(hostile, ""), "verified") {
				t.Fatal("the hostile text is not in the message: the test no longer reaches the fields")
			}
			for i, s := range hostile {
				where := kinds[i] + " text " + strings.ReplaceAll(truncate(s, 120), "\n", `\n`)
				if kinds[i] != "plain_text" && kinds[i] != "text" && strings.ContainsAny(s, "<>") {
					t.Errorf("%s: holds < or >", where)
				}
				for _, r := range s {
					if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
						t.Errorf("%s: holds %U", where, r)
					}
				}
				markup := kinds[i] == "mrkdwn" || kinds[i] == "fallback" // plain_text and rich text show backticks as they are
				if got, want := strings.Count(s, "`"), strings.Count(benign[i], "`"); markup && got != want {
					t.Errorf("%s: %d backticks, the harmless version has %d", where, got, want)
				}
				if got, want := strings.Count(s, "\n"), strings.Count(benign[i], "\n"); got != want {
					t.Errorf("%s: %d line feeds, the harmless version has %d", where, got, want)
				}
			}
		})
	}
}

// TestEmailHostileFields: the e-mail text has exactly the lines of the harmless version.
func TestEmailHostileFields(t *testing.T) {
	for name, n := range goldenNotices(t) {
		r := n.Report
		r.Advice, r.Unknown = clone(r.Advice), clone(r.Unknown)
		benign, hostile := r, r
		taint(reflect.ValueOf(&benign).Elem(), " zz")
		taint(reflect.ValueOf(&hostile).Elem(), hostileSuffix)
		b, h := EmailText(Notice{Report: benign}), EmailText(Notice{Report: hostile})
		if got, want := strings.Count(h, "\n"), strings.Count(b, "\n"); got != want {
			t.Errorf("%s: the hostile e-mail has %d lines, the harmless one %d", name, got, want)
		}
		for _, c := range h {
			if c != '\n' && (unicode.IsControl(c) || unicode.Is(unicode.Cf, c)) {
				t.Errorf("%s: the e-mail holds %U", name, c)
				break
			}
		}
	}
}

func clone(s []string) []string { return append([]string(nil), s...) }

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// TestConsoleLinksNeedARegionName: the Region becomes the link's host name, so a forged one
// could send the "Open key" button anywhere; such a report gets no link.
func TestConsoleLinksNeedARegionName(t *testing.T) {
	for _, region := range []string{"evil.example/#", "us-east-1.evil.example/#", "us-east-1@evil.example", "US-EAST-1", "us-east-", "-east-1", "useast1", ""} {
		r := finding.Report{EventID: "e1", Region: region, Key: "arn:aws:kms:" + region + ":111122223333:key/k1"}
		if u := KeyConsoleURL(r); u != "" {
			t.Errorf("Region %q: key link %s", region, u)
		}
		if u := EventConsoleURL(r); u != "" {
			t.Errorf("Region %q: event link %s", region, u)
		}
	}
	for _, region := range []string{"us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-5"} {
		r := finding.Report{EventID: "e1", Region: region, Key: "arn:aws:kms:" + region + ":111122223333:key/k1"}
		if !strings.HasPrefix(KeyConsoleURL(r), "https://"+region+".console.aws.amazon.com/") || !strings.HasPrefix(EventConsoleURL(r), "https://"+region+".console.aws.amazon.com/") {
			t.Errorf("Region %q: links %q %q", region, KeyConsoleURL(r), EventConsoleURL(r))
		}
	}
}

// TestSampleSlackPayloadsHoldNoControlSyntax renders the Slack message of every sample report
// in events/ (events/97-hostile-object-key-injection among them): no text Slack parses holds
// '<' or '>', and no text holds a control character but kmsfix's own line feeds.
func TestSampleSlackPayloadsHoldNoControlSyntax(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*", "golden.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample reports under events/: %v", err)
	}
	sawHostile := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var r finding.Report
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if r.Ignored != "" {
				continue
			}
			kinds, texts := slackTexts(t, NewNotice(r))
			for i, s := range texts {
				if (kinds[i] == "mrkdwn" || kinds[i] == "fallback") && strings.ContainsAny(s, "<>") {
					t.Errorf("%s: %s text holds < or >: %q", f, kinds[i], s)
				}
				for _, c := range s {
					if c != '\n' && (unicode.IsControl(c) || unicode.Is(unicode.Cf, c)) {
						t.Errorf("%s: %s text holds %U", f, kinds[i], c)
						break
					}
				}
				if strings.Contains(s, "&lt;!channel&gt;") {
					sawHostile = true
				}
			}
		}
	}
	if !sawHostile {
		t.Error("no sample carried a Slack mention: events/97-hostile-object-key-injection is not being read")
	}
}
