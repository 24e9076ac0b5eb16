package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Route is where the findings of one account go (KMSFIX_ROUTES): a Slack webhook secret, an
// SNS topic, or both. An account without a route uses the function's own topic and secret.
type Route struct {
	SlackSecretARN string
	TopicARN       string
}

// TagRoute routes the accounts that carry the tag Key=Value (exact, case-sensitive, as
// AWS Organizations stores account tags).
type TagRoute struct {
	Key, Value string
	Route      Route
}

// Name is the entry's selector as KMSFIX_ROUTES writes it (tag:KEY=VALUE, both escaped):
// the name a route resolver returns for it.
func (t TagRoute) Name() string { return TagPrefix + escapeTag(t.Key) + "=" + escapeTag(t.Value) }

// TagPrefix starts a tag entry of KMSFIX_ROUTES.
const TagPrefix = "tag:"

// Limits of an Organizations tag and the characters it may hold
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_Tag.html:
// ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, key 1 to 128, value 0 to 256 characters).
const (
	MaxTagKey   = 128
	MaxTagValue = 256
	tagPunct    = "_.:/=+-@"
)

// OrgRoutes reports whether c routes by OU or account tag, which needs the Organizations API
// and therefore the hub (docs/org.md, Routing).
func (c Config) OrgRoutes() bool { return len(c.OURoutes) > 0 || len(c.TagRoutes) > 0 }

// AllRoutes lists every route's targets in a stable order (accounts sorted, then tags in
// their configured order, then OUs sorted): what the function's role must reach.
func (c Config) AllRoutes() []Route {
	var out []Route
	for _, a := range slices.Sorted(maps.Keys(c.Routes)) {
		out = append(out, c.Routes[a])
	}
	for _, t := range c.TagRoutes {
		out = append(out, t.Route)
	}
	for _, ou := range slices.Sorted(maps.Keys(c.OURoutes)) {
		out = append(out, c.OURoutes[ou])
	}
	return out
}

// routes reads a comma-separated list of SELECTOR=TARGET|TARGET, where TARGET is
// slack:SECRET_ARN or sns:TOPIC_ARN and SELECTOR is one of (docs/org.md, Routing):
//
//	123456789012        an account id
//	ou-ab12-cdef3456    an OU id (the real id, not its name): accounts anywhere below it
//	tag:KEY=VALUE       accounts carrying that tag; KEY and VALUE are percent-encoded
//
// An Organizations tag may contain "=" (and ":", "/", spaces), so in a tag entry "=" must be
// written %3D ("%" starts an escape; any other character may be escaped): the first "=" ends the key, the
// second the value, and what follows must be targets, so an unencoded "=" can only make the
// entry invalid, never route elsewhere. A key or value may not start or end with a literal
// space (write %20), and decoded it must be a valid Organizations tag. OU and tag entries
// need the hub; Load and LoadDeployment refuse them in a single-account deployment.
func (p *parser) routes(name string) (accounts map[string]Route, ous map[string]Route, tags []TagRoute) {
	for _, it := range p.list(name) {
		sel, targets, ok := strings.Cut(it, "=")
		isTag := strings.HasPrefix(it, TagPrefix)
		var tag TagRoute
		if isTag {
			var good bool
			if tag, targets, good = p.tagSelector(name, it); !good {
				continue
			}
			sel = tag.Name()
		} else {
			sel = strings.TrimSpace(sel)
			switch {
			case !ok || strings.TrimSpace(targets) == "":
				p.fail(name, "has %q; want ACCOUNT=slack:SECRET_ARN|sns:TOPIC_ARN (or ou-ID=..., tag:KEY=VALUE=...)", it)
				continue
			case strings.HasPrefix(sel, "ou:"):
				p.fail(name, "has %q; write the OU id alone (ou-xxxx-xxxxxxxx=...)", sel)
				continue
			case strings.HasPrefix(sel, "r-"):
				p.fail(name, "has the root %q; every account is under it: use the default topic and secret", sel)
				continue
			case strings.HasPrefix(sel, "ou-") && !isOUOrRoot(sel):
				p.fail(name, "has %q, which is not an OU id (ou-xxxx-xxxxxxxx)", sel)
				continue
			case !strings.HasPrefix(sel, "ou-") && !IsAccountID(sel):
				p.fail(name, "has account %q; want a 12-digit account id, an OU id (ou-...) or tag:KEY=VALUE", sel)
				continue
			}
		}
		r, good := p.targets(name, sel, targets)
		if !good {
			continue
		}
		switch {
		case isTag:
			if slices.ContainsFunc(tags, func(o TagRoute) bool { return o.Key == tag.Key && o.Value == tag.Value }) {
				p.fail(name, "names %s twice", sel)
				continue
			}
			tag.Route = r
			tags = append(tags, tag)
		case strings.HasPrefix(sel, "ou-"):
			if _, dup := ous[sel]; dup {
				p.fail(name, "names OU %s twice", sel)
				continue
			}
			if ous == nil {
				ous = map[string]Route{}
			}
			ous[sel] = r
		default:
			if _, dup := accounts[sel]; dup {
				p.fail(name, "names account %s twice", sel)
				continue
			}
			if accounts == nil {
				accounts = map[string]Route{}
			}
			accounts[sel] = r
		}
	}
	return accounts, ous, tags
}

// tagSelector reads tag:KEY=VALUE=TARGETS (KEY and VALUE percent-encoded).
func (p *parser) tagSelector(name, it string) (TagRoute, string, bool) {
	rest := strings.TrimPrefix(it, TagPrefix)
	rawKey, rest, ok1 := strings.Cut(rest, "=")
	rawValue, targets, ok2 := strings.Cut(rest, "=")
	if !ok1 || !ok2 || strings.TrimSpace(targets) == "" {
		p.fail(name, "has a tag entry %q; want tag:KEY=VALUE=slack:SECRET_ARN|sns:TOPIC_ARN (write = inside KEY or VALUE as %%3D)", tagHead(it))
		return TagRoute{}, "", false
	}
	key, errK := url.PathUnescape(rawKey)
	value, errV := url.PathUnescape(rawValue)
	switch {
	case errK != nil || errV != nil:
		p.fail(name, "has a tag entry %q with a %% not followed by two hex digits (%% starts an escape such as %%3D)", tagHead(it))
	case strings.TrimSpace(rawKey) != rawKey || strings.TrimSpace(rawValue) != rawValue:
		p.fail(name, "has a tag entry %q whose key or value starts or ends with a space; write %%20 if the tag really does", tagHead(it))
	case !isTagText(key, 1, MaxTagKey) || !isTagText(value, 0, MaxTagValue):
		p.fail(name, "has a tag entry %q that is not an Organizations tag (key 1 to %d, value 0 to %d letters, digits, spaces and _.:/=+-@)",
			tagHead(it), MaxTagKey, MaxTagValue)
	default:
		return TagRoute{Key: key, Value: value}, targets, true
	}
	return TagRoute{}, "", false
}

// tagHead is a tag entry up to its targets, for messages (a target is not echoed).
func tagHead(it string) string {
	rest := strings.TrimPrefix(it, TagPrefix)
	if k, r, ok := strings.Cut(rest, "="); ok {
		v, _, _ := strings.Cut(r, "=")
		return TagPrefix + k + "=" + v
	}
	return TagPrefix + rest
}

// isTagText: min to max characters, each a letter, a number, a space separator or one of
// _.:/=+-@ (the Organizations tag pattern).
func isTagText(s string, min, max int) bool {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < min || n > max {
		return false
	}
	for _, r := range s {
		if !unicode.In(r, unicode.L, unicode.Z, unicode.N) && !strings.ContainsRune(tagPunct, r) {
			return false
		}
	}
	return true
}

// escapeTag percent-encodes what a tag entry cannot hold literally: "%", "=" and every
// space (so none is at an end); tagSelector decodes it back.
func escapeTag(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '%' || r == '=' || unicode.IsSpace(r) || unicode.In(r, unicode.Z) {
			for _, c := range []byte(string(r)) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// targets reads TARGET|TARGET for the entry sel.
func (p *parser) targets(name, sel, targets string) (Route, bool) {
	var r Route
	good := true
	for _, t := range strings.Split(targets, "|") {
		kind, arn, _ := strings.Cut(strings.TrimSpace(t), ":")
		switch {
		case kind == "slack" && isSecretARN(arn) && r.SlackSecretARN == "":
			r.SlackSecretARN = arn
		case kind == "sns" && isTopicARN(arn) && r.TopicARN == "":
			r.TopicARN = arn
		case kind == "slack" || kind == "sns":
			// A secret ARN is not echoed: a webhook URL pasted by mistake is the secret.
			p.fail(name, "has a %s target for %s that is not a complete %s ARN, or a second one", kind, routeWhat(sel), kind)
			good = false
		default:
			p.fail(name, "has a target of kind %q for %s; want slack:SECRET_ARN or sns:TOPIC_ARN", kind, routeWhat(sel))
			good = false
		}
	}
	return r, good
}

func routeWhat(sel string) string {
	switch {
	case strings.HasPrefix(sel, TagPrefix):
		return sel
	case strings.HasPrefix(sel, "ou-"):
		return "OU " + sel
	}
	return "account " + sel
}

// isTopicARN: arn:PARTITION:sns:REGION:ACCOUNT:NAME.
func isTopicARN(s string) bool {
	f := strings.Split(s, ":")
	return len(f) == 6 && f[0] == "arn" && f[1] != "" && f[2] == "sns" && f[3] != "" && IsAccountID(f[4]) && f[5] != ""
}

// routesEnv renders the routes back in the form routes reads: accounts sorted, then tags in
// their configured order (it decides between two matching tags), then OUs sorted.
func (c Config) routesEnv() string {
	var parts []string
	entry := func(sel string, r Route) {
		var ts []string
		if r.SlackSecretARN != "" {
			ts = append(ts, "slack:"+r.SlackSecretARN)
		}
		if r.TopicARN != "" {
			ts = append(ts, "sns:"+r.TopicARN)
		}
		parts = append(parts, sel+"="+strings.Join(ts, "|"))
	}
	for _, a := range slices.Sorted(maps.Keys(c.Routes)) {
		entry(a, c.Routes[a])
	}
	for _, t := range c.TagRoutes {
		entry(t.Name(), t.Route)
	}
	for _, ou := range slices.Sorted(maps.Keys(c.OURoutes)) {
		entry(ou, c.OURoutes[ou])
	}
	return strings.Join(parts, ",")
}

// singleAccountRoutes refuses OU and tag routes outside the hub: only the hub's role may call
// the Organizations API (docs/org.md, Routing), so a single-account stack could never resolve
// them and would send those findings to the default route without saying so.
func (p *parser) singleAccountRoutes(c Config) {
	if c.OrgRoutes() {
		p.fail("routes", "has OU or tag entries, which only the organization's hub resolves (deployment=org); "+
			"a single-account stack routes by 12-digit account ids only")
	}
}

// IsOUID: ou-<4-32 of a-z0-9>-<8-32 of a-z0-9>
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_OrganizationalUnit.html).
func IsOUID(s string) bool { return strings.HasPrefix(s, "ou-") && isOUOrRoot(s) }

// IsRootID: r-<4-32 of a-z0-9> (https://docs.aws.amazon.com/organizations/latest/APIReference/API_Root.html).
func IsRootID(s string) bool { return strings.HasPrefix(s, "r-") && isOUOrRoot(s) }
