package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/kmsfix/kmsfix/internal/quote"
)

// FunctionGetter is the Lambda call that finds the function.
type FunctionGetter interface {
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
}

// FunctionAPI adds the asynchronous-invocation settings, where the stack puts its
// dead-letter destination.
type FunctionAPI interface {
	FunctionGetter
	GetFunctionEventInvokeConfig(ctx context.Context, in *lambda.GetFunctionEventInvokeConfigInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionEventInvokeConfigOutput, error)
}

// FunctionInfo is what the later checks need of the function.
type FunctionInfo struct {
	ARN            string
	Role           string // the execution role's ARN
	Env            map[string]string
	DeadLetterARNs []string // SQS queues of failed asynchronous invocations
}

func lambdaGetFunction(name string) *lambda.GetFunctionInput {
	return &lambda.GetFunctionInput{FunctionName: aws.String(name)}
}

// CheckFunction passes when the function exists and is Active with its last update done.
func CheckFunction(ctx context.Context, api FunctionAPI, name, region string) (Check, *FunctionInfo) {
	c := Check{Name: NameFunction}
	if name == "" {
		return skipped(NameFunction, "no function found on the rule; pass --function NAME"), nil
	}
	out, err := api.GetFunction(ctx, lambdaGetFunction(name))
	if err != nil {
		var missing *lambdatypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			c.Status, c.Detail = Fail, fmt.Sprintf("function %s does not exist in %s", functionName(name), region)
			c.Fix = "deploy the stack: make build && cdk deploy"
			return c, nil
		}
		// Not a verdict on delivery: the rule's target was checked already.
		c.Status, c.Detail = Warn, fmt.Sprintf("could not read function %s: %v", functionName(name), err)
		c.Fix = "allow lambda:GetFunction to the identity running the doctor, then rerun"
		return c, nil
	}
	cfg := out.Configuration
	if cfg == nil {
		c.Status, c.Detail = Fail, "GetFunction returned no configuration"
		return c, nil
	}
	info := &FunctionInfo{ARN: aws.ToString(cfg.FunctionArn), Role: aws.ToString(cfg.Role), Env: map[string]string{}}
	if cfg.Environment != nil {
		info.Env = cfg.Environment.Variables
	}
	if cfg.DeadLetterConfig != nil && isSQS(aws.ToString(cfg.DeadLetterConfig.TargetArn)) {
		info.DeadLetterARNs = append(info.DeadLetterARNs, aws.ToString(cfg.DeadLetterConfig.TargetArn))
	}
	if ic, err := api.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: cfg.FunctionArn}); err == nil &&
		ic.DestinationConfig != nil && ic.DestinationConfig.OnFailure != nil && isSQS(aws.ToString(ic.DestinationConfig.OnFailure.Destination)) {
		info.DeadLetterARNs = append(info.DeadLetterARNs, aws.ToString(ic.DestinationConfig.OnFailure.Destination))
	}

	fname := aws.ToString(cfg.FunctionName)
	switch {
	case cfg.State != "" && cfg.State != lambdatypes.StateActive:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s is %s: %s", fname, cfg.State, aws.ToString(cfg.StateReason))
		c.Fix = "redeploy (cdk deploy); if it stays " + string(cfg.State) + ", see `aws lambda get-function --function-name " + quote.Shell(fname) + " --query Configuration.StateReasonCode`"
	case cfg.LastUpdateStatus == lambdatypes.LastUpdateStatusFailed:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s: last update failed: %s", fname, aws.ToString(cfg.LastUpdateStatusReason))
		c.Fix = "redeploy (cdk deploy) after fixing: " + aws.ToString(cfg.LastUpdateStatusReason)
	default:
		c.Status, c.Detail = Pass, fname+" is Active"
	}
	return c, info
}

func isSQS(arn string) bool { return strings.HasPrefix(arn, "arn:") && strings.Contains(arn, ":sqs:") }
