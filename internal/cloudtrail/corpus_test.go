package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpora in testdata/fuzz from the samples")

// TestFuzzSeedCorpus keeps testdata/fuzz/<FuzzName>/ in step with the realistic samples and
// message cases: run `go test ./internal/cloudtrail -run TestFuzzSeedCorpus -update-corpus`
// after changing them. Files the fuzzer adds (failing inputs) are left alone.
func TestFuzzSeedCorpus(t *testing.T) {
	for target, seeds := range seedCorpora(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, content := range seeds {
			path := filepath.Join(dir, name)
			if *updateCorpus {
				if err := os.WriteFile(path, content, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !sameSeed(t, got, content) {
				t.Errorf("%s is missing or stale: run go test ./internal/cloudtrail -run TestFuzzSeedCorpus -update-corpus", path)
			}
		}
	}
}

// sameSeed compares two seed files; gzip seeds by what they decompress to, since the
// compressed bytes change with the Go release's compress/flate.
func sameSeed(t *testing.T, a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	unwrap := func(f []byte) []byte {
		s, ok := strings.CutPrefix(string(f), "go test fuzz v1\n[]byte(")
		if !ok {
			return nil
		}
		q, err := strconv.Unquote(strings.TrimSuffix(s, ")\n"))
		if err != nil {
			return nil
		}
		zr, err := gzip.NewReader(strings.NewReader(q))
		if err != nil {
			return nil
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil
		}
		return out
	}
	ua, ub := unwrap(a), unwrap(b)
	return ua != nil && bytes.Equal(ua, ub)
}

// seedCorpora returns, per fuzz target, file name -> file content in the `go test fuzz v1`
// format.
func seedCorpora(t *testing.T) map[string]map[string][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in testdata: %v", err)
	}
	sort.Strings(files)
	parse, readAll, msgs := map[string][]byte{}, map[string][]byte{}, map[string][]byte{}
	bytesSeed := func(b []byte) []byte {
		return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
	}
	stringSeed := func(s string) []byte {
		return []byte("go test fuzz v1\nstring(" + strconv.Quote(s) + ")\n")
	}
	var records [][]byte
	for _, f := range files {
		raw := readTestdata(t, filepath.Base(f))
		name := "sample-" + strings.TrimSuffix(filepath.Base(f), ".json")
		readAll[name] = bytesSeed(raw)
		readAll[name+"-gzip"] = bytesSeed(gzipped(t, raw))
		var lf struct {
			Records []json.RawMessage
			Events  []struct{ CloudTrailEvent string }
		}
		if json.Unmarshal(raw, &lf) == nil && lf.Events != nil {
			for i, e := range lf.Events {
				parse[fmt.Sprintf("%s-event-%d", name, i+1)] = bytesSeed([]byte(e.CloudTrailEvent))
			}
			continue
		}
		if json.Unmarshal(raw, &lf) == nil && lf.Records != nil {
			for i, r := range lf.Records {
				parse[fmt.Sprintf("%s-record-%d", name, i+1)] = bytesSeed(compact(t, r))
				records = append(records, compact(t, r))
			}
			continue
		}
		parse[name] = bytesSeed(raw)
		parse[name+"-compact"] = bytesSeed(compact(t, raw))
		records = append(records, compact(t, raw))
	}
	readAll["stream-json-lines"] = bytesSeed(append(bytes.Join(records, []byte("\n")), '\n'))
	readAll["stream-array"] = bytesSeed([]byte("[" + string(bytes.Join(records, []byte(","))) + "]"))
	for i, s := range []string{`{}`, `{"Records":[]}`, `[]`, `{"Records":[{}]}`, "{\"eventID\":\"x\"}\n42"} {
		readAll[fmt.Sprintf("edge-%d", i+1)] = bytesSeed([]byte(s))
		parse[fmt.Sprintf("edge-%d", i+1)] = bytesSeed([]byte(s))
	}

	word := regexp.MustCompile(`[^a-z0-9]+`)
	for _, c := range messageCases {
		msgs["msg-"+strings.Trim(word.ReplaceAllString(strings.ToLower(c.name), "-"), "-")] = stringSeed(c.text)
	}
	return map[string]map[string][]byte{"FuzzParse": parse, "FuzzReadAll": readAll, "FuzzParseMessage": msgs}
}
