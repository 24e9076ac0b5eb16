package notify

import (
	"encoding/json"
	"testing"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// BenchmarkSlackMessage: rendering the Block Kit message of a cross-account finding (two
// patches) and encoding it as the webhook body.
func BenchmarkSlackMessage(b *testing.B) {
	n := NewNotice(sampleReports(b)[finding.CrossAccountAccessMissing])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(SlackMessage(n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishInput: the SNS message (report JSON, e-mail text, subject, attributes).
func BenchmarkPublishInput(b *testing.B) {
	n := NewNotice(sampleReports(b)[finding.CrossAccountAccessMissing])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PublishInput("arn:aws:sns:us-east-1:111122223333:kmsfix", n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	r := sampleReports(b)[finding.CrossAccountAccessMissing]
	b.ReportAllocs()
	for b.Loop() {
		finding.Fingerprint(r)
	}
}
