package cloudtrail

import (
	"fmt"
	"regexp"
	"strings"
)

// Who made a KMS call with an S3 encryption context.
//
// S3 calls KMS for the principal with a forward access session: KMS logs the principal's
// identity, and AWS marks the call as made by a service. The IAM forward access sessions page
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_forward_access_sessions.html) names
// S3 calling KMS as the example. The CloudTrail userIdentity element page
// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)
// says invokedBy is "the name of the AWS service that made the request", and the record
// contents page (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
// says sourceIPAddress shows "only the DNS name" for services and "usually AWS Internal/#"
// for events AWS originated. S3's own calls carry "AWS Internal" in invokedBy,
// sourceIPAddress and userAgent in current records, "internal.amazonaws.com" in the older
// KMS documentation example (deleting-keys-determining-usage.html). Other services write
// their endpoint there: AWS Mainframe Modernization writes "m2.us-west-2.amazonaws.com" on
// KMS calls whose context holds aws:s3:arn and aws:m2:app
// (https://docs.aws.amazon.com/m2/latest/userguide/encryption-at-rest.html), Lambda
// "lambda.amazonaws.com". "s3.amazonaws.com" has not been seen on S3's calls (unverified) but
// names S3 all the same.
//
// So a record is S3's when it has the S3 context and a mark of S3 or of AWS internal; a
// record whose marks name another service was made by that service; a record with the S3
// context and no such mark looks like a direct call (an SDK user agent, a client IP) and may
// carry a copied context: it is reported, never verified, never applied.

// serviceEndpoint matches a service's DNS name in these fields ("m2.us-west-2.amazonaws.com").
var serviceEndpoint = regexp.MustCompile(`^([a-z0-9][a-z0-9-]*)(\.[a-z0-9-]+)*\.amazonaws\.com(\.cn)?$`)

// serviceNames names the services whose endpoints are known to appear on KMS records with an
// S3 context; any other is named by its endpoint.
var serviceNames = map[string]string{
	"m2":             "AWS Mainframe Modernization",
	"lambda":         "AWS Lambda",
	"secretsmanager": "AWS Secrets Manager",
	"config":         "AWS Config",
	"ecs-tasks":      "Amazon ECS",
	"ebs":            "Amazon EBS",
	"cloudtrail":     "AWS CloudTrail",
	"autoscaling":    "Amazon EC2 Auto Scaling",
}

// mark is what one of invokedBy, sourceIPAddress, userAgent says about who called.
type mark int

const (
	markNone  mark = iota // empty, a client IP, an SDK user agent
	markS3                // AWS Internal, internal.amazonaws.com, s3.*.amazonaws.com
	markOther             // another service's endpoint
)

func classifyMark(v string) (mark, string) {
	switch {
	case v == "AWS Internal", strings.HasPrefix(v, "AWS Internal/"), v == "internal.amazonaws.com":
		return markS3, ""
	}
	m := serviceEndpoint.FindStringSubmatch(v)
	if m == nil {
		return markNone, ""
	}
	switch m[1] {
	case "s3", "s3express", "internal":
		return markS3, ""
	}
	return markOther, m[1]
}

// origin decides who made a record that carries an S3 encryption context. other names the
// service that made it when that is not S3; doubt says why it may not be S3's call.
func origin(rec *record) (other, doubt string) {
	var invokedBy string
	if rec.UserIdentity != nil {
		invokedBy = rec.UserIdentity.InvokedBy
	}
	fields := []struct{ name, value string }{
		{"invokedBy", invokedBy}, {"sourceIPAddress", rec.SourceIPAddress}, {"userAgent", rec.UserAgent},
	}
	for _, f := range fields {
		if k, svc := classifyMark(f.value); k == markOther {
			name := serviceNames[svc]
			if name == "" {
				name = "the AWS service " + f.value
			}
			return fmt.Sprintf("%s (%s %s)", name, f.name, f.value), ""
		}
	}
	if k, _ := classifyMark(invokedBy); k == markS3 {
		return "", ""
	}
	if k, _ := classifyMark(rec.SourceIPAddress); k == markS3 {
		return "", ""
	}
	return "", fmt.Sprintf("the record carries an S3 encryption context but not the marks of a call S3 made for the principal (invokedBy %q, sourceIPAddress %q): it may be a direct call to KMS with a copied context", clip(invokedBy), clip(rec.SourceIPAddress))
}

// clip bounds an untrusted field quoted in a finding.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
