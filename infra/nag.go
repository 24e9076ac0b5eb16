package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppressWildcards records, next to the policy, why each of its remaining wildcards is
// required; any other wildcard still fails cdk-nag.
func suppressWildcards(policy awsiam.Policy, findings []string, reason string) {
	appliesTo := make([]any, len(findings))
	for i, f := range findings {
		appliesTo[i] = f
	}
	cdknag.NagSuppressions_AddResourceSuppressions(policy, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String(reason),
		AppliesTo: &appliesTo,
	}}, jsii.Bool(true))
}
