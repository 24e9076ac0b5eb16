package apply

// Attacks on the audit table and on revert (issue 15 items 1 and 4). Each test fails if the
// weakness comes back: a principal with dynamodb:PutItem on the table must not be able to
// steer a change, and a revert must never remove what kmsfix did not write.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv"
)

// plant writes an audit item as an attacker would: straight into the table, with whatever
// fields it likes (and, when mac is given, an integrity code copied from a genuine record).
func plant(t *testing.T, e *env, rec *Record, mac string) {
	t.Helper()
	item := key("apply#"+rec.ID, "change")
	for name, p := range rec.fields() {
		if *p != "" {
			item[name] = str(*p)
		}
	}
	item["version"] = &ddbtypes.AttributeValueMemberN{Value: "7"}
	if mac != "" {
		item["mac"] = str(mac)
	}
	if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &e.table, Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &e.table, Item: key(activePK, rec.ID)}); err != nil {
		t.Fatal(err)
	}
}

func rawItem(t *testing.T, e *env, id string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &e.table, Key: key("apply#"+id, "change")})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

const adminDeny = `,{"Sid":"AdminDeny","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"111122223333"}}}`

func withStatement(policy, stmt string) string {
	i := strings.LastIndex(policy, "]")
	return policy[:i] + stmt + policy[i:]
}

// A record planted over a pending change (its patch now "Allow kms:* to another role",
// its integrity code copied from the genuine record) is not applied by the next event of the
// finding: the integrity check fails and nothing is done on its word.
func TestAttackPlantedRecordIsNotApplied(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	w := e.world()
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), w); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	ids := e.active()
	if len(ids) != 1 {
		t.Fatalf("active = %v", ids)
	}
	genuine := e.record(ids[0])
	mac := attr(rawItem(t, e, genuine.ID), "mac")
	if mac == "" {
		t.Fatal("the genuine record carries no integrity code")
	}
	// Undo the crashed attempt's statement so only the planted one could add anything.
	putPolicy(e, e.before)
	evil := *genuine
	evil.Patch = strings.Replace(genuine.Patch, `"Action":["kms:Decrypt"]`, `"Action":"kms:*"`, 1)
	evil.Patch = strings.Replace(evil.Patch, "role/app/reader", "role/attacker", 1)
	if evil.Patch == genuine.Patch {
		t.Fatal("test setup: the patch was not rewritten")
	}
	plant(t, e, &evil, mac)

	r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-1"}, w)
	if err := e.a.Apply(ctx, &r, denialOf(&r), w); err != nil {
		t.Fatal(err)
	}
	if r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "integrity check") {
		t.Fatalf("planted record: applied %+v, blocked %q", r.Applied, r.AutoApplyBlocked)
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatalf("the planted record changed the key policy:\n%s", got)
	}
	// Nor does the sweeper or `kmsfix revert` act on it.
	e.clock.Add(time.Hour)
	if res, _ := e.a.Sweep(ctx, e.clock.Now()); res.Tampered != 1 || res.RolledBack != 0 {
		t.Fatalf("sweep = %+v", res)
	}
	if _, err := e.a.Revert(ctx, genuine.ID); !errors.Is(err, ErrTampered) {
		t.Fatalf("revert of a planted record: %v", err)
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatalf("sweep or revert acted on the planted record:\n%s", got)
	}
}

// Even a record kmsfix did seal is not an instruction: a pending change whose patch is not
// what the current finding calls for is rolled back, never completed.
func TestAttackSealedRecordWithAnotherPatchIsRolledBack(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	w := e.world()
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), w); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	rec := e.record(e.active()[0])
	rec.Patch = strings.Replace(rec.Patch, `"Action":["kms:Decrypt"]`, `"Action":["kms:Decrypt","kms:ReEncryptFrom"]`, 1)
	if err := e.a.Store.Put(ctx, rec, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-1"}, w)
	if err := e.a.Apply(ctx, &r, denialOf(&r), w); err != nil {
		t.Fatal(err)
	}
	if r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "not what the current finding calls for") {
		t.Fatalf("applied %+v, blocked %q", r.Applied, r.AutoApplyBlocked)
	}
	if strings.Contains(e.keyPolicy(), "ReEncryptFrom") {
		t.Fatalf("the recorded patch was applied:\n%s", e.keyPolicy())
	}
}

// A planted expired record names someone else's Deny by Sid (and an inline policy that is
// not kmsfix's): the sweeper removes neither. Sealed or not, only kmsfix-named artefacts whose
// content is what kmsfix wrote are ever removed.
func TestAttackPlantedExpiredRecordCannotDeleteOthers(t *testing.T) {
	e := newEnv(t, adminOnly)
	withDeny := withStatement(e.before, adminDeny)
	putPolicy(e, withDeny)
	e.iam.SetInline("role/reader", "team-baseline", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}`)
	past := e.clock.Now().Add(-48 * time.Hour).Format(time.RFC3339)
	denyPatch := `{"kind":"key-policy-statement","account":"` + sandbox + `","target":"` + e.key + `","name":"AdminDeny","statement":{"Sid":"AdminDeny","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}}`
	inlinePatch := `{"kind":"identity-policy","account":"` + sandbox + `","target":"` + roleARN + `","name":"team-baseline","policy":{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}}`
	planted := []*Record{
		{ID: "chg-planted-deny", Status: StatusApplied, Lever: finding.KindKeyPolicyStatement, Account: sandbox, Region: region,
			Target: e.key, Name: "AdminDeny", Patch: denyPatch, ExpiresAt: past, StartedAt: past},
		{ID: "chg-planted-inline", Status: StatusApplied, Lever: finding.KindIdentityPolicy, Account: sandbox,
			Target: roleARN, Name: "team-baseline", Patch: inlinePatch, ExpiresAt: past, StartedAt: past},
	}
	// Unsealed: the integrity check stops them.
	for _, rec := range planted {
		plant(t, e, rec, "")
	}
	res, _ := e.a.Sweep(ctx, e.clock.Now())
	if res.Tampered != 2 || res.Reverted != 0 {
		t.Fatalf("sweep of planted records = %+v", res)
	}
	// Sealed (say, by someone who could once call GenerateMac): the names are not kmsfix's.
	for _, rec := range planted {
		rec.ID += "-sealed"
		if err := e.a.Store.Put(ctx, rec, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err != nil || res.NeedsReview != 2 || res.Reverted != 0 {
		t.Fatalf("sweep of sealed planted records = %+v, %v", res, err)
	}
	if got := e.keyPolicy(); got != withDeny {
		t.Fatalf("the sweeper touched the administrator's Deny:\n%s", got)
	}
	if _, ok := e.iam.Inline("role/reader")["team-baseline"]; !ok {
		t.Fatal("the sweeper deleted someone else's inline policy")
	}
	// The alarm's metric is written on every sweep while they wait for a person.
	var m strings.Builder
	e.a.Metrics = &m
	if _, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || !strings.Contains(m.String(), `"RevertNotExact":2`) || !strings.Contains(m.String(), `"AuditRecordTampered":2`) {
		t.Fatalf("metrics: %v\n%s", err, m.String())
	}
}

// The pointer of a finding is not at an address derived from its fingerprint alone (the
// fingerprint is published in SNS): without the audit key nobody can tell which item it is.
func TestPointerAddressNeedsTheAuditKey(t *testing.T) {
	e := newEnv(t, adminOnly)
	r := keyMissingReport(e, "ev-1")
	mustApply(t, e, r)
	fp := Fingerprint(r)
	out, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &e.table, Key: key("applyfp#"+fp, "current")})
	if err != nil || out.Item != nil {
		t.Fatalf("the pointer sits at applyfp#<fingerprint>: %v %v", out.Item, err)
	}
	addr, err := e.a.Store.Address(ctx, fp)
	if err != nil || strings.Contains(addr, fp) {
		t.Fatalf("address %q: %v", addr, err)
	}
	other := newSealer(t, e.kms)
	s2 := &Store{DB: e.db, Table: e.table, Sealer: other}
	if a2, _ := s2.Address(ctx, fp); a2 == addr {
		t.Fatal("another key gives the same address")
	}
}

// Someone edits the inline policy kmsfix wrote while it is live: the revert leaves it (it is
// not what kmsfix wrote any more), raises the alarm and a message, and keeps it listed.
type alerts struct {
	mu   sync.Mutex
	msgs []string
}

func (a *alerts) Alert(_ context.Context, subject, text string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgs = append(a.msgs, subject+"\n"+text)
	return nil
}

func TestAttackRevertLeavesEditedInlinePolicy(t *testing.T) {
	e := newEnv(t, delegating)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key}, e.world())
	a := mustApply(t, e, &r)
	widened := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	e.iam.SetInline("role/reader", a.Name, widened)
	al := &alerts{}
	e.a.Alerter = al
	var m strings.Builder
	e.a.Metrics = &m
	e.clock.Add(25 * time.Hour)
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err != nil || res.NeedsReview != 1 || res.Reverted != 0 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	if e.iam.Inline("role/reader")[a.Name] != widened {
		t.Fatal("the revert deleted a policy someone changed since kmsfix wrote it")
	}
	if len(al.msgs) != 1 || !strings.Contains(al.msgs[0], a.ID) || !strings.Contains(al.msgs[0], "left in place") {
		t.Fatalf("alert messages: %q", al.msgs)
	}
	if !strings.Contains(m.String(), `"RevertNotExact":1`) {
		t.Fatalf("metric: %s", m.String())
	}
	if rec := e.record(a.ID); rec.Status != StatusNeedsReview || len(e.active()) != 1 {
		t.Fatalf("record %+v, active %v", rec, e.active())
	}
	// The finding is not applied again while its change waits for a person.
	r2 := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key, eventID: "ev-2"}, e.world())
	if err := e.a.Apply(ctx, &r2, denialOf(&r2), e.world()); err != nil || r2.Applied != nil || !strings.Contains(r2.AutoApplyBlocked, "needs a person") {
		t.Fatalf("re-apply: %v %+v %q", err, r2.Applied, r2.AutoApplyBlocked)
	}
}

// IAM's delayed reads: the inline policy kmsfix wrote reads as NoSuchEntity for the first
// reads (wired into the IAM fake). A rollback must not conclude "never written" from them and
// leak the policy.
func TestAttackIAMStaleReadsDoNotLeakThePolicy(t *testing.T) {
	e := newEnv(t, delegating)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key}, e.world())
	if err := e.a.Apply(ctx, &r, denialOf(&r), e.world()); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	name := r.Patches[0].Name
	if _, ok := e.iam.Inline("role/reader")[name]; !ok {
		t.Fatal("test setup: the crashed attempt did not write the policy")
	}
	var slept []time.Duration
	e.a.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	e.iam.Fail("GetRolePolicy", testenv.AWSFault{Code: "NoSuchEntity", Status: 404, Times: DefaultConsistentReads - 1})
	e.clock.Add(DefaultLease)
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err != nil || res.RolledBack != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	if got := e.iam.Inline("role/reader"); len(got) != 0 {
		t.Fatalf("the rollback trusted a stale read and leaked %v", got)
	}
	if len(slept) < DefaultConsistentReads-1 {
		t.Fatalf("re-read without waiting: %v", slept)
	}
}

// concurrentAdmin writes an administrator's Deny into the key policy right after kmsfix's
// first read of it (between its read and its write), against local-kms.
type concurrentAdmin struct {
	KeyPolicyAPI
	mu    sync.Mutex
	reads int
	at    int    // the read after which the admin writes
	text  func() // writes the admin's policy
}

func (c *concurrentAdmin) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, opts ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	out, err := c.KeyPolicyAPI.GetKeyPolicy(ctx, in, opts...)
	c.mu.Lock()
	c.reads++
	fire := c.reads == c.at
	c.mu.Unlock()
	if fire {
		c.text()
	}
	return out, err
}

// An administrator's Deny written between kmsfix's read and write survives both the apply
// and the revert.
func TestAttackConcurrentKeyPolicyEditSurvives(t *testing.T) {
	e := newEnv(t, adminOnly)
	r := keyMissingReport(e, "ev-1")
	w := e.world()
	// prepare reads once; applyKeyPolicy's first read is the 2nd: the admin writes right after it.
	admin := &concurrentAdmin{KeyPolicyAPI: e.kms, at: 2, text: func() { putPolicy(e, withStatement(e.before, adminDeny)) }}
	e.a.KMS = admin
	if err := e.a.Apply(ctx, r, denialOf(r), w); err != nil || r.Applied == nil {
		t.Fatalf("apply: %v, blocked %q", err, r.AutoApplyBlocked)
	}
	doc := e.keyDoc()
	if _, ok := doc.StatementBySid("AdminDeny"); !ok {
		t.Fatalf("the administrator's Deny was lost by the apply:\n%s", e.keyPolicy())
	}
	if _, ok := doc.StatementBySid(r.Applied.Name); !ok {
		t.Fatalf("our statement is missing:\n%s", e.keyPolicy())
	}
	// And during the revert: a second Deny lands between the revert's read and write.
	second := strings.Replace(adminDeny, "AdminDeny", "AdminDeny2", 1)
	admin.mu.Lock()
	admin.reads, admin.at = 0, 1
	admin.text = func() { putPolicy(e, withStatement(e.keyPolicy(), second)) }
	admin.mu.Unlock()
	rec, err := e.a.Revert(ctx, r.Applied.ID)
	if err != nil || rec.Status != StatusReverted {
		t.Fatalf("revert: %+v %v", rec, err)
	}
	doc = e.keyDoc()
	for _, sid := range []string{"AdminDeny", "AdminDeny2"} {
		if _, ok := doc.StatementBySid(sid); !ok {
			t.Fatalf("%s was lost by the revert:\n%s", sid, e.keyPolicy())
		}
	}
	if _, ok := doc.StatementBySid(r.Applied.Name); ok {
		t.Fatalf("our statement survived the revert:\n%s", e.keyPolicy())
	}
}

// The sweeper and a completing apply race on one abandoned pending change: exactly one of
// them acts on it (conditional writes), and the outcome recorded is the one in the account.
func TestAttackConcurrentSweeperAndApply(t *testing.T) {
	for round := range 4 {
		e := newEnv(t, adminOnly)
		db := crashing(e)
		db.set(recordWith(StatusApplied))
		w := e.world()
		if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), w); err == nil {
			t.Fatal("Apply survived the crash")
		}
		db.set(nil)
		id := e.active()[0]
		e.clock.Add(DefaultLease + time.Second)
		r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-2"}, w)
		var wg sync.WaitGroup
		var applyErr, sweepErr error
		wg.Go(func() { applyErr = e.a.Apply(ctx, &r, denialOf(&r), w) })
		wg.Go(func() { _, sweepErr = e.a.Sweep(ctx, e.clock.Now()) })
		wg.Wait()
		if applyErr != nil && !errors.Is(applyErr, errLost) {
			t.Fatalf("round %d: apply: %v", round, applyErr)
		}
		if sweepErr != nil && !errors.Is(sweepErr, errLost) {
			t.Fatalf("round %d: sweep: %v", round, sweepErr)
		}
		rec := e.record(id)
		inPlace := countSid(e, rec.Name) == 1
		switch rec.Status {
		case StatusApplied:
			if !inPlace {
				t.Fatalf("round %d: recorded applied but the statement is gone:\n%s", round, e.keyPolicy())
			}
		case StatusRolledBack:
			if inPlace {
				t.Fatalf("round %d: recorded rolled back but the statement leaked:\n%s", round, e.keyPolicy())
			}
		case StatusPending:
			// Neither finished (one lost the race and the other was refused): whatever is in
			// place is still covered by an active record.
			if ids := e.active(); len(ids) != 1 {
				t.Fatalf("round %d: pending but not listed", round)
			}
		default:
			t.Fatalf("round %d: status %s", round, rec.Status)
		}
	}
}

// hookKMS runs hook once, at the first GetKeyPolicy after arm: between a reader's read of the
// key policy and what it does with it.
type hookKMS struct {
	KeyPolicyAPI
	fired atomic.Bool
	armed bool
	hook  func()
}

func (h *hookKMS) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, opts ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	out, err := h.KeyPolicyAPI.GetKeyPolicy(ctx, in, opts...)
	if h.armed && h.fired.CompareAndSwap(false, true) {
		h.hook() // may read the key policy itself: fired is already set
	}
	return out, err
}

// The race of the review, made deterministic: the sweeper reads the key policy to roll back an
// abandoned change, and before it acts an event completes the same change. Exactly one of them
// may own the change: the outcome recorded must be the one in the key policy (never "rolled
// back" with the statement still there).
func TestAttackSweeperAndApplyInterleaved(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	w := e.world()
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), w); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	id := e.active()[0]
	e.clock.Add(DefaultLease + time.Second)
	r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: "ev-2"}, w)
	var applyErr error
	h := &hookKMS{KeyPolicyAPI: e.kms}
	h.hook = func() { applyErr = e.a.Apply(ctx, &r, denialOf(&r), w) }
	e.a.KMS = h
	h.armed = true
	if _, err := e.a.Sweep(ctx, e.clock.Now()); err != nil && !errors.Is(err, errLost) {
		t.Fatalf("sweep: %v", err)
	}
	if applyErr != nil && !errors.Is(applyErr, errLost) {
		t.Fatalf("apply: %v", applyErr)
	}
	rec := e.record(id)
	inPlace := countSid(e, rec.Name) == 1
	if (rec.Status == StatusRolledBack) == inPlace || (rec.Status == StatusApplied) != inPlace {
		t.Fatalf("recorded %s, statement in place %v; report applied %+v blocked %q\n%s", rec.Status, inPlace, r.Applied, r.AutoApplyBlocked, e.keyPolicy())
	}
	if r.Applied != nil && !inPlace {
		t.Fatalf("the report says applied but the statement is gone")
	}
}

// staleKMS answers the first n GetKeyPolicy calls after arming with an old policy text, as an
// eventually consistent KMS may just after a PutKeyPolicy.
type staleKMS struct {
	KeyPolicyAPI
	mu    sync.Mutex
	n     int
	stale string
}

func (s *staleKMS) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, opts ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	s.mu.Lock()
	stale := s.n > 0
	if stale {
		s.n--
	}
	s.mu.Unlock()
	if stale {
		return &kms.GetKeyPolicyOutput{Policy: &s.stale}, nil
	}
	return s.KeyPolicyAPI.GetKeyPolicy(ctx, in, opts...)
}

// KMS's delayed reads: right after the change, the key policy still reads as before it for a
// few reads. The rollback must not conclude "never written" and leak the statement.
func TestAttackKMSStaleReadsDoNotLeakTheStatement(t *testing.T) {
	e := newEnv(t, adminOnly)
	db := crashing(e)
	db.set(recordWith(StatusApplied))
	if err := e.a.Apply(ctx, keyMissingReport(e, "ev-1"), denialOf(keyMissingReport(e, "ev-1")), e.world()); err == nil {
		t.Fatal("Apply survived the crash")
	}
	db.set(nil)
	rec := e.record(e.active()[0])
	if countSid(e, rec.Name) != 1 {
		t.Fatal("test setup: the crashed attempt did not write the statement")
	}
	e.a.KMS = &staleKMS{KeyPolicyAPI: e.kms, n: DefaultConsistentReads - 1, stale: e.before}
	e.clock.Add(DefaultLease)
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res.RolledBack != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	if countSid(e, rec.Name) != 0 || e.keyPolicy() != e.before {
		t.Fatalf("the rollback trusted a stale read and leaked the statement:\n%s", e.keyPolicy())
	}
}

// Without the audit key nothing is applied, and nothing errors (an error would make Lambda
// retry every fixable finding): the report says why.
func TestNoAuditKeyAppliesNothing(t *testing.T) {
	e := newEnv(t, adminOnly)
	e.a.Store.Sealer = nil
	r := keyMissingReport(e, "ev-1")
	if err := e.a.Apply(ctx, r, denialOf(r), e.world()); err != nil || r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "KMSFIX_AUDIT_KEY_ARN") {
		t.Fatalf("err %v, applied %+v, blocked %q", err, r.Applied, r.AutoApplyBlocked)
	}
	e.a.Settings.Diagnoses = []finding.Code{finding.IdentityPolicyMissing}
	r2 := keyMissingReport(e, "ev-2")
	if err := e.a.Apply(ctx, r2, denialOf(r2), e.world()); err != nil || !strings.Contains(r2.AutoApplyBlocked, "KMSFIX_APPLY_DIAGNOSES") {
		t.Fatalf("refused finding: err %v, blocked %q", err, r2.AutoApplyBlocked)
	}
	if e.keyPolicy() != e.before {
		t.Fatal("changed without an audit key")
	}
}
