package eventpattern

// KMSDenial is the event pattern of the stack's denial rule, defined once for the stack
// (infra), which gives it to the rule, and `kmsfix doctor`, which prints it in the fix for a
// missing or wrong rule and checks a deployed rule's pattern with Compile.

import (
	"encoding/json"
	"fmt"
)

// KMSDenial, as put-rule takes it: KMS data-key calls made by S3 (the
// aws:s3:arn encryption context, or aws:s3express:arn for a directory bucket, is present) that
// KMS refused, made by a principal rather than by an AWS service acting as itself (e.g.
// CloudTrail writing its own SSE-KMS log files). A record without a userIdentity type (null or
// missing userIdentity) is let through: the function reports its caller as unknown, and an
// event the rule drops is lost. The rule is the coarse filter; the function decides whether
// S3 made the call (docs/cloudtrail.md), so records another service made with an S3 context
// reach it and are ignored there.
// A field's alternatives and $or follow https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html.
// Replication encrypts the replica with kms:Encrypt (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html; events/08).
const KMSDenial = `{"source":["aws.kms"],"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventSource":["kms.amazonaws.com"],` +
	`"eventName":["Decrypt","GenerateDataKey","GenerateDataKeyWithoutPlaintext","Encrypt"],` +
	`"errorCode":["AccessDenied","AccessDeniedException","DisabledException","KMSInvalidStateException","NotFoundException"],` +
	`"userIdentity":{"$or":[{"type":[{"anything-but":["AWSService"]}]},{"type":[{"exists":false}]}]},` +
	`"requestParameters":{"encryptionContext":{"$or":[{"aws:s3:arn":[{"exists":true}]},{"aws:s3express:arn":[{"exists":true}]}]}}}}`

// Fields is a pattern's top-level fields, for code that builds the pattern as values (the CDK).
type Fields struct {
	Source     []string       `json:"source"`
	DetailType []string       `json:"detail-type"`
	Detail     map[string]any `json:"detail"`
}

// KMSDenialFields returns KMSDenial decoded, a fresh copy on each call.
func KMSDenialFields() Fields {
	var f Fields
	if err := json.Unmarshal([]byte(KMSDenial), &f); err != nil {
		panic(fmt.Sprintf("eventpattern: KMSDenial is not JSON: %v", err)) // a constant: the test catches it
	}
	return f
}
