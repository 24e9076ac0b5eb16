package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
)

// newTable holds the dedupe entries and the audit trail of automatic changes.
func newTable(stack awscdk.Stack) awsdynamodb.Table {
	table := awsdynamodb.NewTable(stack, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String("expires_at"),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// The AWS owned-by-account key (aws/dynamodb): encrypted at rest, no key grants needed.
		Encryption:    awsdynamodb.TableEncryption_AWS_MANAGED,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN, // the audit trail outlives the stack
		// The audit trail of automatic changes must not be deleted by mistake or on purpose
		// without first turning this off (issue 15).
		DeletionProtection: jsii.Bool(true),
	})
	return table
}

// breakGlassRole is the one role besides the function that may write the table: a person
// fixing the audit trail by hand (`kmsfix revert` run with it) creates a role of this name.
const breakGlassRole = config.BreakGlassRoleName

// onlyFunctionWrites makes the table's resource policy refuse item writes to every IAM
// principal but the function's role and the break-glass role: the table holds the dedupe
// state and the audit records of automatic changes, which a planted item must not steer. An
// explicit Deny beats the identity policies of the account's other principals
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/access-control-resource-based.html;
// aws:PrincipalArn and aws:PrincipalIsAWSService as for the topic).
func onlyFunctionWrites(table awsdynamodb.Table, role awsiam.IRole) {
	partition, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_ACCOUNT_ID()
	table.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyTheFunctionWrites"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions: jsii.Strings("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
			"dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"),
		// In a table's resource policy "*" is this table (and its indexes).
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{
			"ArnNotEquals": map[string]any{"aws:PrincipalArn": []any{role.RoleArn(),
				fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, breakGlassRole)}},
			"Bool": map[string]any{"aws:PrincipalIsAWSService": "false"},
		},
	}))
}
