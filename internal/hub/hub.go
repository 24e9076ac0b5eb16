// Package hub is the function's organization mode (docs/org.md): one function serves the
// accounts of an organization, reading each account's world through that account's reader role
// (kmsfix-reader, deployed by the spoke StackSet).
//
// Credentials are per account and never shared: each account has its own
// aws.CredentialsCache over an stscreds.AssumeRoleProvider, so an account's AssumeRole happens
// once per credential lifetime (renewed shortly before expiry), and each account has its own
// enricher, so no lookup cached for one account answers for another. A role that cannot be
// assumed (an account outside the organization, a spoke not deployed) leaves that account's
// world unknown: findings there are never verified.
//
// In apply mode the hub also assumes the kmsfix-apply role of the sandbox accounts it writes in
// (Levers): those credentials are cached per account exactly as the reader's (their own
// CredentialsCache, their own refusal memory), and they sign only that account's writes; the
// reads before and after a write go through the same account's reader role.
package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Defaults of Accounts.
const (
	// ExpiryWindow renews an account's credentials this long before they expire, so a call
	// never starts with credentials about to lapse.
	ExpiryWindow = 5 * time.Minute
	// RefusedTTL is how long a refused AssumeRole is remembered: a storm of events from an
	// account without a spoke costs one STS call per RefusedTTL, not one per event.
	RefusedTTL = time.Minute
	// SessionName names the hub's sessions in the spokes' CloudTrail.
	SessionName = "kmsfix-hub"
)

// Accounts holds one enricher per account, each over clients signed with that account's
// reader-role credentials. Safe for concurrent use; it lives as long as the container.
type Accounts struct {
	// Base is the hub's AWS configuration (Region, retryer, API options); its credentials
	// are the hub function's, used only to call sts:AssumeRole.
	Base aws.Config
	// STS is the hub's STS client (AssumeRole).
	STS stscreds.AssumeRoleAPIClient
	// Partition of the role ARNs (config.HubPartition).
	Partition string
	// Enrich are the per-account enrichers' options (OtherAccount is set here).
	Enrich enrich.Options
	// Clients builds the clients of one account from its configuration; nil: the SDK's
	// NewFromConfig (tests point them at the fakes).
	Clients func(cfg aws.Config) (enrich.KMSAPI, enrich.IAMAPI, enrich.STSAPI)
	// LeverClients builds the KMS and IAM clients of the levers (apply mode) from an
	// account's configuration, once with its reader role's credentials and once with its
	// apply role's; nil: the SDK's NewFromConfig.
	LeverClients func(cfg aws.Config) (*kms.Client, *iam.Client)
	// Now is the clock of the refusal memory (default time.Now).
	Now func() time.Time

	mu       sync.Mutex
	accounts map[string]*account
	appliers map[string]*applyAccount
}

// role is one assumed role's credentials in one account, and the memory of its refusal.
type role struct {
	arn     string
	creds   *aws.CredentialsCache
	refused error
	until   time.Time // the refusal is remembered until then
}

type account struct {
	role
	enricher *enrich.Enricher
	cfg      aws.Config    // signed with the reader role's credentials
	reads    *leverClients // the levers' reads over cfg (apply mode; built on first use)
}

// applyAccount is an account's apply role and the clients signed with its credentials.
type applyAccount struct {
	role
	writes *leverClients
}

type leverClients struct {
	kms *kms.Client
	iam *iam.Client
}

// RoleARN is the reader role the hub assumes in an account.
func (a *Accounts) RoleARN(acct string) string {
	return config.RoleARN(a.Partition, acct, config.ReaderRoleName)
}

// ApplyRoleARN is the apply role the hub assumes in a sandbox account (apply mode).
func (a *Accounts) ApplyRoleARN(acct string) string {
	return config.RoleARN(a.Partition, acct, config.ApplyRoleName)
}

// Enricher returns the account's enricher once its reader role's credentials are in hand, or
// the error of the AssumeRole.
func (a *Accounts) Enricher(ctx context.Context, acct string) (*enrich.Enricher, error) {
	ac, err := a.reader(ctx, acct)
	if err != nil {
		return nil, err
	}
	return ac.enricher, nil
}

// reader is the account with its reader role's credentials in hand.
func (a *Accounts) reader(ctx context.Context, acct string) (*account, error) {
	if !config.IsAccountID(acct) {
		return nil, fmt.Errorf("%q is not an account id", acct)
	}
	a.mu.Lock()
	if a.accounts == nil {
		a.accounts = map[string]*account{}
	}
	ac := a.accounts[acct]
	if ac == nil {
		ac = a.newAccount(acct)
		a.accounts[acct] = ac
	}
	a.mu.Unlock()
	return ac, a.live(ctx, &ac.role)
}

// live makes sure the role's credentials are in hand: a refusal remembered less than
// RefusedTTL ago is answered without calling STS.
func (a *Accounts) live(ctx context.Context, r *role) error {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	a.mu.Lock()
	if r.refused != nil && now().Before(r.until) {
		err := r.refused
		a.mu.Unlock()
		return err
	}
	a.mu.Unlock()

	// The cache calls AssumeRole only when it holds no live credentials (one caller at a
	// time; the others wait for its result).
	if _, err := r.creds.Retrieve(ctx); err != nil {
		err = fmt.Errorf("sts:AssumeRole %s: %w", r.arn, err)
		if ctx.Err() == nil { // a deadline of this invocation says nothing of the account
			a.mu.Lock()
			r.refused, r.until = err, now().Add(RefusedTTL)
			a.mu.Unlock()
		}
		return err
	}
	a.mu.Lock()
	r.refused = nil
	a.mu.Unlock()
	return nil
}

// newRole is a role's credentials cache: its own AssumeRole provider, never shared.
func (a *Accounts) newRole(arn string) (role, aws.Config) {
	prov := stscreds.NewAssumeRoleProvider(a.STS, arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = SessionName
	})
	creds := aws.NewCredentialsCache(prov, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = ExpiryWindow })
	cfg := a.Base.Copy()
	cfg.Credentials = creds
	return role{arn: arn, creds: creds}, cfg
}

func (a *Accounts) newAccount(acct string) *account {
	r, cfg := a.newRole(a.RoleARN(acct))
	clients := a.Clients
	if clients == nil {
		clients = func(cfg aws.Config) (enrich.KMSAPI, enrich.IAMAPI, enrich.STSAPI) {
			return kms.NewFromConfig(cfg), iam.NewFromConfig(cfg), sts.NewFromConfig(cfg)
		}
	}
	k, i, s := clients(cfg)
	opts := a.Enrich
	opts.OtherAccount = a.Enricher
	return &account{role: r, enricher: enrich.New(k, i, s, opts), cfg: cfg}
}

func (a *Accounts) leverClients(cfg aws.Config) *leverClients {
	if a.LeverClients != nil {
		k, i := a.LeverClients(cfg)
		return &leverClients{kms: k, iam: i}
	}
	return &leverClients{kms: kms.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg)}
}

// Levers implements apply.AccountLevers: the clients that change one account's key policies,
// grants and inline policies. Reads go through the account's reader role, writes through its
// apply role (assumed only when write is set: a dry run writes nothing), each with that
// account's own credentials; neither ever signs a call for another account.
func (a *Accounts) Levers(ctx context.Context, acct string, write bool) (apply.Levers, error) {
	ac, err := a.reader(ctx, acct)
	if err != nil {
		return apply.Levers{}, err
	}
	a.mu.Lock()
	if ac.reads == nil {
		ac.reads = a.leverClients(ac.cfg)
	}
	reads := ac.reads
	a.mu.Unlock()
	var writes *leverClients
	if write {
		a.mu.Lock()
		if a.appliers == nil {
			a.appliers = map[string]*applyAccount{}
		}
		ap := a.appliers[acct]
		if ap == nil {
			r, cfg := a.newRole(a.ApplyRoleARN(acct))
			ap = &applyAccount{role: r, writes: a.leverClients(cfg)}
			a.appliers[acct] = ap
		}
		a.mu.Unlock()
		if err := a.live(ctx, &ap.role); err != nil {
			return apply.Levers{}, err
		}
		writes = ap.writes
	}
	k := &keyLevers{account: acct, reads: reads.kms}
	i := &iamLevers{account: acct, reads: reads.iam}
	if writes != nil {
		k.writes, i.writes = writes.kms, writes.iam
	}
	return apply.Levers{Account: acct, Role: a.ApplyRoleARN(acct), KMS: k, Grants: k, IAM: i}, nil
}

// World builds the denial's world in the account that recorded it (the event's account,
// checked against the record by the handler), through that account's reader role. It
// implements pipeline.Enricher. When the role cannot be assumed, nothing is read and the
// world says why: the finding is reported, never verified.
func (a *Accounts) World(ctx context.Context, d *cloudtrail.Denial) *world.World {
	e, err := a.Enricher(ctx, d.RecipientAccount)
	if err != nil {
		return &world.World{Unreadable: []string{"the world of account " + d.RecipientAccount +
			" (its reader role " + config.ReaderRoleName + " could not be assumed): " + err.Error()}}
	}
	return e.World(ctx, d)
}
