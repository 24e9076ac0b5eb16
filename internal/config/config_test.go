package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func minimal() map[string]string {
	return map[string]string{
		"KMSFIX_TOPIC_ARN":  "arn:aws:sns:us-east-1:111122223333:kmsfix",
		"KMSFIX_TABLE_NAME": "kmsfix",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeNotify || c.ApplyExpiry != 24*time.Hour || c.DedupeWindow != time.Hour ||
		c.PropagationWindow != 10*time.Minute || c.DryRun || c.SlackSecretARN != "" {
		t.Errorf("defaults: %+v", c)
	}
	if !slices.Equal(c.ApplyDiagnoses, DefaultApplyDiagnoses) {
		t.Errorf("apply diagnoses = %v", c.ApplyDiagnoses)
	}
}

func TestLoadAll(t *testing.T) {
	m := minimal()
	m["KMSFIX_MODE"] = "apply"
	m["KMSFIX_SANDBOX_ACCOUNTS"] = " 111122223333, 444455556666 "
	m["KMSFIX_APPLY_DIAGNOSES"] = "identity-policy-missing"
	m["KMSFIX_APPLY_EXPIRY"] = "2h"
	m["KMSFIX_DRY_RUN"] = "true"
	m["KMSFIX_KEY_OWNER_BUSES"] = "444455556666=arn:aws:events:us-east-1:444455556666:event-bus/kmsfix,*=arn:aws:events:us-east-1:999988887777:event-bus/org"
	m["KMSFIX_TRUSTED_ORG_ID"] = "o-a1b2c3d4e5"
	m["KMSFIX_TRUSTED_SENDER_ROLES"] = "arn:aws:iam::999988887777:role/kmsfix/remediator, arn:aws:iam::444455556666:role/kmsfix-remediator,arn:aws:iam::444455556666:role/kmsfix-remediator"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.TrustedSenderRoles, []string{"arn:aws:iam::444455556666:role/kmsfix-remediator", "arn:aws:iam::999988887777:role/kmsfix/remediator"}) ||
		!slices.Equal(c.TrustedAccounts, []string{"444455556666", "999988887777"}) || !c.AcceptsRequests() {
		t.Errorf("TrustedSenderRoles = %q, TrustedAccounts = %q", c.TrustedSenderRoles, c.TrustedAccounts)
	}
	if c.TrustedOrgID != "o-a1b2c3d4e5" {
		t.Errorf("TrustedOrgID = %q", c.TrustedOrgID)
	}
	if c.Mode != ModeApply || !c.IsSandbox("444455556666") || c.IsSandbox("999988887777") ||
		c.ApplyExpiry != 2*time.Hour || !c.DryRun ||
		!slices.Equal(c.ApplyDiagnoses, []finding.Code{finding.IdentityPolicyMissing}) {
		t.Errorf("got %+v", c)
	}
	if got := c.BusFor("444455556666"); !strings.Contains(got, "444455556666") {
		t.Errorf("BusFor(owner) = %q", got)
	}
	if got := c.BusFor("123456789012"); !strings.Contains(got, "event-bus/org") {
		t.Errorf("BusFor(other) = %q, want the * bus", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want []string // every problem named
	}{
		{"required missing", map[string]string{"KMSFIX_TOPIC_ARN": "", "KMSFIX_TABLE_NAME": ""},
			[]string{"KMSFIX_TOPIC_ARN is required", "KMSFIX_TABLE_NAME is required"}},
		{"bad mode", map[string]string{"KMSFIX_MODE": "fix"}, []string{`KMSFIX_MODE is "fix"`}},
		{"apply without sandbox", map[string]string{"KMSFIX_MODE": "apply"}, []string{"KMSFIX_SANDBOX_ACCOUNTS is empty"}},
		{"bad account", map[string]string{"KMSFIX_SANDBOX_ACCOUNTS": "1234"}, []string{`KMSFIX_SANDBOX_ACCOUNTS has "1234"`}},
		{"unknown code", map[string]string{"KMSFIX_APPLY_DIAGNOSES": "identity-policy-missing,nope"}, []string{`"nope", which is not a diagnosis code`}},
		{"unfixable code", map[string]string{"KMSFIX_APPLY_DIAGNOSES": "key-disabled"}, []string{`"key-disabled", which no policy change can fix`}},
		{"expiry too long", map[string]string{"KMSFIX_APPLY_EXPIRY": "200h"}, []string{"the maximum is 168h"}},
		{"expiry not a duration", map[string]string{"KMSFIX_APPLY_EXPIRY": "1 day"}, []string{"want a Go duration"}},
		{"negative window", map[string]string{"KMSFIX_DEDUPE_WINDOW": "-1h"}, []string{"KMSFIX_DEDUPE_WINDOW", "positive"}},
		{"bad bool", map[string]string{"KMSFIX_DRY_RUN": "yes"}, []string{"KMSFIX_DRY_RUN"}},
		{"bad arn", map[string]string{"KMSFIX_SLACK_SECRET_ARN": "slack"}, []string{"KMSFIX_SLACK_SECRET_ARN", "want an ARN"}},
		{"bad table", map[string]string{"KMSFIX_TABLE_NAME": "a b"}, []string{"KMSFIX_TABLE_NAME"}},
		{"bus without =", map[string]string{"KMSFIX_KEY_OWNER_BUSES": "444455556666"}, []string{"want ACCOUNT=busARN"}},
		{"bus not a bus", map[string]string{"KMSFIX_KEY_OWNER_BUSES": "444455556666=arn:aws:sns:us-east-1:444455556666:t"}, []string{"want an event bus ARN"}},
		{"no propagation window", map[string]string{"KMSFIX_PROPAGATION_WINDOW": "0s"}, []string{"KMSFIX_PROPAGATION_WINDOW", "positive"}},
		{"dedupe window too long", map[string]string{"KMSFIX_DEDUPE_WINDOW": "200h"}, []string{"KMSFIX_DEDUPE_WINDOW", "the maximum is 168h"}},
		{"bad org id", map[string]string{"KMSFIX_TRUSTED_ORG_ID": "org-1"}, []string{`KMSFIX_TRUSTED_ORG_ID is "org-1"`}},
		// Issue 15 item 3: only exact sender roles are trusted, never an account root or a whole organization.
		{"sender role is an account root", map[string]string{"KMSFIX_TRUSTED_SENDER_ROLES": "arn:aws:iam::444455556666:root"}, []string{"KMSFIX_TRUSTED_SENDER_ROLES", "not an IAM role ARN"}},
		{"sender role wildcard", map[string]string{"KMSFIX_TRUSTED_SENDER_ROLES": "arn:aws:iam::444455556666:role/*"}, []string{"not an IAM role ARN"}},
		{"sender role of a user", map[string]string{"KMSFIX_TRUSTED_SENDER_ROLES": "arn:aws:iam::444455556666:user/bob"}, []string{"not an IAM role ARN"}},
		{"sender role bare account", map[string]string{"KMSFIX_TRUSTED_SENDER_ROLES": "444455556666"}, []string{"not an IAM role ARN"}},
		{"accounts without roles", map[string]string{"KMSFIX_TRUSTED_ACCOUNTS": "444455556666"}, []string{"KMSFIX_TRUSTED_ACCOUNTS is 444455556666 but the accounts of trustedSenderRoles"}},
		{"accounts differ from roles", map[string]string{"KMSFIX_TRUSTED_ACCOUNTS": "111122223333", "KMSFIX_TRUSTED_SENDER_ROLES": "arn:aws:iam::444455556666:role/kmsfix-remediator"}, []string{"KMSFIX_TRUSTED_ACCOUNTS is 111122223333"}},
		{"organization alone", map[string]string{"KMSFIX_TRUSTED_ORG_ID": "o-a1b2c3d4e5"}, []string{"KMSFIX_TRUSTED_ORG_ID is set but trustedSenderRoles"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := minimal()
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := Load(env(m))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// equal compares two configurations field by field (maps and slices included).
func equal(a, b Config) bool { return reflect.DeepEqual(a, b) }
