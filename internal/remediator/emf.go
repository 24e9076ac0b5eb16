package remediator

import (
	"encoding/json"
	"io"
	"time"

	"github.com/kmsfix/kmsfix/internal/emf"
)

// Namespace is the CloudWatch namespace of the remediator's metrics.
const Namespace = emf.Namespace

// metrics is what one event adds to CloudWatch, written as one Embedded Metric Format line
// (CloudWatch Logs turns it into metrics; no API call is made).
type metrics struct {
	diagnosis string // set for a finding
	ignored   bool
	errored   bool
	calls     int
	attempts  int
	duration  time.Duration
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

// write emits the EMF line. Findings are counted per diagnosis; the rest per function.
func (m metrics) write(w io.Writer, now time.Time) error {
	doc := map[string]any{
		"Service":       "remediator",
		"IgnoredEvents": b2i(m.ignored),
		"Errors":        b2i(m.errored),
		"AWSCalls":      m.calls,
		"AWSAttempts":   m.attempts,
		"Duration":      float64(m.duration.Microseconds()) / 1000,
	}
	directives := []emfDirective{{
		Namespace:  Namespace,
		Dimensions: [][]string{{"Service"}},
		Metrics: []emfMetric{{"IgnoredEvents", "Count"}, {"Errors", "Count"}, {"AWSCalls", "Count"},
			{"AWSAttempts", "Count"}, {"Duration", "Milliseconds"}},
	}}
	if m.diagnosis != "" {
		doc["Diagnosis"] = m.diagnosis
		doc["Findings"] = 1
		directives = append(directives, emfDirective{
			Namespace:  Namespace,
			Dimensions: [][]string{{"Service", "Diagnosis"}},
			Metrics:    []emfMetric{{"Findings", "Count"}},
		})
	}
	doc["_aws"] = map[string]any{"Timestamp": now.UnixMilli(), "CloudWatchMetrics": directives}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
