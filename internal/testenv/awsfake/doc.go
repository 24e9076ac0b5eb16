// Package awsfake holds httptest wire-level fakes of the services no real emulator covers,
// each behind the real SDK client (point AWS_ENDPOINT_URL_<SERVICE> or the client's
// BaseEndpoint at its URL): IAM (the one IAM fake: what enrichment reads and what apply
// writes), STS, CloudTrail LookupEvents, IAM Access Analyzer, EventBridge, Secrets Manager,
// S3, the services `kmsfix doctor` reads (Doctor), CloudFormation StackSets, KMS grants,
// Organizations (ListParents, ListTagsForResource: the hub's routes) and the Slack webhook.
//
// A fake speaks its service's protocol (query XML, JSON 1.1, REST) closely enough for the SDK
// to parse it, keeps its state per instance (a test starts its own), counts calls and takes
// injected faults through testenv.Faults. Add a new fake here, one file per service, named
// after the service (NewX returns *X).
package awsfake
