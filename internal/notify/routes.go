package notify

import (
	"context"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// Sender delivers one finding (a *Notifier).
type Sender interface {
	Notify(ctx context.Context, r finding.Report) error
}

// Routed sends each finding to its account's route (config.Routes: KMSFIX_ROUTES) or, without
// one, to Default. Every route's Notifier shares the one dedupe table, and the dedupe key is
// the finding's fingerprint (principal, key, actions, diagnosis, bucket: nothing of the
// account or path the event came through), so one finding is one message wherever it was
// seen: in the caller's copy or the key owner's, through the hub or a single-account stack.
//
// In the hub, routes may also name OUs and account tags: Resolver then names each account's
// route (orgroute.Resolver: account entry, else tag, else nearest OU, else "" for Default).
type Routed struct {
	Default Sender
	Routes  map[string]Sender // by route name: an account id, or a name Resolver returns
	// Resolver names an account's route; nil: Routes are looked up by account id.
	Resolver RouteResolver
}

// RouteResolver names the route of an account ("" for the default route).
type RouteResolver interface {
	Route(ctx context.Context, account string) string
}

// RouteAccount is the account a finding is routed by: the principal's, whose team acts on
// it, else the key's (a finding whose principal is unknown).
func RouteAccount(r finding.Report) string {
	if r.PrincipalAccount != "" {
		return r.PrincipalAccount
	}
	return r.KeyAccount
}

// Notify sends r to its route.
func (rt *Routed) Notify(ctx context.Context, r finding.Report) error {
	name := RouteAccount(r)
	if rt.Resolver != nil {
		name = rt.Resolver.Route(ctx, name)
	}
	if s, ok := rt.Routes[name]; ok && name != "" {
		return s.Notify(ctx, r)
	}
	return rt.Default.Notify(ctx, r)
}
