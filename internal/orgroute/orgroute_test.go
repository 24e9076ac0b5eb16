package orgroute

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

const (
	root       = "r-ab12"
	ouProd     = "ou-ab12-prod0001"
	ouPayments = "ou-ab12-payments1" // under prod
	ouSandbox  = "ou-ab12-sandbox1"  // no route

	acctOwn      = "111111111111" // in payments, tagged team=payments, has its own entry
	acctTagged   = "222222222222" // in payments, tagged team=payments
	acctInOU     = "333333333333" // in payments, no tags
	acctInProd   = "444444444444" // directly in prod
	acctNone     = "555555555555" // under the root, tagged team=other
	acctHostile  = "666666666666" // in the sandbox, hostile tag values
	acctTwoTags  = "777777777777" // tagged team=payments and env=prod
	acctNotInOrg = "888888888888"
)

var (
	own      = config.Route{TopicARN: "arn:aws:sns:us-east-1:999988887777:own"}
	byTag    = config.Route{TopicARN: "arn:aws:sns:us-east-1:999988887777:team-payments"}
	byEnv    = config.Route{TopicARN: "arn:aws:sns:us-east-1:999988887777:env-prod"}
	byOU     = config.Route{TopicARN: "arn:aws:sns:us-east-1:999988887777:ou-payments"}
	byProdOU = config.Route{TopicARN: "arn:aws:sns:us-east-1:999988887777:ou-prod"}
)

// org builds the small organization every test starts from.
func org(t *testing.T) *awsfake.Organizations {
	f := awsfake.NewOrganizations(t, root)
	f.Place(ouProd, root)
	f.Place(ouPayments, ouProd)
	f.Place(ouSandbox, root)
	for acct, parent := range map[string]string{acctOwn: ouPayments, acctTagged: ouPayments, acctInOU: ouPayments,
		acctInProd: ouProd, acctNone: root, acctHostile: ouSandbox, acctTwoTags: ouSandbox} {
		f.Place(acct, parent)
	}
	f.Tag(acctOwn, "team", "payments")
	f.Tag(acctTagged, "team", "payments")
	f.Tag(acctNone, "team", "other")
	f.Tag(acctHostile, "team", "<!channel> *pay*\n\x1b[31m`x`")
	f.Tag(acctHostile, "<@U123>", "payments")
	f.Tag(acctTwoTags, "env", "prod")
	f.Tag(acctTwoTags, "team", "payments")
	return f
}

func routes() config.Config {
	return config.Config{
		Routes:    map[string]config.Route{acctOwn: own},
		TagRoutes: []config.TagRoute{{Key: "team", Value: "payments", Route: byTag}, {Key: "env", Value: "prod", Route: byEnv}},
		OURoutes:  map[string]config.Route{ouPayments: byOU, ouProd: byProdOU},
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type rig struct {
	org     *awsfake.Organizations
	r       *Resolver
	clock   *clock
	log     *bytes.Buffer
	metrics *bytes.Buffer
}

func newRig(t *testing.T, cfg config.Config) *rig {
	g := &rig{org: org(t), clock: &clock{t: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)}, log: &bytes.Buffer{}, metrics: &bytes.Buffer{}}
	g.r = &Resolver{Org: g.org.Client(), Config: cfg, Now: g.clock.Now,
		Log: slog.New(slog.NewJSONHandler(g.log, nil)), Metrics: g.metrics}
	return g
}

// Precedence: account entry > tag entry (first listed) > nearest OU > default.
func TestRoutePrecedence(t *testing.T) {
	g := newRig(t, routes())
	ctx := context.Background()
	for acct, want := range map[string]string{
		acctOwn:      acctOwn,             // its own entry, though tagged and in two routed OUs
		acctTagged:   "tag:team=payments", // the tag, though in two routed OUs
		acctInOU:     ouPayments,          // the nearest OU, not prod above it
		acctInProd:   ouProd,
		acctNone:     "",                  // a tag with another value, no routed OU: default
		acctHostile:  "",                  // hostile values match nothing
		acctTwoTags:  "tag:team=payments", // team=payments is listed before env=prod
		acctNotInOrg: "",                  // ChildNotFoundException: default
		"not-an-id":  "",
	} {
		if got := g.r.Route(ctx, acct); got != want {
			t.Errorf("%s routes to %q, want %q", acct, got, want)
		}
	}
	if g.org.CallsFor("ListParents", acctOwn) != 0 || g.org.CallsFor("ListTagsForResource", acctOwn) != 0 {
		t.Error("an account with its own entry was looked up in Organizations")
	}
	if g.org.CallsFor("ListParents", "not-an-id") != 0 {
		t.Error("a malformed account id was sent to Organizations")
	}
	// An account outside the organization is an answer (default route), not a failure: no log
	// line, no metric, and cached like any other.
	for range 3 {
		g.r.Route(ctx, acctNotInOrg)
	}
	if n := g.org.CallsFor("ListTagsForResource", acctNotInOrg) + g.org.CallsFor("ListParents", acctNotInOrg); n != 1 {
		t.Errorf("an account outside the organization was looked up %d times for 4 events, want 1", n)
	}
	if g.log.Len() != 0 || g.metrics.Len() != 0 {
		t.Errorf("logged or counted without a failure:\n%s%s", g.log, g.metrics)
	}
	ous := routes()
	ous.TagRoutes = nil // ListParents alone says it too
	og := newRig(t, ous)
	if got := og.r.Route(ctx, acctNotInOrg); got != "" || og.log.Len() != 0 || og.metrics.Len() != 0 {
		t.Errorf("outside the organization, OU routes only: %q, log %q", got, og.log)
	}

	// Two matching tags: the order of the entries decides, nothing else.
	swapped := routes()
	swapped.TagRoutes[0], swapped.TagRoutes[1] = swapped.TagRoutes[1], swapped.TagRoutes[0]
	if got := newRig(t, swapped).r.Route(ctx, acctTwoTags); got != "tag:env=prod" {
		t.Errorf("with env=prod listed first: %q", got)
	}
}

// Only what the entries need is asked: no tag entry, no ListTagsForResource; no OU entry, no
// ListParents.
func TestRouteAsksOnlyWhatEntriesNeed(t *testing.T) {
	ctx := context.Background()
	ous := routes()
	ous.TagRoutes = nil
	g := newRig(t, ous)
	if got := g.r.Route(ctx, acctTagged); got != ouPayments {
		t.Errorf("OU entries only: %q", got)
	}
	if g.org.Calls("ListTagsForResource") != 0 {
		t.Error("tags read without a tag entry")
	}
	tags := routes()
	tags.OURoutes = nil
	g = newRig(t, tags)
	if got := g.r.Route(ctx, acctInOU); got != "" {
		t.Errorf("tag entries only, untagged account: %q", got)
	}
	if g.org.Calls("ListParents") != 0 {
		t.Error("parents listed without an OU entry")
	}
}

// A storm of one account's events: one ListParents per level and one ListTagsForResource per
// TTL, however many callers at once; after the TTL, one more lookup sees a moved account.
func TestRouteCachePerAccount(t *testing.T) {
	g := newRig(t, routes())
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = g.r.Route(ctx, acctInOU)
		}()
	}
	wg.Wait()
	for i, r := range got {
		if r != ouPayments {
			t.Fatalf("call %d routed to %q", i, r)
		}
	}
	want := map[string]int{"ListParents " + acctInOU: 1, "ListParents " + ouPayments: 1, "ListParents " + ouProd: 1,
		"ListTagsForResource " + acctInOU: 1}
	check := func(when string) {
		t.Helper()
		for k, w := range want {
			op, id, _ := strings.Cut(k, " ")
			if c := g.org.CallsFor(op, id); c != w {
				t.Errorf("%s: %s called %d times, want %d", when, k, c, w)
			}
		}
		if total := g.org.Calls("ListParents") + g.org.Calls("ListTagsForResource"); total != 4*want["ListTagsForResource "+acctInOU] {
			t.Errorf("%s: %d Organizations calls in all", when, total)
		}
	}
	check("after a storm of 200")

	// Moved to prod: still the cached route until the TTL passes, then the new one.
	g.org.Place(acctInOU, ouProd)
	g.clock.Add(TTL - time.Second)
	if r := g.r.Route(ctx, acctInOU); r != ouPayments {
		t.Errorf("within the TTL: %q", r)
	}
	g.clock.Add(2 * time.Second)
	if r := g.r.Route(ctx, acctInOU); r != ouProd {
		t.Errorf("after the TTL, moved to prod: %q", r)
	}
	if g.org.CallsFor("ListParents", acctInOU) != 2 || g.org.CallsFor("ListTagsForResource", acctInOU) != 2 {
		t.Errorf("after the TTL: %d ListParents, %d ListTagsForResource of the account; want 2 and 2",
			g.org.CallsFor("ListParents", acctInOU), g.org.CallsFor("ListTagsForResource", acctInOU))
	}
	if g.log.Len() != 0 || g.metrics.Len() != 0 {
		t.Errorf("logged or counted without a failure:\n%s%s", g.log, g.metrics)
	}
}

// Every page is read, including an empty first page that carries a NextToken.
func TestRoutePages(t *testing.T) {
	g := newRig(t, routes())
	g.org.PageSize, g.org.EmptyFirstPage = 1, true
	g.org.Tag(acctTwoTags, "a", "1")
	g.org.Tag(acctTwoTags, "b", "2")
	cfg := routes()
	cfg.TagRoutes = []config.TagRoute{{Key: "b", Value: "2", Route: byTag}}
	g.r.Config = cfg
	if got := g.r.Route(context.Background(), acctTwoTags); got != "tag:b=2" {
		t.Errorf("a tag on the last page: %q", got)
	}
	if got := g.r.Route(context.Background(), acctInOU); got != ouPayments {
		t.Errorf("parents after an empty page: %q", got)
	}
}

// A failed lookup: the finding goes to the default route, one log line and one metric;
// the failure is remembered for FailTTL, so a storm does not retry it per event.
func TestRouteLookupFailure(t *testing.T) {
	for _, op := range []string{"ListParents", "ListTagsForResource"} {
		t.Run(op, func(t *testing.T) {
			g := newRig(t, routes())
			g.org.Fail(op, testenv.AWSFault{Code: "TooManyRequestsException"})
			ctx := context.Background()
			for range 50 {
				if got := g.r.Route(ctx, acctTagged); got != "" {
					t.Fatalf("a failed lookup routed to %q, want the default route", got)
				}
			}
			if c := g.org.Calls(op); c != 1 {
				t.Errorf("%s called %d times during FailTTL, want 1", op, c)
			}
			lines := strings.Split(strings.TrimSpace(g.log.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], acctTagged) || !strings.Contains(lines[0], "TooManyRequestsException") ||
				!strings.Contains(lines[0], "default route") {
				t.Errorf("log = %q; want one line naming the account, the error and the default route", g.log)
			}
			var m map[string]any
			if err := json.Unmarshal(g.metrics.Bytes(), &m); err != nil || m[MetricLookupFailed] != float64(1) ||
				strings.Count(g.metrics.String(), "\n") != 1 {
				t.Errorf("metrics = %q (%v); want one EMF line counting %s", g.metrics, err, MetricLookupFailed)
			}
			// After FailTTL, with Organizations back, the account gets its route.
			g.org.Clear()
			g.clock.Add(FailTTL + time.Second)
			if got := g.r.Route(ctx, acctTagged); got != "tag:team=payments" {
				t.Errorf("after recovery: %q", got)
			}
		})
	}
}

// A deadline of one invocation is not remembered against the account.
func TestRouteDeadlineNotRemembered(t *testing.T) {
	g := newRig(t, routes())
	g.org.Fail("ListTagsForResource", testenv.AWSFault{Delay: time.Minute, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got := g.r.Route(ctx, acctTagged); got != "" {
		t.Fatalf("timed out lookup routed to %q", got)
	}
	if got := g.r.Route(context.Background(), acctTagged); got != "tag:team=payments" {
		t.Errorf("the next event after a deadline: %q", got)
	}
}

// Answers that do not parse as an organization are failures, never routes.
func TestRouteUntrustedParents(t *testing.T) {
	g := newRig(t, routes())
	g.org.Place(acctInOU, "ou-ab12-<!here>") // not an OU id
	if got := g.r.Route(context.Background(), acctInOU); got != "" {
		t.Errorf("a malformed parent id routed to %q", got)
	}
	if strings.Contains(g.log.String(), "<!here>") {
		t.Errorf("the malformed id reached the log: %s", g.log)
	}
	// A chain deeper than Organizations allows.
	g = newRig(t, routes())
	parent := root
	for i := range MaxOUDepth + 1 {
		ou := "ou-ab12-deep000" + string(rune('0'+i))
		g.org.Place(ou, parent)
		parent = ou
	}
	g.org.Place(acctInOU, parent)
	if got := g.r.Route(context.Background(), acctInOU); got != "" || !strings.Contains(g.log.String(), "more than 5 OUs") {
		t.Errorf("a too-deep chain routed to %q; log %s", got, g.log)
	}
}

// Hostile tag values (Slack mrkdwn, control characters) route nowhere and are written
// nowhere: neither in the log nor in the metrics.
func TestRouteHostileTagsNeverOutput(t *testing.T) {
	g := newRig(t, routes())
	g.org.Fail("ListParents", testenv.AWSFault{Code: "AccessDeniedException"}) // forces a log line for this account
	if got := g.r.Route(context.Background(), acctHostile); got != "" {
		t.Errorf("hostile tags routed to %q", got)
	}
	out := g.log.String() + g.metrics.String()
	for _, bad := range []string{"<!channel>", "<@U123>", "\x1b", "*pay*"} {
		if strings.Contains(out, bad) {
			t.Errorf("%q reached the output: %s", bad, out)
		}
	}
	if !strings.Contains(out, acctHostile) {
		t.Errorf("the failure was not logged: %q", out)
	}
}
