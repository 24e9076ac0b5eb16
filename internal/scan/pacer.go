package scan

import (
	"context"
	"sync"
	"time"

	"github.com/kmsfix/kmsfix/internal/retry"
)

// Clock is the time source of the pacer and the backoff, so tests run on virtual time.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends; it returns ctx.Err() when ctx ended first.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error { return retry.Sleep(ctx, d) }

// Pacer is a token bucket holding one token, refilled Interval after the previous call
// FINISHED. Counting from the end of a call rather than its start means the server sees
// successive requests at least Interval apart whatever the network latency does, so a
// server counting requests per rolling second never sees more than ceil(1s/Interval).
type Pacer struct {
	Clock    Clock
	Interval time.Duration

	mu   sync.Mutex
	next time.Time // when the token is back; zero: available now
}

// NewPacer paces to at most perSecond calls per second.
func NewPacer(c Clock, perSecond float64) *Pacer {
	return &Pacer{Clock: c, Interval: time.Duration(float64(time.Second) / perSecond)}
}

// Wait blocks until the token is available, then takes it.
func (p *Pacer) Wait(ctx context.Context) error {
	p.mu.Lock()
	next := p.next
	p.mu.Unlock()
	if d := next.Sub(p.Clock.Now()); d > 0 {
		if err := p.Clock.Sleep(ctx, d); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Done returns the token Interval from now: call it when the request has finished.
func (p *Pacer) Done() {
	p.mu.Lock()
	p.next = p.Clock.Now().Add(p.Interval)
	p.mu.Unlock()
}

// Delay pushes the next token at least d from now (backoff after a throttle).
func (p *Pacer) Delay(d time.Duration) {
	p.mu.Lock()
	if t := p.Clock.Now().Add(d); t.After(p.next) {
		p.next = t
	}
	p.mu.Unlock()
}
