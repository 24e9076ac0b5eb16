package enrich

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The AWS operations enrichment uses, declared with the SDK's own signatures so the real
// clients satisfy them directly.

// KMSAPI reads a key: its metadata, policy, aliases, tags and grants.
type KMSAPI interface {
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetKeyPolicy(context.Context, *kms.GetKeyPolicyInput, ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	kms.ListAliasesAPIClient
	kms.ListGrantsAPIClient
	kms.ListResourceTagsAPIClient
}

// RoleAPI reads a role and its inline and attached policies.
type RoleAPI interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	iam.ListRolePoliciesAPIClient
	iam.ListAttachedRolePoliciesAPIClient
}

// UserAPI reads a user, its policies and its groups.
type UserAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	GetUserPolicy(context.Context, *iam.GetUserPolicyInput, ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	iam.ListUserPoliciesAPIClient
	iam.ListAttachedUserPoliciesAPIClient
	iam.ListGroupsForUserAPIClient
}

// GroupAPI reads a group's inline and attached policies.
type GroupAPI interface {
	GetGroupPolicy(context.Context, *iam.GetGroupPolicyInput, ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error)
	iam.ListGroupPoliciesAPIClient
	iam.ListAttachedGroupPoliciesAPIClient
}

// ManagedPolicyAPI reads the default version of a managed policy.
type ManagedPolicyAPI interface {
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
}

// IAMAPI is everything enrichment reads from IAM.
type IAMAPI interface {
	RoleAPI
	UserAPI
	GroupAPI
	ManagedPolicyAPI
}

// STSAPI names the account the function runs in.
type STSAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var (
	_ KMSAPI = (*kms.Client)(nil)
	_ IAMAPI = (*iam.Client)(nil)
	_ STSAPI = (*sts.Client)(nil)
)
