package emulator

import (
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Services are the AWS services the remediator Lambda reads, on loopback: KMS from
// local-kms (behind its shim), IAM, STS and Access Analyzer from fakes.
type Services struct {
	Account string
	Region  string
	KMS     *LocalKMS
	IAM     *awsfake.IAM
	STS     *awsfake.STS
	AA      *awsfake.AccessAnalyzer
}

// ServicesOptions: the account and Region the function runs in, and optionally a world
// to seed (keys into local-kms and its shim, principals into the IAM fake).
type ServicesOptions struct {
	Account string // default 111122223333
	Region  string // default eu-west-2
	World   *world.World
}

// StartServices starts everything; all of it stops at cleanup.
func StartServices(t testenv.Harness, o ServicesOptions) *Services {
	t.Helper()
	if o.Account == "" {
		o.Account = "111122223333"
	}
	if o.Region == "" {
		o.Region = "eu-west-2"
	}
	e := &Services{Account: o.Account, Region: o.Region}
	var ids []string
	if o.World != nil {
		for arn, k := range o.World.Keys {
			probe := &LocalKMS{Account: o.Account, Region: o.Region}
			if probe.Local(arn) && k.Manager != world.ManagerAWS {
				ids = append(ids, LocalKMSKeyID(arn))
			}
		}
	}
	e.KMS = StartLocalKMS(t, LocalKMSOptions{Account: o.Account, Region: o.Region, KeyIDs: ids})
	e.IAM = awsfake.NewIAM(t)
	e.STS = awsfake.NewSTS(t, o.Account)
	e.AA = awsfake.NewAccessAnalyzer(t)
	if o.World != nil {
		e.KMS.SeedWorld(t, o.World)
		if err := e.IAM.SeedWorld(o.World); err != nil {
			t.Fatalf("seed IAM: %v", err)
		}
	}
	return e
}

// Env is the environment that points the SDK at the emulators (AWS_ENDPOINT_URL_<SERVICE>),
// with throwaway credentials and no instance metadata lookups.
func (e *Services) Env() []string {
	return []string{
		"AWS_REGION=" + e.Region,
		"AWS_DEFAULT_REGION=" + e.Region,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_SESSION_TOKEN=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_KMS=" + e.KMS.URL,
		"AWS_ENDPOINT_URL_IAM=" + e.IAM.URL,
		"AWS_ENDPOINT_URL_STS=" + e.STS.URL,
		"AWS_ENDPOINT_URL_ACCESSANALYZER=" + e.AA.URL,
	}
}
