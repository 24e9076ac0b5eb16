package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// AWSFault makes a fake AWS service misbehave for one operation.
type AWSFault struct {
	Code   string        // error code, e.g. "AccessDenied", "Throttling"; empty: no error
	Status int           // HTTP status (default 400)
	Times  int           // how many calls fail; 0: every call
	Delay  time.Duration // wait this long (or until the client gives up) before answering
}

// Faults counts calls per operation and applies the faults set for them; every fake and the
// emulators' FaultProxy embed one. The zero value is ready.
type Faults struct {
	mu     sync.Mutex
	faults map[string]*AWSFault
	calls  map[string]int
}

// Set makes op fail (or stall) as fault says.
func (f *Faults) Set(op string, fault AWSFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[string]*AWSFault{}
	}
	f.faults[op] = &fault
}

// Count is how many times op was called.
func (f *Faults) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Total is how many calls were made, all operations together.
func (f *Faults) Total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// Hit records a call and returns the fault to apply (nil: answer normally) after any delay.
func (f *Faults) Hit(ctx context.Context, op string) *AWSFault {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	fault := f.faults[op]
	var apply *AWSFault
	if fault != nil {
		apply = &AWSFault{Code: fault.Code, Status: fault.Status, Delay: fault.Delay}
		if fault.Times > 0 {
			fault.Times--
			if fault.Times == 0 {
				delete(f.faults, op)
			}
		}
	}
	f.mu.Unlock()
	if apply == nil {
		return nil
	}
	if apply.Delay > 0 {
		select {
		case <-time.After(apply.Delay):
		case <-ctx.Done():
		}
	}
	if apply.Code == "" {
		return nil
	}
	if apply.Status == 0 {
		apply.Status = 400
		if apply.Code == "AccessDenied" || apply.Code == "AccessDeniedException" {
			apply.Status = 403
		}
	}
	return apply
}

// Clear removes every fault (the call counts stay).
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// JSONError writes an AWS JSON-protocol (1.1) error, as the fakes and the KMS shim answer.
func JSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
