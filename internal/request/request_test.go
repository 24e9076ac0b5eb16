package request

import (
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

const (
	keyARN  = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	roleARN = "arn:aws:iam::111122223333:role/app/reader"
)

func denial() *cloudtrail.Denial {
	return &cloudtrail.Denial{
		EventTime: "2026-01-02T03:04:05Z", Region: "eu-west-1",
		Identity: cloudtrail.Identity{Kind: cloudtrail.KindRole, PrincipalARN: roleARN, Account: "111122223333",
			SessionARN: "arn:aws:sts::111122223333:assumed-role/reader/s", PrincipalID: "AROAEXAMPLE:s", Name: "reader"},
		KeyARN: keyARN, KeyAccount: "111122223333", KeyRegion: "eu-west-1", KeyRef: "alias/orders",
		ContextARN:        "arn:aws:s3:::bkt/o",
		EncryptionContext: map[string]string{"aws:s3:arn": "arn:aws:s3:::bkt/o", "department": "finance"},
	}
}

// state is what the request says of a key (case-insensitively, as the evaluator reads it):
// its value, or how it is unknown or absent.
func state(r policy.Request, key string) string {
	for k, v := range r.Context {
		if strings.EqualFold(k, key) {
			return "=" + v
		}
	}
	for k, v := range r.Multi {
		if strings.EqualFold(k, key) {
			return "=[" + strings.Join(v, ",") + "]"
		}
	}
	switch r.Unknown(key) {
	case policy.KeyUnknown:
		return "unknown"
	case policy.KeyUnknownValue:
		return "unknown value"
	}
	return "absent"
}

func TestForWithoutWorld(t *testing.T) {
	r := For(denial(), nil, "kms:Decrypt")
	for key, want := range map[string]string{
		"kms:ViaService":                    "=s3.eu-west-1.amazonaws.com",
		"kms:CallerAccount":                 "=111122223333",
		"kms:EncryptionContext:aws:s3:arn":  "=arn:aws:s3:::bkt/o",
		"kms:EncryptionContext:department":  "=finance",
		"kms:EncryptionContext:other":       "absent", // the record logs the whole context
		"kms:EncryptionContextKeys":         "=[aws:s3:arn,department]",
		"kms:RequestAlias":                  "=alias/orders",
		"kms:KeySpec":                       "unknown",
		"kms:MultiRegion":                   "unknown",
		"kms:ResourceAliases":               "unknown",
		"kms:GrantIsForAWSResource":         "absent",
		"kms:SomeFutureKey":                 "unknown",
		"aws:PrincipalArn":                  "=" + roleARN,
		"aws:PrincipalType":                 "=AssumedRole",
		"aws:userid":                        "=AROAEXAMPLE:s",
		"aws:username":                      "absent",
		"aws:ViaAWSService":                 "=true",
		"aws:PrincipalIsAWSService":         "=false",
		"aws:RequestedRegion":               "=eu-west-1",
		"aws:ResourceAccount":               "=111122223333",
		"aws:EpochTime":                     "=1767323045",
		"aws:PrincipalTag/team":             "unknown",
		"aws:ResourceTag/env":               "unknown",
		"aws:PrincipalOrgID":                "unknown",
		"aws:PrincipalOrgPaths":             "unknown",
		"aws:SourceIp":                      "unknown value",
		"aws:SourceVpce":                    "unknown",
		"aws:CalledVia":                     "unknown",
		"aws:TokenIssueTime":                "unknown value",
		"aws:SourceArn":                     "absent",
		"aws:SourceAccount":                 "absent",
		"aws:TagKeys":                       "absent",
		"aws:RequestTag/env":                "absent",
		"s3:prefix":                         "absent",
		"AWS:PRINCIPALTAG/Team":             "unknown", // keys compare case-insensitively
		"aws:SomeFutureGlobalKey":           "unknown",
		"aws:PrincipalServiceNamesList":     "absent",
		"aws:SourceOrgID":                   "absent",
		"kms:CustomerMasterKeySpec":         "unknown",
		"aws:ResourceOrgID":                 "unknown",
		"aws:CurrentTime":                   "=2026-01-02T03:04:05Z",
		"kms:EncryptionContext:aws:s3:arn ": "absent", // a different key (trailing space)
	} {
		if got := state(r, key); got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
	}
}

func TestForWithWorld(t *testing.T) {
	multi := false
	w := &world.World{
		Keys: map[string]*world.Key{keyARN: {KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: "AWS_KMS",
			MultiRegion: &multi, Aliases: []string{}, Tags: map[string]string{"env": "prod"}}},
		Principals: map[string]*world.Principal{roleARN: {Policies: []world.NamedPolicy{}, Tags: map[string]string{"team": "orders"}}},
		Accounts:   map[string]*world.Account{"111122223333": {OrgID: "o-a1b2c3d4e5", OrgPaths: []string{"o-a1b2c3d4e5/r-ab12/"}}},
	}
	r := For(denial(), w, "kms:Decrypt")
	for key, want := range map[string]string{
		"kms:KeySpec":           "=SYMMETRIC_DEFAULT",
		"kms:KeyUsage":          "=ENCRYPT_DECRYPT",
		"kms:KeyOrigin":         "=AWS_KMS",
		"kms:MultiRegion":       "=false",
		"kms:ResourceAliases":   "=[]", // read: no aliases
		"aws:ResourceTag/env":   "=prod",
		"aws:ResourceTag/owner": "absent",
		"aws:PrincipalTag/team": "=orders",
		"aws:PrincipalTag/cost": "absent",
		"aws:PrincipalOrgID":    "=o-a1b2c3d4e5",
		"aws:ResourceOrgID":     "=o-a1b2c3d4e5",
		"aws:PrincipalOrgPaths": "=[o-a1b2c3d4e5/r-ab12/]",
	} {
		if got := state(r, key); got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
	}
}

// A record that logs no encryption context leaves every context key unknown; a probe that
// drops a key the record gave (a direct call without kms:ViaService) makes it absent.
func TestForUnknownContextAndProbes(t *testing.T) {
	d := denial()
	d.ContextARN, d.EncryptionContext = "", nil
	r := For(d, nil, "kms:Decrypt")
	for _, key := range []string{"kms:EncryptionContext:aws:s3:arn", "kms:EncryptionContextKeys"} {
		if got := state(r, key); got != "unknown" {
			t.Errorf("%s: %s, want unknown", key, got)
		}
	}
	delete(r.Context, "kms:ViaService")
	if got := state(r, "kms:ViaService"); got != "absent" {
		t.Errorf("kms:ViaService after the probe drops it: %s, want absent", got)
	}
}

// A directory bucket's context is aws:s3express:arn (internal/cloudtrail sets ContextKey);
// its kms:ViaService value is not documented, so it is unknown.
func TestForDirectoryBucket(t *testing.T) {
	d := denial()
	arn := "arn:aws:s3express:eu-west-1:111122223333:bucket/data--euw1-az1--x-s3"
	d.ContextKey, d.ContextARN, d.EncryptionContext, d.DirectoryBucket = cloudtrail.DirectoryContextKey, arn, nil, true
	r := For(d, nil, "kms:Decrypt")
	for key, want := range map[string]string{
		"kms:EncryptionContext:aws:s3express:arn": "=" + arn,
		"kms:EncryptionContext:aws:s3:arn":        "absent",
		"kms:EncryptionContextKeys":               "=[aws:s3express:arn]",
		"kms:ViaService":                          "unknown",
	} {
		if got := state(r, key); got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
	}
}

// TestUnknownAnyCase: what is known of a key the context does not list is the same whatever
// the case a policy spells it in, long keys and keys that are not ASCII included (lower-cased
// as strings.ToLower does: "ſ" is not "s").
func TestUnknownAnyCase(t *testing.T) {
	d := denial()
	d.EncryptionContext = nil
	d.ContextARN = ""
	r := For(d, nil, "kms:Decrypt")
	long := strings.Repeat("x", 200)
	for key, want := range map[string]policy.KeyState{
		"aws:PrincipalOrgID":               policy.KeyUnknown,
		"AWS:PRINCIPALORGID":               policy.KeyUnknown,
		"aws:principalorgid":               policy.KeyUnknown,
		"aws:TokenIssueTime":               policy.KeyUnknownValue,
		"AWS:SOURCEIP":                     policy.KeyUnknownValue,
		"Aws:SourceArn":                    policy.KeyAbsent,
		"kms:ENCRYPTIONCONTEXT:Department": policy.KeyUnknown,
		"kms:EncryptionContext:" + long:    policy.KeyUnknown,
		"KMS:EncryptionContextKeys":        policy.KeyUnknown,
		"aws:ResourceTag/" + long:          policy.KeyUnknown,
		"aws:uſername":                     policy.KeyUnknown, // not aws:username
		"aws:RequestTag/Ünïcode":           policy.KeyAbsent,
		"s3:prefix":                        policy.KeyAbsent,
		"S3:" + long:                       policy.KeyAbsent,
		"AWS:" + long:                      policy.KeyUnknown,
		"ec2:ResourceTag/ünïcode" + long:   policy.KeyAbsent,
	} {
		if got := r.Unknown(key); got != want {
			t.Errorf("Unknown(%q) = %d, want %d", key, got, want)
		}
	}
}
