package cloudtrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ (built from the realistic samples in
// testdata/); `go test` runs them as regression tests, `make fuzz-short` / `make fuzz`
// explore further.

// FuzzParse: Parse never panics; a result is exactly one of Denial or Ignored, carries the
// event id, and a Denial has the fields the engine relies on.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		it, err := Parse(raw)
		if err != nil {
			if it != (Item{}) {
				t.Fatalf("error %v with a non-empty item %+v", err, it)
			}
			return
		}
		checkItem(t, it)
		// The record bytes are what encoding/json finds: the detail of an envelope, else the input.
		if d := it.Denial; d != nil {
			var x struct {
				DetailType  string          `json:"detail-type"`
				Detail      json.RawMessage `json:"detail"`
				EventSource string          `json:"eventSource"`
			}
			_ = json.Unmarshal(bytes.TrimSpace(raw), &x)
			want := bytes.TrimSpace(raw)
			if x.DetailType != "" || (len(x.Detail) > 0 && x.EventSource == "") {
				want = x.Detail
			}
			if !bytes.Equal(d.Record, want) {
				t.Fatalf("Record %q, want %q", d.Record, want)
			}
		}
	})
}

// FuzzMemberValue: memberValue agrees with encoding/json whenever it answers.
func FuzzMemberValue(f *testing.F) {
	f.Add([]byte(`{"detail":{"a":"}"},"DETAIL":[1]}`))
	f.Fuzz(func(t *testing.T, obj []byte) {
		var d struct {
			Detail json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(obj, &d) != nil {
			return
		}
		got, ok := memberValue(obj, "detail")
		if ok && !bytes.Equal(got, d.Detail) {
			t.Fatalf("memberValue = %q, encoding/json = %q", got, d.Detail)
		}
	})
}

func checkItem(t *testing.T, it Item) {
	t.Helper()
	if (it.Denial == nil) == (it.Ignored == "") {
		t.Fatalf("item must have exactly one of Denial or Ignored: %+v", it)
	}
	d := it.Denial
	if d == nil {
		return
	}
	if d.EventID != it.EventID || len(d.Actions) == 0 || !strings.HasPrefix(d.Actions[0], "kms:") {
		t.Fatalf("denial without EventID or Actions: %+v", d)
	}
	// A context that is not an S3 ARN is kept with a Doubt, without ContextARN.
	if d.Message.Kind == "" || d.Identity.Kind == "" || d.ContextARN == "" && d.Doubt == "" {
		t.Fatalf("denial without Message.Kind, Identity.Kind or ContextARN (or Doubt): %+v", d)
	}
	if d.Identity.Editable == (d.Identity.NotEditable != "") {
		t.Fatalf("Editable %v with NotEditable %q", d.Identity.Editable, d.Identity.NotEditable)
	}
	if d.KeyARN != "" && !isKeyARN(d.KeyARN) {
		t.Fatalf("KeyARN %q is not a key ARN", d.KeyARN)
	}
	if !json.Valid(d.Record) {
		t.Fatalf("Record is not valid JSON: %q", d.Record)
	}
}

// FuzzParseMessage: ParseMessage and Classify never panic, always name a kind, and every
// part they return is cut from the input.
func FuzzParseMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		for _, code := range []string{"", "AccessDenied", "KMS.DisabledException", "NotFoundException", "KMSInvalidStateException"} {
			m := Classify(code, text)
			if m.Kind == "" || m.Text != text {
				t.Fatalf("Classify(%q, %q) = %+v", code, text, m)
			}
			for _, part := range []string{m.Caller, m.Action, m.Resource, m.PolicyPhrase, m.PolicyARN} {
				if !strings.Contains(text, part) {
					t.Fatalf("part %q is not in the input %q", part, text)
				}
			}
			if m.Kind == MsgNoAllow && m.PolicyType == "" {
				t.Fatalf("MsgNoAllow without a policy type: %+v", m)
			}
		}
	})
}

// FuzzReadAll: ReadAll never panics, returns well-formed items, and agrees with Parse on a
// single record.
func FuzzReadAll(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		items, err := ReadAll(bytes.NewReader(raw), "fuzz.json")
		for _, it := range items {
			checkItem(t, it)
			if !strings.HasPrefix(it.Source, "fuzz.json") {
				t.Fatalf("Source %q does not name the input", it.Source)
			}
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json") {
				t.Fatalf("error %q does not name the input", err)
			}
			return
		}
		one, perr := Parse(raw)
		if perr != nil || len(items) != 1 {
			return
		}
		a, b := items[0], one
		a.Source, b.Source = "", ""
		if a.Denial != nil && b.Denial != nil {
			da, db := *a.Denial, *b.Denial
			da.Record, db.Record = nil, nil
			a.Denial, b.Denial = &da, &db
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("ReadAll and Parse disagree:\n%+v\n%+v", a, b)
		}
	})
}

// FuzzReader: the streaming Reader, over every input form, never panics, names the input in
// every error, numbers records in order, keeps within its limits, and reads the same items
// and errors whether the input arrives at once or one byte at a time (every buffer
// boundary). Each seed is also given gzipped; the limits are small, so the decompression
// guard is reached by the seeds that expand to 128 KiB.
func FuzzReader(f *testing.F) {
	bare := readTestdataF(f, "bare-generatedatakey-user.json")
	env := readTestdataF(f, "envelope-decrypt-role.json")
	for _, seed := range [][]byte{
		bare, env,
		readTestdataF(f, "logfile.json"),
		readTestdataF(f, "lookup-events.json"),
		append(append([]byte("["), bare...), append([]byte(","), append(env, ']')...)...),
		append(append([]byte("\xef\xbb\xbf"), bare...), env...),
		[]byte("\xff\xfe{\x00}\x00"),
		[]byte(`{"Records":[{"eventSource":"kms.amazonaws.com","eventName":5},{"eventType":"AwsCloudTrailInsight"}],"x":[1]}`),
		[]byte(`{"Events":[{"CloudTrailEvent":"{\"eventSource\":\"s3.amazonaws.com\"}"},{}]}`),
		[]byte(strings.Repeat("[", 40) + strings.Repeat("]", 40)),
		[]byte(`{"a":"` + strings.Repeat("x", 3000) + `"}{"eventSource":"x"}`),
	} {
		f.Add(seed)
		f.Add(gzipped(f, seed))
	}
	// Decompression-guard inputs: one long string and a whitespace run, far past the
	// fuzz limits below once expanded (a few KB compressed each).
	f.Add(gzipped(f, append(append([]byte(`{"a":"`), bytes.Repeat([]byte("x"), 128<<10)...), `"}`...)))
	f.Add(gzipped(f, bytes.Repeat([]byte(" "), 128<<10)))
	lim := Limits{MaxRecord: 2048, MaxDepth: 32, MaxExpanded: 96 << 10, MaxRatio: 50, RatioFloor: 16 << 10}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := readForm(t, bytes.NewReader(in), lim)
		bytewise := readForm(t, iotest.OneByteReader(bytes.NewReader(in)), lim)
		// The ratio guard counts compressed bytes as read, which depends on read sizes.
		guarded := func(lines []string) bool {
			return len(lines) > 0 && strings.HasSuffix(lines[len(lines)-1], ErrDecompressionLimit.Error())
		}
		if !guarded(whole) && !guarded(bytewise) && !reflect.DeepEqual(whole, bytewise) {
			t.Fatalf("whole and byte-by-byte reads differ:\n%q\n%q", whole, bytewise)
		}
	})
}

// readForm reads every record of r and describes each item or error in a line.
func readForm(t *testing.T, r io.Reader, lim Limits) []string {
	rd := NewReader(r, "fuzz.json", lim)
	var out []string
	last := 0
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json") {
				t.Fatalf("error %q does not name the input", err)
			}
			var re *RecordError
			if errors.As(err, &re) {
				if re.Index <= last {
					t.Fatalf("record error index %d after %d", re.Index, last)
				}
				last = re.Index
			}
			out = append(out, "error: "+err.Error())
			continue
		}
		checkItem(t, it)
		n, perr := strconv.Atoi(strings.TrimPrefix(it.Source, "fuzz.json#"))
		if perr != nil || n <= last {
			t.Fatalf("Source %q after record %d", it.Source, last)
		}
		last = n
		if it.Denial != nil && len(it.Denial.Record) > lim.MaxRecord {
			t.Fatalf("record of %d bytes read past the %d-byte limit", len(it.Denial.Record), lim.MaxRecord)
		}
		out = append(out, it.Source+" "+it.EventID+" "+it.Ignored)
	}
}

func readTestdataF(f *testing.F, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}
