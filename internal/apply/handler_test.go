package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// liveWorld is the sample's world file with the key moved to the local-kms key and its policy
// read live, as the Lambda's enricher would.
type liveWorld struct {
	base         *world.World
	kms          *kms.Client
	sample, live string
}

func (l *liveWorld) World(ctx context.Context, d *cloudtrail.Denial) *world.World {
	w := *l.base
	k := *w.Keys[l.sample]
	out, err := l.kms.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &l.live, PolicyName: aws.String("default")})
	if err == nil {
		if doc, perr := policy.Parse([]byte(aws.ToString(out.Policy))); perr == nil {
			k.Policy = doc
		}
	}
	w.Keys = map[string]*world.Key{l.live: &k}
	return &w
}

// The sample event 11 (key-policy-missing in a sandbox) through the real Lambda handler, with
// this package's applier behind it: the fix is applied in local-kms, the message carries the
// revert command, the sweeper reverts it at expiry, and the key policy is byte-for-byte back.
func TestHandlerAppliesSampleEventAndSweeperReverts(t *testing.T) {
	kmsURL, dynURL := apply.EmulatorURLs()
	s := runSample(t, "11-key-policy-missing-sandbox", "arn:aws:kms:us-east-1:111122223333:key/7d0c3f5a-1e8b-4a62-9f4d-b2e6a8c1d703", "us-east-1", kmsURL, dynURL)
	if s.rep.Applied == nil || s.rep.Applied.Lever != finding.KindKeyPolicyStatement {
		t.Fatalf("not applied: auto_apply=%v blocked=%q", s.rep.AutoApply, s.rep.AutoApplyBlocked)
	}
	s.checkMessagesAndSweep(t)
}

// Sample event 03: an IAM Identity Center role that IAM cannot edit. Nothing is changed for
// it automatically, whatever the lever (issue 14 item 6, docs/contract.md): the key policy
// stays as it was and the notification says why.
func TestHandlerSSORoleIsNeverAutoApplied(t *testing.T) {
	_, dynURL := apply.EmulatorURLs()
	kmsURL := emulator.LocalKMSEndpoint(t, "246813579024", "eu-west-1")
	s := runSample(t, "03-identity-policy-missing-sso-role", "arn:aws:kms:eu-west-1:246813579024:key/c41d8e2f-7b3a-4a96-8e05-d1f2a6b93c70", "eu-west-1", kmsURL, dynURL)
	if s.rep.Applied != nil || s.rep.AutoApply || !strings.Contains(s.rep.AutoApplyBlocked, "IAM Identity Center") {
		t.Fatalf("auto_apply=%v blocked=%q applied=%+v; want no change, blocked naming IAM Identity Center", s.rep.AutoApply, s.rep.AutoApplyBlocked, s.rep.Applied)
	}
	out, err := s.kc.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: &s.live, PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Policy) != s.before {
		t.Errorf("the key policy changed:\n%s", aws.ToString(out.Policy))
	}
}

type sampleRun struct {
	a      *apply.Applier
	kc     *kms.Client
	rep    finding.Report
	out    *testenv.Reports
	live   string
	before string
	table  string
	region string
	expiry time.Duration
	now    time.Time
}

func runSample(t *testing.T, dir, sampleKey, region, kmsURL, dynURL string) *sampleRun {
	t.Helper()
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	kc := kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(kmsURL), Credentials: creds})
	db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(dynURL), Credentials: creds})

	base, err := world.Load("../../events/" + dir + "/world.json")
	if err != nil {
		t.Fatal(err)
	}
	// The key's policy exactly as the sample writes it, indentation included.
	var raw struct {
		Keys map[string]struct {
			Policy json.RawMessage `json:"policy"`
		} `json:"keys"`
	}
	b, _ := os.ReadFile("../../events/" + dir + "/world.json")
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	before := string(raw.Keys[sampleKey].Policy)
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Policy: &before})
	if err != nil {
		t.Fatal(err)
	}
	live := aws.ToString(key.KeyMetadata.Arn)
	event, err := os.ReadFile("../../events/" + dir + "/event.json")
	if err != nil {
		t.Fatal(err)
	}
	event = []byte(strings.ReplaceAll(string(event), sampleKey, live))

	table := fmt.Sprintf("kmsfix-handler-%d", time.Now().UnixNano())
	emulator.CreateDynamoTable(t, db, table)
	aa := awsfake.NewAccessAnalyzer(t)
	iamFake := awsfake.NewIAM(t)
	iamClient := iam.New(iam.Options{Region: region, BaseEndpoint: aws.String(iamFake.URL), Credentials: creds})
	aaClient := accessanalyzer.New(accessanalyzer.Options{Region: region, BaseEndpoint: aws.String(aa.URL), Credentials: creds})

	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"KMSFIX_MODE": "apply", "KMSFIX_SANDBOX_ACCOUNTS": base.SandboxAccounts[0], "KMSFIX_TABLE_NAME": table,
			"KMSFIX_TOPIC_ARN":           "arn:aws:sns:us-east-1:111122223333:kmsfix",
			"KMSFIX_REMEDIATOR_ROLE_ARN": "arn:aws:iam::" + base.SandboxAccounts[0] + ":role/kmsfix-remediator",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &apply.Applier{
		Settings: apply.SettingsFrom(cfg, "us-east-1"),
		IAM:      iamClient,
		Store:    &apply.Store{DB: db, Table: table, Retention: apply.DefaultRetention, Sealer: apply.TestSealer(t, kc)},
		KMS:      kc, Grants: kc, Analyzer: aaClient,
		Now: func() time.Time { return now },
	}
	out := &testenv.Reports{}
	h := &remediator.Handler{
		Enricher:  &liveWorld{base: base, kms: kc, sample: sampleKey, live: live},
		Validator: pipeline.NewValidator(aaClient, time.Minute, 5*time.Second),
		Notifier:  out,
		Applier:   a,
		Sandbox:   cfg.SandboxAccounts,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:   io.Discard,
	}
	rep, err := h.Handle(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.All()); n != 1 {
		t.Fatalf("%d notifications", n)
	}
	return &sampleRun{a: a, kc: kc, rep: rep, out: out, live: live, before: before, table: table, region: region, expiry: cfg.ApplyExpiry, now: now}
}

// checkMessagesAndSweep: the messages carry the revert command; the statement is in the key
// policy until the sweeper reverts it at expiry, byte-for-byte.
func (s *sampleRun) checkMessagesAndSweep(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	applied := s.rep.Applied
	n := notify.NewNotice(s.out.All()[0])
	body, _ := notify.ReportJSON(n)
	slack, _ := json.Marshal(notify.SlackMessage(n))
	cmd := "kmsfix revert " + applied.ID + " --table " + s.table + " --region us-east-1"
	for _, m := range []string{string(body), string(slack)} {
		if !strings.Contains(m, cmd) {
			t.Fatalf("message lacks %q:\n%s", cmd, m)
		}
	}
	got, _ := s.kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &s.live, PolicyName: aws.String("default")})
	if !strings.Contains(aws.ToString(got.Policy), applied.Name) {
		t.Fatalf("statement %s not in the key policy", applied.Name)
	}
	// The Lambda receives the sweeper's schedule and runs Sweep at expiry.
	if !apply.IsSweep([]byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`)) {
		t.Fatal("the schedule's event is not recognised")
	}
	res, err := s.a.Sweep(ctx, s.now.Add(s.expiry))
	if err != nil || res.Reverted != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	got, _ = s.kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &s.live, PolicyName: aws.String("default")})
	if aws.ToString(got.Policy) != s.before {
		t.Fatalf("key policy after the sweep is not byte-for-byte the sample's:\n%s", aws.ToString(got.Policy))
	}
}
