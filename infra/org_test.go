package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/eventpattern"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

const (
	orgID      = "o-abcdefghij"
	hubAccount = "999988887777"
	hubRoleARN = "arn:aws:iam::999988887777:role/kmsfix-hub-remediator"
	hubBusARN  = "arn:aws:events:eu-west-1:999988887777:event-bus/kmsfix-hub"
)

func orgDeployment(t *testing.T, mode string) config.Deployment {
	t.Helper()
	values := map[string]string{
		"deployment": "org", "orgId": orgID, "hubAccount": hubAccount, "hubRegion": "eu-west-1",
		"spokeTargets": "ou-ab12-workload1", "spokeRegions": "us-east-1,eu-west-1", "sandboxOus": "ou-ab12-sandbox01",
		"mode": mode,
	}
	if mode == "apply" {
		values["sandboxAccounts"] = sandbox
	}
	d, err := config.LoadDeployment(func(p config.Param) string { return values[p.Context] })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// orgSynth is the organization deployment as `cdk synth -c deployment=org` builds it.
type orgSynth struct {
	hub, spoke, stackSet *synthesized
	spokeBody            string // the StackSet's TemplateBody
}

var (
	orgOnce  sync.Once
	orgBuilt *orgSynth
	orgErr   error
)

func synthOrg(t *testing.T) *orgSynth {
	t.Helper()
	orgOnce.Do(func() { orgBuilt, orgErr = buildOrg(t) })
	if orgErr != nil {
		t.Fatal(orgErr)
	}
	return orgBuilt
}

func buildOrg(t *testing.T) (*orgSynth, error) {
	d := orgDeployment(t, "apply")
	assetDir := filepath.Join(outDir, "asset-org")
	if err := os.MkdirAll(assetDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(assetDir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		return nil, err
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(outDir, "cdk.out-org"))})
	env := &awscdk.Environment{Account: jsii.String(hubAccount), Region: jsii.String("eu-west-1")}
	body, err := SpokeTemplate(d.Org)
	if err != nil {
		return nil, err
	}
	stacks := []awscdk.Stack{
		NewKmsfixStack(app, "KmsfixHub", &StackProps{StackProps: awscdk.StackProps{Env: env}, Config: d, AssetDir: assetDir}),
		NewSpokeStack(app, "KmsfixSpoke", &SpokeProps{Org: d.Org}),
		NewSpokeStackSet(app, "KmsfixSpokes", awscdk.StackProps{Env: env}, d.Org, body),
	}
	out := make([]*synthesized, len(stacks))
	for i, stack := range stacks {
		awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
		s := &synthesized{stack: stack}
		if err := try(func() { s.template = assertions.Template_FromStack(stack, nil) }); err != nil {
			return nil, fmt.Errorf("synth %s: %w", *stack.StackName(), err)
		}
		raw, err := json.Marshal(s.template.ToJSON())
		if err != nil {
			return nil, err
		}
		s.raw = raw
		if err := json.Unmarshal(raw, &s.json); err != nil {
			return nil, err
		}
		out[i] = s
	}
	return &orgSynth{hub: out[0], spoke: out[1], stackSet: out[2], spokeBody: body}, nil
}

func TestHubBusAdmitsOnlyTheOrgsDenials(t *testing.T) {
	o := synthOrg(t)
	_, bus := o.hub.one(t, "AWS::Events::EventBus")
	if bus["Name"] != config.HubBusName {
		t.Errorf("bus name = %v", bus["Name"])
	}
	_, pol := o.hub.one(t, "AWS::Events::EventBusPolicy")
	st := pol["Statement"].(map[string]any)
	want := `{"ArnLike":{"aws:PrincipalArn":{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::*:role/kmsfix-forward"]]}},` +
		`"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij","events:detail-type":"AWS API Call via CloudTrail","events:source":"aws.kms"}}`
	if got := asJSON(st["Condition"]); got != want {
		t.Errorf("bus policy condition = %s\nwant %s", got, want)
	}
	if st["Effect"] != "Allow" || st["Action"] != "events:PutEvents" {
		t.Errorf("bus policy statement = %s", asJSON(st))
	}
	// The hub's denial rule reads the hub's bus and takes every account (the function checks
	// each event's account against its record).
	rule := o.hub.denialRule(t)
	if rule["EventBusName"] == nil {
		t.Error("the hub's denial rule must be on the hub's bus")
	}
	if ep := rule["EventPattern"].(map[string]any); ep["account"] != nil {
		t.Errorf("the hub's rule filters accounts: %v", ep["account"])
	}
}

func TestHubFunctionAssumesOnlyOrgSpokeRoles(t *testing.T) {
	o := synthOrg(t)
	roles := o.hub.resources("AWS::IAM::Role")
	var named bool
	for _, r := range roles {
		named = named || r["RoleName"] == config.HubRoleName
	}
	if !named {
		t.Errorf("the hub function's role must be named %s (the spokes trust it by ARN)", config.HubRoleName)
	}
	inOrg := `{"StringEquals":{"aws:ResourceOrgID":"o-abcdefghij"}}`
	st := findStmt(t, o.hub, "AssumeSpokeRoles")
	if got := asJSON(st.condition); got != inOrg {
		t.Errorf("assume condition = %s", got)
	}
	if got := strings.Join(st.resources, ","); len(st.resources) != 1 || !strings.Contains(got, ":iam::*:role/kmsfix-reader") {
		t.Errorf("reader roles assumed = %s", got)
	}
	// Apply mode: the apply role of each sandbox account by its exact ARN, in the organization.
	ap := findStmt(t, o.hub, "AssumeSandboxApplyRoles")
	if got := asJSON(ap.condition); got != inOrg {
		t.Errorf("apply-role condition = %s", got)
	}
	if got := strings.Join(ap.resources, ","); len(ap.resources) != 1 || !strings.Contains(got, `":iam::`+sandbox+`:role/kmsfix-apply"`) {
		t.Errorf("apply roles assumed = %s", got)
	}
	if len(ap.actions) != 1 || ap.actions[0] != "sts:AssumeRole" || ap.effect != "Allow" {
		t.Errorf("apply-role statement: %+v", ap)
	}
	// The hub's own role holds no lever: every change goes through a spoke's apply role.
	for _, x := range o.hub.statements() {
		for _, a := range x.actions {
			if a == "iam:PutRolePolicy" || a == "iam:PutUserPolicy" || (a == "kms:PutKeyPolicy" && x.effect == "Allow") ||
				(a == "kms:CreateGrant" && x.effect == "Allow") {
				t.Errorf("the hub's role may %s (%s)", a, x.sid)
			}
		}
	}
	_, fn := o.hub.one(t, "AWS::Lambda::Function")
	vars := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	if v := vars["KMSFIX_HUB_ORG_ID"]; v != orgID {
		t.Errorf("KMSFIX_HUB_ORG_ID = %v", v)
	}
	if vars["KMSFIX_AUDIT_KEY_ARN"] == nil {
		t.Error("the hub in apply mode has no audit key")
	}
}

// The spokes' reader and apply roles trust exactly the hub function's role and the hub's
// break-glass role (a person reverting early), each with the organization condition.
func TestSpokeRolesTrustTheHubAndBreakGlass(t *testing.T) {
	o := synthOrg(t)
	if n := len(o.spoke.resources("AWS::Lambda::Function")); n != 0 {
		t.Errorf("the spoke has %d functions; it must carry no code", n)
	}
	if params, _ := o.spoke.json["Parameters"].(map[string]any); params["BootstrapVersion"] != nil {
		t.Error("the spoke needs a CDK bootstrap; a StackSet deploys it to accounts that have none")
	}
	byName := map[string]map[string]any{}
	for _, r := range o.spoke.resources("AWS::IAM::Role") {
		name, _ := r["RoleName"].(string)
		byName[name] = r
	}
	for _, name := range []string{config.ReaderRoleName, config.ApplyRoleName} {
		r := byName[name]
		if r == nil {
			t.Fatalf("no role %s", name)
		}
		trust := r["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)
		inOrg := `{"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}},"Effect":"Allow",`
		want := `[` + inOrg + `"Principal":{"AWS":"` + hubRoleARN + `"}},` +
			inOrg + `"Principal":{"AWS":"arn:aws:iam::` + hubAccount + `:role/kmsfix-break-glass"}}]`
		if got := asJSON(trust); got != want {
			t.Errorf("%s trust = %s\nwant %s", name, got, want)
		}
	}
	fwd := byName[config.ForwardRoleName]
	if got := asJSON(fwd["AssumeRolePolicyDocument"].(map[string]any)["Statement"]); !strings.Contains(got, `"Service":"events.amazonaws.com"`) ||
		!strings.Contains(got, `"aws:SourceAccount"`) {
		t.Errorf("forward role trust = %s", got)
	}
	// The roles and their policies exist only in the role Region (IAM names are global), and
	// the apply role and its policy only there and where the StackSet says the OU is a sandbox.
	for id, r := range o.spoke.json["Resources"].(map[string]any) {
		res := r.(map[string]any)
		props, _ := res["Properties"].(map[string]any)
		want := ""
		switch {
		case props["RoleName"] == config.ApplyRoleName || strings.HasPrefix(id, "ApplyPolicy"):
			want = "IsSandboxRoleRegion"
		case res["Type"] == "AWS::IAM::Role" || res["Type"] == "AWS::IAM::Policy":
			want = "IsRoleRegion"
		}
		if got, _ := res["Condition"].(string); got != want {
			t.Errorf("%s (%v): condition %q, want %q", id, res["Type"], got, want)
		}
	}
	conds := asJSON(o.spoke.json["Conditions"])
	for _, want := range []string{`"IsRoleRegion":{"Fn::Equals":[{"Ref":"AWS::Region"},"eu-west-1"]}`,
		`"IsSandboxRoleRegion":{"Fn::And":[{"Condition":"IsSandbox"},{"Condition":"IsRoleRegion"}]}`} {
		if !strings.Contains(conds, want) {
			t.Errorf("spoke conditions lack %s: %s", want, conds)
		}
	}
	// No wildcard action anywhere: managed policies and the roles' inline ones.
	actions := []string{}
	for _, st := range o.spoke.statements() {
		actions = append(actions, st.actions...)
	}
	for _, r := range o.spoke.resources("AWS::IAM::Role") {
		for _, p := range asSlice(r["Policies"]) {
			for _, st := range asSlice(p.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"]) {
				actions = append(actions, strs(st.(map[string]any)["Action"])...)
			}
		}
	}
	if len(actions) < 10 {
		t.Fatalf("only %d actions found in the spoke", len(actions))
	}
	for _, a := range actions {
		if strings.Contains(a, "*") {
			t.Errorf("wildcard action %s", a)
		}
	}
}

// The StackSet's template deployed as CloudFormation would in each Region of a sandbox
// account (awsfake.LoadTemplate resolves its conditions and intrinsics): the role Region's
// stack creates the three roles, another Region's none, and both Regions' rules forward with
// the same fixed-name role, so the second Region of an account never creates a role again.
func TestSpokeRolesOnlyInTheRoleRegion(t *testing.T) {
	o := synthOrg(t)
	org := orgDeployment(t, "apply").Org
	const account = "444455556666"
	roleARN := "arn:aws:iam::" + account + ":role/" + config.ForwardRoleName
	for _, region := range org.Regions {
		t.Run(region, func(t *testing.T) {
			ev, iamFake := awsfake.NewDoctor(t, ""), awsfake.NewIAM(t)
			env := awsfake.CFNEnv{Partition: "aws", Account: account, Region: region, StackName: "StackSet-kmsfix-spokes-0a1b2c3d",
				Parameters: map[string]string{config.SandboxParameter: "true"}}
			if err := awsfake.LoadTemplate(ev, iamFake, []byte(o.spokeBody), env); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{config.ForwardRoleName, config.ReaderRoleName, config.ApplyRoleName} {
				exists := iamFake.EditPrincipal("role/"+name, func(*awsfake.IAMPrincipal) {})
				if want := region == org.RoleRegion(); exists != want {
					t.Errorf("role %s created: %v, want %v", name, exists, want)
				}
			}
			if len(ev.Rules) != 1 || len(ev.Rules[0].Targets) != 1 {
				t.Fatalf("rules: %+v", ev.Rules)
			}
			if tg := ev.Rules[0].Targets[0]; tg.RoleARN != roleARN || tg.ARN != hubBusARN {
				t.Errorf("target %s as %s, want %s as %s", tg.ARN, tg.RoleARN, hubBusARN, roleARN)
			}
		})
	}
}

// The spoke's roles are global, so their policies cover the keys of every spoke Region, and
// of no other: each KMS statement names each listed Region's keys and none of "this Region".
func TestSpokePoliciesCoverEveryRegion(t *testing.T) {
	o := synthOrg(t)
	org := orgDeployment(t, "apply").Org
	for _, sid := range []string{"DescribeKeys", "ReadOwnKeyPolicies", "ApplyKeyPolicies", "ApplyGrants", "RetireGrants",
		"NeverGrantToOwnOrBootstrapRoles", "NeverBypassLockoutCheck"} {
		st := findStmt(t, o.spoke, sid)
		if len(st.resources) != len(org.Regions) {
			t.Errorf("%s: %d resources, want one per Region: %v", sid, len(st.resources), st.resources)
		}
		for _, region := range org.Regions {
			if !slices.ContainsFunc(st.resources, func(r string) bool { return strings.Contains(r, ":kms:"+region+":") }) {
				t.Errorf("%s: no key of %s in %v", sid, region, st.resources)
			}
		}
		if got := strings.Join(st.resources, " "); strings.Contains(got, "AWS::Region") {
			t.Errorf("%s: keys of the stack's own Region only: %s", sid, got)
		}
	}
	if got := asJSON(findStmt(t, o.spoke, "ListAliases").condition); got != `{"StringEquals":{"aws:RequestedRegion":["us-east-1","eu-west-1"]}}` {
		t.Errorf("ListAliases condition = %s", got)
	}
	// The single-account stack keeps its own Region.
	single := findStmt(t, synth(t, "notify"), "DescribeKeys").resources
	if len(single) != 1 || !strings.Contains(single[0], `{"Ref":"AWS::Region"}`) {
		t.Errorf("single-account DescribeKeys = %v", single)
	}
}

func TestSpokeRuleForwardsToTheHub(t *testing.T) {
	o := synthOrg(t)
	rule := o.spoke.denialRule(t)
	if rule["State"] != ruleState {
		t.Errorf("spoke rule state = %v", rule["State"])
	}
	tg := rule["Targets"].([]any)[0].(map[string]any)
	if tg["Arn"] != hubBusARN || tg["RoleArn"] == nil || tg["DeadLetterConfig"] == nil || tg["RetryPolicy"] == nil {
		t.Errorf("spoke target = %s", asJSON(tg))
	}
	// The same pattern as the single-account stack's rule, from the one definition: every
	// sample is matched or not exactly as there.
	single := synth(t, "notify").denialPattern(t, "")
	var ep map[string]any
	if err := json.Unmarshal([]byte(asJSON(rule["EventPattern"])), &ep); err != nil {
		t.Fatal(err)
	}
	if got := asJSON(ep["account"]); got != `[{"Ref":"AWS::AccountId"}]` {
		t.Errorf("the spoke rule must take only its own account's events, account = %s", got)
	}
	delete(ep, "account")
	spoke, err := eventpattern.FromValue(ep)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, smp := range loadSamples(t) {
		a, err1 := single.Match(smp.envelope)
		b, err2 := spoke.Match(smp.envelope)
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("%s: single-account rule %v (%v), spoke rule %v (%v)", smp.name, a, err1, b, err2)
		}
		if b {
			n++
		}
	}
	if n < 4 {
		t.Fatalf("the spoke rule matched only %d samples", n)
	}
}

func TestStackSetDeploysTheSpoke(t *testing.T) {
	o := synthOrg(t)
	_, ss := o.stackSet.one(t, "AWS::CloudFormation::StackSet")
	if ss["PermissionModel"] != "SERVICE_MANAGED" || ss["CallAs"] != "DELEGATED_ADMIN" ||
		asJSON(ss["AutoDeployment"]) != `{"Enabled":true,"RetainStacksOnAccountRemoval":false}` ||
		asJSON(ss["Capabilities"]) != `["CAPABILITY_NAMED_IAM"]` {
		t.Errorf("stack set = %s", asJSON(ss))
	}
	groups := asJSON(ss["StackInstancesGroup"])
	if !strings.Contains(groups, `"OrganizationalUnitIds":["ou-ab12-workload1"]`) ||
		!strings.Contains(groups, `"OrganizationalUnitIds":["ou-ab12-sandbox01"]`) ||
		!strings.Contains(groups, `"ParameterKey":"SandboxApply","ParameterValue":"true"`) ||
		!strings.Contains(groups, `"Regions":["eu-west-1","us-east-1"]`) {
		t.Errorf("stack instances = %s", groups)
	}
	// The role Region (the hub's) first, one Region at a time.
	if got := asJSON(ss["OperationPreferences"]); !strings.Contains(got, `"RegionConcurrencyType":"SEQUENTIAL"`) ||
		!strings.Contains(got, `"RegionOrder":["eu-west-1","us-east-1"]`) {
		t.Errorf("operation preferences = %s", got)
	}
	if ss["TemplateBody"] != o.spokeBody {
		t.Error("the StackSet's template is not the spoke's")
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(o.spokeBody), &body); err != nil {
		t.Fatalf("template body: %v", err)
	}
	if asJSON(body["Resources"]) != asJSON(o.spoke.json["Resources"]) {
		t.Error("the StackSet's template differs from the KmsfixSpoke stack")
	}
	// CloudFormation takes at most 51,200 bytes of TemplateBody
	// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
	if len(o.spokeBody) > 51200 {
		t.Errorf("spoke template is %d bytes, over the TemplateBody limit", len(o.spokeBody))
	}
}

func TestOrgTemplatesNagAndGuardClean(t *testing.T) {
	o := synthOrg(t)
	rules := guardRules(t)
	nagErrors := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for name, s := range map[string]*synthesized{"hub": o.hub, "spoke": o.spoke, "stackset": o.stackSet} {
		t.Run(name, func(t *testing.T) {
			var ann assertions.Annotations
			if err := try(func() { ann = assertions.Annotations_FromStack(s.stack) }); err != nil {
				t.Fatal(err)
			}
			if err := try(func() { ann.HasNoError(jsii.String("*"), nagErrors) }); err != nil {
				t.Errorf("unsuppressed cdk-nag errors: %v", err)
			}
			if out, err := runGuard(t, rules, s.raw); err != nil {
				t.Errorf("cfn-guard failed (%v):\n%s", err, out)
			}
		})
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// The hub's right to assume apply roles exists only in apply mode and not in a dry run; it
// names each sandbox account's role, and above maxListedApplyRoles accounts every account's
// of the organization.
func TestHubAssumesApplyRolesOnlyInApplyMode(t *testing.T) {
	org := &config.Org{ID: orgID}
	render := func(cfg config.Config) map[string]string {
		out := map[string]string{}
		for _, st := range hubAssumeStatements(cfg, org) {
			out[*st.Sid()] = asJSON(st.ToStatementJson())
		}
		return out
	}
	if got := render(config.Config{Mode: config.ModeNotify, SandboxAccounts: []string{sandbox}}); len(got) != 1 || got["AssumeSpokeRoles"] == "" {
		t.Errorf("notify mode: %v", got)
	}
	if got := render(config.Config{Mode: config.ModeApply, DryRun: true, SandboxAccounts: []string{sandbox}}); len(got) != 1 {
		t.Errorf("dry run: %v", got)
	}
	two := render(config.Config{Mode: config.ModeApply, SandboxAccounts: []string{"111122223333", "111122224444"}})["AssumeSandboxApplyRoles"]
	for _, want := range []string{":iam::111122223333:role/kmsfix-apply", ":iam::111122224444:role/kmsfix-apply", `"aws:ResourceOrgID":"o-abcdefghij"`} {
		if !strings.Contains(two, want) {
			t.Errorf("apply roles of two sandboxes lack %s: %s", want, two)
		}
	}
	if strings.Contains(two, ":iam::*:") {
		t.Errorf("a wildcard account with two sandboxes: %s", two)
	}
	many := make([]string, maxListedApplyRoles+1)
	for i := range many {
		many[i] = fmt.Sprintf("2000000%05d", i)
	}
	if got := render(config.Config{Mode: config.ModeApply, SandboxAccounts: many})["AssumeSandboxApplyRoles"]; !strings.Contains(got, ":iam::*:role/kmsfix-apply") ||
		!strings.Contains(got, `"aws:ResourceOrgID":"o-abcdefghij"`) || strings.Contains(got, many[0]) {
		t.Errorf("%d sandboxes: %s", len(many), got)
	}
}

// With maxListedApplyRoles sandbox accounts the hub function's inline policies stay within
// IAM's 10,240 characters per role (whitespace not counted; the template's intrinsic
// functions stand in for the ARNs they resolve to).
func TestHubPolicyFitsWithListedApplyRoles(t *testing.T) {
	o := synthOrg(t)
	size := 0
	for id, p := range o.hub.resources("AWS::IAM::Policy") {
		if strings.Contains(asJSON(p["Roles"]), "FunctionRole") {
			size += len(asJSON(p["PolicyDocument"]))
			t.Logf("%s: %d characters", id, len(asJSON(p["PolicyDocument"])))
		}
	}
	perAccount := len(`"arn:aws:iam::111122223333:role/kmsfix-apply",`)
	if total := size + (maxListedApplyRoles-1)*perAccount; size < 1000 || total > 10240 {
		t.Errorf("the function's inline policies: %d characters now, %d with %d listed apply roles (quota 10,240)", size, total, maxListedApplyRoles)
	}
}

// The hub creates kmsfix-break-glass (the spokes' trust names it, so it must exist before them):
// trusted by the hub account alone, and in apply mode allowed exactly what a revert needs: the
// audit records, their seal, and the function's own AssumeRole statements (readers in the
// organization, the sandbox accounts' apply roles); no lever of its own. The audit key's and
// the table's policies admit it by name.
func TestHubBreakGlassRole(t *testing.T) {
	o := synthOrg(t)
	var role map[string]any
	for _, r := range o.hub.resources("AWS::IAM::Role") {
		if r["RoleName"] == config.BreakGlassRoleName {
			role = r
		}
	}
	if role == nil {
		t.Fatal("the hub has no break-glass role")
	}
	trust := asJSON(role["AssumeRolePolicyDocument"].(map[string]any)["Statement"])
	want := `[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"AWS":{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::` + hubAccount + `:root"]]}}}]`
	if trust != want {
		t.Errorf("break-glass trust = %s\nwant the hub account alone: %s", trust, want)
	}
	if got := fmt.Sprint(role["MaxSessionDuration"]); got != "3600" {
		t.Errorf("MaxSessionDuration = %s", got)
	}
	var sids []string
	for id, p := range o.hub.resources("AWS::IAM::Policy") {
		if !strings.HasPrefix(id, "BreakGlassPolicy") {
			continue
		}
		for _, raw := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := raw.(map[string]any)
			sid, _ := st["Sid"].(string)
			sids = append(sids, sid)
			if st["Effect"] != "Allow" {
				t.Errorf("%s: %v", sid, st["Effect"])
			}
			want := map[string]string{
				"AuditRecords":            "dynamodb:GetItem,dynamodb:PutItem,dynamodb:DeleteItem,dynamodb:Query",
				"SealAuditRecords":        "kms:GenerateMac,kms:VerifyMac",
				"AssumeSpokeRoles":        "sts:AssumeRole",
				"AssumeSandboxApplyRoles": "sts:AssumeRole",
			}[sid]
			if got := strings.Join(strs(st["Action"]), ","); got != want {
				t.Errorf("%s allows %s, want %s", sid, got, want)
			}
			if strings.HasPrefix(sid, "Assume") && asJSON(st["Condition"]) != `{"StringEquals":{"aws:ResourceOrgID":"`+orgID+`"}}` {
				t.Errorf("%s condition = %s", sid, asJSON(st["Condition"]))
			}
		}
	}
	slices.Sort(sids)
	if strings.Join(sids, ",") != "AssumeSandboxApplyRoles,AssumeSpokeRoles,AuditRecords,SealAuditRecords" {
		t.Errorf("break-glass statements %v", sids)
	}
	if ap := findStmt(t, o.hub, "AssumeSandboxApplyRoles"); !strings.Contains(strings.Join(ap.resources, ","), ":iam::"+sandbox+":role/kmsfix-apply") {
		t.Errorf("apply roles %v", ap.resources)
	}
	// The audit key and the table admit it by name (their Denies spare it).
	bg := `:role/` + config.BreakGlassRoleName // in the hub's own account (AWS::AccountId)
	for _, typ := range []string{"AWS::KMS::Key", "AWS::DynamoDB::Table"} {
		found := false
		for _, r := range o.hub.resources(typ) {
			if strings.Contains(asJSON(r), bg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s admits %s", typ, config.BreakGlassRoleName)
		}
	}
}
