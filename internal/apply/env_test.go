package apply

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// The package's tests share one local-kms and one dynalite; each test makes its own key
// and table.
var emu struct {
	kms, dynamo string
}

func TestMain(m *testing.M) {
	h := &testenv.ProcessHarness{}
	emu.kms = emulator.LocalKMSEndpoint(h, sandbox, region)
	emu.dynamo = emulator.DynaliteEndpoint(h)
	code := m.Run()
	h.Close()
	os.Exit(code)
}

var creds = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")

func kmsClient(url string) *kms.Client {
	// The standard retryer: an emulator may drop a kept-alive connection now and then.
	return kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(url), Credentials: creds, Retryer: retry.NewStandard()})
}

// env is one test's world: a key in local-kms, a table in dynalite, IAM, grant and Access
// Analyzer fakes, a fake clock, and the applier wired to them through the real SDK clients.
type env struct {
	t      testing.TB
	a      *Applier
	kms    *kms.Client
	db     *dynamodb.Client
	iam    *awsfake.IAM
	aa     *awsfake.AccessAnalyzer
	grants *awsfake.KMSGrants
	clock  *testenv.Clock
	logs   *bytes.Buffer
	key    string
	before string // the key policy as GetKeyPolicy returned it at the start
	table  string
	sealer KMSSealer
}

var tableSeq atomic.Int64

// newEnv creates a key with the given policy text ("%s" is replaced by the account).
func newEnv(t testing.TB, keyPolicyText string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, clock: testenv.NewClock(time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)), logs: &bytes.Buffer{}}
	e.kms = kmsClient(emu.kms)
	text := strings.ReplaceAll(keyPolicyText, "%s", sandbox)
	out, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(text)})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	e.key = aws.ToString(out.KeyMetadata.Arn)
	e.before = e.keyPolicy()

	e.db = dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(emu.dynamo), Credentials: creds, Retryer: retry.NewStandard()})
	e.table = fmt.Sprintf("kmsfix-apply-%d", tableSeq.Add(1))
	emulator.CreateDynamoTable(t, e.db, e.table)

	e.iam = awsfake.NewIAM(t)
	e.iam.AddEntity("role/reader", false)
	e.aa = awsfake.NewAccessAnalyzer(t)
	e.grants = awsfake.NewKMSGrants(t)
	iamClient := iam.New(iam.Options{Region: region, BaseEndpoint: aws.String(e.iam.URL), Credentials: creds, Retryer: aws.NopRetryer{}})
	aaClient := accessanalyzer.New(accessanalyzer.Options{Region: region, BaseEndpoint: aws.String(e.aa.URL), Credentials: creds, Retryer: aws.NopRetryer{}})

	e.sealer = newSealer(t, e.kms)
	e.a = &Applier{
		Settings: Settings{
			Enabled: true, SandboxAccounts: []string{sandbox}, Diagnoses: config.DefaultApplyDiagnoses,
			Expiry: 24 * time.Hour, Account: sandbox, RemediatorRoleARN: remARN, Table: e.table, Region: region,
		},
		Store:    &Store{DB: e.db, Table: e.table, Retention: DefaultRetention, Sealer: e.sealer},
		KMS:      e.kms,
		Grants:   kmsClient(e.grants.URL),
		IAM:      iamClient,
		Analyzer: aaClient,
		Logger:   slog.New(slog.NewTextHandler(e.logs, nil)),
		Now:      e.clock.Now,
		Sleep:    func(context.Context, time.Duration) error { return nil },
	}
	return e
}

// newSealer makes the test its own HMAC key in local-kms (GenerateMac/VerifyMac are real).
func newSealer(t testing.TB, kc *kms.Client) KMSSealer {
	t.Helper()
	out, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac,
	})
	if err != nil {
		t.Fatalf("CreateKey HMAC_256: %v", err)
	}
	return KMSSealer{API: kc, KeyID: aws.ToString(out.KeyMetadata.Arn)}
}

func (e *env) keyPolicy() string {
	e.t.Helper()
	out, err := e.kms.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: &e.key, PolicyName: aws.String("default")})
	if err != nil {
		e.t.Fatalf("GetKeyPolicy: %v", err)
	}
	return aws.ToString(out.Policy)
}

func (e *env) keyDoc() *policy.Document {
	e.t.Helper()
	d, err := policy.Parse([]byte(e.keyPolicy()))
	if err != nil {
		e.t.Fatalf("key policy: %v", err)
	}
	return d
}

// world is what enrichment would read: the key's policy now, the role with no policies.
func (e *env) world() *world.World {
	return worldFor(e.key, e.keyDoc(), roleARN)
}

func (e *env) record(id string) *Record {
	e.t.Helper()
	r, err := e.a.Store.Get(context.Background(), id)
	if err != nil || r == nil {
		e.t.Fatalf("audit record %s: %v %v", id, r, err)
	}
	return r
}

func (e *env) active() []string {
	e.t.Helper()
	ids, err := e.a.Store.Active(context.Background())
	if err != nil {
		e.t.Fatalf("active: %v", err)
	}
	return ids
}

// Key policies used by the tests. Pretty-printed on purpose: a revert must give back these
// exact bytes, not a re-encoding.
const (
	// adminOnly names an administrator role and no account delegation: key-policy-missing.
	adminOnly = `{
  "Version": "2012-10-17",
  "Id": "team-key",
  "Statement": [
    {
      "Sid": "KeyAdministrators",
      "Effect": "Allow",
      "Principal": {"AWS": "arn:aws:iam::%s:role/admin"},
      "Action": "kms:*",
      "Resource": "*"
    }
  ]
}`
	// delegating lets IAM policies of the account grant use: identity-policy-missing.
	delegating = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::%s:root"}, "Action": "kms:*", "Resource": "*"}
  ]
}`
)
