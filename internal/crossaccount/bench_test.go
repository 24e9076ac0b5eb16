package crossaccount_test

import (
	"context"
	"testing"
)

// BenchmarkReceive is the key owner's work for one accepted request, without AWS: envelope
// and detail decoding, every check, rebuilding the statement, and verifying it against the
// key policy (the account id is cached after the first call).
func BenchmarkReceive(b *testing.B) {
	t := &testing.T{}
	event := envelope(t, callerAcct, detailOf(t, callerReport(t, sampleKey)))
	rc := receiver(t, keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)}, ownerAcct)
	ctx := context.Background()
	if _, _, _, _, err := rc.Receive(ctx, event); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, _, err := rc.Receive(ctx, event); err != nil {
			b.Fatal(err)
		}
	}
}
