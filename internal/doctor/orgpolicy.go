package doctor

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kmsfix/kmsfix/internal/policy"
)

// The organization checks read policies statement by statement and ask narrow questions of
// each: which actions it allows, which principals, under which condition values. They do not
// evaluate the policy; a statement that cannot be shown to be as narrow as the deployed one
// is reported, with the deployed one as the fix.

// parsePolicy reads a policy document as AWS returns it (IAM URL-encodes its documents).
func parsePolicy(doc string) (*policy.Document, error) {
	if strings.HasPrefix(doc, "%7B") || strings.HasPrefix(doc, "%7b") {
		if dec, err := url.QueryUnescape(doc); err == nil {
			doc = dec
		}
	}
	return policy.Parse([]byte(doc))
}

// stmtName names a statement in a detail: its Sid, else its position.
func stmtName(s policy.Statement, i int) string {
	if s.Sid != "" {
		return fmt.Sprintf("statement %q", s.Sid)
	}
	return fmt.Sprintf("statement %d", i+1)
}

// conditionValues returns, per operator of ops that names key (both case-insensitive, as IAM
// reads them), the values the statement's condition requires. An ...IfExists operator never
// counts, as it admits a request without the key
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists).
// The operators are in the order of ops, so the answer does not depend on map order.
func conditionValues(s policy.Statement, key string, ops ...string) [][]string {
	var out [][]string
	for _, want := range ops {
		for op, kv := range s.Condition {
			if !strings.EqualFold(op, want) {
				continue
			}
			for k, v := range kv {
				if strings.EqualFold(k, key) && len(v.Items) > 0 {
					out = append(out, v.Items)
				}
			}
		}
	}
	return out
}

// requireCondition says what is wrong with the statement's condition on key: "" when one of
// the operators ops names it with only values ok accepts (a condition with several values
// admits a request matching any of them; IAM ANDs the operators, so one narrow enough is
// enough).
func requireCondition(s policy.Statement, key string, ops []string, ok func(string) bool, want string) string {
	sets := conditionValues(s, key, ops...)
	if len(sets) == 0 {
		return fmt.Sprintf("no %s condition %s = %s", strings.Join(ops, "/"), key, want)
	}
	var bad []string
	for _, vals := range sets {
		bad = bad[:0]
		for _, v := range vals {
			if !ok(v) {
				bad = append(bad, v)
			}
		}
		if len(bad) == 0 {
			return ""
		}
	}
	return fmt.Sprintf("%s also admits %s (want only %s)", key, strings.Join(bad, ", "), want)
}

// principals lists a statement's principals as "Type:value" ("AWS:*" for a bare "*").
func principals(s policy.Statement) []string {
	if s.Principal == nil {
		return nil
	}
	if s.Principal.Wildcard {
		return []string{"AWS:*"}
	}
	var out []string
	for typ, v := range s.Principal.Types {
		for _, p := range v.Items {
			out = append(out, typ+":"+p)
		}
	}
	slices.Sort(out)
	return out
}

// actionsOf returns a statement's actions, lower-cased for comparison.
func actionsOf(s policy.Statement) []string {
	out := make([]string, len(s.Action.Items))
	for i, a := range s.Action.Items {
		out[i] = strings.ToLower(a)
	}
	return out
}

// onlyActions says what is wrong with a statement's actions: "" when it has an Action (not
// NotAction) and every action is one of allowed (lower case, no wildcard matching: a
// wildcard action is reported, never assumed narrow).
func onlyActions(s policy.Statement, allowed ...string) string {
	if !s.NotAction.IsZero() {
		return "uses NotAction (allows every action but those listed)"
	}
	var extra []string
	for _, a := range actionsOf(s) {
		if !slices.Contains(allowed, a) {
			extra = append(extra, a)
		}
	}
	if len(extra) > 0 {
		return "also allows " + strings.Join(extra, ", ")
	}
	return ""
}

// problems joins the non-empty reasons of one statement into one line.
func problems(name string, reasons ...string) string {
	var out []string
	for _, r := range reasons {
		if r != "" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return name + ": " + strings.Join(out, "; ")
}
