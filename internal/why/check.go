package why

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/s3read"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Layers kmsfix cannot read, which can deny a request every policy it read allows. A
// CheckRequest may declare them allowing (Assume) after checking them elsewhere.
const (
	LayerSCP         = "scp"
	LayerRCP         = "rcp"
	LayerSession     = "session"
	LayerVPCEndpoint = "vpc-endpoint"
)

// UnseenLayers lists them, in output order.
var UnseenLayers = []string{LayerSCP, LayerRCP, LayerSession, LayerVPCEndpoint}

// CheckRequest is a preflight: will Principal be able to use the bucket's objects, KMS
// included?
type CheckRequest struct {
	Principal string // IAM role or user ARN (with its path), or an STS session ARN
	Bucket    string
	Prefix    string   // object key prefix the principal works under
	Actions   []string // get, put (default both)
	// Key is the bucket's default key ARN; empty: read from GetBucketEncryption (live only).
	Key string
	// BucketKey says whether S3 Bucket Keys are on; nil: unknown, both contexts are checked.
	BucketKey *bool
	Region    string
	// Assume lists the unseen layers the caller has checked allow the requests.
	Assume []string
}

// Check is the answer: one finding per KMS request, and the exit code they give.
type Check struct {
	Principal string         `json:"principal"`
	Bucket    string         `json:"bucket"`
	Prefix    string         `json:"prefix"`
	Key       string         `json:"key"`
	Verdict   Verdict        `json:"verdict"`
	Exit      int            `json:"exit_code"`
	Findings  []CheckFinding `json:"findings"`
	// NotSeen are the layers that could still deny (not assumed); Assumed those declared.
	NotSeen []string `json:"not_seen,omitempty"`
	Assumed []string `json:"assumed,omitempty"`
	Refused []string `json:"refused,omitempty"`
}

// CheckFinding is one KMS request an S3 action implies, and its answer.
type CheckFinding struct {
	Action    string `json:"action"`     // get, put, put-multipart
	KMSAction string `json:"kms_action"` // kms:Decrypt, kms:GenerateDataKey
	// Context is the aws:s3:arn encryption context: an object ARN, or the bucket ARN with S3
	// Bucket Keys.
	Context   string          `json:"context"`
	BucketKey bool            `json:"bucket_key"`
	Verdict   Verdict         `json:"verdict"`
	Diagnosis finding.Code    `json:"diagnosis,omitempty"`
	Verified  bool            `json:"verified"`
	Note      string          `json:"note,omitempty"`
	Report    *finding.Report `json:"report,omitempty"`
}

// The requests each S3 action implies. put includes multipart uploads, for which S3 also
// needs kms:Decrypt on the upload's key (https://repost.aws/knowledge-center/s3-large-file-encryption-kms-key;
// events/06-identity-policy-missing-multipart-upload).
var implied = map[string][]struct{ name, kms string }{
	ActionGet: {{"get", kmsDecrypt}},
	ActionPut: {{"put", kmsGenerateDataKey}, {"put-multipart", kmsDecrypt}},
}

// CheckObjectName is the object name the object-context requests use under the prefix: a
// policy condition written for the prefix (arn:aws:s3:::bucket/prefix*) matches it.
const CheckObjectName = "kmsfix-check-object"

// RunCheck evaluates the requests with a world: a world file (offline) or, when w is nil,
// what the clients read (live: the bucket's default key, the key, the principal).
func RunCheck(ctx context.Context, c *Clients, req CheckRequest, w *world.World) (*Check, error) {
	if len(req.Actions) == 0 {
		req.Actions = []string{ActionGet, ActionPut}
	}
	for _, a := range req.Actions {
		if _, ok := implied[a]; !ok {
			return nil, &FatalError{fmt.Errorf("--action must list get and/or put, not %q", a)}
		}
	}
	for _, l := range req.Assume {
		if !slices.Contains(UnseenLayers, l) {
			return nil, &FatalError{fmt.Errorf("--assume takes %s, not %q", strings.Join(UnseenLayers, ", "), l)}
		}
	}
	id := cloudtrail.IdentityFromARN(req.Principal)
	if id.Kind == cloudtrail.KindUnknown {
		return nil, &FatalError{fmt.Errorf("--principal %q is not an IAM role, IAM user or STS session ARN", req.Principal)}
	}
	out := &Check{Principal: req.Principal, Bucket: req.Bucket, Prefix: req.Prefix, Key: req.Key}
	bucketKey := req.BucketKey
	if req.Key == "" {
		if c == nil {
			return nil, &FatalError{errors.New("offline (--world) needs --key: the bucket's default key ARN")}
		}
		def, err := s3read.DefaultEncryption(ctx, c.S3, req.Bucket)
		if err != nil {
			return nil, &FatalError{err}
		}
		if !s3read.UsesKMS(def.SSE) {
			out.Verdict, out.Exit = NotKMS, NotKMS.ExitCode()
			out.Findings = []CheckFinding{{Verdict: NotKMS, Note: fmt.Sprintf("s3://%s encrypts with %s by default: S3 does not call KMS for requests that name no key", req.Bucket, sseName(def.SSE))}}
			return out, nil
		}
		r := &run{c: *c, req: Request{Region: req.Region}, res: &Result{}}
		ref := def.KMSKeyID
		if ref == "" {
			ref = "alias/aws/s3"
		}
		arn, facts := r.resolveKey(ctx, ref)
		out.Refused = append(out.Refused, r.res.Refused...)
		if arn == "" {
			if facts != nil && facts.Missing {
				return nil, &FatalError{fmt.Errorf("the default key %q of s3://%s does not exist; kmsfix doctor --buckets gives the fix", ref, req.Bucket)}
			}
			return nil, &FatalError{fmt.Errorf("the default key %q of s3://%s could not be resolved (needs kms:DescribeKey)", ref, req.Bucket)}
		}
		out.Key = arn
		if bucketKey == nil {
			bucketKey = &def.BucketKey
		}
	}
	var enr pipeline.Enricher
	explain := explainer(engine.Explain)
	if w == nil {
		enr, explain = c.live(ctx)
	}

	objectARN := "arn:aws:s3:::" + req.Bucket + "/" + req.Prefix + CheckObjectName
	bucketARN := "arn:aws:s3:::" + req.Bucket
	base := &run{req: Request{Region: req.Region}, id: id, account: id.Account}
	for _, a := range req.Actions {
		for _, im := range implied[a] {
			for _, bk := range contexts(a, bucketKey) {
				ctxARN := objectARN
				if bk {
					ctxARN = bucketARN
				}
				d := base.denial(out.Key, im.kms, req.Bucket, req.Prefix+CheckObjectName, ctxARN, bk)
				ww := w
				if enr != nil {
					ww = enr.World(ctx, d)
					out.Refused = append(out.Refused, ww.Unreadable...)
				}
				v, note, rep := judge(d, ww, false, explain)
				f := CheckFinding{Action: im.name, KMSAction: im.kms, Context: ctxARN, BucketKey: bk, Verdict: v, Note: note, Report: rep}
				if rep != nil {
					f.Diagnosis, f.Verified = rep.Diagnosis, rep.Verified
				}
				out.Findings = append(out.Findings, f)
			}
		}
	}
	out.Refused = dedupe(out.Refused)
	out.Verdict = checkVerdict(out.Findings)
	if out.Verdict == Allowed {
		for _, l := range UnseenLayers {
			if slices.Contains(req.Assume, l) {
				out.Assumed = append(out.Assumed, l)
			} else {
				out.NotSeen = append(out.NotSeen, l)
			}
		}
		if len(out.NotSeen) > 0 {
			out.Verdict = Undetermined
		}
	}
	out.Exit = out.Verdict.ExitCode()
	return out, nil
}

// contexts are the Bucket Key settings a request is checked under: a read may meet objects
// written either way; a write follows the bucket's setting when it is known.
func contexts(action string, bucketKey *bool) []bool {
	if action == ActionPut && bucketKey != nil {
		return []bool{*bucketKey}
	}
	return []bool{false, true}
}

// checkVerdict: any diagnosis (exit 1) beats anything undecided (exit 2), which beats allowed.
func checkVerdict(fs []CheckFinding) Verdict {
	v := Allowed
	for _, f := range fs {
		switch {
		case f.Verdict == Diagnosed:
			return Diagnosed
		case f.Verdict == Undetermined:
			v = Undetermined
		}
	}
	return v
}
