package crossaccount

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kmsfix/kmsfix/internal/policy"
)

// allowedElements are the statement elements a request may carry; NotAction, NotResource,
// NotPrincipal (and anything unknown) could only broaden it.
var allowedElements = []string{"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}

// CheckStatement compares a requested statement with the least-privilege statement rebuilt
// from the finding (want). It returns "" when they are the same statement, else the first
// reason it is not, in words for the log: what broadens it, or what differs.
func CheckStatement(got, want *policy.Statement) string {
	if got == nil {
		return "the request carries no statement"
	}
	raw, err := json.Marshal(got)
	if err != nil {
		return "the statement cannot be encoded: " + err.Error()
	}
	var elems map[string]json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return "the statement is not a JSON object"
	}
	for name := range elems {
		if !slices.Contains(allowedElements, name) {
			return fmt.Sprintf("it has a %s element; only %s are accepted", name, strings.Join(allowedElements, ", "))
		}
	}
	if got.Effect != "Allow" {
		return fmt.Sprintf("Effect is %q, not Allow", got.Effect)
	}
	if why := checkPrincipal(got.Principal, want.Principal.Types["AWS"].Items[0]); why != "" {
		return why
	}
	if why := checkActions(got.Action.Items, want.Action.Items); why != "" {
		return why
	}
	if !sameSet(got.Resource.Items, want.Resource.Items) {
		return fmt.Sprintf("Resource %s is not exactly the key %s", list(got.Resource.Items), list(want.Resource.Items))
	}
	if why := checkConditions(got.Condition, want.Condition); why != "" {
		return why
	}
	if got.Sid != want.Sid {
		return fmt.Sprintf("Sid %q is not %q, the statement id kmsfix derives from the finding", got.Sid, want.Sid)
	}
	if g, w := canonical(got), canonical(want); g != w {
		return "it differs from the statement rebuilt from the finding: got " + g + ", want " + w
	}
	return ""
}

func checkPrincipal(p *policy.Principal, want string) string {
	switch {
	case p == nil:
		return "it has no Principal"
	case p.Wildcard:
		return `Principal is "*" (everyone)`
	case len(p.Types) != 1 || len(p.Types["AWS"].Items) != 1:
		return fmt.Sprintf("Principal must be exactly one AWS principal (%s), got %s", want, principalText(p))
	}
	got := p.Types["AWS"].Items[0]
	switch {
	case strings.ContainsAny(got, "*?"):
		return fmt.Sprintf("Principal %s has a wildcard", got)
	case accountRE.MatchString(got) || strings.HasSuffix(got, ":root"):
		return fmt.Sprintf("Principal %s is a whole account, not the finding's principal %s", got, want)
	case got != want:
		return fmt.Sprintf("Principal %s is not the finding's principal %s", got, want)
	}
	return ""
}

func checkActions(got, want []string) string {
	if len(got) == 0 {
		return "it has no Action"
	}
	for _, a := range got {
		switch {
		case strings.ContainsAny(a, "*?"):
			return fmt.Sprintf("Action %s has a wildcard", a)
		case !slices.Contains(DataKeyActions, a):
			return fmt.Sprintf("Action %s is not one of the data-key actions S3 needs (%s)", a, strings.Join(DataKeyActions, ", "))
		}
	}
	if !sameSet(got, want) {
		return fmt.Sprintf("Action %s is not the finding's actions %s", list(got), list(want))
	}
	return ""
}

// checkConditions names the missing or widened S3 condition first, then any other difference.
func checkConditions(got, want policy.Condition) string {
	for op, keys := range want {
		for key, values := range keys {
			have, ok := got[op][key]
			switch {
			case !ok:
				return fmt.Sprintf("Condition lacks %s %s = %s", op, key, list(values.Items))
			case !sameSet(have.Items, values.Items):
				return fmt.Sprintf("Condition %s %s is %s; want exactly %s", op, key, list(have.Items), list(values.Items))
			}
		}
	}
	for op, keys := range got {
		for key := range keys {
			if _, ok := want[op][key]; !ok {
				return fmt.Sprintf("Condition has %s %s, which the least-privilege statement does not", op, key)
			}
		}
	}
	return ""
}

// canonical writes a statement with every list sorted, so two spellings of one statement
// (a bare string or a one-item list) compare equal.
func canonical(st *policy.Statement) string {
	sorted := func(v []string) []string {
		s := slices.Clone(v)
		slices.Sort(s)
		return s
	}
	c := map[string]any{"Sid": st.Sid, "Effect": st.Effect, "Action": sorted(st.Action.Items), "Resource": sorted(st.Resource.Items)}
	if st.Principal != nil {
		p := map[string][]string{}
		for t, v := range st.Principal.Types {
			p[t] = sorted(v.Items)
		}
		c["Principal"] = p
		if st.Principal.Wildcard {
			c["Principal"] = "*"
		}
	}
	cond := map[string]map[string][]string{}
	for op, keys := range st.Condition {
		cond[op] = map[string][]string{}
		for k, v := range keys {
			cond[op][k] = sorted(v.Items)
		}
	}
	c["Condition"] = cond
	b, _ := json.Marshal(c)
	return string(b)
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y)) && len(a) == len(b)
}

func list(v []string) string { return "[" + strings.Join(v, ", ") + "]" }

func principalText(p *policy.Principal) string {
	b, _ := json.Marshal(p)
	return string(b)
}
