package main

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudtrail"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/rulepattern"
)

// The facts that make the events arrive (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail-management.html;
// docs/cloudtrail.md).
const (
	ruleState         = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
	requestSource     = "kmsfix.remediator"
	requestDetailType = "KMS Key Policy Change Requested"
	// Resources carrying this tag are never changed by apply mode.
	protectTagKey = "kmsfix:protected"
	// Function sizing: the handler is I/O bound (a handful of AWS calls per event); 256 MB gives
	// an arm64 share of CPU that keeps cold start low, 30 s covers the slowest enrichment path
	// with SDK retries (see docs/deploy.md).
	memoryMB       = 256
	timeoutSeconds = 30
)

// StackProps configures the kmsfix stack.
type StackProps struct {
	awscdk.StackProps
	// Config is the validated deployment (internal/config: the function reads the same rules).
	Config config.Deployment
	// AssetDir is the directory holding the Lambda's `bootstrap` (dist/ after `make build`).
	AssetDir string
}

// KmsDenialPattern is the event pattern of the main rule (rulepattern.KMSDenial, which
// `kmsfix doctor` prints in its fix for the rule).
func KmsDenialPattern() *awsevents.EventPattern {
	f := rulepattern.KMSDenialFields()
	return &awsevents.EventPattern{
		Source:     jsii.Strings(f.Source...),
		DetailType: jsii.Strings(f.DetailType...),
		Detail:     &f.Detail,
	}
}

// NewKmsfixStack defines everything one account and Region needs.
func NewKmsfixStack(scope constructs.Construct, id string, props *StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	deployment := props.Config
	cfg := deployment.Function
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	arn := func(format string, a ...any) string { return fmt.Sprintf(format, a...) }

	// One customer managed key for the topic, the dead-letter queue and the logs: AWS managed
	// keys cannot be used by CloudWatch alarms (SNS) or EventBridge (SQS) as service principals.
	key := awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("kmsfix: encrypts its topic, dead-letter queue and logs"),
		EnableKeyRotation: jsii.Bool(true),
		// Retained so that retained logs stay readable; docs/deploy.md says how to delete it.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AlarmsPublishToEncryptedTopic"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"), // in a key policy "*" means this key
	}), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("EventBridgeWritesEncryptedDeadLetters"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": account}},
	}), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchLogsEncryptsLogGroups"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String(arn("logs.%s.amazonaws.com", region)), nil)},
		Actions: jsii.Strings("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
			"kms:GenerateDataKey", "kms:DescribeKey"),
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{"ArnLike": map[string]any{
			"kms:EncryptionContext:aws:logs:arn": arn("arn:%s:logs:%s:%s:log-group:*", partition, region, account)}},
	}), nil)

	// Nobody but an AWS service integration may create grants on this key (Control Tower CT.KMS.PR.3).
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("GrantsOnlyForAwsServices"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("kms:CreateGrant"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"BoolIfExists": map[string]any{
			"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}},
	}), nil)

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
	for _, e := range deployment.NotifyEmails {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(e), nil))
	}

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
	})

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

	logGroup := awslogs.NewLogGroup(stack, jsii.String("FunctionLogs"), &awslogs.LogGroupProps{
		Retention:     retentionDays(deployment.LogRetentionDays),
		EncryptionKey: key,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	role := awsiam.NewRole(stack, jsii.String("FunctionRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("kmsfix remediator: read-only enrichment, its own topic, table, secret and queue"),
	})
	policy := awsiam.NewPolicy(stack, jsii.String("FunctionPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{role},
		Statements: functionStatements(deployment, role, key, topic, table, deadLetters, logGroup),
	})
	suppressWildcards(policy, []string{
		"Resource::arn:<AWS::Partition>:kms:<AWS::Region>:*:key/*",
		"Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*",
		"Resource::*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:group/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:policy/*",
		"Resource::arn:<AWS::Partition>:iam::aws:policy/*",
	}, "The enrichment reads whichever key and principal an event names, so KMS keys are "+
		"scoped to this Region (key policies to this account's keys), IAM reads to this account's roles, users, groups and policies (plus AWS managed "+
		"policies); kms:ListAliases and the Access Analyzer checks have no resource type, so IAM requires \"*\" "+
		"(narrowed with aws:RequestedRegion); log streams are created under the function's own log group.")

	// The deployer's parameters, rendered by internal/config (the function reads them back with
	// config.Load), and the three values only the stack knows.
	env := map[string]*string{
		"KMSFIX_TOPIC_ARN":           topic.TopicArn(),
		"KMSFIX_TABLE_NAME":          table.TableName(),
		"KMSFIX_REMEDIATOR_ROLE_ARN": role.RoleArn(),
	}
	for k, v := range cfg.Environment() {
		env[k] = jsii.String(v)
	}

	fn := awslambda.NewFunction(stack, jsii.String("Function"), &awslambda.FunctionProps{
		Description:                  jsii.String("kmsfix: explains S3 SSE-KMS access denials and proposes the fix"),
		Runtime:                      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:                 awslambda.Architecture_ARM_64(),
		Handler:                      jsii.String("bootstrap"),
		Code:                         awslambda.Code_FromAsset(jsii.String(props.AssetDir), nil),
		MemorySize:                   jsii.Number(memoryMB),
		Timeout:                      awscdk.Duration_Seconds(jsii.Number(timeoutSeconds)),
		ReservedConcurrentExecutions: jsii.Number(deployment.ReservedConcurrency),
		LoggingFormat:                awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2:        awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:             awslambda.SystemLogLevel_INFO,
		LogGroup:                     logGroup,
		Role:                         role,
		Environment:                  &env,
	})
	fn.Node().AddDependency(policy)

	// Asynchronous invocations (every EventBridge delivery) that still fail after Lambda's
	// retries go to the dead-letter queue. L1, so the role's permissions are the exact ones above.
	invokeConfig := awslambda.NewCfnEventInvokeConfig(stack, jsii.String("FunctionInvokeConfig"), &awslambda.CfnEventInvokeConfigProps{
		FunctionName:             fn.FunctionName(),
		Qualifier:                jsii.String("$LATEST"),
		MaximumRetryAttempts:     jsii.Number(2),
		MaximumEventAgeInSeconds: jsii.Number(6 * 3600),
		DestinationConfig: &awslambda.CfnEventInvokeConfig_DestinationConfigProperty{
			OnFailure: &awslambda.CfnEventInvokeConfig_OnFailureProperty{Destination: deadLetters.QueueArn()},
		},
	})
	invokeConfig.Node().AddDependency(policy)

	target := func() awsevents.IRuleTarget {
		return awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: deadLetters,
			RetryAttempts:   jsii.Number(8),
			MaxEventAge:     awscdk.Duration_Hours(jsii.Number(6)),
		})
	}

	rule := awsevents.NewRule(stack, jsii.String("KmsDenialRule"), &awsevents.RuleProps{
		Description:  jsii.String("kmsfix: KMS data-key calls made by S3 for a principal and refused"),
		EventPattern: KmsDenialPattern(),
		Targets:      &[]awsevents.IRuleTarget{target()},
	})
	// Decrypt and GenerateDataKey are read-only management events; the L2 construct only knows
	// ENABLED/DISABLED, so the documented opt-in state is set on the L1 resource.
	rule.Node().DefaultChild().(awsevents.CfnRule).AddPropertyOverride(jsii.String("State"), jsii.String(ruleState))

	if cfg.AcceptsRequests() {
		addRequestRule(stack, cfg, target())
	}
	if cfg.Mode == config.ModeApply {
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
		fn.Node().AddDependency(applyPolicy)
		// Expiry: a sweeper run every 15 minutes reverts automatic changes whose time is up.
		awsevents.NewRule(stack, jsii.String("ExpirySweeper"), &awsevents.RuleProps{
			Description: jsii.String("kmsfix: revert automatic changes whose expiry has passed"),
			Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(15))),
			Targets:     &[]awsevents.IRuleTarget{target()},
		})
	}

	addAlarms(stack, fn, deadLetters, topic)
	if deployment.CreateTrail {
		addTrail(stack, key)
	}

	awscdk.NewCfnOutput(stack, jsii.String("TopicArn"), &awscdk.CfnOutputProps{Value: topic.TopicArn()})
	awscdk.NewCfnOutput(stack, jsii.String("FunctionName"), &awscdk.CfnOutputProps{Value: fn.FunctionName()})
	awscdk.NewCfnOutput(stack, jsii.String("RuleName"), &awscdk.CfnOutputProps{Value: rule.RuleName()})
	awscdk.NewCfnOutput(stack, jsii.String("DeadLetterQueueUrl"), &awscdk.CfnOutputProps{Value: deadLetters.QueueUrl()})
	return stack
}

func statement(sid string, actions []string, resources []string, conditions map[string]any) awsiam.PolicyStatement {
	p := &awsiam.PolicyStatementProps{
		Sid:       jsii.String(sid),
		Actions:   jsii.Strings(actions...),
		Resources: jsii.Strings(resources...),
	}
	if conditions != nil {
		p.Conditions = &conditions
	}
	return awsiam.NewPolicyStatement(p)
}

// functionStatements: exactly the calls the function makes (DESIGN.md; the enrichment and the
// notifiers), each on the narrowest resource IAM supports.
func functionStatements(deployment config.Deployment, role awsiam.Role, key awskms.Key, topic awssns.Topic, table awsdynamodb.Table,
	deadLetters awssqs.Queue, logGroup awslogs.LogGroup) *[]awsiam.PolicyStatement {
	cfg := deployment.Function
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	inRegion := map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": region}}
	via := func(service string) map[string]any {
		return map[string]any{"StringEquals": map[string]any{"kms:ViaService": fmt.Sprintf("%s.%s.amazonaws.com", service, region)}}
	}
	iamARN := func(kind string) string { return fmt.Sprintf("arn:%s:iam::%s:%s/*", partition, account, kind) }

	s := []awsiam.PolicyStatement{
		statement("WriteOwnLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			[]string{*logGroup.LogGroupArn()}, nil),
		// The denied key may belong to any account (cross-account keys), but always to this Region;
		// its policy is read only for this account's keys (another account's is not ours to read).
		statement("DescribeKeys", []string{"kms:DescribeKey", "kms:ListGrants"},
			[]string{fmt.Sprintf("arn:%s:kms:%s:*:key/*", partition, region)}, nil),
		statement("ReadOwnKeyPolicies", []string{"kms:GetKeyPolicy"},
			[]string{fmt.Sprintf("arn:%s:kms:%s:%s:key/*", partition, region, account)}, nil),
		statement("ListAliases", []string{"kms:ListAliases"}, []string{"*"}, inRegion),
		statement("ReadRoles", []string{"iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy",
			"iam:ListAttachedRolePolicies"}, []string{iamARN("role")}, nil),
		statement("ReadUsers", []string{"iam:GetUser", "iam:ListUserPolicies", "iam:GetUserPolicy",
			"iam:ListAttachedUserPolicies", "iam:ListGroupsForUser"}, []string{iamARN("user")}, nil),
		statement("ReadGroups", []string{"iam:ListGroupPolicies", "iam:GetGroupPolicy",
			"iam:ListAttachedGroupPolicies"}, []string{iamARN("group")}, nil),
		statement("ReadManagedPolicies", []string{"iam:GetPolicy", "iam:GetPolicyVersion"},
			[]string{iamARN("policy"), fmt.Sprintf("arn:%s:iam::aws:policy/*", partition)}, nil),
		statement("CheckPolicies", []string{"access-analyzer:ValidatePolicy", "access-analyzer:CheckAccessNotGranted",
			"access-analyzer:CheckNoNewAccess"}, []string{"*"}, inRegion),
		statement("PublishFindings", []string{"sns:Publish"}, []string{*topic.TopicArn()}, nil),
		statement("DedupeAndAudit", []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
			"dynamodb:Query", "dynamodb:DeleteItem"}, []string{*table.TableArn()}, nil),
		statement("SendFailedInvocations", []string{"sqs:SendMessage"}, []string{*deadLetters.QueueArn()}, nil),
		// The topic and the queue are encrypted with the stack's key, and only through those services.
		statement("UseOwnKeyViaSns", []string{"kms:GenerateDataKey", "kms:Decrypt"}, []string{*key.KeyArn()}, via("sns")),
		statement("UseOwnKeyViaSqs", []string{"kms:GenerateDataKey", "kms:Decrypt"}, []string{*key.KeyArn()}, via("sqs")),
	}
	if cfg.SlackSecretARN != "" {
		s = append(s, statement("ReadSlackSecret", []string{"secretsmanager:GetSecretValue"}, []string{cfg.SlackSecretARN}, nil))
		if deployment.SlackSecretKeyARN != "" {
			s = append(s, statement("DecryptSlackSecret", []string{"kms:Decrypt"}, []string{deployment.SlackSecretKeyARN},
				via("secretsmanager")))
		}
	}
	if len(cfg.KeyOwnerBuses) > 0 {
		var buses []string
		for _, a := range cfg.BusAccounts() {
			buses = append(buses, cfg.KeyOwnerBuses[a])
		}
		s = append(s, statement("SendKeyPolicyRequests", []string{"events:PutEvents"}, buses,
			map[string]any{"StringEquals": map[string]any{"events:source": requestSource,
				"events:detail-type": requestDetailType}}))
	}
	return &s
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

// addRequestRule (key-owner side) accepts key-policy change requests sent by kmsfix in trusted
// accounts: a bus policy lets them put exactly that kind of event, and a rule hands them to the function.
func addRequestRule(stack awscdk.Stack, cfg config.Config, target awsevents.IRuleTarget) {
	partition, region, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID()
	busARN := fmt.Sprintf("arn:%s:events:%s:%s:event-bus/default", partition, region, account)
	onlyRequests := map[string]any{"events:source": requestSource, "events:detail-type": requestDetailType}

	pattern := &awsevents.EventPattern{
		Source:     jsii.Strings(requestSource),
		DetailType: jsii.Strings(requestDetailType),
	}
	if len(cfg.TrustedAccounts) > 0 {
		var roots []string
		for _, a := range cfg.TrustedAccounts {
			roots = append(roots, fmt.Sprintf("arn:%s:iam::%s:root", partition, a))
		}
		awsevents.NewCfnEventBusPolicy(stack, jsii.String("TrustedAccountsPutRequests"), &awsevents.CfnEventBusPolicyProps{
			EventBusName: jsii.String("default"),
			StatementId:  jsii.String("kmsfix-requests-from-accounts"),
			Statement: map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"AWS": roots},
				"Action":    "events:PutEvents",
				"Resource":  busARN,
				"Condition": map[string]any{"StringEquals": onlyRequests},
			},
		})
	}
	if cfg.TrustedOrgID != "" {
		awsevents.NewCfnEventBusPolicy(stack, jsii.String("TrustedOrgPutRequests"), &awsevents.CfnEventBusPolicyProps{
			EventBusName: jsii.String("default"),
			StatementId:  jsii.String("kmsfix-requests-from-org"),
			Statement: map[string]any{
				"Effect":    "Allow",
				"Principal": "*", // narrowed to the organization by aws:PrincipalOrgID
				"Action":    "events:PutEvents",
				"Resource":  busARN,
				"Condition": map[string]any{"StringEquals": mergeMaps(onlyRequests,
					map[string]any{"aws:PrincipalOrgID": cfg.TrustedOrgID})},
			},
		})
	}
	// EventBridge sets `account` to the sender's account, so it cannot be forged; local
	// principals could put the same source, hence this account is never accepted.
	if len(cfg.TrustedAccounts) > 0 && cfg.TrustedOrgID == "" {
		pattern.Account = jsii.Strings(cfg.TrustedAccounts...)
	} else {
		pattern.Account = awsevents.Match_AnythingBut(account)
	}
	awsevents.NewRule(stack, jsii.String("KeyPolicyRequestRule"), &awsevents.RuleProps{
		Description:  jsii.String("kmsfix: key-policy change requests from trusted caller accounts"),
		EventPattern: pattern,
		Targets:      &[]awsevents.IRuleTarget{target},
	})
}

func addAlarms(stack awscdk.Stack, fn awslambda.Function, deadLetters awssqs.Queue, topic awssns.Topic) {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	alarms := []struct {
		id, description string
		metric          awscloudwatch.IMetric
	}{
		{"FunctionErrors", "kmsfix function invocations failed", fn.MetricErrors(&awscloudwatch.MetricOptions{
			Period: five, Statistic: jsii.String("Sum")})},
		{"FunctionThrottles", "kmsfix function invocations were throttled (reserved concurrency reached)",
			fn.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")})},
		{"DeadLetters", "kmsfix events are waiting in the dead-letter queue",
			deadLetters.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
				Period: five, Statistic: jsii.String("Maximum")})},
	}
	action := awscloudwatchactions.NewSnsAction(topic)
	for _, a := range alarms {
		alarm := awscloudwatch.NewAlarm(stack, jsii.String(a.id+"Alarm"), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(a.description),
			Metric:             a.metric,
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
			ActionsEnabled:     jsii.Bool(true),
		})
		alarm.AddAlarmAction(action)
	}
}

// addTrail creates a multi-Region trail logging all management events (KMS included: no
// exclusion), for accounts that have none. CloudTrail delivers the first copy of management
// events free of charge.
func addTrail(stack awscdk.Stack, key awskms.Key) {
	partition, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_ACCOUNT_ID()
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudTrailEncryptsLogs"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudtrail.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:GenerateDataKey"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringLike":   map[string]any{"kms:EncryptionContext:aws:cloudtrail:arn": fmt.Sprintf("arn:%s:cloudtrail:*:%s:trail/*", partition, account)},
			"StringEquals": map[string]any{"aws:SourceAccount": account},
		},
	}), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudTrailDescribesKey"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudtrail.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:DescribeKey"),
		Resources:  jsii.Strings("*"),
	}), nil)

	bucket := awss3.NewBucket(stack, jsii.String("TrailBucket"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_KMS,
		EncryptionKey:     key,
		BucketKeyEnabled:  jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                  awscdk.Duration_Days(jsii.Number(365)),
			NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(30)),
		}},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(bucket, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-S1"),
		Reason: jsii.String("The bucket only receives CloudTrail log files; server access logs would need a second " +
			"bucket and duplicate what the trail's own log file validation already protects."),
	}}, jsii.Bool(true))

	awscloudtrail.NewTrail(stack, jsii.String("Trail"), &awscloudtrail.TrailProps{
		Bucket:                     bucket,
		EncryptionKey:              key,
		EnableFileValidation:       jsii.Bool(true),
		IsMultiRegionTrail:         jsii.Bool(true),
		IncludeGlobalServiceEvents: jsii.Bool(true),
		ManagementEvents:           awscloudtrail.ReadWriteType_ALL,
		SendToCloudWatchLogs:       jsii.Bool(false),
	})
}

// suppressWildcards records, next to the policy, why each of its remaining wildcards is
// required; any other wildcard still fails cdk-nag.
func suppressWildcards(policy awsiam.Policy, findings []string, reason string) {
	appliesTo := make([]any, len(findings))
	for i, f := range findings {
		appliesTo[i] = f
	}
	cdknag.NagSuppressions_AddResourceSuppressions(policy, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String(reason),
		AppliesTo: &appliesTo,
	}}, jsii.Bool(true))
}

// retentionDays maps a validated number of days (config.LogRetentions) to the CDK enum.
func retentionDays(days int) awslogs.RetentionDays {
	enums := []awslogs.RetentionDays{awslogs.RetentionDays_ONE_DAY, awslogs.RetentionDays_THREE_DAYS,
		awslogs.RetentionDays_FIVE_DAYS, awslogs.RetentionDays_ONE_WEEK, awslogs.RetentionDays_TWO_WEEKS,
		awslogs.RetentionDays_ONE_MONTH, awslogs.RetentionDays_TWO_MONTHS, awslogs.RetentionDays_THREE_MONTHS,
		awslogs.RetentionDays_FOUR_MONTHS, awslogs.RetentionDays_FIVE_MONTHS, awslogs.RetentionDays_SIX_MONTHS,
		awslogs.RetentionDays_ONE_YEAR, awslogs.RetentionDays_THIRTEEN_MONTHS, awslogs.RetentionDays_EIGHTEEN_MONTHS,
		awslogs.RetentionDays_TWO_YEARS, awslogs.RetentionDays_THREE_YEARS, awslogs.RetentionDays_FIVE_YEARS,
		awslogs.RetentionDays_SIX_YEARS, awslogs.RetentionDays_SEVEN_YEARS, awslogs.RetentionDays_EIGHT_YEARS,
		awslogs.RetentionDays_NINE_YEARS, awslogs.RetentionDays_TEN_YEARS}
	return enums[slices.Index(config.LogRetentions, days)]
}
