package emf

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestCountLine(t *testing.T) {
	var buf bytes.Buffer
	now := time.UnixMilli(1_700_000_000_123)
	if err := Count(&buf, now, "SlackWebhookRejected", 1, map[string]any{"SlackStatus": 403}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var line struct {
		Service string
		Count   int     `json:"SlackWebhookRejected"`
		Status  float64 `json:"SlackStatus"`
		AWS     struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	cw := line.AWS.CloudWatchMetrics
	if line.Service != Service || line.Count != 1 || line.Status != 403 || line.AWS.Timestamp != now.UnixMilli() ||
		len(cw) != 1 || cw[0].Namespace != Namespace || len(cw[0].Dimensions) != 1 || cw[0].Dimensions[0][0] != "Service" ||
		len(cw[0].Metrics) != 1 || cw[0].Metrics[0].Name != "SlackWebhookRejected" || cw[0].Metrics[0].Unit != "Count" {
		t.Fatalf("line = %s", buf.String())
	}
}
