package testenv

import (
	"context"
	"sync"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// Reports is a notifier that keeps the reports it was given, in order, so a test can check
// them (or the messages rendered from them).
type Reports struct {
	mu  sync.Mutex
	got []finding.Report
}

func (r *Reports) Notify(_ context.Context, rep finding.Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rep)
	return nil
}

// All returns a copy of the reports given so far.
func (r *Reports) All() []finding.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]finding.Report(nil), r.got...)
}
