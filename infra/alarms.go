package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

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
