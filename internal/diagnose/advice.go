package diagnose

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/request"
)

// Advice for an explicit Deny is written from the statement itself: what its condition says,
// and the narrowest change that would admit this request, or "ask the owner" when no change
// is safe to suggest. Two changes are suggested only where they fit:
//
//   - A Deny keyed only on the network the request comes from (aws:SourceIp, aws:SourceVpce,
//     aws:SourceVpc, aws:VpcSourceIp) with no exception for calls AWS makes for the principal:
//     S3's call to KMS is a forward access session, on which aws:ViaAWSService is true
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_forward_access_sessions.html),
//     and AWS's own network-perimeter examples exempt such calls with
//     "Bool": {"aws:ViaAWSService": "false"} on the Deny
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-viaawsservice).
//     Added to that statement only, it keeps refusing the principal's own calls from elsewhere.
//   - A key-policy Deny that refuses calls not made through a list of services (kms:ViaService
//     with a negated operator) whose list lacks S3 in this Region: adding
//     s3.<region>.amazonaws.com to that list admits S3's calls and nothing else.
//
// Anything else (a Deny with no condition, on tags, on the principal, on the encryption
// context, or one that already exempts AWS services) guards something kmsfix cannot judge.

// networkKeys are the condition keys that describe where a request comes from.
var networkKeys = []string{"aws:sourceip", "aws:sourcevpce", "aws:sourcevpc", "aws:vpcsourceip"}

// denyAdvice explains a Deny statement and says what would admit this request. owner is who
// must change it; what names the statement for people.
func (in *inputs) denyAdvice(st *policy.Statement, what, owner string) (explain string, advice []string) {
	if st == nil {
		return "", []string{fmt.Sprintf("Ask %s which Deny matches this request; kmsfix could not read it and never edits a Deny.", owner)}
	}
	keys := conditionKeys(st.Condition)
	if len(keys) == 0 {
		return fmt.Sprintf(" %s has no condition: it denies %s to everyone it names, every time.", capitalize(what), strings.Join(st.Action.Items, ", ")),
			[]string{fmt.Sprintf("Ask %s whether %s should use this key at all: no change narrower than excluding this principal from %s admits the request, and that is theirs to decide. kmsfix never edits a Deny.", owner, in.who, what)}
	}
	cond := compactJSON(st.Condition)
	explain = fmt.Sprintf(" Its condition is %s%s.", cond, in.requestValues(st.Condition))

	exempt := slices.ContainsFunc(keys, func(k string) bool {
		return k == "aws:viaawsservice" || strings.HasPrefix(k, "aws:calledvia") || k == "kms:viaservice"
	})
	onlyNetwork := !slices.ContainsFunc(keys, func(k string) bool { return !slices.Contains(networkKeys, k) })
	switch {
	case onlyNetwork && !exempt:
		return explain + " It is keyed on where the request comes from, and S3's call to KMS is made by S3 for the principal (aws:ViaAWSService is true on it), so it refuses S3's calls too.",
			[]string{fmt.Sprintf("Narrowest change, for %s to make: add \"Bool\": {\"aws:ViaAWSService\": \"false\"} to the Condition of %s only, so it keeps refusing the principal's own calls from elsewhere but not calls an AWS service makes for it. kmsfix never edits a Deny.", owner, what)}
	case in.viaServiceListLacksS3(st):
		via := request.ViaService(in.d)
		return explain + fmt.Sprintf(" It refuses calls not made through the services it lists, and %s is not among them.", via),
			[]string{fmt.Sprintf("Narrowest change, for %s to make: add %q to the kms:ViaService list of %s. kmsfix never edits a Deny.", owner, via, what)}
	}
	return explain, []string{fmt.Sprintf("Ask %s: %s guards something kmsfix cannot judge, and no narrower change is safe to suggest. kmsfix never edits a Deny.", owner, what)}
}

// viaServiceListLacksS3 says the statement denies calls whose kms:ViaService is not in its
// list (a negated string operator) and the list lacks S3 in this Region.
func (in *inputs) viaServiceListLacksS3(st *policy.Statement) bool {
	via := request.ViaService(in.d)
	if via == "" {
		return false
	}
	for op, kv := range st.Condition {
		if !strings.Contains(strings.ToLower(op), "stringnot") {
			continue
		}
		for k, v := range kv {
			if strings.EqualFold(k, "kms:ViaService") && !slices.Contains(v.Items, via) {
				return true
			}
		}
	}
	return false
}

// requestValues says what this request carried for the condition's keys (as the statement
// spells them): a value, or that the record of S3's call does not show it.
func (in *inputs) requestValues(c policy.Condition) string {
	if len(in.d.Actions) == 0 {
		return ""
	}
	req := in.request(in.d.Actions[0])
	var keys []string
	for _, kv := range c {
		for k := range kv {
			if !slices.ContainsFunc(keys, func(o string) bool { return strings.EqualFold(o, k) }) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		v, ok := lookup(req.Context, k)
		switch {
		case ok:
			parts = append(parts, fmt.Sprintf("%s = %s", k, v))
		case slices.Contains(networkKeys, strings.ToLower(k)):
			parts = append(parts, k+" is not in the record of S3's call (unknown)")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; this request: " + strings.Join(parts, ", ")
}

func lookup(ctx map[string]string, key string) (string, bool) {
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// conditionKeys lists a condition's keys in lower case, sorted, without repeats.
func conditionKeys(c policy.Condition) []string {
	var out []string
	for _, kv := range c {
		for k := range kv {
			if k = strings.ToLower(k); !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "(unencodable)"
	}
	return string(b)
}

// statementOf finds the statement a reference names in the policies the world holds.
func (in *inputs) statementOf(ref *policy.StatementRef, layer string) *policy.Statement {
	if ref == nil {
		return nil
	}
	var doc *policy.Document
	switch layer {
	case policy.LayerKeyPolicy:
		doc = request.KeyPolicy(in.d, in.key)
	case policy.LayerIdentity:
		if in.princ != nil {
			for _, np := range in.princ.Policies {
				if np.Name == ref.Policy {
					doc = np.Document
				}
			}
		}
	case policy.LayerBoundary:
		if in.princ != nil {
			doc = in.princ.PermissionsBoundary
		}
	}
	if doc == nil || ref.Index < 0 || ref.Index >= len(doc.Statement) {
		return nil
	}
	return &doc.Statement[ref.Index]
}

// nearMissGrants names the world's grants for this principal that do not allow this request,
// with what differs. Empty when none.
func (in *inputs) nearMissGrants() string {
	if in.key == nil {
		return ""
	}
	id := in.d.Identity
	var out []string
	for _, g := range in.key.Grants {
		if g.Grantee == "" || (g.Grantee != id.PrincipalARN && g.Grantee != id.SessionARN) {
			continue
		}
		name := g.Name
		if name == "" {
			name = g.ID
		}
		var missing []string
		for _, a := range in.d.Actions {
			op := strings.TrimPrefix(a, "kms:")
			if !slices.Contains(g.Operations, op) {
				missing = append(missing, op)
			}
		}
		switch {
		case len(missing) > 0:
			out = append(out, fmt.Sprintf("grant %q names %s but allows %s, not %s", name, in.who, strings.Join(g.Operations, ", "), strings.Join(missing, ", ")))
		case g.Constraints != nil && !contextFits(g.Constraints.EncryptionContextEquals, in.d.EncryptionContext, true):
			out = append(out, fmt.Sprintf("grant %q names %s but requires the encryption context to equal %s, and this request's is %s", name, in.who, compactJSON(g.Constraints.EncryptionContextEquals), compactJSON(in.d.EncryptionContext)))
		case g.Constraints != nil && !contextFits(g.Constraints.EncryptionContextSubset, in.d.EncryptionContext, false):
			out = append(out, fmt.Sprintf("grant %q names %s but requires the encryption context to include %s, and this request's is %s", name, in.who, compactJSON(g.Constraints.EncryptionContextSubset), compactJSON(in.d.EncryptionContext)))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " Near miss: " + strings.Join(out, "; ") + "."
}

// contextFits says a grant's encryption-context constraint admits ctx: every pair present,
// and with equals, nothing more. A nil constraint admits anything.
func contextFits(want, ctx map[string]string, equals bool) bool {
	if want == nil {
		return true
	}
	for k, v := range want {
		if ctx[k] != v {
			return false
		}
	}
	return !equals || len(ctx) == len(want)
}
