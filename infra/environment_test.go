package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
)

// Every parameter of the function, at its edges: either `cdk synth` refuses the value (the CDK
// app stops before synthesizing) and so does the function, or the synthesized environment,
// read by the function's own loader (config.Load), gives back exactly the deployment's values.
// Accepted edges are grouped so that a handful of syntheses cover them all.
func TestSynthesizedEnvironmentReachesFunction(t *testing.T) {
	accepted := map[string]map[string]string{
		"lower edges": {
			"mode": "notify", "sandboxAccounts": "", "applyDiagnoses": "", "applyExpiry": "15m", "dryRun": "false",
			"slackSecretArn": "", "dedupeWindow": "1m", "propagationWindow": "1m", "keyOwnerBuses": "",
			"trustedAccounts": "", "trustedOrgId": "", "trustedSenderRoles": "", "maxKeyStatements": "1", "routes": "",
		},
		"upper edges": {
			"mode": "apply", "sandboxAccounts": " 222233334444 ,111122223333,111122223333", "dryRun": "TRUE",
			"applyDiagnoses": "condition-mismatch, identity-policy-missing,key-policy-missing,cross-account-access-missing",
			"applyExpiry":    "168h", "dedupeWindow": "10080m", "propagationWindow": "24h", "slackSecretArn": secretARN,
			"keyOwnerBuses":   "*=arn:aws:events:us-east-1:999988887777:event-bus/org," + otherAcct + "=" + ownerBus,
			"trustedAccounts": otherAcct + "," + sandbox, "trustedOrgId": "o-abcdefghij0123456789abcdefghij01",
			"trustedSenderRoles": " arn:aws:iam::" + sandbox + ":role/path/kmsfix-remediator," + senderRole + "," + senderRole,
			"maxKeyStatements":   "50",
			"routes":             otherAcct + "=slack:" + routedSecret + "|sns:" + routedTopic + ", " + sandbox + " = sns:" + routedTopic,
		},
		"odd forms": {
			"mode": "apply", "sandboxAccounts": sandbox, "applyDiagnoses": "condition-mismatch",
			"applyExpiry": "1h30m", "dedupeWindow": "90s", "propagationWindow": "3600s", "dryRun": "1",
			"keyOwnerBuses": otherAcct + "=" + ownerBus, "trustedOrgId": trustedOrg, "trustedSenderRoles": "arn:aws-cn:iam::" + otherAcct + ":role/a+b=c.d@f_g-h",
		},
	}
	refused := map[string][]string{
		"mode":               {"Apply", "fix"},
		"sandboxAccounts":    {"12345", "1111222233334"},
		"applyDiagnoses":     {"grant-missing", "key-disabled"},
		"applyExpiry":        {"0", "14m59s", "168h1s", "-1h", "a day"},
		"dryRun":             {"yes"},
		"slackSecretArn":     {"arn:aws:secretsmanager:us-east-1:111122223333:secret:slack", "https://hooks.slack.com/x"},
		"dedupeWindow":       {"0", "59s", "169h"},
		"propagationWindow":  {"0", "0s", "59s", "24h0m1s"},
		"keyOwnerBuses":      {otherAcct, otherAcct + "=arn:aws:events:us-east-1:777788889999:event-bus/default"},
		"trustedAccounts":    {"abc"},
		"trustedOrgId":       {"o-short", trustedOrg},
		"trustedSenderRoles": {"arn:aws:iam::" + otherAcct + ":root", "arn:aws:iam::" + otherAcct + ":role/*", otherAcct, "arn:aws:iam::" + otherAcct + ":user/x", "arn:aws:sts::" + otherAcct + ":assumed-role/r/s"},
		"maxKeyStatements":   {"0", "51", "five"},
		"routes":             {otherAcct, "ou:ou-ab12-sandbox01=sns:" + routedTopic, otherAcct + "=sns:" + routedSecret},
	}

	// Every Function parameter is exercised both ways.
	for _, p := range config.Params {
		if p.Scope != config.Function {
			continue
		}
		if len(refused[p.Context]) == 0 {
			t.Errorf("no refused edge value for %s", p.Context)
		}
		if _, ok := accepted["lower edges"][p.Context]; !ok {
			t.Errorf("no accepted edge value for %s", p.Context)
		}
	}

	for param, values := range refused {
		for _, v := range values {
			_, synthErr := config.LoadDeployment(func(p config.Param) string {
				if p.Context == param {
					return v
				}
				return ""
			})
			_, fnErr := config.Load(func(k string) string {
				return map[string]string{config.ParamByContext(param).Env: v,
					"KMSFIX_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:t", "KMSFIX_TABLE_NAME": "kmsfix"}[k]
			})
			if synthErr == nil || fnErr == nil {
				t.Errorf("%s=%q: synth error %v, function error %v; want both to refuse", param, v, synthErr, fnErr)
			}
		}
	}

	for name, values := range accepted {
		t.Run(name, func(t *testing.T) {
			d, err := config.LoadDeployment(func(p config.Param) string { return values[p.Context] })
			if err != nil {
				t.Fatalf("synth refuses: %v", err)
			}
			env := synthesizedEnvironment(t, name, d)
			got, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("the function refuses the synthesized environment %v: %v", env, err)
			}
			got.TopicARN, got.TableName, got.RemediatorRoleARN, got.AuditKeyARN = "", "", "", ""
			if !reflect.DeepEqual(got, d.Function) {
				t.Errorf("the function reads\n%+v\nthe deployment was\n%+v", got, d.Function)
			}
		})
	}
}

// synthesizedEnvironment synthesizes the stack (without cdk-nag, which other tests run) and
// returns the function's environment, with the values CloudFormation resolves at deploy time
// (Ref, Fn::GetAtt) replaced by ones of the same shape.
func synthesizedEnvironment(t *testing.T, name string, d config.Deployment) map[string]string {
	t.Helper()
	assetDir := filepath.Join(outDir, "env-asset")
	if err := os.MkdirAll(assetDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assetDir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(outDir, "cdk.out-env-"+name))})
	stack := NewKmsfixStack(app, "Kmsfix", &StackProps{Config: d, AssetDir: assetDir})
	var tmpl map[string]any
	if err := try(func() {
		tmpl = *assertions.Template_FromStack(stack, nil).ToJSON()
	}); err != nil {
		t.Fatalf("synth: %v", err)
	}
	resolved := map[string]string{
		"KMSFIX_TOPIC_ARN":           "arn:aws:sns:us-east-1:111122223333:Kmsfix-Topic",
		"KMSFIX_TABLE_NAME":          "Kmsfix-Table-1ABC",
		"KMSFIX_REMEDIATOR_ROLE_ARN": "arn:aws:iam::111122223333:role/Kmsfix-FunctionRole",
		"KMSFIX_AUDIT_KEY_ARN":       "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	}
	env := map[string]string{}
	for _, r := range tmpl["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] != "AWS::Lambda::Function" {
			continue
		}
		vars := r["Properties"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
		for k, v := range vars {
			switch v := v.(type) {
			case string:
				env[k] = v
			default: // an intrinsic function
				if resolved[k] == "" {
					t.Errorf("%s is %v, which only CloudFormation resolves", k, v)
				}
				env[k] = resolved[k]
			}
		}
	}
	if len(env) == 0 {
		t.Fatalf("no function environment in %s", name)
	}
	return env
}
