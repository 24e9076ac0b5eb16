package enrich

import (
	"context"
	"maps"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Calls counts the AWS operations (and HTTP attempts, retries included) made while handling
// one event. It travels in the context so every SDK client built with CountCalls reports to
// the event that caused the call.
type Calls struct {
	mu       sync.Mutex
	ops      map[string]int
	attempts int
}

type callsKey struct{}

// WithCalls returns a context that counts the AWS calls made with it.
func WithCalls(ctx context.Context) (context.Context, *Calls) {
	c := &Calls{ops: map[string]int{}}
	return context.WithValue(ctx, callsKey{}, c), c
}

func callsFrom(ctx context.Context) *Calls {
	c, _ := ctx.Value(callsKey{}).(*Calls)
	return c
}

// Total is the number of operations called.
func (c *Calls) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.ops {
		n += v
	}
	return n
}

// Attempts is the number of HTTP attempts, retries included.
func (c *Calls) Attempts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

// ByOperation maps "Service.Operation" to how many times it was called.
func (c *Calls) ByOperation() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.ops)
}

// APIOptions is CountCalls in the shape config.WithAPIOptions takes.
var APIOptions = []func(*middleware.Stack) error{CountCalls}

// CountCalls is an SDK APIOptions function (aws.Config.APIOptions) that counts each operation
// and each attempt into the Calls of the request's context.
func CountCalls(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kmsfixCountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if c := callsFrom(ctx); c != nil {
				op := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
				c.mu.Lock()
				c.ops[op]++
				c.mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	if err != nil {
		return err
	}
	// Finalize runs once per attempt when added after the retry middleware.
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("kmsfixCountAttempts",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if c := callsFrom(ctx); c != nil {
				c.mu.Lock()
				c.attempts++
				c.mu.Unlock()
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}
