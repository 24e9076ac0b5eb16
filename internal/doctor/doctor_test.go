package doctor_test

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/kmsfix/kmsfix/internal/doctor"
	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// clients are the real SDK clients pointed at the fake.
func clients(f *awsfake.Doctor) doctor.Clients {
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      aws.AnonymousCredentials{},
		HTTPClient:       scan.BufferBodies(http.DefaultClient),
		RetryMaxAttempts: 1,
		BaseEndpoint:     aws.String(f.URL),
	}
	return doctor.Clients{
		CloudTrail:  cloudtrail.NewFromConfig(cfg),
		EventBridge: eventbridge.NewFromConfig(cfg),
		Lambda:      lambda.NewFromConfig(cfg),
		SQS:         sqs.NewFromConfig(cfg),
		Secrets:     secretsmanager.NewFromConfig(cfg),
	}
}

const (
	pass = doctor.Pass
	fail = doctor.Fail
	warn = doctor.Warn
	skip = doctor.Skip
)

var healthy = map[string]doctor.Status{
	doctor.NameTrailLogging: pass, doctor.NameTrailSelectors: pass, doctor.NameRuleExists: pass,
	doctor.NameRuleState: pass, doctor.NameRulePattern: pass, doctor.NameRuleTarget: pass,
	doctor.NameFunction: pass, doctor.NameDeadLetters: pass, doctor.NameSlackSecret: pass,
}

func TestDoctorChecks(t *testing.T) {
	fn := func(f *awsfake.Doctor) *awsfake.Function { return f.Functions[0] }
	mainRule := func(f *awsfake.Doctor) *awsfake.Rule { return f.Rules[1] }
	trail := func(f *awsfake.Doctor) *awsfake.Trail { return f.Trails[0] }
	tests := []struct {
		name   string
		break_ func(f *awsfake.Doctor)
		opts   doctor.Options
		want   map[string]doctor.Status // differences from healthy
		detail map[string]string        // check name -> substring of its detail
		fix    map[string]string        // check name -> substring of its fix
	}{
		{name: "healthy"},
		{
			name:   "no trail",
			break_: func(f *awsfake.Doctor) { f.Trails = nil },
			want:   map[string]doctor.Status{doctor.NameTrailLogging: fail, doctor.NameTrailSelectors: skip},
			fix:    map[string]string{doctor.NameTrailLogging: "aws cloudtrail create-trail --region us-east-1 --name kmsfix-trail"},
		},
		{
			name:   "trail stopped",
			break_: func(f *awsfake.Doctor) { trail(f).Logging = false },
			want:   map[string]doctor.Status{doctor.NameTrailLogging: fail, doctor.NameTrailSelectors: skip},
			fix:    map[string]string{doctor.NameTrailLogging: "aws cloudtrail start-logging --region eu-west-1 --name arn:aws:cloudtrail:eu-west-1:111122223333:trail/management-events"},
		},
		{
			name:   "single-Region trail elsewhere",
			break_: func(f *awsfake.Doctor) { trail(f).MultiRegion = false },
			want:   map[string]doctor.Status{doctor.NameTrailLogging: fail, doctor.NameTrailSelectors: skip},
			detail: map[string]string{doctor.NameTrailLogging: "no trail covers us-east-1"},
		},
		{
			name: "organization trail seen from a member account",
			break_: func(f *awsfake.Doctor) {
				trail(f).Org, trail(f).StatusDenied, trail(f).SelectorsDenied = true, true, true
			},
			want: map[string]doctor.Status{doctor.NameTrailLogging: warn, doctor.NameTrailSelectors: warn},
		},
		{
			name: "one trail stopped, another logging",
			break_: func(f *awsfake.Doctor) {
				trail(f).Logging = false
				f.Trails = append(f.Trails, &awsfake.Trail{Name: "local", HomeRegion: "us-east-1", Logging: true,
					EventSelectors: `[{"ReadWriteType":"All","IncludeManagementEvents":true}]`})
			},
			detail: map[string]string{doctor.NameTrailLogging: "logging: local (us-east-1)", doctor.NameTrailSelectors: "local records"},
		},
		{
			name: "KMS events excluded",
			break_: func(f *awsfake.Doctor) {
				trail(f).EventSelectors = `[{"ReadWriteType":"All","IncludeManagementEvents":true,"ExcludeManagementEventSources":["kms.amazonaws.com","rdsdata.amazonaws.com"]}]`
			},
			want:   map[string]doctor.Status{doctor.NameTrailSelectors: fail},
			detail: map[string]string{doctor.NameTrailSelectors: "ExcludeManagementEventSources excludes kms.amazonaws.com"},
			fix: map[string]string{doctor.NameTrailSelectors: `aws cloudtrail put-event-selectors --region eu-west-1 --trail-name arn:aws:cloudtrail:eu-west-1:111122223333:trail/management-events ` +
				`--event-selectors '[{"ReadWriteType":"All","IncludeManagementEvents":true,"ExcludeManagementEventSources":["rdsdata.amazonaws.com"]}]'`},
		},
		{
			name: "write-only management events",
			break_: func(f *awsfake.Doctor) {
				trail(f).EventSelectors = `[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true}]`
			},
			want: map[string]doctor.Status{doctor.NameTrailSelectors: fail},
			fix:  map[string]string{doctor.NameTrailSelectors: `--event-selectors '[{"ReadWriteType":"All","IncludeManagementEvents":true,"ExcludeManagementEventSources":[]}]'`},
		},
		{
			name: "data events only, kept by the fix",
			break_: func(f *awsfake.Doctor) {
				trail(f).EventSelectors = `[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::b/"]}]}]`
			},
			want: map[string]doctor.Status{doctor.NameTrailSelectors: fail},
			fix: map[string]string{doctor.NameTrailSelectors: `'[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::b/"]}],"ExcludeManagementEventSources":[]},` +
				`{"ReadWriteType":"All","IncludeManagementEvents":true,"ExcludeManagementEventSources":[]}]'`},
		},
		{
			name: "advanced selectors: management events, all of them",
			break_: func(f *awsfake.Doctor) {
				trail(f).EventSelectors = ""
				trail(f).AdvancedSelectors = `[{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]`
			},
		},
		{
			name: "advanced selectors: write-only and KMS excluded",
			break_: func(f *awsfake.Doctor) {
				trail(f).EventSelectors = ""
				trail(f).AdvancedSelectors = `[{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},` +
					`{"Field":"readOnly","Equals":["false"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]},` +
					`{"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]`
			},
			want: map[string]doctor.Status{doctor.NameTrailSelectors: fail},
			fix: map[string]string{doctor.NameTrailSelectors: `--advanced-event-selectors '[{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},` +
				`{"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]'`},
		},
		{
			name: "advanced selectors: data events only",
			break_: func(f *awsfake.Doctor) {
				trail(f).EventSelectors = ""
				trail(f).AdvancedSelectors = `[{"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]`
			},
			want: map[string]doctor.Status{doctor.NameTrailSelectors: fail},
			fix:  map[string]string{doctor.NameTrailSelectors: `{"Name":"Management events","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]'`},
		},
		{
			name:   "rule missing",
			break_: func(f *awsfake.Doctor) { f.Rules = f.Rules[:1] },
			want: map[string]doctor.Status{doctor.NameRuleExists: fail, doctor.NameRuleState: skip, doctor.NameRulePattern: skip,
				doctor.NameRuleTarget: skip, doctor.NameFunction: skip, doctor.NameDeadLetters: skip, doctor.NameSlackSecret: skip},
			fix: map[string]string{doctor.NameRuleExists: "aws events put-rule --region us-east-1 --name kmsfix-kms-denials --event-bus-name default --state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS --event-pattern '{\"source\":[\"aws.kms\"]"},
		},
		{
			name:   "rule named by flag does not exist",
			opts:   doctor.Options{Rule: "my-rule"},
			want:   map[string]doctor.Status{doctor.NameRuleExists: fail, doctor.NameRuleState: skip, doctor.NameRulePattern: skip, doctor.NameRuleTarget: skip, doctor.NameFunction: skip, doctor.NameDeadLetters: skip, doctor.NameSlackSecret: skip},
			detail: map[string]string{doctor.NameRuleExists: `no rule "my-rule" on event bus "default"`},
		},
		{
			name:   "rule found through the function's targets",
			opts:   doctor.Options{Stack: "Renamed", Function: awsfake.DoctorFunctionName},
			detail: map[string]string{doctor.NameRuleExists: awsfake.DoctorRuleName + " on event bus default (a rule for aws.kms targeting"},
		},
		{
			name:   "rule ENABLED",
			break_: func(f *awsfake.Doctor) { mainRule(f).State = "ENABLED" },
			want:   map[string]doctor.Status{doctor.NameRuleState: fail},
			fix: map[string]string{doctor.NameRuleState: "aws events put-rule --name " + awsfake.DoctorRuleName +
				" --event-bus-name default --state ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS --event-pattern '{\"source\":[\"aws.kms\"]"},
		},
		{
			name:   "rule DISABLED",
			break_: func(f *awsfake.Doctor) { mainRule(f).State = "DISABLED" },
			want:   map[string]doctor.Status{doctor.NameRuleState: fail},
			detail: map[string]string{doctor.NameRuleState: "DISABLED"},
			fix:    map[string]string{doctor.NameRuleState: "--description 'kmsfix: KMS data-key calls made by S3 for a principal and refused'"},
		},
		{
			name: "rule pattern misses GenerateDataKey",
			break_: func(f *awsfake.Doctor) {
				mainRule(f).Pattern = `{"source":["aws.kms"],"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventName":["Decrypt"],"errorCode":["AccessDenied"]}}`
			},
			want:   map[string]doctor.Status{doctor.NameRulePattern: fail},
			detail: map[string]string{doctor.NameRulePattern: "does not match an S3 KMS denial of kms:GenerateDataKey"},
		},
		{
			name:   "rule targets another function",
			opts:   doctor.Options{Function: "other-function"},
			break_: func(f *awsfake.Doctor) {},
			want:   map[string]doctor.Status{doctor.NameRuleTarget: fail, doctor.NameFunction: fail, doctor.NameDeadLetters: skip, doctor.NameSlackSecret: skip},
			fix:    map[string]string{doctor.NameRuleTarget: "aws lambda add-permission --function-name other-function"},
		},
		{
			name:   "rule without targets",
			break_: func(f *awsfake.Doctor) { mainRule(f).Targets = nil },
			want:   map[string]doctor.Status{doctor.NameRuleTarget: fail, doctor.NameFunction: skip, doctor.NameDeadLetters: skip, doctor.NameSlackSecret: skip},
			fix:    map[string]string{doctor.NameRuleTarget: "aws events put-targets --rule " + awsfake.DoctorRuleName},
		},
		{
			name:   "function deleted",
			break_: func(f *awsfake.Doctor) { f.Functions = nil },
			want:   map[string]doctor.Status{doctor.NameFunction: fail, doctor.NameSlackSecret: skip},
			fix:    map[string]string{doctor.NameFunction: "cdk deploy"},
		},
		{
			name:   "function failed",
			break_: func(f *awsfake.Doctor) { fn(f).State, fn(f).StateReason = "Failed", "The role cannot be assumed" },
			want:   map[string]doctor.Status{doctor.NameFunction: fail},
			detail: map[string]string{doctor.NameFunction: "is Failed: The role cannot be assumed"},
		},
		{
			name:   "dead letters waiting",
			break_: func(f *awsfake.Doctor) { f.Queues[0].Visible, f.Queues[0].InFlight = 3, 1 },
			want:   map[string]doctor.Status{doctor.NameDeadLetters: fail},
			detail: map[string]string{doctor.NameDeadLetters: awsfake.DoctorQueueName + " holds 4 message(s)"},
			fix:    map[string]string{doctor.NameDeadLetters: "aws sqs purge-queue --queue-url "},
		},
		{
			name: "no dead-letter queue",
			break_: func(f *awsfake.Doctor) {
				mainRule(f).Targets[0].DeadLetter = ""
				fn(f).OnFailure = ""
			},
			want: map[string]doctor.Status{doctor.NameDeadLetters: warn},
			fix:  map[string]string{doctor.NameDeadLetters: "DeadLetterConfig={Arn=QUEUE_ARN}"},
		},
		{
			name:   "dead-letter queue deleted",
			break_: func(f *awsfake.Doctor) { f.Queues = nil },
			want:   map[string]doctor.Status{doctor.NameDeadLetters: fail},
			detail: map[string]string{doctor.NameDeadLetters: "does not exist"},
		},
		{
			name:   "Slack not configured",
			break_: func(f *awsfake.Doctor) { delete(fn(f).Env, "KMSFIX_SLACK_SECRET_ARN") },
			want:   map[string]doctor.Status{doctor.NameSlackSecret: skip},
		},
		{
			name:   "Slack secret missing",
			break_: func(f *awsfake.Doctor) { f.Secrets = nil },
			want:   map[string]doctor.Status{doctor.NameSlackSecret: fail},
			fix:    map[string]string{doctor.NameSlackSecret: "aws secretsmanager create-secret"},
		},
		{
			name:   "Slack secret scheduled for deletion",
			break_: func(f *awsfake.Doctor) { f.Secrets[0].Deleted = true },
			want:   map[string]doctor.Status{doctor.NameSlackSecret: fail},
			fix:    map[string]string{doctor.NameSlackSecret: "aws secretsmanager restore-secret --secret-id " + awsfake.DoctorSecretARN},
		},
		{
			name:   "Slack secret not readable",
			break_: func(f *awsfake.Doctor) { f.Secrets[0].ReadDenied = true },
			want:   map[string]doctor.Status{doctor.NameSlackSecret: fail},
			detail: map[string]string{doctor.NameSlackSecret: "AccessDeniedException"},
		},
		{
			name:   "Slack secret not a URL",
			break_: func(f *awsfake.Doctor) { f.Secrets[0].Value = "xoxb-not-a-webhook" },
			want:   map[string]doctor.Status{doctor.NameSlackSecret: fail},
			fix:    map[string]string{doctor.NameSlackSecret: "aws secretsmanager put-secret-value --secret-id " + awsfake.DoctorSecretARN},
		},
		{
			name:   "Slack secret binary",
			break_: func(f *awsfake.Doctor) { f.Secrets[0].Binary = true },
			want:   map[string]doctor.Status{doctor.NameSlackSecret: fail},
		},
		{
			name:   "ListRules refused: found through the function's targets",
			break_: func(f *awsfake.Doctor) { f.Fail["ListRules"] = "AccessDeniedException" },
			opts:   doctor.Options{Function: awsfake.DoctorFunctionName},
			detail: map[string]string{doctor.NameRuleExists: "(a rule for aws.kms targeting"},
		},
		{
			name:   "ListRules refused, no function named",
			break_: func(f *awsfake.Doctor) { f.Fail["ListRules"] = "AccessDeniedException" },
			want: map[string]doctor.Status{doctor.NameRuleExists: fail, doctor.NameRuleState: skip, doctor.NameRulePattern: skip,
				doctor.NameRuleTarget: skip, doctor.NameFunction: skip, doctor.NameDeadLetters: skip, doctor.NameSlackSecret: skip},
			fix: map[string]string{doctor.NameRuleExists: "events:ListRules"},
		},
		{
			name:   "GetFunction refused",
			break_: func(f *awsfake.Doctor) { f.Fail["GetFunction"] = "AccessDeniedException" },
			want:   map[string]doctor.Status{doctor.NameFunction: warn, doctor.NameSlackSecret: skip},
			detail: map[string]string{doctor.NameDeadLetters: awsfake.DoctorQueueName + " empty"},
		},
		{
			name:   "DescribeSecret refused, the value still readable",
			break_: func(f *awsfake.Doctor) { f.Fail["DescribeSecret"] = "AccessDeniedException" },
		},
		{
			name:   "trails not readable",
			break_: func(f *awsfake.Doctor) { f.Fail["DescribeTrails"] = "AccessDeniedException" },
			want:   map[string]doctor.Status{doctor.NameTrailLogging: fail, doctor.NameTrailSelectors: skip},
			fix:    map[string]string{doctor.NameTrailLogging: "cloudtrail:DescribeTrails"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := awsfake.NewDoctor(t, doctor.StackPattern)
			if tt.break_ != nil {
				tt.break_(f)
			}
			opts := tt.opts
			opts.Region = "us-east-1"
			checks := doctor.Run(context.Background(), clients(f), opts)
			if len(checks) != len(healthy) {
				t.Fatalf("%d checks, want %d: %+v", len(checks), len(healthy), checks)
			}
			anyFail := false
			for _, c := range checks {
				want, ok := tt.want[c.Name]
				if !ok {
					want = healthy[c.Name]
				}
				if c.Status != want {
					t.Errorf("%s: %s (%s; fix %q), want %s", c.Name, c.Status, c.Detail, c.Fix, want)
				}
				anyFail = anyFail || want == fail
				if c.Status == fail && c.Fix == "" || (c.Status == pass || c.Status == skip) && c.Fix != "" {
					t.Errorf("%s: status %s with fix %q: every failure carries a fix, passes and skips none", c.Name, c.Status, c.Fix)
				}
				if s := tt.detail[c.Name]; s != "" && !strings.Contains(c.Detail, s) {
					t.Errorf("%s: detail %q lacks %q", c.Name, c.Detail, s)
				}
				if s := tt.fix[c.Name]; s != "" && !strings.Contains(c.Fix, s) {
					t.Errorf("%s: fix %q lacks %q", c.Name, c.Fix, s)
				}
				if strings.Contains(c.Detail+c.Fix, "T000/B000") {
					t.Errorf("%s shows the secret's value", c.Name)
				}
			}
			if doctor.Failed(checks) != anyFail {
				t.Errorf("Failed = %v, want %v", doctor.Failed(checks), anyFail)
			}
		})
	}
}

func TestDoctorTable(t *testing.T) {
	f := awsfake.NewDoctor(t, doctor.StackPattern)
	f.Rules[1].State = "ENABLED"
	f.Queues[0].Visible = 2
	checks := doctor.Run(context.Background(), clients(f), doctor.Options{Region: "us-east-1"})
	var buf bytes.Buffer
	if err := doctor.WriteTable(&buf, checks); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(buf.String(), f.URL, "http://FAKE")
	path := filepath.Join("testdata", "table.txt")
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("table differs from %s:\n%s", path, got)
	}
}
