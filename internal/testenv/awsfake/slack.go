package awsfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// SlackReceiver is an incoming-webhook endpoint: it accepts JSON posts on one secret path,
// records them, and can answer with failures the way Slack does (429 with Retry-After, 5xx).
type SlackReceiver struct {
	// WebhookURL is the secret URL (path /services/T…/B…/<random>); other paths get 404.
	WebhookURL string

	mu       sync.Mutex
	payloads [][]byte
	script   []SlackFault
	down     *SlackFault
	attempts int
	hang     chan struct{} // non-nil: posts get no answer until the client gives up or Answer
}

// SlackFault is one failed answer.
type SlackFault struct {
	Status     int    // e.g. 429, 500, 503, 404
	RetryAfter string // Retry-After header value (seconds), for 429
	Body       string // e.g. "rate_limited", "no_service"
}

// NewSlackReceiver starts the receiver; it stops at cleanup.
func NewSlackReceiver(t testenv.Harness) *SlackReceiver {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	path := "/services/T0KMSFIX0/B0NOTIFY0/" + hex.EncodeToString(b)
	s := &SlackReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.Method != http.MethodPost {
			http.Error(w, "no_service", http.StatusNotFound)
			return
		}
		s.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(s.Up) // runs first: a hanging post ends, so Close does not wait for it
	s.WebhookURL = srv.URL + path
	return s
}

func (s *SlackReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	s.mu.Lock()
	s.attempts++
	if hang := s.hang; hang != nil {
		s.mu.Unlock()
		// A Slack that never answers: the request ends only when the client gives up.
		select {
		case <-r.Context().Done():
		case <-hang:
		}
		return
	}
	defer s.mu.Unlock()
	var f *SlackFault
	switch {
	case len(s.script) > 0:
		f, s.script = &s.script[0], s.script[1:]
	case s.down != nil:
		f = s.down
	}
	if f != nil {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, f.Body, f.Status)
		return
	}
	if err != nil || !json.Valid(body) {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.payloads = append(s.payloads, body)
	_, _ = io.WriteString(w, "ok")
}

// FailNext answers the next posts with these faults, in order.
func (s *SlackReceiver) FailNext(faults ...SlackFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, faults...)
}

// Down makes every post fail with f until Up.
func (s *SlackReceiver) Down(f SlackFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = &f
}

// Hang makes every post wait for an answer that never comes (until the client gives up, or
// the receiver closes at cleanup).
func (s *SlackReceiver) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang == nil {
		s.hang = make(chan struct{})
	}
}

// Up ends Down and Hang.
func (s *SlackReceiver) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = nil
	if s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
}

// Payloads returns the accepted message bodies.
func (s *SlackReceiver) Payloads() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.payloads...)
}

// Count is the number of accepted messages.
func (s *SlackReceiver) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.payloads)
}

// Attempts counts every post, failed or not.
func (s *SlackReceiver) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}
