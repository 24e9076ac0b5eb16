package cloudtrail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// readEach reads every record of in with lim and returns the summary lines of the items and
// the errors, in order.
func readEach(t *testing.T, in []byte, lim Limits) (got []string, errs []error) {
	t.Helper()
	rd := NewReader(bytes.NewReader(in), "f.json", lim)
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return got, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, summary([]Item{it})...)
	}
}

// TestReaderGoesOnAfterABadRecord: the records after one that cannot be read are read, in a
// log file, an array and JSON lines; each bad record is a *RecordError naming file and index.
func TestReaderGoesOnAfterABadRecord(t *testing.T) {
	bare := string(compact(t, readTestdata(t, "bare-generatedatakey-user.json")))
	bad := `{"eventSource":"kms.amazonaws.com","eventName":5}`
	insight := `{"eventVersion":"1.08","eventType":"AwsCloudTrailInsight","eventID":"i-1","insightDetails":{"eventSource":"kms.amazonaws.com"}}`
	other := `{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventID":"e-1","userIdentity":"odd","resources":7}`
	for name, in := range map[string]string{
		"log file":   `{"Records":[` + bare + "," + bad + "," + insight + "," + other + "," + bare + `]}`,
		"array":      `[` + bare + "," + bad + "," + insight + "," + other + "," + bare + `]`,
		"JSON lines": bare + "\n" + bad + "\n" + insight + "\n" + other + "\n" + bare + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, errs := readEach(t, []byte(in), Limits{})
			want := []string{
				"f.json#1 7d853b24-80a5-48c1-8a11-feb8f416e69b deny:no-resource-allow",
				"f.json#3 i-1 ignored:" + noEventSource,
				"f.json#4 e-1 ignored:not a KMS call (eventSource ec2.amazonaws.com)",
				"f.json#5 7d853b24-80a5-48c1-8a11-feb8f416e69b deny:no-resource-allow",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			var re *RecordError
			if len(errs) != 1 || !errors.As(errs[0], &re) || re.Index != 2 || re.Source != "f.json" ||
				!strings.HasPrefix(errs[0].Error(), "f.json: record 2: ") {
				t.Errorf("errors %v, want one *RecordError for f.json record 2", errs)
			}
		})
	}
}

// TestReaderRecordLimit: a record over MaxRecord is reported with its size and skipped, the
// next one is read.
func TestReaderRecordLimit(t *testing.T) {
	bare := string(compact(t, readTestdata(t, "bare-generatedatakey-user.json")))
	big := `{"eventSource":"s3.amazonaws.com","eventID":"big","pad":"` + strings.Repeat("x", 10000) + `"}`
	for name, in := range map[string]string{
		"log file":  `{"Records":[` + big + "," + bare + `]}`,
		"top level": big + bare,
	} {
		t.Run(name, func(t *testing.T) {
			got, errs := readEach(t, []byte(in), Limits{MaxRecord: 4096})
			if len(got) != 1 || !strings.HasPrefix(got[0], "f.json#2 7d853b24") {
				t.Errorf("items %q, want record 2 only", got)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), "f.json: record 1: 10") ||
				!strings.Contains(errs[0].Error(), "more than the 4096-byte record limit") {
				t.Errorf("errors %v", errs)
			}
		})
	}
}

// TestReaderEndsInput: grammar errors, truncation and depth end the input with an error
// naming the record and byte offset; what came before is read.
func TestReaderEndsInput(t *testing.T) {
	bare := string(compact(t, readTestdata(t, "bare-generatedatakey-user.json")))
	tests := []struct {
		name, in string
		items    int
		want     string
	}{
		{"trailing comma in Records", `{"Records":[` + bare + `,]}`, 1, `f.json: record 2: invalid JSON`},
		{"bad literal", `[` + bare + `,{"a":tru}]`, 1, "invalid literal"},
		{"bad number", `[{"a":01}]`, 0, "record 1: invalid JSON"},
		{"bad escape", `[{"a":"\x"}]`, 0, "invalid escape"},
		{"control character", "[{\"a\":\"\x01\"}]", 0, "control character"},
		{"too deep", `[` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `]`, 0, "nested deeper than 50 levels"},
		{"truncated Records", `{"Records":[` + bare, 1, "record 2: input ends inside a JSON value"},
		{"after Records", `{"Records":[` + bare + `] x`, 1, `unexpected 'x' after the Records array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := readEach(t, []byte(tt.in), Limits{MaxDepth: 50})
			if len(got) != tt.items {
				t.Errorf("items %q, want %d", got, tt.items)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("errors %v, want one with %q", errs, tt.want)
			}
			if len(errs) == 1 && errors.As(errs[0], new(*RecordError)) {
				t.Errorf("%v is a *RecordError, want an error that ends the input", errs[0])
			}
		})
	}
}

// TestReaderResync: in line-oriented input (JSON lines, concatenated pretty-printed values)
// a record that breaks the grammar is reported and reading goes on at the next line that
// starts with '{': a truncated line, garbage, a grammar error, a value that is not an object.
func TestReaderResync(t *testing.T) {
	bare := string(compact(t, readTestdata(t, "bare-generatedatakey-user.json")))
	pretty := string(readTestdata(t, "envelope-decrypt-role.json"))
	in := strings.Join([]string{
		bare,
		bare[:len(bare)/2], // truncated: the next line is read as part of it, then given back
		bare,
		`{"a":1,}`,
		bare,
		`eventID,eventName`,
		pretty,
		`{"broken": [1, 2}`,
		pretty,
		bare[:40],
	}, "\n")
	got, errs := readEach(t, []byte(in), Limits{})
	var read []string
	for _, g := range got {
		read = append(read, strings.Fields(g)[0])
	}
	if want := "f.json#1 f.json#3 f.json#5 f.json#7 f.json#9"; strings.Join(read, " ") != want {
		t.Errorf("records read: %v, want %s", read, want)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	wants := []string{"f.json: record 2: invalid JSON", "f.json: record 4: invalid JSON", "f.json: record 6: byte ", "f.json: record 8: invalid JSON", "f.json: record 10: input ends inside a JSON value"}
	if len(msgs) != len(wants) {
		t.Fatalf("errors:\n%s\nwant %d", strings.Join(msgs, "\n"), len(wants))
	}
	for i, w := range wants {
		if !strings.Contains(msgs[i], w) {
			t.Errorf("error %d %q does not say %q", i, msgs[i], w)
		}
	}
	for _, e := range errs[:4] {
		if !errors.As(e, new(*RecordError)) {
			t.Errorf("%v is not a *RecordError", e)
		}
	}
}

// TestReaderEncodings: BOM, UTF-16 (with or without BOM) are read; invalid UTF-8 and
// UTF-32 are refused with the place.
func TestReaderEncodings(t *testing.T) {
	bare := string(compact(t, readTestdata(t, "bare-generatedatakey-user.json")))
	want := "f.json#1 7d853b24-80a5-48c1-8a11-feb8f416e69b deny:no-resource-allow"
	u16 := func(s string, big, bom bool) []byte {
		units := utf16.Encode([]rune(s))
		if bom {
			units = append([]uint16{0xfeff}, units...)
		}
		var b []byte
		for _, u := range units {
			if big {
				b = append(b, byte(u>>8), byte(u))
			} else {
				b = append(b, byte(u), byte(u>>8))
			}
		}
		return b
	}
	for name, in := range map[string][]byte{
		"UTF-8 BOM":          append([]byte("\xef\xbb\xbf"), bare...),
		"UTF-16LE BOM":       u16(bare, false, true),
		"UTF-16BE BOM":       u16(bare, true, true),
		"UTF-16LE":           u16(" "+bare, false, false),
		"UTF-16BE":           u16(bare, true, false),
		"gzip of UTF-16 BOM": gzipped(t, u16(bare, false, true)),
	} {
		t.Run(name, func(t *testing.T) {
			got, errs := readEach(t, in, Limits{})
			if len(errs) != 0 || len(got) != 1 || got[0] != want {
				t.Errorf("items %q errors %v", got, errs)
			}
		})
	}

	badUTF8 := strings.Replace(bare, "report-uploader", "report-\xff-uploader", 1)
	got, errs := readEach(t, []byte(bare+"\n"+badUTF8+"\n"+bare), Limits{})
	at := len(bare) + 1 + strings.Index(badUTF8, "\xff")
	if len(got) != 2 || len(errs) != 1 || !strings.Contains(errs[0].Error(), fmt.Sprintf("record 2: invalid UTF-8 at byte %d", at)) {
		t.Errorf("invalid UTF-8: items %q errors %v, want record 2 refused at byte %d", got, errs, at)
	}

	lone := append(append(u16(bare[:20], false, true), 0x00, 0xd8), u16(`"x"}`, false, false)...) // a high surrogate alone
	_, errs = readEach(t, lone, Limits{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "UTF-16") {
		t.Errorf("unpaired surrogate: errors %v", errs)
	}
	_, errs = readEach(t, []byte("\x00\x00\x00{"), Limits{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "UTF-32") {
		t.Errorf("UTF-32: errors %v", errs)
	}
}

// TestReaderGzipGuard: a gzip input that expands too much is stopped with
// ErrDecompressionLimit once DefaultRatioFloor bytes are out, and past MaxExpanded in any case.
func TestReaderGzipGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 20 MiB")
	}
	spaces := gzipped(t, bytes.Repeat([]byte(" "), DefaultRatioFloor+4<<20))
	_, errs := readEach(t, spaces, Limits{})
	if len(errs) != 1 || !errors.Is(errs[0], ErrDecompressionLimit) || !strings.HasPrefix(errs[0].Error(), "f.json: ") {
		t.Errorf("whitespace bomb: errors %v", errs)
	}
	bare := compact(t, readTestdata(t, "bare-generatedatakey-user.json"))
	many := gzipped(t, bytes.Repeat(append(bare, '\n'), 40))
	got, errs := readEach(t, many, Limits{MaxExpanded: int64(10 * len(bare))})
	if len(got) < 5 || len(got) > 10 || len(errs) != 1 || !errors.Is(errs[0], ErrDecompressionLimit) {
		t.Errorf("size limit: %d items, errors %v", len(got), errs)
	}
}

// TestReaderStreamsStdin: each record is returned as soon as it is complete, while the
// writer still holds the pipe open.
func TestReaderStreamsStdin(t *testing.T) {
	bare := compact(t, readTestdata(t, "bare-generatedatakey-user.json"))
	for _, form := range []string{"JSON lines", "log file", "array"} {
		t.Run(form, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			rd := NewReader(pr, "stdin", Limits{})
			open, sep, end := "", "\n", ""
			switch form {
			case "log file":
				open, sep, end = `{"Records":[`, ",", "]}"
			case "array":
				open, sep, end = "[", ",", "]"
			}
			items := make(chan Item)
			go func() {
				defer close(items)
				for {
					it, err := rd.Next()
					if err != nil {
						return
					}
					items <- it
				}
			}()
			for i := range 3 {
				chunk := string(bare)
				if i == 0 {
					chunk = open + chunk
				} else {
					chunk = sep + chunk
				}
				if _, err := pw.Write([]byte(chunk)); err != nil {
					t.Fatal(err)
				}
				select {
				case it := <-items:
					if it.Denial == nil {
						t.Fatalf("record %d: %+v", i+1, it)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("record %d was written but not returned while the pipe is open", i+1)
				}
			}
			if _, err := pw.Write([]byte(end)); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			if it, ok := <-items; ok {
				t.Errorf("extra item %+v", it)
			}
		})
	}
}

// TestReaderWhitespaceAndNesting: long whitespace runs and deep nesting up to the limit are
// read in one pass (json.Decoder.Token rescans buffered whitespace at each refill: quadratic).
func TestReaderWhitespaceAndNesting(t *testing.T) {
	bare := compact(t, readTestdata(t, "bare-generatedatakey-user.json"))
	ws := bytes.Repeat([]byte(" \n\t\r"), 4<<20) // 16 MiB
	in := append(append(append([]byte(`{"Records":[`), ws...), bare...), "]}"...)
	in = append(in, ws...)
	got, errs := readEach(t, in, Limits{})
	if len(got) != 1 || len(errs) != 0 {
		t.Errorf("items %q errors %v", got, errs)
	}
	deep := `{"eventSource":"s3.amazonaws.com","eventID":"d","x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "}"
	got, errs = readEach(t, []byte(deep), Limits{})
	if len(got) != 1 || len(errs) != 0 {
		t.Errorf("deep: items %q errors %v", got, errs)
	}
}
