package notify

import (
	"context"
	"testing"

	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

// Issue 19 item 3: a finding goes to its account's route; seen again through another copy of
// the event (the key owner's, another path), it is not sent again, because every route shares
// the dedupe table and the key is the finding's fingerprint.
func TestRoutedOneMessagePerFinding(t *testing.T) {
	def := newRig(t, nil) // the function's own Slack and topic
	payments := awsfake.NewSlackReceiver(t)
	const paymentsSecret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/payments-AbCdEf"
	def.secrets.Put(paymentsSecret, payments.WebhookURL)
	routed, err := New(Config{Table: def.table, SlackSecretARN: paymentsSecret, Window: def.n.cfg.Window,
		Propagation: def.n.cfg.Propagation, Now: def.clock.Now, Sleep: def.n.cfg.Sleep},
		Clients{DynamoDB: def.env.dyn.Client(1), Secrets: def.secrets.Client()})
	if err != nil {
		t.Fatal(err)
	}
	rep := report(t, "ev-1")
	if rep.PrincipalAccount == "" {
		t.Fatal("test setup: the sample report names no principal account")
	}
	rt := &Routed{Default: def.n, Routes: map[string]Sender{rep.PrincipalAccount: routed}}
	ctx := context.Background()

	if err := rt.Notify(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if payments.Count() != 1 || def.slack.Count() != 0 {
		t.Fatalf("routed %d, default %d Slack messages; want 1 and 0", payments.Count(), def.slack.Count())
	}
	// The same finding from another copy of the event, and through the default notifier (a
	// second hub container, or the spoke-era stack sharing the table): no second message.
	again := report(t, "ev-2")
	if err := rt.Notify(ctx, again); err != nil {
		t.Fatal(err)
	}
	other := report(t, "ev-3")
	if err := def.n.Notify(ctx, other); err != nil {
		t.Fatal(err)
	}
	if payments.Count() != 1 || def.slack.Count() != 0 {
		t.Fatalf("after the same finding twice more: routed %d, default %d; want 1 and 0", payments.Count(), def.slack.Count())
	}
	// Another account's finding goes to the default route.
	elsewhere := report(t, "ev-4")
	elsewhere.PrincipalAccount, elsewhere.Principal, elsewhere.Fingerprint = "444455556666", "arn:aws:iam::444455556666:role/x", ""
	if err := rt.Notify(ctx, elsewhere); err != nil {
		t.Fatal(err)
	}
	if payments.Count() != 1 || def.slack.Count() != 1 {
		t.Fatalf("another account: routed %d, default %d; want 1 and 1", payments.Count(), def.slack.Count())
	}
}
