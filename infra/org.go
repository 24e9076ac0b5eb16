package main

// The organization deployment (docs/org.md): one hub in a delegated-administrator account runs
// the function; every member account and Region runs a spoke without code, rolled out by a
// service-managed StackSet. Three stacks come from the same app with `-c deployment=org`:
//
//	KmsfixHub       the single-account stack plus a dedicated bus, the function's fixed-name
//	                role and its right to assume the spokes' roles
//	KmsfixSpoke     the spoke template, also deployable on its own in one account
//	KmsfixSpokes    the StackSet that deploys KmsfixSpoke to the chosen OUs and Regions

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
)

// cloudTrailDetailType is the detail-type EventBridge gives CloudTrail management events.
const cloudTrailDetailType = "AWS API Call via CloudTrail"

// newHubBus is the hub's dedicated bus. Its policy lets only the spokes' forwarding roles of
// the organization's accounts put events, and only the denial events: EventBridge evaluates
// aws:PrincipalOrgID, aws:PrincipalArn and the events:source / events:detail-type keys in a
// bus policy (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html,
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html). A principal
// of a member account cannot assume the forwarding role: its trust admits only EventBridge.
func newHubBus(stack awscdk.Stack, org *config.Org) awsevents.EventBus {
	bus := awsevents.NewEventBus(stack, jsii.String("HubBus"), &awsevents.EventBusProps{
		EventBusName: jsii.String(config.HubBusName),
		Description:  jsii.String("kmsfix hub: S3 KMS denials forwarded by the organization's spokes"),
	})
	awsevents.NewCfnEventBusPolicy(stack, jsii.String("HubBusPolicy"), &awsevents.CfnEventBusPolicyProps{
		EventBusName: bus.EventBusName(),
		StatementId:  jsii.String("kmsfix-denials-from-org-spokes"),
		Statement: map[string]any{
			"Effect":    "Allow",
			"Principal": "*", // narrowed to the organization's forwarding roles below
			"Action":    "events:PutEvents",
			"Resource":  *bus.EventBusArn(),
			"Condition": map[string]any{
				"StringEquals": map[string]any{
					"aws:PrincipalOrgID": org.ID,
					"events:source":      "aws.kms",
					"events:detail-type": cloudTrailDetailType,
				},
				"ArnLike": map[string]any{
					"aws:PrincipalArn": fmt.Sprintf("arn:%s:iam::*:role/%s", *awscdk.Aws_PARTITION(), config.ForwardRoleName),
				},
			},
		},
	})
	return bus
}

// hubAssumeStatements let the hub function assume the spokes' reader roles, only in accounts
// of its organization: aws:ResourceOrgID is the organization of the role being assumed
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceorgid;
// sts:AssumeRole's resource is the role:
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
//
// In apply mode (not a dry run, which writes nothing) it may also assume the apply role, and
// only in the hub's sandbox accounts (KMSFIX_SANDBOX_ACCOUNTS): each is named by its exact ARN,
// so IAM refuses the hub an apply role of any other account even where a spoke of a sandbox
// OU has one. An account is 47 characters of the function's inline policies (10,240 in all per
// role, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): above
// maxListedApplyRoles accounts the statement names every account's kmsfix-apply role of the
// organization instead, and the function's own sandbox check is the only list.
// aws:ResourceAccount with the list would be shorter, but that the key is in the request
// context of sts:AssumeRole was not confirmed here (unverified), and a key that is absent
// would refuse every apply.
func hubAssumeStatements(cfg config.Config, org *config.Org) []awsiam.PolicyStatement {
	partition := *awscdk.Aws_PARTITION()
	inOrg := map[string]any{"StringEquals": map[string]any{"aws:ResourceOrgID": org.ID}}
	s := []awsiam.PolicyStatement{
		statement("AssumeSpokeRoles", []string{"sts:AssumeRole"},
			[]string{fmt.Sprintf("arn:%s:iam::*:role/%s", partition, config.ReaderRoleName)}, inOrg),
	}
	if cfg.Mode == config.ModeApply && !cfg.DryRun {
		s = append(s, statement("AssumeSandboxApplyRoles", []string{"sts:AssumeRole"}, applyRoleARNs(partition, cfg.SandboxAccounts), inOrg))
	}
	return s
}

// maxListedApplyRoles is how many sandbox accounts' apply roles the hub's policy names one by
// one (about 4,700 characters of the role's 10,240).
const maxListedApplyRoles = 100

// applyRoleARNs are the apply roles of the sandbox accounts, or every account's when there
// are more than maxListedApplyRoles.
func applyRoleARNs(partition string, sandbox []string) []string {
	if len(sandbox) > maxListedApplyRoles {
		return []string{fmt.Sprintf("arn:%s:iam::*:role/%s", partition, config.ApplyRoleName)}
	}
	arns := make([]string, len(sandbox))
	for i, acct := range sandbox {
		arns[i] = fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, acct, config.ApplyRoleName)
	}
	return arns
}

// SpokeProps configures a spoke.
type SpokeProps struct {
	awscdk.StackProps
	Org *config.Org
}

// NewSpokeStack defines what a member account and Region needs: the denial rule forwarding to
// the hub's bus, with the role, retries and dead-letter queue EventBridge needs for a
// cross-account bus target, and the roles the hub function assumes. It has no function code,
// no asset and no bootstrap requirement, so a StackSet can deploy it anywhere.
func NewSpokeStack(scope constructs.Construct, id string, props *SpokeProps) awscdk.Stack {
	sp := props.StackProps
	sp.Synthesizer = awscdk.NewBootstraplessSynthesizer(nil)
	if sp.Description == nil {
		sp.Description = jsii.String("kmsfix spoke: forwards S3 KMS denials to the organization's hub; roles the hub assumes")
	}
	stack := awscdk.NewStack(scope, &id, &sp)
	org := props.Org
	account := *awscdk.Aws_ACCOUNT_ID()

	sandbox := awscdk.NewCfnParameter(stack, jsii.String(config.SandboxParameter), &awscdk.CfnParameterProps{
		Type:          jsii.String("String"),
		AllowedValues: jsii.Strings("true", "false"),
		Default:       jsii.String("false"),
		Description:   jsii.String("true in sandbox OUs: adds the apply role the hub assumes to make automatic, expiring fixes"),
	})
	isSandbox := awscdk.NewCfnCondition(stack, jsii.String("IsSandbox"), &awscdk.CfnConditionProps{
		Expression: awscdk.Fn_ConditionEquals(sandbox.ValueAsString(), jsii.String("true")),
	})
	// IAM role names are global per account, so the roles (and their policies) are created by
	// one stack instance per account only, the one in the role Region (config.Org.RoleRegion:
	// the hub's Region, which every account's spokes include); the other Regions' instances
	// use them by their fixed names. An instance in another Region creating them again would
	// fail with "already exists".
	isRoleRegion := awscdk.NewCfnCondition(stack, jsii.String("IsRoleRegion"), &awscdk.CfnConditionProps{
		Expression: awscdk.Fn_ConditionEquals(awscdk.Aws_REGION(), jsii.String(org.RoleRegion())),
	})
	isSandboxRoleRegion := awscdk.NewCfnCondition(stack, jsii.String("IsSandboxRoleRegion"), &awscdk.CfnConditionProps{
		Expression: awscdk.Fn_ConditionAnd(isSandbox, isRoleRegion),
	})

	deadLetters := awssqs.NewQueue(stack, jsii.String("ForwardDeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	cdknag.NagSuppressions_AddResourceSuppressions(deadLetters, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself the dead-letter queue of the forwarding rule."),
	}}, jsii.Bool(true))
	// SQS-managed encryption rather than the project's rule of a KMS key (KMSFIX.6): a
	// customer managed key in every member account and Region would cost each spoke a key
	// ($1 a month; 2,000 accounts in 3 Regions: $6,000) for a queue that holds only events that
	// could not be forwarded, and EventBridge cannot write to a queue under the AWS managed
	// key aws/sqs (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
	deadLetters.Node().DefaultChild().(awscdk.CfnResource).AddMetadata(jsii.String("guard"),
		map[string]any{"SuppressedRules": []string{"kmsfix_encrypted_messaging"}})

	// The role EventBridge assumes to put the event on the hub's bus: EventBridge recommends a
	// role whenever a rule targets a bus in another account
	// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html).
	forward := awsiam.NewRole(stack, jsii.String("ForwardRole"), &awsiam.RoleProps{
		RoleName: jsii.String(config.ForwardRoleName),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": account}},
		}),
		Description: jsii.String("kmsfix spoke: EventBridge puts denials on the hub's bus"),
		InlinePolicies: &map[string]awsiam.PolicyDocument{"PutOnHubBus": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
			Statements: &[]awsiam.PolicyStatement{statement("PutOnHubBus", []string{"events:PutEvents"},
				[]string{org.HubBusARN}, nil)},
		})},
	})

	// Every Region's rule names the forwarding role by its fixed-name ARN; in the role Region
	// through the role itself, so that CloudFormation creates the role before the rule there.
	// Elsewhere the role comes from the role Region's instance, which the StackSet deploys first
	// (NewSpokeStackSet); whether EventBridge's PutTargets checks that the role exists is not
	// documented (unverified): if it does not, an event forwarded before the role exists fails
	// and is retried by the retry policy, then kept in the dead-letter queue.
	forwardARN := awscdk.Fn_ConditionIf(isRoleRegion.LogicalId(), forward.RoleArn(),
		jsii.String(fmt.Sprintf("arn:%s:iam::%s:role/%s", *awscdk.Aws_PARTITION(), account, config.ForwardRoleName)))
	pattern := KmsDenialPattern()
	pattern.Account = jsii.Strings(account)
	rule := awsevents.NewCfnRule(stack, jsii.String("KmsDenialRule"), &awsevents.CfnRuleProps{
		Description:  jsii.String("kmsfix: KMS data-key calls made by S3 for a principal and refused, to the hub"),
		EventPattern: patternJSON(pattern),
		State:        jsii.String(ruleState),
		Targets: &[]*awsevents.CfnRule_TargetProperty{{
			Id:               jsii.String("HubBus"),
			Arn:              jsii.String(org.HubBusARN),
			RoleArn:          forwardARN.ToString(),
			DeadLetterConfig: &awsevents.CfnRule_DeadLetterConfigProperty{Arn: deadLetters.QueueArn()},
			RetryPolicy: &awsevents.CfnRule_RetryPolicyProperty{
				MaximumRetryAttempts:     jsii.Number(185),
				MaximumEventAgeInSeconds: jsii.Number(24 * 3600),
			},
		}},
	})
	// EventBridge writes to the dead-letter queue as itself, for this rule only.
	deadLetters.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ForwardRuleDeadLetters"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sqs:SendMessage"),
		Resources:  &[]*string{deadLetters.QueueArn()},
		Conditions: &map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": rule.AttrArn()}},
	}))

	// Only the hub function's role and the hub's break-glass role (a person reverting an
	// automatic change early: infra/breakglass.go), each only while it belongs to the
	// organization (aws:PrincipalOrgID, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid),
	// may assume the spoke's roles (reader and apply), for an hour at most. The trust names the
	// exact role ARNs, which IAM keeps as the roles' unique ids, so it checks they exist when
	// the spoke is deployed (deploy the hub first, docs/org.md) and a role deleted and recreated
	// under the same name is not trusted
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-roles).
	hubRole := func(id, name, description string) awsiam.Role {
		inOrg := &map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": org.ID}}
		return awsiam.NewRole(stack, jsii.String(id), &awsiam.RoleProps{
			RoleName: jsii.String(name),
			AssumedBy: awsiam.NewCompositePrincipal(
				awsiam.NewArnPrincipal(jsii.String(org.HubRoleARN)).WithConditions(inOrg),
				awsiam.NewArnPrincipal(jsii.String(org.BreakGlassRoleARN)).WithConditions(inOrg)),
			Description:        jsii.String(description),
			MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
		})
	}
	reader := hubRole("ReaderRole", config.ReaderRoleName, "kmsfix spoke: the hub function reads keys, principals and policies here")
	readPolicy := awsiam.NewPolicy(stack, jsii.String("ReaderPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{reader},
		Statements: &[]awsiam.PolicyStatement{},
	})
	// The reader role is global: the hub assumes it for a denial of any spoke Region, so it
	// reads the keys of every spoke Region (and of no other).
	readPolicy.AddStatements(enrichmentReads(org.Regions)...)
	suppressWildcards(readPolicy, readWildcards(org.Regions), "The hub reads whichever key and principal an event of this account names: "+
		"KMS keys are scoped to the spoke Regions (key policies to this account's keys), IAM reads to this account's roles, users, "+
		"groups and policies (plus AWS managed policies); kms:ListAliases has no resource type, so IAM requires \"*\" "+
		"(narrowed with aws:RequestedRegion).")

	apply := hubRole("ApplyRole", config.ApplyRoleName, "kmsfix spoke (sandbox): the hub function's fenced levers for automatic, expiring fixes")
	applyPolicy := awsiam.NewPolicy(stack, jsii.String("ApplyPolicy"), &awsiam.PolicyProps{
		Roles:      &[]awsiam.IRole{apply},
		Statements: applyStatements(apply.RoleArn(), nil, org.Regions),
	})
	suppressWildcards(applyPolicy, applyWildcards(org.Regions), applyWildcardReason)
	onlyIf := func(cond awscdk.CfnCondition, cs ...constructs.IConstruct) {
		for _, c := range cs {
			c.Node().DefaultChild().(awscdk.CfnResource).CfnOptions().SetCondition(cond)
		}
	}
	onlyIf(isRoleRegion, forward, reader, readPolicy)
	onlyIf(isSandboxRoleRegion, apply, applyPolicy)
	return stack
}

// patternJSON renders an L2 event pattern for an L1 rule.
func patternJSON(p *awsevents.EventPattern) map[string]any {
	raw, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// SpokeTemplate synthesizes the spoke in an app of its own and returns its template, for the
// StackSet's TemplateBody (a StackSet takes a template, not a CDK stack).
func SpokeTemplate(org *config.Org) (string, error) {
	dir, err := os.MkdirTemp("", "kmsfix-spoke-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir)})
	stack := NewSpokeStack(app, "KmsfixSpoke", &SpokeProps{Org: org})
	awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	asm := app.Synth(nil)
	body, err := json.Marshal(asm.GetStackByName(stack.StackName()).Template())
	return string(body), err
}

// NewSpokeStackSet defines the service-managed StackSet that deploys the spoke to every account
// of the target OUs and Regions, and again to accounts that join them later (auto-deployment);
// the sandbox OUs get the apply role through the template's parameter
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-manage-auto-deployment.html,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudformation-stackset.html).
// It is deployed in the management account or, with CallAs DELEGATED_ADMIN, in the hub's
// delegated-administrator account.
func NewSpokeStackSet(scope constructs.Construct, id string, props awscdk.StackProps, org *config.Org, templateBody string) awscdk.Stack {
	if props.Description == nil {
		props.Description = jsii.String("kmsfix: the StackSet that deploys the spoke to the organization's accounts")
	}
	stack := awscdk.NewStack(scope, &id, &props)
	regions := org.RegionOrder()
	groups := []any{&awscdk.CfnStackSet_StackInstancesProperty{
		DeploymentTargets: &awscdk.CfnStackSet_DeploymentTargetsProperty{OrganizationalUnitIds: jsii.Strings(org.Targets...)},
		Regions:           jsii.Strings(regions...),
	}}
	if len(org.SandboxOUs) > 0 {
		groups = append(groups, &awscdk.CfnStackSet_StackInstancesProperty{
			DeploymentTargets: &awscdk.CfnStackSet_DeploymentTargetsProperty{OrganizationalUnitIds: jsii.Strings(org.SandboxOUs...)},
			Regions:           jsii.Strings(regions...),
			ParameterOverrides: []any{&awscdk.CfnStackSet_ParameterProperty{
				ParameterKey: jsii.String(config.SandboxParameter), ParameterValue: jsii.String("true"),
			}},
		})
	}
	awscdk.NewCfnStackSet(stack, jsii.String("Spokes"), &awscdk.CfnStackSetProps{
		StackSetName:    jsii.String(config.SpokeStackSet),
		Description:     jsii.String("kmsfix spokes: denial forwarding and the roles the hub assumes"),
		PermissionModel: jsii.String("SERVICE_MANAGED"),
		CallAs:          jsii.String("DELEGATED_ADMIN"),
		AutoDeployment: &awscdk.CfnStackSet_AutoDeploymentProperty{
			Enabled: jsii.Bool(true), RetainStacksOnAccountRemoval: jsii.Bool(false),
		},
		Capabilities:     jsii.Strings("CAPABILITY_NAMED_IAM"),
		ManagedExecution: map[string]any{"Active": true},
		// The role Region first, one Region at a time: the other Regions' spokes use the roles
		// it creates (NewSpokeStack), and a Region whose failures exceed the tolerance stops
		// the operation before the next Region. These preferences order the operations
		// CloudFormation runs for this resource (create, update); they "don't apply to
		// AutoDeployment" (StackSetOperationPreferences,
		// https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/cloudformation/aws.sdk.kotlin.services.cloudformation.model/-stack-set-operation-preferences),
		// so an account joining a target OU may get its Regions' spokes in any order (docs/org.md).
		OperationPreferences: &awscdk.CfnStackSet_OperationPreferencesProperty{
			FailureTolerancePercentage: jsii.Number(10),
			MaxConcurrentPercentage:    jsii.Number(25),
			RegionConcurrencyType:      jsii.String("SEQUENTIAL"),
			RegionOrder:                jsii.Strings(regions...),
		},
		Parameters:          []any{&awscdk.CfnStackSet_ParameterProperty{ParameterKey: jsii.String(config.SandboxParameter), ParameterValue: jsii.String("false")}},
		StackInstancesGroup: groups,
		TemplateBody:        jsii.String(templateBody),
	})
	return stack
}
