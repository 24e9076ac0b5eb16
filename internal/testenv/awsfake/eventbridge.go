package awsfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// EventBridge answers PutEvents (JSON 1.1, X-Amz-Target AWSEvents.PutEvents) for one
// sending account. Each accepted entry is queued, as EventBridge would deliver it, on its
// bus: an envelope whose `account` is the sender's account (set here, never taken from the
// entry) and whose detail is the entry's Detail. A test takes the queue and hands it to the
// key owner's handler. Buses must be added; an entry for an unknown bus fails.
type EventBridge struct {
	URL     string
	Account string // the sending account (whose credentials call the fake)
	faults  testenv.Faults

	mu          sync.Mutex
	buses       map[string][][]byte // by bus ARN: envelopes not yet taken
	failEntries int                 // the next n entries fail (FailedEntryCount)
	entries     []EventBridgeEntry
}

// EventBridgeEntry is one PutEvents entry as received.
type EventBridgeEntry struct {
	EventBusName, Source, DetailType, Detail string
	Resources                                []string
}

// NewEventBridge starts the fake for calls made by account; it stops at cleanup.
func NewEventBridge(t testenv.Harness, account string) *EventBridge {
	t.Helper()
	f := &EventBridge{Account: account, buses: map[string][][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// AddBus makes a bus ARN exist (and admit this sender).
func (f *EventBridge) AddBus(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buses[arn]; !ok {
		f.buses[arn] = nil
	}
}

// Take returns the envelopes queued on a bus and empties its queue.
func (f *EventBridge) Take(arn string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.buses[arn]
	if _, ok := f.buses[arn]; ok {
		f.buses[arn] = nil
	}
	return out
}

// Entries returns every entry received, accepted or not.
func (f *EventBridge) Entries() []EventBridgeEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]EventBridgeEntry(nil), f.entries...)
}

// FailEntries makes the next n entries fail inside a successful response (FailedEntryCount).
func (f *EventBridge) FailEntries(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failEntries = n
}

// Fail makes an operation ("PutEvents") fail or stall.
func (f *EventBridge) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }

// Calls is how many times an operation was called.
func (f *EventBridge) Calls(op string) int { return f.faults.Count(op) }

func (f *EventBridge) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSEvents.")
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		ebError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	if op != "PutEvents" {
		ebError(w, 400, "UnknownOperationException", "the EventBridge fake does not implement "+op)
		return
	}
	var in struct {
		Entries []struct {
			EventBusName, Source, DetailType, Detail string
			Resources                                []string
			Time                                     *float64
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		ebError(w, 400, "ValidationException", err.Error())
		return
	}
	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	var out struct {
		FailedEntryCount int
		Entries          []result
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range in.Entries {
		f.entries = append(f.entries, EventBridgeEntry{e.EventBusName, e.Source, e.DetailType, e.Detail, e.Resources})
		queue, known := f.buses[e.EventBusName]
		var res result
		switch {
		case f.failEntries > 0:
			f.failEntries--
			res = result{ErrorCode: "InternalFailure", ErrorMessage: "injected by the test"}
		case !known:
			res = result{ErrorCode: "NotAuthorizedForDestination", ErrorMessage: "no bus " + e.EventBusName + " admits account " + f.Account}
		case !json.Valid([]byte(e.Detail)) || !strings.HasPrefix(strings.TrimSpace(e.Detail), "{"):
			res = result{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed."}
		}
		if res.ErrorCode != "" {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, res)
			continue
		}
		when := time.Now().UTC()
		if e.Time != nil {
			sec, frac := math.Modf(*e.Time)
			when = time.Unix(int64(sec), int64(frac*1e9)).UTC()
		}
		id := ebID()
		env, _ := json.Marshal(map[string]any{
			"version": "0", "id": id, "detail-type": e.DetailType, "source": e.Source,
			"account": f.Account, "time": when.Format(time.RFC3339), "region": ebRegion(e.EventBusName),
			"resources": append([]string{}, e.Resources...), "detail": json.RawMessage(e.Detail),
		})
		f.buses[e.EventBusName] = append(queue, env)
		out.Entries = append(out.Entries, result{EventID: id})
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func ebRegion(busARN string) string {
	if p := strings.SplitN(busARN, ":", 5); len(p) == 5 {
		return p[3]
	}
	return ""
}

func ebID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}

func ebError(w http.ResponseWriter, status int, code, msg string) {
	if status == 0 {
		status = 400
	}
	testenv.JSONError(w, status, code, msg)
}
