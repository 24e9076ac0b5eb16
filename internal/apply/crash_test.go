package apply

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
)

// crashDB makes the function "die" at a chosen DynamoDB write: the write fails and so does
// the invocation, as a crash would leave things.
type crashDB struct {
	DynamoDB
	mu    sync.Mutex
	crash func(item map[string]ddbtypes.AttributeValue) bool
}

func (c *crashDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.mu.Lock()
	f := c.crash
	c.mu.Unlock()
	if f != nil && f(in.Item) {
		return nil, errors.New("injected: the function stopped here")
	}
	return c.DynamoDB.PutItem(ctx, in, opts...)
}

func (c *crashDB) set(f func(map[string]ddbtypes.AttributeValue) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crash = f
}

func attr(item map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// recordWith matches the audit record (not the index or pointer) being written with a status.
func recordWith(status string) func(map[string]ddbtypes.AttributeValue) bool {
	return func(it map[string]ddbtypes.AttributeValue) bool {
		return strings.HasPrefix(attr(it, "pk"), "apply#chg-") && attr(it, "status") == status
	}
}

func crashing(e *env) *crashDB {
	c := &crashDB{DynamoDB: e.a.Store.DB}
	e.a.Store.DB = c
	return c
}

func countSid(e *env, sid string) int {
	n := 0
	for _, s := range e.keyDoc().Statement {
		if s.Sid == sid {
			n++
		}
	}
	return n
}

// The change is made but the function dies before the audit says "applied": the retry of the
// same event finds the pending record and completes it, without a second statement.
func TestCrashAfterChangeRecoveredOnRetry(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	w := e.world()
	r := keyMissingReport(e, "ev-1")
	sid := r.Patches[0].Name
	if err := e.a.Apply(ctx, r, denialOf(r), w); err == nil {
		t.Fatal("Apply survived the crash")
	}
	if countSid(e, sid) != 1 {
		t.Fatalf("the change should be in place: %s", e.keyPolicy())
	}
	ids := e.active()
	if len(ids) != 1 || e.record(ids[0]).Status != StatusPending {
		t.Fatalf("want one pending record, got %v", ids)
	}
	// Another event of the finding, within the lease: it must not touch it.
	other := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-2"}, w)
	if err := e.a.Apply(ctx, &other, denialOf(&other), w); err != nil || !strings.Contains(other.AutoApplyBlocked, "another invocation") {
		t.Fatalf("second event: %v, blocked %q", err, other.AutoApplyBlocked)
	}
	db.set(nil)
	r2 := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-1"}, w)
	r = &r2
	a := mustApply(t, e, r)
	if a.ID != ids[0] || countSid(e, sid) != 1 || e.record(a.ID).Status != StatusApplied {
		t.Fatalf("recovery: applied %+v, %d statements %s", a, countSid(e, sid), sid)
	}
	if got := e.record(a.ID).Before; got != e.before {
		t.Fatalf("recovery replaced the recorded before-policy:\n%s", got)
	}
}

// The function dies after claiming the finding but before writing the audit record: nothing
// was changed, and the retry makes the change under the claimed id.
func TestCrashBeforeAuditRecord(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(func(it map[string]ddbtypes.AttributeValue) bool { return attr(it, "pk") == "apply#active" })
	w := e.world()
	r := keyMissingReport(e, "ev-1")
	if err := e.a.Apply(ctx, r, denialOf(r), w); err == nil {
		t.Fatal("Apply survived the crash")
	}
	if e.keyPolicy() != e.before {
		t.Fatal("changed without an audit record")
	}
	db.set(nil)
	// Another event, while the claim is young: it might still be running, so hands off.
	other := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-2"}, w)
	if err := e.a.Apply(ctx, &other, denialOf(&other), w); err != nil || !strings.Contains(other.AutoApplyBlocked, "another invocation") {
		t.Fatalf("second event: %v, blocked %q", err, other.AutoApplyBlocked)
	}
	r2 := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-1"}, w)
	a := mustApply(t, e, &r2)
	p, err := e.a.Store.Pointer(ctx, Fingerprint(&r2))
	if err != nil || p.ID != a.ID || p.Status != StatusApplied {
		t.Fatalf("pointer %+v %v, applied %s", p, err, a.ID)
	}
}

// A pending change nobody retries is rolled back by the sweeper once its lease is over.
func TestSweeperRollsBackAbandonedChange(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), e.world()); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	e.clock.Add(time.Minute)
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res.RolledBack != 0 {
		t.Fatalf("sweep within the lease = %+v %v", res, err)
	}
	e.clock.Add(DefaultLease)
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err != nil || res.RolledBack != 1 {
		t.Fatalf("sweep after the lease = %+v %v", res, err)
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatalf("rollback did not restore the policy byte-for-byte:\n%s", got)
	}
}

// A pending change whose finding the guard now refuses (the configuration changed) is rolled
// back by the retry rather than completed.
func TestPendingChangeRolledBackWhenGuardNowRefuses(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	w := e.world()
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), w); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	e.a.Settings.Diagnoses = []finding.Code{finding.IdentityPolicyMissing}
	r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-1"}, w)
	if err := e.a.Apply(ctx, &r, denialOf(&r), w); err != nil {
		t.Fatal(err)
	}
	if r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "KMSFIX_APPLY_DIAGNOSES") || e.keyPolicy() != e.before {
		t.Fatalf("blocked %q, policy restored %v", r.AutoApplyBlocked, e.keyPolicy() == e.before)
	}
}

// racyKMS lets another administrator write the key policy right after each of ours, from the
// policy they read before our change (last writer wins: KMS has no concurrency token).
type racyKMS struct {
	KeyPolicyAPI
	mu     sync.Mutex
	puts   int
	theirs func(n int) string // their policy after our n-th write; "" for none
}

func (r *racyKMS) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, opts ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	out, err := r.KeyPolicyAPI.PutKeyPolicy(ctx, in, opts...)
	if err != nil {
		return out, err
	}
	r.mu.Lock()
	r.puts++
	n := r.puts
	r.mu.Unlock()
	if text := r.theirs(n); text != "" {
		if _, err := r.KeyPolicyAPI.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: in.KeyId, PolicyName: aws.String("default"), Policy: &text}); err != nil {
			return nil, err
		}
	}
	return out, err
}

const otherTeam = `,{"Sid":"OtherTeam","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/etl"},"Action":"kms:Decrypt","Resource":"*"}`

func withOtherTeam(before string) string {
	i := strings.LastIndex(before, "]")
	return before[:i] + otherTeam + before[i:]
}

// Someone changes the key policy between our read and write: the re-read shows it, we read,
// merge and write once more, and both changes survive. The revert then removes only ours.
func TestConcurrentKeyPolicyChangeRetriedOnce(t *testing.T) {
	e := newEnv(t, adminOnly)
	theirs := withOtherTeam(e.before)
	racy := &racyKMS{KeyPolicyAPI: e.kms, theirs: func(n int) string {
		if n == 1 {
			return theirs
		}
		return ""
	}}
	e.a.KMS = racy
	r := keyMissingReport(e, "ev-1")
	a := mustApply(t, e, r)
	doc := e.keyDoc()
	if _, ok := doc.StatementBySid("OtherTeam"); !ok || countSid(e, a.Name) != 1 || len(doc.Statement) != 3 {
		t.Fatalf("after the retry: %s", e.keyPolicy())
	}
	if racy.puts != 2 {
		t.Fatalf("%d writes, want 2 (one retry)", racy.puts)
	}
	rec, err := e.a.Revert(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.keyPolicy(); got != theirs {
		t.Fatalf("revert did not leave exactly the other team's policy:\n%s\nwant\n%s", got, theirs)
	}
	// The write that stuck was merged into their policy, so that is the "before" it restores.
	if rec.Before != theirs || !strings.Contains(rec.Note, "byte-for-byte") {
		t.Fatalf("before = %q, note = %q", rec.Before, rec.Note)
	}
}

// When the policy keeps changing, the change fails verification after writing and is rolled
// back: nothing of ours remains, and theirs is untouched.
func TestVerificationFailureRollsBack(t *testing.T) {
	e := newEnv(t, adminOnly)
	theirs := withOtherTeam(e.before)
	e.a.KMS = &racyKMS{KeyPolicyAPI: e.kms, theirs: func(int) string { return theirs }}
	r := keyMissingReport(e, "ev-1")
	if err := e.a.Apply(ctx, r, denialOf(r), e.world()); err != nil {
		t.Fatal(err)
	}
	if r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "rolled back") || !strings.Contains(r.AutoApplyBlocked, "changed while it was being written") {
		t.Fatalf("blocked = %q", r.AutoApplyBlocked)
	}
	if got := e.keyPolicy(); got != theirs {
		t.Fatalf("policy after rollback:\n%s", got)
	}
	if ids := e.active(); len(ids) != 0 {
		t.Fatalf("active = %v", ids)
	}
}

// tamperIAM makes our inline policy read back different from what was written.
type tamperIAM struct {
	IAMAPI
	name string
}

func (t *tamperIAM) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	out, err := t.IAMAPI.GetRolePolicy(ctx, in, opts...)
	if err == nil && aws.ToString(in.PolicyName) == t.name {
		out.PolicyDocument = aws.String(strings.Replace(aws.ToString(out.PolicyDocument), "Decrypt", "Encrypt", 1))
	}
	return out, err
}

func TestInlineReadBackMismatchRollsBack(t *testing.T) {
	e := newEnv(t, delegating)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key}, e.world())
	e.a.IAM = &tamperIAM{IAMAPI: e.a.IAM, name: r.Patches[0].Name}
	if err := e.a.Apply(ctx, &r, denialOf(&r), e.world()); err != nil {
		t.Fatal(err)
	}
	if r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "reads back different") {
		t.Fatalf("blocked = %q", r.AutoApplyBlocked)
	}
	// What reads back is not what kmsfix wrote, so the rollback may not delete it: it is
	// left, the change needs review, and it stays listed.
	ids := e.active()
	if len(ids) != 1 || e.record(ids[0]).Status != StatusNeedsReview || !strings.Contains(e.record(ids[0]).Note, "left in place") {
		t.Fatalf("want one change needing review, got %v", ids)
	}
	if got := e.iam.Inline("role/reader"); len(got) != 1 {
		t.Fatalf("inline policies: %v", got)
	}
}

// failingKMS fails PutKeyPolicy while on.
type failingKMS struct {
	KeyPolicyAPI
	mu sync.Mutex
	on bool
}

func (f *failingKMS) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, opts ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	f.mu.Lock()
	on := f.on
	f.mu.Unlock()
	if on {
		return nil, errors.New("injected: KMS unavailable")
	}
	return f.KeyPolicyAPI.PutKeyPolicy(ctx, in, opts...)
}

// A revert that fails stays active with its error in the audit, and the next sweep retries it.
func TestFailedRevertRetriedNextSweep(t *testing.T) {
	e := newEnv(t, adminOnly)
	f := &failingKMS{KeyPolicyAPI: e.kms}
	e.a.KMS = f
	a := mustApply(t, e, keyMissingReport(e, "ev-1"))
	f.on = true
	e.clock.Add(25 * time.Hour)
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err == nil || res.Failed != 1 {
		t.Fatalf("sweep with KMS down = %+v, %v", res, err)
	}
	rec := e.record(a.ID)
	if rec.Status != StatusApplied || rec.Attempts != 1 || !strings.Contains(rec.Error, "injected: KMS unavailable") {
		t.Fatalf("audit after a failed revert = %+v", rec)
	}
	f.on = false
	e.clock.Add(15 * time.Minute)
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res.Reverted != 1 {
		t.Fatalf("next sweep = %+v, %v", res, err)
	}
	if rec := e.record(a.ID); rec.Status != StatusReverted || rec.Attempts != 2 || rec.Error != "" {
		t.Fatalf("audit = %+v", rec)
	}
	if e.keyPolicy() != e.before {
		t.Fatal("policy not restored")
	}
}

// An expired change that the sweeper has not reached yet is reverted before a new event makes
// a fresh change: never two statements.
func TestExpiredChangeReplacedOnNewEvent(t *testing.T) {
	e := newEnv(t, adminOnly)
	w := e.world()
	r1 := keyMissingReport(e, "ev-1")
	r2 := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-2"}, w)
	a1 := mustApply(t, e, r1)
	e.clock.Add(24*time.Hour + time.Second)
	a2 := mustApply(t, e, &r2)
	if a2.ID == a1.ID || e.record(a1.ID).Status != StatusReverted || countSid(e, a1.Name) != 1 {
		t.Fatalf("old %s (%s), new %s, statements %d", a1.ID, e.record(a1.ID).Status, a2.ID, countSid(e, a1.Name))
	}
}

func TestDryRunMakesNoChange(t *testing.T) {
	e := newEnv(t, adminOnly)
	e.a.Settings.DryRun = true
	r := keyMissingReport(e, "ev-1")
	if err := e.a.Apply(ctx, r, denialOf(r), e.world()); err != nil {
		t.Fatal(err)
	}
	a := r.Applied
	if a == nil || !a.DryRun || len(a.Calls) != 1 || !r.AutoApply {
		t.Fatalf("applied = %+v", a)
	}
	c := a.Calls[0]
	for _, want := range []string{"kms:PutKeyPolicy {", `"KeyId":"` + e.key + `"`, `"PolicyName":"default"`, `"BypassPolicyLockoutSafetyCheck":false`, a.Name, "KeyAdministrators"} {
		if !strings.Contains(c, want) {
			t.Fatalf("dry-run call lacks %q:\n%s", want, c)
		}
	}
	if e.keyPolicy() != e.before || len(e.active()) != 0 {
		t.Fatal("dry run changed something")
	}
	if !strings.Contains(e.logs.String(), "dry run") || !strings.Contains(e.logs.String(), "kms:PutKeyPolicy") {
		t.Fatalf("logs lack the call:\n%s", e.logs.String())
	}
}

func TestIsSweep(t *testing.T) {
	for ev, want := range map[string]bool{
		`{"source":"kmsfix.sweeper"}`: true,
		`{"source":"kmsfix.sweeper","detail-type":"Scheduled Event","detail":{}}`: true,
		`{"source":"aws.kms","detail":{}}`:                                        false,
		`not json`:                                                                false,
	} {
		if IsSweep([]byte(ev)) != want {
			t.Errorf("IsSweep(%s) != %v", ev, want)
		}
	}
}

// Someone edits the key policy while our change is live: the revert removes only our
// statement and keeps theirs (and never writes back the stale "before").
func TestRevertKeepsLaterChanges(t *testing.T) {
	e := newEnv(t, adminOnly)
	a := mustApply(t, e, keyMissingReport(e, "ev-1"))
	putPolicy(e, withOtherTeam(e.keyPolicy()))
	rec, err := e.a.Revert(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	doc := e.keyDoc()
	if _, ok := doc.StatementBySid("OtherTeam"); !ok || countSid(e, a.Name) != 0 || len(doc.Statement) != 2 {
		t.Fatalf("after revert: %s", e.keyPolicy())
	}
	if !strings.Contains(e.keyPolicy(), strings.TrimPrefix(otherTeam, ",")) || !strings.Contains(rec.Note, "other changes made since") {
		t.Fatalf("their statement was rewritten or the note is wrong (%q):\n%s", rec.Note, e.keyPolicy())
	}
}

// The sweeper's route (remediator.Handler routes the schedule's event here) reverts what is
// due; TestRouter in internal/remediator checks the routing itself.
func TestSweepDue(t *testing.T) {
	e := newEnv(t, adminOnly)
	a := mustApply(t, e, keyMissingReport(e, "ev-1"))
	e.clock.Add(25 * time.Hour)
	out, err := e.a.SweepDue(ctx)
	if err != nil || out.Reverted != 1 {
		t.Fatalf("sweep: %+v %v", out, err)
	}
	if e.record(a.ID).Status != StatusReverted || e.keyPolicy() != e.before {
		t.Fatal("the sweep did not revert the change")
	}
}

// Someone rewrote our statement while it was live: it is theirs now, so the revert leaves it
// and says so; nothing else is touched.
func TestRevertLeavesARewrittenStatement(t *testing.T) {
	e := newEnv(t, adminOnly)
	a := mustApply(t, e, keyMissingReport(e, "ev-1"))
	edited := strings.Replace(e.keyPolicy(), `"Action":["kms:Decrypt"]`, `"Action":["kms:Decrypt","kms:GenerateDataKey"]`, 1)
	if edited == e.keyPolicy() {
		t.Fatal("test setup: the statement was not edited")
	}
	putPolicy(e, edited)
	rec, err := e.a.Revert(ctx, a.ID)
	if err != nil || rec.Status != StatusNeedsReview || !strings.Contains(rec.Note, "left in place") {
		t.Fatalf("revert = %+v, %v", rec, err)
	}
	if e.keyPolicy() != edited {
		t.Fatal("the revert touched a statement someone else rewrote")
	}
	// Still listed, and the sweeper leaves it alone but counts it (the alarm's metric).
	if ids := e.active(); len(ids) != 1 || ids[0] != a.ID {
		t.Fatalf("active = %v", ids)
	}
	e.clock.Add(48 * time.Hour)
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res.NeedsReview != 1 || e.keyPolicy() != edited {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
}

// A grant made just before the function died has no grant id in the audit: the sweeper finds
// it by its name and retires it.
func TestAbandonedGrantRetiredByName(t *testing.T) {
	e := newEnv(t, adminOnly)
	e.aa.SetResult("FAIL") // refuses the key-policy statement: the grant serves
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), e.world()); err == nil {
		t.Fatal("Apply survived the crash")
	}
	if g := e.grants.Grants(); len(g) != 1 {
		t.Fatalf("grants = %+v", g)
	}
	ids := e.active()
	if len(ids) != 1 || e.record(ids[0]).GrantID != "" || e.record(ids[0]).Lever != finding.KindGrant {
		t.Fatalf("want a pending grant change without its id, got %v", ids)
	}
	db.set(nil)
	e.clock.Add(DefaultLease)
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res.RolledBack != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	if g := e.grants.Grants(); len(g) != 0 || e.grants.Calls("RetireGrant") != 1 {
		t.Fatalf("grants left: %+v", g)
	}
	if e.keyPolicy() != e.before {
		t.Fatal("the grant lever touched the key policy")
	}
}

// The function died between closing a record and removing its index entry: the sweeper
// removes the stale entry and touches nothing else.
func TestSweeperCleansStaleIndex(t *testing.T) {
	e := newEnv(t, adminOnly)
	a := mustApply(t, e, keyMissingReport(e, "ev-1"))
	rec, err := e.a.Revert(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.a.Store.putActive(ctx, rec); err != nil {
		t.Fatal(err)
	}
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err != nil || res != (SweepResult{Cleaned: 1}) || len(e.active()) != 0 {
		t.Fatalf("sweep = %+v, %v, active %v", res, err, e.active())
	}
	if e.record(a.ID).Status != StatusReverted || e.keyPolicy() != e.before {
		t.Fatal("cleaning the index changed the change")
	}
}
