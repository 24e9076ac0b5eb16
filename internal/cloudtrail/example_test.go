package cloudtrail_test

import (
	"fmt"
	"os"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
)

func ExampleParseMessage() {
	m := cloudtrail.ParseMessage("User: arn:aws:sts::111122223333:assumed-role/etl-reader/etl-run-42 is not authorized to perform: " +
		"kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab " +
		"with an explicit deny in a service control policy")
	fmt.Println(m.Kind, m.PolicyType, m.Action)
	// Output: explicit-deny scp kms:Decrypt
}

func ExampleReadAll() {
	f, err := os.Open("testdata/logfile.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	items, err := cloudtrail.ReadAll(f, "logfile.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range items {
		if d := it.Denial; d != nil {
			fmt.Println(it.Source, d.Actions, d.Identity.PrincipalARN, d.Bucket)
		} else {
			fmt.Println(it.Source, "ignored:", it.Ignored)
		}
	}
	// Output:
	// logfile.json#1 ignored: KMS Decrypt succeeded (no errorCode)
	// logfile.json#2 [kms:Decrypt] arn:aws:iam::111122223333:role/data/etl-reader amzn-s3-demo-bucket
	// logfile.json#3 ignored: not a KMS call (eventSource s3.amazonaws.com)
	// logfile.json#4 [kms:GenerateDataKey] arn:aws:iam::444455556666:user/uploaders/report-uploader amzn-s3-demo-reports
}
