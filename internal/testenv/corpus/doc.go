// Package corpus generates CloudTrail data for tests and benchmarks: KMSDay, a deterministic
// day of mixed KMS records (successes, S3 denials in known groups, other denials, non-KMS
// events), and WriteLogFiles, which stores records the way a trail delivers them to S3.
package corpus
