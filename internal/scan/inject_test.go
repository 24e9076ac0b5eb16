package scan

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// TestTableEscapesHostileFields: a record's values (a bucket, a principal or a key the
// record names) cannot add a row, shift a column or send the terminal an escape sequence.
func TestTableEscapesHostileFields(t *testing.T) {
	hostile := "x\n1\t2026-01-01\tverified\x1b[2K\u202e"
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	res := &Result{Since: now, Until: now, Groups: []Group{{Count: 1, FirstSeen: now, LastSeen: now,
		Report: finding.Report{Diagnosis: finding.KeyPolicyMissing, Actions: []string{"kms:Decrypt"},
			Principal: hostile, Key: hostile, Bucket: hostile}}}}
	var buf bytes.Buffer
	if err := WriteTable(&buf, res); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if lines := strings.Count(out, "\n"); lines != 3 { // header, one row, summary
		t.Errorf("%d lines, want 3:\n%s", lines, out)
	}
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			t.Errorf("the table holds %U:\n%q", r, out)
		}
	}
	row := strings.Fields(strings.Split(out, "\n")[1])
	if len(row) != 10 { // the two times are two fields each
		t.Errorf("the row has %d fields, want 10: %q", len(row), row)
	}
}
