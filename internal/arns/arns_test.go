package arns

import "testing"

func TestFields(t *testing.T) {
	cases := []struct{ in, partition, region, account string }{
		{"arn:aws:kms:eu-west-1:111122223333:key/1234", "aws", "eu-west-1", "111122223333"},
		{"arn:aws-us-gov:iam::444455556666:role/a:b", "aws-us-gov", "", "444455556666"},
		{"arn:aws:s3:::bucket", "aws", "", ""},
		{"xrn:aws:kms:eu-west-1:111122223333:key/1234", "", "", ""}, // not an ARN
		{"arn:aws:kms:eu-west-1:111122223333", "", "", ""},          // five fields
		{"", "", "", ""},
	}
	for _, c := range cases {
		if p, r, a := Partition(c.in), Region(c.in), Account(c.in); p != c.partition || r != c.region || a != c.account {
			t.Errorf("%q: %q %q %q, want %q %q %q", c.in, p, r, a, c.partition, c.region, c.account)
		}
	}
}
