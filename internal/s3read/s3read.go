// Package s3read reads what S3 says about an object or a bucket's encryption: the facts
// `kmsfix why`, `kmsfix check` and `kmsfix doctor --buckets` start from. Every refused read
// comes back as a *Refused naming the permission that would allow it, so callers can say what
// they could not see instead of guessing.
package s3read

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// API is the part of the S3 client these reads use (the real *s3.Client satisfies it).
type API interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetBucketEncryption(context.Context, *s3.GetBucketEncryptionInput, ...func(*s3.Options)) (*s3.GetBucketEncryptionOutput, error)
	GetBucketPolicy(context.Context, *s3.GetBucketPolicyInput, ...func(*s3.Options)) (*s3.GetBucketPolicyOutput, error)
	ListBuckets(context.Context, *s3.ListBucketsInput, ...func(*s3.Options)) (*s3.ListBucketsOutput, error)
}

// Server-side encryption types as S3 reports them (x-amz-server-side-encryption).
const (
	SSEKMS     = "aws:kms"
	SSEKMSDSSE = "aws:kms:dsse"
	SSES3      = "AES256"
)

// UsesKMS says an SSE type makes S3 call KMS for the caller (SSE-KMS or DSSE-KMS).
func UsesKMS(sse string) bool { return sse == SSEKMS || sse == SSEKMSDSSE }

// Object is what HeadObject says about an object's encryption.
type Object struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	// SSE is the encryption type: aws:kms, aws:kms:dsse, AES256, or "" (none reported).
	SSE string `json:"sse"`
	// KMSKeyID is SSEKMSKeyId: the key's ARN for SSE-KMS objects.
	KMSKeyID  string `json:"kms_key_id,omitempty"`
	BucketKey bool   `json:"bucket_key"`
}

// Default is a bucket's default encryption (the first rule of GetBucketEncryption).
type Default struct {
	Bucket string `json:"bucket"`
	SSE    string `json:"sse"`
	// KMSKeyID is KMSMasterKeyID as configured: a key ARN, key id, alias name or alias ARN, or
	// "" for the AWS managed key aws/s3.
	KMSKeyID  string `json:"kms_key_id,omitempty"`
	BucketKey bool   `json:"bucket_key"`
}

// Refused is a read S3 refused (or failed) and what would allow it.
type Refused struct {
	Call       string // "s3:HeadObject s3://b/k"
	Permission string // the IAM permission that allows the call: "s3:GetObject"
	Code       string // the error code S3 answered ("AccessDenied", "NoSuchKey", ...)
	Message    string
	Status     int // HTTP status, 0 when no response came
	// Region is the bucket's Region when S3 answered that the bucket is elsewhere
	// (x-amz-bucket-region).
	Region string
}

func (r *Refused) Error() string {
	msg := r.Code
	if r.Message != "" {
		msg += ": " + r.Message
	}
	if r.Status == http.StatusMovedPermanently || r.NotFound() {
		return r.Call + ": " + msg // not a permission problem
	}
	return fmt.Sprintf("%s: %s (needs %s)", r.Call, msg, r.Permission)
}

// Denied says S3 refused for lack of permission (HTTP 403), as opposed to a missing object
// or a failure.
func (r *Refused) Denied() bool { return r.Status == http.StatusForbidden }

// NotFound says the object, version or bucket does not exist (HTTP 404).
func (r *Refused) NotFound() bool { return r.Status == http.StatusNotFound }

// HeadObject reads an object's encryption. Its permission is s3:GetObject (s3:GetObjectVersion
// with a version id): https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
func HeadObject(ctx context.Context, c API, bucket, key, version string) (Object, error) {
	in := &s3.HeadObjectInput{Bucket: &bucket, Key: &key}
	if version != "" {
		in.VersionId = &version
	}
	out, err := c.HeadObject(ctx, in)
	if err != nil {
		return Object{}, refused(err, "s3:HeadObject "+URL(bucket, key), objectPermission(version))
	}
	return Object{Bucket: bucket, Key: key,
		VersionID: aws.ToString(out.VersionId),
		SSE:       string(out.ServerSideEncryption),
		KMSKeyID:  aws.ToString(out.SSEKMSKeyId),
		BucketKey: aws.ToBool(out.BucketKeyEnabled),
	}, nil
}

// Probe asks for the object's first byte, the cheapest request that makes S3 decrypt it with
// the caller's permissions. nil means the read is allowed now.
func Probe(ctx context.Context, c API, bucket, key, version string) error {
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String("bytes=0-0")}
	if version != "" {
		in.VersionId = &version
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return refused(err, "s3:GetObject (bytes=0-0) "+URL(bucket, key), objectPermission(version))
	}
	io.Copy(io.Discard, io.LimitReader(out.Body, 16))
	out.Body.Close()
	return nil
}

// DefaultEncryption reads a bucket's default encryption. A bucket without a configuration
// (ServerSideEncryptionConfigurationNotFoundError, older buckets) reads as SSE = "".
func DefaultEncryption(ctx context.Context, c API, bucket string) (Default, error) {
	out, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: &bucket})
	if err != nil {
		r := refused(err, "s3:GetBucketEncryption s3://"+bucket, "s3:GetEncryptionConfiguration")
		// S3's model has no type for this error: the code is all there is.
		if r.Code == "ServerSideEncryptionConfigurationNotFoundError" {
			return Default{Bucket: bucket}, nil
		}
		return Default{}, r
	}
	d := Default{Bucket: bucket}
	if out.ServerSideEncryptionConfiguration == nil {
		return d, nil
	}
	for _, rule := range out.ServerSideEncryptionConfiguration.Rules {
		if rule.ApplyServerSideEncryptionByDefault == nil {
			continue
		}
		def := rule.ApplyServerSideEncryptionByDefault
		d.SSE = string(def.SSEAlgorithm)
		d.KMSKeyID = aws.ToString(def.KMSMasterKeyID)
		d.BucketKey = aws.ToBool(rule.BucketKeyEnabled)
		break
	}
	return d, nil
}

// BucketPolicy reads a bucket's policy text; "" with a nil error means the bucket has none.
func BucketPolicy(ctx context.Context, c API, bucket string) (string, error) {
	out, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &bucket})
	if err != nil {
		r := refused(err, "s3:GetBucketPolicy s3://"+bucket, "s3:GetBucketPolicy")
		// S3's model has no type for this error: the code is all there is.
		if r.Code == "NoSuchBucketPolicy" {
			return "", nil
		}
		return "", r
	}
	return aws.ToString(out.Policy), nil
}

// Buckets lists the account's buckets (s3:ListAllMyBuckets), with each bucket's Region when
// S3 reports it.
func Buckets(ctx context.Context, c API) ([]types.Bucket, error) {
	var all []types.Bucket
	in := &s3.ListBucketsInput{MaxBuckets: aws.Int32(1000)}
	for {
		out, err := c.ListBuckets(ctx, in)
		if err != nil {
			return nil, refused(err, "s3:ListBuckets", "s3:ListAllMyBuckets")
		}
		all = append(all, out.Buckets...)
		if aws.ToString(out.ContinuationToken) == "" {
			return all, nil
		}
		in.ContinuationToken = out.ContinuationToken
	}
}

// URL is the s3:// address of an object.
func URL(bucket, key string) string { return "s3://" + bucket + "/" + key }

// ParseURL splits s3://BUCKET/KEY. The key may be empty when allowKeyless is set.
func ParseURL(s string, allowKeyless bool) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// address (s3://BUCKET/KEY)", s)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket", s)
	}
	if !ValidBucketName(bucket) {
		return "", "", fmt.Errorf("%q is not a valid S3 bucket name", bucket)
	}
	if key == "" && !allowKeyless {
		return "", "", fmt.Errorf("%q names no object key (s3://BUCKET/KEY)", s)
	}
	return bucket, key, nil
}

// ValidBucketName checks the general-purpose bucket naming rules (3-63 characters of
// lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit):
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
// Directory bucket names ("name--azid--x-s3") pass too; they follow the same alphabet.
func ValidBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.' || c == '-':
			if i == 0 || i == len(b)-1 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func objectPermission(version string) string {
	if version != "" {
		return "s3:GetObjectVersion"
	}
	return "s3:GetObject"
}

// refused turns an SDK error into a *Refused with S3's own code and message.
func refused(err error, call, permission string) *Refused {
	r := &Refused{Call: call, Permission: permission, Code: "error", Message: err.Error()}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		r.Status = re.Response.StatusCode
		r.Region = re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		r.Code, r.Message = api.ErrorCode(), api.ErrorMessage()
	}
	// HEAD responses have no body: S3's code is only the status (the SDK then reports the
	// status text, "Forbidden", as the code).
	if r.Code == "error" || r.Code == "" || r.Code == http.StatusText(r.Status) {
		switch r.Status {
		case http.StatusForbidden:
			r.Code, r.Message = "AccessDenied", "Forbidden (HEAD responses carry no message)"
		case http.StatusNotFound:
			r.Code, r.Message = "NotFound", "Not Found"
		case http.StatusMovedPermanently:
			r.Code, r.Message = "PermanentRedirect", "the bucket is in another Region"
		}
	}
	if r.Status == http.StatusMovedPermanently && r.Region != "" {
		r.Message = "the bucket is in " + r.Region + ": rerun with --region " + r.Region
	}
	return r
}
