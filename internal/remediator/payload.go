package remediator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
)

// MaxPayload is the largest invocation payload read. EventBridge entries are under 256 KB
// (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html); anything
// far larger did not come from the rule.
const MaxPayload = 1 << 20

// dropMalformed answers a payload that is not a JSON object (empty, not JSON, nested deeper
// than encoding/json reads, larger than MaxPayload): one log line and a response, not an
// error, so Lambda does not retry what would fail the same way.
func (h *Handler) dropMalformed(ctx context.Context, payload []byte, why string) finding.Report {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	start := now()
	_, calls := enrich.WithCalls(ctx)
	rep := finding.Report{Ignored: "malformed payload: " + why}
	h.record(ctx, rep, nil, outcomeMalformed, why, nil, calls, now().Sub(start), "payload_bytes", len(payload))
	return rep
}

// malformedPayload says why a payload is not an event, or "".
func malformedPayload(b []byte) string {
	if len(b) > MaxPayload {
		return fmt.Sprintf("%d bytes, more than the %d-byte limit", len(b), MaxPayload)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return "empty"
	}
	var raw json.RawMessage // validates the whole payload, nesting depth included
	if err := json.Unmarshal(t, &raw); err != nil {
		return "not JSON: " + err.Error()
	}
	if t[0] != '{' {
		return "not a JSON object"
	}
	return ""
}
