//go:build faultinject

package main

import (
	"context"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// The RIE tests build the bootstrap with -tags faultinject: an event whose eventID starts
// with "faultinject-panic" then panics inside the pipeline, to prove a panic does not take
// the container (and its later invocations) down. The shipped binary has no such path.
func init() {
	decorate = func(h *remediator.Handler) { h.Enricher = panicking{h.Enricher} }
}

type panicking struct{ pipeline.Enricher }

func (p panicking) World(ctx context.Context, d *cloudtrail.Denial) *world.World {
	if strings.HasPrefix(d.EventID, "faultinject-panic") {
		panic("fault injected by the test build")
	}
	return p.Enricher.World(ctx, d)
}
