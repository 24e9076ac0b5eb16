package apply

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/config"
)

// NewFromConfig builds the Lambda's applier from its configuration and AWS SDK configuration
// (AWS_ENDPOINT_URL_<SERVICE> redirects each client, as tests do).
func NewFromConfig(c config.Config, awsCfg aws.Config, log *slog.Logger) *Applier {
	kc := kms.NewFromConfig(awsCfg)
	return &Applier{
		Settings: SettingsFrom(c, awsCfg.Region),
		Store:    &Store{DB: dynamodb.NewFromConfig(awsCfg), Table: c.TableName, Retention: DefaultRetention},
		KMS:      kc,
		Grants:   kc,
		IAM:      iam.NewFromConfig(awsCfg),
		Analyzer: accessanalyzer.NewFromConfig(awsCfg),
		Logger:   log,
	}
}
