package hub_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/hub"
)

const breakGlass = "arn:aws:iam::" + hubAccount + ":role/kmsfix-break-glass"

// reverter is what `kmsfix revert --hub [--role R]` builds from a person's credentials: an
// applier that can only revert, acting in each change's account through that account's
// reader and apply roles, assumed with the person's credentials or, with role, with the
// credentials of role assumed first (the CLI's own test runs the command itself:
// TestRevertCommandInTheHub).
func reverter(o *org, a *apply.Applier, accessKey, role string) *apply.Applier {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(accessKey, "secret", "")}
	stsEndpoint := func(so *sts.Options) { so.BaseEndpoint = aws.String(o.sts.URL) }
	if role != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg, stsEndpoint), role))
	}
	return &apply.Applier{
		Settings: apply.Settings{Table: a.Settings.Table, Region: "eu-west-1", Hub: true, ConsistentReads: 1},
		Store:    a.Store,
		Sleep:    func(context.Context, time.Duration) error { return nil },
		Accounts: &hub.Accounts{Base: cfg, STS: sts.NewFromConfig(cfg, stsEndpoint), Partition: "aws",
			LeverClients: func(c aws.Config) (*kms.Client, *iam.Client) {
				return kms.NewFromConfig(c, func(ko *kms.Options) { ko.BaseEndpoint = aws.String(o.kms.URL) }),
					iam.NewFromConfig(c, func(io *iam.Options) { io.BaseEndpoint = aws.String(o.iam.URL) })
			}},
	}
}

// A person of the hub account reverts the hub's automatic change early, as kmsfix-break-glass:
// the spokes' roles trust exactly the hub function's role and the break-glass role (the trust
// is modelled in the STS fake as the templates write it), the break-glass role trusts the hub
// account's principals. Both halves of sample 25 are removed exactly (the key policy
// byte-for-byte, the inline policy gone), each written by its own account's apply role,
// assumed by the break-glass role. The same person with their own credentials, and a member
// account's administrator even through the break-glass role, are refused by the trust, and
// nothing changes.
func TestBreakGlassRevertsHubApplyEarly(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	const person, memberAdmin = "arn:aws:iam::" + hubAccount + ":user/alice", "arn:aws:iam::" + callerAccount + ":role/admin"
	o.sts.AddMember(hubAccount) // its break-glass role
	o.sts.KnowAs("AKIAHUBHUBHUBHUBHUB0", hubAccount, hubRole)
	o.sts.KnowAs("AKIDALICE", hubAccount, person)
	o.sts.KnowAs("AKIDMEMBERADMIN", callerAccount, memberAdmin)
	o.sts.Trust(config.ReaderRoleName, hubRole, breakGlass)
	o.sts.Trust(config.ApplyRoleName, hubRole, breakGlass)
	o.sts.Trust(config.BreakGlassRoleName, "arn:aws:iam::"+hubAccount+":root")

	var logs strings.Builder
	a := hubApplier(t, o, []string{callerAccount, ownerAccount}, &logs)
	ctx := context.Background()
	before := o.keyPolicy(t)
	inlineBefore := o.members[callerAccount].IAM.Inline(principal)
	rep, w := o.live().Explain(ctx, o.item)
	if err := a.Apply(ctx, &rep, o.item.Denial, w); err != nil {
		t.Fatal(err)
	}
	if rep.Applied == nil || len(rep.AppliedMore) != 1 {
		t.Fatalf("the hub's apply: %+v %+v %q\n%s", rep.Applied, rep.AppliedMore, rep.AutoApplyBlocked, logs.String())
	}
	ids := []string{rep.Applied.ID, rep.AppliedMore[0].ID}
	applied := o.keyPolicy(t)
	stillApplied := func(who string) {
		t.Helper()
		for _, id := range ids {
			if rec, err := a.Store.Get(ctx, id); err != nil || rec.Status != apply.StatusApplied {
				t.Fatalf("%s: record %s is %s (%v)", who, id, status(rec), err)
			}
		}
		if o.keyPolicy(t) != applied || len(o.members[callerAccount].IAM.Inline(principal)) != len(inlineBefore)+1 {
			t.Fatalf("%s: something was reverted", who)
		}
	}

	for _, c := range []struct{ who, key, role, refused string }{
		{"the person's own credentials", "AKIDALICE", "", "role/kmsfix-"},
		{"a member account's administrator", "AKIDMEMBERADMIN", "", "role/kmsfix-"},
		{"a member account's administrator through the break-glass role", "AKIDMEMBERADMIN", breakGlass, "AccessDenied"},
	} {
		r := reverter(o, a, c.key, c.role)
		for _, id := range ids {
			if _, err := r.Revert(ctx, id); err == nil || !strings.Contains(err.Error(), c.refused) {
				t.Errorf("%s reverting %s: %v, want refused (%s)", c.who, id, err, c.refused)
			}
		}
		stillApplied(c.who)
	}
	if n := len(o.sts.AssumedBy(breakGlass)); n != 0 {
		t.Fatalf("the break-glass role was assumed %d times by refused callers", n)
	}

	r := reverter(o, a, "AKIDALICE", breakGlass)
	for _, id := range ids {
		rec, err := r.Revert(ctx, id)
		if err != nil || rec.Status != apply.StatusReverted {
			t.Fatalf("revert %s as break-glass: %s %v", id, status(rec), err)
		}
	}
	if got := o.keyPolicy(t); got != before {
		t.Errorf("the key policy after the early revert is not byte-for-byte as before:\n%s\nwant\n%s", got, before)
	}
	if got := o.members[callerAccount].IAM.Inline(principal); len(got) != len(inlineBefore) {
		t.Errorf("inline policies after the early revert: %v", got)
	}
	if n := o.iam.Ops(applyRole(callerAccount))["DeleteRolePolicy"]; n != 1 {
		t.Errorf("DeleteRolePolicy by the caller's apply role: %d", n)
	}
	if n := o.kms.Ops(applyRole(ownerAccount))["PutKeyPolicy"]; n != 2 {
		t.Errorf("PutKeyPolicy by the owner's apply role: %d, want 2 (the hub's apply, the early revert)", n)
	}
	if got := o.sts.AssumedBy(breakGlass); len(got) != 1 || got[0] != person {
		t.Errorf("break-glass assumed by %v, want the person once", got)
	}
	for _, acct := range []string{callerAccount, ownerAccount} {
		if got := o.sts.AssumedBy(applyRole(acct)); !slices.Equal(got, []string{hubRole, breakGlass}) {
			t.Errorf("%s assumed by %v, want the hub function (apply) then the break-glass role (revert)", applyRole(acct), got)
		}
	}
	if o.kms.Foreign()+o.kms.Refused()+o.iam.Refused() != 0 {
		t.Errorf("calls refused by the routers: foreign %d, refused %d/%d", o.kms.Foreign(), o.kms.Refused(), o.iam.Refused())
	}
	// The sweeper finds nothing left to do at expiry.
	if res, err := a.Sweep(ctx, time.Now().Add(2*time.Hour)); err != nil || res.Reverted != 0 {
		t.Errorf("sweep after the early revert: %+v %v", res, err)
	}
	for _, id := range ids {
		if rec, err := a.Store.Get(ctx, id); err != nil || rec.Status != apply.StatusReverted {
			t.Errorf("record %s: %s %v", id, status(rec), err)
		}
	}
}

func status(r *apply.Record) string {
	if r == nil {
		return "<none>"
	}
	return r.Status + " (" + r.Note + ")"
}
