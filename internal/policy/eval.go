package policy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Decision is the outcome of evaluating policies for one request.
type Decision int

const (
	ImplicitDeny Decision = iota
	Allow
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allowed"
	case ExplicitDeny:
		return "ExplicitlyDenied"
	}
	return "ImplicitlyDenied"
}

// Caller is the principal making the request.
type Caller struct {
	ARN        string // IAM ARN: role ARN with path, or user ARN (aws:PrincipalArn)
	SessionARN string // the assumed-role session ARN when the caller is a role session
	Account    string
}

// Request is one request as the authorizing service sees it.
type Request struct {
	Action   string            // "kms:Decrypt"
	Resource string            // the key ARN
	Caller   Caller            //
	Context  map[string]string // single-valued condition keys (any case) to values
	// Multi holds the multivalued condition keys present in the request (any case), such as
	// kms:EncryptionContextKeys or aws:PrincipalOrgPaths; an empty list is an empty set.
	Multi map[string][]string
	// Unknown says what is known of a key that is in neither Context nor Multi: absent from
	// the request, or unknown. nil: every such key is absent.
	Unknown func(key string) KeyState
	// Override changes Context for this request without copying the map (a request derived
	// from another that differs in a key or two): each entry's key, spelled exactly as in
	// Context, takes the entry's value, or is dropped from the request when Drop. Keys are
	// distinct.
	Override []Override
}

// Override is one change of Request.Override.
type Override struct {
	Key, Value string
	Drop       bool
}

// KeyState is what is known of a condition key a request does not list.
type KeyState uint8

const (
	// KeyAbsent: the request does not carry the key.
	KeyAbsent KeyState = iota
	// KeyUnknown: the request may carry the key, with any value, or not.
	KeyUnknown
	// KeyUnknownValue: the request carries the key, with a value nobody read.
	KeyUnknownValue
)

// Tri is a three-valued truth: a condition on a key whose value is unknown is Unknown, not
// false.
type Tri uint8

const (
	False Tri = iota
	True
	Unknown
)

func triOf(b bool) Tri {
	if b {
		return True
	}
	return False
}

func (t Tri) String() string {
	switch t {
	case True:
		return "true"
	case Unknown:
		return "unknown"
	}
	return "false"
}

// StatementRef names a statement: the policy it is in and its Sid or index.
type StatementRef struct {
	Policy string
	Sid    string
	Index  int
}

func (r StatementRef) String() string {
	if r.Sid != "" {
		return r.Policy + " statement " + strconv.Quote(r.Sid)
	}
	return r.Policy + " statement #" + strconv.Itoa(r.Index+1)
}

// Result is one document's answer.
type Result struct {
	Decision Decision
	Deny     *StatementRef // the explicit deny that matched
	Allow    *StatementRef // an allow that matched
	// ViaAccount says the matching allow names the caller's account, not the caller: in a
	// KMS key policy that delegates to IAM, which must then allow too.
	ViaAccount bool
	// NearMiss is an allow that matches the principal, action and resource but whose
	// condition NearMissKey does not hold for this request.
	NearMiss    *StatementRef
	NearMissKey string
}

// Evaluate evaluates one document. asResource: it is a resource policy (Principal applies);
// otherwise an identity policy or boundary (statements apply to the caller).
//
// A statement whose condition is Unknown is taken as not applying when it allows and as
// applying when it denies: the Result is the answer whatever the unknown values are, or the
// least favourable one.
func (d *Document) Evaluate(req Request, name string, asResource bool) Result {
	ctx := newRequestContext(&req, leanDeny)
	return d.evaluate(&req, ctx, name, asResource)
}

func (d *Document) evaluate(req *Request, ctx *condContext, name string, asResource bool) Result {
	var res Result
	if d == nil {
		return res
	}
	for i := range d.Statement {
		s := &d.Statement[i]
		if !s.matchesAction(req.Action) || !s.matchesResource(req.Resource) {
			continue
		}
		viaAccount := false
		if asResource {
			m := s.matchesPrincipal(req.Caller)
			if m == noMatch {
				continue
			}
			viaAccount = m == accountMatch
		}
		isDeny := isEffect(s.Effect, "Deny")
		// Prefer an allow that names the caller over one that names its account.
		better := res.Allow == nil || (res.ViaAccount && !viaAccount)
		if !isDeny && !better && res.NearMiss != nil {
			continue // neither the first near miss nor a better allow: its conditions change nothing
		}
		t, failKey := s.Condition.holds(ctx)
		if !ctx.resolve(t, isDeny) {
			if !isDeny && res.NearMiss == nil {
				res.NearMiss = &StatementRef{Policy: name, Sid: s.Sid, Index: i}
				res.NearMissKey = failKey
			}
			continue
		}
		if isDeny {
			res.Decision, res.Deny = ExplicitDeny, &StatementRef{Policy: name, Sid: s.Sid, Index: i}
			return res
		}
		if better {
			res.Decision, res.Allow, res.ViaAccount = Allow, &StatementRef{Policy: name, Sid: s.Sid, Index: i}, viaAccount
		}
	}
	return res
}

// NamedDocument is an identity policy with its name.
type NamedDocument struct {
	Name string
	Doc  *Document
}

// Grant is a KMS grant as far as authorization needs it.
type Grant struct {
	Grantee                 string
	Operations              []string
	EncryptionContextEquals map[string]string
	EncryptionContextSubset map[string]string
}

// KMSInputs is everything KMS consults for a request on one key.
type KMSInputs struct {
	KeyAccount string
	KeyPolicy  *Document // nil: no statements known
	Identity   []NamedDocument
	Boundary   *Document // nil: no permissions boundary
	Grants     []Grant
}

// Layers named in KMSResult.DenyLayer.
const (
	LayerKeyPolicy = "key-policy"
	LayerIdentity  = "identity-policy"
	LayerBoundary  = "permissions-boundary"
)

// KMSResult is KMS's decision with the answer of each layer.
//
// When the request leaves condition keys unknown (Request.Unknown), Decision is the answer
// if every unknown goes against the request (conditions of allows false, of denies true),
// and Upper the answer if every unknown goes for it; the layers describe the former. They
// differ only when the decision rests on an unknown, which Unknown then names.
type KMSResult struct {
	Decision  Decision
	Upper     Decision
	Unknown   []string // the condition keys whose unknown values the decision rests on
	Deny      *StatementRef
	DenyLayer string

	KeyPolicy Result // the key policy's answer (ViaAccount: it only delegates to the account)
	Identity  Result // the identity policies' combined answer
	Boundary  Result // Allow when there is no boundary
	Grant     *Grant // a grant that allows the request
}

// Undetermined says the decision rests on condition keys whose values are unknown.
func (r KMSResult) Undetermined() bool { return r.Upper != r.Decision }

// KeyPolicyAdmits says the key policy lets this caller in, directly or through its account.
func (r KMSResult) KeyPolicyAdmits() bool { return r.KeyPolicy.Decision == Allow }

// KeyPolicyAllowsDirectly says the key policy alone allows the caller (no IAM needed in the
// key's account).
func (r KMSResult) KeyPolicyAllowsDirectly() bool {
	return r.KeyPolicy.Decision == Allow && !r.KeyPolicy.ViaAccount
}

// AuthorizeKMS decides a KMS request the way KMS does: an explicit deny anywhere wins; in the
// key's account the key policy must allow the caller, or delegate to the account and IAM
// allow, or a grant allow; from another account the key policy must admit the caller or its
// account AND IAM must allow (or a grant allow). A permissions boundary caps what IAM and a
// key policy naming the role allow.
//
// Unknown condition values are evaluated both ways (see KMSResult); a request without
// unknowns is evaluated once.
func AuthorizeKMS(req Request, in KMSInputs) KMSResult {
	ctx := newRequestContext(&req, leanDeny)
	out := authorizeKMS(&req, ctx, in)
	out.Upper = out.Decision
	if len(ctx.unknown) == 0 {
		return out
	}
	upper := newRequestContext(&req, leanAllow)
	upper.shareEntries(ctx)
	out.Upper = authorizeKMS(&req, upper, in).Decision
	if out.Upper != out.Decision {
		out.Unknown = mergeKeys(ctx.unknown, upper.unknown)
	}
	return out
}

// mergeKeys is the sorted union of two key lists, without repeats (any case).
func mergeKeys(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, k := range append(append([]string{}, a...), b...) {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, k) }) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func authorizeKMS(req *Request, ctx *condContext, in KMSInputs) KMSResult {
	var out KMSResult
	out.KeyPolicy = in.KeyPolicy.evaluate(req, ctx, "key policy", true)
	if in.Boundary != nil && out.KeyPolicy.Decision != ExplicitDeny {
		// "The NotPrincipal element with a Deny effect will always deny any IAM principal that
		// has a permissions boundary policy attached, regardless of the values specified in
		// the NotPrincipal element" (IAM User Guide, Permissions boundaries).
		if ref := in.KeyPolicy.notPrincipalDeny(req, ctx, "key policy"); ref != nil {
			out.KeyPolicy.Decision, out.KeyPolicy.Deny = ExplicitDeny, ref
		}
	}
	out.Identity = evaluateAll(req, ctx, in.Identity)
	if in.Boundary != nil {
		out.Boundary = in.Boundary.evaluate(req, ctx, "permissions boundary", false)
	} else {
		out.Boundary.Decision = Allow
	}
	for _, l := range []struct {
		layer string
		res   Result
	}{{LayerKeyPolicy, out.KeyPolicy}, {LayerIdentity, out.Identity}, {LayerBoundary, out.Boundary}} {
		if l.res.Decision == ExplicitDeny {
			out.Decision, out.Deny, out.DenyLayer = ExplicitDeny, l.res.Deny, l.layer
			return out
		}
	}
	out.Grant = matchGrant(req, ctx, in.Grants)
	if out.Grant != nil {
		out.Decision = Allow
		return out
	}
	boundaryOK := out.Boundary.Decision == Allow
	identityOK := out.Identity.Decision == Allow && boundaryOK
	keyOK := out.KeyPolicy.Decision == Allow
	if req.Caller.Account == in.KeyAccount {
		direct := keyOK && !out.KeyPolicy.ViaAccount
		// A key policy naming the user or the session is not capped by a boundary; one
		// naming the role (or everyone) is.
		if direct && (boundaryOK || !out.KeyPolicy.namesRole(in.KeyPolicy, req.Caller)) {
			out.Decision = Allow
		} else if ref := sessionAllowIf(direct, in.KeyPolicy, req, ctx); ref != nil {
			// Another statement names the session itself: that grant is not capped.
			out.Decision, out.KeyPolicy.Allow = Allow, ref
		} else if keyOK && identityOK {
			out.Decision = Allow
		}
		return out
	}
	if keyOK && identityOK {
		out.Decision = Allow
	}
	return out
}

// notPrincipalDeny returns the first Deny statement with a NotPrincipal that applies to the
// request's action, resource and conditions, whoever it lists.
func (d *Document) notPrincipalDeny(req *Request, ctx *condContext, name string) *StatementRef {
	if d == nil {
		return nil
	}
	for i := range d.Statement {
		s := &d.Statement[i]
		if s.NotPrincipal == nil || !isEffect(s.Effect, "Deny") ||
			!s.matchesAction(req.Action) || !s.matchesResource(req.Resource) {
			continue
		}
		if t, _ := s.Condition.holds(ctx); ctx.resolve(t, true) {
			return &StatementRef{Policy: name, Sid: s.Sid, Index: i}
		}
	}
	return nil
}

// sessionAllow returns an Allow statement that names the caller's session ARN and applies to
// the request, if any.
func (d *Document) sessionAllow(req *Request, ctx *condContext, name string) *StatementRef {
	if d == nil || req.Caller.SessionARN == "" {
		return nil
	}
	for i := range d.Statement {
		s := &d.Statement[i]
		if s.Principal == nil || !isEffect(s.Effect, "Allow") ||
			!slices.Contains(s.Principal.Types["AWS"].Items, req.Caller.SessionARN) ||
			!s.matchesAction(req.Action) || !s.matchesResource(req.Resource) {
			continue
		}
		if t, _ := s.Condition.holds(ctx); ctx.resolve(t, true) {
			return &StatementRef{Policy: name, Sid: s.Sid, Index: i}
		}
	}
	return nil
}

// sessionAllowIf is d.sessionAllow when it matters: only a direct key-policy allow is
// replaced by one naming the session (one more pass over the key policy saved otherwise).
func sessionAllowIf(direct bool, d *Document, req *Request, ctx *condContext) *StatementRef {
	if !direct {
		return nil
	}
	return d.sessionAllow(req, ctx, "key policy")
}

// namesRole says the matching key-policy allow is capped by a permissions boundary: it names
// the role (not a session or a user) or everyone.
func (r Result) namesRole(d *Document, c Caller) bool {
	if r.Allow == nil || d == nil || c.SessionARN == "" {
		return false // IAM users and sessions named directly are not capped
	}
	s := &d.Statement[r.Allow.Index]
	if s.Principal == nil {
		return true
	}
	for _, v := range s.Principal.Types["AWS"].Items {
		if v == c.SessionARN {
			return false
		}
	}
	return true
}

func evaluateAll(req *Request, ctx *condContext, docs []NamedDocument) Result {
	var out Result
	for _, nd := range docs {
		r := nd.Doc.evaluate(req, ctx, nd.Name, false)
		switch {
		case r.Decision == ExplicitDeny:
			return r
		case r.Decision == Allow && out.Allow == nil:
			out.Decision, out.Allow = Allow, r.Allow
		}
		if out.NearMiss == nil && r.NearMiss != nil {
			out.NearMiss, out.NearMissKey = r.NearMiss, r.NearMissKey
		}
	}
	return out
}

func matchGrant(req *Request, ctx *condContext, grants []Grant) *Grant {
	op := strings.TrimPrefix(req.Action, "kms:")
	for i := range grants {
		g := &grants[i]
		if g.Grantee != req.Caller.ARN && (req.Caller.SessionARN == "" || g.Grantee != req.Caller.SessionARN) {
			continue
		}
		opOK := false
		for _, o := range g.Operations {
			if strings.EqualFold(o, op) {
				opOK = true
				break
			}
		}
		if !opOK {
			continue
		}
		t := True
		if g.EncryptionContextEquals != nil {
			t = ctx.encryptionContextEquals(g.EncryptionContextEquals)
		}
		if g.EncryptionContextSubset != nil {
			t = and(t, ctx.encryptionContextHas(g.EncryptionContextSubset))
		}
		if !ctx.resolve(t, false) {
			continue
		}
		return g
	}
	return nil
}

// --- matching ---

func (s *Statement) matchesAction(action string) bool {
	if !s.NotAction.IsZero() {
		return !anyGlob(s.NotAction.Items, action, true)
	}
	return anyGlob(s.Action.Items, action, true)
}

func (s *Statement) matchesResource(resource string) bool {
	if !s.NotResource.IsZero() {
		return !anyGlob(s.NotResource.Items, resource, false)
	}
	if s.Resource.IsZero() {
		return true // key policies may omit it; "*" means this key
	}
	return anyGlob(s.Resource.Items, resource, false)
}

type principalMatch int

const (
	noMatch principalMatch = iota
	directMatch
	accountMatch
)

func (s *Statement) matchesPrincipal(c Caller) principalMatch {
	if s.NotPrincipal != nil {
		ids := s.NotPrincipal.Types["AWS"].Items
		// "*", bare or as {"AWS":"*"}, lists everyone: the statement applies to nobody.
		if s.NotPrincipal.Wildcard || slices.Contains(ids, "*") {
			return noMatch
		}
		account := principalListed(ids, c.Account, true)
		arn := principalListed(ids, c.ARN, false)
		session := c.SessionARN != "" && principalListed(ids, c.SessionARN, false)
		if isEffect(s.Effect, "Deny") {
			// A Deny applies unless every identity of the caller (its account, the role or
			// user, the session) is listed: AWS may check each in turn (IAM User Guide,
			// "NotPrincipal With Deny").
			if !account || !arn || (c.SessionARN != "" && !session) {
				return directMatch
			}
			return noMatch
		}
		// An Allow grants everyone except those listed: not the caller if any of its
		// identities is listed.
		if account || arn || session {
			return noMatch
		}
		return directMatch
	}
	if s.Principal == nil {
		return noMatch
	}
	if s.Principal.Wildcard {
		return directMatch
	}
	best := noMatch
	for _, v := range s.Principal.Types["AWS"].Items {
		switch {
		case v == "*" || v == c.ARN || (c.SessionARN != "" && v == c.SessionARN):
			return directMatch
		case c.Account != "" && isAccountPrincipal(v, c.Account):
			best = accountMatch
		}
	}
	return best
}

// isEffect compares an Effect case-insensitively, as written first.
func isEffect(effect, want string) bool {
	return effect == want || strings.EqualFold(effect, want)
}

func principalListed(ids []string, id string, account bool) bool {
	for _, v := range ids {
		if v == id || (account && isAccountPrincipal(v, id)) {
			return true
		}
	}
	return false
}

// isAccountPrincipal says v names the account: "123456789012" or "arn:aws:iam::123456789012:root".
func isAccountPrincipal(v, account string) bool {
	if v == account {
		return true
	}
	if !strings.HasPrefix(v, "arn:") || !strings.HasSuffix(v, ":root") {
		return false
	}
	rest := strings.TrimSuffix(v, ":root")
	return strings.HasSuffix(rest, "::"+account) && strings.Contains(rest, ":iam:")
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if glob(p, s, fold) {
			return true
		}
	}
	return false
}

// glob matches IAM wildcards: * any run of characters, ? exactly one.
func glob(p, s string, fold bool) bool {
	if p == "*" {
		return true
	}
	// The literal prefix, in a tight loop: a mismatch before the first wildcard is final.
	i := 0
	for ; i < len(p) && i < len(s); i++ {
		c := p[i]
		if c == '*' || c == '?' {
			break
		}
		if c != s[i] && (!fold || lowerByte(c) != lowerByte(s[i])) {
			return false
		}
	}
	if i == len(p) {
		return i == len(s)
	}
	var star, mark = -1, 0
	j := i
	for j < len(s) {
		switch {
		case i < len(p) && p[i] == '*':
			star, mark = i, j
			i++
		case i < len(p) && (p[i] == '?' || p[i] == s[j] || (fold && lowerByte(p[i]) == lowerByte(s[j]))):
			i++
			j++
		case star >= 0:
			i = star + 1
			mark++
			j = mark
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

func lowerByte(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// --- conditions ---

// condContext holds the request's condition keys. They are copied from the request's map into a
// small slice the first time a condition needs one (many decisions need none): requests
// carry a handful of keys, so a scan beats a map. Keys keep their case (lower-casing them
// cost a third of AuthorizeKMS); lookup and encryptionContext compare case-insensitively.
// AuthorizeKMS and Evaluate keep it on their stack.
//
// lean says how a condition that is Unknown is taken (resolve), and unknown collects the
// keys of every condition that was.
type condContext struct {
	m       map[string]string
	over    []Override
	multi   map[string][]string
	state   func(string) KeyState
	lean    lean
	unknown []string
	copied  bool
	n       int
	buf     [32]kv // the keys of a request with up to 32 (the S3-to-KMS context has about 25)
	more    []kv   // the keys of a request with more
}

type kv struct{ key, value string }

// lean is how an Unknown condition is taken: against the request (allows do not apply,
// denies do) or for it.
type lean uint8

const (
	leanDeny lean = iota
	leanAllow
)

func newContext(m map[string]string) *condContext { return &condContext{m: m} }

func newRequestContext(r *Request, l lean) *condContext {
	return &condContext{m: r.Context, over: r.Override, multi: r.Multi, state: r.Unknown, lean: l}
}

// resolve takes a condition's truth as the statement's applicability under the context's
// lean; an Unknown is noted by the caller (holds).
func (c *condContext) resolve(t Tri, deny bool) bool {
	switch t {
	case True:
		return true
	case False:
		return false
	}
	return (c.lean == leanDeny) == deny
}

func (c *condContext) entries() []kv {
	if !c.copied {
		c.copied = true
		if n := len(c.m) + len(c.over); n > len(c.buf) {
			c.more = c.collect(make([]kv, 0, n))
		} else {
			c.n = len(c.collect(c.buf[:0])) // only the length kept: c stays on the stack
		}
	}
	if c.more != nil {
		return c.more
	}
	return c.buf[:c.n]
}

// collect appends the request's keys to dst: the context's, less those overridden, then the
// overrides that are not drops.
func (c *condContext) collect(dst []kv) []kv {
	for k, v := range c.m {
		if !overridden(c.over, k) {
			dst = append(dst, kv{k, v})
		}
	}
	for _, o := range c.over {
		if !o.Drop {
			dst = append(dst, kv{o.Key, o.Value})
		}
	}
	return dst
}

func overridden(over []Override, key string) bool {
	for _, o := range over {
		if o.Key == key {
			return true
		}
	}
	return false
}

// shareEntries gives c the keys o already copied from the same request's map, in the same
// order: the second bound of AuthorizeKMS does not copy them again.
func (c *condContext) shareEntries(o *condContext) {
	if o.copied {
		c.copied, c.n, c.buf, c.more = true, o.n, o.buf, o.more
	}
}

func (c *condContext) get(key string) (string, bool) {
	for _, e := range c.entries() {
		if len(e.key) == len(key) && strings.EqualFold(e.key, key) {
			return e.value, true
		}
	}
	return "", false
}

// keyState is what the context knows of a key: present (single-valued: value; multivalued:
// values non-nil), absent, or unknown.
type keyState uint8

const (
	statePresent keyState = iota
	stateAbsent
	stateUnknown
	stateUnknownValue
)

func (c *condContext) lookup(key string) (value string, values []string, st keyState) {
	if v, ok := c.get(key); ok {
		return v, nil, statePresent
	}
	for k, vs := range c.multi {
		if len(k) == len(key) && strings.EqualFold(k, key) {
			if vs == nil {
				vs = []string{}
			}
			return "", vs, statePresent
		}
	}
	if c.state != nil {
		switch c.state(key) {
		case KeyUnknown:
			return "", nil, stateUnknown
		case KeyUnknownValue:
			return "", nil, stateUnknownValue
		}
	}
	return "", nil, stateAbsent
}

// note records a key whose unknown value a condition's truth rests on.
func (c *condContext) note(key string) {
	for _, k := range c.unknown {
		if strings.EqualFold(k, key) {
			return
		}
	}
	c.unknown = append(c.unknown, key)
}

const ecPrefix = "kms:encryptioncontext:"

func (c *condContext) encryptionContext() map[string]string {
	m := map[string]string{}
	for _, e := range c.entries() {
		if len(e.key) > len(ecPrefix) && strings.EqualFold(e.key[:len(ecPrefix)], ecPrefix) {
			m[e.key[len(ecPrefix):]] = e.value
		}
	}
	return m
}

// encryptionContextHas says the request's encryption context holds every pair (a grant's
// EncryptionContextSubset constraint).
func (c *condContext) encryptionContextHas(want map[string]string) Tri {
	t := True
	for k, v := range want {
		got, _, st := c.lookup(ecPrefix + k)
		switch {
		case st == statePresent && got == v:
		case st == stateUnknown || st == stateUnknownValue:
			c.note("kms:EncryptionContext:" + k)
			t = Unknown
		default:
			return False
		}
	}
	return t
}

// encryptionContextEquals says the request's encryption context is exactly want (a grant's
// EncryptionContextEquals constraint); unknown when the context's keys are.
func (c *condContext) encryptionContextEquals(want map[string]string) Tri {
	t := c.encryptionContextHas(want)
	if t == False {
		return False
	}
	if _, _, st := c.lookup("kms:EncryptionContextKeys"); st == stateUnknown || st == stateUnknownValue {
		c.note("kms:EncryptionContextKeys")
		return Unknown
	}
	if len(c.encryptionContext()) != len(want) {
		return False
	}
	return t
}

func and(a, b Tri) Tri {
	switch {
	case a == False || b == False:
		return False
	case a == Unknown || b == Unknown:
		return Unknown
	}
	return True
}

// holds evaluates every operator and key (ANDed). It returns False with a key that fails,
// Unknown with a key whose unknown value the answer rests on (every such key is noted in
// the context), or True.
//
// The failing key reported is the smallest in byte order, whatever the map order, so a
// diagnosis that names it is the same on every run.
func (cond Condition) holds(ctx *condContext) (Tri, string) {
	failed := ""
	var unknown []string
	for op, keys := range cond {
		e := parseOperator(op)
		for key, vals := range keys {
			if failed != "" && key >= failed {
				continue // cannot be the key reported; the outcome is already false
			}
			e.key, e.vals = key, vals.Items
			switch e.holds(ctx) {
			case False:
				failed = key
			case Unknown:
				unknown = append(unknown, key)
			}
		}
	}
	switch {
	case failed != "":
		return False, failed
	case len(unknown) > 0:
		slices.Sort(unknown)
		for _, k := range unknown {
			ctx.note(k)
		}
		return Unknown, unknown[0]
	}
	return True, ""
}

// arnLike compares ARNs component by component (the resource part may contain colons).
func arnLike(want, got string) bool {
	wp := strings.SplitN(want, ":", 6)
	gp := strings.SplitN(got, ":", 6)
	if len(wp) != 6 || len(gp) != 6 {
		return glob(want, got, false)
	}
	for i := range wp {
		if !glob(wp[i], gp[i], false) {
			return false
		}
	}
	return true
}

func ipIn(want, got string) bool {
	addr, err := netip.ParseAddr(got)
	if err != nil {
		return false
	}
	if p, err := netip.ParsePrefix(want); err == nil {
		return p.Contains(addr)
	}
	w, err := netip.ParseAddr(want)
	return err == nil && w == addr
}
