package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// newTopic is the SNS topic that receives every finding and every alarm, with the deployer's
// e-mail subscriptions.
func newTopic(stack awscdk.Stack, key awskms.Key, emails []string) awssns.Topic {
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	arn := func(format string, a ...any) string { return fmt.Sprintf(format, a...) }
	topic := awssns.NewTopic(stack, jsii.String("Topic"), &awssns.TopicProps{
		DisplayName: jsii.String("kmsfix findings"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	// The topic policy replaces SNS's default one, so the alarms' publisher must be named.
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": account},
			"ArnLike":      map[string]any{"aws:SourceArn": arn("arn:%s:cloudwatch:%s:%s:alarm:*", partition, region, account)},
		},
	}))
	for _, e := range emails {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(e), nil))
	}
	return topic
}

// onlyFunctionPublishes makes the topic's policy refuse every IAM principal but the
// function's role: a message on the topic is a finding kmsfix made. An explicit Deny beats the
// identity policies of the account's other principals, which a same-account topic would
// otherwise honour. Service principals (the CloudWatch alarms, allowed above) are left out by
// aws:PrincipalIsAWSService, which is in every request's context; aws:PrincipalArn is the
// role's ARN for its sessions
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn,
// #condition-keys-principalisawsservice; https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html).
func onlyFunctionPublishes(topic awssns.Topic, role awsiam.IRole) {
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("OnlyTheFunctionPublishes"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: &map[string]any{
			"ArnNotEquals": map[string]any{"aws:PrincipalArn": role.RoleArn()},
			"Bool":         map[string]any{"aws:PrincipalIsAWSService": "false"},
		},
	}))
}

// newDeadLetterQueue receives the events neither EventBridge nor Lambda could deliver.
func newDeadLetterQueue(stack awscdk.Stack, key awskms.Key) awssqs.Queue {
	deadLetters := awssqs.NewQueue(stack, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: key,
		DataKeyReuse:        awscdk.Duration_Hours(jsii.Number(1)),
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(14)),
	})
	cdknag.NagSuppressions_AddResourceSuppressions(deadLetters, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself the dead-letter queue of the EventBridge targets and of the function's asynchronous invocations."),
	}}, jsii.Bool(true))
	return deadLetters
}
