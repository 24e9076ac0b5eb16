package doctor

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/kmsfix/kmsfix/internal/config"
)

// The checks against the synthesized templates are in infra/doctor_org_test.go; these are
// the bus-policy reading's edge cases, which no template renders.

func testOrg() *config.Org {
	return &config.Org{ID: "o-abcdefghij", HubAccount: "999988887777", HubRegion: "eu-west-1",
		HubBusARN:  "arn:aws:events:eu-west-1:999988887777:event-bus/kmsfix-hub",
		HubRoleARN: "arn:aws:iam::999988887777:role/kmsfix-hub-remediator"}
}

// busWith is the hub bus with its deployed statement changed by edit.
func busWith(t *testing.T, edit func(st map[string]any, cond map[string]map[string]any)) *eventbridge.DescribeEventBusOutput {
	t.Helper()
	st := HubBusStatement(testOrg())
	// A fresh copy the edit may change freely.
	var cp map[string]any
	b, _ := json.Marshal(st)
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	cond := map[string]map[string]any{}
	for op, kv := range cp["Condition"].(map[string]any) {
		cond[op] = kv.(map[string]any)
	}
	edit(cp, cond)
	c := map[string]any{}
	for op, kv := range cond {
		c[op] = kv
	}
	cp["Condition"] = c
	return &eventbridge.DescribeEventBusOutput{Policy: aws.String(policyJSON(cp))}
}

func TestHubBusPolicyEdges(t *testing.T) {
	org := testOrg()
	for _, tc := range []struct {
		name                   string
		edit                   func(st map[string]any, cond map[string]map[string]any)
		principals, events     Status
		principalWant, evtWant string
	}{
		{"as deployed", func(map[string]any, map[string]map[string]any) {}, Pass, Pass, "", ""},
		{"forward roles named one account at a time", func(_ map[string]any, c map[string]map[string]any) {
			c["ArnEquals"] = map[string]any{"aws:PrincipalArn": []any{"arn:aws:iam::111122223333:role/kmsfix-forward", "arn:aws:iam::222233334444:role/kmsfix-forward"}}
			delete(c, "ArnLike")
		}, Pass, Pass, "", ""},
		{"a role of any name", func(_ map[string]any, c map[string]map[string]any) {
			c["ArnLike"]["aws:PrincipalArn"] = "arn:aws:iam::*:role/*"
		}, Fail, Pass, "aws:PrincipalArn also admits arn:aws:iam::*:role/*", ""},
		{"a narrow and a wide operator on the same key: the narrow one holds", func(_ map[string]any, c map[string]map[string]any) {
			c["StringLike"] = map[string]any{"aws:PrincipalArn": "*"}
		}, Pass, Pass, "", ""},
		{"IfExists admits requests without the key", func(_ map[string]any, c map[string]map[string]any) {
			c["StringEqualsIfExists"] = map[string]any{"aws:PrincipalOrgID": "o-abcdefghij"}
			delete(c["StringEquals"], "aws:PrincipalOrgID")
		}, Fail, Pass, "no StringEquals condition aws:PrincipalOrgID", ""},
		{"condition keys are case-insensitive", func(_ map[string]any, c map[string]map[string]any) {
			c["StringEquals"]["AWS:PrincipalOrgId"] = c["StringEquals"]["aws:PrincipalOrgID"]
			delete(c["StringEquals"], "aws:PrincipalOrgID")
		}, Pass, Pass, "", ""},
		{"NotAction", func(st map[string]any, _ map[string]map[string]any) {
			delete(st, "Action")
			st["NotAction"] = "events:PutRule"
		}, Pass, Fail, "", "uses NotAction"},
		{"NotPrincipal", func(st map[string]any, _ map[string]map[string]any) {
			delete(st, "Principal")
			st["NotPrincipal"] = map[string]any{"AWS": "arn:aws:iam::123456789012:root"}
		}, Fail, Pass, "uses NotPrincipal", ""},
		{"another detail-type too", func(_ map[string]any, c map[string]map[string]any) {
			c["StringEquals"]["events:detail-type"] = []any{cloudTrailDetailType, "KMS Key Policy Change Requested"}
		}, Pass, Fail, "", "events:detail-type also admits KMS Key Policy Change Requested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, e := CheckHubBusPolicy(busWith(t, tc.edit), org, "eu-west-1")
			if p.Status != tc.principals || e.Status != tc.events {
				t.Fatalf("principals %s %q, events %s %q", p.Status, p.Detail, e.Status, e.Detail)
			}
			if !strings.Contains(p.Detail, tc.principalWant) || !strings.Contains(e.Detail, tc.evtWant) {
				t.Errorf("principals %q, events %q", p.Detail, e.Detail)
			}
			if p.Status == Fail && !strings.Contains(p.Fix, `"aws:PrincipalOrgID":"o-abcdefghij"`) {
				t.Errorf("fix %q lacks the deployed statement", p.Fix)
			}
		})
	}

	// No policy, an empty one, a Deny only: nothing admits the spokes.
	for _, pol := range []string{"", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"events:PutEvents","Resource":"*"}]}`} {
		p, e := CheckHubBusPolicy(&eventbridge.DescribeEventBusOutput{Policy: aws.String(pol)}, org, "eu-west-1")
		if p.Status != Fail || e.Status != Skip {
			t.Errorf("policy %q: %s %q / %s", pol, p.Status, p.Detail, e.Status)
		}
	}
}

// IAM returns its documents URL-encoded; the reader decodes them.
func TestParsePolicyURLEncoded(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	d, err := parsePolicy(strings.ReplaceAll(url.QueryEscape(doc), "+", "%20"))
	if err != nil || len(d.Statement) != 1 || principals(d.Statement[0])[0] != "Service:events.amazonaws.com" {
		t.Fatalf("%+v, %v", d, err)
	}
}

func TestIsReadAction(t *testing.T) {
	for a, want := range map[string]bool{
		"kms:DescribeKey": true, "iam:GetRolePolicy": true, "iam:ListRoles": true,
		"kms:PutKeyPolicy": false, "kms:Get*": false, "*": false, "iam:*": false, "kms:CreateGrant": false, "GetRole": false,
	} {
		if got := isReadAction(a); got != want {
			t.Errorf("isReadAction(%q) = %v", a, got)
		}
	}
}
