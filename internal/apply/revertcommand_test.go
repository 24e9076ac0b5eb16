package apply

import (
	"testing"

	"github.com/kmsfix/kmsfix/internal/config"
)

// The revert command in every message is the one that works: it names the audit key (the
// command trusts no record without it), and in the hub --hub and the hub account's
// kmsfix-break-glass role, which it assumes with the person's credentials (the spokes' roles
// trust no person's own).
func TestRevertCommandNamesKeyAndBreakGlass(t *testing.T) {
	const key = "arn:aws:kms:eu-west-1:999988887777:key/11112222-3333-4444-5555-666677778888"
	for _, c := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"single account", config.Config{RemediatorRoleARN: "arn:aws:iam::111122223333:role/kmsfix-remediator", TableName: "kmsfix-t", AuditKeyARN: key},
			"kmsfix revert chg-1 --table kmsfix-t --region eu-west-1 --audit-key " + key},
		{"hub", config.Config{HubOrgID: "o-abcdefghij", RemediatorRoleARN: "arn:aws:iam::999988887777:role/kmsfix-hub-remediator", TableName: "kmsfix-hub", AuditKeyARN: key},
			"kmsfix revert chg-1 --table kmsfix-hub --region eu-west-1 --hub --role arn:aws:iam::999988887777:role/kmsfix-break-glass --audit-key " + key},
		{"hub in another partition", config.Config{HubOrgID: "o-abcdefghij", RemediatorRoleARN: "arn:aws-cn:iam::999988887777:role/kmsfix-hub-remediator", TableName: "kmsfix-hub"},
			"kmsfix revert chg-1 --table kmsfix-hub --region eu-west-1 --hub --role arn:aws-cn:iam::999988887777:role/kmsfix-break-glass"},
		{"hub without its role (no account known)", config.Config{HubOrgID: "o-abcdefghij", TableName: "kmsfix-hub"},
			"kmsfix revert chg-1 --table kmsfix-hub --region eu-west-1 --hub"},
	} {
		if got := SettingsFrom(c.cfg, "eu-west-1").RevertCommand("chg-1"); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}
