package apply

import (
	"context"
	"fmt"

	"github.com/kmsfix/kmsfix/internal/config"
)

// AccountLevers gives the applier of the organization's hub (docs/org.md) the levers of one
// member account: reads through that account's reader role, writes through its apply role
// (kmsfix-apply), each with credentials of that account only (internal/hub). write is false
// for a dry run: then no apply role is assumed, and the writing calls fail.
type AccountLevers interface {
	Levers(ctx context.Context, account string, write bool) (Levers, error)
}

// Levers are the clients of one account. Account and Role say whose they are: the applier
// refuses levers of another account than the one it asked for, before any call.
type Levers struct {
	Account string
	Role    string // the apply role that writes: recorded in the audit, the grants' retiring principal
	KMS     KeyPolicyAPI
	Grants  GrantAPI
	IAM     IAMAPI
}

// in is the applier acting in account: itself outside the hub; in the hub, a copy whose
// clients are the account's levers, whose own account is that account (the guard's and the
// revert's account checks then hold for it) and whose role is the account's apply role. The
// copy has no Accounts: it can never reach another account.
func (a *Applier) in(ctx context.Context, account string) (*Applier, error) {
	if a.Accounts == nil {
		return a, nil
	}
	if !config.IsAccountID(account) {
		return nil, fmt.Errorf("%q is not an account id", account)
	}
	s := a.settings()
	l, err := a.Accounts.Levers(ctx, account, !s.DryRun)
	if err != nil {
		return nil, err
	}
	if l.Account != account || AccountOf(l.Role) != account {
		return nil, fmt.Errorf("the levers handed out for account %s are of account %s (role %s); not using them", account, l.Account, l.Role)
	}
	v := *a
	v.Accounts = nil
	v.KMS, v.Grants, v.IAM = l.KMS, l.Grants, l.IAM
	v.Settings.Account, v.Settings.RemediatorRoleARN = account, l.Role
	v.scoped = true
	return &v, nil
}
