package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/notify"
)

var ctx = context.Background()

func keyMissingReport(e *env, eventID string) *finding.Report {
	r := report(denialOpts{msg: cloudtrail.MsgNoResourceAllow, key: e.key, eventID: eventID}, e.world())
	if r.Diagnosis != finding.KeyPolicyMissing || !r.Verified {
		e.t.Fatalf("engine: %s verified=%v (%s)", r.Diagnosis, r.Verified, r.Unverified)
	}
	return &r
}

func mustApply(t testing.TB, e *env, r *finding.Report) *finding.Applied {
	t.Helper()
	if err := e.a.Apply(ctx, r, denialOf(r), e.world()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if r.Applied == nil || !r.AutoApply {
		t.Fatalf("not applied: auto_apply=%v blocked=%q", r.AutoApply, r.AutoApplyBlocked)
	}
	return r.Applied
}

// The check of issue 6: applied against the emulators, notified with the revert command,
// reverted at expiry, and the key policy byte-for-byte as before.
func TestScenarioKeyPolicyAppliedNotifiedRevertedAtExpiry(t *testing.T) {
	e := newEnv(t, adminOnly)
	r := keyMissingReport(e, "ev-1")
	a := mustApply(t, e, r)

	if a.Lever != finding.KindKeyPolicyStatement || a.Target != e.key || a.ExpiresAt != "2026-11-30T06:00:00Z" {
		t.Fatalf("applied = %+v", a)
	}
	wantCmd := "kmsfix revert " + a.ID + " --table " + e.table + " --region us-east-1"
	if a.RevertCommand != wantCmd {
		t.Fatalf("revert command = %q, want %q", a.RevertCommand, wantCmd)
	}
	doc := e.keyDoc()
	if _, ok := doc.StatementBySid(a.Name); !ok || len(doc.Statement) != 2 {
		t.Fatalf("key policy after apply: %s", e.keyPolicy())
	}
	adminStmt := e.before[strings.Index(e.before, "{\n      \"Sid\""):strings.Index(e.before, "\n  ]")]
	if !strings.Contains(e.keyPolicy(), adminStmt) {
		t.Fatalf("the existing statement was not kept byte-for-byte:\n%s\nin\n%s", adminStmt, e.keyPolicy())
	}
	rec := e.record(a.ID)
	if rec.Status != StatusApplied || rec.Before != e.before || rec.EventID != "ev-1" || rec.Fingerprint != Fingerprint(r) ||
		!strings.Contains(rec.After, a.Name) || !strings.Contains(rec.Finding, `"diagnosis":"key-policy-missing"`) {
		t.Fatalf("audit record = %+v", rec)
	}
	// Access Analyzer saw the merged policy (validation) and our statement alone (admin actions).
	seen := e.aa.Seen()
	if len(seen) != 2 || seen[0].Op != "ValidatePolicy" || seen[0].PolicyType != "RESOURCE_POLICY" ||
		!strings.Contains(seen[0].PolicyDocument, "KeyAdministrators") ||
		seen[1].Op != "CheckAccessNotGranted" || strings.Contains(seen[1].PolicyDocument, "KeyAdministrators") ||
		strings.Join(seen[1].Actions, ",") != strings.Join(AdminActions, ",") {
		t.Fatalf("Access Analyzer requests = %+v", seen)
	}

	// The messages say what was applied, until when, and the command that reverts it.
	n := notify.NewNotice(*r)
	body, err := notify.ReportJSON(n)
	if err != nil {
		t.Fatal(err)
	}
	slack, _ := json.Marshal(notify.SlackMessage(n))
	for _, s := range []string{string(body), string(slack)} {
		if !strings.Contains(s, wantCmd) || !strings.Contains(s, a.ID) {
			t.Fatalf("message lacks the change or its revert command:\n%s", s)
		}
	}

	// Not yet expired: the sweeper leaves it.
	e.clock.Add(23 * time.Hour)
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res.Reverted != 0 {
		t.Fatalf("early sweep = %+v, %v", res, err)
	}
	e.clock.Add(time.Hour)
	res, err := e.a.Sweep(ctx, e.clock.Now())
	if err != nil || res.Reverted != 1 {
		t.Fatalf("sweep at expiry = %+v, %v", res, err)
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatalf("key policy after revert differs from before:\n%q\n%q", got, e.before)
	}
	rec = e.record(a.ID)
	if rec.Status != StatusReverted || rec.EndedAt != "2026-11-30T06:00:00Z" || !strings.Contains(rec.Note, "byte-for-byte") {
		t.Fatalf("audit after revert = %+v", rec)
	}
	if ids := e.active(); len(ids) != 0 {
		t.Fatalf("active after revert = %v", ids)
	}
	// TTL only on the closed record, 90 days after it ended; the live record had none.
	item, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &e.table, Key: key("apply#"+a.ID, "change")})
	if err != nil {
		t.Fatal(err)
	}
	if ttl, ok := item.Item["expires_at"].(*ddbtypes.AttributeValueMemberN); !ok || ttl.Value != fmt.Sprint(e.clock.Now().Add(DefaultRetention).Unix()) {
		t.Fatalf("expires_at = %v", item.Item["expires_at"])
	}
	// Revert is idempotent: again by id, and another sweep, change nothing.
	if rec, err := e.a.Revert(ctx, a.ID); err != nil || rec.Status != StatusReverted || rec.Attempts != 1 {
		t.Fatalf("second revert = %+v, %v", rec, err)
	}
	if res, err := e.a.Sweep(ctx, e.clock.Now()); err != nil || res != (SweepResult{}) {
		t.Fatalf("second sweep = %+v, %v", res, err)
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatalf("key policy changed by a second revert")
	}
	// The finding can be fixed again after the revert: a new change.
	r2 := keyMissingReport(e, "ev-2")
	if a2 := mustApply(t, e, r2); a2.ID == a.ID {
		t.Fatalf("a new change after revert reused id %s", a.ID)
	}
}

// Every guard refusal reaches the messages with its reason.
func TestRefusalIsInTheNotification(t *testing.T) {
	e := newEnv(t, adminOnly)
	e.a.Settings.Diagnoses = []finding.Code{finding.IdentityPolicyMissing}
	r := keyMissingReport(e, "ev-1")
	if err := e.a.Apply(ctx, r, denialOf(r), e.world()); err != nil {
		t.Fatal(err)
	}
	if r.AutoApply || r.Applied != nil || !strings.Contains(r.AutoApplyBlocked, "not in KMSFIX_APPLY_DIAGNOSES") {
		t.Fatalf("report: auto_apply=%v blocked=%q", r.AutoApply, r.AutoApplyBlocked)
	}
	n := notify.NewNotice(*r)
	body, _ := notify.ReportJSON(n)
	slack, _ := json.Marshal(notify.SlackMessage(n))
	for _, s := range []string{string(body), string(slack)} {
		if !strings.Contains(s, "not in KMSFIX_APPLY_DIAGNOSES") {
			t.Fatalf("message lacks the refusal:\n%s", s)
		}
	}
	if got := e.keyPolicy(); got != e.before {
		t.Fatal("a refused finding changed the key policy")
	}
}

// Access Analyzer and quota refusals, lever by lever, and the fallback each one leaves.
func TestAnalyzerAndQuotaRefusals(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(e *env)
		lever     string // "" = refused
		inBlocked []string
	}{
		{"validation error on the key policy: grant instead", func(e *env) {
			e.aa.SetFinding("RESOURCE_POLICY", "ERROR", "MISSING_PRINCIPAL")
		}, finding.KindGrant, nil},
		{"security warning on the key policy: grant instead", func(e *env) {
			e.aa.SetFinding("RESOURCE_POLICY", "SECURITY_WARNING", "EXTERNAL_PRINCIPAL")
		}, finding.KindGrant, nil},
		{"warnings do not refuse", func(e *env) {
			e.aa.SetFinding("", "WARNING", "X")
			e.aa.SetFinding("", "SUGGESTION", "Y")
		}, finding.KindKeyPolicyStatement, nil},
		{"admin action granted: grant instead", func(e *env) { e.aa.SetResult("FAIL") }, finding.KindGrant, nil},
		{"admin action granted and no retiring principal: refused", func(e *env) {
			e.aa.SetResult("FAIL")
			e.a.Settings.RemediatorRoleARN = ""
			e.a.Settings.Account = sandbox
		}, "", []string{"key-policy-statement: IAM Access Analyzer CheckAccessNotGranted", "FAIL", "no grant: the retiring principal"}},
		{"key policy over 32 KB: grant instead", func(e *env) {
			big := `{"Version":"2012-10-17","Statement":[{"Sid":"KeyAdministrators","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:*","Resource":"*"},` +
				`{"Sid":"Padding","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/pad":"` +
				strings.Repeat("x", MaxKeyPolicyBytes-600) + `"}}}]}`
			putPolicy(e, big)
		}, finding.KindGrant, nil},
		{"Access Analyzer unreachable: refused, never applied blind", func(e *env) {
			e.a.Analyzer = nil
			e.a.Settings.RemediatorRoleARN = ""
		}, "", []string{"IAM Access Analyzer is not configured"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, adminOnly)
			c.setup(e)
			before := e.keyPolicy()
			r := keyMissingReport(e, "ev-1")
			if err := e.a.Apply(ctx, r, denialOf(r), e.world()); err != nil {
				t.Fatal(err)
			}
			if c.lever == "" {
				for _, s := range c.inBlocked {
					if r.AutoApply || !strings.Contains(r.AutoApplyBlocked, s) {
						t.Fatalf("blocked = %q, want it to contain %q", r.AutoApplyBlocked, s)
					}
				}
				if e.keyPolicy() != before || len(e.grants.Grants()) != 0 || len(e.active()) != 0 {
					t.Fatal("a refused change left something behind")
				}
				return
			}
			if r.Applied == nil || r.Applied.Lever != c.lever {
				t.Fatalf("applied = %+v (blocked %q), want lever %s", r.Applied, r.AutoApplyBlocked, c.lever)
			}
			if c.lever == finding.KindGrant {
				if e.keyPolicy() != before {
					t.Fatal("the grant lever changed the key policy")
				}
				g := e.grants.Grants()
				if len(g) != 1 || g[0].Retiring != remARN || g[0].Name != r.Applied.Name || g[0].Grantee != roleARN ||
					strings.Join(g[0].Operations, ",") != "Decrypt" {
					t.Fatalf("grants = %+v", g)
				}
				sub, _ := g[0].Constraints["EncryptionContextSubset"].(map[string]any)
				if sub["aws:s3:arn"] != "arn:aws:s3:::"+bucket+"/"+objectKey {
					t.Fatalf("grant constraints = %v", g[0].Constraints)
				}
				if _, err := e.a.Revert(ctx, r.Applied.ID); err != nil {
					t.Fatal(err)
				}
				if g := e.grants.Grants(); len(g) != 0 {
					t.Fatalf("grant not retired: %+v", g)
				}
			}
		})
	}
}

func putPolicy(e *env, text string) {
	e.t.Helper()
	if _, err := e.kms.PutKeyPolicy(ctx, putKeyPolicyInput(e.key, text)); err != nil {
		e.t.Fatalf("PutKeyPolicy: %v", err)
	}
}

// The inline-policy lever: PutRolePolicy with the deterministic name, checked by Access
// Analyzer as an identity policy, reverted by DeleteRolePolicy and nothing else.
func TestInlinePolicyLever(t *testing.T) {
	e := newEnv(t, delegating)
	e.iam.SetInline("role/reader", "team-policy", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key}, e.world())
	a := mustApply(t, e, &r)
	if a.Lever != finding.KindIdentityPolicy || a.Name != r.Patches[0].Name || a.Target != roleARN {
		t.Fatalf("applied = %+v", a)
	}
	got := e.iam.Inline("role/reader")
	if len(got) != 2 || !sameJSON(got[a.Name], mustMarshal(t, r.Patches[0].Policy)) {
		t.Fatalf("inline policies = %v", got)
	}
	for _, q := range e.aa.Seen() {
		if q.PolicyType != "IDENTITY_POLICY" {
			t.Fatalf("Access Analyzer asked about %s, want IDENTITY_POLICY", q.PolicyType)
		}
	}
	if e.keyPolicy() != e.before {
		t.Fatal("the inline lever changed the key policy")
	}
	if _, err := e.a.Revert(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	got = e.iam.Inline("role/reader")
	if len(got) != 1 || got["team-policy"] == "" {
		t.Fatalf("after revert: %v", got)
	}
	rec, err := e.a.Revert(ctx, a.ID)
	if err != nil || rec.Status != StatusReverted || e.iam.Calls("DeleteRolePolicy") != 1 {
		t.Fatalf("second revert: %+v %v (DeleteRolePolicy calls %d)", rec, err, e.iam.Calls("DeleteRolePolicy"))
	}
}

func mustMarshal(t *testing.T, v any) string {
	s, err := marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A role whose inline policies would pass 10,240 characters gets the key-policy statement.
func TestInlineQuotaFallsBackToKeyPolicy(t *testing.T) {
	e := newEnv(t, delegating)
	e.iam.SetInline("role/reader", "big", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::`+strings.Repeat("b", MaxRoleInlineChars-400)+`/*"}]}`)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key}, e.world())
	a := mustApply(t, e, &r)
	if a.Lever != finding.KindKeyPolicyStatement {
		t.Fatalf("lever = %s, want the key-policy fallback", a.Lever)
	}
	if len(e.iam.Inline("role/reader")) != 1 {
		t.Fatal("the inline policy was written despite the quota")
	}
}

// IAM refuses to edit the role (a protected role the event did not reveal): the change fails
// and nothing is left; the reason is on the report.
func TestIAMRefusalRollsBack(t *testing.T) {
	e := newEnv(t, delegating)
	e.iam.AddEntity("role/reader", true)
	r := report(denialOpts{msg: cloudtrail.MsgNoIdentityAllow, key: e.key}, e.world())
	if err := e.a.Apply(ctx, &r, denialOf(&r), e.world()); err != nil {
		t.Fatal(err)
	}
	if r.AutoApply || !strings.Contains(r.AutoApplyBlocked, "rolled back") || !strings.Contains(r.AutoApplyBlocked, "UnmodifiableEntity") {
		t.Fatalf("blocked = %q", r.AutoApplyBlocked)
	}
	if ids := e.active(); len(ids) != 0 {
		t.Fatalf("active = %v", ids)
	}
}

// Two events with the same fingerprint make one change; so do concurrent ones.
func TestSameFingerprintOneChange(t *testing.T) {
	e := newEnv(t, adminOnly)
	// Both events were diagnosed before the change (enrichment read the same policy).
	r1, r2 := keyMissingReport(e, "ev-1"), keyMissingReport(e, "ev-2")
	first := mustApply(t, e, r1)
	second := mustApply(t, e, r2)
	if second.ID != first.ID {
		t.Fatalf("second event made change %s, first %s", second.ID, first.ID)
	}
	if n := len(e.keyDoc().Statement); n != 2 {
		t.Fatalf("%d statements after two events", n)
	}
}

func TestConcurrentEventsOneChange(t *testing.T) {
	e := newEnv(t, adminOnly)
	const n = 6
	reports := make([]*finding.Report, n)
	for i := range reports {
		reports[i] = keyMissingReport(e, "ev-"+string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range reports {
		wg.Go(func() { errs[i] = e.a.Apply(ctx, reports[i], denialOf(reports[i]), e.world()) })
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, r := range reports {
		if errs[i] != nil {
			t.Fatalf("Apply %d: %v", i, errs[i])
		}
		switch {
		case r.Applied != nil:
			ids[r.Applied.ID] = true
		case !strings.Contains(r.AutoApplyBlocked, "another invocation"):
			t.Fatalf("event %d: blocked %q", i, r.AutoApplyBlocked)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("changes made: %v", ids)
	}
	doc := e.keyDoc()
	if len(doc.Statement) != 2 {
		t.Fatalf("key policy has %d statements:\n%s", len(doc.Statement), e.keyPolicy())
	}
	if a := e.active(); len(a) != 1 {
		t.Fatalf("active = %v", a)
	}
}
