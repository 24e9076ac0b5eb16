package notify

import "github.com/kmsfix/kmsfix/internal/emf"

// MetricNamespace and MetricWebhookRejected name the metric a refused webhook adds (the
// remediator's namespace); the stack's alarm reads the same names.
const (
	MetricNamespace       = emf.Namespace
	MetricWebhookRejected = "SlackWebhookRejected"
)

// webhookRejected writes one Embedded Metric Format line counting a webhook Slack refused
// for good: no retry heals it, so only an alarm tells anyone that findings no longer reach
// Slack. https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
func (nt *Notifier) webhookRejected(status int) {
	if nt.cfg.Metrics == nil {
		return
	}
	nt.metricsMu.Lock()
	defer nt.metricsMu.Unlock()
	if err := emf.Count(nt.cfg.Metrics, nt.now(), MetricWebhookRejected, 1, map[string]any{"SlackStatus": status}); err != nil {
		nt.log.Warn("notify: metrics line", "error", err.Error())
	}
}
