package main

// `kmsfix doctor --hub` and `--spoke` against what this app synthesizes: the wire fakes are
// loaded from the hub, spoke and StackSet templates (awsfake.LoadTemplate resolves their
// intrinsics as CloudFormation would in the hub and a member account), the doctor must pass
// on them through the real SDK clients, and each single break must be reported by the check
// that owns it.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/doctor"
	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

const (
	spokeAccount   = "111122223333"
	sandboxAccount = "444455556666"
	spokeRegion    = "us-east-1"
)

// ouAccounts are the accounts of the test organization's OUs (orgDeployment's targets).
var ouAccounts = map[string][]string{
	"ou-ab12-workload1": {spokeAccount, "222233334444"},
	"ou-ab12-sandbox01": {sandboxAccount},
}

func sdkConfig(region, url string) aws.Config {
	return aws.Config{Region: region, Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1,
		HTTPClient: scan.BufferBodies(http.DefaultClient), BaseEndpoint: aws.String(url)}
}

type hubFakes struct {
	ev *awsfake.Doctor
	cf *awsfake.CloudFormation
}

func deployedHub(t *testing.T, o *orgSynth) hubFakes {
	t.Helper()
	h := hubFakes{ev: awsfake.NewDoctor(t, ""), cf: awsfake.NewCloudFormation(t)}
	h.cf.PageSize = 2 // the doctor must follow NextToken
	env := awsfake.CFNEnv{Partition: "aws", Account: hubAccount, Region: "eu-west-1", StackName: "KmsfixHub"}
	if err := awsfake.LoadTemplate(h.ev, nil, o.hub.raw, env); err != nil {
		t.Fatal(err)
	}
	env.StackName = "KmsfixSpokes"
	if err := awsfake.LoadStackSet(h.cf, o.stackSet.raw, env, ouAccounts); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h hubFakes) run(t *testing.T, org *config.Org) []doctor.Check {
	t.Helper()
	return doctor.RunHub(context.Background(), doctor.HubClients{
		EventBridge:    eventbridge.NewFromConfig(sdkConfig("eu-west-1", h.ev.URL)),
		Lambda:         lambda.NewFromConfig(sdkConfig("eu-west-1", h.ev.URL)),
		CloudFormation: cloudformation.NewFromConfig(sdkConfig("eu-west-1", h.cf.URL)),
	}, doctor.HubOptions{Region: "eu-west-1", Org: org})
}

type spokeFakes struct {
	ev  *awsfake.Doctor
	iam *awsfake.IAM
}

// deployedSpoke is an account's spokes as the StackSet leaves them: the instance of the role
// Region (the hub's, eu-west-1) creates the global roles, the one of spokeRegion, which the
// doctor checks, only its rule and queue. withRoles false: the role Region's instance is
// missing.
func deployedSpoke(t *testing.T, o *orgSynth, account, sandbox string, withRoles ...bool) spokeFakes {
	t.Helper()
	s := spokeFakes{ev: awsfake.NewDoctor(t, ""), iam: awsfake.NewIAM(t)}
	env := awsfake.CFNEnv{Partition: "aws", Account: account, Region: spokeRegion, StackName: "StackSet-kmsfix-spokes-0a1b2c3d",
		Parameters: map[string]string{config.SandboxParameter: sandbox}}
	if len(withRoles) == 0 || withRoles[0] {
		roleEnv := env
		roleEnv.Region = "eu-west-1"
		if err := awsfake.LoadTemplate(awsfake.NewDoctor(t, ""), s.iam, []byte(o.spokeBody), roleEnv); err != nil {
			t.Fatal(err)
		}
	}
	// The StackSet's template body, exactly what each member account receives.
	if err := awsfake.LoadTemplate(s.ev, s.iam, []byte(o.spokeBody), env); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s spokeFakes) run(t *testing.T, org *config.Org, account string, sandbox *bool) []doctor.Check {
	t.Helper()
	return doctor.RunSpoke(context.Background(), doctor.SpokeClients{
		EventBridge: eventbridge.NewFromConfig(sdkConfig(spokeRegion, s.ev.URL)),
		IAM:         iam.NewFromConfig(sdkConfig(spokeRegion, s.iam.URL)),
	}, doctor.SpokeOptions{Region: spokeRegion, Account: account, Org: org, Sandbox: sandbox})
}

// allPass asserts n checks, each passed but those named in skips, which were skipped.
func allPass(t *testing.T, checks []doctor.Check, n int, skips ...string) {
	t.Helper()
	if len(checks) != n {
		t.Errorf("%d checks, want %d", len(checks), n)
	}
	for _, c := range checks {
		want := doctor.Pass
		if slices.Contains(skips, c.Name) {
			want = doctor.Skip
		}
		if c.Status != want {
			t.Errorf("%s: %s %s\n  fix: %s", c.Name, c.Status, c.Detail, c.Fix)
		}
	}
}

// reported asserts the named check failed with a fix, naming each of want in its detail.
func reported(t *testing.T, checks []doctor.Check, name string, want ...string) {
	t.Helper()
	if !doctor.Failed(checks) {
		t.Errorf("no check failed")
	}
	i := slices.IndexFunc(checks, func(c doctor.Check) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no check %q", name)
	}
	c := checks[i]
	if c.Status != doctor.Fail || c.Fix == "" {
		t.Errorf("%s: %s %q (fix %q), want FAIL with a fix", name, c.Status, c.Detail, c.Fix)
	}
	for _, w := range want {
		if !strings.Contains(c.Detail, w) {
			t.Errorf("%s: detail %q lacks %q", name, c.Detail, w)
		}
	}
}

func TestDoctorHubOnTheSynthesizedHub(t *testing.T) {
	o := synthOrg(t)
	org := orgDeployment(t, "apply").Org
	allPass(t, deployedHub(t, o).run(t, org), 14)

	policyStatement := func(h hubFakes) map[string]any {
		var doc map[string]any
		if err := json.Unmarshal([]byte(h.ev.Buses[0].Policy), &doc); err != nil {
			t.Fatal(err)
		}
		return doc["Statement"].([]any)[0].(map[string]any)
	}
	setPolicy := func(h hubFakes, statements ...any) {
		b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
		h.ev.Buses[0].Policy = string(b)
	}
	conditions := func(st map[string]any, op string) map[string]any {
		return st["Condition"].(map[string]any)[op].(map[string]any)
	}
	cases := []struct {
		name, check string
		want        []string
		breakIt     func(h hubFakes)
	}{
		{"no hub bus", doctor.NameHubBus, nil, func(h hubFakes) { h.ev.Buses = nil }},
		{"wildcard principal without conditions", doctor.NameHubBusPrincipals, []string{`statement "everyone"`, "aws:PrincipalOrgID", "AWS:*"},
			func(h hubFakes) {
				setPolicy(h, policyStatement(h), map[string]any{"Sid": "everyone", "Effect": "Allow", "Principal": "*",
					"Action": "events:PutEvents", "Resource": org.HubBusARN})
			}},
		{"org condition removed", doctor.NameHubBusPrincipals, []string{"no StringEquals condition aws:PrincipalOrgID = " + orgID},
			func(h hubFakes) {
				st := policyStatement(h)
				delete(conditions(st, "StringEquals"), "aws:PrincipalOrgID")
				setPolicy(h, st)
			}},
		{"another organization", doctor.NameHubBusPrincipals, []string{"o-zzzzzzzzzz"},
			func(h hubFakes) {
				st := policyStatement(h)
				conditions(st, "StringEquals")["aws:PrincipalOrgID"] = []any{orgID, "o-zzzzzzzzzz"}
				setPolicy(h, st)
			}},
		{"any role of the organization", doctor.NameHubBusPrincipals, []string{"aws:PrincipalArn"},
			func(h hubFakes) {
				st := policyStatement(h)
				delete(st["Condition"].(map[string]any), "ArnLike")
				setPolicy(h, st)
			}},
		{"PutRule allowed too", doctor.NameHubBusEvents, []string{"events:putrule"},
			func(h hubFakes) {
				st := policyStatement(h)
				st["Action"] = []any{"events:PutEvents", "events:PutRule"}
				setPolicy(h, st)
			}},
		{"source condition removed", doctor.NameHubBusEvents, []string{"events:source"},
			func(h hubFakes) {
				st := policyStatement(h)
				delete(conditions(st, "StringEquals"), "events:source")
				setPolicy(h, st)
			}},
		{"hub rule targets another function", doctor.NameHubRuleTarget, nil,
			func(h hubFakes) {
				for _, r := range h.ev.Rules {
					if r.Bus == config.HubBusName {
						r.Targets[0].ARN = "arn:aws:sqs:eu-west-1:999988887777:elsewhere"
					}
				}
			}},
		{"function not in hub mode", doctor.NameHubMode, []string{"KMSFIX_HUB_ORG_ID is not set"},
			func(h hubFakes) { delete(h.ev.Functions[0].Env, "KMSFIX_HUB_ORG_ID") }},
		{"function runs as another role", doctor.NameHubMode, []string{"role/other"},
			func(h hubFakes) { h.ev.Functions[0].Role = "arn:aws:iam::999988887777:role/other" }},
		{"self-managed StackSet", doctor.NameStackSet, []string{"SELF_MANAGED"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) { s.PermissionModel = "SELF_MANAGED" })
			}},
		{"auto-deployment off", doctor.NameStackSetAuto, []string{"disabled"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) { s.AutoDeployment = false })
			}},
		{"sandbox OU not targeted", doctor.NameStackSetTargets, []string{"OUs missing: ou-ab12-sandbox01"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) { s.OUs = s.OUs[:1] })
			}},
		{"instance OUTDATED", doctor.NameStackSetInstances, []string{"222233334444 us-east-1 OUTDATED/FAILED: Role kmsfix-reader already exists"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) {
					for i, in := range s.Instances {
						if in.Account == "222233334444" && in.Region == "us-east-1" {
							s.Instances[i].Status, s.Instances[i].DetailedStatus = "OUTDATED", "FAILED"
							s.Instances[i].Reason = "Role kmsfix-reader already exists"
						}
					}
				})
			}},
		{"an account without its role Region's spoke", doctor.NameStackSetRegions, []string{"1 account(s) without a spoke in the hub's Region eu-west-1", "222233334444"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) {
					s.Instances = slices.DeleteFunc(s.Instances, func(in awsfake.StackInstance) bool {
						return in.Account == "222233334444" && in.Region == "eu-west-1"
					})
				})
			}},
		{"the role Region missing", doctor.NameStackSetRegions, []string{"no spoke in eu-west-1", "whose spokes create the accounts' roles"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) {
					s.Instances = slices.DeleteFunc(s.Instances, func(in awsfake.StackInstance) bool { return in.Region == "eu-west-1" })
				})
			}},
		{"a Region missing", doctor.NameStackSetRegions, []string{"no spoke in us-east-1"},
			func(h hubFakes) {
				h.cf.Edit(config.SpokeStackSet, func(s *awsfake.StackSet) {
					s.Instances = slices.DeleteFunc(s.Instances, func(in awsfake.StackInstance) bool { return in.Region == "us-east-1" })
				})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := deployedHub(t, o)
			h.ev.Lock()
			tc.breakIt(h)
			h.ev.Unlock()
			reported(t, h.run(t, org), tc.check, tc.want...)
		})
	}
}

func TestDoctorSpokeOnTheSynthesizedSpoke(t *testing.T) {
	o := synthOrg(t)
	org := orgDeployment(t, "apply").Org
	yes, no := true, false
	allPass(t, deployedSpoke(t, o, spokeAccount, "false").run(t, org, spokeAccount, &no), 11, doctor.NameApplyPermission)
	allPass(t, deployedSpoke(t, o, sandboxAccount, "true").run(t, org, sandboxAccount, &yes), 11)
	// Not told whether it is a sandbox: the apply role is checked, not required.
	allPass(t, deployedSpoke(t, o, sandboxAccount, "true").run(t, org, sandboxAccount, nil), 11)

	// Without the role Region's instance, the spoke of spokeRegion has its rule and no role:
	// each missing role is reported with the Region whose instance creates it.
	noRoles := deployedSpoke(t, o, sandboxAccount, "true", false).run(t, org, sandboxAccount, &yes)
	for _, name := range []string{doctor.NameForwardTrust, doctor.NameReaderTrust, doctor.NameApplyTrust} {
		reported(t, noRoles, name, "no role")
		if c := noRoles[slices.IndexFunc(noRoles, func(c doctor.Check) bool { return c.Name == name })]; !strings.Contains(c.Fix, "--stack-instance-region eu-west-1") {
			t.Errorf("%s: fix %q does not name the role Region's instance", name, c.Fix)
		}
	}
	if c := noRoles[slices.IndexFunc(noRoles, func(c doctor.Check) bool { return c.Name == doctor.NameSpokeTarget })]; c.Status != doctor.Pass {
		t.Errorf("the rule of a Region without roles: %s %s", c.Status, c.Detail)
	}

	rule := func(s spokeFakes) *awsfake.Rule {
		for _, r := range s.ev.Rules {
			if strings.Contains(r.Name, "KmsDenialRule") {
				return r
			}
		}
		t.Fatal("no spoke rule")
		return nil
	}
	trust := func(s spokeFakes, role, doc string) {
		if !s.iam.EditPrincipal("role/"+role, func(p *awsfake.IAMPrincipal) { p.Trust = doc }) {
			t.Fatalf("no role %s", role)
		}
	}
	hubTrust := func(principal any, cond bool) string {
		st := map[string]any{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
		if cond {
			st["Condition"] = map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": orgID}}
		}
		b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
		return string(b)
	}
	intruder := map[string]any{"AWS": "arn:aws:iam::999988887777:role/intruder"}
	cases := []struct {
		name, check, account, sandbox string
		told                          *bool
		want                          []string
		breakIt                       func(s spokeFakes)
	}{
		{"rule disabled", doctor.NameSpokeRuleState, spokeAccount, "false", &no, []string{"DISABLED"},
			func(s spokeFakes) { rule(s).State = "DISABLED" }},
		{"pattern takes every account", doctor.NameSpokeRulePattern, spokeAccount, "false", &no, []string{"account is null"},
			func(s spokeFakes) {
				rule(s).Pattern = strings.Replace(rule(s).Pattern, `"account":["`+spokeAccount+`"],`, "", 1)
			}},
		{"wrong target bus", doctor.NameSpokeTarget, spokeAccount, "false", &no, []string{"not the hub bus"},
			func(s spokeFakes) {
				rule(s).Targets[0].ARN = "arn:aws:events:eu-west-1:123456789012:event-bus/kmsfix-hub"
			}},
		{"no role on the target", doctor.NameSpokeTarget, spokeAccount, "false", &no, []string{"no RoleArn"},
			func(s spokeFakes) { rule(s).Targets[0].RoleARN = "" }},
		{"no dead-letter queue", doctor.NameSpokeDelivery, spokeAccount, "false", &no, []string{"no dead-letter queue"},
			func(s spokeFakes) { rule(s).Targets[0].DeadLetter = "" }},
		{"no retry policy", doctor.NameSpokeDelivery, spokeAccount, "false", &no, []string{"no retry policy"},
			func(s spokeFakes) { rule(s).Targets[0].Retries, rule(s).Targets[0].MaxAge = 0, 0 }},
		{"no spoke rule", doctor.NameSpokeRuleExists, spokeAccount, "false", &no, nil,
			func(s spokeFakes) { s.ev.Rules = nil }},
		{"forward role trusts an account", doctor.NameForwardTrust, spokeAccount, "false", &no, []string{"AWS:arn:aws:iam::123456789012:root"},
			func(s spokeFakes) {
				trust(s, config.ForwardRoleName, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com","AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}`)
			}},
		{"forward role puts anywhere", doctor.NameForwardPermission, spokeAccount, "false", &no, []string{"also on *"},
			func(s spokeFakes) {
				s.iam.SetInline("role/"+config.ForwardRoleName, "PutOnHubBus", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"*"}]}`)
			}},
		{"reader trusts another role", doctor.NameReaderTrust, spokeAccount, "false", &no, []string{"role/intruder"},
			func(s spokeFakes) {
				trust(s, config.ReaderRoleName, hubTrust(intruder, true))
			}},
		// Only the hub account's break-glass role: one of a member account is another principal.
		{"apply role trusts a member account's break-glass", doctor.NameApplyTrust, sandboxAccount, "true", nil,
			[]string{"arn:aws:iam::" + spokeAccount + ":role/kmsfix-break-glass"},
			func(s spokeFakes) {
				trust(s, config.ApplyRoleName, hubTrust(map[string]any{"AWS": "arn:aws:iam::" + spokeAccount + ":role/kmsfix-break-glass"}, true))
			}},
		{"reader trusts a wildcard", doctor.NameReaderTrust, spokeAccount, "false", &no, []string{"AWS:*"},
			func(s spokeFakes) { trust(s, config.ReaderRoleName, hubTrust("*", true)) }},
		{"reader trust without the org condition", doctor.NameReaderTrust, spokeAccount, "false", &no, []string{"aws:PrincipalOrgID"},
			func(s spokeFakes) {
				trust(s, config.ReaderRoleName, hubTrust(map[string]any{"AWS": hubRoleARN}, false))
			}},
		{"reader may write", doctor.NameReaderPermission, spokeAccount, "false", &no, []string{"kms:PutKeyPolicy"},
			func(s spokeFakes) {
				s.iam.SetInline("role/"+config.ReaderRoleName, "extra", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:GetKeyPolicy","kms:PutKeyPolicy"],"Resource":"*"}]}`)
			}},
		{"apply role outside a sandbox", doctor.NameApplyTrust, sandboxAccount, "true", &no, []string{"not a sandbox"},
			func(s spokeFakes) {}},
		{"sandbox without apply role", doctor.NameApplyTrust, sandboxAccount, "false", &yes, []string{"no role kmsfix-apply"},
			func(s spokeFakes) {}},
		{"apply role trusts another role", doctor.NameApplyTrust, sandboxAccount, "true", nil, []string{"role/intruder"},
			func(s spokeFakes) {
				trust(s, config.ApplyRoleName, hubTrust(intruder, true))
			}},
		{"apply lever without the opt-in tag", doctor.NameApplyPermission, sandboxAccount, "true", &yes, []string{"aws:ResourceTag/kmsfix:auto-fix"},
			func(s spokeFakes) {
				s.iam.SetInline("role/"+config.ApplyRoleName, "extra", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:PutRolePolicy","Resource":"arn:aws:iam::`+sandboxAccount+`:role/*"}]}`)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := deployedSpoke(t, o, tc.account, tc.sandbox)
			s.ev.Lock()
			tc.breakIt(s)
			s.ev.Unlock()
			reported(t, s.run(t, org, tc.account, tc.told), tc.check, tc.want...)
		})
	}
}
