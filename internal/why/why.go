// Package why starts where a user meets an SSE-KMS denial: an object's address and their own
// credentials, not a CloudTrail record. It automates the AWS Knowledge Center procedure (who am
// I, HeadObject for SSEKMSKeyId, DescribeKey, the two policies) and turns what it read into
// the same Denial a CloudTrail record gives, so the diagnosis, the patch and its verification
// are the ones `kmsfix explain` prints. What it cannot read it names, with the permission that
// would allow the read, and never guesses.
package why

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kmsfix/kmsfix/internal/arns"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/diagnose"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/request"
	"github.com/kmsfix/kmsfix/internal/s3read"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Actions a user can ask about.
const (
	ActionGet  = "get"
	ActionPut  = "put"
	ActionCopy = "copy"
)

// The KMS actions S3 needs for the caller: to download, kms:Decrypt; to upload,
// kms:GenerateDataKey (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html,
// "Permissions"). A copy needs both: Decrypt on the source's key, GenerateDataKey on the
// destination's.
const (
	kmsDecrypt         = "kms:Decrypt"
	kmsGenerateDataKey = "kms:GenerateDataKey"
)

// LookupAPI is CloudTrail's LookupEvents.
type LookupAPI interface {
	LookupEvents(context.Context, *awsct.LookupEventsInput, ...func(*awsct.Options)) (*awsct.LookupEventsOutput, error)
}

// Clients are the AWS clients why reads with.
type Clients struct {
	S3         s3read.API
	KMS        enrich.KMSAPI
	IAM        enrich.IAMAPI
	STS        enrich.STSAPI
	CloudTrail LookupAPI
	// Live is the pipeline the Lambda and `scan --live` run (enrich, explain, Access Analyzer
	// validation, the one decision of verified); nil: an enricher over the clients above and
	// the engine alone (no validation, so no patch is verified).
	Live *pipeline.Live
}

// explainer turns a denial and its world into the report: the live pipeline's ExplainIn, or
// the engine alone (offline).
type explainer func(cloudtrail.Item, *world.World) finding.Report

// live returns the enricher and explainer of the clients.
func (c *Clients) live(ctx context.Context) (pipeline.Enricher, explainer) {
	if c.Live != nil {
		return c.Live.Enricher, func(it cloudtrail.Item, w *world.World) finding.Report { return c.Live.ExplainIn(ctx, it, w) }
	}
	return enrich.New(c.KMS, c.IAM, c.STS, enrich.Options{TTL: time.Hour, CallTimeout: 10 * time.Second}), engine.Explain
}

// Request is what the user asked.
type Request struct {
	Bucket, Key, VersionID string
	Action                 string // get (default), put, copy
	DestBucket, DestKey    string // for copy
	// As is the principal to diagnose (an IAM role or user ARN, or an STS session ARN); empty:
	// the caller. Only the caller's own access can be reproduced.
	As string
	// Region is the Region the client talks to: the bucket's, and kms:ViaService's.
	Region string
	// Lookback is how far back CloudTrail is searched for KMS's own message (default 15m).
	Lookback time.Duration
}

// Verdict is the answer, and decides the exit code.
type Verdict string

const (
	// Allowed: the request works now (reproduced), or every policy kmsfix read allows it.
	Allowed Verdict = "allowed"
	// NotKMS: the object or bucket is not encrypted with KMS; KMS cannot be the cause.
	NotKMS Verdict = "kms-not-involved"
	// S3Access: S3 itself refused HeadObject to the caller; the problem is S3 access, not KMS.
	S3Access Verdict = "s3-access-denied"
	// Diagnosed: a diagnosis with its fix (a code other than undetermined).
	Diagnosed Verdict = "diagnosis"
	// Undetermined: what kmsfix could read does not decide it; Refused says what would.
	Undetermined Verdict = "undetermined"
)

// ExitCode is the documented exit code of a verdict: 0 allowed now (or KMS not involved),
// 1 a diagnosis, 2 could not decide. 3 (usage or AWS error) is the command's.
func (v Verdict) ExitCode() int {
	switch v {
	case Allowed, NotKMS:
		return 0
	case S3Access, Diagnosed:
		return 1
	}
	return 2
}

// Result is what why found.
type Result struct {
	Verdict Verdict `json:"verdict"`
	// Principal is the identity diagnosed, and Source how kmsfix knows it
	// ("sts:GetCallerIdentity" or "--as").
	Principal string `json:"principal"`
	Source    string `json:"principal_source"`
	Steps     []Step `json:"steps"`
	// Refused lists every read that failed, each naming the permission that would allow it.
	Refused []string `json:"refused,omitempty"`
	// NotSeen lists the layers kmsfix cannot read that can still deny an allowed request.
	NotSeen []string `json:"not_seen,omitempty"`
}

// Step is one KMS request the S3 call implies: the object's key for a read, the destination
// bucket's default key for a write.
type Step struct {
	Verdict Verdict `json:"verdict"`
	// What the step is: "read s3://b/k" or "write s3://b/k".
	What   string `json:"what"`
	Action string `json:"action"` // kms:Decrypt or kms:GenerateDataKey
	// Object is HeadObject's answer for a read; Default the bucket's default encryption for a
	// write.
	Object  *s3read.Object  `json:"object,omitempty"`
	Default *s3read.Default `json:"default_encryption,omitempty"`
	KeyARN  string          `json:"key,omitempty"`
	Key     *KeyFacts       `json:"key_facts,omitempty"`
	// Evidence is what AWS answered: S3's error for the 1-byte GetObject, KMS's own message
	// from CloudTrail.
	Evidence []string `json:"evidence,omitempty"`
	// Note says why the step has no report (allowed, KMS not involved, S3 refused).
	Note   string          `json:"note,omitempty"`
	Report *finding.Report `json:"report,omitempty"`
}

// KeyFacts is what DescribeKey and ListAliases said.
type KeyFacts struct {
	State       string   `json:"state,omitempty"`
	Manager     string   `json:"manager,omitempty"`
	Region      string   `json:"region,omitempty"`
	MultiRegion bool     `json:"multi_region,omitempty"`
	Aliases     []string `json:"aliases,omitempty"`
	Missing     bool     `json:"missing,omitempty"`
}

// FatalError is an AWS or usage error that stops why before any answer (exit 3).
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// Why runs the procedure. It returns a *FatalError when it cannot start (no identity, object
// missing, network); everything else is in the Result.
func Why(ctx context.Context, c Clients, req Request, now time.Time) (*Result, error) {
	if req.Action == "" {
		req.Action = ActionGet
	}
	if req.Lookback <= 0 {
		req.Lookback = 15 * time.Minute
	}
	r := &run{c: c, req: req, now: now, res: &Result{}}
	if err := r.who(ctx); err != nil {
		return nil, err
	}
	var steps []func(context.Context) (Step, error)
	switch req.Action {
	case ActionGet:
		steps = append(steps, r.read)
	case ActionPut:
		steps = append(steps, func(ctx context.Context) (Step, error) { return r.write(ctx, req.Bucket, req.Key) })
	case ActionCopy:
		steps = append(steps, r.read, func(ctx context.Context) (Step, error) { return r.write(ctx, req.DestBucket, req.DestKey) })
	default:
		return nil, &FatalError{fmt.Errorf("--action must be get, put or copy, not %q", req.Action)}
	}
	r.enr, r.explain = c.live(ctx)
	for _, step := range steps {
		s, err := step(ctx)
		if err != nil {
			return nil, err
		}
		r.res.Steps = append(r.res.Steps, s)
		if s.Verdict == S3Access {
			break // S3 refused the read itself: nothing about KMS can be learned from here
		}
	}
	r.res.Verdict = overall(r.res.Steps)
	if r.res.Verdict == Allowed && !r.reproduced() {
		r.res.NotSeen = notSeen
	}
	r.res.Refused = dedupe(r.res.Refused)
	return r.res, nil
}

// notSeen are the layers no read shows (SCPs and RCPs live in AWS
// Organizations, session policies in the session, VPC endpoint policies on the endpoint).
var notSeen = []string{
	"service control policies (SCP)", "resource control policies (RCP)",
	"session policies", "VPC endpoint policies",
}

// overall is the worst step: a diagnosis or an S3 refusal beats undetermined, which beats
// allowed and KMS not involved.
func overall(steps []Step) Verdict {
	rank := map[Verdict]int{NotKMS: 0, Allowed: 1, Undetermined: 2, Diagnosed: 3, S3Access: 4}
	v := NotKMS
	for _, s := range steps {
		if rank[s.Verdict] > rank[v] {
			v = s.Verdict
		}
	}
	return v
}

type run struct {
	c       Clients
	req     Request
	now     time.Time
	res     *Result
	enr     pipeline.Enricher
	explain explainer

	id      cloudtrail.Identity
	self    bool // diagnosing the caller's own credentials: the denial can be reproduced
	account string
	probed  bool
}

func (r *run) refused(what string) { r.res.Refused = append(r.res.Refused, what) }

func (r *run) reproduced() bool { return r.probed }

// who names the principal: the caller from STS, or --as.
func (r *run) who(ctx context.Context) error {
	out, err := r.c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	switch {
	case err != nil && r.req.As == "":
		return &FatalError{fmt.Errorf("sts:GetCallerIdentity: %w (kmsfix why needs the caller's identity; give --as ARN to diagnose another principal)", err)}
	case err != nil:
		r.refused("sts:GetCallerIdentity: " + errText(err))
	default:
		r.account = aws.ToString(out.Account)
	}
	arn := r.req.As
	r.res.Source = "--as"
	if arn == "" {
		arn, r.self = aws.ToString(out.Arn), true
		r.res.Source = "sts:GetCallerIdentity"
	}
	r.id = cloudtrail.IdentityFromARN(arn)
	if r.id.Kind == cloudtrail.KindUnknown && r.req.As != "" {
		return &FatalError{fmt.Errorf("--as %q is not an IAM role, IAM user or STS session ARN", arn)}
	}
	if r.id.PathUnknown && r.id.Kind != cloudtrail.KindSSORole {
		r.rolePath(ctx)
	}
	r.res.Principal = r.id.PrincipalARN
	if r.res.Principal == "" {
		r.res.Principal = arn
	}
	return nil
}

// rolePath finds the role's path, which a session ARN leaves out, so a fix names the role
// exactly (iam:GetRole; only in the caller's own account).
func (r *run) rolePath(ctx context.Context) {
	if r.account == "" || r.id.Account != r.account {
		return
	}
	out, err := r.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: &r.id.Name})
	if err != nil {
		return // the enricher's own iam:GetRole names the refusal; the fix then assumes path /
	}
	if out.Role != nil && out.Role.Arn != nil {
		r.id.PrincipalARN, r.id.PathUnknown, r.id.Note = aws.ToString(out.Role.Arn), false, ""
	}
}

// read is the download step: HeadObject, then the object's key.
func (r *run) read(ctx context.Context) (Step, error) {
	q := r.req
	s := Step{What: "read " + s3read.URL(q.Bucket, q.Key), Action: kmsDecrypt}
	obj, err := s3read.HeadObject(ctx, r.c.S3, q.Bucket, q.Key, q.VersionID)
	var ref *s3read.Refused
	switch {
	case errors.As(err, &ref) && ref.Denied():
		r.refused(ref.Error())
		if r.self {
			s.Verdict = S3Access
			s.Note = fmt.Sprintf("S3 refused HeadObject to %s: the problem is S3 access (%s on arn:aws:s3:::%s/%s, the bucket policy, or an S3 access point or VPC endpoint policy), not KMS; kmsfix stops here.", r.id.SessionARN, ref.Permission, q.Bucket, q.Key)
		} else {
			s.Verdict = Undetermined
			s.Note = fmt.Sprintf("S3 refused HeadObject to the credentials running kmsfix, so the object's key is unknown; run it with %s on the object.", ref.Permission)
		}
		return s, nil
	case err != nil:
		return s, &FatalError{err}
	}
	s.Object = &obj
	if !s3read.UsesKMS(obj.SSE) {
		return r.notKMS(ctx, s, fmt.Sprintf("the object is stored with %s: S3 does not call KMS for it", sseName(obj.SSE)))
	}
	contextARN := "arn:aws:s3:::" + q.Bucket + "/" + q.Key
	if obj.BucketKey {
		contextARN = "arn:aws:s3:::" + q.Bucket
	}
	d := r.denial(obj.KMSKeyID, kmsDecrypt, q.Bucket, q.Key, contextARN, obj.BucketKey)
	s.KeyARN = d.KeyARN
	if r.self {
		r.probed = true
		perr := s3read.Probe(ctx, r.c.S3, q.Bucket, q.Key, q.VersionID)
		if perr == nil {
			s.Verdict, s.Note = Allowed, "GetObject of the first byte succeeded: the read is allowed now."
			return s, nil
		}
		if !errors.As(perr, &ref) || ref.Status == 0 {
			return s, &FatalError{perr}
		}
		s.Evidence = append(s.Evidence, fmt.Sprintf("S3 GetObject (bytes=0-0): %s: %s", ref.Code, ref.Message))
		d.EventTime = r.now.Format(time.RFC3339)
		d.ErrorCode = ref.Code
		d.Message = cloudtrail.Classify(ref.Code, ref.Message)
	}
	return r.decide(ctx, s, d)
}

// write is the upload step: the bucket's default encryption names the key S3 will ask for a
// data key. A request that names its own key (x-amz-server-side-encryption-aws-kms-key-id)
// is not covered.
func (r *run) write(ctx context.Context, bucket, key string) (Step, error) {
	s := Step{What: "write " + s3read.URL(bucket, key), Action: kmsGenerateDataKey}
	def, err := s3read.DefaultEncryption(ctx, r.c.S3, bucket)
	var ref *s3read.Refused
	switch {
	case errors.As(err, &ref) && ref.Denied():
		r.refused(ref.Error())
		s.Verdict = Undetermined
		s.Note = fmt.Sprintf("the default encryption of s3://%s could not be read, so the key a write uses is unknown (needs %s)", bucket, ref.Permission)
		return s, nil
	case err != nil:
		return s, &FatalError{err}
	}
	s.Default = &def
	if !s3read.UsesKMS(def.SSE) {
		return r.notKMS(ctx, s, fmt.Sprintf("s3://%s encrypts new objects with %s by default: S3 does not call KMS for a write that names no key", bucket, sseName(def.SSE)))
	}
	keyRef := def.KMSKeyID
	if keyRef == "" {
		keyRef = "alias/aws/s3" // the bucket owner's AWS managed key
	}
	keyARN, facts := r.resolveKey(ctx, keyRef)
	if keyARN == "" {
		s.Verdict = Undetermined
		s.Key = facts
		if facts != nil && facts.Missing {
			s.Verdict = Diagnosed
		}
		s.Note = fmt.Sprintf("the default key %q of s3://%s could not be resolved to a key ARN", keyRef, bucket)
		if facts != nil && facts.Missing {
			s.Note = fmt.Sprintf("the default key %q of s3://%s does not exist in %s: every write that names no key fails", keyRef, bucket, r.req.Region)
			rep := finding.Report{Diagnosis: finding.KeyNotFound, Detail: s.Note, Bucket: bucket, Region: r.req.Region,
				Actions: []string{kmsGenerateDataKey}, Principal: r.id.PrincipalARN, Severity: finding.KeyNotFound.Severity(),
				Advice: []string{quote.Command("aws", "s3api", "put-bucket-encryption", "--bucket", bucket, "--server-side-encryption-configuration",
					fmt.Sprintf(`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"<key ARN in %s>"},"BucketKeyEnabled":true}]}`, r.req.Region))}}
			s.Report = &rep
		}
		return s, nil
	}
	contextARN := "arn:aws:s3:::" + bucket + "/" + key
	if def.BucketKey {
		contextARN = "arn:aws:s3:::" + bucket
	}
	d := r.denial(keyARN, kmsGenerateDataKey, bucket, key, contextARN, def.BucketKey)
	if keyRef == "alias/aws/s3" {
		d.KeyRef = keyRef
	}
	s.KeyARN = d.KeyARN
	return r.decide(ctx, s, d)
}

// notKMS ends a step whose object or bucket does not use KMS. For the caller's own read, a
// refused first-byte GetObject then is S3 access.
func (r *run) notKMS(ctx context.Context, s Step, why string) (Step, error) {
	s.Verdict, s.Note = NotKMS, why+"; KMS is not involved."
	if !r.self || s.Object == nil {
		return s, nil
	}
	o := s.Object
	r.probed = true
	err := s3read.Probe(ctx, r.c.S3, o.Bucket, o.Key, o.VersionID)
	var ref *s3read.Refused
	if errors.As(err, &ref) && ref.Denied() {
		s.Verdict = S3Access
		s.Evidence = append(s.Evidence, fmt.Sprintf("S3 GetObject (bytes=0-0): %s: %s", ref.Code, ref.Message))
		s.Note = why + "; S3 refused the read itself, so the problem is S3 access, not KMS."
	}
	return s, nil
}

// resolveKey turns a key reference (ARN, id, alias) into the key ARN with DescribeKey.
func (r *run) resolveKey(ctx context.Context, ref string) (string, *KeyFacts) {
	if strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":key/") {
		return ref, nil
	}
	out, err := r.c.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &ref})
	if err != nil {
		var missing *kmstypes.NotFoundException
		if errors.As(err, &missing) {
			return "", &KeyFacts{Missing: true}
		}
		r.refused(fmt.Sprintf("kms:DescribeKey %s: %s", ref, errText(err)))
		return "", nil
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

// denial is the Denial a CloudTrail record of this request would give.
func (r *run) denial(keyARN, action, bucket, key, contextARN string, bucketKey bool) *cloudtrail.Denial {
	name := strings.TrimPrefix(action, "kms:")
	d := &cloudtrail.Denial{
		EventName: name, Region: r.req.Region, RecipientAccount: r.account,
		Identity: r.id, KeyARN: keyARN,
		KeyAccount: arns.Account(keyARN), KeyRegion: arns.Region(keyARN), Partition: arns.Partition(keyARN),
		ContextARN: contextARN, Bucket: bucket, BucketKey: bucketKey,
		EncryptionContext: map[string]string{"aws:s3:arn": contextARN},
		InvokedBy:         "AWS Internal",
		Actions:           []string{action},
		Message:           cloudtrail.Message{Kind: cloudtrail.MsgUnknown},
	}
	if !bucketKey {
		d.Object = key
	}
	return d
}

// decide reads the world for the request and decides it with the engine `explain` uses.
func (r *run) decide(ctx context.Context, s Step, d *cloudtrail.Denial) (Step, error) {
	refusedNow := d.ErrorCode != ""
	if ev, ok := r.fromCloudTrail(ctx, d); ok {
		s.Evidence = append(s.Evidence, ev)
		refusedNow = true
	}
	w := r.enr.World(ctx, d)
	for _, u := range w.Unreadable {
		r.refused(u)
	}
	s.Key = keyFacts(d, w)
	s.Verdict, s.Note, s.Report = judge(d, w, refusedNow, r.explain)
	return s, nil
}

// judge decides one request with the world. refused says AWS showed it refused (S3's answer
// to the caller's own read, or KMS's CloudTrail record): the engine then explains that denial.
// Otherwise the request is evaluated first, and only what the policies read refuse is
// reported as a diagnosis; what an unread policy could decide stays undetermined, with the
// engine's unverified proposal attached.
func judge(d *cloudtrail.Denial, w *world.World, refused bool, explain explainer) (Verdict, string, *finding.Report) {
	if !refused {
		v, unknown := allowedBy(d, w)
		switch v {
		case Allowed:
			return Allowed, fmt.Sprintf("the key policy and the identity policies kmsfix read allow %s %s with this key", diagnose.Describe(d.Identity), d.Actions[0]), nil
		case Undetermined:
			rep := explain(cloudtrail.Item{Denial: d}, w)
			if rep.Diagnosis != finding.Undetermined && !rep.Diagnosis.PolicyFixable() {
				// A fact, not a policy reading: the principal (root), the key's manager or state.
				return Diagnosed, "", &rep
			}
			note := "the policies kmsfix could read do not decide the request; the proposal below is not verified"
			if len(unknown) > 0 {
				note = "the answer rests on condition keys whose values kmsfix cannot know (" + strings.Join(unknown, ", ") + "); the proposal below is not verified"
			}
			return Undetermined, note, &rep
		}
	}
	rep := explain(cloudtrail.Item{EventID: d.EventID, Denial: d}, w)
	if rep.Diagnosis == finding.Undetermined {
		return Undetermined, "", &rep
	}
	return Diagnosed, "", &rep
}

// allowedBy evaluates the request with the world: Allowed when the key is usable and both the
// key policy and the identity side are known and allow; Diagnosed when something known refuses
// it; Undetermined when an unknown part could decide either way.
func allowedBy(d *cloudtrail.Denial, w *world.World) (Verdict, []string) {
	if w.KeyMissing(d.KeyARN) || (d.KeyRegion != "" && d.Region != "" && d.KeyRegion != d.Region) {
		return Diagnosed, nil
	}
	k := w.Key(d.KeyARN)
	if k != nil && k.State != "" && k.State != world.StateEnabled {
		return Diagnosed, nil
	}
	ins := request.Inputs(d, w)
	if ins.KeyPolicy == nil {
		ins.KeyPolicy = request.KeyPolicy(d, k) // an AWS managed key's fixed policy
	}
	p := w.Principal(d.Identity.PrincipalARN)
	res := policy.AuthorizeKMS(request.For(d, w, d.Actions[0]), ins)
	switch {
	case res.Undetermined():
		return Undetermined, res.Unknown // the answer rests on condition values nobody read
	case res.Decision == policy.ExplicitDeny:
		return Diagnosed, nil
	case res.Decision == policy.Allow && ins.KeyPolicy != nil && p != nil && k != nil && k.State == world.StateEnabled:
		// Both sides read (an unread permissions boundary could cap even a key-policy
		// statement naming a role), and the key usable.
		return Allowed, nil
	case ins.KeyPolicy != nil && p != nil:
		return Diagnosed, nil // both sides known and no allow: an implicit deny the engine explains
	case ins.KeyPolicy != nil && !res.KeyPolicyAdmits():
		return Diagnosed, nil // the key policy alone already refuses
	}
	return Undetermined, nil
}

// fromCloudTrail looks for KMS's own record of this refusal (LookupEvents by the key's ARN over
// the last minutes) and copies its message, event id and time into d. CloudTrail delivers events
// minutes after the call, so not finding one says nothing.
func (r *run) fromCloudTrail(ctx context.Context, d *cloudtrail.Denial) (string, bool) {
	if r.c.CloudTrail == nil {
		return "", false
	}
	in := &awsct.LookupEventsInput{
		StartTime:        aws.Time(r.now.Add(-r.req.Lookback)),
		EndTime:          aws.Time(r.now.Add(time.Minute)),
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: &d.KeyARN}},
		MaxResults:       aws.Int32(50),
	}
	out, err := r.c.CloudTrail.LookupEvents(ctx, in)
	if err != nil {
		r.refused("cloudtrail:LookupEvents (KMS's own message for the refusal): " + errText(err))
		return "", false
	}
	for _, ev := range out.Events { // newest first
		it, perr := cloudtrail.Parse([]byte(aws.ToString(ev.CloudTrailEvent)))
		if perr != nil || it.Denial == nil || !sameRequest(it.Denial, d) {
			continue
		}
		rec := it.Denial
		d.EventID, d.EventTime, d.ErrorCode, d.Message, d.Record = rec.EventID, rec.EventTime, rec.ErrorCode, rec.Message, rec.Record
		if rec.Identity.PrincipalARN != "" && !rec.Identity.PathUnknown {
			d.Identity = rec.Identity // the record names the role with its path and the session
		}
		if rec.VPCEndpointID != "" {
			d.VPCEndpointID = rec.VPCEndpointID
		}
		return fmt.Sprintf("CloudTrail %s %s at %s: %s: %s", rec.EventName, rec.EventID, rec.EventTime, rec.ErrorCode, rec.Message.Text), true
	}
	return "", false
}

// sameRequest matches a CloudTrail denial to the request: the same key, action, S3 context and
// principal (compared by account and name, since a session ARN has no role path).
func sameRequest(rec, d *cloudtrail.Denial) bool {
	if rec.KeyARN != d.KeyARN || rec.ContextARN != d.ContextARN || len(rec.Actions) == 0 || rec.Actions[0] != d.Actions[0] {
		return false
	}
	return rec.Identity.Account == d.Identity.Account && rec.Identity.Name == d.Identity.Name && rec.Identity.Kind == d.Identity.Kind
}

func keyFacts(d *cloudtrail.Denial, w *world.World) *KeyFacts {
	f := &KeyFacts{Region: d.KeyRegion}
	if w.KeyMissing(d.KeyARN) {
		f.Missing = true
		return f
	}
	if k := w.Key(d.KeyARN); k != nil {
		f.State, f.Manager, f.MultiRegion, f.Aliases = k.State, k.Manager, k.MultiRegion != nil && *k.MultiRegion, k.Aliases
	}
	return f
}

func sseName(sse string) string {
	switch sse {
	case s3read.SSES3:
		return "SSE-S3 (AES256)"
	case "":
		return "no server-side encryption reported"
	}
	return sse
}

func errText(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		// Access denied is a common AWS error the KMS, IAM and STS models have no type for
		// (S3's AccessDenied type is modelled for a few operations only): the code is all
		// there is.
		if ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "AccessDeniedException" {
			return "access denied"
		}
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
