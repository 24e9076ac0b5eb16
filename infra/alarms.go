package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	kmsapply "github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/orgroute"
)

// addAlarms: the function failing or throttled, events in the dead-letter queue, (with
// Slack) a webhook Slack refuses for good, which no retry heals (notify.MetricWebhookRejected),
// and (in apply mode) a change whose revert could not be proven exact or an audit record that
// failed its integrity check (apply.AlertRevertNotExact, apply.AlertTampered): EMF metrics the
// function writes, fed again on every sweep until a person settles them; (with OU or tag
// routes) an account whose OU chain or tags could not be read, whose findings went to the
// default route (orgroute.MetricLookupFailed).
func addAlarms(stack awscdk.Stack, fn awslambda.Function, deadLetters awssqs.Queue, topic awssns.Topic, slack, apply, orgRoutes bool) {
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
	if slack {
		alarms = append(alarms, struct {
			id, description string
			metric          awscloudwatch.IMetric
		}{"SlackWebhookRejected", "Slack refuses kmsfix's webhook (revoked, channel archived): findings reach only the SNS topic",
			awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     jsii.String(notify.MetricNamespace),
				MetricName:    jsii.String(notify.MetricWebhookRejected),
				DimensionsMap: &map[string]*string{"Service": jsii.String("remediator")},
				Period:        five, Statistic: jsii.String("Sum"),
			})})
	}
	if apply {
		for _, m := range []struct{ name, description string }{
			{kmsapply.AlertRevertNotExact, "kmsfix could not prove a revert exact: a change was left for a person (kmsfix applied lists it)"},
			{kmsapply.AlertTampered, "a kmsfix audit record failed its integrity check: someone wrote to the table"},
		} {
			alarms = append(alarms, struct {
				id, description string
				metric          awscloudwatch.IMetric
			}{m.name, m.description, awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     jsii.String(notify.MetricNamespace),
				MetricName:    jsii.String(m.name),
				DimensionsMap: &map[string]*string{"Service": jsii.String("remediator")},
				Period:        five, Statistic: jsii.String("Maximum"),
			})})
		}
	}
	if orgRoutes {
		alarms = append(alarms, struct {
			id, description string
			metric          awscloudwatch.IMetric
		}{orgroute.MetricLookupFailed, "kmsfix could not read an account's OU or tags from Organizations (throttled, " +
			"or the hub is not allowed: docs/org.md, Routing): that account's findings went to the default route",
			awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:     jsii.String(orgroute.MetricNamespace),
				MetricName:    jsii.String(orgroute.MetricLookupFailed),
				DimensionsMap: &map[string]*string{"Service": jsii.String("remediator")},
				Period:        five, Statistic: jsii.String("Sum"),
			})})
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
