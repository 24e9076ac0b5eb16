package cloudtrail

import "testing"

func TestIdentityFromARN(t *testing.T) {
	for _, c := range []struct {
		arn, kind, principal  string
		pathUnknown, editable bool
	}{
		{"arn:aws:sts::111122223333:assumed-role/reader/alice", "role", "arn:aws:iam::111122223333:role/reader", true, true},
		{"arn:aws:iam::111122223333:role/app/reader", "role", "arn:aws:iam::111122223333:role/app/reader", false, true},
		{"arn:aws:iam::111122223333:user/bob", "user", "arn:aws:iam::111122223333:user/bob", false, true},
		{"arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123/alice", "sso-role", "arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0123", true, false},
		{"arn:aws:iam::111122223333:root", "root", "", false, false},
		{"not-an-arn", "unknown", "", false, false},
	} {
		id := IdentityFromARN(c.arn)
		if string(id.Kind) != c.kind || id.PrincipalARN != c.principal || id.PathUnknown != c.pathUnknown || id.Editable != c.editable {
			t.Errorf("%s: got kind %s principal %q pathUnknown %v editable %v", c.arn, id.Kind, id.PrincipalARN, id.PathUnknown, id.Editable)
		}
		if c.principal != "" && id.Account != "111122223333" {
			t.Errorf("%s: account %q", c.arn, id.Account)
		}
	}
}
