// Package retry holds the one "do not retry" vocabulary: an error marked Permanent will fail
// the same way if the same work is tried again (a refused request, a webhook Slack revoked, a
// read IAM denies), so the caller drops it (logged with its reason) or caches it instead of
// returning it for a Lambda retry. An error not marked may heal on a retry; Sleep is the
// one wait before another attempt.
package retry

import (
	"context"
	"errors"
	"time"
)

// permanent marks err as one a retry will not heal. It wraps err, so errors.As still
// finds the error's own type and its text is unchanged.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as one a retry will not heal; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err: err}
}

// IsPermanent says whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// Reason is the text of the error that was marked Permanent (without what wrapped it since),
// for the log line that says why an event was dropped; "" when err is not permanent.
func Reason(err error) string {
	var p *permanent
	if !errors.As(err, &p) {
		return ""
	}
	return p.err.Error()
}

// Sleep waits d, or until ctx ends (then it returns ctx's error): the one wait between
// attempts and paced calls.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
