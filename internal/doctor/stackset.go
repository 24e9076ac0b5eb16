package doctor

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// StackSetAPI is the CloudFormation calls of the hub's StackSet checks; *cloudformation.Client
// satisfies it.
type StackSetAPI interface {
	DescribeStackSet(ctx context.Context, in *cloudformation.DescribeStackSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackSetOutput, error)
	ListStackInstances(ctx context.Context, in *cloudformation.ListStackInstancesInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ListStackInstancesOutput, error)
}
