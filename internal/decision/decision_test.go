package decision

import (
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/patch"
)

func evidence() Evidence {
	return Evidence{
		Code: finding.IdentityPolicyMissing, KnownEnough: true,
		Patches:      []finding.Patch{{Kind: finding.KindIdentityPolicy, Account: "111122223333"}},
		Verification: patch.Verification{AllowedAfter: true},
		IsSandbox:    func(a string) bool { return a == "111122223333" },
		Principal:    "arn:aws:iam::111122223333:role/app", Editable: true,
		PrincipalTags: map[string]string{"kmsfix:auto-fix": "enabled"},
		Key:           "arn:aws:kms:eu-west-2:111122223333:key/k1",
		KeyTags:       map[string]string{"kmsfix:auto-fix": "enabled"},
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name             string
		change           func(*Evidence)
		verified, apply  bool
		unverified, why  string
		unknownAfterward int
	}{
		{"verified offline", func(*Evidence) {}, true, true, "", "", 0},
		{"validated clean", func(e *Evidence) { e.Validation = &Validation{} }, true, true, "", "", 0},
		{"analyzer warns", func(e *Evidence) { e.Validation = &Validation{Problems: []string{"SECURITY_WARNING x"}} },
			false, false, "SECURITY_WARNING x", "the patch is not verified: SECURITY_WARNING x", 0},
		{"analyzer down", func(e *Evidence) { e.Validation = &Validation{Unknown: []string{"ValidatePolicy: timed out"}} },
			false, false, "ValidatePolicy: timed out", "the patch is not verified: ValidatePolicy: timed out", 1},
		{"unknown part", func(e *Evidence) { e.Unknown = []string{"the key policy"} },
			false, false, "not verified: could not read the key policy", "the patch is not verified", 0},
		{"not allowed after", func(e *Evidence) { e.Verification.AllowedAfter = false },
			false, false, "does not show the request allowed", "the patch is not verified", 0},
		{"widens", func(e *Evidence) { e.Verification.Widened = []string{"kms:Decrypt from anywhere"} },
			false, false, "the patch would also allow: kms:Decrypt from anywhere", "the patch is not verified", 0},
		{"undetermined", func(e *Evidence) { e.Code = finding.Undetermined }, false, false, "", "only implicit denies", 0},
		{"not a sandbox", func(e *Evidence) { e.IsSandbox = func(string) bool { return false } },
			true, false, "", "no patch is for a sandbox account", 0},
		{"principal not editable", func(e *Evidence) { e.Editable, e.NotEditable = false, "a service-linked role" },
			true, false, "", "IAM cannot edit arn:aws:iam::111122223333:role/app: a service-linked role", 0},
		// Whatever the patch kind (issue 14 item 6): a key-policy statement for a principal IAM
		// cannot edit is not applied automatically either.
		{"principal not editable, key-policy patch", func(e *Evidence) {
			e.Editable, e.NotEditable = false, "an IAM Identity Center role"
			for i := range e.Patches {
				e.Patches[i].Kind = finding.KindKeyPolicyStatement
			}
		}, true, false, "", "IAM cannot edit arn:aws:iam::111122223333:role/app: an IAM Identity Center role", 0},
		// The opt-in tag (issue 15 item 8): apply mode's IAM policy changes only tagged targets.
		{"principal tags unread", func(e *Evidence) { e.PrincipalTags = nil },
			true, false, "", "the tags of arn:aws:iam::111122223333:role/app could not be read", 0},
		{"principal untagged", func(e *Evidence) { e.PrincipalTags = map[string]string{"team": "data"} },
			true, false, "", "arn:aws:iam::111122223333:role/app is not tagged kmsfix:auto-fix=enabled", 0},
		{"principal tag value differs in case", func(e *Evidence) { e.PrincipalTags = map[string]string{"kmsfix:auto-fix": "Enabled"} },
			true, false, "", "is not tagged kmsfix:auto-fix=enabled", 0},
		{"principal tag key in another case", func(e *Evidence) { e.PrincipalTags = map[string]string{"KMSFIX:Auto-Fix": "enabled"} },
			true, true, "", "", 0},
		{"identity patch ignores the key's tags", func(e *Evidence) { e.KeyTags = nil }, true, true, "", "", 0},
		{"key-policy patch, key untagged", func(e *Evidence) {
			e.Patches[0].Kind = finding.KindKeyPolicyStatement
			e.KeyTags = map[string]string{}
			e.PrincipalTags = nil // the principal is not the target of a key-policy statement
		}, true, false, "", "arn:aws:kms:eu-west-2:111122223333:key/k1 is not tagged kmsfix:auto-fix=enabled", 0},
		{"grant patch, key tags unread", func(e *Evidence) {
			e.Patches[0].Kind = finding.KindGrant
			e.KeyTags = nil
		}, true, false, "", "the tags of arn:aws:kms:eu-west-2:111122223333:key/k1 could not be read", 0},
		{"key-policy patch, key tagged", func(e *Evidence) {
			e.Patches[0].Kind = finding.KindKeyPolicyStatement
			e.PrincipalTags = nil
		}, true, true, "", "", 0},
		{"untagged patch outside the sandbox is not applied, so not checked", func(e *Evidence) {
			e.Patches = append(e.Patches, finding.Patch{Kind: finding.KindKeyPolicyStatement, Account: "444455556666"})
			e.KeyTags = nil
		}, true, true, "", "", 0},
		{"no patch", func(e *Evidence) { e.Patches = nil; e.Validation = &Validation{Unknown: []string{"x"}} }, false, false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := evidence()
			tt.change(&e)
			d := Decide(e)
			if d.Verified != tt.verified || d.AutoApply != tt.apply {
				t.Errorf("verified=%v auto_apply=%v, want %v %v (%+v)", d.Verified, d.AutoApply, tt.verified, tt.apply, d)
			}
			if !strings.Contains(d.Unverified, tt.unverified) || (tt.unverified == "" && d.Unverified != "") {
				t.Errorf("unverified = %q, want %q", d.Unverified, tt.unverified)
			}
			if !strings.Contains(d.AutoApplyBlocked, tt.why) || (tt.why == "" && d.AutoApplyBlocked != "") {
				t.Errorf("auto_apply_blocked = %q, want %q", d.AutoApplyBlocked, tt.why)
			}
			var r finding.Report
			d.Set(&r)
			if len(r.Unknown) != tt.unknownAfterward {
				t.Errorf("report unknown = %v", r.Unknown)
			}
		})
	}
}
