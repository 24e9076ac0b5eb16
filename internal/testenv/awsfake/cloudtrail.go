package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/corpus"
)

// CloudTrail serves CloudTrail LookupEvents (JSON 1.1, X-Amz-Target
// CloudTrail_20131101.LookupEvents) over a corpus, the way the real API does: newest first,
// at most 50 per page, an opaque NextToken bound to the query, one lookup attribute, and
// ThrottlingException above RateLimit requests per rolling second. It can also inject
// throttles and server errors.
type CloudTrail struct {
	URL string

	// Now stamps each request for the rate accounting; tests on virtual time set it to their
	// clock. Default time.Now.
	Now func() time.Time
	// RateLimit is the requests per rolling second allowed before throttling [2].
	RateLimit int
	// ThrottleCalls are 1-based request numbers answered with ThrottlingException.
	ThrottleCalls map[int]bool
	// FailPages maps a 1-based page number to how many times it answers HTTP 500 before it
	// succeeds (a large number: always).
	FailPages map[int]int

	mu         sync.Mutex
	records    []corpus.Record // newest first
	arrivals   []time.Time
	violations int
	injected   int
	served     []int // events per successful page
	failed     map[int]int
}

// NewCloudTrail starts a fake serving the KMS records of c (or any records given); it is
// closed when the test ends.
func NewCloudTrail(t testing.TB, records []corpus.Record) *CloudTrail {
	t.Helper()
	f := &CloudTrail{Now: time.Now, RateLimit: 2, failed: map[int]int{}}
	f.records = slices.Clone(records)
	slices.SortStableFunc(f.records, func(a, b corpus.Record) int { return b.Time.Compare(a.Time) })
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Stats of what the fake saw.
type CloudTrailStats struct {
	Requests   int
	Violations int // requests that arrived above RateLimit per rolling second
	Injected   int // injected throttles and failures
	Pages      []int
	// MinGap is the smallest time between two successive requests.
	MinGap time.Duration
	// MaxPerSecond is the most requests seen in any rolling second.
	MaxPerSecond int
}

// Stats returns what the fake has seen so far.
func (f *CloudTrail) Stats() CloudTrailStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := CloudTrailStats{Requests: len(f.arrivals), Violations: f.violations, Injected: f.injected, Pages: slices.Clone(f.served)}
	s.MinGap = time.Duration(math.MaxInt64)
	for i := 1; i < len(f.arrivals); i++ {
		s.MinGap = min(s.MinGap, f.arrivals[i].Sub(f.arrivals[i-1]))
	}
	for i := range f.arrivals {
		s.MaxPerSecond = max(s.MaxPerSecond, f.inWindow(i))
	}
	return s
}

// inWindow counts the requests in the rolling second that ends with request i.
func (f *CloudTrail) inWindow(i int) int {
	n := 0
	for j := i; j >= 0 && f.arrivals[i].Sub(f.arrivals[j]) < time.Second; j-- {
		n++
	}
	return n
}

type lookupInput struct {
	StartTime        *float64
	EndTime          *float64
	MaxResults       *int
	NextToken        *string
	LookupAttributes []struct{ AttributeKey, AttributeValue string }
}

func (f *CloudTrail) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if !strings.HasSuffix(target, "CloudTrail_20131101.LookupEvents") {
		testenv.JSONError(w, http.StatusBadRequest, "UnknownOperationException", "fake serves LookupEvents only, not "+target)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in lookupInput
	if err := json.Unmarshal(body, &in); err != nil {
		testenv.JSONError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}

	f.mu.Lock()
	f.arrivals = append(f.arrivals, f.Now())
	call := len(f.arrivals)
	over := f.inWindow(call-1) > f.RateLimit
	if over {
		f.violations++
	}
	inject := f.ThrottleCalls[call]
	if inject {
		f.injected++
	}
	f.mu.Unlock()
	if over || inject {
		testenv.JSONError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}

	if len(in.LookupAttributes) > 1 {
		testenv.JSONError(w, http.StatusBadRequest, "InvalidLookupAttributesException", "only one lookup attribute is allowed")
		return
	}
	query := fmt.Sprintf("%v|%v|%v", fval(in.StartTime), fval(in.EndTime), in.LookupAttributes)
	offset, page := 0, 1
	if in.NextToken != nil {
		parts := strings.SplitN(*in.NextToken, "|", 3)
		o, err1 := strconv.Atoi(parts[0])
		p, err2 := strconv.Atoi(parts[len(parts)-1])
		if len(parts) != 3 || err1 != nil || err2 != nil || parts[1] != fmt.Sprintf("%x", hash(query)) {
			testenv.JSONError(w, http.StatusBadRequest, "InvalidNextTokenException", "invalid NextToken")
			return
		}
		offset, page = o, p
	}

	f.mu.Lock()
	if f.failed[page] < f.FailPages[page] {
		f.failed[page]++
		f.injected++
		f.mu.Unlock()
		testenv.JSONError(w, http.StatusInternalServerError, "InternalFailure", "injected server error")
		return
	}
	f.mu.Unlock()

	limit := 50
	if in.MaxResults != nil && *in.MaxResults > 0 && *in.MaxResults < 50 {
		limit = *in.MaxResults
	}
	var match []corpus.Record
	for _, rec := range f.records {
		if in.StartTime != nil && rec.Time.Before(unix(*in.StartTime)) || in.EndTime != nil && rec.Time.After(unix(*in.EndTime)) {
			continue
		}
		if len(in.LookupAttributes) == 1 && !attrMatch(rec, in.LookupAttributes[0].AttributeKey, in.LookupAttributes[0].AttributeValue) {
			continue
		}
		match = append(match, rec)
	}
	end := min(offset+limit, len(match))
	events := make([]map[string]any, 0, end-offset)
	for _, rec := range match[offset:end] {
		events = append(events, map[string]any{
			"EventId": rec.ID, "EventName": rec.Name, "EventSource": rec.Source,
			"EventTime": float64(rec.Time.Unix()), "ReadOnly": "true", "Username": "session",
			"CloudTrailEvent": string(rec.JSON),
		})
	}
	out := map[string]any{"Events": events}
	if end < len(match) {
		out["NextToken"] = fmt.Sprintf("%d|%x|%d", end, hash(query), page+1)
	}
	f.mu.Lock()
	f.served = append(f.served, len(events))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func attrMatch(rec corpus.Record, key, value string) bool {
	switch key {
	case "EventSource":
		return rec.Source == value
	case "EventName":
		return rec.Name == value
	case "EventId":
		return rec.ID == value
	case "ResourceName":
		// CloudTrail matches the record's resources[] (for KMS, the key ARN).
		var r struct{ Resources []struct{ ARN string } }
		if json.Unmarshal(rec.JSON, &r) != nil {
			return false
		}
		for _, res := range r.Resources {
			if res.ARN == value {
				return true
			}
		}
	}
	return false
}

func fval(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func unix(sec float64) time.Time {
	s, frac := math.Modf(sec)
	return time.Unix(int64(s), int64(frac*1e9))
}

func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
