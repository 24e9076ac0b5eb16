package main

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
)

// newBreakGlassRole creates, in the hub, the role a person assumes to revert an automatic
// change before it expires (`kmsfix revert ID --hub --role <this role>`, the command every
// message shows; docs/apply.md "Early revert by a person").
//
// Why a role and not a request to the function: the spokes' reader and apply roles trust
// exactly two principals of the hub account, the function's role and this one (org.go), so
// every early revert is an sts:AssumeRole of this role by a named person, then of the spoke's
// roles by this role, each an event in CloudTrail with the caller's identity
// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html),
// and the revert runs the same guarded code as the sweeper (only kmsfix-named artefacts whose
// content is unchanged; otherwise needs-review).
//
// Who may assume it: the hub account's principals that its own identity policies allow
// (the account as principal delegates the decision to them:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
// No member account's principal is trusted, here or by the spokes' roles. Whoever administers
// the hub account could already change the function that holds the same reach.
//
// It exists in every organization deployment, since the spokes' trust names it and IAM refuses
// a trust policy naming a role that does not exist (deploy the hub first, docs/org.md). Only in
// apply mode does it get permissions: assume the spokes' reader roles and the sandbox accounts'
// apply roles (the function's own statements, so never more than the function), read and write
// the audit records, and seal them with the audit key, whose policy and the table's already
// admit this role by name (apply.go, table.go).
func newBreakGlassRole(stack awscdk.Stack, cfg config.Config, org *config.Org, table awsdynamodb.Table, auditKey awskms.Key) awsiam.Role {
	role := awsiam.NewRole(stack, jsii.String("BreakGlassRole"), &awsiam.RoleProps{
		RoleName:           jsii.String(config.BreakGlassRoleName),
		AssumedBy:          awsiam.NewAccountRootPrincipal(),
		Description:        jsii.String("kmsfix hub: a person reverts an automatic change early (kmsfix revert --hub --role)"),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	if auditKey == nil {
		return role // notify mode: no change to revert, no permission
	}
	policy := awsiam.NewPolicy(stack, jsii.String("BreakGlassPolicy"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{role},
		Statements: &[]awsiam.PolicyStatement{
			statement("AuditRecords", []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"},
				[]string{*table.TableArn()}, nil),
			statement("SealAuditRecords", []string{"kms:GenerateMac", "kms:VerifyMac"}, []string{*auditKey.KeyArn()}, nil),
		},
	})
	policy.AddStatements(hubAssumeStatements(cfg, org)...)
	suppressWildcards(policy, []string{
		"Resource::arn:<AWS::Partition>:iam::*:role/" + config.ReaderRoleName,
		"Resource::arn:<AWS::Partition>:iam::*:role/" + config.ApplyRoleName,
	}, "A revert reads and writes in the account of the change, through its spoke's reader and apply roles: the "+
		"function's own statements (reader role of any account of the organization, aws:ResourceOrgID; apply role "+
		"per sandbox account, or above "+strconv.Itoa(maxListedApplyRoles)+" sandbox accounts by name in any account of the organization).")
	return role
}
