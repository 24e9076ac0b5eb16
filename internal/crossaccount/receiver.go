package crossaccount

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/decision"
	"github.com/kmsfix/kmsfix/internal/diagnose"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/request"
	"github.com/kmsfix/kmsfix/internal/retry"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Enricher builds the world for a denial from live AWS (internal/enrich); in the key owner's
// account it reads the key's policy.
type Enricher interface {
	World(ctx context.Context, d *cloudtrail.Denial) *world.World
}

// CallerIdentityAPI tells the function its own account; *sts.Client satisfies it.
type CallerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Receiver accepts key-policy change requests in the key owner's account.
type Receiver struct {
	Enricher Enricher
	STS      CallerIdentityAPI
	// Region is the function's Region: keys elsewhere are refused (empty: not checked).
	Region string
	// TrustedAccounts may send requests (KMSFIX_TRUSTED_ACCOUNTS), and no other account: an
	// organization id (KMSFIX_TRUSTED_ORG_ID) only narrows the bus policy; it never widens
	// what the code accepts.
	TrustedAccounts []string
	// Sandbox lists the accounts where automatic fixes are allowed (KMSFIX_SANDBOX_ACCOUNTS).
	Sandbox []string
	// Window is how old a request's denial may be (KMSFIX_DEDUPE_WINDOW; 0: DefaultWindow):
	// the sender sends one request per finding per window, right after the denial.
	Window time.Duration
	// Seen remembers the denials requests were accepted for, so a replayed request is refused
	// (nil: this container only; the function uses TableSeenLog).
	Seen SeenLog
	// MaxStatements caps kmsfix's statements in one key policy (KMSFIX_MAX_KEY_STATEMENTS;
	// 0: DefaultMaxStatements).
	MaxStatements int
	Now           func() time.Time

	mu      sync.Mutex
	account string
	mem     MemorySeenLog
}

// Defaults of the receiver's limits.
const (
	DefaultWindow        = time.Hour
	DefaultMaxStatements = 5
	// clockSkew is how far in the future a denial time may be (clocks differ a little).
	clockSkew = 5 * time.Minute
)

// reject refuses a request for good: the error is retry.Permanent, its text the reason alone;
// the handler logs the reason and drops the event, never retrying it.
func reject(format string, a ...any) error { return retry.Permanent(fmt.Errorf(format, a...)) }

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	// A key ARN (never an alias): partition, Region, account, key id.
	keyARNRE = regexp.MustCompile(`^arn:(aws[a-z-]*):kms:([a-z0-9-]+):([0-9]{12}):key/([A-Za-z0-9-]+)$`)
	// A role (with its path) or user ARN: no wildcards, no session.
	principalRE = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::([0-9]{12}):(role|user)/([A-Za-z0-9+=,.@_/-]+)$`)
	// S3 bucket names: lower case, digits, dots and hyphens (no wildcard can pass).
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// DataKeyActions are the only actions a request may ask for: what S3 asks KMS for.
var DataKeyActions = []string{"kms:Decrypt", "kms:GenerateDataKey"}

// Receive validates one request event and, when it is accepted, returns the key owner's
// report (only the key-policy side, evaluated against the live key policy, with the merged
// policy), the denial it describes (for apply, which builds its levers from it), the world it
// was made from, and the evidence for the one decision of verified and
// auto_apply (pipeline.Live.Decide runs Access Analyzer and decides). A refused
// request is retry.Permanent (retry.Reason is why); any other error is transient (the event should be retried).
// A request whose statement the key policy no longer needs returns a report with Ignored set.
func (rc *Receiver) Receive(ctx context.Context, event []byte) (finding.Report, *cloudtrail.Denial, *world.World, decision.Evidence, error) {
	var env Envelope
	if err := json.Unmarshal(event, &env); err != nil {
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("malformed event: %v", err)
	}
	if env.Source != Source || env.DetailType != DetailType {
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("source %q, detail-type %q: want %q, %q", env.Source, env.DetailType, Source, DetailType)
	}
	own, err := rc.ownAccount(ctx)
	if err != nil {
		return finding.Report{}, nil, nil, decision.Evidence{}, err
	}
	sender := env.Account
	switch {
	case !accountRE.MatchString(sender):
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("the event's envelope names no sending account (account %q)", sender)
	case sender == own:
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("the request comes from this account (%s) itself; only other accounts' remediators send requests", own)
	case !slices.Contains(rc.TrustedAccounts, sender):
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("sending account %s is not trusted (KMSFIX_TRUSTED_ACCOUNTS)", sender)
	}
	var req Request
	if err := json.Unmarshal(env.Detail, &req); err != nil {
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("malformed detail from account %s: %v", sender, err)
	}
	f := req.Finding
	if err := checkRequest(req, sender, own, rc.Region); err != nil {
		return finding.Report{}, nil, nil, decision.Evidence{}, err
	}

	// The statement is rebuilt from the finding's fields and must be exactly what was sent.
	d := denialOf(f)
	want := patch.Build(d, patch.Sides{NeedKeyPolicy: true}, &world.World{})[0].Statement
	if why := CheckStatement(req.Statement, want); why != "" {
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("the requested statement from account %s is not least privilege: %s", sender, why)
	}

	now := rc.now()
	if err := rc.checkFresh(req, sender, now); err != nil {
		return finding.Report{}, nil, nil, decision.Evidence{}, err
	}

	w := rc.Enricher.World(ctx, d)
	k := w.Key(f.Key)
	switch {
	case slices.Contains(w.MissingKeys, f.Key):
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("key %s does not exist in account %s", f.Key, own)
	case k != nil && request.AWSManaged(d, k):
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("key %s is an AWS managed key: its policy cannot be changed", f.Key)
	}
	if k != nil && k.Policy != nil {
		n, max := kmsfixStatements(k.Policy.Statement, want.Sid), rc.maxStatements()
		if n >= max {
			return finding.Report{}, nil, nil, decision.Evidence{}, reject("key %s already has %d kmsfix statements (the cap is %d, KMSFIX_MAX_KEY_STATEMENTS); request from account %s refused", f.Key, n, max, sender)
		}
	}
	w.SandboxAccounts = slices.Clone(rc.Sandbox)
	rep, ev := rc.ownerReport(d, req, sender, own, w)
	// Last, once everything else accepted it: a request is accepted once per denial.
	seen := rc.Seen
	if seen == nil {
		seen = &rc.mem
	}
	first, err := seen.Accept(ctx, sender, req.DenialEventID, env.ID, now, now.Add(2*rc.window()))
	if err != nil {
		return finding.Report{}, nil, nil, decision.Evidence{}, err
	}
	if !first {
		return finding.Report{}, nil, nil, decision.Evidence{}, reject("a request for denial %s from account %s was accepted before (a replay)", req.DenialEventID, sender)
	}
	return rep, d, w, ev, nil
}

func (rc *Receiver) now() time.Time {
	if rc.Now != nil {
		return rc.Now().UTC()
	}
	return time.Now().UTC()
}

func (rc *Receiver) window() time.Duration {
	if rc.Window > 0 {
		return rc.Window
	}
	return DefaultWindow
}

func (rc *Receiver) maxStatements() int {
	if rc.MaxStatements > 0 {
		return rc.MaxStatements
	}
	return DefaultMaxStatements
}

// checkFresh refuses a request without the original denial's id and time, or whose denial is
// older than the window (or in the future): a request is made right after its denial.
func (rc *Receiver) checkFresh(req Request, sender string, now time.Time) error {
	f := req.Finding
	switch {
	case req.DenialEventID == "" || req.DenialTime == "":
		return reject("the request from account %s does not carry its denial's event id and time", sender)
	case req.DenialEventID != f.EventID || req.DenialTime != f.EventTime:
		return reject("the request's denial %s at %s is not its finding's (%s at %s)", req.DenialEventID, req.DenialTime, f.EventID, f.EventTime)
	}
	t, err := time.Parse(time.RFC3339, req.DenialTime)
	switch {
	case err != nil:
		return reject("the denial time %q is not an RFC 3339 time", req.DenialTime)
	case now.Sub(t) > rc.window():
		return reject("denial %s happened at %s, more than %s ago (KMSFIX_DEDUPE_WINDOW): too old to act on", req.DenialEventID, req.DenialTime, rc.window())
	case t.Sub(now) > clockSkew:
		return reject("denial %s is dated %s, in the future", req.DenialEventID, req.DenialTime)
	}
	return nil
}

// kmsfixStatements counts the statements kmsfix added to a key policy (Sid KmsfixS3…),
// other than sid itself.
func kmsfixStatements(sts []policy.Statement, sid string) int {
	n := 0
	for _, s := range sts {
		if strings.HasPrefix(s.Sid, "KmsfixS3") && s.Sid != sid {
			n++
		}
	}
	return n
}

// checkRequest checks the request's fields: who the envelope says sent it, that the finding
// is a cross-account denial of a named principal of that account, on a key of this account,
// through S3, for one bucket, for data-key actions only.
func checkRequest(req Request, sender, own, region string) error {
	f := req.Finding
	switch {
	case req.Version < 1:
		return reject("schema version %d from account %s: want 1 or later", req.Version, sender)
	case req.SenderAccount != "" && req.SenderAccount != sender:
		return reject("the detail claims sender account %s but EventBridge delivered it from account %s", req.SenderAccount, sender)
	case f.PrincipalAccount != sender:
		return reject("the finding's principal_account %q is not the sending account %s", f.PrincipalAccount, sender)
	case f.Diagnosis != finding.CrossAccountAccessMissing:
		return reject("diagnosis %q: only %s findings are accepted", f.Diagnosis, finding.CrossAccountAccessMissing)
	}
	m := keyARNRE.FindStringSubmatch(f.Key)
	switch {
	case m == nil:
		return reject("the finding's key %q is not a KMS key ARN", f.Key)
	case m[3] != own || f.KeyAccount != own:
		return reject("key %s (key_account %q) is not in this account (%s)", f.Key, f.KeyAccount, own)
	case region != "" && m[2] != region:
		return reject("key %s is in Region %s; this remediator serves %s", f.Key, m[2], region)
	case (req.Key != "" && req.Key != f.Key) || (req.KeyAccount != "" && req.KeyAccount != f.KeyAccount):
		return reject("the request names key %s (%s) but its finding names %s (%s)", req.Key, req.KeyAccount, f.Key, f.KeyAccount)
	}
	p := principalRE.FindStringSubmatch(f.Principal)
	switch {
	case strings.ContainsAny(f.Principal, "*?"):
		return reject("the finding's principal %q has a wildcard", f.Principal)
	case p == nil:
		return reject("the finding's principal %q is not an IAM role or user ARN", f.Principal)
	case p[2] != sender:
		return reject("the finding's principal %s is not in the sending account %s", f.Principal, sender)
	case p[1] != m[1]:
		return reject("the principal's partition %s is not the key's %s", p[1], m[1])
	case !regionRE.MatchString(f.Region):
		return reject("the finding's region %q is not an AWS Region", f.Region)
	case !bucketRE.MatchString(f.Bucket) || strings.Contains(f.Bucket, ".."):
		return reject("the finding's bucket %q is not an S3 bucket name; a request must be limited to one bucket", f.Bucket)
	case len(f.Actions) == 0:
		return reject("the finding names no KMS action")
	}
	for _, a := range f.Actions {
		if !slices.Contains(DataKeyActions, a) {
			return reject("the finding's action %q is not one of %s", a, strings.Join(DataKeyActions, ", "))
		}
	}
	return nil
}

// denialOf is the request the finding describes, as KMS saw it: the principal's call through
// S3 in the finding's Region, with the bucket's (S3 Bucket Keys) or the object's context.
// This is the one place a denial is rebuilt from a report, and it is inherent: the key owner
// receives only the caller's finding as JSON (the CloudTrail record stays in the caller's
// account), and it validates every field before this runs (checkRequest). Receive returns the
// rebuilt denial with the report, so apply never rebuilds it again.
func denialOf(f finding.Report) *cloudtrail.Denial {
	m := keyARNRE.FindStringSubmatch(f.Key)
	partition, keyRegion := m[1], m[2]
	ctx := "arn:" + partition + ":s3:::" + f.Bucket
	if f.Object != "" {
		ctx += "/" + f.Object
	}
	kind := cloudtrail.KindRole
	if strings.Contains(f.Principal, ":user/") {
		kind = cloudtrail.KindUser
	}
	// Whether IAM can edit the principal decides auto_apply for every patch kind
	// (decision.Decide; docs/contract.md "Principals never changed automatically").
	editable, notEditable := true, ""
	switch {
	case strings.Contains(f.Principal, ":role/aws-reserved/sso.amazonaws.com/"):
		kind, editable, notEditable = cloudtrail.KindSSORole, false, "an IAM Identity Center role: change its permission set"
	case strings.Contains(f.Principal, ":role/aws-service-role/"):
		kind, editable, notEditable = cloudtrail.KindServiceLinkedRole, false, "a service-linked role"
	}
	actions := slices.Clone(f.Actions)
	return &cloudtrail.Denial{
		EventID:    f.EventID,
		EventTime:  f.EventTime,
		EventName:  f.EventName,
		Region:     f.Region,
		ErrorCode:  f.ErrorCode,
		KeyARN:     f.Key,
		KeyAccount: f.KeyAccount,
		KeyRegion:  keyRegion,
		Partition:  partition,
		ContextARN: ctx,
		Bucket:     f.Bucket,
		Object:     f.Object,
		BucketKey:  f.Object == "",
		Actions:    actions,
		Identity: cloudtrail.Identity{
			Kind:         kind,
			Editable:     editable,
			NotEditable:  notEditable,
			PrincipalARN: f.Principal,
			Account:      f.PrincipalAccount,
			SessionARN:   f.SessionARN,
		},
	}
}

// ownerReport is the key owner's finding: the key-policy side only, evaluated with the live
// key policy on the assumption that the caller's account applies its half (the identity
// policy the caller's own notification carries).
func (rc *Receiver) ownerReport(d *cloudtrail.Denial, req Request, sender, own string, w *world.World) (finding.Report, decision.Evidence) {
	f := req.Finding
	// The caller's half, as its remediator proposes it: the principal is in another account,
	// so its real policies are not readable here.
	ident := patch.Build(d, patch.Sides{NeedIdentity: true}, w)[0]
	if w.Principals == nil {
		w.Principals = map[string]*world.Principal{}
	}
	w.Principals[d.Identity.PrincipalARN] = &world.Principal{Policies: []world.NamedPolicy{{
		Name: "assumed: " + ident.Name + " (the caller's half, applied in account " + sender + ")", Document: ident.Policy}}}

	rep := finding.Report{
		EventID:          f.EventID,
		Diagnosis:        finding.CrossAccountAccessMissing,
		Principal:        f.Principal,
		PrincipalAccount: f.PrincipalAccount,
		Key:              f.Key,
		KeyAccount:       own,
		Region:           f.Region,
		Bucket:           f.Bucket,
		Object:           f.Object,
		Actions:          d.Actions,
		Severity:         finding.CrossAccountAccessMissing.Severity(),
		EventTime:        f.EventTime,
		EventName:        f.EventName,
		ErrorCode:        f.ErrorCode,
		SessionARN:       f.SessionARN,
		PrincipalType:    string(d.Identity.Kind),
		Fingerprint:      finding.FingerprintOf(f.Principal, f.Key, d.Actions, string(finding.CrossAccountAccessMissing), f.Bucket),
	}
	if k := w.Key(f.Key); k != nil && len(k.Aliases) > 0 {
		rep.KeyAlias = k.Aliases[0]
	}
	keyKnown := w.Key(f.Key) != nil && w.Key(f.Key).Policy != nil
	if keyKnown && patch.Verify(d, w, nil).AllowedAfter {
		rep.Ignored = fmt.Sprintf("key-policy change request %s from account %s: the key policy already allows %s to %s through S3; nothing to change",
			req.RequestID, sender, f.Principal, strings.Join(d.Actions, " and "))
		return rep, decision.Evidence{}
	}
	rep.Patches = patch.Build(d, patch.Sides{NeedKeyPolicy: true}, w)
	ev := decision.Evidence{
		Code: finding.CrossAccountAccessMissing, KnownEnough: keyKnown, Patches: rep.Patches,
		Verification: patch.Verify(d, w, rep.Patches), IsSandbox: w.IsSandbox,
		Principal: d.Identity.PrincipalARN, Editable: d.Identity.Editable, NotEditable: d.Identity.NotEditable,
	}
	// The opt-in tag decides auto_apply (decision.Decide); nil tags: not read.
	ev.Key = f.Key
	ev.TagsFrom(w)
	rep.Detail = fmt.Sprintf("Account %s's remediator asks for this key-policy statement (request %s): %s in account %s was refused %s on key %s through S3 for bucket %s, and a denied cross-account call is logged only in the caller's account. "+
		"The statement names only that principal, only those actions, only through S3 in %s and only for that bucket; the caller's account adds its identity policy itself.",
		sender, req.RequestID, diagnose.Describe(d.Identity), sender, strings.Join(d.Actions, " and "), f.Key, f.Bucket, d.Region)
	rep.Escalate = fmt.Sprintf("the key's administrators in account %s", own)
	if !keyKnown {
		ev.Unknown = []string{"the key policy (GetKeyPolicy)"}
		rep.Unknown = append(rep.Unknown, ev.Unknown...)
	}
	// verified and auto_apply are decided by internal/decision, after Access Analyzer
	// (pipeline.Live.Decide in the handler).
	return rep, ev
}

// ownAccount asks STS once per container; a failure is retried with the event.
func (rc *Receiver) ownAccount(ctx context.Context) (string, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.account != "" {
		return rc.account, nil
	}
	out, err := rc.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("crossaccount: this account's id (sts:GetCallerIdentity): %w", err)
	}
	rc.account = aws.ToString(out.Account)
	return rc.account, nil
}
