package patch

import (
	"slices"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

const keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func crossAccountDenial() *cloudtrail.Denial {
	return &cloudtrail.Denial{
		EventID: "e1", EventName: "Decrypt", Region: "us-east-1",
		Identity: cloudtrail.Identity{Kind: cloudtrail.KindRole, PrincipalARN: "arn:aws:iam::999988887777:role/data/consumer",
			SessionARN: "arn:aws:sts::999988887777:assumed-role/consumer/s", Account: "999988887777", Editable: true},
		KeyARN: keyARN, KeyAccount: "111122223333", KeyRegion: "us-east-1",
		ContextARN: "arn:aws:s3:::shared", Bucket: "shared", BucketKey: true,
		Actions: []string{"kms:Decrypt"},
	}
}

func TestBuildAndVerifyCrossAccount(t *testing.T) {
	d := crossAccountDenial()
	w := &world.World{}
	f := Sides{NeedIdentity: true, NeedKeyPolicy: true}
	patches := Build(d, f, w)
	if len(patches) != 2 {
		t.Fatalf("got %d patches", len(patches))
	}
	id, key := patches[0], patches[1]
	if id.Kind != finding.KindIdentityPolicy || id.Account != "999988887777" || id.Target != d.Identity.PrincipalARN {
		t.Errorf("identity patch = %+v", id)
	}
	if key.Kind != finding.KindKeyPolicyStatement || key.Account != "111122223333" || key.Target != keyARN {
		t.Errorf("key patch = %+v", key)
	}
	if got := key.Statement.Resource.Items; !slices.Equal(got, []string{keyARN}) {
		t.Errorf("statement resource = %v, want the exact key ARN", got)
	}
	v := Verify(d, w, patches)
	if !v.OK() {
		t.Fatalf("verification: %+v", v)
	}
	// Either half alone is not enough across accounts.
	if Verify(d, w, patches[:1]).AllowedAfter || Verify(d, w, patches[1:]).AllowedAfter {
		t.Error("one side alone verified as allowed")
	}
}

func TestVerifyCatchesWidening(t *testing.T) {
	d := crossAccountDenial()
	broad := []finding.Patch{
		{Kind: finding.KindIdentityPolicy, Account: "999988887777", Target: d.Identity.PrincipalARN,
			Policy: &policy.Document{Statement: policy.Statements{{Effect: "Allow", Action: policy.V("kms:*"), Resource: policy.V("*")}}}},
		{Kind: finding.KindKeyPolicyStatement, Account: "111122223333", Target: keyARN,
			Statement: &policy.Statement{Effect: "Allow", Principal: policy.AWSPrincipal("arn:aws:iam::999988887777:root"), Action: policy.V("kms:*"), Resource: policy.V("*")}},
	}
	v := Verify(d, &world.World{}, broad)
	if !v.AllowedAfter {
		t.Fatal("broad patch does not even allow the request")
	}
	for _, want := range []string{"kms:PutKeyPolicy via S3", "kms:CreateGrant called directly", "kms:Decrypt on another key", "kms:Decrypt for bucket sharedx", "kms:Decrypt called directly (no kms:ViaService)"} {
		if !slices.Contains(v.Widened, want) {
			t.Errorf("widening %q not caught; got %v", want, v.Widened)
		}
	}
}

func TestNamesAreDeterministicAndIAMSafe(t *testing.T) {
	d := crossAccountDenial()
	if Name(d) != Name(crossAccountDenial()) {
		t.Fatal("name not deterministic")
	}
	sid := Sid(d)
	for _, r := range sid {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", r) {
			t.Fatalf("sid %q has %q", sid, r)
		}
	}
	other := crossAccountDenial()
	other.Bucket = "another"
	if Name(other) == Name(d) {
		t.Fatal("different bucket, same name")
	}
}

func TestMergedKeyPolicyKeepsExistingStatements(t *testing.T) {
	d := crossAccountDenial()
	orig := `{"Version":"2012-10-17","Statement":[{"Sid": "Enable IAM User Permissions", "Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	doc, err := policy.Parse([]byte(orig))
	if err != nil {
		t.Fatal(err)
	}
	w := &world.World{Keys: map[string]*world.Key{keyARN: {Policy: doc}}}
	p := Build(d, Sides{NeedKeyPolicy: true}, w)[0]
	if p.MergedKeyPolicy == nil || len(p.MergedKeyPolicy.Statement) != 2 {
		t.Fatalf("merged = %+v", p.MergedKeyPolicy)
	}
	// encoding/json compacts white space; the statement keeps its keys, order and values.
	if !strings.Contains(p.Commands[0], `{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`) {
		t.Errorf("existing statement text changed: %s", p.Commands[0])
	}
}

func TestGrantOnThisKeyIsNotWideningOnAnotherKey(t *testing.T) {
	d := crossAccountDenial()
	grant := []finding.Patch{{Kind: finding.KindGrant, Account: "111122223333", Target: keyARN,
		Grant: &finding.GrantPatch{Grantee: d.Identity.PrincipalARN, Operations: []string{"Decrypt"}}}}
	v := Verify(d, &world.World{}, grant)
	if !v.AllowedAfter {
		t.Fatal("a grant for the principal must allow the request")
	}
	if slices.Contains(v.Widened, "kms:Decrypt on another key") {
		t.Errorf("a grant on this key was counted as access to another key: %v", v.Widened)
	}
	// A grant cannot carry kms:ViaService, so a direct call is rightly reported as wider.
	if !slices.Contains(v.Widened, "kms:Decrypt called directly (no kms:ViaService)") {
		t.Errorf("direct call through a grant not reported: %v", v.Widened)
	}
}
