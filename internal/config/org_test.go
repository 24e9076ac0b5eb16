package config

import (
	"strings"
	"testing"
)

func orgValues() map[string]string {
	return map[string]string{
		"deployment": "org", "orgId": "o-abcdefghij", "hubAccount": "999988887777", "hubRegion": "eu-west-1",
		"spokeTargets": "ou-ab12-cdefgh34, ou-ab12-cdefgh56", "spokeRegions": "us-east-1,eu-west-1", "sandboxOus": "ou-ab12-sandbox1",
	}
}

func TestLoadDeploymentOrg(t *testing.T) {
	d, err := deploy(orgValues())
	if err != nil {
		t.Fatal(err)
	}
	o := d.Org
	if o == nil || o.HubBusARN != "arn:aws:events:eu-west-1:999988887777:event-bus/kmsfix-hub" ||
		o.HubRoleARN != "arn:aws:iam::999988887777:role/kmsfix-hub-remediator" ||
		strings.Join(o.Targets, ",") != "ou-ab12-cdefgh34,ou-ab12-cdefgh56" || len(o.Regions) != 2 || len(o.SandboxOUs) != 1 ||
		o.RoleRegion() != "eu-west-1" || strings.Join(o.RegionOrder(), ",") != "eu-west-1,us-east-1" {
		t.Errorf("org = %+v", o)
	}
	// The root is a valid target when no sandbox OU sits inside it.
	root := orgValues()
	root["spokeTargets"], root["sandboxOus"] = "r-ab12", ""
	if d, err := deploy(root); err != nil || strings.Join(d.Org.Targets, ",") != "r-ab12" {
		t.Errorf("root target: %+v, %v", d.Org, err)
	}
	if single, err := deploy(nil); err != nil || single.Org != nil {
		t.Errorf("the default deployment is single-account: %+v, %v", single.Org, err)
	}
}

func TestLoadDeploymentOrgErrors(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"orgId", "", "orgId (KMSFIX_ORG_ID) is \"\""},
		{"hubAccount", "9999", "hubAccount (KMSFIX_HUB_ACCOUNT) is \"9999\""},
		{"hubRegion", "eu west", "hubRegion (KMSFIX_HUB_REGION) is \"eu west\""},
		{"spokeTargets", "", "spokeTargets (KMSFIX_SPOKE_TARGETS) is empty"},
		{"spokeTargets", "ou-ab12-cdefgh34,123456789012", "has \"123456789012\", which is not an OU id"},
		{"spokeRegions", "*", "has \"*\", which is not a Region"},
		{"sandboxOus", "r-ab12", "has \"r-ab12\", which is not an OU id"},
		{"sandboxOus", "ou-ab12-cdefgh34", "also in spokeTargets"},
		{"spokeTargets", "r-ab12", "has the root \"r-ab12\" beside sandboxOus"},
		{"spokeRegions", "us-east-1,us-west-2", "lacks the hub's Region \"eu-west-1\""},
		{"deployment", "hubs", "want one of single, org"},
	} {
		v := orgValues()
		v[tc.key] = tc.value
		_, err := deploy(v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: error %v, want it to contain %q", tc.key, tc.value, err, tc.want)
		}
	}
}

func TestLoadHubOrgID(t *testing.T) {
	env := map[string]string{"KMSFIX_TOPIC_ARN": "arn:aws:sns:eu-west-1:999988887777:t", "KMSFIX_TABLE_NAME": "tbl",
		"KMSFIX_HUB_ORG_ID": "o-abcdefghij"}
	c, err := Load(func(k string) string { return env[k] })
	if err != nil || c.HubOrgID != "o-abcdefghij" {
		t.Fatalf("hub org = %q, %v", c.HubOrgID, err)
	}
	env["KMSFIX_HUB_ORG_ID"] = "org-1"
	if _, err := Load(func(k string) string { return env[k] }); err == nil {
		t.Error("a malformed organization id was accepted")
	}
}

// LoadHub reads the hub alone (what `kmsfix doctor --spoke` needs), with the same rules and
// the same ARNs as LoadDeployment.
func TestLoadHub(t *testing.T) {
	values := map[string]string{"orgId": "o-abcdefghij", "hubAccount": "999988887777", "hubRegion": "eu-west-1"}
	lookup := func(p Param) string { return values[p.Context] }
	o, err := LoadHub(lookup)
	if err != nil {
		t.Fatal(err)
	}
	full, err := deploy(orgValues())
	if err != nil {
		t.Fatal(err)
	}
	if o.HubBusARN != full.Org.HubBusARN || o.HubRoleARN != full.Org.HubRoleARN || o.ID != full.Org.ID || len(o.Targets) != 0 {
		t.Errorf("hub = %+v, want the ARNs of %+v", o, full.Org)
	}
	values["hubAccount"], values["orgId"] = "9999", ""
	if _, err := LoadHub(lookup); err == nil || !strings.Contains(err.Error(), `hubAccount (KMSFIX_HUB_ACCOUNT) is "9999"`) ||
		!strings.Contains(err.Error(), `orgId (KMSFIX_ORG_ID) is ""`) {
		t.Errorf("err = %v", err)
	}
}
