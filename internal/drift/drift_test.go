package drift

import (
	"slices"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/policy"
)

func TestOtherAccounts(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want []string
	}{
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/r"},"Action":"s3:GetObject","Resource":"*"}]}`, nil},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["444455556666","arn:aws:iam::777788889999:root"]},"Action":"s3:GetObject","Resource":"*"}]}`, []string{"444455556666", "777788889999"}},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}`, []string{"*"}},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"444455556666"},"Action":"s3:*","Resource":"*"}]}`, nil},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"*"}]}`, nil},
	} {
		doc, err := policy.Parse([]byte(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		if got := otherAccounts(doc, "111122223333"); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.doc, got, c.want)
		}
	}
}

// TestReplaceKeyFix: the new key's policy admits the other accounts only through S3, the
// re-encryption step is there only when the old key can still decrypt, and every value is one
// shell word.
func TestReplaceKeyFix(t *testing.T) {
	fix := replaceKeyFix("shared", "eu-west-2", "111122223333", []string{"444455556666"}, true)
	if len(fix) != 3 || !strings.Contains(fix[0], `"arn:aws:iam::444455556666:root"`) || !strings.Contains(fix[0], `"kms:ViaService":"s3.eu-west-2.amazonaws.com"`) ||
		!strings.HasPrefix(fix[2], "aws s3 cp s3://shared/ s3://shared/") {
		t.Errorf("shared fix: %q", fix)
	}
	gone := replaceKeyFix("gone", "eu-west-2", "111122223333", nil, false)
	if strings.Contains(strings.Join(gone, "\n"), "aws s3 cp") || strings.Contains(gone[0], "AllowOtherAccounts") {
		t.Errorf("missing-key fix: %q", gone)
	}
	if !strings.Contains(gone[0], "--description 'default key of s3://gone'") {
		t.Errorf("the description is not one quoted word: %q", gone[0])
	}
}
