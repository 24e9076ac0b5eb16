package cloudtrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// detailTypeAPICall is the EventBridge detail-type of CloudTrail API-call events.
const detailTypeAPICall = "AWS API Call via CloudTrail"

// S3ContextKey is the encryption-context key S3 sets on every KMS call it makes for an object
// in a general purpose bucket; DirectoryContextKey the one it sets for a directory bucket, whose
// value is the bucket ARN (https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-express-UsingKMSEncryption.html,
// "Encryption context").
const (
	S3ContextKey        = "aws:s3:arn"
	DirectoryContextKey = "aws:s3express:arn"
)

// kmsActions maps the KMS calls S3 can make for a principal to the action they need.
//
//   - Decrypt: GetObject, UploadPart(Copy), CompleteMultipartUpload, CopyObject source.
//   - GenerateDataKey: PutObject, CreateMultipartUpload, CopyObject destination.
//   - Encrypt: replication, for the replica key (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html).
//   - GenerateDataKeyWithoutPlaintext and the GenerateDataKeyPair* calls are not known S3
//     calls but are data-key calls with the same shape; they are kept so a denial is never
//     dropped silently. Each needs the action of its own name.
//
// ReEncrypt (logged as eventName "ReEncrypt"; needs kms:ReEncryptFrom on the source key and
// kms:ReEncryptTo on the destination key) is not made by S3 (it re-encrypts by CopyObject,
// i.e. Decrypt + GenerateDataKey), and it involves two keys, which a Denial cannot hold: it
// is ignored.
var kmsActions = map[string]string{
	"Decrypt":                             "kms:Decrypt",
	"GenerateDataKey":                     "kms:GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext":     "kms:GenerateDataKeyWithoutPlaintext",
	"GenerateDataKeyPair":                 "kms:GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext": "kms:GenerateDataKeyPairWithoutPlaintext",
	"Encrypt":                             "kms:Encrypt",
}

// deniedCodes are the errorCodes we diagnose: refusals by policy and key-state failures.
// S3 reports the latter to its client with a "KMS." prefix; accept both spellings.
var deniedCodes = map[string]bool{
	"AccessDenied":             true,
	"AccessDeniedException":    true,
	"DisabledException":        true,
	"KMSInvalidStateException": true,
	"NotFoundException":        true,
}

// envelope is an EventBridge event, with the CloudTrail record fields beside it, so that one
// json.Unmarshal both tells a bare record from an envelope and decodes the record.
type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     *record         `json:"detail"`
	Records    json.RawMessage `json:"Records"`
	Events     json.RawMessage `json:"Events"` // aws cloudtrail lookup-events output
	// Resources shadows record.Resources: an envelope's resources are strings. For a bare
	// record it is decoded into record.Resources afterwards.
	Resources json.RawMessage `json:"resources"`
	record
}

type record struct {
	EventVersion       string             `json:"eventVersion"`
	EventID            string             `json:"eventID"`
	EventTime          string             `json:"eventTime"`
	EventSource        string             `json:"eventSource"`
	EventName          string             `json:"eventName"`
	AWSRegion          string             `json:"awsRegion"`
	ErrorCode          string             `json:"errorCode"`
	ErrorMessage       string             `json:"errorMessage"`
	RecipientAccountID string             `json:"recipientAccountId"`
	SourceIPAddress    string             `json:"sourceIPAddress"`
	UserAgent          string             `json:"userAgent"`
	VPCEndpointID      string             `json:"vpcEndpointId"`
	UserIdentity       *userIdentity      `json:"userIdentity"`
	RequestParameters  *requestParameters `json:"requestParameters"`
	Resources          []resource         `json:"resources"`
}

type userIdentity struct {
	Type           string `json:"type"`
	PrincipalID    string `json:"principalId"`
	ARN            string `json:"arn"`
	AccountID      string `json:"accountId"`
	UserName       string `json:"userName"`
	InvokedBy      string `json:"invokedBy"`
	SessionContext *struct {
		SessionIssuer *sessionIssuer `json:"sessionIssuer"`
	} `json:"sessionContext"`
}

type sessionIssuer struct {
	Type      string `json:"type"`
	ARN       string `json:"arn"`
	AccountID string `json:"accountId"`
	UserName  string `json:"userName"`
}

type requestParameters struct {
	KeyID             string            `json:"keyId"`
	EncryptionContext map[string]string `json:"encryptionContext"`
}

type resource struct {
	ARN       string `json:"ARN"`
	AccountID string `json:"accountId"`
	Type      string `json:"type"`
}

// Parse reads one JSON value: an EventBridge envelope ("AWS API Call via CloudTrail") or a bare
// CloudTrail record. The error is for input that is not a CloudTrail record at all.
func Parse(raw []byte) (Item, error) {
	// Valid first, so that Parse and the Reader (whose lexer checked the grammar) both let
	// quickIgnore decide the records it can.
	return parse(raw, true, json.Valid(raw))
}

// parse does Parse; own says raw may be shared by the caller and must be copied when kept;
// valid says raw is known to be valid JSON (the Reader's lexer checked it), which lets the
// relevance of a bare record be read from its eventSource alone.
//
// encoding/json validates and decodes in two passes over its input, so the record is decoded
// by a single Unmarshal of the whole input (not the envelope, then its detail again), and the
// detail's bytes for Denial.Record are cut out with memberValue.
func parse(raw []byte, own, valid bool) (Item, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Item{}, errors.New("not a JSON object")
	}
	if valid {
		if it, ok := quickIgnore(raw); ok {
			return it, nil
		}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && isOtherEvent(&env) {
			// Another kind of EventBridge event whose detail does not fit a record.
			return notAPICall(&env, "")
		}
		// Unmarshal goes on past a type error: when what it read says the record is not a
		// KMS call, the fields it could not decode do not matter.
		if errors.As(err, &te) {
			switch rec := recordOf(&env); {
			case rec == nil:
			case rec.EventSource != "" && rec.EventSource != "kms.amazonaws.com":
				return Item{EventID: rec.EventID, Ignored: fmt.Sprintf("not a KMS call (eventSource %s)", rec.EventSource)}, nil
			case rec.EventSource == "" && rec == &env.record: // a bare record, as quickIgnore reads it
				return Item{EventID: rec.EventID, Ignored: noEventSource}, nil
			}
		}
		return Item{}, fmt.Errorf("not a CloudTrail record: %w", describeJSONErr(err, ""))
	}
	rec, body := &env.record, raw
	switch {
	case env.DetailType != "" || (env.Detail != nil && env.EventSource == ""):
		if env.Detail == nil {
			return notAPICall(&env, "EventBridge envelope without a CloudTrail record in detail")
		}
		rec = env.Detail
		if rec.EventSource == "" && rec.EventName == "" {
			return notAPICall(&env, "EventBridge detail has no eventSource or eventName: not a CloudTrail record")
		}
		if rec.EventID == "" {
			rec.EventID = env.ID
		}
		var ok bool
		if body, ok = memberValue(raw, "detail"); !ok {
			var d struct {
				Detail json.RawMessage `json:"detail"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				return Item{}, fmt.Errorf("EventBridge detail: %w", describeJSONErr(err, "detail"))
			}
			body = d.Detail
		}
	case len(env.Records) > 0:
		return Item{}, errors.New(`a CloudTrail log file ({"Records": [...]}): read it with ReadAll`)
	case len(env.Events) > 0 && env.EventSource == "":
		return Item{}, errors.New(`lookup-events output ({"Events": [...]}): read it with ReadAll`)
	case len(env.Resources) > 0 && !bytes.Equal(env.Resources, []byte("null")):
		if err := json.Unmarshal(env.Resources, &rec.Resources); err != nil {
			if rec.EventSource != "" && rec.EventSource != "kms.amazonaws.com" {
				return Item{EventID: rec.EventID, Ignored: fmt.Sprintf("not a KMS call (eventSource %s)", rec.EventSource)}, nil
			}
			return Item{}, fmt.Errorf("not a CloudTrail record: %w", describeJSONErr(err, "resources"))
		}
	}
	if rec.EventSource == "" {
		return Item{EventID: rec.EventID, Ignored: noEventSource}, nil
	}
	if rec.EventName == "" {
		return Item{}, errors.New("no eventName: not a CloudTrail record")
	}
	// CloudTrail 1.0 records have no eventID: they are read, and reported without one.
	if own {
		body = bytes.Clone(body)
	}
	return fromRecord(rec, body), nil
}

// noEventSource is the reason for a record that is not an API call: CloudTrail Insights
// events (eventType AwsCloudTrailInsight, their eventSource is inside insightDetails), digest
// files, or other JSON.
const noEventSource = "no eventSource: not an API-call record (a CloudTrail Insights event, a digest file, or other JSON)"

// recordOf returns the record an envelope holds (its detail), or the bare record.
func recordOf(env *envelope) *record {
	if env.DetailType != "" || (env.Detail != nil && env.EventSource == "") {
		return env.Detail
	}
	return &env.record
}

// quickIgnore decides from its eventSource, eventName and errorCode alone (earlyIgnore) that
// a bare record is not a denial to diagnose, the fate of most records of a log file, without
// decoding the rest: fields that do not decide relevance are not read, so their types do not
// matter. raw must be valid JSON. ok is false when the full decode must decide (an envelope,
// a KMS denial, escapes).
func quickIgnore(raw []byte) (it Item, ok bool) {
	var v [len(quickMembers)][]byte
	if !memberValues(raw, quickMembers[:], v[:]) {
		return Item{}, false
	}
	for _, other := range v[4:] { // an envelope, a log file or lookup-events output
		if other != nil {
			return Item{}, false
		}
	}
	var s [4]string // eventSource, eventID, eventName, errorCode
	for i := range s {
		if s[i], ok = plainString(v[i], true); !ok {
			return Item{}, false
		}
	}
	if v[0] == nil {
		return Item{EventID: s[1], Ignored: noEventSource}, true
	}
	if s[0] == "" || s[0] == "kms.amazonaws.com" && s[2] == "" { // the full decode says what is wrong
		return Item{}, false
	}
	why := earlyIgnore(s[0], s[2], s[3])
	return Item{EventID: s[1], Ignored: why}, why != ""
}

var quickMembers = [...]string{"eventSource", "eventID", "eventName", "errorCode", "detail", "detail-type", "Records", "Events"}

// plainString returns a JSON string value without escapes as a Go string; an absent value
// (nil) is "". ok is false for anything else.
func plainString(v []byte, found bool) (string, bool) {
	if !found {
		return "", false
	}
	if v == nil {
		return "", true
	}
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return "", false
	}
	return string(v[1 : len(v)-1]), true
}

// describeJSONErr rewords encoding/json errors in the record's terms ("eventName is a JSON
// number, want a string") instead of Go's struct names.
func describeJSONErr(err error, field string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// Go 1.27 names array elements in the path ("resources.0") where 1.26 did not: the
		// record's terms are its member names, so indexes are left out.
		var names []string
		for _, p := range strings.Split(strings.TrimPrefix(te.Field, "record."), ".") {
			if _, err := strconv.Atoi(p); err != nil && p != "" {
				names = append(names, p)
			}
		}
		if f := strings.Join(names, "."); f != "" {
			field = f
		}
		if field == "" {
			field = "value"
		}
		want := "a " + te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Struct, reflect.Map:
			want = "an object"
		case reflect.Slice:
			want = "an array"
		}
		return fmt.Errorf("%s is a JSON %s, want %s", field, te.Value, want)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
	}
	return err
}

// isOtherEvent reports whether env is an EventBridge event of another kind than a CloudTrail
// API call (KMS key rotation, ...).
func isOtherEvent(env *envelope) bool {
	return env.DetailType != "" && env.DetailType != detailTypeAPICall && env.ID != ""
}

// notAPICall answers for an envelope whose detail is not a CloudTrail record: another kind
// of EventBridge event is ignored; anything else is an error.
func notAPICall(env *envelope, why string) (Item, error) {
	if isOtherEvent(env) {
		return Item{EventID: env.ID, Ignored: fmt.Sprintf("EventBridge event %q from %q is not a CloudTrail API call", env.DetailType, env.Source)}, nil
	}
	return Item{}, errors.New(why)
}

// earlyIgnore is the part of the relevance filter that needs only the record's eventSource,
// eventName and errorCode: the reason to ignore it, or "" when the rest of the record decides.
// quickIgnore applies it before decoding the record, fromRecord after.
func earlyIgnore(source, name, code string) string {
	if source != "kms.amazonaws.com" {
		return fmt.Sprintf("not a KMS call (eventSource %s)", source)
	}
	if _, ok := kmsActions[name]; !ok {
		return fmt.Sprintf("KMS %s is not a data-key call S3 makes for a principal", name)
	}
	if code == "" {
		return fmt.Sprintf("KMS %s succeeded (no errorCode)", name)
	}
	if !deniedCodes[strings.TrimPrefix(code, "KMS.")] {
		return fmt.Sprintf("errorCode %s is not an access denial or key-state failure", code)
	}
	return ""
}

// fromRecord applies the relevance filter, then builds the Denial.
func fromRecord(rec *record, body []byte) Item {
	it := Item{EventID: rec.EventID}
	ignore := func(format string, a ...any) Item {
		it.Ignored = fmt.Sprintf(format, a...)
		return it
	}
	if why := earlyIgnore(rec.EventSource, rec.EventName, rec.ErrorCode); why != "" {
		return ignore("%s", why)
	}
	action := kmsActions[rec.EventName]
	var ctx map[string]string
	if rec.RequestParameters != nil {
		ctx = rec.RequestParameters.EncryptionContext
	}
	if rec.UserIdentity != nil && rec.UserIdentity.Type == "AWSService" {
		by := rec.UserIdentity.InvokedBy
		if by == "" {
			by = "an AWS service"
		}
		return ignore("made by %s acting as itself (userIdentity AWSService), not for a principal", by)
	}
	ctxKey := S3ContextKey
	ctxARN := ctx[S3ContextKey]
	if ctxARN == "" && ctx[DirectoryContextKey] != "" {
		ctxKey, ctxARN = DirectoryContextKey, ctx[DirectoryContextKey]
	}
	if ctxARN == "" {
		return ignore("no %s or %s encryption context: S3 did not make this call", S3ContextKey, DirectoryContextKey)
	}
	other, doubt := origin(rec)
	if other != "" {
		return ignore("made by %s with an S3 encryption context, not by S3 for a principal", other)
	}

	d := &Denial{
		EventID:           rec.EventID,
		EventTime:         rec.EventTime,
		EventName:         rec.EventName,
		Region:            rec.AWSRegion,
		RecipientAccount:  rec.RecipientAccountID,
		ErrorCode:         rec.ErrorCode,
		Message:           Classify(rec.ErrorCode, rec.ErrorMessage),
		Identity:          identityOf(rec.UserIdentity),
		ContextKey:        ctxKey,
		ContextARN:        ctxARN,
		EncryptionContext: ctx,
		Doubt:             doubt,
		VPCEndpointID:     rec.VPCEndpointID,
		Actions:           []string{action},
		Record:            json.RawMessage(body),
	}
	if rec.UserIdentity != nil {
		d.InvokedBy = rec.UserIdentity.InvokedBy
	}
	if d.Identity.Kind == KindUnknown && strings.EqualFold(d.Message.Caller, "anonymous") {
		d.Identity.Kind, d.Identity.NotEditable = KindAnonymous, whyAnonymous
	}
	setKey(d, rec)
	setObject(d)
	d.Partition = partitionOf(d.KeyARN, d.Identity.PrincipalARN, d.Identity.SessionARN, d.ContextARN)
	it.Denial = d
	return it
}

// setKey finds the key ARN: resources[] first (KMS logs the key it resolved there), then
// requestParameters.keyId when it is a key ARN, then the ARN the error message names.
func setKey(d *Denial, rec *record) {
	for _, r := range rec.Resources {
		if (r.Type == "AWS::KMS::Key" || strings.Contains(r.ARN, ":kms:")) && isKeyARN(r.ARN) {
			d.KeyARN = r.ARN
			break
		}
	}
	if rec.RequestParameters != nil && rec.RequestParameters.KeyID != "" {
		id := rec.RequestParameters.KeyID
		switch {
		case !isKeyARN(id):
			d.KeyRef = id
		case d.KeyARN == "":
			d.KeyARN = id
		}
	}
	if d.KeyARN == "" && isKeyARN(d.Message.Resource) {
		d.KeyARN = d.Message.Resource
	}
	if d.KeyARN == "" && d.KeyRef == "" && d.Message.Resource != "" && strings.Contains(d.Message.Resource, ":kms:") {
		d.KeyRef = d.Message.Resource // an alias ARN named by a not-found message
	}
	if a, err := arn.Parse(d.KeyARN); err == nil {
		d.KeyAccount, d.KeyRegion = a.AccountID, a.Region
	}
}

// isKeyARN reports whether s is a KMS key ARN (not an alias ARN, not a bare key id).
func isKeyARN(s string) bool {
	if !strings.HasPrefix(s, "arn:") {
		return false
	}
	a, err := arn.Parse(s)
	return err == nil && a.Service == "kms" && a.AccountID != "" && a.Region != "" &&
		strings.HasPrefix(a.Resource, "key/") && len(a.Resource) > len("key/")
}

// setObject splits the S3 context into bucket and object, after checking the bucket name
// against S3's naming rules. A general purpose bucket ARN with no "/" means the bucket uses S3
// Bucket Keys. A directory bucket's context is always its bucket ARN
// (arn:aws:s3express:region:account:bucket/base--zone--x-s3; the S3 page's CloudTrail example
// shows it after an "arn:aws:s3:::" prefix, which is accepted too), and directory buckets
// always use S3 Bucket Keys. A context that is not such an ARN, or names a bucket S3 would
// refuse, leaves Bucket empty and ContextARN cleared, and says so in Doubt without repeating
// the name (it may hold shell or markup characters; the record keeps it): nothing is built
// from it.
func setObject(d *Denial) {
	bad := func(why string) {
		d.ContextARN, d.Bucket, d.Object = "", "", ""
		d.Doubt = joinDoubt(d.Doubt, why)
	}
	if d.ContextKey == DirectoryContextKey {
		v := d.ContextARN
		if a, err := arn.Parse(v); err == nil && a.Service == "s3" && a.Region == "" && a.AccountID == "" && strings.HasPrefix(a.Resource, "arn:") {
			if !partitionRE.MatchString(a.Partition) {
				bad(fmt.Sprintf("the %s context is not a directory bucket ARN", DirectoryContextKey))
				return
			}
			v = a.Resource
		}
		a, err := arn.Parse(v)
		name, ok := strings.CutPrefix(a.Resource, "bucket/")
		if err != nil || a.Service != "s3express" || !ok || !partitionRE.MatchString(a.Partition) ||
			!accountRE.MatchString(a.AccountID) || !regionRE.MatchString(a.Region) {
			bad(fmt.Sprintf("the %s context is not a directory bucket ARN", DirectoryContextKey))
			return
		}
		if !ValidDirectoryBucketName(name) {
			bad(fmt.Sprintf("the %s context names a bucket that is not a valid directory bucket name", DirectoryContextKey))
			return
		}
		d.Bucket, d.BucketKey, d.DirectoryBucket = name, true, true
		return
	}
	a, err := arn.Parse(d.ContextARN)
	if err != nil || a.Service != "s3" || a.Resource == "" || a.Region != "" || a.AccountID != "" || !partitionRE.MatchString(a.Partition) {
		bad(fmt.Sprintf("the %s context is not an S3 bucket or object ARN", S3ContextKey))
		return
	}
	bucket, object, hasSlash := strings.Cut(a.Resource, "/")
	if !ValidBucketName(bucket, d.Region) {
		bad(fmt.Sprintf("the %s context names a bucket that is not a valid S3 bucket name", S3ContextKey))
		return
	}
	d.Bucket, d.Object, d.BucketKey = bucket, object, !hasSlash
}

// The other fields of a context ARN are checked too, since patches are built from them: an
// AWS partition (aws, aws-cn, aws-us-gov, aws-iso...), a 12-digit account, a Region name.
var (
	partitionRE = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

func joinDoubt(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func partitionOf(arns ...string) string {
	for _, s := range arns {
		if a, err := arn.Parse(s); err == nil && a.Partition != "" {
			return a.Partition
		}
	}
	return ""
}
