package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
)

// Issue 19 item 3: a hub with OU and tag routes may read an account's parents and tags, and
// nothing else of Organizations; the routes' topics and secrets are granted like account
// routes'. Without OU or tag routes (the shared hub of org_test.go), no Organizations action.
func TestHubOrgRoutesGrants(t *testing.T) {
	const (
		tagTopic = "arn:aws:sns:eu-west-1:999988887777:team-payments"
		ouSecret = "arn:aws:secretsmanager:eu-west-1:999988887777:secret:kmsfix/sandbox-AbC123"
	)
	values := map[string]string{
		"deployment": "org", "orgId": orgID, "hubAccount": hubAccount, "hubRegion": "eu-west-1",
		"spokeTargets": "ou-ab12-workload1", "spokeRegions": "eu-west-1",
		"routes": "tag:team=payments=sns:" + tagTopic + ",ou-ab12-sandbox01=slack:" + ouSecret + "," + otherAcct + "=sns:" + routedTopic,
	}
	d, err := config.LoadDeployment(func(p config.Param) string { return values[p.Context] })
	if err != nil {
		t.Fatal(err)
	}
	assetDir := filepath.Join(outDir, "asset-orgroute")
	if err := os.MkdirAll(assetDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assetDir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(outDir, "cdk.out-orgroute"))})
	stack := NewKmsfixStack(app, "KmsfixHub", &StackProps{StackProps: awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String(hubAccount), Region: jsii.String("eu-west-1")}}, Config: d, AssetDir: assetDir})
	awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	s := &synthesized{stack: stack}
	if err := try(func() { s.template = assertions.Template_FromStack(stack, nil) }); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(s.template.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	s.raw = raw
	if err := json.Unmarshal(raw, &s.json); err != nil {
		t.Fatal(err)
	}

	accounts := `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":organizations::*:account/o-abcdefghij/*"]]}`
	ous := `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":organizations::*:ou/o-abcdefghij/ou-*"]]}`
	st := findStmt(t, s, "ReadAccountParentsForRoutes")
	if !slices.Equal(st.actions, []string{"organizations:ListParents"}) || !slices.Equal(st.resources, []string{accounts, ous}) || st.condition != nil {
		t.Errorf("ReadAccountParentsForRoutes = %v on %s if %v", st.actions, asJSON(st.resources), st.condition)
	}
	st = findStmt(t, s, "ReadAccountTagsForRoutes")
	if !slices.Equal(st.actions, []string{"organizations:ListTagsForResource"}) || !slices.Equal(st.resources, []string{accounts}) || st.condition != nil {
		t.Errorf("ReadAccountTagsForRoutes = %v on %s if %v", st.actions, asJSON(st.resources), st.condition)
	}
	if got := findStmt(t, s, "PublishRoutedFindings").resources; !slices.Equal(got, []string{routedTopic, tagTopic}) {
		t.Errorf("routed topics = %v", got)
	}
	if got := findStmt(t, s, "ReadRoutedSlackSecrets").resources; !slices.Equal(got, []string{ouSecret}) {
		t.Errorf("routed secrets = %v", got)
	}
	var orgActions []string
	for _, st := range s.statements() {
		for _, a := range st.actions {
			if strings.HasPrefix(a, "organizations:") {
				orgActions = append(orgActions, a)
			}
		}
	}
	if len(orgActions) != 2 {
		t.Errorf("Organizations actions granted: %v; want ListParents and ListTagsForResource only", orgActions)
	}
	// The function reads back the routes the stack renders, in the hub.
	_, fn := s.one(t, "AWS::Lambda::Function")
	if v, _ := fn["Environment"].(map[string]any)["Variables"].(map[string]any)["KMSFIX_ROUTES"].(string); !strings.Contains(v, "tag:team=payments=sns:") ||
		!strings.Contains(v, "ou-ab12-sandbox01=slack:") {
		t.Errorf("KMSFIX_ROUTES = %q", v)
	}
	var alarmed bool
	for _, a := range s.resources("AWS::CloudWatch::Alarm") {
		alarmed = alarmed || a["MetricName"] == "RouteLookupFailed"
	}
	if !alarmed {
		t.Error("no alarm on RouteLookupFailed: a hub whose lookups fail would route to the default channel unseen")
	}
	var ann assertions.Annotations
	if err := try(func() { ann = assertions.Annotations_FromStack(stack) }); err != nil {
		t.Fatal(err)
	}
	if err := try(func() {
		ann.HasNoError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
	}); err != nil {
		t.Errorf("unsuppressed cdk-nag errors: %v", err)
	}
	if out, err := runGuard(t, guardRules(t), s.raw); err != nil {
		t.Errorf("cfn-guard failed (%v):\n%s", err, out)
	}

	for _, a := range synthOrg(t).hub.resources("AWS::CloudWatch::Alarm") {
		if a["MetricName"] == "RouteLookupFailed" {
			t.Error("a hub without OU or tag routes alarms on RouteLookupFailed")
		}
	}
	for _, st := range synthOrg(t).hub.statements() {
		for _, a := range st.actions {
			if strings.HasPrefix(a, "organizations:") {
				t.Errorf("a hub without OU or tag routes is granted %s", a)
			}
		}
	}
}
