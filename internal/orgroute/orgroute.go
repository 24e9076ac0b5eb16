// Package orgroute decides, in the organization's hub, which route (KMSFIX_ROUTES) a
// finding's account takes: its account entry, else the first tag entry it carries, else the
// entry of the nearest OU above it, else the default route (docs/org.md, Routing). The OU
// chain and the account's tags come from AWS Organizations: ListParents walked up to the
// root and ListTagsForResource, each only when some entry needs it, cached per account.
//
// Organizations' API rate is low and shared by everything in the organization, so a storm
// must not call it per event: one lookup per account per TTL, concurrent callers of the same
// account wait for the one lookup in flight. A lookup that fails (throttled, access denied,
// an answer that does not parse) sends the account's findings to the default route — never
// dropped, never to a route it might not belong to — with one log line and one metric per
// failed lookup, and is remembered for FailTTL so a storm does not retry it per event. An
// account Organizations does not know (a caller from outside the organization) is an answer,
// not a failure: no OU, no tag, the default route, cached for TTL.
//
// What Organizations returns is untrusted text: parent ids must be OU or root ids, and tag
// values are only ever compared with the configured ones, never written anywhere.
package orgroute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/organizations/types"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/emf"
	"github.com/kmsfix/kmsfix/internal/notify"
)

// API is the part of the Organizations client the resolver calls (*organizations.Client).
type API interface {
	ListParents(ctx context.Context, in *organizations.ListParentsInput, optFns ...func(*organizations.Options)) (*organizations.ListParentsOutput, error)
	ListTagsForResource(ctx context.Context, in *organizations.ListTagsForResourceInput, optFns ...func(*organizations.Options)) (*organizations.ListTagsForResourceOutput, error)
}

// Defaults of Resolver.
const (
	// TTL: an account moved to another OU or retagged is routed the new way within this long.
	TTL = 15 * time.Minute
	// FailTTL: after a failed lookup, the account's findings go to the default route for this
	// long before Organizations is asked again.
	FailTTL = time.Minute
	// MaxOUDepth is the deepest OU nesting Organizations allows under a root (five levels,
	// https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html);
	// a longer chain is an answer the resolver does not trust.
	MaxOUDepth = 5
)

// Metric names (namespace kmsfix, dimension Service=remediator).
const (
	MetricNamespace    = emf.Namespace
	MetricLookupFailed = "RouteLookupFailed"
)

// Resolver names the route of an account; safe for concurrent use, it lives as long as the
// container.
type Resolver struct {
	// Org is the hub's Organizations client (the hub must be the management account or a
	// delegated administrator for Organizations: docs/org.md, Routing).
	Org API
	// Config holds the routes: Routes (accounts), TagRoutes (in order), OURoutes.
	Config config.Config
	// TTL and FailTTL default to the constants of the same name; Now to time.Now.
	TTL, FailTTL time.Duration
	Now          func() time.Time
	Log          *slog.Logger // default: discard
	Metrics      io.Writer    // EMF lines; nil: none

	mu       sync.Mutex
	accounts map[string]*lookup
	metricMu sync.Mutex
}

// lookup is what Organizations said of one account. ready is closed when the call is done;
// the other fields are written before that and only read after it.
type lookup struct {
	ready chan struct{}
	ous   []string          // nearest first, the root left out
	tags  map[string]string // key to value
	err   error
	until time.Time
}

// Route returns the name of acct's route: the account id, a tag entry's Name, an OU id, or
// "" for the default route. Precedence is decided here and only here.
func (r *Resolver) Route(ctx context.Context, acct string) string {
	c := r.Config
	if _, ok := c.Routes[acct]; ok {
		return acct
	}
	if !c.OrgRoutes() || !config.IsAccountID(acct) {
		return ""
	}
	l, err := r.lookup(ctx, acct)
	if err != nil {
		return "" // logged and counted once per failed lookup
	}
	// Tags before OUs: a tag names a team across the tree. Two matching tag entries: the
	// first listed in KMSFIX_ROUTES wins (config keeps their order).
	for _, t := range c.TagRoutes {
		if v, ok := l.tags[t.Key]; ok && v == t.Value {
			return t.Name()
		}
	}
	for _, ou := range l.ous {
		if _, ok := c.OURoutes[ou]; ok {
			return ou
		}
	}
	return ""
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// lookup returns acct's cached lookup, or makes it: one caller calls Organizations, the
// others wait for its answer.
func (r *Resolver) lookup(ctx context.Context, acct string) (*lookup, error) {
	r.mu.Lock()
	if r.accounts == nil {
		r.accounts = map[string]*lookup{}
	}
	if l := r.accounts[acct]; l != nil {
		select {
		case <-l.ready:
			if r.now().Before(l.until) {
				r.mu.Unlock()
				return l, l.err
			}
		default: // in flight
			r.mu.Unlock()
			select {
			case <-l.ready:
				return l, l.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	l := &lookup{ready: make(chan struct{})}
	r.accounts[acct] = l
	r.mu.Unlock()

	l.ous, l.tags, l.err = r.fetch(ctx, acct)
	if errors.Is(l.err, errNotInOrg) {
		// An account outside the organization (a caller from another organization, say)
		// has no OU and no tag here: an answer, not a failure, and the default route.
		l.ous, l.tags, l.err = nil, nil, nil
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = TTL
	}
	if l.err != nil {
		ttl = r.FailTTL
		if ttl <= 0 {
			ttl = FailTTL
		}
		if ctx.Err() != nil {
			ttl = 0 // this invocation's deadline says nothing of Organizations: the next event asks again
		}
		r.failed(acct, l.err, ttl)
	}
	l.until = r.now().Add(ttl)
	close(l.ready)
	return l, l.err
}

// errNotInOrg: Organizations does not know the account.
var errNotInOrg = errors.New("not an account of the organization")

// notFound reports whether err says the id asked about is not in the organization.
func notFound(err error) bool {
	var child *types.ChildNotFoundException
	var target *types.TargetNotFoundException
	var account *types.AccountNotFoundException
	return errors.As(err, &child) || errors.As(err, &target) || errors.As(err, &account)
}

// fetch asks Organizations what the routes need: the tags only when a tag entry exists, the
// OU chain only when an OU entry does.
func (r *Resolver) fetch(ctx context.Context, acct string) (ous []string, tags map[string]string, err error) {
	if len(r.Config.TagRoutes) > 0 {
		tags = map[string]string{}
		pages := organizations.NewListTagsForResourcePaginator(r.Org, &organizations.ListTagsForResourceInput{ResourceId: aws.String(acct)})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if notFound(err) {
				return nil, nil, errNotInOrg
			}
			if err != nil {
				return nil, nil, fmt.Errorf("organizations:ListTagsForResource %s: %w", acct, err)
			}
			for _, t := range out.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	if len(r.Config.OURoutes) > 0 {
		child := acct
		for {
			p, err := r.parent(ctx, child)
			if child == acct && notFound(err) {
				return nil, nil, errNotInOrg
			}
			if err != nil {
				return nil, nil, err // an OU of the chain not found (moved meanwhile) is a failure
			}
			if p.Type == types.ParentTypeRoot {
				break
			}
			if len(ous) == MaxOUDepth {
				return nil, nil, fmt.Errorf("organizations:ListParents: account %s is more than %d OUs below its root", acct, MaxOUDepth)
			}
			ous = append(ous, aws.ToString(p.Id))
			child = aws.ToString(p.Id)
		}
	}
	return ous, tags, nil
}

// parent is child's one parent, checked: an OU id typed ORGANIZATIONAL_UNIT or a root id
// typed ROOT. (A List* call may return an empty page with a NextToken, so every page is read.)
func (r *Resolver) parent(ctx context.Context, child string) (types.Parent, error) {
	var parents []types.Parent
	pages := organizations.NewListParentsPaginator(r.Org, &organizations.ListParentsInput{ChildId: aws.String(child)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return types.Parent{}, fmt.Errorf("organizations:ListParents %s: %w", child, err)
		}
		parents = append(parents, out.Parents...)
	}
	if len(parents) != 1 {
		return types.Parent{}, fmt.Errorf("organizations:ListParents %s: %d parents, want 1", child, len(parents))
	}
	p := parents[0]
	id := aws.ToString(p.Id)
	if (p.Type == types.ParentTypeRoot && config.IsRootID(id)) || (p.Type == types.ParentTypeOrganizationalUnit && config.IsOUID(id)) {
		return p, nil
	}
	return types.Parent{}, errors.New("organizations:ListParents " + child + ": a parent that is neither an OU id nor a root id")
}

// failed logs and counts one failed lookup. The error is the SDK's (operation, status, AWS
// error code and message), logged as a JSON string attribute.
func (r *Resolver) failed(acct string, err error, retryAfter time.Duration) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Warn("routing: the account's OU and tags could not be read; its findings go to the default route",
		"account", acct, "error", err.Error(), "retry_after", retryAfter.String())
	if r.Metrics == nil {
		return
	}
	r.metricMu.Lock()
	defer r.metricMu.Unlock()
	_ = emf.Count(r.Metrics, r.now(), MetricLookupFailed, 1, nil)
}

// Routed builds the notifier of cfg's routes: one Sender per entry, made by newSender, keyed
// by the name Route returns for it (account id, tag entry's Name, OU id), and resolver when
// OU or tag entries exist (it must be nil otherwise: nothing to resolve).
func Routed(cfg config.Config, def notify.Sender, newSender func(config.Route) (notify.Sender, error), resolver *Resolver) (*notify.Routed, error) {
	rt := &notify.Routed{Default: def, Routes: map[string]notify.Sender{}}
	add := func(name string, r config.Route) error {
		s, err := newSender(r)
		if err != nil {
			return fmt.Errorf("route of %s: %w", name, err)
		}
		rt.Routes[name] = s
		return nil
	}
	var errs []error
	for acct, r := range cfg.Routes {
		errs = append(errs, add(acct, r))
	}
	for _, t := range cfg.TagRoutes {
		errs = append(errs, add(t.Name(), t.Route))
	}
	for ou, r := range cfg.OURoutes {
		errs = append(errs, add(ou, r))
	}
	if cfg.OrgRoutes() {
		if resolver == nil {
			return nil, errors.New("OU or tag routes without a resolver")
		}
		resolver.Config = cfg
		rt.Resolver = resolver
	}
	return rt, errors.Join(errs...)
}
