// Package arns reads the fields of an ARN (arn:partition:service:region:account-id:resource)
// through the SDK's parser; text that is not an ARN has no fields ("").
package arns

import "github.com/aws/aws-sdk-go-v2/aws/arn"

// Partition, Region and Account are an ARN's fields, or "" for text that is not an ARN.
func Partition(s string) string { return parse(s).Partition }
func Region(s string) string    { return parse(s).Region }
func Account(s string) string   { return parse(s).AccountID }

func parse(s string) arn.ARN {
	a, err := arn.Parse(s)
	if err != nil {
		return arn.ARN{}
	}
	return a
}
