// Package emf writes CloudWatch Embedded Metric Format lines: CloudWatch Logs turns each line
// the function prints into metrics, so counting costs no API call
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
package emf

import (
	"encoding/json"
	"io"
	"time"
)

// Namespace is the CloudWatch namespace of kmsfix's metrics, and Service the value of their
// one dimension, Service; the stack's alarms read the same names.
const (
	Namespace = "kmsfix"
	Service   = "remediator"
)

// Count writes one line adding value to the metric name (unit Count, dimension Service), with
// props as further properties of the line (searchable in the logs, not dimensions).
func Count(w io.Writer, now time.Time, name string, value int, props map[string]any) error {
	doc := make(map[string]any, len(props)+3)
	for k, v := range props {
		doc[k] = v
	}
	doc["Service"] = Service
	doc[name] = value
	doc["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"Service"}},
			"Metrics":    []map[string]string{{"Name": name, "Unit": "Count"}},
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
