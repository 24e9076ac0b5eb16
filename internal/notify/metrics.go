package notify

import (
	"encoding/json"
)

// MetricNamespace and MetricWebhookRejected name the metric a refused webhook adds (the
// remediator's namespace); the stack's alarm reads the same names.
const (
	MetricNamespace       = "kmsfix"
	MetricWebhookRejected = "SlackWebhookRejected"
)

// webhookRejected writes one Embedded Metric Format line counting a webhook Slack refused
// for good: no retry heals it, so only an alarm tells anyone that findings no longer reach
// Slack. https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
func (nt *Notifier) webhookRejected(status int) {
	if nt.cfg.Metrics == nil {
		return
	}
	line, err := json.Marshal(map[string]any{
		"Service":             "remediator",
		MetricWebhookRejected: 1,
		"SlackStatus":         status,
		"_aws": map[string]any{
			"Timestamp": nt.now().UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  MetricNamespace,
				"Dimensions": [][]string{{"Service"}},
				"Metrics":    []map[string]string{{"Name": MetricWebhookRejected, "Unit": "Count"}},
			}},
		},
	})
	if err != nil {
		return // cannot happen: strings and numbers
	}
	nt.metricsMu.Lock()
	defer nt.metricsMu.Unlock()
	if _, err := nt.cfg.Metrics.Write(append(line, '\n')); err != nil {
		nt.log.Warn("notify: metrics line", "error", err.Error())
	}
}
