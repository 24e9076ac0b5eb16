package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func readerRole(acct string) string { return "arn:aws:iam::" + acct + ":role/kmsfix-reader" }
func applyRole(acct string) string  { return "arn:aws:iam::" + acct + ":role/kmsfix-apply" }

func count(roles []string, arn string) int {
	n := 0
	for _, r := range roles {
		if r == arn {
			n++
		}
	}
	return n
}

// Each account's apply role is assumed once per credential lifetime, apart from its reader
// role, and never for another account; reads go with the reader's credentials, writes with
// the apply role's, each to that account's services only.
func TestApplyCredentialsPerAccount(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	ctx := context.Background()
	for range 20 {
		for _, acct := range []string{callerAccount, ownerAccount} {
			l, err := o.accounts.Levers(ctx, acct, true)
			if err != nil {
				t.Fatal(err)
			}
			if l.Account != acct || l.Role != applyRole(acct) {
				t.Fatalf("levers of %s: account %s role %s", acct, l.Account, l.Role)
			}
		}
	}
	roles := o.sts.AssumedRoles()
	for _, acct := range []string{callerAccount, ownerAccount} {
		if n := count(roles, applyRole(acct)); n != 1 {
			t.Errorf("apply role of %s assumed %d times over 20 uses, want 1", acct, n)
		}
		if n := count(roles, readerRole(acct)); n != 1 {
			t.Errorf("reader role of %s assumed %d times, want 1", acct, n)
		}
	}

	// A write through the key owner's levers: read with its reader role, written with its
	// apply role, in its own KMS.
	l, err := o.accounts.Levers(ctx, ownerAccount, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(o.keyARN), PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(o.keyARN), PolicyName: aws.String("default"), Policy: out.Policy}); err != nil {
		t.Fatal(err)
	}
	if n := o.kms.Ops(applyRole(ownerAccount))["PutKeyPolicy"]; n != 1 {
		t.Errorf("PutKeyPolicy with the owner's apply role: %d, want 1", n)
	}
	if ops := o.kms.Ops(applyRole(ownerAccount)); ops["GetKeyPolicy"] != 0 {
		t.Errorf("the apply role read: %v", ops)
	}
	if ops := o.kms.Ops(readerRole(ownerAccount)); ops["GetKeyPolicy"] != 1 || ops["PutKeyPolicy"] != 0 {
		t.Errorf("reader role's KMS calls: %v", ops)
	}

	// The caller's apply credentials never write the owner's key: KMS refuses a key policy of
	// another account, and the owner's KMS sees nothing.
	lc, err := o.accounts.Levers(ctx, callerAccount, true)
	if err != nil {
		t.Fatal(err)
	}
	before := o.members[ownerAccount].KMS.Calls("PutKeyPolicy")
	if _, err := lc.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(o.keyARN), PolicyName: aws.String("default"), Policy: out.Policy}); err == nil {
		t.Error("the caller's apply role wrote the owner's key policy")
	}
	if o.kms.Foreign() != 1 || o.members[ownerAccount].KMS.Calls("PutKeyPolicy") != before {
		t.Errorf("cross-account write: foreign %d, owner's PutKeyPolicy %d→%d", o.kms.Foreign(), before, o.members[ownerAccount].KMS.Calls("PutKeyPolicy"))
	}
}

// A dry run assumes no apply role, and its writes fail before any call.
func TestDryRunLeversAssumeNoApplyRole(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	ctx := context.Background()
	seeded := o.members[ownerAccount].KMS.Calls("PutKeyPolicy") // the world's seeding
	l, err := o.accounts.Levers(ctx, ownerAccount, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(o.keyARN), PolicyName: aws.String("default"), Policy: aws.String("{}")})
	if err == nil || !strings.Contains(err.Error(), "no apply role") {
		t.Errorf("dry-run write: %v", err)
	}
	if n := count(o.sts.AssumedRoles(), applyRole(ownerAccount)); n != 0 {
		t.Errorf("apply role assumed %d times in a dry run", n)
	}
	if n := o.members[ownerAccount].KMS.Calls("PutKeyPolicy"); n != seeded {
		t.Errorf("PutKeyPolicy reached KMS %d times", n-seeded)
	}
}

// An account whose spoke has no apply role (not a sandbox OU): the refusal is remembered per
// account, like the reader's, and says which role.
func TestApplyRoleRefusedIsRemembered(t *testing.T) {
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	o.sts.RefuseRole(applyRole(ownerAccount))
	ctx := context.Background()
	for range 10 {
		_, err := o.accounts.Levers(ctx, ownerAccount, true)
		if err == nil || !strings.Contains(err.Error(), applyRole(ownerAccount)) {
			t.Fatalf("levers without an apply role: %v", err)
		}
	}
	if n := o.sts.Calls("AssumeRole"); n != 2 { // the reader once, the refused apply role once
		t.Errorf("AssumeRole calls over 10 refused uses: %d, want 2", n)
	}
	// The reader still works, and the other account's apply role is its own.
	if _, err := o.accounts.Enricher(ctx, ownerAccount); err != nil {
		t.Errorf("the reader of an account without an apply role: %v", err)
	}
	if _, err := o.accounts.Levers(ctx, callerAccount, true); err != nil {
		t.Errorf("the caller's levers: %v", err)
	}
}
