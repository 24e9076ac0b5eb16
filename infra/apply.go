package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
)

// The opt-in tag: apply mode changes only roles, users and keys that carry it. Opt-in, not
// opt-out: a resource nobody tagged is never changed. IAM matches the tag key of
// aws:ResourceTag/<key> case-insensitively and the value as the operator says (StringEquals:
// exactly), so "kmsfix:AUTO-FIX" is the same key and "Enabled" is not the value
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag).
// IAM roles and users and KMS keys support aws:ResourceTag for these actions
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html,
// https://docs.aws.amazon.com/kms/latest/developerguide/abac.html).
const (
	optInTagKey   = config.AutoFixTagKey
	optInTagValue = config.AutoFixTagValue
	// cdkBootstrapRoles are the roles `cdk bootstrap` creates with the default qualifier: they
	// deploy stacks, so no automatic change may ever touch them (a custom qualifier is not
	// covered: the opt-in tag still fences those).
	cdkBootstrapRoles = "cdk-hnb659fds-*"
)

// addApplyPermissions gives the function the audit key and the levers of apply mode
// (applyStatements); the function is deployed only after they exist. A dry run makes no
// change, so it gets no write right at all (its reads, GetKeyPolicy and ListGrants, are the
// enrichment's), but it keeps the audit key: the applier addresses a finding's change by the
// key's MAC of its fingerprint (internal/apply Store.Pointer) and refuses every finding
// without it, so a dry run without the key would only ever report "no audit integrity key".
// The hub does the same (stack.go).
func addApplyPermissions(stack awscdk.Stack, cfg config.Config, r remediator, key awskms.Key) {
	addAuditKey(stack, r)
	if cfg.DryRun {
		return
	}
	role := r.role
	applyPolicy := awsiam.NewPolicy(stack, jsii.String("ApplyPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{role},
		Statements: applyStatements(role.RoleArn(), key.KeyArn(), nil),
	})
	suppressWildcards(applyPolicy, applyWildcards(nil), applyWildcardReason)
	r.fn.Node().AddDependency(applyPolicy)
}

// BreakGlassRoleName is the one role besides the function's that may seal audit records
// (kms:GenerateMac on the audit key): the people who run `kmsfix revert` assume it. The stack
// does not create it (docs/apply.md).
const BreakGlassRoleName = config.BreakGlassRoleName

// addAuditKey creates the HMAC key that seals apply's audit records (internal/apply/seal.go)
// and hands it to the function. Only the function role and the break-glass role may produce a
// MAC (a Deny in the key policy, whatever identity policies say); verifying is left to IAM.
func addAuditKey(stack awscdk.Stack, r remediator) awskms.Key {
	partition, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_ACCOUNT_ID()
	key := awskms.NewKey(stack, jsii.String("AuditKey"), &awskms.KeyProps{
		Description:   jsii.String("kmsfix: seals the audit records of automatic changes (HMAC)"),
		KeySpec:       awskms.KeySpec_HMAC_256,
		KeyUsage:      awskms.KeyUsage_GENERATE_VERIFY_MAC,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN, // the records it sealed outlive the stack
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyKmsfixSealsAuditRecords"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:GenerateMac"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnNotEquals": map[string]any{"aws:PrincipalArn": []any{
			r.role.RoleArn(), fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, BreakGlassRoleName)}}},
	}), nil)
	grantsOnlyForAWSServices(key)
	key.Grant(r.role, jsii.String("kms:GenerateMac"), jsii.String("kms:VerifyMac"))
	r.fn.AddEnvironment(jsii.String("KMSFIX_AUDIT_KEY_ARN"), key.KeyArn(), nil)
	cdknag.NagSuppressions_AddResourceSuppressions(key, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-KMS5"),
		Reason: jsii.String("An HMAC key cannot rotate automatically (KMS rotates symmetric encryption keys only); " +
			"the key only seals kmsfix's audit records."),
	}}, jsii.Bool(true))
	return key
}

// applyWildcards are the wildcards of applyStatements(..., regions), required for the reason
// below.
func applyWildcards(regions []string) []string {
	out := []string{
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
	}
	for _, r := range nagRegions(regions) {
		out = append(out, "Resource::arn:<AWS::Partition>:kms:"+r+":<AWS::AccountId>:key/*")
	}
	return out
}

const applyWildcardReason = "Apply mode changes the principal or key a finding names, which is not known at " +
	"deploy time: resources are scoped to this account's roles, users and the keys of this Region (a spoke: of its listed Regions), and only those " +
	"tagged " + optInTagKey + "=" + optInTagValue + " (opt-in); explicit Denies exclude the function's own role, its " +
	"stack key and the CDK bootstrap roles; grants are limited by kms:GranteePrincipal, kms:GrantOperations " +
	"and kms:RetiringPrincipal."

// applyStatements: the levers of apply mode (an inline identity policy, a key-policy statement,
// a grant) on this account's resources that opted in. IAM cannot scope PutRolePolicy to a
// policy name, hence the opt-in tag and the explicit Denies.
//
// Conditions left out on purpose:
//   - aws:ResourceAccount: every resource here is in this account (its ARN says so), so the
//     key is always this account and the condition decides nothing; the sandbox accounts are
//     the function's own check (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount).
//   - Allow with Bool kms:GrantIsForAWSResource=false: the key is documented for calls an
//     integrated service makes for a principal; whether it is in the context of a direct call
//     is unverified, and a Bool condition on a key that is absent is false, which would make
//     the Allow never match (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
//   - Allow with Bool kms:BypassPolicyLockoutSafetyCheck=false: replaced by a Deny when it is
//     true, which holds whether or not a request that omits the parameter carries the key
//     (KMS says request-parameter keys take the parameter's default:
//     https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html).
//
// roleARN is the role that holds the levers (the function's, or a spoke's apply role);
// ownKey is the key of the stack's own resources, nil where the stack has none (a spoke);
// regions are the Regions of the keys it may change (nil: the stack's own; a spoke's global
// apply role: every spoke Region).
func applyStatements(roleARN, ownKey *string, regions []string) *[]awsiam.PolicyStatement {
	partition, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_ACCOUNT_ID()
	optedIn := map[string]any{"aws:ResourceTag/" + optInTagKey: optInTagValue}
	var keys []string
	for _, region := range keyRegions(regions) {
		keys = append(keys, fmt.Sprintf("arn:%s:kms:%s:%s:key/*", partition, region, account))
	}
	roles := fmt.Sprintf("arn:%s:iam::%s:role/*", partition, account)
	users := fmt.Sprintf("arn:%s:iam::%s:user/*", partition, account)
	bootstrap := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, cdkBootstrapRoles)
	s := []awsiam.PolicyStatement{
		statement("ApplyIdentityPolicies", []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy",
			"iam:PutUserPolicy", "iam:DeleteUserPolicy"}, []string{roles, users},
			map[string]any{"StringEquals": optedIn}),
		statement("ApplyKeyPolicies", []string{"kms:PutKeyPolicy"}, keys,
			map[string]any{"StringEquals": optedIn}),
		// A grant only to a role or user of this account, only for Decrypt and GenerateDataKey,
		// retired by this function (https://docs.aws.amazon.com/kms/latest/developerguide/grant-authorization.html).
		statement("ApplyGrants", []string{"kms:CreateGrant"}, keys,
			map[string]any{
				"StringEquals":              mergeMaps(optedIn, map[string]any{"kms:RetiringPrincipal": *roleARN}),
				"StringLike":                map[string]any{"kms:GranteePrincipal": []string{roles, users}},
				"ForAllValues:StringEquals": map[string]any{"kms:GrantOperations": []string{"Decrypt", "GenerateDataKey"}},
			}),
		// Retiring removes only a grant this function is the retiring principal of; it must work
		// even after the tag is gone, so the change can always be undone.
		statement("RetireGrants", []string{"kms:RetireGrant"}, keys, nil),
	}
	deny := func(sid string, actions []string, resources []*string, conditions map[string]any) awsiam.PolicyStatement {
		p := &awsiam.PolicyStatementProps{Sid: jsii.String(sid), Effect: awsiam.Effect_DENY,
			Actions: jsii.Strings(actions...), Resources: &resources}
		if conditions != nil {
			p.Conditions = &conditions
		}
		return awsiam.NewPolicyStatement(p)
	}
	roleWrites := []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
		"iam:UpdateAssumeRolePolicy"}
	// Explicit Denies win over every Allow, whatever tags say.
	s = append(s,
		// The function can never rewrite its own permissions, nor those that deploy stacks.
		deny("NeverChangeOwnRole", roleWrites, []*string{roleARN}, nil),
		deny("NeverChangeCdkBootstrapRoles", roleWrites, []*string{jsii.String(bootstrap)}, nil),
		// Nor give a grant to itself or to the deployment roles.
		deny("NeverGrantToOwnOrBootstrapRoles", []string{"kms:CreateGrant"}, *jsii.Strings(keys...),
			map[string]any{"ArnLike": map[string]any{"kms:GranteePrincipal": []any{*roleARN, bootstrap}}}),
		// Nor skip KMS's check that the new key policy still lets someone manage the key.
		deny("NeverBypassLockoutCheck", []string{"kms:PutKeyPolicy"}, *jsii.Strings(keys...),
			map[string]any{"Bool": map[string]any{"kms:BypassPolicyLockoutSafetyCheck": "true"}}),
	)
	if ownKey != nil {
		// Nor the key that encrypts its own topic, queue and logs.
		s = append(s, deny("NeverChangeOwnKey", []string{"kms:PutKeyPolicy", "kms:CreateGrant"}, []*string{ownKey}, nil))
	}
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
