package main

import (
	"strings"
	"testing"
	"time"
)

func load(values map[string]string) (Config, error) {
	return LoadConfig(func(p Param) string { return values[p.Context] })
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "notify" || c.DedupeWindow != time.Hour || c.ApplyExpiry != 24*time.Hour ||
		c.PropagationWindow != 10*time.Minute || c.ReservedConcurrency != 5 || c.LogRetentionDays != 365 ||
		c.CreateTrail || c.DryRun || c.AcceptsRequests() || c.SlackSecretARN != "" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadConfigValues(t *testing.T) {
	c, err := load(map[string]string{
		"mode": "apply", "sandboxAccounts": " 222233334444, 111122223333,111122223333 ",
		"keyOwnerBuses": "444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default," +
			"*=arn:aws:events:eu-west-1:999988887777:event-bus/org-requests",
		"notifyEmails": "a@example.com, b@example.org", "trustedOrgId": "o-abcdefghij",
		"applyDiagnoses": "identity-policy-missing, grant-missing", "dryRun": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.SandboxAccounts, ",") != "111122223333,222233334444" {
		t.Errorf("sandbox accounts = %v (want sorted, deduplicated)", c.SandboxAccounts)
	}
	if c.KeyOwnerBusesEnv() != "444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default,"+
		"*=arn:aws:events:eu-west-1:999988887777:event-bus/org-requests" {
		t.Errorf("buses = %q", c.KeyOwnerBusesEnv())
	}
	if len(c.NotifyEmails) != 2 || !c.AcceptsRequests() || !c.DryRun ||
		c.ApplyDiagnoses != "identity-policy-missing,grant-missing" {
		t.Errorf("config = %+v", c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"bad mode", map[string]string{"mode": "fix"}, []string{`mode (KMSFIX_MODE): "fix": want notify or apply`}},
		{"apply needs sandbox", map[string]string{"mode": "apply"}, []string{"mode=apply needs at least one sandbox account"}},
		{"partial secret ARN", map[string]string{"slackSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:slack"},
			[]string{"not a complete secret ARN", "describe-secret"}},
		{"secret value instead of ARN", map[string]string{"slackSecretArn": "https://hooks.slack.com/services/T/B/x"},
			[]string{"not a complete secret ARN", "the value is not shown"}},
		{"key without secret", map[string]string{"slackSecretKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab"},
			[]string{"only together with slackSecretArn"}},
		{"bad email", map[string]string{"notifyEmails": "ops@example.com,Ops <x@example.com>"}, []string{`"Ops <x@example.com>" is not a plain e-mail`}},
		{"bad account", map[string]string{"trustedAccounts": "12345"}, []string{`"12345" is not a 12-digit account id`}},
		{"bus of another account", map[string]string{"keyOwnerBuses": "444455556666=arn:aws:events:eu-west-1:777788889999:event-bus/default"},
			[]string{"belongs to account 777788889999"}},
		{"bus not an ARN", map[string]string{"keyOwnerBuses": "444455556666=default"}, []string{"not an event bus ARN"}},
		{"bus without account", map[string]string{"keyOwnerBuses": "arn:aws:events:eu-west-1:777788889999:event-bus/default"},
			[]string{"want ACCOUNT=busARN"}},
		{"account twice", map[string]string{"keyOwnerBuses": "444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/a," +
			"444455556666=arn:aws:events:eu-west-1:444455556666:event-bus/default"}, []string{"listed twice"}},
		{"bad org", map[string]string{"trustedOrgId": "org-1"}, []string{"not an organization id"}},
		{"bad duration", map[string]string{"dedupeWindow": "an hour"}, []string{`"an hour" is not a Go duration`}},
		{"expiry too long", map[string]string{"applyExpiry": "200h"}, []string{"outside 15m0s..168h0m0s"}},
		{"concurrency", map[string]string{"reservedConcurrency": "0"}, []string{"0 is outside 1..100"}},
		{"retention", map[string]string{"logRetentionDays": "10"}, []string{"10 is not a CloudWatch Logs retention"}},
		{"bool", map[string]string{"createTrail": "yes please"}, []string{`"yes please" is not true or false`}},
		{"all reported at once", map[string]string{"mode": "x", "reservedConcurrency": "x", "trustedOrgId": "x"},
			[]string{"mode (KMSFIX_MODE)", "reservedConcurrency (KMSFIX_RESERVED_CONCURRENCY)", "trustedOrgId (KMSFIX_TRUSTED_ORG_ID)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.values)
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

func TestContextString(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""}, {"a,b", "a,b"}, {[]any{"a", "b"}, "a,b"}, {true, "true"}, {float64(5), "5"},
	}
	for _, tt := range tests {
		if got := contextString(tt.in); got != tt.want {
			t.Errorf("contextString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
