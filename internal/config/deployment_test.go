package config

import (
	"strings"
	"testing"
	"time"
)

// The deployer's side (the CDK app) of the same parameters; formerly infra/config_test.go.

func deploy(values map[string]string) (Deployment, error) {
	return LoadDeployment(func(p Param) string { return values[p.Context] })
}

func TestLoadDeploymentDefaults(t *testing.T) {
	d, err := deploy(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Function
	if c.Mode != "notify" || c.DedupeWindow != time.Hour || c.ApplyExpiry != 24*time.Hour ||
		c.PropagationWindow != 10*time.Minute || d.ReservedConcurrency != 5 || d.LogRetentionDays != 365 ||
		d.CreateTrail || c.DryRun || c.AcceptsRequests() || c.SlackSecretARN != "" {
		t.Errorf("defaults = %+v", d)
	}
}

func TestLoadDeploymentValues(t *testing.T) {
	d, err := deploy(map[string]string{
		"mode": "apply", "sandboxAccounts": " 222233334444, 111122223333,111122223333 ",
		"keyOwnerBuses": "444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default," +
			"*=arn:aws:events:eu-west-1:999988887777:event-bus/org-requests",
		"notifyEmails": "a@example.com, b@example.org", "trustedOrgId": "o-abcdefghij",
		"trustedSenderRoles": "arn:aws:iam::444455556666:role/kmsfix-remediator",
		"applyDiagnoses":     "identity-policy-missing, key-policy-missing", "dryRun": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Function
	if strings.Join(c.SandboxAccounts, ",") != "111122223333,222233334444" {
		t.Errorf("sandbox accounts = %v (want sorted, deduplicated)", c.SandboxAccounts)
	}
	env := c.Environment()
	if env["KMSFIX_KEY_OWNER_BUSES"] != "444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default,"+
		"*=arn:aws:events:eu-west-1:999988887777:event-bus/org-requests" {
		t.Errorf("buses = %q", env["KMSFIX_KEY_OWNER_BUSES"])
	}
	if len(d.NotifyEmails) != 2 || !c.AcceptsRequests() || !c.DryRun ||
		env["KMSFIX_APPLY_DIAGNOSES"] != "identity-policy-missing,key-policy-missing" {
		t.Errorf("deployment = %+v", d)
	}
}

func TestLoadDeploymentErrors(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"bad mode", map[string]string{"mode": "fix"}, []string{`mode (KMSFIX_MODE) is "fix"; want one of notify, apply`}},
		{"apply needs sandbox", map[string]string{"mode": "apply"}, []string{"sandboxAccounts (KMSFIX_SANDBOX_ACCOUNTS) is empty but mode is apply"}},
		{"partial secret ARN", map[string]string{"slackSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:slack"},
			[]string{"not a complete secret ARN", "describe-secret"}},
		{"secret value instead of ARN", map[string]string{"slackSecretArn": "https://hooks.slack.com/services/T/B/x"},
			[]string{"not a complete secret ARN", "the value is not shown"}},
		{"key without secret", map[string]string{"slackSecretKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab"},
			[]string{"only together with slackSecretArn"}},
		{"bad key", map[string]string{"slackSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/slack-AbC123",
			"slackSecretKeyArn": "arn:aws:kms:us-east-1:111122223333:alias/slack"}, []string{"want a KMS key ARN"}},
		{"bad email", map[string]string{"notifyEmails": "ops@example.com,Ops <x@example.com>"}, []string{`"Ops <x@example.com>", which is not a plain e-mail`}},
		{"bad account", map[string]string{"trustedAccounts": "12345"}, []string{`"12345", which is not a 12-digit account id`}},
		{"bus of another account", map[string]string{"keyOwnerBuses": "444455556666=arn:aws:events:eu-west-1:777788889999:event-bus/default"},
			[]string{"belongs to account 777788889999"}},
		{"bus not an ARN", map[string]string{"keyOwnerBuses": "444455556666=default"}, []string{"want an event bus ARN"}},
		{"bus without account", map[string]string{"keyOwnerBuses": "arn:aws:events:eu-west-1:777788889999:event-bus/default"},
			[]string{"want ACCOUNT=busARN"}},
		{"account twice", map[string]string{"keyOwnerBuses": "444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/a," +
			"444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default"}, []string{"names account 444455556666 twice"}},
		{"bad org", map[string]string{"trustedOrgId": "org-1"}, []string{"not an organization id"}},
		{"bad duration", map[string]string{"dedupeWindow": "an hour"}, []string{`"an hour"; want a Go duration`}},
		{"expiry too long", map[string]string{"applyExpiry": "200h"}, []string{"the maximum is 168h"}},
		{"expiry too short", map[string]string{"applyExpiry": "1m"}, []string{"the minimum is 15m"}},
		{"no propagation window", map[string]string{"propagationWindow": "0"}, []string{"propagationWindow (KMSFIX_PROPAGATION_WINDOW)", "positive"}},
		{"unknown code", map[string]string{"applyDiagnoses": "grant-missing"}, []string{`"grant-missing", which is not a diagnosis code`}},
		{"concurrency", map[string]string{"reservedConcurrency": "0"}, []string{"is 0; want 1 to 100"}},
		{"retention", map[string]string{"logRetentionDays": "10"}, []string{"is 10, which is not a CloudWatch Logs retention"}},
		{"bool", map[string]string{"createTrail": "yes please"}, []string{`"yes please"; want true or false`}},
		{"all reported at once", map[string]string{"mode": "x", "reservedConcurrency": "x", "trustedOrgId": "x"},
			[]string{"mode (KMSFIX_MODE)", "reservedConcurrency (KMSFIX_RESERVED_CONCURRENCY)", "trustedOrgId (KMSFIX_TRUSTED_ORG_ID)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := deploy(tt.values)
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), "hooks.slack.com") {
				t.Errorf("the error echoes what may be a webhook URL: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Environment and Load are inverses: what the CDK app renders, the function reads back.
func TestEnvironmentRoundTrip(t *testing.T) {
	for name, values := range map[string]map[string]string{
		"defaults": nil,
		"full": {"mode": "apply", "sandboxAccounts": "222233334444,111122223333", "applyDiagnoses": "condition-mismatch",
			"applyExpiry": "90m", "dryRun": "true", "slackSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/slack-AbC123",
			"dedupeWindow": "168h", "propagationWindow": "1m",
			"keyOwnerBuses":   "*=arn:aws:events:eu-west-1:999988887777:event-bus/org,444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default",
			"trustedAccounts": "444455556666", "trustedOrgId": "o-abcdefghij", "trustedSenderRoles": "arn:aws:iam::444455556666:role/kmsfix-remediator",
			"routes": "444455556666=slack:arn:aws:secretsmanager:us-east-1:999988887777:secret:kmsfix/payments-AbC123|sns:arn:aws:sns:us-east-1:999988887777:payments,111122223333=sns:arn:aws:sns:us-east-1:999988887777:ml"},
	} {
		d, err := deploy(values)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		env := d.Function.Environment()
		env["KMSFIX_TOPIC_ARN"] = "arn:aws:sns:us-east-1:111122223333:kmsfix"
		env["KMSFIX_TABLE_NAME"] = "kmsfix"
		got, err := Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: the function refuses what the CDK app rendered: %v", name, err)
		}
		got.TopicARN, got.TableName = "", ""
		if !equal(got, d.Function) {
			t.Errorf("%s: function reads %+v, deployment was %+v", name, got, d.Function)
		}
	}
}

// Every Function parameter is rendered, under its own name.
func TestEnvironmentNamesEveryFunctionParam(t *testing.T) {
	d, err := deploy(map[string]string{"slackSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/slack-AbC123",
		"applyDiagnoses": "condition-mismatch", "routes": "111122223333=sns:arn:aws:sns:us-east-1:999988887777:payments"})
	if err != nil {
		t.Fatal(err)
	}
	env := d.Function.Environment()
	for _, p := range Params {
		if _, ok := env[p.Env]; ok != (p.Scope == Function) {
			t.Errorf("%s (scope %d) rendered: %v", p.Env, p.Scope, ok)
		}
	}
	if len(env) != len(slicesFilter(Params, func(p Param) bool { return p.Scope == Function })) {
		t.Errorf("env has variables that are not parameters: %v", env)
	}
}

func slicesFilter(ps []Param, keep func(Param) bool) []Param {
	var out []Param
	for _, p := range ps {
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}
