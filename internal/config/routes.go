package config

import (
	"slices"
	"strings"
)

// Route is where the findings of one account go (KMSFIX_ROUTES): a Slack webhook secret, an
// SNS topic, or both. An account without a route uses the function's own topic and secret.
type Route struct {
	SlackSecretARN string
	TopicARN       string
}

// parseRoutes reads ACCOUNT=TARGET|TARGET,... where TARGET is slack:SECRET_ARN or
// sns:TOPIC_ARN. Only account ids route today (docs/org.md): routing by OU or account tag
// needs the Organizations API and is not implemented, so "ou:" and "tag:" entries are refused
// rather than silently ignored.
func (p *parser) routes(name string) map[string]Route {
	items := p.list(name)
	if len(items) == 0 {
		return nil
	}
	out := make(map[string]Route, len(items))
	for _, it := range items {
		acct, targets, ok := strings.Cut(it, "=")
		acct = strings.TrimSpace(acct)
		switch {
		case !ok || strings.TrimSpace(targets) == "":
			p.fail(name, "has %q; want ACCOUNT=slack:SECRET_ARN|sns:TOPIC_ARN", it)
			continue
		case strings.HasPrefix(acct, "ou:") || strings.HasPrefix(acct, "tag:"):
			p.fail(name, "has %q: routing by OU or tag is not supported yet; name 12-digit accounts", acct)
			continue
		case !IsAccountID(acct):
			p.fail(name, "has account %q; want a 12-digit account id", acct)
			continue
		}
		if _, dup := out[acct]; dup {
			p.fail(name, "names account %s twice", acct)
			continue
		}
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
				p.fail(name, "has a %s target for account %s that is not a complete %s ARN, or a second one", kind, acct, kind)
				good = false
			default:
				p.fail(name, "has a target of kind %q for account %s; want slack:SECRET_ARN or sns:TOPIC_ARN", kind, acct)
				good = false
			}
		}
		if good {
			out[acct] = r
		}
	}
	return out
}

// isTopicARN: arn:PARTITION:sns:REGION:ACCOUNT:NAME.
func isTopicARN(s string) bool {
	f := strings.Split(s, ":")
	return len(f) == 6 && f[0] == "arn" && f[1] != "" && f[2] == "sns" && f[3] != "" && IsAccountID(f[4]) && f[5] != ""
}

// routesEnv renders Routes back in the form routes reads, sorted by account.
func (c Config) routesEnv() string {
	accts := make([]string, 0, len(c.Routes))
	for a := range c.Routes {
		accts = append(accts, a)
	}
	slices.Sort(accts)
	parts := make([]string, 0, len(accts))
	for _, a := range accts {
		r := c.Routes[a]
		var ts []string
		if r.SlackSecretARN != "" {
			ts = append(ts, "slack:"+r.SlackSecretARN)
		}
		if r.TopicARN != "" {
			ts = append(ts, "sns:"+r.TopicARN)
		}
		parts = append(parts, a+"="+strings.Join(ts, "|"))
	}
	return strings.Join(parts, ",")
}
