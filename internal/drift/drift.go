// Package drift finds buckets whose default encryption names a KMS key that will refuse every
// write (and every read of what it encrypts): a key that is missing, disabled, pending deletion,
// unusable, in another Region, or the AWS managed key aws/s3 while the bucket policy admits
// other accounts (who can never use another account's AWS managed key). Each finding carries
// the exact commands that fix it. It backs `kmsfix doctor --buckets`.
package drift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/kmsfix/kmsfix/internal/arns"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/quote"
	"github.com/kmsfix/kmsfix/internal/s3read"
)

// KMSAPI is what drift reads from KMS.
type KMSAPI interface {
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// Problem codes.
const (
	KeyMissing         = "default-key-missing"
	KeyDisabled        = "default-key-disabled"
	KeyPendingDeletion = "default-key-pending-deletion"
	KeyUnavailable     = "default-key-unavailable"
	KeyOtherRegion     = "default-key-other-region"
	ManagedKeyShared   = "aws-managed-key-shared-bucket"
	Unreadable         = "unreadable"
)

// Finding is one bucket's answer. Problem is empty for a bucket without drift.
type Finding struct {
	Bucket string `json:"bucket"`
	Region string `json:"region"`
	SSE    string `json:"sse,omitempty"`
	Key    string `json:"key,omitempty"` // as configured (KMSMasterKeyID), "" for aws/s3
	// BucketKey says the default uses S3 Bucket Keys.
	BucketKey bool   `json:"bucket_key,omitempty"`
	KeyARN    string `json:"key_arn,omitempty"`
	Problem   string `json:"problem,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// Fix are the commands that remove the problem, in order.
	Fix []string `json:"fix,omitempty"`
	// Needs names the permission that would let kmsfix decide, for Unreadable.
	Needs string `json:"needs,omitempty"`
}

// Severity ranks a problem like the diagnosis codes do.
func Severity(problem string) string {
	switch problem {
	case KeyPendingDeletion:
		return "critical"
	case "", Unreadable:
		return ""
	}
	return "high"
}

// Check examines the named buckets (all of the account's in region when names is empty).
// Buckets in another Region are reported as not checked (Unreadable, naming the Region).
func Check(ctx context.Context, s3c s3read.API, kc KMSAPI, region, account string, names []string) ([]Finding, error) {
	if len(names) == 0 {
		buckets, err := s3read.Buckets(ctx, s3c)
		if err != nil {
			return nil, err
		}
		var out []Finding
		for _, b := range buckets {
			name, br := aws.ToString(b.Name), aws.ToString(b.BucketRegion)
			if br != "" && br != region {
				out = append(out, Finding{Bucket: name, Region: br, Problem: Unreadable,
					Detail: fmt.Sprintf("in %s: not checked; rerun with --region %s", br, br)})
				continue
			}
			out = append(out, bucket(ctx, s3c, kc, region, account, name))
		}
		return out, nil
	}
	out := make([]Finding, 0, len(names))
	for _, n := range names {
		out = append(out, bucket(ctx, s3c, kc, region, account, n))
	}
	return out, nil
}

func bucket(ctx context.Context, s3c s3read.API, kc KMSAPI, region, account, name string) Finding {
	f := Finding{Bucket: name, Region: region}
	def, err := s3read.DefaultEncryption(ctx, s3c, name)
	if err != nil {
		return unreadable(f, err)
	}
	f.SSE, f.Key, f.BucketKey = def.SSE, def.KMSKeyID, def.BucketKey
	if !s3read.UsesKMS(def.SSE) {
		return f
	}
	ref := def.KMSKeyID
	if ref == "" {
		ref = "alias/aws/s3"
	}
	// S3 uses a key of the bucket's Region only:
	// https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html
	if r := arns.Region(ref); strings.HasPrefix(ref, "arn:") && r != "" && r != region {
		f.KeyARN, f.Problem = ref, KeyOtherRegion
		f.Detail = fmt.Sprintf("s3://%s is in %s but its default key %s is in %s: S3 refuses every write that names no key.", name, region, ref, r)
		f.Fix = otherRegionFix(name, region, ref)
		return f
	}
	out, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &ref})
	var missing *kmstypes.NotFoundException
	switch {
	case errors.As(err, &missing):
		f.Problem = KeyMissing
		f.Detail = fmt.Sprintf("The default key %q of s3://%s does not exist in %s (deleted, or an alias or id of another account or Region): every write that names no key fails.", ref, name, region)
		f.Fix = replaceKeyFix(name, region, account, nil, false)
		return f
	case err != nil:
		f.Needs = "kms:DescribeKey"
		return unreadable(f, err)
	}
	m := out.KeyMetadata
	f.KeyARN = aws.ToString(m.Arn)
	kr := arns.Region(f.KeyARN)
	switch state := string(m.KeyState); {
	case kr != "" && kr != region:
		f.Problem = KeyOtherRegion
		f.Detail = fmt.Sprintf("s3://%s is in %s but its default key %s is in %s.", name, region, f.KeyARN, kr)
		f.Fix = otherRegionFix(name, region, f.KeyARN)
	case state == "Disabled":
		f.Problem = KeyDisabled
		f.Detail = fmt.Sprintf("The default key %s of s3://%s is disabled: every write that names no key, and every read of objects under it, fails.", f.KeyARN, name)
		f.Fix = []string{quote.Command("aws", "kms", "enable-key", "--key-id", f.KeyARN, "--region", region)}
	case state == "PendingDeletion" || state == "PendingReplicaDeletion":
		f.Problem = KeyPendingDeletion
		f.Detail = fmt.Sprintf("The default key %s of s3://%s is scheduled for deletion: when the waiting period ends, every object encrypted under it becomes unreadable for good. Cancel the deletion now, then enable the key.", f.KeyARN, name)
		f.Fix = []string{
			quote.Command("aws", "kms", "cancel-key-deletion", "--key-id", f.KeyARN, "--region", region),
			quote.Command("aws", "kms", "enable-key", "--key-id", f.KeyARN, "--region", region),
		}
	case state != "Enabled":
		f.Problem = KeyUnavailable
		f.Detail = fmt.Sprintf("The default key %s of s3://%s is in state %s: KMS refuses to use it.", f.KeyARN, name, state)
		f.Fix = []string{quote.Command("aws", "kms", "describe-key", "--key-id", f.KeyARN, "--region", region) + "   # see why, then finish the operation or reconnect its key store"}
	case m.KeyManager == "AWS":
		return managedShared(ctx, s3c, f, account)
	}
	return f
}

// managedShared flags the AWS managed key on a bucket whose policy admits other accounts:
// no other account can use another account's AWS managed key
// (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-cmk, and
// the Knowledge Center's cross-account SSE-KMS article).
func managedShared(ctx context.Context, s3c s3read.API, f Finding, account string) Finding {
	text, err := s3read.BucketPolicy(ctx, s3c, f.Bucket)
	if err != nil {
		f.Needs = "s3:GetBucketPolicy"
		return unreadable(f, err)
	}
	if text == "" {
		return f
	}
	doc, err := policy.Parse([]byte(text))
	if err != nil {
		f.Problem, f.Detail = Unreadable, "the bucket policy does not parse: "+err.Error()
		return f
	}
	others := otherAccounts(doc, account)
	if len(others) == 0 {
		return f
	}
	f.Problem = ManagedKeyShared
	f.Detail = fmt.Sprintf("s3://%s encrypts with the AWS managed key aws/s3 (%s), but its bucket policy admits %s: no other account can ever use another account's AWS managed key, so their reads of these objects fail. Use a customer managed key that admits them, and re-encrypt the objects.", f.Bucket, f.KeyARN, strings.Join(others, ", "))
	f.Fix = replaceKeyFix(f.Bucket, f.Region, account, others, true)
	return f
}

// otherAccounts lists the principals of Allow statements from outside account: account ids,
// or "*" (anyone).
func otherAccounts(doc *policy.Document, account string) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range doc.Statement {
		if !strings.EqualFold(s.Effect, "Allow") || s.Principal == nil {
			continue
		}
		if s.Principal.Wildcard {
			add("*")
			continue
		}
		for _, v := range s.Principal.Types["AWS"].Items {
			acct := v
			if strings.HasPrefix(v, "arn:") {
				acct = arns.Account(v)
			}
			if v == "*" {
				acct = "*"
			}
			if acct != "" && acct != account {
				add(acct)
			}
		}
	}
	slices.Sort(out)
	return out
}

// replaceKeyFix creates a customer managed key in the bucket's Region (admitting the other
// accounts through S3, when there are any), makes it the bucket's default with an S3 Bucket
// Key, and re-encrypts the existing objects in place.
func replaceKeyFix(bucket, region, account string, others []string, reencrypt bool) []string {
	statements := []map[string]any{{
		"Sid": "EnableIAMPolicies", "Effect": "Allow",
		"Principal": map[string]any{"AWS": "arn:aws:iam::" + account + ":root"},
		"Action":    "kms:*", "Resource": "*",
	}}
	var accounts []string
	for _, a := range others {
		if a != "*" {
			accounts = append(accounts, "arn:aws:iam::"+a+":root")
		}
	}
	if len(accounts) > 0 {
		statements = append(statements, map[string]any{
			"Sid": "AllowOtherAccountsThroughS3", "Effect": "Allow",
			"Principal": map[string]any{"AWS": accounts},
			"Action":    []string{"kms:Decrypt", "kms:GenerateDataKey"}, "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]string{"kms:ViaService": "s3." + region + ".amazonaws.com"}},
		})
	}
	pol, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	enc := `{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"'"$KEY"'"},"BucketKeyEnabled":true}]}`
	fix := []string{
		fmt.Sprintf("KEY=$(aws kms create-key --region %s --description %s --policy %s --query KeyMetadata.Arn --output text)",
			quote.Shell(region), quote.Shell("default key of s3://"+bucket), quote.Shell(string(pol))),
		fmt.Sprintf("aws s3api put-bucket-encryption --region %s --bucket %s --server-side-encryption-configuration '%s'", quote.Shell(region), quote.Shell(bucket), enc),
	}
	if reencrypt {
		fix = append(fix, quote.Command("aws", "s3", "cp", "s3://"+bucket+"/", "s3://"+bucket+"/", "--recursive", "--sse", "aws:kms")+
			` --sse-kms-key-id "$KEY" --region `+quote.Shell(region)+"   # re-encrypt the existing objects in place")
	} else {
		fix = append(fix, "# objects already encrypted under the missing key cannot be decrypted by anyone; the new key protects new writes")
	}
	if slices.Contains(others, "*") {
		fix = append(fix, "# the bucket policy admits any principal (\"*\"): name the accounts that read it in the key policy's AllowOtherAccountsThroughS3 statement")
	}
	return fix
}

// otherRegionFix: a multi-Region key can be replicated into the bucket's Region; otherwise a
// key of that Region becomes the default.
func otherRegionFix(bucket, region, keyARN string) []string {
	enc := `{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"'"$KEY"'"},"BucketKeyEnabled":true}]}`
	return []string{
		fmt.Sprintf("KEY=$(aws kms replicate-key --key-id %s --replica-region %s --region %s --query ReplicaKeyMetadata.Arn --output text)   # a multi-Region key (mrk-...); else: KEY=$(aws kms create-key --region %s --query KeyMetadata.Arn --output text)",
			quote.Shell(keyARN), quote.Shell(region), quote.Shell(arns.Region(keyARN)), quote.Text(region)),
		fmt.Sprintf("aws s3api put-bucket-encryption --region %s --bucket %s --server-side-encryption-configuration '%s'", quote.Shell(region), quote.Shell(bucket), enc),
	}
}

func unreadable(f Finding, err error) Finding {
	f.Problem = Unreadable
	var ref *s3read.Refused
	if errors.As(err, &ref) {
		f.Needs = ref.Permission
		f.Detail = ref.Call + ": " + ref.Code + ": " + ref.Message
		if ref.Region != "" {
			f.Detail = fmt.Sprintf("in %s: not checked; rerun with --region %s", ref.Region, ref.Region)
			f.Region, f.Needs = ref.Region, ""
		}
		return f
	}
	f.Detail = err.Error()
	var ae smithy.APIError
	if errors.As(err, &ae) {
		f.Detail = ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return f
}
