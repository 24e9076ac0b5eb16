package policy

// Three-valued differential test against iam-simulate (issue 14 item 8). Cases condition on
// every key of the request context kmsfix builds for S3's call to KMS (internal/request):
// single- and multivalued, string, ARN, IP, date, number and boolean keys, under every operator
// family with IfExists, ForAnyValue/ForAllValues and Null. Each case is judged twice:
//
//  1. with every key known, AuthorizeKMS must give iam-simulate's decision;
//  2. with one or two of the keys its policies read made unknown (Request.Unknown), the Go
//     answer is a pair of bounds (Decision, Upper). iam-simulate is asked for the decision
//     under every completion of the unknowns: the key absent (unless only its value is
//     unknown), and present with each value of a pool that holds the request's own value,
//     values the policies' patterns match and values nothing matches. Then:
//     - sound: when Go says determined (Decision == Upper), every completion gives that
//       decision, and when it says undetermined, every completion lies between the bounds;
//     - exact: Go says undetermined exactly when the completions differ. The bounds take an
//       unknown against the request for every condition at once, so a key read by two
//       conditions whose answers cancel out (an allow on k=a and another on k!=a) can be
//       called undetermined although every value gives the same decision; such cases are
//       counted and must stay rare, and they are never unsound.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// uKey is one condition key of the catalogue with the request's value and what policies test.
type uKey struct {
	name  string
	multi bool
	kind  string     // "string", "arn", "ip", "date", "num", "bool"
	value []string   // the request's value (one element unless multi)
	pool  []string   // values policies test: literals and patterns, matching or not
	alts  [][]string // other values the key may take when unknown (besides value)
}

func uKeys() []uKey {
	return []uKey{
		{name: "kms:ViaService", kind: "string", value: []string{gS3Here}, pool: []string{gS3Here, gS3Elsewhere, "s3.*.amazonaws.com"}, alts: [][]string{{gS3Elsewhere}, {gSQSHere}}},
		{name: "kms:CallerAccount", kind: "string", value: []string{gAcctCaller}, pool: []string{gAcctCaller, gAcctOther, "1111*"}, alts: [][]string{{gAcctOther}}},
		{name: "kms:EncryptionContext:aws:s3:arn", kind: "string", value: []string{gObjectARN}, pool: []string{gBucketARN + "/*", gBucketARN, gOtherBucketObj}, alts: [][]string{{gBucketARN}, {gOtherBucketObj}}},
		{name: "kms:EncryptionContextKeys", multi: true, kind: "string", value: []string{"aws:s3:arn"}, pool: []string{"aws:s3:arn", "aws:s3express:arn", "aws:*"}, alts: [][]string{{}, {"aws:s3:arn", "department"}, {"department"}}},
		{name: "kms:ResourceAliases", multi: true, kind: "string", value: []string{"alias/orders"}, pool: []string{"alias/orders", "alias/payroll", "alias/ord*"}, alts: [][]string{{}, {"alias/payroll"}, {"alias/orders", "alias/payroll"}}},
		{name: "kms:RequestAlias", kind: "string", value: []string{"alias/orders"}, pool: []string{"alias/orders", "alias/payroll"}, alts: [][]string{{"alias/payroll"}}},
		{name: "kms:KeySpec", kind: "string", value: []string{"SYMMETRIC_DEFAULT"}, pool: []string{"SYMMETRIC_DEFAULT", "RSA_4096"}, alts: [][]string{{"RSA_4096"}}},
		{name: "kms:KeyUsage", kind: "string", value: []string{"ENCRYPT_DECRYPT"}, pool: []string{"ENCRYPT_DECRYPT", "SIGN_VERIFY"}, alts: [][]string{{"SIGN_VERIFY"}}},
		{name: "kms:KeyOrigin", kind: "string", value: []string{"AWS_KMS"}, pool: []string{"AWS_KMS", "EXTERNAL", "AWS_*"}, alts: [][]string{{"EXTERNAL"}}},
		{name: "kms:MultiRegion", kind: "bool", value: []string{"false"}, pool: []string{"true", "false"}, alts: [][]string{{"true"}}},
		{name: "aws:PrincipalArn", kind: "arn", value: []string{gCallers[0].arn}, pool: []string{gCallers[0].arn, "arn:aws:iam::" + gAcctCaller + ":role/*", gCallers[2].arn}, alts: [][]string{{gCallers[2].arn}}},
		{name: "aws:PrincipalAccount", kind: "string", value: []string{gAcctCaller}, pool: []string{gAcctCaller, gAcctOther}, alts: [][]string{{gAcctOther}}},
		{name: "aws:PrincipalOrgID", kind: "string", value: []string{"o-a1b2c3d4e5"}, pool: []string{"o-a1b2c3d4e5", "o-zzzzzzzzzz"}, alts: [][]string{{"o-zzzzzzzzzz"}}},
		{name: "aws:PrincipalOrgPaths", multi: true, kind: "string", value: []string{"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"}, pool: []string{"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/", "o-a1b2c3d4e5/r-ab12/*", "o-zzzzzzzzzz/*"}, alts: [][]string{{"o-a1b2c3d4e5/r-ab12/ou-ab12-22222222/"}, {"o-zzzzzzzzzz/r-zz99/"}}},
		{name: "aws:PrincipalTag/team", kind: "string", value: []string{"payments"}, pool: []string{"payments", "ledger", "pay*"}, alts: [][]string{{"ledger"}, {"Payments"}}},
		{name: "aws:ResourceTag/env", kind: "string", value: []string{"prod"}, pool: []string{"prod", "dev"}, alts: [][]string{{"dev"}}},
		{name: "aws:PrincipalType", kind: "string", value: []string{"AssumedRole"}, pool: []string{"AssumedRole", "User"}, alts: [][]string{{"User"}}},
		{name: "aws:userid", kind: "string", value: []string{"AROAEXAMPLEID:i-0abc123"}, pool: []string{"AROAEXAMPLEID:*", "AIDAOTHER"}, alts: [][]string{{"AIDAOTHER"}}},
		{name: "aws:username", kind: "string", value: []string{"alice"}, pool: []string{"alice", "bob"}, alts: [][]string{{"bob"}}},
		{name: "aws:RequestedRegion", kind: "string", value: []string{gRegion}, pool: []string{gRegion, "eu-west-1"}, alts: [][]string{{"eu-west-1"}}},
		{name: "aws:ResourceAccount", kind: "string", value: []string{gAcctCaller}, pool: []string{gAcctCaller, gAcctKey}, alts: [][]string{{gAcctKey}}},
		{name: "aws:ViaAWSService", kind: "bool", value: []string{"true"}, pool: []string{"true", "false"}, alts: [][]string{{"false"}}},
		{name: "aws:PrincipalIsAWSService", kind: "bool", value: []string{"false"}, pool: []string{"true", "false"}, alts: [][]string{{"true"}}},
		{name: "aws:SecureTransport", kind: "bool", value: []string{"true"}, pool: []string{"true", "false"}, alts: [][]string{{"false"}}},
		{name: "aws:SourceIp", kind: "ip", value: []string{"192.0.2.10"}, pool: []string{"192.0.2.0/24", "203.0.113.0/24"}, alts: [][]string{{"203.0.113.7"}, {"198.51.100.1"}}},
		{name: "aws:SourceVpce", kind: "string", value: []string{"vpce-1a2b3c4d"}, pool: []string{"vpce-1a2b3c4d", "vpce-*"}, alts: [][]string{{"vpce-9z8y7x6w"}}},
		{name: "aws:SourceVpc", kind: "string", value: []string{"vpc-111bbb22"}, pool: []string{"vpc-111bbb22", "vpc-333ccc44"}, alts: [][]string{{"vpc-333ccc44"}}},
		{name: "aws:CalledVia", multi: true, kind: "string", value: []string{"s3.amazonaws.com"}, pool: []string{"s3.amazonaws.com", "athena.amazonaws.com"}, alts: [][]string{{}, {"athena.amazonaws.com", "s3.amazonaws.com"}, {"athena.amazonaws.com"}}},
		{name: "aws:CalledViaFirst", kind: "string", value: []string{"s3.amazonaws.com"}, pool: []string{"s3.amazonaws.com", "athena.amazonaws.com"}, alts: [][]string{{"athena.amazonaws.com"}}},
		{name: "aws:CalledViaLast", kind: "string", value: []string{"s3.amazonaws.com"}, pool: []string{"s3.amazonaws.com", "athena.amazonaws.com"}, alts: [][]string{{"athena.amazonaws.com"}}},
		{name: "aws:SourceIdentity", kind: "string", value: []string{"alice"}, pool: []string{"alice", "bob"}, alts: [][]string{{"bob"}}},
		{name: "aws:CurrentTime", kind: "date", value: []string{"2026-01-02T03:04:05Z"}, pool: []string{"2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"}, alts: [][]string{{"2027-06-01T00:00:00Z"}, {"2025-06-01T00:00:00Z"}}},
		{name: "aws:EpochTime", kind: "num", value: []string{"1767323045"}, pool: []string{"1767225600", "1798761600"}, alts: [][]string{{"1800000000"}, {"1700000000"}}},
	}
}

var uCatalogue = uKeys()

// uCase is one generated case: the documents, the full context, and which keys are unknown.
type uCase struct {
	base        *diffCase           // policies, caller, action (Context unused)
	values      map[string][]string // every key's value in the full request
	unknown     []string            // keys made unknown
	valueOnly   bool                // the unknown keys are present, their values unknown
	conditioned map[string]int      // how many condition entries read each key
}

type uGen struct {
	r *rand.Rand
	c *uCase
}

func (g *uGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *uGen) condition() Condition {
	cond := Condition{}
	for range 1 + g.r.IntN(2) {
		k := uCatalogue[g.r.IntN(len(uCatalogue))]
		op, vals := g.operator(k)
		if cond[op] == nil {
			cond[op] = map[string]Values{}
		}
		cond[op][k.name] = vals
		g.c.conditioned[k.name]++
	}
	return cond
}

func (g *uGen) operator(k uKey) (string, Values) {
	vals := V(k.pool[g.r.IntN(len(k.pool))])
	if g.r.IntN(3) == 0 {
		vals = List(k.pool[g.r.IntN(len(k.pool))], k.pool[g.r.IntN(len(k.pool))])
	}
	if g.r.IntN(9) == 0 {
		return "Null", V(g.pick("true", "false"))
	}
	var op string
	switch k.kind {
	case "bool":
		op, vals = "Bool", V(k.pool[g.r.IntN(len(k.pool))])
	case "ip":
		op = g.pick("IpAddress", "NotIpAddress")
	case "date":
		op = g.pick("DateGreaterThan", "DateLessThan", "DateNotEquals")
		vals = V(k.pool[g.r.IntN(len(k.pool))])
	case "num":
		op = g.pick("NumericGreaterThan", "NumericLessThanEquals", "NumericNotEquals")
		vals = V(k.pool[g.r.IntN(len(k.pool))])
	case "arn":
		op = g.pick("ArnLike", "ArnNotLike", "ArnEquals", "StringLike")
	default:
		op = g.pick("StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringEqualsIgnoreCase")
	}
	if g.r.IntN(5) == 0 {
		op += "IfExists"
	}
	if k.multi && g.r.IntN(6) > 0 || !k.multi && g.r.IntN(10) == 0 {
		op = g.pick("ForAnyValue:", "ForAllValues:") + op
	}
	return op, vals
}

func (g *uGen) statement(effect string, principal *Principal) Statement {
	s := Statement{Effect: effect, Principal: principal, Action: V(g.pick("kms:Decrypt", "kms:*")), Resource: V("*")}
	if g.r.IntN(5) > 0 {
		s.Condition = g.condition()
	}
	return s
}

func generateUnknownCases(seed uint64, n int) []*uCase {
	g := &uGen{r: rand.New(rand.NewPCG(seed, seed^0x5bd1e995))}
	out := make([]*uCase, 0, n)
	for i := range n {
		c := &uCase{values: map[string][]string{}, conditioned: map[string]int{}}
		g.c = c
		caller := gCallers[0]
		keyAcct := gAcctCaller
		if g.r.IntN(4) == 0 {
			keyAcct = gAcctKey
		}
		keyARN := "arn:aws:kms:" + gRegion + ":" + keyAcct + ":key/" + gKeyID
		d := &diffCase{ID: fmt.Sprintf("u%04d", i), Caller: caller, KeyAccount: keyAcct, Action: "kms:Decrypt", Resource: keyARN}
		kp := &Document{Version: "2012-10-17"}
		if keyAcct == gAcctCaller || g.r.IntN(2) == 0 {
			kp.Statement = append(kp.Statement, Statement{Effect: "Allow", Principal: AWSPrincipal("arn:aws:iam::" + keyAcct + ":root"), Action: V("kms:*"), Resource: V("*")})
		}
		for range 1 + g.r.IntN(2) {
			effect := g.pick("Allow", "Allow", "Deny")
			p := AWSPrincipal(g.pick(caller.arn, "*", "arn:aws:iam::"+gAcctCaller+":root"))
			kp.Statement = append(kp.Statement, g.statement(effect, p))
		}
		d.KeyPolicy = kp
		for j := range g.r.IntN(3) {
			id := &Document{Version: "2012-10-17"}
			for range 1 + g.r.IntN(2) {
				id.Statement = append(id.Statement, g.statement(g.pick("Allow", "Allow", "Deny"), nil))
			}
			d.Identity = append(d.Identity, NamedDocument{Name: fmt.Sprintf("inline-%d", j), Doc: id})
		}
		c.base = d
		for _, k := range uCatalogue {
			c.values[k.name] = k.value
		}
		// Make one or two of the keys the policies read unknown.
		read := slices.Sorted(maps.Keys(c.conditioned))
		if len(read) > 0 {
			for range 1 + g.r.IntN(2) {
				k := read[g.r.IntN(len(read))]
				if !slices.Contains(c.unknown, k) {
					c.unknown = append(c.unknown, k)
				}
			}
			c.valueOnly = g.r.IntN(5) == 0
		}
		out = append(out, c)
	}
	return out
}

func uKeyNamed(name string) uKey {
	for _, k := range uCatalogue {
		if k.name == name {
			return k
		}
	}
	panic(name)
}

// completion is one assignment of the unknown keys: nil means absent.
type completion map[string][]string

// completions lists every assignment of the case's unknown keys to absent (unless only their
// values are unknown), the request's value, and each alternative.
func (c *uCase) completions() []completion {
	out := []completion{{}}
	for _, name := range c.unknown {
		k := uKeyNamed(name)
		choices := append([][]string{k.value}, k.alts...)
		if !c.valueOnly {
			choices = append(choices, nil)
		}
		var next []completion
		for _, partial := range out {
			for _, ch := range choices {
				m := maps.Clone(partial)
				m[name] = ch
				next = append(next, m)
			}
		}
		out = next
	}
	return out
}

// goRequest is the Go evaluator's request: the known keys, the unknown ones left to Unknown.
func (c *uCase) goRequest(withUnknowns bool) Request {
	r := c.base.request()
	r.Context, r.Multi = map[string]string{}, map[string][]string{}
	for name, v := range c.values {
		if withUnknowns && slices.Contains(c.unknown, name) {
			continue
		}
		if uKeyNamed(name).multi {
			r.Multi[name] = v
		} else {
			r.Context[name] = v[0]
		}
	}
	if withUnknowns {
		state := KeyUnknown
		if c.valueOnly {
			state = KeyUnknownValue
		}
		r.Unknown = func(key string) KeyState {
			for _, u := range c.unknown {
				if strings.EqualFold(u, key) {
					return state
				}
			}
			return KeyAbsent
		}
	}
	return r
}

// oracleLine is the oracle's input with multivalued keys as JSON arrays.
func (c *uCase) oracleLine(id string, values map[string][]string) ([]byte, error) {
	ctx := map[string]any{}
	for name, v := range values {
		if v == nil {
			continue // absent
		}
		if uKeyNamed(name).multi {
			ctx[name] = v
		} else {
			ctx[name] = v[0]
		}
	}
	principal := c.base.Caller.arn
	if c.base.Caller.session != "" {
		principal = c.base.Caller.session
	}
	ids := []oraclePolicy{}
	for _, nd := range c.base.Identity {
		ids = append(ids, oraclePolicy{Name: nd.Name, Policy: nd.Doc})
	}
	return json.Marshal(map[string]any{
		"id": id, "principal": principal, "action": c.base.Action, "resource": c.base.Resource,
		"resourceAccount": c.base.KeyAccount, "context": ctx, "identity": ids, "keyPolicy": c.base.KeyPolicy,
	})
}

func decisionRank(d string) int {
	return map[string]int{"ExplicitlyDenied": 0, "ImplicitlyDenied": 1, "Allowed": 2}[d]
}

func TestDifferentialUnknownKeys(t *testing.T) {
	cases := generateUnknownCases(*diffSeedFlag, 400)
	// One oracle round trip: each case's fully known request, then every completion.
	var lines [][]byte
	type span struct{ known, from, to int }
	spans := make([]span, len(cases))
	for i, c := range cases {
		b, err := c.oracleLine(c.base.ID, c.values)
		if err != nil {
			t.Fatal(err)
		}
		spans[i].known = len(lines)
		lines = append(lines, b)
		spans[i].from = len(lines)
		for j, comp := range c.completions() {
			values := maps.Clone(c.values)
			maps.Copy(values, comp)
			b, err := c.oracleLine(fmt.Sprintf("%s.%d", c.base.ID, j), values)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, b)
		}
		spans[i].to = len(lines)
	}
	o := startOracle(t)
	answers, err := o.ask(lines)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range answers {
		if a.Error != "" {
			t.Fatalf("%s: oracle error %s", a.ID, a.Error)
		}
	}

	var undetermined, imprecise, keyKinds = 0, 0, map[string]bool{}
	failures := 0
	fail := func(format string, args ...any) {
		failures++
		if failures <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i, c := range cases {
		in, err := c.base.inputs()
		if err != nil {
			t.Fatal(err)
		}
		known := AuthorizeKMS(c.goRequest(false), in)
		if got, want := known.Decision.String(), answers[spans[i].known].Decision; got != want || known.Undetermined() {
			fail("%s all keys known: Go %s (upper %s), iam-simulate %s\n%s", c.base.ID, got, known.Upper, want, lines[spans[i].known])
			continue
		}
		if len(c.unknown) == 0 {
			continue
		}
		for _, k := range c.unknown {
			keyKinds[k] = true
		}
		res := AuthorizeKMS(c.goRequest(true), in)
		seen := map[string]bool{}
		for _, a := range answers[spans[i].from:spans[i].to] {
			seen[a.Decision] = true
		}
		lo, hi := decisionRank(res.Decision.String()), decisionRank(res.Upper.String())
		for d := range seen {
			if r := decisionRank(d); r < lo || r > hi {
				fail("%s unknown %v (value only %v): Go bounds %s..%s, but a completion gives %s\n%s",
					c.base.ID, c.unknown, c.valueOnly, res.Decision, res.Upper, d, lines[spans[i].known])
			}
		}
		if res.Undetermined() {
			undetermined++
			if len(seen) == 1 {
				imprecise++
			}
			for _, k := range res.Unknown {
				if !slices.ContainsFunc(c.unknown, func(u string) bool { return strings.EqualFold(u, k) }) {
					fail("%s: Go names %s, which is not unknown", c.base.ID, k)
				}
			}
		} else if len(seen) > 1 {
			fail("%s unknown %v: Go says %s for every value, iam-simulate's completions give %v",
				c.base.ID, c.unknown, res.Decision, slices.Sorted(maps.Keys(seen)))
		}
	}
	t.Logf("%d cases, %d oracle requests, %d keys made unknown; undetermined %d, of which %d where every completion agrees (conservative)",
		len(cases), len(lines), len(keyKinds), undetermined, imprecise)
	if failures > 10 {
		t.Errorf("... %d failures in all", failures)
	}
	if len(keyKinds) < len(uCatalogue)*3/4 {
		t.Errorf("only %d of %d catalogue keys were made unknown: the generator no longer covers the catalogue", len(keyKinds), len(uCatalogue))
	}
	if undetermined < len(cases)/10 {
		t.Errorf("only %d undetermined answers: the generator no longer exercises unknowns", undetermined)
	}
	if imprecise*5 > undetermined {
		t.Errorf("%d of %d undetermined answers are conservative: too imprecise", imprecise, undetermined)
	}
}
