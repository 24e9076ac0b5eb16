package hub

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/apply"
)

// The levers of one account: every read with its reader role's client, every write with its
// apply role's (the apply role may only write: infra/apply.go). Without an apply role (a dry
// run) a write fails before any call.

var (
	_ apply.KeyPolicyAPI = (*keyLevers)(nil)
	_ apply.GrantAPI     = (*keyLevers)(nil)
	_ apply.IAMAPI       = (*iamLevers)(nil)
)

type keyLevers struct {
	account       string
	reads, writes *kms.Client
}

func noWrites(op, acct string) error {
	return fmt.Errorf("%s in account %s: no apply role was assumed (a dry run writes nothing)", op, acct)
}

func (k *keyLevers) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, o ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	return k.reads.GetKeyPolicy(ctx, in, o...)
}

func (k *keyLevers) ListGrants(ctx context.Context, in *kms.ListGrantsInput, o ...func(*kms.Options)) (*kms.ListGrantsOutput, error) {
	return k.reads.ListGrants(ctx, in, o...)
}

func (k *keyLevers) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, o ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error) {
	if k.writes == nil {
		return nil, noWrites("kms:PutKeyPolicy", k.account)
	}
	return k.writes.PutKeyPolicy(ctx, in, o...)
}

func (k *keyLevers) CreateGrant(ctx context.Context, in *kms.CreateGrantInput, o ...func(*kms.Options)) (*kms.CreateGrantOutput, error) {
	if k.writes == nil {
		return nil, noWrites("kms:CreateGrant", k.account)
	}
	return k.writes.CreateGrant(ctx, in, o...)
}

func (k *keyLevers) RetireGrant(ctx context.Context, in *kms.RetireGrantInput, o ...func(*kms.Options)) (*kms.RetireGrantOutput, error) {
	if k.writes == nil {
		return nil, noWrites("kms:RetireGrant", k.account)
	}
	return k.writes.RetireGrant(ctx, in, o...)
}

type iamLevers struct {
	account       string
	reads, writes *iam.Client
}

func (i *iamLevers) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, o ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	return i.reads.ListRolePolicies(ctx, in, o...)
}

func (i *iamLevers) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, o ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	return i.reads.GetRolePolicy(ctx, in, o...)
}

func (i *iamLevers) ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, o ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	return i.reads.ListUserPolicies(ctx, in, o...)
}

func (i *iamLevers) GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, o ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error) {
	return i.reads.GetUserPolicy(ctx, in, o...)
}

func (i *iamLevers) PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, o ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	if i.writes == nil {
		return nil, noWrites("iam:PutRolePolicy", i.account)
	}
	return i.writes.PutRolePolicy(ctx, in, o...)
}

func (i *iamLevers) DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, o ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	if i.writes == nil {
		return nil, noWrites("iam:DeleteRolePolicy", i.account)
	}
	return i.writes.DeleteRolePolicy(ctx, in, o...)
}

func (i *iamLevers) PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, o ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error) {
	if i.writes == nil {
		return nil, noWrites("iam:PutUserPolicy", i.account)
	}
	return i.writes.PutUserPolicy(ctx, in, o...)
}

func (i *iamLevers) DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, o ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error) {
	if i.writes == nil {
		return nil, noWrites("iam:DeleteUserPolicy", i.account)
	}
	return i.writes.DeleteUserPolicy(ctx, in, o...)
}
