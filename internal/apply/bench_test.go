package apply

import (
	"fmt"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
)

// BenchmarkDecide is the pure guard for an identity-policy finding of an IAM user in the
// key's account: it builds and verifies the key-policy and grant alternatives with the
// engine's evaluator. (It used an Identity Center role until those were refused outright.)
func BenchmarkDecide(b *testing.B) {
	key := keyARNIn(sandbox)
	userARN := "arn:aws:iam::111122223333:user/uploader"
	w := worldFor(key, keyPolicy(sandbox, true), userARN)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, kind: cloudtrail.KindUser, principal: userARN}, w)
	s := settings()
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(s, &r, denialOf(&r), w); len(d.Candidates) == 0 {
			b.Fatal(d.Refusal)
		}
	}
}

// BenchmarkApplyRevertKeyPolicy is one key-policy change made, verified, recorded and
// reverted against local-kms, dynalite and the Access Analyzer fake on loopback.
func BenchmarkApplyRevertKeyPolicy(b *testing.B) {
	e := newEnv(b, adminOnly)
	w := e.world()
	i := 0
	for b.Loop() {
		i++
		r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: fmt.Sprint("ev-", i)}, w)
		if err := e.a.Apply(ctx, &r, denialOf(&r), w); err != nil || r.Applied == nil {
			b.Fatalf("apply: %v %q", err, r.AutoApplyBlocked)
		}
		if _, err := e.a.Revert(ctx, r.Applied.ID); err != nil {
			b.Fatal(err)
		}
	}
}
