package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
)

// Publisher is the one SNS call the notifier makes.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// publishSNS sends the notice to the topic. The SDK has already retried throttling and 5xx.
func publishSNS(ctx context.Context, p Publisher, topic string, n Notice) error {
	in, err := PublishInput(topic, n)
	if err != nil {
		return &DeliveryError{Channel: "sns", msg: err.Error()}
	}
	if _, err := p.Publish(ctx, in); err != nil {
		return &DeliveryError{Channel: "sns", Retryable: snsRetryable(err),
			msg: fmt.Sprintf("publish %s to %s: %v", n.Report.EventID, topic, err)}
	}
	return nil
}

// snsRetryable: a wrong topic, a refused publish or a rejected message stays so on a retry.
func snsRetryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidParameter", "InvalidParameterValue", "NotFound", "AuthorizationError",
			"InvalidSecurity", "KMSAccessDenied", "KMSDisabled", "KMSNotFound", "KMSInvalidState":
			return false
		}
	}
	return true
}
