package hub_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/hub"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

const (
	hubAccount    = "999988887777"
	callerAccount = "111122223333" // the role of sample 25
	ownerAccount  = "111122224444" // the key's owner in sample 25
	outsider      = "555566667777" // no spoke: AssumeRole is refused
	sample        = "25-cross-account-both-sandboxes"
)

// org is a hub over two member accounts, each with its own local-kms and IAM fake, reachable
// only with that account's credentials (AccountRouter), and the hub's STS issuing them.
type org struct {
	sts       *awsfake.STS
	kms, iam  *awsfake.AccountRouter
	members   map[string]*emulator.Services
	accounts  *hub.Accounts
	validator *pipeline.Validator
	sandbox   []string
	item      cloudtrail.Item
	keyARN    string
	principal string
}

func readSample(t *testing.T) (cloudtrail.Item, *world.World) {
	t.Helper()
	dir := filepath.Join("..", "..", "events", sample)
	ev, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	item, err := cloudtrail.Parse(ev)
	if err != nil || item.Denial == nil {
		t.Fatalf("sample %s: %v %+v", sample, err, item)
	}
	w, err := world.Load(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	return item, w
}

// newOrg starts both accounts' services; only the members have a spoke (AssumeRole works).
func newOrg(t *testing.T, lifetime time.Duration, members ...string) *org {
	t.Helper()
	item, w := readSample(t)
	o := &org{members: map[string]*emulator.Services{}, item: item, sandbox: w.SandboxAccounts,
		keyARN: item.Denial.KeyARN, principal: item.Denial.Identity.PrincipalARN}
	kmsURLs, iamURLs := map[string]string{}, map[string]string{}
	for _, acct := range []string{callerAccount, ownerAccount} {
		s := emulator.StartServices(t, emulator.ServicesOptions{Account: acct, Region: "eu-west-1", World: w})
		o.members[acct] = s
		kmsURLs[acct], iamURLs[acct] = s.KMS.URL, s.IAM.URL
	}
	o.sts = awsfake.NewSTS(t, hubAccount)
	o.sts.Lifetime = lifetime
	for _, m := range members {
		o.sts.AddMember(m)
	}
	o.kms = awsfake.NewAccountRouter(t, o.sts, kmsURLs)
	o.iam = awsfake.NewAccountRouter(t, o.sts, iamURLs)

	cfg := aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAHUBHUBHUBHUBHUB0", "hub", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2; o.MaxBackoff = 10 * time.Millisecond })
		},
	}
	stsEndpoint := func(so *sts.Options) { so.BaseEndpoint = aws.String(o.sts.URL) }
	o.accounts = &hub.Accounts{
		Base: cfg, STS: sts.NewFromConfig(cfg, stsEndpoint), Partition: "aws",
		Enrich: enrich.Options{TTL: time.Minute, CallTimeout: 5 * time.Second},
		Clients: func(c aws.Config) (enrich.KMSAPI, enrich.IAMAPI, enrich.STSAPI) {
			return kms.NewFromConfig(c, func(ko *kms.Options) { ko.BaseEndpoint = aws.String(o.kms.URL) }),
				iam.NewFromConfig(c, func(io *iam.Options) { io.BaseEndpoint = aws.String(o.iam.URL) }),
				sts.NewFromConfig(c, stsEndpoint)
		},
		LeverClients: func(c aws.Config) (*kms.Client, *iam.Client) {
			return kms.NewFromConfig(c, func(ko *kms.Options) { ko.BaseEndpoint = aws.String(o.kms.URL) }),
				iam.NewFromConfig(c, func(io *iam.Options) { io.BaseEndpoint = aws.String(o.iam.URL) })
		},
	}
	aa := accessanalyzer.NewFromConfig(cfg, func(ao *accessanalyzer.Options) {
		ao.BaseEndpoint = aws.String(o.members[callerAccount].AA.URL)
	})
	o.validator = pipeline.NewValidator(aa, time.Minute, 5*time.Second)
	return o
}

func (o *org) live() *pipeline.Live {
	return &pipeline.Live{Enricher: o.accounts, Checker: o.validator, Sandbox: o.sandbox}
}

// A cross-account denial that the caller's account alone can verify on its side only comes
// out verified on both sides in the hub: the key policy is read through the key owner's reader
// role, with the key owner's credentials, and the principal through the caller's.
func TestCrossAccountVerifiedOnBothSides(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	ctx := context.Background()
	rep, w := o.live().Explain(ctx, o.item)

	if len(w.Unreadable) != 0 {
		t.Fatalf("unreadable in the hub: %v", w.Unreadable)
	}
	if k := w.Key(o.keyARN); k == nil || k.Policy == nil {
		t.Fatalf("key policy not read: %+v", k)
	}
	if w.Principal(o.principal) == nil {
		t.Fatalf("principal not read")
	}
	if rep.Diagnosis != finding.CrossAccountAccessMissing || !rep.Verified {
		t.Fatalf("diagnosis %s verified %v (unknown %v); want cross-account-access-missing, verified", rep.Diagnosis, rep.Verified, rep.Unknown)
	}
	kinds := map[string]bool{}
	for _, p := range rep.Patches {
		kinds[string(p.Kind)] = true
	}
	if !kinds["identity-policy"] || !kinds["key-policy-statement"] {
		t.Errorf("patches %v: want both halves", kinds)
	}

	// Who read what: the key policy only with the owner's credentials, in the owner's KMS.
	if n := o.members[ownerAccount].KMS.Calls("GetKeyPolicy"); n != 1 {
		t.Errorf("GetKeyPolicy in the owner's KMS: %d calls, want 1", n)
	}
	if n := o.members[callerAccount].KMS.Calls("GetKeyPolicy"); n != 0 {
		t.Errorf("GetKeyPolicy in the caller's KMS: %d calls, want 0", n)
	}
	if o.iam.Calls(callerAccount) == 0 || o.iam.Calls(ownerAccount) != 0 {
		t.Errorf("IAM calls: caller %d, owner %d; the principal is the caller's", o.iam.Calls(callerAccount), o.iam.Calls(ownerAccount))
	}
	if o.kms.Refused()+o.iam.Refused() != 0 {
		t.Errorf("calls with unknown credentials: kms %d iam %d", o.kms.Refused(), o.iam.Refused())
	}
	roles := strings.Join(o.sts.AssumedRoles(), " ")
	for _, acct := range []string{callerAccount, ownerAccount} {
		if !strings.Contains(roles, "arn:aws:iam::"+acct+":role/kmsfix-reader") {
			t.Errorf("no reader role of %s assumed: %s", acct, roles)
		}
	}
}

// The key owner's copy of the same call (recipientAccountId is the key's account): the key
// is read in the recipient account, the principal through the caller's reader role, and the
// finding is the same, verified.
func TestKeyOwnersCopyReadsThePrincipalInItsAccount(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	d := *o.item.Denial
	d.RecipientAccount = ownerAccount
	item := o.item
	item.Denial = &d
	rep, w := o.live().Explain(context.Background(), item)
	if len(w.Unreadable) != 0 || w.Principal(o.principal) == nil || w.Key(o.keyARN) == nil || w.Key(o.keyARN).Policy == nil {
		t.Fatalf("world of the key owner's copy: unreadable %v", w.Unreadable)
	}
	if !rep.Verified || rep.Diagnosis != finding.CrossAccountAccessMissing {
		t.Fatalf("diagnosis %s verified %v (unknown %v)", rep.Diagnosis, rep.Verified, rep.Unknown)
	}
	if o.iam.Calls(callerAccount) == 0 || o.iam.Calls(ownerAccount) != 0 {
		t.Errorf("IAM calls: caller %d, owner %d; the principal is the caller's", o.iam.Calls(callerAccount), o.iam.Calls(ownerAccount))
	}
	if n := o.members[ownerAccount].KMS.Calls("GetKeyPolicy"); n != 1 {
		t.Errorf("GetKeyPolicy in the owner's KMS: %d, want 1", n)
	}
}

// A key owner without a spoke (outside the organization): its half stays unknown, the finding
// is reported and never verified; the refusal is named.
func TestKeyOwnerOutsideOrgIsUnknown(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount)
	rep, w := o.live().Explain(context.Background(), o.item)
	if rep.Verified || rep.AutoApply {
		t.Fatalf("verified %v auto_apply %v with the key owner's half unread", rep.Verified, rep.AutoApply)
	}
	if k := w.Key(o.keyARN); k != nil && k.Policy != nil {
		t.Fatalf("a key policy was read without the owner's role")
	}
	if !strings.Contains(strings.Join(w.Unreadable, "\n"), "arn:aws:iam::"+ownerAccount+":role/kmsfix-reader") {
		t.Errorf("unreadable does not name the owner's reader role: %v", w.Unreadable)
	}
	if w.Principal(o.principal) == nil {
		t.Errorf("the caller's half should still be read")
	}
}

// An event of an account without a spoke: nothing is read, nothing verified, and a storm of
// such events costs one AssumeRole per RefusedTTL.
func TestRecipientOutsideOrg(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	d := *o.item.Denial
	d.RecipientAccount = outsider
	item := o.item
	item.Denial = &d
	for range 20 {
		rep, w := o.live().Explain(context.Background(), item)
		if rep.Verified || len(w.Keys) != 0 || len(w.Principals) != 0 || len(w.Unreadable) == 0 {
			t.Fatalf("outside the organization: verified %v, world %+v", rep.Verified, w)
		}
	}
	if n := o.sts.Calls("AssumeRole"); n != 1 {
		t.Errorf("AssumeRole attempts for a refused account over 20 events: %d, want 1", n)
	}
	if o.kms.Calls(outsider)+o.iam.Calls(outsider) != 0 {
		t.Errorf("calls signed for the outsider")
	}
}

// Many events from two accounts: one AssumeRole per account while the credentials live.
func TestOneAssumeRolePerAccount(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	ctx := context.Background()
	for range 50 {
		o.live().Explain(ctx, o.item)
		if _, err := o.accounts.Enricher(ctx, ownerAccount); err != nil {
			t.Fatal(err)
		}
	}
	for _, acct := range []string{callerAccount, ownerAccount} {
		if n := o.sts.AssumeRoleCalls(acct); n != 1 {
			t.Errorf("AssumeRole for %s over 50 events: %d, want 1", acct, n)
		}
	}
}

// Credentials that would expire within hub.ExpiryWindow are renewed before use, per account.
func TestCredentialsRenewedBeforeExpiry(t *testing.T) {
	o := newOrg(t, hub.ExpiryWindow-time.Minute, callerAccount, ownerAccount)
	ctx := context.Background()
	for range 3 {
		if _, err := o.accounts.Enricher(ctx, callerAccount); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.sts.AssumeRoleCalls(callerAccount); n != 3 {
		t.Errorf("AssumeRole with credentials inside the expiry window: %d, want 3 (one per use)", n)
	}
	if n := o.sts.AssumeRoleCalls(ownerAccount); n != 0 {
		t.Errorf("AssumeRole for an account not asked: %d", n)
	}
}
