package engine_test

// TestEvents runs every bundled sample (events/) through the path
// `kmsfix explain --json --world W E` takes (cloudtrail.ReadAll, then engine.Explain per item)
// and judges each report against the folder's expect.json as events/README.md "How a report
// is judged" describes. It also compares the JSON lines with events/<folder>/golden.json,
// rewritten with
//
//	go test ./internal/engine -run TestEvents -update
//
// The expectations come from docs/contract.md and the AWS documentation that events/README.md
// lists under "Sources", not from the engine:
// a failing case here is an engine gap to fix, never an expectation to relax.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

var update = flag.Bool("update", false, "rewrite events/*/golden.json from the current output")

// expectation is one expect.json (events/README.md "expect.json"). Pointers tell absent from empty.
// A folder whose event holds several records (a CloudTrail log file) has an array of them,
// one per record in input order.
type expectation struct {
	Diagnosis       *string    `json:"diagnosis"`
	Ignored         bool       `json:"ignored"`
	PatchKindsAnyOf [][]string `json:"patch_kinds_any_of"`
	AutoApply       *bool      `json:"auto_apply"`
	Principal       *string    `json:"principal"`
	Key             *string    `json:"key"`
	Actions         *[]string  `json:"actions"`
	DetailMentions  []string   `json:"detail_mentions"`
	Why             string     `json:"why"`
}

type sample struct {
	name string // "events/01-identity-policy-missing"
	dir  string
}

func TestEvents(t *testing.T) {
	root := repoRoot(t)
	samples := samplesIn(t, filepath.Join(root, "events"), "events")
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			reports, lines := explain(t, s.dir)
			exps := loadExpectations(t, filepath.Join(s.dir, "expect.json"))
			ids := eventIDs(t, filepath.Join(s.dir, "event.json"))
			if len(reports) != len(exps) || len(reports) != len(ids) {
				t.Fatalf("%d reports, %d expectations, %d records in event.json: they must match one to one", len(reports), len(exps), len(ids))
			}
			w := loadWorld(t, s.dir)
			facts := requestFacts(t, filepath.Join(s.dir, "event.json"))
			for i, r := range reports {
				for _, p := range judge(r, exps[i], ids[i], w, facts[i]) {
					t.Errorf("report %d: %s", i+1, p)
				}
			}
			compareGolden(t, filepath.Join(s.dir, "golden.json"), lines)
		})
	}
}

// judge applies the four checks of events/README.md "How a report is judged" and returns
// what is wrong.
func judge(r finding.Report, e expectation, id string, w *world.World, f fact) (problems []string) {
	errorf := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	// 1. diagnosis or ignored, event_id, principal, key, actions, auto_apply, detail mentions.
	if r.EventID != id {
		errorf("event_id = %q, want the event's eventID %q", r.EventID, id)
	}
	if e.Ignored {
		if r.Ignored == "" {
			errorf("not ignored (diagnosis %q), want ignored", r.Diagnosis)
		}
		if r.Diagnosis != "" {
			errorf("ignored event carries diagnosis %q", r.Diagnosis)
		}
		return problems
	}
	if r.Ignored != "" {
		errorf("ignored (%s), want diagnosis %s", r.Ignored, deref(e.Diagnosis))
		return problems
	}
	want := finding.Code(deref(e.Diagnosis))
	if r.Diagnosis != want {
		errorf("diagnosis = %s, want %s\n  detail: %s", r.Diagnosis, want, r.Detail)
	}
	if r.Detail == "" {
		errorf("empty detail")
	}
	if e.Principal != nil && r.Principal != *e.Principal {
		errorf("principal = %q, want %q", r.Principal, *e.Principal)
	}
	if e.Key != nil && r.Key != *e.Key {
		errorf("key = %q, want %q", r.Key, *e.Key)
	}
	if e.Actions != nil && !slices.Equal(r.Actions, *e.Actions) {
		errorf("actions = %q, want %q", r.Actions, *e.Actions)
	}
	if e.AutoApply != nil && r.AutoApply != *e.AutoApply {
		errorf("auto_apply = %v, want %v (blocked: %q)", r.AutoApply, *e.AutoApply, r.AutoApplyBlocked)
	}
	for _, m := range e.DetailMentions {
		if !strings.Contains(r.Detail, m) {
			errorf("detail does not mention %q: %s", m, r.Detail)
		}
	}
	// The other contract fields follow from the record.
	if r.Principal != "" && r.PrincipalAccount != accountOf(r.Principal) {
		errorf("principal_account = %q, want %q (from %s)", r.PrincipalAccount, accountOf(r.Principal), r.Principal)
	}
	if r.Key != "" && r.KeyAccount != accountOf(r.Key) {
		errorf("key_account = %q, want %q (from %s)", r.KeyAccount, accountOf(r.Key), r.Key)
	}
	if r.Region != f.region {
		errorf("region = %q, want the record's awsRegion %q", r.Region, f.region)
	}
	if r.Bucket != f.bucket || r.Object != f.object {
		errorf("bucket, object = %q, %q, want %q, %q (from the aws:s3:arn context)", r.Bucket, r.Object, f.bucket, f.object)
	}
	if r.Diagnosis == finding.Undetermined && r.Verified {
		errorf("an undetermined finding claims verified: true")
	}

	// 2. the set of patch kinds, and where each patch goes.
	kinds := patchKinds(r.Patches)
	switch {
	case e.PatchKindsAnyOf != nil:
		if !slices.ContainsFunc(e.PatchKindsAnyOf, func(opt []string) bool { return slices.Equal(sortedSet(opt), kinds) }) {
			errorf("patch kinds %q, want one of %q", kinds, e.PatchKindsAnyOf)
		}
	case want != finding.Undetermined && len(r.Patches) > 0:
		// No patch expected; undetermined may still offer its most likely (unverified) patch.
		errorf("patch kinds %q, want no patch", kinds)
	}
	principal, key := r.Principal, r.Key
	for i, p := range r.Patches {
		switch p.Kind {
		case finding.KindIdentityPolicy:
			if p.Target != principal || p.Account != accountOf(principal) {
				errorf("patch %d (%s) targets %s in account %s, want the principal %s in account %s", i+1, p.Kind, p.Target, p.Account, principal, accountOf(principal))
			}
			if p.Policy == nil {
				errorf("patch %d (%s) has no policy", i+1, p.Kind)
			}
		case finding.KindKeyPolicyStatement, finding.KindGrant:
			if p.Target != key || p.Account != accountOf(key) {
				errorf("patch %d (%s) targets %s in account %s, want the key %s in account %s", i+1, p.Kind, p.Target, p.Account, key, accountOf(key))
			}
			if p.Kind == finding.KindKeyPolicyStatement && p.Statement == nil {
				errorf("patch %d (%s) has no statement", i+1, p.Kind)
			}
			if p.Kind == finding.KindGrant && (p.Grant == nil || p.Grant.Grantee != principal || !sameSet(p.Grant.Operations, grantOps(r.Actions))) {
				errorf("patch %d (grant) must name the principal %s and exactly the operations %q: %+v", i+1, principal, grantOps(r.Actions), p.Grant)
			}
		default:
			errorf("patch %d has unknown kind %q", i+1, p.Kind)
		}
	}
	for i, p := range r.Patches {
		for _, msg := range leastPrivilege(p, principal, key, r.Actions, f) {
			errorf("patch %d (%s): %s", i+1, p.Kind, msg)
		}
	}
	if len(r.Patches) == 0 || r.Diagnosis == finding.Undetermined {
		return problems // an undetermined finding's patch need not be sufficient
	}

	// 3. the world plus the patches allows the request as S3 makes it, for every action.
	req := f.request(principal, key)
	before, after := kmsInputs(w, principal, key, nil), kmsInputs(w, principal, key, r.Patches)
	for _, a := range r.Actions {
		q := req.with(a)
		if d := policy.AuthorizeKMS(q, after).Decision; d != policy.Allow {
			errorf("after patching, %s by %s via S3 is %s, want Allowed (verified: %v)", a, principal, d, r.Verified)
		}
	}

	// 4. least privilege: nothing refused before is allowed after.
	for _, p := range probes(req, r.Actions, f) {
		in := func(i policy.KMSInputs) policy.KMSInputs {
			if p.other {
				return policy.KMSInputs{KeyAccount: i.KeyAccount, KeyPolicy: i.KeyPolicy, Grants: i.Grants}
			}
			return i
		}
		if policy.AuthorizeKMS(p.req, in(before)).Decision != policy.Allow &&
			policy.AuthorizeKMS(p.req, in(after)).Decision == policy.Allow {
			errorf("the patches newly allow %s", p.name)
		}
	}
	return problems
}

// leastPrivilege checks the patch's text against docs/contract.md section 3: a valid Allow that
// names the exact key ARN, only the needed actions, the exact principal, and for S3's calls
// kms:ViaService = s3.<region>.amazonaws.com and an aws:s3:arn context limited to the bucket.
func leastPrivilege(p finding.Patch, principal, key string, actions []string, f fact) []string {
	var out []string
	var stmts []policy.Statement
	switch {
	case p.Kind == finding.KindIdentityPolicy && p.Policy != nil:
		if err := p.Policy.Validate(); err != nil {
			out = append(out, "invalid policy: "+err.Error())
		}
		stmts = p.Policy.Statement
	case p.Kind == finding.KindKeyPolicyStatement && p.Statement != nil:
		doc := &policy.Document{Version: "2012-10-17", Statement: policy.Statements{*p.Statement}}
		if err := doc.Validate(); err != nil {
			out = append(out, "invalid statement: "+err.Error())
		}
		stmts = doc.Statement
		if ssoRole.MatchString(principal) {
			// An IAM Identity Center role: the durable form AWS describes for permission-set
			// roles names the account and matches the role by aws:PrincipalArn with only the
			// suffix wildcarded (docs/contract.md).
			want := principal[:strings.LastIndex(principal, "_")+1] + "*"
			if p.Statement.Principal == nil || p.Statement.Principal.Wildcard ||
				!slices.Equal(p.Statement.Principal.Types["AWS"].Items, []string{"arn:" + f.partition + ":iam::" + accountOf(principal) + ":root"}) ||
				!slices.Equal(conditionValues(p.Statement.Condition, "aws:PrincipalArn"), []string{want}) {
				out = append(out, fmt.Sprintf("the statement for an Identity Center role must name its account and ArnLike aws:PrincipalArn %s", want))
			}
		} else if p.Statement.Principal == nil || p.Statement.Principal.Wildcard ||
			!slices.Equal(p.Statement.Principal.Types["AWS"].Items, []string{principal}) {
			out = append(out, fmt.Sprintf("the statement must name exactly the principal %s", principal))
		}
	default:
		return out // grants are checked by judge
	}
	for i, st := range stmts {
		where := fmt.Sprintf("statement %d: ", i+1)
		if st.Effect != "Allow" || !st.NotAction.IsZero() || !st.NotResource.IsZero() || st.NotPrincipal != nil {
			out = append(out, where+"must be a plain Allow (no NotAction, NotResource, NotPrincipal)")
		}
		if !slices.Equal(st.Resource.Items, []string{key}) {
			out = append(out, fmt.Sprintf("%sResource %q, want exactly the key ARN", where, st.Resource.Items))
		}
		for _, a := range st.Action.Items {
			if !slices.ContainsFunc(actions, func(n string) bool { return strings.EqualFold(n, a) }) {
				out = append(out, fmt.Sprintf("%sAction %q was not needed (needed %q)", where, a, actions))
			}
		}
		if f.context == "" {
			continue
		}
		if f.directory {
			// S3 Express One Zone: the exact bucket ARN as its context; the kms:ViaService
			// value is undocumented, so aws:ViaAWSService keeps direct calls out.
			if ctx := conditionValues(st.Condition, "kms:EncryptionContext:aws:s3express:arn"); !slices.Equal(ctx, []string{f.context}) {
				out = append(out, fmt.Sprintf("%skms:EncryptionContext:aws:s3express:arn %q, want exactly %s", where, ctx, f.context))
			}
			if via := conditionValues(st.Condition, "aws:ViaAWSService"); !slices.Equal(via, []string{"true"}) {
				out = append(out, fmt.Sprintf("%saws:ViaAWSService %q, want true", where, via))
			}
			continue
		}
		if via := conditionValues(st.Condition, "kms:ViaService"); !slices.Equal(via, []string{"s3." + f.region + ".amazonaws.com"}) {
			out = append(out, fmt.Sprintf("%skms:ViaService %q, want s3.%s.amazonaws.com", where, via, f.region))
		}
		bucketARN := "arn:" + f.partition + ":s3:::" + f.bucket
		ctx := conditionValues(st.Condition, "kms:EncryptionContext:aws:s3:arn")
		if len(ctx) == 0 {
			out = append(out, where+"no kms:EncryptionContext:aws:s3:arn condition")
		}
		for _, v := range ctx {
			if v != bucketARN && v != bucketARN+"/*" && v != f.context {
				out = append(out, fmt.Sprintf("%skms:EncryptionContext:aws:s3:arn value %q is not limited to bucket %s", where, v, f.bucket))
			}
		}
	}
	return out
}

// conditionValues returns the values a condition key is compared with, under any operator.
func conditionValues(c policy.Condition, key string) []string {
	var out []string
	for _, kv := range c {
		for k, v := range kv {
			if strings.EqualFold(k, key) {
				out = append(out, v.Items...)
			}
		}
	}
	return out
}

// fact is what the judge reads from a record itself, not from the parser: the session, the
// Region and the S3 encryption context.
type fact struct {
	session string
	region  string
	context string
	bucket  string
	object  string // empty with S3 Bucket Keys (the context is the bucket ARN)
	// partition of the context ARN (aws, aws-cn, aws-us-gov)
	partition string
	// directory: the context is aws:s3express:arn, a directory bucket's ARN
	directory bool
}

// ssoRole matches an IAM Identity Center role ARN.
var ssoRole = regexp.MustCompile(`^arn:[a-z-]+:iam::\d{12}:role/aws-reserved/sso\.amazonaws\.com/([a-z0-9-]+/)?AWSReservedSSO_[A-Za-z0-9_+=,.@-]+_[0-9a-f]+$`)

// s3Request is the request KMS authorized for S3 (README point 3), before the action is set.
type s3Request struct{ policy.Request }

func (f fact) request(principal, key string) s3Request {
	acct := accountOf(principal)
	ctx := map[string]string{
		"kms:ViaService":       "s3." + f.region + ".amazonaws.com",
		"kms:CallerAccount":    acct,
		"aws:PrincipalArn":     principal,
		"aws:PrincipalAccount": acct,
		"aws:ViaAWSService":    "true",
	}
	if f.directory {
		delete(ctx, "kms:ViaService") // undocumented for S3 Express One Zone
		ctx["kms:EncryptionContext:aws:s3express:arn"] = f.context
	} else if f.context != "" {
		ctx["kms:EncryptionContext:aws:s3:arn"] = f.context
	}
	session := f.session
	if session == principal {
		session = ""
	}
	return s3Request{policy.Request{Resource: key, Caller: policy.Caller{ARN: principal, SessionARN: session, Account: acct}, Context: ctx}}
}

func (r s3Request) with(action string) policy.Request {
	q := r.Request
	q.Action = action
	q.Context = maps.Clone(r.Context)
	return q
}

type probe struct {
	name  string
	req   policy.Request
	other bool // another principal of the same account: its own identity policies are not ours
}

// probes lists requests the fix must not newly allow (README "How a report is judged" 4).
func probes(base s3Request, actions []string, f fact) []probe {
	bucket, partition := f.bucket, f.partition
	var out []probe
	needed := func(a string) bool {
		return slices.ContainsFunc(actions, func(n string) bool { return strings.EqualFold(n, a) })
	}
	for _, a := range []string{"kms:PutKeyPolicy", "kms:CreateGrant", "kms:ScheduleKeyDeletion", "kms:Encrypt", "kms:ReEncryptFrom"} {
		if needed(a) {
			continue
		}
		out = append(out, probe{name: a + " via S3", req: base.with(a)})
		q := base.with(a)
		delete(q.Context, "kms:ViaService")
		q.Context["aws:ViaAWSService"] = "false"
		out = append(out, probe{name: a + " called directly", req: q})
	}
	for _, a := range actions {
		q := base.with(a)
		q.Resource = q.Resource[:strings.LastIndex(q.Resource, "/")+1] + "00000000-0000-4000-8000-000000000000"
		out = append(out, probe{name: a + " on another key", req: q})

		q = base.with(a)
		delete(q.Context, "kms:ViaService")
		q.Context["aws:ViaAWSService"] = "false"
		out = append(out, probe{name: a + " called directly (no kms:ViaService)", req: q})

		if bucket != "" {
			for _, b := range []string{bucket + "x", bucket + "-other", "amzn-s3-demo-unrelated"} {
				q = base.with(a)
				q.Context["kms:EncryptionContext:aws:s3:arn"] = "arn:" + partition + ":s3:::" + b + "/object"
				if f.directory {
					delete(q.Context, "kms:EncryptionContext:aws:s3:arn")
					q.Context["kms:EncryptionContext:aws:s3express:arn"] = strings.Replace(f.context, "bucket/"+bucket, "bucket/"+b, 1)
				}
				out = append(out, probe{name: a + " with bucket " + b + "'s encryption context", req: q})
			}
		}
		other := "arn:" + partition + ":iam::" + base.Caller.Account + ":role/some-other-role"
		q = base.with(a)
		q.Caller = policy.Caller{ARN: other, SessionARN: "arn:" + partition + ":sts::" + base.Caller.Account + ":assumed-role/some-other-role/s", Account: base.Caller.Account}
		q.Context["aws:PrincipalArn"] = other
		out = append(out, probe{name: a + " by another principal of account " + base.Caller.Account, req: q, other: true})
	}
	return out
}

// kmsInputs is what KMS consults: the world's key policy, grants and the principal's
// policies, plus the patches (a key the world does not know has only the patch's statements).
func kmsInputs(w *world.World, principal, key string, patches []finding.Patch) policy.KMSInputs {
	in := policy.KMSInputs{KeyAccount: accountOf(key)}
	if k := w.Key(key); k != nil {
		in.KeyPolicy = k.Policy
		for _, g := range k.Grants {
			pg := policy.Grant{Grantee: g.Grantee, Operations: g.Operations}
			if g.Constraints != nil {
				pg.EncryptionContextEquals = g.Constraints.EncryptionContextEquals
				pg.EncryptionContextSubset = g.Constraints.EncryptionContextSubset
			}
			in.Grants = append(in.Grants, pg)
		}
	}
	if p := w.Principal(principal); p != nil {
		for _, np := range p.Policies {
			in.Identity = append(in.Identity, policy.NamedDocument{Name: np.Name, Doc: np.Document})
		}
		in.Boundary = p.PermissionsBoundary
	}
	for _, p := range patches {
		switch p.Kind {
		case finding.KindIdentityPolicy:
			if p.Target == principal && p.Policy != nil {
				in.Identity = append(slices.Clone(in.Identity), policy.NamedDocument{Name: "patch " + p.Name, Doc: p.Policy})
			}
		case finding.KindKeyPolicyStatement:
			if p.Target == key && p.Statement != nil {
				base := in.KeyPolicy
				if base == nil {
					base = &policy.Document{Version: "2012-10-17"}
				}
				in.KeyPolicy = base.With(*p.Statement)
			}
		case finding.KindGrant:
			if p.Target == key && p.Grant != nil {
				in.Grants = append(slices.Clone(in.Grants), policy.Grant{Grantee: p.Grant.Grantee, Operations: p.Grant.Operations})
			}
		}
	}
	return in
}

// explain runs the sample the way `kmsfix explain --json --world` does and returns the
// reports and the JSON lines it would print.
func explain(t *testing.T, dir string) ([]finding.Report, []byte) {
	t.Helper()
	w := loadWorld(t, dir)
	path := filepath.Join(dir, "event.json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	items, err := cloudtrail.ReadAll(f, path)
	if err != nil {
		t.Fatalf("reading the event: %v", err)
	}
	var reports []finding.Report
	var lines bytes.Buffer
	for _, it := range items {
		r := engine.Explain(it, w)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("encoding the report of %s: %v", it.Source, err)
		}
		lines.Write(b)
		lines.WriteByte('\n')
		checkFields(t, b)
		// Judge the report as a reader of the JSON sees it.
		var back finding.Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decoding the report of %s: %v", it.Source, err)
		}
		reports = append(reports, back)
	}
	return reports, lines.Bytes()
}

// contractFields are the report fields of docs/contract.md section 3 that every finding carries
// (bucket and object only when known).
var contractFields = []string{"event_id", "diagnosis", "detail", "principal", "principal_account", "key",
	"key_account", "region", "actions", "patches", "auto_apply", "verified"}

// checkFields checks one JSON line has the contract's fields with their types.
func checkFields(t *testing.T, line []byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("report is not a JSON object: %v", err)
	}
	if _, ok := m["ignored"]; ok {
		if s, _ := m["ignored"].(string); s == "" {
			t.Errorf("ignored must be a non-empty reason: %s", line)
		}
		if _, ok := m["event_id"].(string); !ok {
			t.Errorf("ignored report without event_id: %s", line)
		}
		return
	}
	for _, f := range contractFields {
		v, ok := m[f]
		if !ok {
			t.Errorf("report lacks the contract field %q: %s", f, line)
			continue
		}
		var typeOK bool
		switch f {
		case "actions", "patches":
			_, typeOK = v.([]any)
		case "auto_apply", "verified":
			_, typeOK = v.(bool)
		default:
			_, typeOK = v.(string)
		}
		if !typeOK {
			t.Errorf("contract field %q has type %T: %s", f, v, line)
		}
	}
}

func loadWorld(t *testing.T, dir string) *world.World {
	t.Helper()
	w, err := world.Load(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	return w
}

func loadExpectations(t *testing.T, path string) []expectation {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raws []json.RawMessage
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &raws); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	} else {
		raws = []json.RawMessage{b}
	}
	out := make([]expectation, 0, len(raws))
	for i, raw := range raws {
		var e expectation
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields() // a misspelt field would silently check nothing
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: expectation %d: %v", path, i+1, err)
		}
		if e.Ignored == (e.Diagnosis != nil) {
			t.Fatalf("%s: expectation %d: exactly one of diagnosis and ignored: true must be set", path, i+1)
		}
		if e.Why == "" {
			t.Fatalf("%s: expectation %d: no why", path, i+1)
		}
		if e.Diagnosis != nil && !slices.Contains(finding.AllCodes, finding.Code(*e.Diagnosis)) {
			t.Fatalf("%s: expectation %d: %q is not a contract code", path, i+1, *e.Diagnosis)
		}
		out = append(out, e)
	}
	return out
}

// record is the part of a CloudTrail record (or an EventBridge event) the judge reads.
type record struct {
	ID      string          `json:"id"` // EventBridge envelope id
	Detail  json.RawMessage `json:"detail"`
	Records []record        `json:"Records"`
	Events  []struct {
		CloudTrailEvent string
	} `json:"Events"` // aws cloudtrail lookup-events output
	EventID      string `json:"eventID"`
	AWSRegion    string `json:"awsRegion"`
	UserIdentity struct {
		ARN string `json:"arn"`
	} `json:"userIdentity"`
	RequestParameters struct {
		EncryptionContext map[string]string `json:"encryptionContext"`
	} `json:"requestParameters"`
}

// records reads event.json into its CloudTrail records: a log file's Records, the records
// of lookup-events output, an envelope's detail (the envelope itself when detail is not a CloudTrail record), or the
// record itself.
func records(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top record
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	switch {
	case top.Records != nil:
		return top.Records
	case top.Events != nil:
		var out []record
		for i, ev := range top.Events {
			var rec record
			if err := json.Unmarshal([]byte(ev.CloudTrailEvent), &rec); err != nil {
				t.Fatalf("%s: Events[%d].CloudTrailEvent: %v", path, i, err)
			}
			out = append(out, rec)
		}
		return out
	case len(top.Detail) > 0:
		var inner record
		if err := json.Unmarshal(top.Detail, &inner); err != nil {
			t.Fatalf("%s: detail: %v", path, err)
		}
		if inner.EventID == "" {
			inner.EventID = top.ID // not a CloudTrail record: the event's own id
		}
		return []record{inner}
	}
	return []record{top}
}

func eventIDs(t *testing.T, path string) []string {
	var ids []string
	for _, r := range records(t, path) {
		if r.EventID == "" {
			t.Fatalf("%s: a record without eventID", path)
		}
		ids = append(ids, r.EventID)
	}
	return ids
}

func requestFacts(t *testing.T, path string) []fact {
	var out []fact
	for _, r := range records(t, path) {
		f := fact{session: r.UserIdentity.ARN, region: r.AWSRegion, context: r.RequestParameters.EncryptionContext["aws:s3:arn"]}
		if dir := r.RequestParameters.EncryptionContext["aws:s3express:arn"]; f.context == "" && dir != "" {
			// A directory bucket: arn:P:s3express:R:A:bucket/NAME (S3's user guide).
			if parts := strings.SplitN(dir, ":", 6); len(parts) == 6 && parts[2] == "s3express" && strings.HasPrefix(parts[5], "bucket/") {
				f.context, f.directory, f.partition = dir, true, parts[1]
				f.bucket = strings.TrimPrefix(parts[5], "bucket/")
			}
		}
		if parts := strings.SplitN(f.context, ":", 6); len(parts) == 6 && parts[2] == "s3" {
			f.partition = parts[1]
			f.bucket, f.object, _ = strings.Cut(parts[5], "/")
		}
		if f.bucket != "" && !f.directory && !cloudtrail.ValidBucketName(f.bucket, f.region) {
			// S3's naming rules: nothing may be built from a name S3 would refuse.
			f.context, f.bucket, f.object = "", "", ""
		}
		if parts := strings.SplitN(f.session, ":", 3); f.partition == "" && len(parts) == 3 {
			f.partition = parts[1]
		}
		out = append(out, f)
	}
	return out
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing: run go test ./internal/engine -run TestEvents -update", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (rewrite with -update if the change is intended):\n got: %s\nwant: %s", path, got, want)
	}
}

func samplesIn(t *testing.T, dir, prefix string) []sample {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the sample folder %s is missing (%v): TestEvents reads the repository's events/ folder", dir, err)
	}
	var out []sample
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		out = append(out, sample{name: prefix + "/" + e.Name(), dir: filepath.Join(dir, e.Name())})
	}
	if len(out) == 0 {
		t.Fatalf("no samples in %s", dir)
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func patchKinds(ps []finding.Patch) []string {
	var kinds []string
	for _, p := range ps {
		kinds = append(kinds, p.Kind)
	}
	return sortedSet(kinds)
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func sameSet(a, b []string) bool { return slices.Equal(sortedSet(a), sortedSet(b)) }

// grantOps are the grant operations for the needed actions ("kms:Decrypt" -> "Decrypt").
func grantOps(actions []string) []string {
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		out = append(out, strings.TrimPrefix(a, "kms:"))
	}
	return out
}

// accountOf returns the account field of an ARN.
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

func deref(s *string) string {
	if s == nil {
		return "<ignored>"
	}
	return *s
}

// TestJudgeCatchesBadPatches checks that the judge rejects reports a lax engine could write:
// a wildcard key, a missing kms:ViaService or bucket condition, a patch on the wrong target,
// an insufficient patch, a verified undetermined finding.
func TestJudgeCatchesBadPatches(t *testing.T) {
	const identitySample, keySample = "01-identity-policy-missing", "10-key-policy-missing"
	stmt := func(r *finding.Report) *policy.Statement {
		if r.Patches[0].Statement != nil {
			return r.Patches[0].Statement
		}
		return &r.Patches[0].Policy.Statement[0]
	}
	tests := []struct {
		name   string
		sample string
		mutate func(r *finding.Report)
		want   string
	}{
		{"wildcard key", identitySample, func(r *finding.Report) { stmt(r).Resource = policy.V("*") }, "on another key"},
		{"no kms:ViaService", identitySample, func(r *finding.Report) { delete(stmt(r).Condition, "StringEquals") }, "called directly"},
		{"ViaService of another Region", identitySample, func(r *finding.Report) {
			stmt(r).Condition["StringEquals"]["kms:ViaService"] = policy.V("s3.us-east-1.amazonaws.com")
		}, "kms:ViaService"},
		{"no bucket condition", identitySample, func(r *finding.Report) { delete(stmt(r).Condition, "StringLike") }, "encryption context"},
		{"prefix bucket pattern", identitySample, func(r *finding.Report) {
			stmt(r).Condition["StringLike"]["kms:EncryptionContext:aws:s3:arn"] = policy.List("arn:aws:s3:::amzn-s3-demo-orders*")
		}, "amzn-s3-demo-ordersx"},
		{"extra action", identitySample, func(r *finding.Report) { stmt(r).Action = policy.List("kms:Decrypt", "kms:Encrypt") }, "kms:Encrypt via S3"},
		{"wrong action", identitySample, func(r *finding.Report) { stmt(r).Action = policy.List("kms:GenerateDataKey") }, "want Allowed"},
		{"wrong target", identitySample, func(r *finding.Report) { r.Patches[0].Target = "arn:aws:iam::210987654321:role/orders-api" }, "targets"},
		{"wrong account", identitySample, func(r *finding.Report) { r.Patches[0].Account = "111122223333" }, "targets"},
		{"wrong kind", identitySample, func(r *finding.Report) { r.Patches[0].Kind = finding.KindKeyPolicyStatement }, "patch kinds"},
		{"verified undetermined", identitySample, func(r *finding.Report) { r.Diagnosis, r.Verified = finding.Undetermined, true }, "claims verified"},
		{"other event", identitySample, func(r *finding.Report) { r.EventID = "5c65ecf2-73ca-4ff1-b9d9-031bf0ee4222" }, "event_id"},
		{"wrong region", identitySample, func(r *finding.Report) { r.Region = "us-east-1" }, "region"},
		{"everyone in the key policy", keySample, func(r *finding.Report) { stmt(r).Principal = policy.AWSPrincipal("*") }, "exactly the principal"},
		{"account root in the key policy", keySample, func(r *finding.Report) {
			stmt(r).Principal = policy.AWSPrincipal("arn:aws:iam::305419896012:root")
		}, "exactly the principal"},
		{"key policy without conditions", keySample, func(r *finding.Report) { stmt(r).Condition = nil }, "called directly"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(repoRoot(t), "events", tc.sample)
			exp := loadExpectations(t, filepath.Join(dir, "expect.json"))[0]
			id := eventIDs(t, filepath.Join(dir, "event.json"))[0]
			w := loadWorld(t, dir)
			f := requestFacts(t, filepath.Join(dir, "event.json"))[0]
			reports, _ := explain(t, dir) // a fresh report each time: patches share documents
			if p := judge(reports[0], exp, id, w, f); len(p) > 0 {
				t.Fatalf("the sample's own report must pass the judge before it is broken: %q", p)
			}
			r := reports[0]
			tc.mutate(&r)
			problems := judge(r, exp, id, w, f)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("judge did not report %q; it said %q", tc.want, problems)
			}
		})
	}
}

// TestEventsCoverEveryCode: events/ holds at least one sample for every contract code.
func TestEventsCoverEveryCode(t *testing.T) {
	seen := map[finding.Code]bool{}
	for _, s := range samplesIn(t, filepath.Join(repoRoot(t), "events"), "events") {
		for _, e := range loadExpectations(t, filepath.Join(s.dir, "expect.json")) {
			if e.Diagnosis != nil {
				seen[finding.Code(*e.Diagnosis)] = true
			}
		}
	}
	for _, c := range finding.AllCodes {
		if !seen[c] {
			t.Errorf("no sample in events/ expects %s", c)
		}
	}
}
