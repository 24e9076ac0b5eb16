package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/kmsfix/kmsfix/internal/quote"
)

// QueueAPI is the SQS call of the dead-letter check.
type QueueAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// CheckDeadLetters passes when every dead-letter queue is empty: a message there is an event
// that EventBridge could not deliver or that the function failed on after its retries.
// urls are queue URLs given by flag; arns the queues found on the rule target and the function.
func CheckDeadLetters(ctx context.Context, api QueueAPI, urls, arns []string, rule *eventbridge.DescribeRuleOutput, fn *FunctionInfo) Check {
	c := Check{Name: NameDeadLetters}
	slices.Sort(arns)
	arns = slices.Compact(arns)
	for _, arn := range arns {
		u, err := queueURL(arn)
		if err != nil {
			c.Status, c.Detail = Fail, err.Error()
			c.Fix = "point the rule target's DeadLetterConfig at an SQS queue ARN (cdk deploy does)"
			return c
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 && (rule == nil || fn == nil) {
		return skipped(NameDeadLetters, "no rule target or function to find the queue on; pass --dlq URL")
	}
	if len(urls) == 0 {
		c.Status = Warn
		c.Detail = "no dead-letter queue configured: events that cannot be delivered are dropped"
		c.Fix = fmt.Sprintf("deploy the stack (cdk deploy), which gives both a dead-letter queue, or:\n"+
			"aws events put-targets --rule %s --event-bus-name %s --targets %s",
			quote.Shell(aws.ToString(rule.Name)), quote.Shell(busName(rule)), quote.Shell("Id=remediator,Arn="+fn.ARN+",DeadLetterConfig={Arn=QUEUE_ARN}"))
		return c
	}
	var full []string
	var fixes []string
	for _, u := range urls {
		out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(u),
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			},
		})
		var missing *sqstypes.QueueDoesNotExist
		if errors.As(err, &missing) {
			c.Status, c.Detail = Fail, queueName(u)+" does not exist: failed deliveries have nowhere to go"
			c.Fix = "deploy the stack (cdk deploy) to recreate it, or point the rule target's DeadLetterConfig and the function's on-failure destination at an existing queue"
			return c
		}
		if err != nil {
			return cannotRead(c, "dead-letter queue "+u, err, "sqs:GetQueueAttributes")
		}
		n := 0
		for _, a := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
			v, _ := strconv.Atoi(out.Attributes[string(a)])
			n += v
		}
		if n > 0 {
			full = append(full, fmt.Sprintf("%s holds %d message(s)", queueName(u), n))
			fixes = append(fixes,
				"aws sqs receive-message --queue-url "+quote.Shell(u)+" --max-number-of-messages 10 --attribute-names All --message-attribute-names All",
			)
		}
	}
	if len(full) == 0 {
		names := make([]string, len(urls))
		for i, u := range urls {
			names[i] = queueName(u)
		}
		c.Status, c.Detail = Pass, strings.Join(names, ", ")+" empty"
		return c
	}
	c.Status = Fail
	c.Detail = strings.Join(full, "; ") + ": events that were not handled"
	fixes = append([]string{"read them (the error is in the message attributes) and fix the cause:"}, fixes...)
	fixes = append(fixes, "recover the denials they held with `kmsfix scan --since 7d`, then empty the queue:")
	for _, u := range urls {
		fixes = append(fixes, "aws sqs purge-queue --queue-url "+quote.Shell(u))
	}
	c.Fix = strings.Join(fixes, "\n")
	return c
}

// queueURL turns arn:PARTITION:sqs:REGION:ACCOUNT:NAME into the queue's URL, in the form SQS
// documents (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME), which every SQS endpoint accepts.
func queueURL(arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		return "", fmt.Errorf("%q is not an SQS queue ARN", arn)
	}
	domain := "amazonaws.com"
	if parts[1] == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	return "https://sqs." + parts[3] + "." + domain + "/" + parts[4] + "/" + parts[5], nil
}

func queueName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }
