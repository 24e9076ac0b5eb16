package enrich

import (
	"context"
	"errors"
	"fmt"

	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/kmsfix/kmsfix/internal/retry"
)

// lookupError is a failed read: what was read and why it failed. One whose answer is stable
// enough to cache (a denial is; a timeout or a throttle is not) is marked retry.Permanent
// (refused).
type lookupError struct {
	what   string // "kms:GetKeyPolicy arn:aws:kms:..."
	reason string
}

func (e *lookupError) Error() string { return e.what + ": " + e.reason }

// refused is a failed read a retry would answer the same way: retry.Permanent, so cached.
func refused(what, reason string) error {
	return retry.Permanent(&lookupError{what: what, reason: reason})
}

// classify turns an SDK error into a lookupError for the world's "unreadable" list.
func classify(what string, err error) error {
	var ae smithy.APIError
	var maxAttempts *awsretry.MaxAttemptsError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &lookupError{what: what, reason: "timed out"}
	case errors.Is(err, context.Canceled):
		return &lookupError{what: what, reason: "cancelled"}
	case errors.As(err, &ae):
		code := ae.ErrorCode()
		switch {
		case isNotFound(err): // KMS and IAM model these: typed
			return refused(what, "not found")
		case code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation" || code == "KMSAccessDeniedException":
			// Common AWS errors the KMS, IAM and STS models have no type for: the code is all
			// there is.
			return refused(what, "access denied")
		}
		reason := code
		if ae.ErrorMessage() != "" {
			reason += ": " + ae.ErrorMessage()
		}
		if errors.As(err, &maxAttempts) {
			reason = fmt.Sprintf("%s (gave up after %d attempts)", reason, maxAttempts.Attempt)
		}
		if ae.ErrorFault() == smithy.FaultClient && !retryable(err, code) {
			return refused(what, reason)
		}
		return &lookupError{what: what, reason: reason}
	default:
		return &lookupError{what: what, reason: err.Error()}
	}
}

// retryable: a throttle or a service-side failure heals with time. KMS's and IAM's own are
// typed; the common codes (throttling, ServiceUnavailable, InternalFailure, RequestTimeout)
// have no type in the service models, so the code is all there is for them.
func retryable(err error, code string) bool {
	var (
		kmsInternal *kmstypes.KMSInternalException
		dependency  *kmstypes.DependencyTimeoutException
		kmsLimit    *kmstypes.LimitExceededException
		iamFailure  *iamtypes.ServiceFailureException
	)
	if errors.As(err, &kmsInternal) || errors.As(err, &dependency) || errors.As(err, &kmsLimit) || errors.As(err, &iamFailure) {
		return true
	}
	switch code {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
		"ServiceUnavailable", "InternalFailure", "RequestTimeout":
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
