package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// Publisher is the one SNS call the notifier makes.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// publishSNS sends the notice to the topic. The SDK has already retried throttling and 5xx.
func publishSNS(ctx context.Context, p Publisher, topic string, n Notice) error {
	in, err := PublishInput(topic, n)
	if err != nil {
		return failed(&DeliveryError{Channel: "sns", msg: err.Error()}, false)
	}
	if _, err := p.Publish(ctx, in); err != nil {
		return failed(&DeliveryError{Channel: "sns",
			msg: fmt.Sprintf("publish %s to %s: %v", n.Report.EventID, topic, err)}, snsRetryable(err))
	}
	return nil
}

// snsRetryable: a wrong topic, a refused publish or a rejected message stays so on a retry.
func snsRetryable(err error) bool {
	var (
		param     *snstypes.InvalidParameterException
		value     *snstypes.InvalidParameterValueException
		notFound  *snstypes.NotFoundException
		auth      *snstypes.AuthorizationErrorException
		security  *snstypes.InvalidSecurityException
		kmsDenied *snstypes.KMSAccessDeniedException
		kmsOff    *snstypes.KMSDisabledException
		kmsGone   *snstypes.KMSNotFoundException
		kmsState  *snstypes.KMSInvalidStateException
	)
	return !(errors.As(err, &param) || errors.As(err, &value) || errors.As(err, &notFound) ||
		errors.As(err, &auth) || errors.As(err, &security) || errors.As(err, &kmsDenied) ||
		errors.As(err, &kmsOff) || errors.As(err, &kmsGone) || errors.As(err, &kmsState))
}
