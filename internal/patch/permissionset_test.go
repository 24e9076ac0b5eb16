package patch

import (
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
)

// TestPermissionSetPattern: only an Identity Center role's suffix is wildcarded, and a name
// with a character IAM does not allow in a role name (a wildcard, a quote) gives no pattern.
func TestPermissionSetPattern(t *testing.T) {
	sso := func(arn string) cloudtrail.Identity {
		return cloudtrail.Identity{Kind: cloudtrail.KindSSORole, PrincipalARN: arn, Account: "111122223333"}
	}
	tests := []struct {
		id   cloudtrail.Identity
		want string
	}{
		{sso("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-2/AWSReservedSSO_DatabaseAdministrator_1234567890abcdef"),
			"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-2/AWSReservedSSO_DatabaseAdministrator_*"},
		// Identity Center homed in us-east-1: no Region segment.
		{sso("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Data_Reader_0a1b2c3d4e5f6789"),
			"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Data_Reader_*"},
		{sso("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Adm*_0a1b2c3d4e5f6789"), ""},
		{sso("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Adm'in_0a1b2c3d4e5f6789"), ""},
		{sso("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_not-hex"), ""},
		{sso("arn:aws:iam::111122223333:role/app/AWSReservedSSO_Admin_0a1b2c3d4e5f6789"), ""},
		{cloudtrail.Identity{Kind: cloudtrail.KindRole, PrincipalARN: "arn:aws:iam::111122223333:role/app", Account: "111122223333"}, ""},
	}
	for _, tt := range tests {
		got, ok := PermissionSetPattern(tt.id)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("PermissionSetPattern(%s) = %q, %v; want %q", tt.id.PrincipalARN, got, ok, tt.want)
		}
	}
}
