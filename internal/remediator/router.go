package remediator

import (
	"context"
	"encoding/json"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
)

// Route is what an incoming payload is. The handler decides it once, in route, and hands the
// payload to that route's path:
//
//	RouteMalformed         not a JSON object            dropMalformed (one log line, no retry)
//	RouteSweep             the 15-minute schedule       Sweeper.SweepDue (revert expired changes)
//	RouteKeyPolicyRequest  another account's request    handleRequest (crossaccount.Receiver)
//	RouteCloudTrail        anything else: a CloudTrail  handleRecord (cloudtrail.Parse, then the
//	                       record from the denial rule  live pipeline; not a denial: ignored)
type Route int

const (
	RouteMalformed Route = iota
	RouteSweep
	RouteKeyPolicyRequest
	RouteCloudTrail
)

var routeNames = [...]string{"malformed", "sweep", "key-policy-request", "cloudtrail"}

func (r Route) String() string { return routeNames[r] }

// Sweeper reverts the automatic changes whose expiry has passed (apply.Applier).
type Sweeper interface {
	SweepDue(ctx context.Context) (apply.SweepResult, error)
}

var _ Sweeper = (*apply.Applier)(nil)

// route decides what a payload is; why says what is wrong with a malformed one.
func route(payload []byte) (r Route, why string) {
	if why := malformedPayload(payload); why != "" {
		return RouteMalformed, why
	}
	switch {
	case apply.IsSweep(payload):
		return RouteSweep, ""
	case crossaccount.IsRequest(payload):
		return RouteKeyPolicyRequest, ""
	}
	return RouteCloudTrail, ""
}

// Invoke is the Lambda entry point (aws-lambda-go's lambda.Handler: lambda.Start(h)). It
// routes the payload once and returns the path's result as JSON; an error means a retry may
// succeed.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var (
		res any
		err error
	)
	switch r, why := route(payload); r {
	case RouteMalformed:
		res = h.dropMalformed(ctx, payload, why)
	case RouteSweep:
		res, err = h.sweep(ctx, payload)
	default:
		res, err = h.handle(ctx, r, payload)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// sweep runs the sweeper; without one (notify mode) the tick is ignored with the usual
// event log line.
func (h *Handler) sweep(ctx context.Context, payload []byte) (any, error) {
	if h.Sweeper == nil {
		why := "a sweeper tick, but nothing is applied automatically (KMSFIX_MODE is not apply)"
		rep := finding.Report{EventID: envelopeID(payload), Ignored: why}
		_, calls := enrich.WithCalls(ctx)
		h.record(ctx, rep, nil, outcomeIgnored, why, nil, calls, 0)
		return rep, nil
	}
	return h.Sweeper.SweepDue(ctx)
}
