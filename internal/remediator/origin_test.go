package remediator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// countingApplier records that Apply was reached.
type countingApplier struct{ calls int }

func (c *countingApplier) Apply(context.Context, *finding.Report, *cloudtrail.Denial, *world.World) error {
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

// Issue 19 item 2: the hub accepts events of any account, but believes an envelope's account
// only when the record inside agrees; a forged or mismatched event is refused before the
// world is read in any account (the enricher is never called).
func TestHubForgedEventsRefused(t *testing.T) {
	event, wj := sample(t, "01-identity-policy-missing") // an envelope of account 210987654321
	const own, forger = "210987654321", "999988887777"
	ev := string(event)
	detail := ev[strings.Index(ev, `"detail": {`)+len(`"detail": `) : strings.LastIndex(ev, "}")]
	envAccount := func(s, acct string) string {
		return strings.Replace(s, `"account": "`+own+`"`, `"account": "`+acct+`"`, 1)
	}
	cases := map[string]struct{ event, want string }{
		"envelope of another account than the record's recipient": {envAccount(ev, forger), `recipientAccountId`},
		"a sender claiming another account's call as its own": {strings.Replace(envAccount(ev, forger),
			`"recipientAccountId": "`+own+`"`, `"recipientAccountId": "`+forger+`"`, 1), "names no resource of account " + forger},
		"a bare record":             {detail, "not an EventBridge event"},
		"an account that is no id":  {envAccount(ev, "21098765432x"), "is not an account id"},
		"another source on the bus": {strings.Replace(ev, `"source": "aws.kms"`, `"source": "custom.forged"`, 1), "is not a CloudTrail record of a KMS call"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.event == ev {
				t.Fatal("test setup: the case changes nothing")
			}
			x := newHarness(t, wj, clean)
			enr := &countingEnricher{Enricher: x.h.Enricher}
			x.h.Enricher, x.h.Hub = enr, true
			rep, err := x.h.Handle(context.Background(), []byte(c.event))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(rep.Ignored, c.want) || rep.Diagnosis != "" || len(x.notes.got) != 0 || enr.n != 0 {
				t.Fatalf("ignored %q (want %q), diagnosis %q, notified %d, enriched %d", rep.Ignored, c.want, rep.Diagnosis, len(x.notes.got), enr.n)
			}
			if l := x.lines(t, &x.logs); len(l) != 1 || l[0]["outcome"] != "rejected" {
				t.Fatalf("log = %v", l)
			}
		})
	}
	// The sender's own record goes through, and so does the key owner's copy of a
	// cross-account call (the recipient owns the key the call names).
	for _, name := range []string{"01-identity-policy-missing", "25-cross-account-both-sandboxes"} {
		event, wj := sample(t, name)
		if !strings.Contains(string(event), `"detail-type"`) {
			event = wrap(t, event)
		}
		x := newHarness(t, wj, clean)
		x.h.Hub = true
		rep, err := x.h.Handle(context.Background(), event)
		if err != nil || rep.Diagnosis == "" || len(x.notes.got) != 1 {
			t.Fatalf("%s: %v %q ignored %q", name, err, rep.Diagnosis, rep.Ignored)
		}
	}
	record, wj := sample(t, "25-cross-account-both-sandboxes")
	ownerCopy := wrap(t, []byte(strings.Replace(string(record), `"recipientAccountId": "111122223333"`, `"recipientAccountId": "111122224444"`, 1)))
	if !strings.Contains(string(ownerCopy), `"account":"111122224444"`) {
		t.Fatal("test setup: the key owner's copy was not made")
	}
	x := newHarness(t, wj, clean)
	x.h.Hub = true
	if rep, err := x.h.Handle(context.Background(), ownerCopy); err != nil || strings.HasPrefix(rep.Ignored, "refused") {
		t.Fatalf("the key owner's copy: %v, ignored %q", err, rep.Ignored)
	}
}

// wrap puts a bare record into the envelope EventBridge gives it.
func wrap(t *testing.T, record []byte) []byte {
	t.Helper()
	var r struct {
		EventID            string `json:"eventID"`
		RecipientAccountID string `json:"recipientAccountId"`
		AWSRegion          string `json:"awsRegion"`
		EventTime          string `json:"eventTime"`
	}
	if err := json.Unmarshal(record, &r); err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(map[string]any{"version": "0", "id": "env-" + r.EventID, "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": r.RecipientAccountID, "time": r.EventTime, "region": r.AWSRegion, "resources": []string{},
		"detail": json.RawMessage(record)})
	if err != nil {
		t.Fatal(err)
	}
	return env
}
