package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/kmsfix/kmsfix/internal/notify"
)

// addAlarms: the function failing or throttled, events in the dead-letter queue, and (with
// Slack) a webhook Slack refuses for good, which no retry heals (notify.MetricWebhookRejected,
// an EMF metric the function writes).
func addAlarms(stack awscdk.Stack, fn awslambda.Function, deadLetters awssqs.Queue, topic awssns.Topic, slack bool) {
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
