package doctor

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// SecretAPI is the Secrets Manager calls of the Slack check.
type SecretAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// CheckSlackSecret passes when the secret exists, is not scheduled for deletion, can be read
// and holds a webhook URL in a form the notifier accepts. It never prints the value.
func CheckSlackSecret(ctx context.Context, api SecretAPI, arn string, fnKnown bool) Check {
	c := Check{Name: NameSlackSecret}
	if arn == "" {
		why := "no Slack secret configured (the function has no KMSFIX_SLACK_SECRET_ARN): Slack notifications are off"
		if !fnKnown {
			why = "no function to read KMSFIX_SLACK_SECRET_ARN from; pass --slack-secret ARN"
		}
		return skipped(NameSlackSecret, why)
	}
	d, err := api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		var missing *smtypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			c.Status, c.Detail = Fail, arn+" does not exist"
			c.Fix = "aws secretsmanager create-secret --name kmsfix/slack-webhook --secret-string 'https://hooks.slack.com/services/...'\n" +
				"then deploy with context slackSecretArn set to the new secret's complete ARN"
			return c
		}
		// Without the metadata, reading the value still answers the question.
		d = &secretsmanager.DescribeSecretOutput{}
	}
	if d.DeletedDate != nil {
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s is scheduled for deletion on %s", arn, d.DeletedDate.UTC().Format("2006-01-02"))
		c.Fix = "aws secretsmanager restore-secret --secret-id " + quote.Shell(arn)
		return c
	}
	v, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		code := errorCode(err)
		c.Status = Fail
		c.Detail = fmt.Sprintf("%s cannot be read: %s", arn, code)
		var decrypt *smtypes.DecryptionFailure
		switch {
		// AccessDeniedException is a common AWS error Secrets Manager's model has no type
		// for: the code is all there is.
		case errors.As(err, &decrypt) || code == "AccessDeniedException" && aws.ToString(d.KmsKeyId) != "":
			c.Fix = fmt.Sprintf("allow secretsmanager:GetSecretValue on the secret and kms:Decrypt on its key %s "+
				"(the function's role has both when the stack is deployed with slackSecretKeyArn)", aws.ToString(d.KmsKeyId))
		default:
			c.Fix = "allow secretsmanager:GetSecretValue on " + arn + " to the identity running the doctor (the stack grants it to the function)"
		}
		return c
	}
	if v.SecretString == nil {
		c.Status, c.Detail = Fail, arn+" holds binary data, not a webhook URL"
		c.Fix = "aws secretsmanager put-secret-value --secret-id " + quote.Shell(arn) + " --secret-string 'https://hooks.slack.com/services/...'"
		return c
	}
	if _, err := notify.ParseWebhookSecret(*v.SecretString); err != nil {
		c.Status, c.Detail = Fail, arn+" "+err.Error()
		c.Fix = "aws secretsmanager put-secret-value --secret-id " + quote.Shell(arn) + " --secret-string 'https://hooks.slack.com/services/...'"
		return c
	}
	c.Status, c.Detail = Pass, arn+" holds a webhook URL (value not shown)"
	return c
}
