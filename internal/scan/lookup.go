package scan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// LookupEventsAPI is the one CloudTrail call a scan makes; *cloudtrail.Client satisfies it.
type LookupEventsAPI interface {
	LookupEvents(ctx context.Context, in *awsct.LookupEventsInput, optFns ...func(*awsct.Options)) (*awsct.LookupEventsOutput, error)
}

// LookupEvents allows 2 requests per second per account and Region; DefaultRate stays below.
const (
	MaxRate     = 2.0
	DefaultRate = 1.8
	// pageSize is LookupEvents' maximum MaxResults.
	pageSize = 50
)

// Lookup reads the KMS management events of a time window with LookupEvents, page by page,
// paced under the API's rate limit and retrying throttled or failed pages.
type Lookup struct {
	API   LookupEventsAPI
	Pacer *Pacer
	// MaxAttempts per page (first try included); Backoff is the first wait after a
	// retryable failure, doubled on each further failure of the same page, up to MaxBackoff.
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// PageInfo is what a caller learns after each page.
type PageInfo struct {
	Page    int
	Events  int       // events on this page
	Oldest  time.Time // oldest event time on this page (pages run newest first)
	Retries int       // retries so far in the whole lookup
	Last    bool      // no page follows
}

// PageError says the lookup stopped early: the events after Oldest were read, the rest not.
type PageError struct {
	Page     int
	Attempts int
	Err      error
}

func (e *PageError) Error() string {
	return fmt.Sprintf("LookupEvents page %d failed after %d attempt(s): %v", e.Page, e.Attempts, e.Err)
}

func (e *PageError) Unwrap() error { return e.Err }

// NewLookup returns a Lookup with the defaults: DefaultRate, 6 attempts, backoff 1s..16s.
func NewLookup(api LookupEventsAPI, c Clock, rate float64) *Lookup {
	if rate <= 0 {
		rate = DefaultRate
	}
	return &Lookup{API: api, Pacer: NewPacer(c, rate), MaxAttempts: 6, Backoff: time.Second, MaxBackoff: 16 * time.Second}
}

var (
	retryables = retry.IsErrorRetryables(retry.DefaultRetryables)
	throttles  = retry.IsErrorThrottles(retry.DefaultThrottles)
)

// retryable says whether another attempt at the same page may succeed.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return throttles.IsErrorThrottle(err) == aws.TrueTernary || retryables.IsErrorRetryable(err) == aws.TrueTernary
}

// Events calls fn with every kms.amazonaws.com event between start and end (both included),
// newest first, and page after each page. It returns fn's error, ctx's error, or a
// *PageError when a page failed MaxAttempts times; the events before it have been delivered.
func (l *Lookup) Events(ctx context.Context, start, end time.Time, fn func(cttypes.Event) error, page func(PageInfo)) error {
	in := &awsct.LookupEventsInput{
		StartTime: aws.Time(start),
		EndTime:   aws.Time(end),
		// One attribute is allowed; errorCode is not one, so denials are filtered afterwards.
		LookupAttributes: []cttypes.LookupAttribute{{
			AttributeKey:   cttypes.LookupAttributeKeyEventSource,
			AttributeValue: aws.String("kms.amazonaws.com"),
		}},
		MaxResults: aws.Int32(pageSize),
	}
	retries := 0
	for n := 1; ; n++ {
		out, attempts, err := l.page(ctx, in)
		retries += max(attempts-1, 0)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &PageError{Page: n, Attempts: attempts, Err: err}
		}
		last := out.NextToken == nil || *out.NextToken == ""
		info := PageInfo{Page: n, Events: len(out.Events), Retries: retries, Last: last}
		for _, ev := range out.Events {
			if ev.EventTime != nil && (info.Oldest.IsZero() || ev.EventTime.Before(info.Oldest)) {
				info.Oldest = *ev.EventTime
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		if page != nil {
			page(info)
		}
		if last {
			return nil
		}
		in.NextToken = out.NextToken
	}
}

// page fetches one page, paced, retrying retryable failures with exponential backoff.
func (l *Lookup) page(ctx context.Context, in *awsct.LookupEventsInput) (*awsct.LookupEventsOutput, int, error) {
	backoff := l.Backoff
	for attempt := 1; ; attempt++ {
		if err := l.Pacer.Wait(ctx); err != nil {
			return nil, attempt - 1, err
		}
		// The SDK's own retries would bypass the pacer: this loop is the only retrier.
		out, err := l.API.LookupEvents(ctx, in, func(o *awsct.Options) { o.Retryer = aws.NopRetryer{} })
		l.Pacer.Done()
		if err == nil {
			return out, attempt, nil
		}

		if attempt >= l.MaxAttempts || !retryable(err) {
			return nil, attempt, err
		}
		l.Pacer.Delay(backoff)
		backoff = min(2*backoff, l.MaxBackoff)
	}
}
