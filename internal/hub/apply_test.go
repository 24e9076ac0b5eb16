package hub_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

const (
	hubRole   = "arn:aws:iam::" + hubAccount + ":role/kmsfix-hub-remediator"
	principal = "role/ml-trainer" // the IAM fakes' name of sample 25's role
)

// hubApplier is the hub's applier over the org: the audit table in dynalite, sealed with an
// HMAC key of the hub's own local-kms, the members' levers through o.accounts.
func hubApplier(t *testing.T, o *org, sandbox []string, logs *strings.Builder) *apply.Applier {
	t.Helper()
	static := credentials.NewStaticCredentialsProvider("test", "test", "")
	hubKMS := kms.New(kms.Options{Region: "eu-west-1", Credentials: static,
		BaseEndpoint: aws.String(emulator.LocalKMSEndpoint(t, hubAccount, "eu-west-1"))})
	mac, err := hubKMS.CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.New(dynamodb.Options{Region: "eu-west-1", Credentials: static,
		BaseEndpoint: aws.String(emulator.DynaliteEndpoint(t))})
	const table = "kmsfix-hub" // this test's own dynalite
	emulator.CreateDynamoTable(t, db, table)
	aa := accessanalyzer.New(accessanalyzer.Options{Region: "eu-west-1", Credentials: static,
		BaseEndpoint: aws.String(o.members[callerAccount].AA.URL)})
	return &apply.Applier{
		Settings: apply.Settings{Enabled: true, SandboxAccounts: sandbox, Diagnoses: config.DefaultApplyDiagnoses,
			Expiry: time.Hour, RemediatorRoleARN: hubRole, Table: table, Region: "eu-west-1"},
		Store:    &apply.Store{DB: db, Table: table, Sealer: apply.KMSSealer{API: hubKMS, KeyID: aws.ToString(mac.KeyMetadata.Arn)}},
		Analyzer: aa,
		Accounts: o.accounts,
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Sleep:    func(context.Context, time.Duration) error { return nil },
	}
}

func (o *org) keyPolicy(t *testing.T) string {
	t.Helper()
	out, err := o.members[ownerAccount].KMS.Client.GetKeyPolicy(context.Background(),
		&kms.GetKeyPolicyInput{KeyId: aws.String(o.keyARN), PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Policy)
}

// writes are the writing calls each role made, through both routers.
func (o *org) writes(role string) int {
	n := 0
	for _, r := range []map[string]int{o.kms.Ops(role), o.iam.Ops(role)} {
		for op, c := range r {
			if strings.HasPrefix(op, "Put") || strings.HasPrefix(op, "Delete") || op == "CreateGrant" || op == "RetireGrant" {
				n += c
			}
		}
	}
	return n
}

// nothingWritten checks that no role wrote anything in either account.
func (o *org) nothingWritten(t *testing.T, before string) {
	t.Helper()
	for _, acct := range []string{callerAccount, ownerAccount} {
		for _, role := range []string{applyRole(acct), readerRole(acct)} {
			if n := o.writes(role); n != 0 {
				t.Errorf("%s made %d writes", role, n)
			}
		}
		if p := o.members[acct].IAM.Inline(principal); len(p) != 1 {
			t.Errorf("inline policies of the role in %s: %v", acct, p)
		}
	}
	if got := o.keyPolicy(t); got != before {
		t.Errorf("the key policy changed:\n%s", got)
	}
}

// The cross-account sample with both accounts sandboxes: the hub applies the identity half in
// the caller's account through its apply role and the key-policy half in the key owner's
// account through its own, records both (account and role) in its table, and at expiry the
// sweeper reverts each exactly, the key policy byte-for-byte as before.
func TestHubAppliesBothHalvesThenRevertsExactly(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	ctx := context.Background()
	before := o.keyPolicy(t)
	inlineBefore := o.members[callerAccount].IAM.Inline(principal)

	rep, w := o.live().Explain(ctx, o.item)
	if !rep.Verified || !rep.AutoApply {
		t.Fatalf("verified %v auto_apply %v (%s %s)", rep.Verified, rep.AutoApply, rep.Unverified, rep.AutoApplyBlocked)
	}
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied == nil || len(rep.AppliedMore) != 1 || !rep.AutoApply {
		t.Fatalf("applied %+v more %+v blocked %q\n%s", rep.Applied, rep.AppliedMore, rep.AutoApplyBlocked, logs.String())
	}
	id, kp := *rep.Applied, rep.AppliedMore[0]
	if id.Lever != finding.KindIdentityPolicy || id.Account != callerAccount || id.Role != applyRole(callerAccount) {
		t.Errorf("identity half: %+v", id)
	}
	if kp.Lever != finding.KindKeyPolicyStatement || kp.Account != ownerAccount || kp.Role != applyRole(ownerAccount) {
		t.Errorf("key half: %+v", kp)
	}

	// Each write signed by its own account's apply role, in its own account; reads by readers.
	if n := o.iam.Ops(applyRole(callerAccount))["PutRolePolicy"]; n != 1 {
		t.Errorf("PutRolePolicy by the caller's apply role: %d", n)
	}
	if n := o.kms.Ops(applyRole(ownerAccount))["PutKeyPolicy"]; n != 1 {
		t.Errorf("PutKeyPolicy by the owner's apply role: %d", n)
	}
	if o.writes(applyRole(ownerAccount)) != 1 || o.writes(applyRole(callerAccount)) != 1 ||
		o.writes(readerRole(callerAccount))+o.writes(readerRole(ownerAccount)) != 0 {
		t.Errorf("writes: caller apply %d, owner apply %d, readers %d", o.writes(applyRole(callerAccount)),
			o.writes(applyRole(ownerAccount)), o.writes(readerRole(callerAccount))+o.writes(readerRole(ownerAccount)))
	}
	if n := len(o.members[callerAccount].IAM.Inline(principal)); n != len(inlineBefore)+1 {
		t.Errorf("inline policies in the caller's account: %d, want %d", n, len(inlineBefore)+1)
	}
	if n := len(o.members[ownerAccount].IAM.Inline(principal)); n != len(inlineBefore) {
		t.Errorf("the owner's IAM got an inline policy")
	}
	if !strings.Contains(o.keyPolicy(t), kp.Name) {
		t.Errorf("the key policy lacks %s", kp.Name)
	}
	if o.kms.Foreign()+o.kms.Refused()+o.iam.Refused() != 0 {
		t.Errorf("calls refused by the routers: kms foreign %d, refused %d/%d", o.kms.Foreign(), o.kms.Refused(), o.iam.Refused())
	}
	for _, h := range []finding.Applied{id, kp} {
		rec, err := a.Store.Get(ctx, h.ID)
		if err != nil || rec == nil || rec.Account != h.Account || rec.Role != h.Role || rec.Status != apply.StatusApplied {
			t.Errorf("audit record %s: %+v %v", h.ID, rec, err)
		}
	}

	// The same event again (a retry): both halves are found in place, nothing is written.
	again, w2 := o.live().Explain(ctx, o.item)
	if err := a.Apply(ctx, &again, o.item.Denial, w2); err != nil {
		t.Fatal(err)
	}
	if again.Applied == nil || again.Applied.ID != id.ID || len(again.AppliedMore) != 1 || again.AppliedMore[0].ID != kp.ID {
		t.Errorf("the retry: %+v %+v (%s)", again.Applied, again.AppliedMore, again.AutoApplyBlocked)
	}
	if o.writes(applyRole(ownerAccount))+o.writes(applyRole(callerAccount)) != 2 {
		t.Errorf("the retry wrote again")
	}

	// Expiry: the sweeper reverts each half through its own account's apply role.
	res, err := a.Sweep(ctx, time.Now().Add(2*time.Hour))
	if err != nil || res.Reverted != 2 || res.NeedsReview != 0 {
		t.Fatalf("sweep: %+v %v\n%s", res, err, logs.String())
	}
	if got := o.keyPolicy(t); got != before {
		t.Errorf("key policy after the revert differs from before:\n%s\nwant\n%s", got, before)
	}
	if got := o.members[callerAccount].IAM.Inline(principal); len(got) != len(inlineBefore) {
		t.Errorf("inline policies after the revert: %v", got)
	}
	if n := o.iam.Ops(applyRole(callerAccount))["DeleteRolePolicy"]; n != 1 {
		t.Errorf("DeleteRolePolicy by the caller's apply role: %d", n)
	}
	if n := o.kms.Ops(applyRole(ownerAccount))["PutKeyPolicy"]; n != 2 {
		t.Errorf("PutKeyPolicy by the owner's apply role: %d, want 2 (apply, revert)", n)
	}
	for _, h := range []finding.Applied{id, kp} {
		if rec, err := a.Store.Get(ctx, h.ID); err != nil || rec.Status != apply.StatusReverted {
			t.Errorf("record %s after the sweep: %+v %v", h.ID, rec, err)
		}
	}
	if n := count(o.sts.AssumedRoles(), applyRole(ownerAccount)); n != 1 {
		t.Errorf("the owner's apply role assumed %d times, want 1", n)
	}
}

// The key owner is not in the hub's sandbox list (its spoke may well have the apply role, as
// in a sandbox OU): nothing is applied in either account, and the report says why.
func TestHubKeyOwnerNotSandboxAppliesNothing(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount}, &logs)
	ctx := context.Background()
	before := o.keyPolicy(t)
	rep, w := o.live().Explain(ctx, o.item)
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied != nil || rep.AutoApply {
		t.Fatalf("applied %+v", rep.Applied)
	}
	for _, want := range []string{"the key owner's account " + ownerAccount + " is not a sandbox account", "sandbox OU", "no half-fix"} {
		if !strings.Contains(rep.AutoApplyBlocked, want) {
			t.Errorf("auto_apply_blocked %q lacks %q", rep.AutoApplyBlocked, want)
		}
	}
	o.nothingWritten(t, before)
	for _, acct := range []string{callerAccount, ownerAccount} {
		if n := count(o.sts.AssumedRoles(), applyRole(acct)); n != 0 {
			t.Errorf("apply role of %s assumed %d times", acct, n)
		}
	}
}

// The key owner's apply role cannot be assumed (its spoke has none): the caller's half is not
// applied either.
func TestHubApplyRoleMissingAppliesNothing(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	o.sts.RefuseRole(applyRole(ownerAccount))
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	ctx := context.Background()
	before := o.keyPolicy(t)
	rep, w := o.live().Explain(ctx, o.item)
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied != nil || !strings.Contains(rep.AutoApplyBlocked, applyRole(ownerAccount)) ||
		!strings.Contains(rep.AutoApplyBlocked, "no half-fix") {
		t.Fatalf("applied %+v, blocked %q", rep.Applied, rep.AutoApplyBlocked)
	}
	o.nothingWritten(t, before)
}

// The key owner's copy of the record (its account is a sandbox, and the event is its own)
// while the principal's account is not a sandbox: the account written in is the principal
// ARN's, not the event's, so nothing is applied.
func TestHubSandboxEventOfNonSandboxPrincipal(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{ownerAccount}, &logs)
	ctx := context.Background()
	before := o.keyPolicy(t)
	d := *o.item.Denial
	d.RecipientAccount = ownerAccount
	item := o.item
	item.Denial = &d
	rep, w := o.live().Explain(ctx, item)
	if err := a.Apply(ctx, &rep, item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied != nil || !strings.Contains(rep.AutoApplyBlocked, "the principal's account "+callerAccount+" is not a sandbox account") {
		t.Fatalf("applied %+v, blocked %q", rep.Applied, rep.AutoApplyBlocked)
	}
	o.nothingWritten(t, before)
}

// A patch that names a target other than the denial's principal or key (here the key of
// another account) is refused whole: where the hub writes comes from the parsed denial only.
func TestHubPatchOfAnotherTargetRefused(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	ctx := context.Background()
	before := o.keyPolicy(t)
	rep, w := o.live().Explain(ctx, o.item)
	for i, p := range rep.Patches {
		if p.Kind == finding.KindKeyPolicyStatement {
			rep.Patches[i].Target = strings.Replace(p.Target, ownerAccount, callerAccount, 1)
			rep.Patches[i].Account = callerAccount
		}
	}
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied != nil || !strings.Contains(rep.AutoApplyBlocked, "is not the denial's") {
		t.Fatalf("applied %+v, blocked %q", rep.Applied, rep.AutoApplyBlocked)
	}
	o.nothingWritten(t, before)
}

// crossed hands out the levers of one account when asked for another: the applier refuses
// them before any call, so one account's credentials never sign a write in another.
type crossed struct {
	apply.AccountLevers
	from, to string
}

func (c crossed) Levers(ctx context.Context, acct string, write bool) (apply.Levers, error) {
	if acct == c.to {
		acct = c.from
	}
	return c.AccountLevers.Levers(ctx, acct, write)
}

func TestHubNeverWritesWithAnotherAccountsLevers(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	a.Accounts = crossed{AccountLevers: o.accounts, from: callerAccount, to: ownerAccount}
	ctx := context.Background()
	before := o.keyPolicy(t)
	rep, w := o.live().Explain(ctx, o.item)
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied != nil || !strings.Contains(rep.AutoApplyBlocked, "are of account "+callerAccount) {
		t.Fatalf("applied %+v, blocked %q", rep.Applied, rep.AutoApplyBlocked)
	}
	o.nothingWritten(t, before)
	if o.kms.Foreign() != 0 {
		t.Errorf("a key-policy call crossed accounts")
	}
}

// sampleEnvelope wraps sample 25's record as the hub's bus delivers it: the envelope's account is
// the sender's, the record's recipientAccountId says whose copy it is.
func sampleEnvelope(t *testing.T, account, recipient string) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", sample, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	rec["recipientAccountId"] = recipient
	ev, err := json.Marshal(map[string]any{"version": "0", "id": "env-" + account + "-" + recipient,
		"detail-type": "AWS API Call via CloudTrail", "source": "aws.kms", "account": account,
		"time": rec["eventTime"], "region": rec["awsRegion"], "resources": []any{}, "detail": rec})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// Through the hub's handler: the caller's copy is applied on both sides and the notification
// carries both changes; an event a sandbox account sends with a record of another account is
// refused before anything is read, assumed or written.
func TestHubHandlerAppliesBothHalvesAndRefusesForgedEvent(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	sandbox := []string{callerAccount, ownerAccount}
	a := hubApplier(t, o, sandbox, &logs)
	notes := &recorder{}
	h := &remediator.Handler{Enricher: o.accounts, Validator: o.validator, Notifier: notes, Applier: a, Sweeper: a,
		Sandbox: sandbox, Hub: true, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx := context.Background()
	before := o.keyPolicy(t)

	// Forged: the key owner's (sandbox) account sends the caller's record as its own.
	rep, err := h.Handle(ctx, sampleEnvelope(t, ownerAccount, callerAccount))
	if err != nil || !strings.Contains(rep.Ignored, "refused") || rep.Applied != nil {
		t.Fatalf("forged event: %v %q %+v", err, rep.Ignored, rep.Applied)
	}
	if n := len(o.sts.AssumedRoles()); n != 0 {
		t.Errorf("a forged event assumed %d roles", n)
	}
	o.nothingWritten(t, before)

	rep, err = h.Handle(ctx, sampleEnvelope(t, callerAccount, callerAccount))
	if err != nil || rep.Applied == nil || len(rep.AppliedMore) != 1 {
		t.Fatalf("caller's copy: %v applied %+v more %+v blocked %q\n%s", err, rep.Applied, rep.AppliedMore, rep.AutoApplyBlocked, logs.String())
	}
	if len(notes.got) != 1 || notes.got[0].Applied == nil || len(notes.got[0].AppliedMore) != 1 {
		t.Errorf("notified: %+v", notes.got)
	}
	if !strings.Contains(o.keyPolicy(t), rep.AppliedMore[0].Name) || o.writes(applyRole(callerAccount)) != 1 {
		t.Errorf("not applied on both sides")
	}
	if !strings.Contains(rep.Applied.RevertCommand, "kmsfix revert "+rep.Applied.ID) {
		t.Errorf("revert command %q", rep.Applied.RevertCommand)
	}
}

// Two events of one finding at once: while another invocation holds the key owner's half, this
// event's identity half is not rolled back (that would leave the other half alone); the report
// says the other invocation completes the fix.
func TestHubHalfHeldElsewhereKeepsTheOther(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	ctx := context.Background()
	rep, w := o.live().Explain(ctx, o.item)
	fp := apply.Fingerprint(&rep) + "@" + ownerAccount
	if err := a.Store.Claim(ctx, fp, "chg-elsewhere", "another-event", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied == nil || rep.Applied.Account != callerAccount || len(rep.AppliedMore) != 0 ||
		!strings.Contains(rep.AutoApplyBlocked, "another invocation") || !strings.Contains(rep.AutoApplyBlocked, "completes the fix") {
		t.Fatalf("applied %+v more %+v blocked %q", rep.Applied, rep.AppliedMore, rep.AutoApplyBlocked)
	}
	rec, err := a.Store.Get(ctx, rep.Applied.ID)
	if err != nil || rec.Status != apply.StatusApplied {
		t.Errorf("the caller's half was not kept: %+v %v", rec, err)
	}
	if n := len(o.members[callerAccount].IAM.Inline(principal)); n != 2 {
		t.Errorf("inline policies of the caller's role: %d, want 2 (its own and kmsfix's)", n)
	}
}

// A dry run in the hub: both halves are checked and shown with their exact calls, through the
// reader roles only; no apply role is assumed and nothing is written or recorded.
func TestHubDryRunShowsBothHalvesWritesNothing(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	a.Settings.DryRun = true
	ctx := context.Background()
	before := o.keyPolicy(t)
	rep, w := o.live().Explain(ctx, o.item)
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied == nil || !rep.Applied.DryRun || len(rep.AppliedMore) != 1 || !rep.AppliedMore[0].DryRun {
		t.Fatalf("dry run: %+v %+v (%s)\n%s", rep.Applied, rep.AppliedMore, rep.AutoApplyBlocked, logs.String())
	}
	calls := strings.Join(append(rep.Applied.Calls, rep.AppliedMore[0].Calls...), "\n")
	if !strings.Contains(calls, "iam:PutRolePolicy") || !strings.Contains(calls, "kms:PutKeyPolicy") {
		t.Errorf("dry-run calls: %s", calls)
	}
	o.nothingWritten(t, before)
	for _, acct := range []string{callerAccount, ownerAccount} {
		if n := count(o.sts.AssumedRoles(), applyRole(acct)); n != 0 {
			t.Errorf("a dry run assumed the apply role of %s", acct)
		}
	}
	if ids, err := a.Store.Active(ctx); err != nil || len(ids) != 0 {
		t.Errorf("a dry run recorded changes: %v %v", ids, err)
	}
}
