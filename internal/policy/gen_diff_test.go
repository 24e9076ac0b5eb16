package policy

// Case generator for the differential test against iam-simulate (differential_test.go) and for
// the benchmarks (bench_test.go). Deterministic: the same seed gives the same cases.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Accounts, principals and resources the generated cases draw from.
const (
	gAcctCaller = "111122223333" // the caller's account
	gAcctKey    = "444455556666" // the key's account in cross-account cases
	gAcctOther  = "777788889999" // an unrelated account
	gRegion     = "us-east-1"
	gKeyID      = "1234abcd-12ab-34cd-56ef-1234567890ab"
	gOtherKeyID = "0987dcba-09fe-87dc-65ba-ab0987654321"
	gBucket     = "amzn-data"
)

var (
	gObjectARN       = "arn:aws:s3:::" + gBucket + "/reports/2026/q1.csv"
	gBucketARN       = "arn:aws:s3:::" + gBucket
	gOtherBucketObj  = "arn:aws:s3:::other-bucket/reports/q1.csv"
	gPrefixBucketObj = "arn:aws:s3:::" + gBucket + "-logs/app.log" // shares the bucket name as a prefix
	gS3Here          = "s3." + gRegion + ".amazonaws.com"
	gS3Elsewhere     = "s3.eu-west-1.amazonaws.com"
	gSQSHere         = "sqs." + gRegion + ".amazonaws.com"
)

// gCaller is one kind of caller: a role session (with or without a role path) or an IAM user.
type gCaller struct {
	kind    string // "role", "role-path", "user", "user-path"
	arn     string // IAM ARN (aws:PrincipalArn)
	session string // assumed-role session ARN, or ""
}

var gCallers = []gCaller{
	{"role", "arn:aws:iam::" + gAcctCaller + ":role/app-reader", "arn:aws:sts::" + gAcctCaller + ":assumed-role/app-reader/i-0abc123"},
	{"role-path", "arn:aws:iam::" + gAcctCaller + ":role/service-role/team/app-writer", "arn:aws:sts::" + gAcctCaller + ":assumed-role/app-writer/botocore-session-1"},
	{"user", "arn:aws:iam::" + gAcctCaller + ":user/alice", ""},
	{"user-path", "arn:aws:iam::" + gAcctCaller + ":user/dev/bob", ""},
}

// diffCase is one generated request with the policies KMS would consult (no grants:
// iam-simulate has no KMS grants; grants are covered by table tests in eval_test.go).
type diffCase struct {
	ID         string
	Caller     gCaller
	KeyAccount string
	Action     string
	Resource   string
	Context    map[string]string
	KeyPolicy  *Document
	Identity   []NamedDocument
	Boundary   *Document
}

// request is the Go evaluator's view of the case.
func (c *diffCase) request() Request {
	return Request{
		Action:   c.Action,
		Resource: c.Resource,
		Caller:   Caller{ARN: c.Caller.arn, SessionARN: c.Caller.session, Account: gAcctCaller},
		Context:  c.Context,
	}
}

// inputs round-trips every document through JSON and Parse, so the Go evaluator sees exactly
// the text the oracle sees (and the parser is exercised too).
func (c *diffCase) inputs() (KMSInputs, error) {
	in := KMSInputs{KeyAccount: c.KeyAccount}
	var err error
	if in.KeyPolicy, err = reparse(c.KeyPolicy); err != nil {
		return in, fmt.Errorf("%s key policy: %w", c.ID, err)
	}
	if in.Boundary, err = reparse(c.Boundary); err != nil {
		return in, fmt.Errorf("%s boundary: %w", c.ID, err)
	}
	for _, nd := range c.Identity {
		d, err := reparse(nd.Doc)
		if err != nil {
			return in, fmt.Errorf("%s %s: %w", c.ID, nd.Name, err)
		}
		in.Identity = append(in.Identity, NamedDocument{Name: nd.Name, Doc: d})
	}
	return in, nil
}

func reparse(d *Document) (*Document, error) {
	if d == nil {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// oracleCase is the JSON line oracle.cjs reads.
type oracleCase struct {
	ID              string            `json:"id"`
	Principal       string            `json:"principal"`
	Action          string            `json:"action"`
	Resource        string            `json:"resource"`
	ResourceAccount string            `json:"resourceAccount"`
	Context         map[string]string `json:"context"`
	Identity        []oraclePolicy    `json:"identity"`
	Boundary        *Document         `json:"boundary"`
	KeyPolicy       *Document         `json:"keyPolicy"`
}

type oraclePolicy struct {
	Name   string    `json:"name"`
	Policy *Document `json:"policy"`
}

func (c *diffCase) oracleJSON() ([]byte, error) {
	principal := c.Caller.arn
	if c.Caller.session != "" {
		principal = c.Caller.session // the principal making the request is the session
	}
	oc := oracleCase{
		ID: c.ID, Principal: principal, Action: c.Action, Resource: c.Resource,
		ResourceAccount: c.KeyAccount, Context: c.Context, Boundary: c.Boundary, KeyPolicy: c.KeyPolicy,
		Identity: []oraclePolicy{},
	}
	for _, nd := range c.Identity {
		oc.Identity = append(oc.Identity, oraclePolicy{Name: nd.Name, Policy: nd.Doc})
	}
	return json.Marshal(oc)
}

// gen draws cases from a seeded PCG source.
type gen struct {
	r      *rand.Rand
	c      *diffCase
	keyARN string
}

// generateCases returns n cases for seed; the same arguments always give the same cases.
func generateCases(seed uint64, n int) []*diffCase {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	out := make([]*diffCase, 0, n)
	for i := range n {
		out = append(out, g.next(fmt.Sprintf("c%04d", i)))
	}
	return out
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *gen) chance(p float64) bool    { return g.r.Float64() < p }

// weighted picks an index with the given relative weights.
func (g *gen) weighted(w ...int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := g.r.IntN(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

func (g *gen) next(id string) *diffCase {
	c := &diffCase{ID: id, Caller: gCallers[g.r.IntN(len(gCallers))], KeyAccount: gAcctCaller}
	if g.chance(0.4) {
		c.KeyAccount = gAcctKey
	}
	g.c = c
	g.keyARN = "arn:aws:kms:" + gRegion + ":" + c.KeyAccount + ":key/" + gKeyID
	c.Resource = g.keyARN
	c.Action = []string{"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:PutKeyPolicy", "kms:CreateGrant"}[g.weighted(35, 30, 13, 11, 11)]
	c.Context = g.context()
	c.KeyPolicy = g.keyPolicy()
	for i := range g.weighted(15, 45, 28, 12) {
		c.Identity = append(c.Identity, NamedDocument{Name: fmt.Sprintf("inline-%d", i), Doc: g.identityPolicy()})
	}
	if g.chance(0.3) {
		c.Boundary = g.boundary()
	}
	return c
}

// context is the request context KMS sees: mostly S3 calling on the caller's behalf (FAS),
// sometimes another service or Region, sometimes a direct call.
func (g *gen) context() map[string]string {
	c := g.c
	m := map[string]string{
		"aws:PrincipalArn":     c.Caller.arn,
		"aws:PrincipalAccount": gAcctCaller,
	}
	if g.chance(0.95) {
		m["kms:CallerAccount"] = gAcctCaller
	}
	admin := c.Action == "kms:PutKeyPolicy" || c.Action == "kms:CreateGrant"
	via := ""
	switch g.weighted(72, 8, 7, 13) {
	case 0:
		via = gS3Here
	case 1:
		via = gS3Elsewhere
	case 2:
		via = gSQSHere
	}
	if admin && g.chance(0.8) {
		via = ""
	}
	if via != "" {
		m["kms:ViaService"] = via
		m["aws:ViaAWSService"] = "true"
	} else {
		m["aws:ViaAWSService"] = "false"
	}
	if !admin && g.chance(0.92) {
		ecKey := g.pick("kms:EncryptionContext:aws:s3:arn", "kms:EncryptionContext:aws:s3:arn", "kms:encryptioncontext:aws:s3:arn")
		m[ecKey] = []string{gObjectARN, gBucketARN, gOtherBucketObj, gPrefixBucketObj}[g.weighted(45, 22, 16, 17)]
	}
	return m
}

// principal returns a Principal value that may or may not match the caller.
func (g *gen) principalARN() string {
	c := g.c
	switch g.weighted(14, 10, 10, 10, 8, 8, 6, 6, 4) {
	case 0:
		return c.Caller.arn
	case 1:
		if c.Caller.session != "" {
			return c.Caller.session
		}
		return c.Caller.arn
	case 2:
		return "arn:aws:iam::" + gAcctCaller + ":root"
	case 3:
		return "arn:aws:iam::" + c.KeyAccount + ":root"
	case 4:
		return "arn:aws:iam::" + gAcctCaller + ":role/other-role"
	case 5:
		return gCallers[g.r.IntN(len(gCallers))].arn // perhaps another kind of caller
	case 6:
		return "arn:aws:iam::" + gAcctOther + ":root"
	case 7:
		return gAcctCaller // bare account ID: same as its root ARN
	default:
		return "*"
	}
}

var gCryptoActions = []Values{
	V("kms:*"), V("kms:Decrypt"), List("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"),
	V("kms:GenerateDataKey"), List("kms:Decrypt", "kms:GenerateDataKey"), V("kms:Decr*"), V("kms:?ecrypt"), V("KMS:decrypt"),
	List("kms:Create*", "kms:Put*", "kms:Describe*"), V("kms:CreateGrant"), V("*"),
}

func (g *gen) actions() Values { return gCryptoActions[g.r.IntN(len(gCryptoActions))] }

func (g *gen) keyPolicy() *Document {
	c := g.c
	d := &Document{Version: "2012-10-17"}
	add := func(s Statement) { d.Statement = append(d.Statement, s) }
	// Usually the key owner's "Enable IAM User Permissions" statement, as in the default policy.
	if g.chance(0.7) {
		p := "arn:aws:iam::" + c.KeyAccount + ":root"
		if g.chance(0.1) {
			p = c.KeyAccount
		}
		add(Statement{Sid: "EnableIAMUserPermissions", Effect: "Allow", Principal: AWSPrincipal(p), Action: V("kms:*"), Resource: V("*")})
	}
	// Cross account, the key policy must admit the caller's account (or the caller) for any
	// allow: do so often enough that cross-account allows are well represented.
	if c.KeyAccount != gAcctCaller && g.chance(0.45) {
		s := Statement{Sid: "AllowCallerAccount", Effect: "Allow", Principal: AWSPrincipal("arn:aws:iam::" + gAcctCaller + ":root"), Action: g.actions(), Resource: V("*")}
		if g.chance(0.4) {
			s.Condition = g.condition()
		}
		add(s)
	}
	for range g.weighted(15, 40, 30, 15) {
		switch g.weighted(12, 10, 6, 6, 8, 10, 4, 6, 6, 5) {
		case 0: // the caller's account (cross-account delegation), sometimes conditioned
			s := Statement{Effect: "Allow", Principal: AWSPrincipal("arn:aws:iam::" + gAcctCaller + ":root"), Action: g.actions(), Resource: V("*")}
			if g.chance(0.4) {
				s.Condition = g.condition()
			}
			add(s)
		case 1: // names a principal directly (role with or without path, user, session, ...)
			s := Statement{Effect: "Allow", Principal: AWSPrincipal(g.principalARN()), Action: g.actions(), Resource: V("*")}
			if g.chance(0.2) {
				s.Principal = AWSPrincipal(g.principalARN(), g.principalARN())
			}
			if g.chance(0.45) {
				s.Condition = g.condition()
			}
			add(s)
		case 2: // the aws/s3 managed key pattern
			acct := gAcctCaller
			if g.chance(0.25) {
				acct = gAcctOther
			}
			p := AWSPrincipal("*")
			if g.chance(0.5) {
				p = &Principal{Wildcard: true}
			}
			cond := Condition{"StringEquals": {"kms:CallerAccount": V(acct)}}
			if g.chance(0.7) {
				cond["StringEquals"]["kms:ViaService"] = V(gS3Here)
			}
			add(Statement{Effect: "Allow", Principal: p, Action: List("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"), Resource: V("*"), Condition: cond})
		case 3: // nobody relevant: another role, another account, a service principal
			p := AWSPrincipal(g.pick("arn:aws:iam::"+c.KeyAccount+":role/KeyAdmin", "arn:aws:iam::"+gAcctOther+":root"))
			if g.chance(0.3) {
				p = &Principal{Types: map[string]Values{"Service": V("s3.amazonaws.com")}}
			}
			add(Statement{Effect: "Allow", Principal: p, Action: g.actions(), Resource: V("*")})
		case 4: // Deny, with or without a condition
			s := Statement{Effect: "Deny", Principal: AWSPrincipal(g.pick("*", g.principalARN())), Action: g.actions(), Resource: V("*")}
			if g.chance(0.7) {
				s.Condition = g.condition()
			}
			add(s)
		case 5: // Deny everyone except the listed principals
			var ids []string
			for _, id := range []string{c.Caller.arn, c.Caller.session, "arn:aws:iam::" + gAcctCaller + ":root", "arn:aws:iam::" + c.KeyAccount + ":role/KeyAdmin"} {
				if id != "" && g.chance(0.55) {
					ids = append(ids, id)
				}
			}
			if len(ids) == 0 {
				ids = append(ids, "arn:aws:iam::"+c.KeyAccount+":role/KeyAdmin")
			}
			s := Statement{Effect: "Deny", NotPrincipal: AWSPrincipal(ids...), Action: g.actions(), Resource: V("*")}
			if g.chance(0.3) {
				s.Condition = g.condition()
			}
			add(s)
		case 6: // Allow everyone except the listed principals
			add(Statement{Effect: "Allow", NotPrincipal: AWSPrincipal(g.principalARN()), Action: g.actions(), Resource: V("*")})
		case 7: // NotAction
			s := Statement{Effect: g.pick("Allow", "Allow", "Deny"), Principal: AWSPrincipal(g.principalARN()), Resource: V("*"),
				NotAction: []Values{List("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"), V("kms:Decrypt"), V("kms:*"), List("kms:Create*", "kms:Put*"), V("s3:*")}[g.r.IntN(5)]}
			if g.chance(0.3) {
				s.Condition = g.condition()
			}
			add(s)
		case 8: // NotResource
			s := Statement{Effect: g.pick("Allow", "Deny"), Principal: AWSPrincipal(g.principalARN()), Action: g.actions(),
				NotResource: V(g.pick("arn:aws:kms:"+gRegion+":"+c.KeyAccount+":key/"+gOtherKeyID, g.keyARN, "arn:aws:kms:*:*:alias/*"))}
			add(s)
		case 9: // key administrators
			add(Statement{Sid: "KeyAdmins", Effect: "Allow", Principal: AWSPrincipal(g.pick("arn:aws:iam::"+c.KeyAccount+":role/KeyAdmin", g.c.Caller.arn)),
				Action:   List("kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"),
				Resource: V("*")})
		}
	}
	if len(d.Statement) == 0 {
		add(Statement{Effect: "Allow", Principal: AWSPrincipal("arn:aws:iam::" + c.KeyAccount + ":role/KeyAdmin"), Action: V("kms:*"), Resource: V("*")})
	}
	// Key policies say "Resource": "*" (this key); some name the key, a key pattern or another key.
	for i := range d.Statement {
		if st := &d.Statement[i]; !st.Resource.IsZero() && g.chance(0.1) {
			st.Resource = V(g.pick(g.keyARN, "arn:aws:kms:*:"+c.KeyAccount+":key/*", "arn:aws:kms:"+gRegion+":"+c.KeyAccount+":key/"+gOtherKeyID))
		}
	}
	g.r.Shuffle(len(d.Statement), func(i, j int) { d.Statement[i], d.Statement[j] = d.Statement[j], d.Statement[i] })
	return d
}

var gIdentityActions = []Values{
	V("kms:*"), V("kms:Decr*"), V("kms:?ecrypt"), V("KMS:decrypt"), V("kms:Decrypt"), V("kms:GenerateDataKey*"),
	V("kms:GenerateDataKey"), V("Kms:GENERATEDATAKEY"), V("kms:Encrypt"), List("kms:Decrypt", "kms:GenerateDataKey"),
	V("*"), V("s3:GetObject"), V("kms:Put*"), V("kms:CreateGrant"), V("kms:*DataKey"),
}

var gIdentityNotActions = []Values{V("kms:PutKeyPolicy"), V("kms:Decrypt"), V("s3:*"), List("kms:Create*", "kms:Put*")}

func (g *gen) identityResource() Values {
	ka := g.c.KeyAccount
	return []Values{
		V(g.keyARN), V("*"), V("arn:aws:kms:*:" + ka + ":key/*"), V("arn:aws:kms:" + gRegion + ":" + ka + ":key/" + gOtherKeyID),
		V("arn:aws:kms:" + gRegion + ":" + ka + ":alias/app-data"), V("arn:aws:kms:*:*:key/1234*"),
		V("arn:aws:kms:" + gRegion + ":" + gAcctOther + ":key/*"), V("arn:aws:kms:" + gRegion + ":*:key/?234abcd-*"),
		List("arn:aws:kms:"+gRegion+":"+ka+":key/"+gOtherKeyID, g.keyARN), V("arn:aws:s3:::" + gBucket + "/*"),
	}[g.weighted(20, 14, 10, 8, 6, 6, 5, 5, 6, 4)]
}

func (g *gen) identityStatement() Statement {
	s := Statement{Effect: "Allow"}
	if g.chance(0.2) {
		s.Effect = "Deny"
	}
	if g.chance(0.12) {
		s.NotAction = gIdentityNotActions[g.r.IntN(len(gIdentityNotActions))]
	} else {
		s.Action = gIdentityActions[g.r.IntN(len(gIdentityActions))]
	}
	if g.chance(0.12) {
		s.NotResource = V(g.pick("arn:aws:kms:"+gRegion+":"+g.c.KeyAccount+":key/"+gOtherKeyID, g.keyARN, "arn:aws:s3:::*"))
	} else {
		s.Resource = g.identityResource()
	}
	if g.chance(0.45) {
		s.Condition = g.condition()
	}
	return s
}

func (g *gen) identityPolicy() *Document {
	d := &Document{Version: "2012-10-17"}
	for range 1 + g.r.IntN(3) {
		d.Statement = append(d.Statement, g.identityStatement())
	}
	return d
}

func (g *gen) boundary() *Document {
	d := &Document{Version: "2012-10-17"}
	switch g.r.IntN(5) {
	case 0:
		d.Statement = Statements{{Effect: "Allow", Action: V("kms:*"), Resource: V("*")}}
	case 1:
		d.Statement = Statements{{Effect: "Allow", Action: V("kms:Decrypt"), Resource: V("*")}}
	case 2: // does not allow KMS at all
		d.Statement = Statements{{Effect: "Allow", Action: List("s3:*", "sqs:*"), Resource: V("*")}}
	case 3:
		d.Statement = Statements{{Effect: "Allow", Action: V("*"), Resource: V("*")}, {Effect: "Deny", Action: V("kms:PutKeyPolicy"), Resource: V("*")}}
	case 4:
		d.Statement = Statements{g.identityStatement()}
		d.Statement[0].Effect = "Allow"
	}
	return d
}

// --- conditions ---

// gKey describes a condition key: its name as policies may write it, its values in policies
// (exact, wildcard patterns, other cases) and which operator families make sense for it.
type gKey struct {
	names   []string
	exact   []string
	like    []string
	folded  []string
	arn     bool // ARN-typed: Arn* operators apply
	boolean bool
}

func gKeys() []gKey {
	return []gKey{
		{names: []string{"kms:ViaService", "kms:viaservice"},
			exact:  []string{gS3Here, gS3Elsewhere, gSQSHere},
			like:   []string{"s3.*.amazonaws.com", "s3.us-east-?.amazonaws.com", "*.us-east-1.amazonaws.com", gS3Here},
			folded: []string{"S3.US-EAST-1.AMAZONAWS.COM", "Sqs.Us-East-1.Amazonaws.Com", "S3.*.AMAZONAWS.COM"}},
		{names: []string{"kms:EncryptionContext:aws:s3:arn", "kms:encryptioncontext:aws:s3:arn"},
			exact:  []string{gObjectARN, gBucketARN, gOtherBucketObj},
			like:   []string{"arn:aws:s3:::" + gBucket + "/*", "arn:aws:s3:::" + gBucket + "*", gBucketARN, "arn:aws:s3:::other-bucket/*", "arn:aws:s3:::" + gBucket + "/reports/*", "arn:aws:s3:::amzn-?ata/*"},
			folded: []string{"ARN:AWS:S3:::AMZN-DATA", "arn:aws:s3:::AMZN-DATA/reports/2026/Q1.CSV", "arn:aws:s3:::AMZN-DATA/*"}},
		{names: []string{"kms:CallerAccount"}, exact: []string{gAcctCaller, gAcctKey, gAcctOther}, like: []string{"1111*", "*"}},
		{names: []string{"aws:PrincipalAccount"}, exact: []string{gAcctCaller, gAcctOther}, like: []string{"111122223333", "7777*"}},
		{names: []string{"aws:PrincipalArn", "aws:principalarn"}, arn: true,
			exact: []string{gCallers[0].arn, gCallers[1].arn, gCallers[2].arn, "arn:aws:iam::" + gAcctCaller + ":role/other-role"},
			like: []string{"arn:aws:iam::" + gAcctCaller + ":role/*", "arn:aws:iam::*:role/app-*", "arn:aws:iam::" + gAcctCaller + ":role/service-role/*",
				"arn:aws:iam::" + gAcctCaller + ":user/*", "arn:aws:iam::*:*"},
			folded: []string{strings.ToUpper(gCallers[0].arn), "arn:aws:iam::" + gAcctCaller + ":ROLE/*"}},
		{names: []string{"aws:ViaAWSService"}, boolean: true, exact: []string{"true", "false"}},
		{names: []string{"aws:SecureTransport"}, boolean: true, exact: []string{"true"}},                // absent here
		{names: []string{"aws:SourceVpce"}, exact: []string{"vpce-1a2b3c4d"}, like: []string{"vpce-*"}}, // absent in S3 FAS
	}
}

var gAllKeys = gKeys()

// condition builds a Condition block: operators ANDed, keys ANDed, values ORed.
func (g *gen) condition() Condition {
	cond := Condition{}
	for range 1 + g.weighted(70, 25, 5) {
		op, key, vals := g.conditionEntry()
		if cond[op] == nil {
			cond[op] = map[string]Values{}
		}
		cond[op][key] = vals
	}
	return cond
}

func (g *gen) values(pool []string) Values {
	if g.chance(0.3) && len(pool) > 1 {
		a, b := g.r.IntN(len(pool)), g.r.IntN(len(pool))
		if a != b {
			return List(pool[a], pool[b])
		}
	}
	return V(pool[g.r.IntN(len(pool))])
}

func (g *gen) conditionEntry() (op, key string, vals Values) {
	k := gAllKeys[[]int{0, 1, 2, 3, 4, 5, 6, 7}[g.weighted(24, 26, 12, 6, 12, 10, 4, 6)]]
	key = k.names[g.r.IntN(len(k.names))]
	if g.chance(0.12) {
		return "Null", key, V(g.pick("true", "false"))
	}
	switch {
	case k.boolean:
		op, vals = "Bool", V(k.exact[g.r.IntN(len(k.exact))])
	case k.arn && g.chance(0.5):
		op = []string{"ArnEquals", "ArnLike", "ArnNotLike", "ArnNotEquals"}[g.weighted(3, 4, 3, 1)]
		exact := append(append([]string{}, k.exact...), k.folded...)
		if strings.HasSuffix(op, "Like") {
			vals = g.values(append(append([]string{}, k.like...), exact...))
		} else {
			vals = g.values(exact)
		}
	default:
		// Other-case values in every pool: only the IgnoreCase operators may match them.
		exact := append(append([]string{}, k.exact...), k.folded...)
		like := append(append([]string{}, k.like...), exact...)
		switch g.weighted(26, 16, 22, 12, 8, 3) {
		case 0:
			op, vals = "StringEquals", g.values(exact)
		case 1:
			op, vals = "StringNotEquals", g.values(exact)
		case 2:
			op, vals = "StringLike", g.values(like)
		case 3:
			op, vals = "StringNotLike", g.values(like)
		case 4:
			op, vals = "StringEqualsIgnoreCase", g.values(exact)
		case 5:
			op, vals = "StringNotEqualsIgnoreCase", g.values(exact)
		}
		if len(vals.Items) == 0 || vals.Items[0] == "" {
			op, vals = "StringEquals", g.values(k.exact)
		}
	}
	ifExists := g.chance(0.15)
	if ifExists {
		op += "IfExists"
	}
	if op != "Bool" && op != "BoolIfExists" && g.chance(map[bool]float64{false: 0.14, true: 0.2}[ifExists]) {
		op = g.pick("ForAnyValue:", "ForAllValues:") + op
	}
	return op, key, vals
}
