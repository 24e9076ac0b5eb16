package enrich

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// lookupError is a failed read: what was read, why it failed, and whether the answer is
// stable enough to cache (a denial is; a timeout or a throttle is not).
type lookupError struct {
	what      string // "kms:GetKeyPolicy arn:aws:kms:..."
	reason    string
	permanent bool
}

func (e *lookupError) Error() string { return e.what + ": " + e.reason }

// classify turns an SDK error into a lookupError for the world's "unreadable" list.
func classify(what string, err error) *lookupError {
	var ae smithy.APIError
	var maxAttempts *retry.MaxAttemptsError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &lookupError{what: what, reason: "timed out"}
	case errors.Is(err, context.Canceled):
		return &lookupError{what: what, reason: "cancelled"}
	case errors.As(err, &ae):
		code := ae.ErrorCode()
		switch code {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "KMSAccessDeniedException":
			return &lookupError{what: what, reason: "access denied", permanent: true}
		case "NoSuchEntity", "NotFoundException":
			return &lookupError{what: what, reason: "not found", permanent: true}
		}
		reason := code
		if ae.ErrorMessage() != "" {
			reason += ": " + ae.ErrorMessage()
		}
		if errors.As(err, &maxAttempts) {
			reason = fmt.Sprintf("%s (gave up after %d attempts)", reason, maxAttempts.Attempt)
		}
		return &lookupError{what: what, reason: reason, permanent: ae.ErrorFault() == smithy.FaultClient && !retryable(code)}
	default:
		return &lookupError{what: what, reason: err.Error()}
	}
}

func retryable(code string) bool {
	switch code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
		"LimitExceededException", "ServiceUnavailable", "InternalFailure", "KMSInternalException",
		"DependencyTimeoutException", "ServiceFailure", "RequestTimeout":
		return true
	}
	return false
}

// isNotFound: the key (KMS) or the principal or policy (IAM) does not exist.
func isNotFound(err error) bool {
	var (
		key    *kmstypes.NotFoundException
		entity *iamtypes.NoSuchEntityException
	)
	return errors.As(err, &key) || errors.As(err, &entity)
}
