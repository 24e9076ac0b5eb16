package cloudtrail

import (
	"bytes"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	raw := readTestdata(b, "envelope-decrypt-role.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		it, err := Parse(raw)
		if err != nil || it.Denial == nil {
			b.Fatal(err, it.Ignored)
		}
	}
}

func BenchmarkParseMessage(b *testing.B) {
	text := "User: " + testSession + " is not authorized to perform: kms:Decrypt on resource: " + testKey +
		" because no identity-based policy allows the kms:Decrypt action"
	b.ReportAllocs()
	for b.Loop() {
		if m := ParseMessage(text); m.Kind != MsgNoIdentityAllow {
			b.Fatal(m.Kind)
		}
	}
}

// BenchmarkReadAll reads the 4-record log file: per-op figures are for 4 records.
func BenchmarkReadAll(b *testing.B) {
	raw := readTestdata(b, "logfile.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		items, err := ReadAll(bytes.NewReader(raw), "logfile.json")
		if err != nil || len(items) != 4 {
			b.Fatal(err, len(items))
		}
	}
}
