package s3read

import "testing"

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in, bucket, key string
		keyless, ok     bool
	}{
		{"s3://reports/q3/x.csv", "reports", "q3/x.csv", false, true},
		{"s3://reports", "", "", false, false},
		{"s3://reports/", "reports", "", true, true},
		{"reports/q3.csv", "", "", false, false},
		{"s3:///k", "", "", false, false},
		{"s3://Bad_Bucket/k", "", "", false, false},
		{"s3://-lead/k", "", "", false, false},
		{"s3://ab/k", "", "", false, false},
	} {
		b, k, err := ParseURL(c.in, c.keyless)
		if (err == nil) != c.ok || b != c.bucket || k != c.key {
			t.Errorf("ParseURL(%q) = %q, %q, %v", c.in, b, k, err)
		}
	}
}
