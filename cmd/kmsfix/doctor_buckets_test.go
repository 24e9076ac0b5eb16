package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

// TestDoctorBuckets finds each kind of default-encryption drift in the S3 fake's buckets, with
// the keys in local-kms (and the shim for AWS managed keys).
func TestDoctorBuckets(t *testing.T) {
	f := startWhy(t, nil)
	put := func(name, region, key, pol string) {
		f.s3.PutBucket(name, awsfake.S3Bucket{Region: region, Encryption: &awsfake.S3Encryption{SSE: "aws:kms", KMSKeyID: key, BucketKey: true}, Policy: pol})
	}
	shared := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::shared-managed/*"}]}`
	own := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/data-admin"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::private-managed/*"}]}`
	put("gone-key", whyRegion, keyGone, "")
	put("deleting", whyRegion, keyDeleted, "")
	put("far-key", whyRegion, "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", "")
	put("shared-managed", whyRegion, keyManagedA, shared)
	put("private-managed", whyRegion, keyManagedA, own)
	put("by-alias", whyRegion, "alias/reports", "")
	put("no-read", whyRegion, keyReports, "")
	put("elsewhere", "us-east-1", keyReports, "")
	f.s3.Refuse("GetBucketEncryption", "no-read", "", awsfake.S3Error{Code: "AccessDenied", Message: "Access Denied"})

	code, stdout, stderr := runDoctorCmd(t, "--buckets")
	if code != exitDiagnosis {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	cliGolden(t, "doctor-buckets.txt", stdout)

	code, stdout, _ = runDoctorCmd(t, "--buckets", "--output", "json")
	var out struct {
		Buckets []struct{ Bucket, Problem, Needs string } `json:"buckets"`
		Exit    int                                       `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Exit != code {
		t.Fatalf("exit %d, JSON %v: %s", code, err, stdout)
	}
	got := map[string]string{}
	for _, b := range out.Buckets {
		got[b.Bucket] = b.Problem
	}
	for bucket, want := range map[string]string{
		"reports": "", "plain": "", "by-alias": "", "private-managed": "", "partner-data": "",
		"old-key": "default-key-disabled", "gone-key": "default-key-missing", "deleting": "default-key-pending-deletion",
		"far-key": "default-key-other-region", "shared-managed": "aws-managed-key-shared-bucket",
		"no-read": "unreadable", "elsewhere": "unreadable",
	} {
		if p, ok := got[bucket]; !ok || p != want {
			t.Errorf("%s: problem %q (listed %v), want %q", bucket, p, ok, want)
		}
	}

	if code, stdout, _ := runDoctorCmd(t, "--buckets", "--bucket", "reports", "--bucket", "by-alias"); code != exitAllowed {
		t.Errorf("healthy buckets: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := runDoctorCmd(t, "--buckets", "--bucket", "no-read"); code != exitUndecided || !strings.Contains(stdout, "needs s3:GetEncryptionConfiguration") {
		t.Errorf("unreadable bucket: exit %d\n%s", code, stdout)
	}
	if code, _, _ := runDoctorCmd(t, "--buckets", "--bucket", "Bad_Name"); code != exitError {
		t.Errorf("bad bucket name: exit %d, want 3", code)
	}
}

func runDoctorCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(append([]string{"doctor"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}
