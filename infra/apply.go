package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
)

// addApplyPermissions gives the function the levers of apply mode (applyStatements), fenced to
// the sandbox accounts; the function is deployed only after they exist.
func addApplyPermissions(stack awscdk.Stack, cfg config.Config, r remediator) {
	role := r.role
	applyPolicy := awsiam.NewPolicy(stack, jsii.String("ApplyPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{role},
		Statements: applyStatements(cfg, role),
	})
	suppressWildcards(applyPolicy, []string{
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
		"Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*",
	}, "Apply mode changes the principal or key a finding names, which is not known at "+
		"deploy time: resources are scoped to this account's roles, users and this Region's keys, limited to the "+
		"sandbox accounts by aws:ResourceAccount, never the function's own role, never resources tagged "+
		protectTagKey+"=true, and grants are limited by kms:GrantOperations and kms:RetiringPrincipal.")
	r.fn.Node().AddDependency(applyPolicy)
}

// applyStatements: the levers of apply mode (an inline identity policy, a key-policy statement,
// a grant), only in sandbox accounts. IAM cannot scope PutRolePolicy to a policy name, so the
// resources are this account's roles and users, with the function's own role denied (it must
// never widen itself) and resources tagged kmsfix:protected=true excluded.
func applyStatements(cfg config.Config, role awsiam.Role) *[]awsiam.PolicyStatement {
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	sandbox := map[string]any{"aws:ResourceAccount": cfg.SandboxAccounts}
	notProtected := map[string]any{"aws:ResourceTag/" + protectTagKey: "true"}
	keys := fmt.Sprintf("arn:%s:kms:%s:%s:key/*", partition, region, account)
	s := []awsiam.PolicyStatement{
		statement("ApplyIdentityPolicies", []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy",
			"iam:PutUserPolicy", "iam:DeleteUserPolicy"},
			[]string{fmt.Sprintf("arn:%s:iam::%s:role/*", partition, account), fmt.Sprintf("arn:%s:iam::%s:user/*", partition, account)},
			map[string]any{"StringEquals": sandbox, "StringNotEquals": notProtected}),
		statement("ApplyKeyPolicies", []string{"kms:GetKeyPolicy", "kms:PutKeyPolicy"}, []string{keys},
			map[string]any{"StringEquals": sandbox, "StringNotEquals": notProtected,
				"Bool": map[string]any{"kms:BypassPolicyLockoutSafetyCheck": "false"}}),
		statement("ApplyGrants", []string{"kms:CreateGrant"}, []string{keys},
			map[string]any{
				"StringEquals":              mergeMaps(sandbox, map[string]any{"kms:RetiringPrincipal": *role.RoleArn()}),
				"StringNotEquals":           notProtected,
				"ForAllValues:StringEquals": map[string]any{"kms:GrantOperations": []string{"Decrypt", "GenerateDataKey"}},
				"Bool":                      map[string]any{"kms:GrantIsForAWSResource": "false"},
			}),
		statement("RetireGrants", []string{"kms:ListGrants", "kms:RetireGrant"}, []string{keys},
			map[string]any{"StringEquals": sandbox}),
	}
	// An explicit Deny wins over every Allow: the function can never rewrite its own permissions.
	deny := awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("NeverChangeOwnRole"),
		Effect:    awsiam.Effect_DENY,
		Actions:   jsii.Strings("iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:UpdateAssumeRolePolicy"),
		Resources: &[]*string{role.RoleArn()},
	})
	s = append(s, deny)
	return &s
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
