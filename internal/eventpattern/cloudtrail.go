package eventpattern

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CloudTrailEnvelope returns the event as EventBridge delivers it. An event that is already an
// EventBridge envelope (it has "detail-type") is returned unchanged; a bare CloudTrail record is
// wrapped the way CloudTrail hands API calls to EventBridge: source "aws.<service>" from
// eventSource, detail-type "AWS API Call via CloudTrail", account = recipientAccountId,
// region = awsRegion, time = eventTime, resources [] and the record as detail.
func CloudTrailEnvelope(raw []byte) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("cloudtrail envelope: %w", err)
	}
	if _, ok := probe["detail-type"]; ok {
		return raw, nil
	}
	var rec struct {
		EventSource        string `json:"eventSource"`
		EventID            string `json:"eventID"`
		EventTime          string `json:"eventTime"`
		AWSRegion          string `json:"awsRegion"`
		RecipientAccountID string `json:"recipientAccountId"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("cloudtrail envelope: %w", err)
	}
	service, ok := strings.CutSuffix(rec.EventSource, ".amazonaws.com")
	if !ok || service == "" {
		return nil, fmt.Errorf("cloudtrail envelope: not a CloudTrail record (eventSource %q)", rec.EventSource)
	}
	env := map[string]any{
		"version":     "0",
		"id":          rec.EventID,
		"detail-type": "AWS API Call via CloudTrail",
		"source":      "aws." + service,
		"account":     rec.RecipientAccountID,
		"time":        rec.EventTime,
		"region":      rec.AWSRegion,
		"resources":   []string{},
		"detail":      json.RawMessage(raw),
	}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("cloudtrail envelope: %w", err)
	}
	return out, nil
}
