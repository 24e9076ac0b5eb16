package cloudtrail

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidBucketName(t *testing.T) {
	tests := []struct {
		name, region string
		want         bool
	}{
		{"amzn-s3-demo-bucket", "eu-west-1", true},
		{"my.data.bucket-2", "eu-west-1", true},
		{"abc", "eu-west-1", true},
		{"ab", "eu-west-1", false},
		{strings.Repeat("a", 64), "eu-west-1", false},
		{"-leading-hyphen", "eu-west-1", false},
		{"trailing-dot.", "eu-west-1", false},
		{"two..dots", "eu-west-1", false},
		{"192.168.5.4", "eu-west-1", false},
		{"bucket*", "eu-west-1", false},
		{"*", "eu-west-1", false},
		{"buck?t", "eu-west-1", false},
		{"a;rm -rf ~", "eu-west-1", false},
		{"x$(id)", "eu-west-1", false},
		{"back`tick`", "eu-west-1", false},
		{"quote'bucket", "eu-west-1", false},
		{"space bucket", "eu-west-1", false},
		{"new\nline", "eu-west-1", false},
		{"alias-s3alias", "eu-west-1", false},
		{"name--usw2-az1--x-s3", "us-west-2", false}, // a directory bucket name is not a general purpose one
		// Legacy us-east-1 names: uppercase and underscores, up to 255 characters.
		{"Legacy_Bucket", "us-east-1", true},
		{"Legacy_Bucket", "eu-west-1", false},
		{strings.Repeat("A", 255), "us-east-1", true},
		{strings.Repeat("A", 256), "us-east-1", false},
		{"Legacy*Bucket", "us-east-1", false},
		{"Legacy Bucket", "us-east-1", false},
	}
	for _, tt := range tests {
		if got := ValidBucketName(tt.name, tt.region); got != tt.want {
			t.Errorf("ValidBucketName(%q, %s) = %v, want %v", tt.name, tt.region, got, tt.want)
		}
	}
}

func TestValidDirectoryBucketName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"amzn-s3-demo-bucket--usw2-az1--x-s3", true},
		{"logs--use1-az4--x-s3", true},
		{"data--usw2-lax1-az1--x-s3", true}, // a Local Zone id
		{"amzn-s3-demo-bucket", false},
		{"--usw2-az1--x-s3", false},
		{"name----x-s3", false},
		{"Name--usw2-az1--x-s3", false},
		{"na.me--usw2-az1--x-s3", false},
		{"na*me--usw2-az1--x-s3", false},
		{"name--usw2-az1--x-s3;id", false},
		{strings.Repeat("a", 50) + "--usw2-az1--x-s3", false}, // 66 characters
	}
	for _, tt := range tests {
		if got := ValidDirectoryBucketName(tt.name); got != tt.want {
			t.Errorf("ValidDirectoryBucketName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestOrigin: a record is S3's only with S3's context and the marks of S3's forward access
// session; another service's record is ignored with the service named; a record with the
// context and no mark is reported with a doubt.
func TestOrigin(t *testing.T) {
	marks := func(invokedBy, ip, ua string) func(map[string]any) {
		return func(r map[string]any) {
			u := r["userIdentity"].(map[string]any)
			if invokedBy == "" {
				delete(u, "invokedBy")
			} else {
				u["invokedBy"] = invokedBy
			}
			r["sourceIPAddress"], r["userAgent"] = ip, ua
		}
	}
	tests := []struct {
		name    string
		mutate  func(map[string]any)
		ignored string // substring of Ignored; empty when a Denial is expected
		doubt   string // substring of Doubt; empty when none is expected
	}{
		{name: "AWS Internal", mutate: marks("AWS Internal", "AWS Internal", "AWS Internal")},
		{name: "internal.amazonaws.com (older records)", mutate: marks("internal.amazonaws.com", "internal.amazonaws.com", "internal.amazonaws.com")},
		{name: "AWS Internal/# source only", mutate: marks("", "AWS Internal/3", "AWS Internal/3")},
		{name: "Mainframe Modernization", mutate: func(r map[string]any) {
			marks("m2.us-west-2.amazonaws.com", "m2.us-west-2.amazonaws.com", "m2.us-west-2.amazonaws.com")(r)
			r["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{
				"aws:m2:app": "a1bc2defabc3defabc4defabcd",
				"aws:s3:arn": "arn:aws:s3:::supernova-processedtemplate-111122223333-us-west-2/111122223333/a1bc2defabc3defabc4defabcd/1/x.so",
			}
		}, ignored: "made by AWS Mainframe Modernization (invokedBy m2.us-west-2.amazonaws.com)"},
		{name: "unnamed service", mutate: marks("", "foo.amazonaws.com", "foo.amazonaws.com"), ignored: "the AWS service foo.amazonaws.com"},
		{name: "direct call", mutate: marks("", "203.0.113.7", "aws-cli/2.27.41"), doubt: `invokedBy "", sourceIPAddress "203.0.113.7"`},
		{name: "direct call claiming S3 in the user agent only", mutate: marks("", "203.0.113.7", "AWS Internal"), doubt: "may be a direct call"},
		{name: "wildcard bucket", mutate: func(r map[string]any) {
			r["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:s3:arn": "arn:aws:s3:::amzn-s3-demo-*/k"}
		}, doubt: "not a valid S3 bucket name"},
		{name: "shell characters", mutate: func(r map[string]any) {
			r["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:s3:arn": "arn:aws:s3:::x$(touch /tmp/p)/k"}
		}, doubt: "not a valid S3 bucket name"},
		{name: "shell characters in the partition", mutate: func(r map[string]any) {
			r["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:s3:arn": "arn:aws$(id):s3:::amzn-s3-demo-bucket/k"}
		}, doubt: "not an S3 bucket or object ARN"},
		{name: "an ARN of another service", mutate: func(r map[string]any) {
			r["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:s3:arn": "arn:aws:sqs:us-east-1:111122223333:q"}
		}, doubt: "not an S3 bucket or object ARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := Parse(edit(tt.mutate)(t))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ignored != "" {
				if it.Denial != nil || !strings.Contains(it.Ignored, tt.ignored) {
					t.Fatalf("Ignored = %q (denial %v), want it to mention %q", it.Ignored, it.Denial != nil, tt.ignored)
				}
				return
			}
			if it.Denial == nil {
				t.Fatalf("ignored (%s), want a denial", it.Ignored)
			}
			d := it.Denial
			if tt.doubt == "" && d.Doubt != "" || !strings.Contains(d.Doubt, tt.doubt) {
				t.Errorf("Doubt = %q, want %q", d.Doubt, tt.doubt)
			}
			if d.Doubt != "" && strings.Contains(tt.doubt, "bucket") && (d.Bucket != "" || d.ContextARN != "") {
				t.Errorf("Bucket, ContextARN = %q, %q for a context that names no valid bucket", d.Bucket, d.ContextARN)
			}
		})
	}
}

func TestDirectoryBucketContext(t *testing.T) {
	const bucketARN = "arn:aws:s3express:us-west-2:111122223333:bucket/amzn-s3-demo-bucket--usw2-az1--x-s3"
	for _, ctx := range []string{
		bucketARN,
		"arn:aws:s3:::" + bucketARN, // as the S3 page's CloudTrail example writes it
	} {
		rec := baseRecord(t)
		rec["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{DirectoryContextKey: ctx}
		d := mustDenial(t, mustJSON(t, rec))
		if d.ContextKey != DirectoryContextKey || d.ContextARN != ctx || d.Bucket != "amzn-s3-demo-bucket--usw2-az1--x-s3" ||
			!d.DirectoryBucket || !d.BucketKey || d.Object != "" || d.Doubt != "" {
			t.Errorf("%s: ContextKey %q, ContextARN %q, Bucket %q, Directory %v, BucketKey %v, Object %q, Doubt %q",
				ctx, d.ContextKey, d.ContextARN, d.Bucket, d.DirectoryBucket, d.BucketKey, d.Object, d.Doubt)
		}
	}
	for _, ctx := range []string{
		"arn:aws:s3express:us-west-2:111122223333:bucket/not-a-directory-bucket",
		"arn:aws:s3express:us-west-2:111122223333:bucket/x*--usw2-az1--x-s3",
		"arn:aws:s3:::amzn-s3-demo-bucket",
		"arn:aws:s3express:us-west-2*:111122223333:bucket/amzn-s3-demo-bucket--usw2-az1--x-s3",
		"arn:aws:s3express:us-west-2:1111;id:bucket/amzn-s3-demo-bucket--usw2-az1--x-s3",
		"arn:aws:s3:::arn:aws:s3express:us-west-2:111122223333:bucket/x--usw2-az1--x-s3;id",
		"arn:a$(id):s3:::arn:aws:s3express:us-west-2:111122223333:bucket/amzn-s3-demo-bucket--usw2-az1--x-s3",
	} {
		rec := baseRecord(t)
		rec["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{DirectoryContextKey: ctx}
		d := mustDenial(t, mustJSON(t, rec))
		if d.Bucket != "" || d.ContextARN != "" || d.Doubt == "" {
			t.Errorf("%s: Bucket %q, ContextARN %q, Doubt %q; want no bucket and a doubt", ctx, d.Bucket, d.ContextARN, d.Doubt)
		}
	}
}

// FuzzBucketIsSafe: whatever the encryption context says, a Denial's Bucket (and a directory
// bucket's whole context, which patches name verbatim) holds only the characters S3 allows in
// bucket names and ARNs: never a wildcard or a shell character.
func FuzzBucketIsSafe(f *testing.F) {
	for _, s := range []string{
		"arn:aws:s3:::amzn-s3-demo-bucket/k", "arn:aws:s3:::amzn-s3-demo-*/k", "arn:aws:s3:::x$(id)/k",
		"arn:aws-cn:s3:::Legacy_Bucket/k", "arn:aws:s3express:us-west-2:111122223333:bucket/b--usw2-az1--x-s3",
		"arn:aws:s3:::arn:aws:s3express:us-west-2:111122223333:bucket/b--usw2-az1--x-s3",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	base := mustJSON(f, baseRecord(f))
	f.Fuzz(func(t *testing.T, ctx string, directory bool) {
		var rec map[string]any
		if err := json.Unmarshal(base, &rec); err != nil {
			t.Fatal(err)
		}
		key := S3ContextKey
		if directory {
			key = DirectoryContextKey
		}
		rec["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{key: ctx}
		it, err := Parse(mustJSON(t, rec))
		if err != nil || it.Denial == nil {
			return
		}
		d := it.Denial
		safe := func(s string) bool {
			for _, c := range s {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_:/", c)) {
					return false
				}
			}
			return true
		}
		if !safe(d.Bucket) {
			t.Errorf("Bucket %q from context %q", d.Bucket, ctx)
		}
		if d.DirectoryBucket && !safe(d.ContextARN) {
			t.Errorf("directory ContextARN %q from context %q", d.ContextARN, ctx)
		}
	})
}
