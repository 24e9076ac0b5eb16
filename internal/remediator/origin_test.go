package remediator

import (
	"context"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// countingApplier records that Apply was reached.
type countingApplier struct{ calls int }

func (c *countingApplier) Apply(context.Context, *finding.Report, *world.World) error {
	c.calls++
	return nil
}

// Issue 15 item 2: the single-account function refuses records of another account and
// anything that is not its rule's envelope, before parsing: nothing reaches the notifier or
// the applier. Each case fails if the weakness returns.
func TestForeignEventsRefused(t *testing.T) {
	event, wj := sample(t, "01-identity-policy-missing") // an envelope of account 210987654321
	const own = "210987654321"
	ev := string(event)
	detail := ev[strings.Index(ev, `"detail": {`)+len(`"detail": `) : strings.LastIndex(ev, "}")]
	cases := map[string]struct {
		account, event, want string
	}{
		"another account's envelope":        {"111122223333", ev, `an event of account "210987654321"`},
		"a bare record (direct invocation)": {own, detail, "not an EventBridge event"},
		"recipientAccountId of another account": {own, strings.Replace(ev, `"recipientAccountId": "210987654321"`, `"recipientAccountId": "999988887777"`, 1),
			`recipientAccountId`},
		"another detail-type": {own, strings.Replace(ev, "AWS API Call via CloudTrail", "AWS Service Event via CloudTrail", 1), "is not a CloudTrail record of a KMS call"},
		"another source":      {own, strings.Replace(ev, `"source": "aws.kms"`, `"source": "custom.forged"`, 1), "is not a CloudTrail record of a KMS call"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.event == ev && c.account == own {
				t.Fatal("test setup: the case changes nothing")
			}
			x := newHarness(t, wj, clean)
			ap := &countingApplier{}
			x.h.Applier, x.h.Account = ap, c.account
			rep, err := x.h.Handle(context.Background(), []byte(c.event))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(rep.Ignored, c.want) || rep.Diagnosis != "" || len(x.notes.got) != 0 || ap.calls != 0 {
				t.Fatalf("ignored %q (want %q), diagnosis %q, notified %d, applied %d", rep.Ignored, c.want, rep.Diagnosis, len(x.notes.got), ap.calls)
			}
			if l := x.lines(t, &x.logs); len(l) != 1 || l[0]["outcome"] != "rejected" {
				t.Fatalf("log = %v", l)
			}
		})
	}
	// Its own account's envelope goes through.
	x := newHarness(t, wj, clean)
	x.h.Account = own
	rep, err := x.h.Handle(context.Background(), event)
	if err != nil || rep.Diagnosis != finding.IdentityPolicyMissing || len(x.notes.got) != 1 {
		t.Fatalf("own account: %v %q ignored %q", err, rep.Diagnosis, rep.Ignored)
	}
}
