package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func gzipped(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts { // one gzip member each, as `cat a.gz b.gz` gives
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// summary is what the stream tests compare: event id, and "deny:<kind>" or the ignored reason.
func summary(items []Item) []string {
	var out []string
	for _, it := range items {
		s := it.Source + " " + it.EventID + " "
		if it.Denial != nil {
			s += "deny:" + string(it.Denial.Message.Kind)
		} else {
			s += "ignored:" + it.Ignored
		}
		out = append(out, s)
	}
	return out
}

func TestReadAll(t *testing.T) {
	env := readTestdata(t, "envelope-decrypt-role.json")
	bare := readTestdata(t, "bare-generatedatakey-user.json")
	logFile := readTestdata(t, "logfile.json")
	const (
		envLine  = "9bbaf034-90ca-4c86-ab61-7203230f9eb4 deny:no-identity-allow"
		bareLine = "7d853b24-80a5-48c1-8a11-feb8f416e69b deny:no-resource-allow"
	)
	logLines := []string{
		"0a1b2c3d-1111-4aaa-8bbb-000000000001 ignored:KMS Decrypt succeeded (no errorCode)",
		envLine,
		"0a1b2c3d-1111-4aaa-8bbb-000000000002 ignored:not a KMS call (eventSource s3.amazonaws.com)",
		bareLine,
	}
	numbered := func(src string, lines ...string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = src + "#" + string(rune('1'+i)) + " " + l
		}
		return out
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, []byte("\n")) }

	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"envelope", env, []string{"in.json#1 " + envLine}},
		{"bare record", bare, []string{"in.json#1 " + bareLine}},
		{"log file", logFile, numbered("in.json", logLines...)},
		{"gzip log file", gzipped(t, logFile), numbered("in.json", logLines...)},
		{"empty log file", []byte(`{"Records": []}`), nil},
		{"log file with other members", []byte(`{"Records": [` + string(bare) + `], "Digest": {"x": [1, 2]}}`), []string{"in.json#1 " + bareLine}},
		{"concatenated pretty values", join(env, bare, logFile), numbered("in.json", append([]string{envLine, bareLine}, logLines...)...)},
		{"JSON lines", join(compact(t, env), compact(t, bare), nil), numbered("in.json", envLine, bareLine)},
		{"no separator", append(compact(t, bare), compact(t, env)...), numbered("in.json", bareLine, envLine)},
		{"jq -s array", []byte("[" + string(env) + ",\n" + string(bare) + "]"), numbered("in.json", envLine, bareLine)},
		{"concatenated gzip members", gzipped(t, env, bare), numbered("in.json", envLine, bareLine)},
		{"lookup-events output", readTestdata(t, "lookup-events.json"), numbered("in.json", envLine,
			"9952ada2-c9eb-4c5d-a888-2c4b9f08e1d9 deny:disabled")},
		{"leading whitespace", append([]byte("\n\n  \t"), bare...), []string{"in.json#1 " + bareLine}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := ReadAll(bytes.NewReader(tt.in), "in.json")
			if err != nil {
				t.Fatal(err)
			}
			got := summary(items)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestReadAllRecordBytes: a record read from a log file keeps its own bytes as Record.
func TestReadAllRecordBytes(t *testing.T) {
	items, err := ReadAll(bytes.NewReader(readTestdata(t, "logfile.json")), "logfile.json")
	if err != nil {
		t.Fatal(err)
	}
	var lf struct{ Records []json.RawMessage }
	if err := json.Unmarshal(readTestdata(t, "logfile.json"), &lf); err != nil {
		t.Fatal(err)
	}
	if d := items[1].Denial; d == nil || !bytes.Equal(d.Record, lf.Records[1]) {
		t.Errorf("Record of logfile.json#2 is not the record's bytes")
	}
	// A bare record at top level is rebuilt from its members: same JSON value.
	items, err = ReadAll(bytes.NewReader(readTestdata(t, "bare-generatedatakey-user.json")), "bare.json")
	if err != nil {
		t.Fatal(err)
	}
	checkRecord(t, readTestdata(t, "bare-generatedatakey-user.json"), items[0].Denial.Record)
}

func TestReadAllMalformed(t *testing.T) {
	bare := string(compact(t, readTestdata(t, "bare-generatedatakey-user.json")))
	env := string(compact(t, readTestdata(t, "envelope-decrypt-role.json")))
	logFile := string(readTestdata(t, "logfile.json"))
	tests := []struct {
		name      string
		in        []byte
		wantItems int
		wantErr   []string // substrings
	}{
		{"empty input", nil, 0, []string{"f.json: no JSON value"}},
		{"only whitespace", []byte(" \n "), 0, []string{"f.json: no JSON value"}},
		{"truncated record", []byte(bare[:len(bare)/2]), 0, []string{"f.json: record 1:", "input ends inside a JSON value"}},
		{"truncated second value", []byte(env + "\n" + bare[:100]), 1, []string{"f.json: record 2:"}},
		{"garbage after a record", []byte(env + "\n}{"), 1, []string{"f.json: record 2: byte 1924", "'}' is not a JSON object"}},
		{"garbage inside the second record", []byte(env + "\n{]"), 1, []string{"f.json: record 2:", "invalid JSON at byte"}},
		{"top-level number", []byte(env + "\n42"), 1, []string{"f.json: record 2: byte", "a number is not a JSON object"}},
		{"top-level string", []byte(`"hello"`), 0, []string{"f.json: record 1: byte 0", "a string is not a JSON object"}},
		{"not a record", []byte(env + "\n" + `{"eventSource": "kms.amazonaws.com", "eventName": 5}`), 1, []string{"f.json: record 2:", "not a CloudTrail record"}},
		{"log file, bad record 3", []byte(`{"Records": [` + bare + "," + env + `, {"eventSource": "kms.amazonaws.com", "eventVersion": "1.11"}, ` + bare + `]}`), 3,
			[]string{"f.json: record 3:", "no eventName"}},
		{"log file, record 2 is not an object", []byte(`{"Records": [` + bare + `, 7, ` + bare + `]}`), 2,
			[]string{"f.json: record 2:", "not a JSON object"}},
		{"log file truncated in record 3", []byte(logFile[:strings.Index(logFile, `"s3.amazonaws.com"`)]), 2,
			[]string{"f.json: record 3:", "input ends inside a JSON value"}},
		{"log file, syntax error in record 2", []byte(`{"Records": [` + bare + `, {"eventVersion": 1.11.1}]}`), 1,
			[]string{"f.json: record 2:", "invalid JSON at byte"}},
		{"lookup-events entry without CloudTrailEvent", []byte(`{"Events": [{"CloudTrailEvent": ` + strconv.Quote(bare) + `}, {"EventId": "x"}]}`), 1,
			[]string{"f.json: record 2:", "without CloudTrailEvent"}},
		{"lookup-events entry that is not a record", []byte(`{"Events": [{"CloudTrailEvent": "[1]"}]}`), 0,
			[]string{"f.json: record 1:", "not a JSON object"}},
		{"Records not an array", []byte(`{"Records": {"a": 1}}`), 0, []string{"f.json: value 1", "Records is '{', not an array"}},
		{"bad gzip", append([]byte{0x1f, 0x8b}, "not gzip at all"...), 0, []string{"f.json: gzip"}},
		{"truncated gzip", gzipped(t, []byte(env+"\n"+bare))[:60], 0, []string{"f.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := ReadAll(bytes.NewReader(tt.in), "f.json")
			if err == nil {
				t.Fatalf("no error; %d items", len(items))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if len(items) != tt.wantItems {
				t.Errorf("got %d items before the error, want %d", len(items), tt.wantItems)
			}
			for i, it := range items {
				if it.Denial == nil && it.Ignored == "" {
					t.Errorf("item %d has neither Denial nor Ignored", i)
				}
				if !strings.HasPrefix(it.Source, "f.json#") {
					t.Errorf("item %d Source = %q, want f.json#N", i, it.Source)
				}
			}
		})
	}
}
