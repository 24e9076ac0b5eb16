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
	// Now is the clock of the refusal memory (default time.Now).
	Now func() time.Time

	mu       sync.Mutex
	accounts map[string]*account
}

type account struct {
	creds    *aws.CredentialsCache
	enricher *enrich.Enricher
	refused  error
	until    time.Time // the refusal is remembered until then
}

// RoleARN is the reader role the hub assumes in an account.
func (a *Accounts) RoleARN(acct string) string {
	return "arn:" + a.Partition + ":iam::" + acct + ":role/" + config.ReaderRoleName
}

// Enricher returns the account's enricher once its reader role's credentials are in hand, or
// the error of the AssumeRole.
func (a *Accounts) Enricher(ctx context.Context, acct string) (*enrich.Enricher, error) {
	if !config.IsAccountID(acct) {
		return nil, fmt.Errorf("%q is not an account id", acct)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
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
	if ac.refused != nil && now().Before(ac.until) {
		err := ac.refused
		a.mu.Unlock()
		return nil, err
	}
	a.mu.Unlock()

	// The cache calls AssumeRole only when it holds no live credentials (one caller at a
	// time; the others wait for its result).
	if _, err := ac.creds.Retrieve(ctx); err != nil {
		err = fmt.Errorf("sts:AssumeRole %s: %w", a.RoleARN(acct), err)
		if ctx.Err() == nil { // a deadline of this invocation says nothing of the account
			a.mu.Lock()
			ac.refused, ac.until = err, now().Add(RefusedTTL)
			a.mu.Unlock()
		}
		return nil, err
	}
	a.mu.Lock()
	ac.refused = nil
	a.mu.Unlock()
	return ac.enricher, nil
}

func (a *Accounts) newAccount(acct string) *account {
	prov := stscreds.NewAssumeRoleProvider(a.STS, a.RoleARN(acct), func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = SessionName
	})
	creds := aws.NewCredentialsCache(prov, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = ExpiryWindow })
	cfg := a.Base.Copy()
	cfg.Credentials = creds
	clients := a.Clients
	if clients == nil {
		clients = func(cfg aws.Config) (enrich.KMSAPI, enrich.IAMAPI, enrich.STSAPI) {
			return kms.NewFromConfig(cfg), iam.NewFromConfig(cfg), sts.NewFromConfig(cfg)
		}
	}
	k, i, s := clients(cfg)
	opts := a.Enrich
	opts.OtherAccount = a.Enricher
	return &account{creds: creds, enricher: enrich.New(k, i, s, opts)}
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
