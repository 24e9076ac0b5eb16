package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv"
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

type sent struct {
	mu      sync.Mutex
	reports []finding.Report
}

func (s *sent) Notify(_ context.Context, r finding.Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r)
	return nil
}

// The sample event 11 (key-policy-missing in a sandbox) through the real Lambda handler, with
// this package's applier behind it: the fix is applied in local-kms, the message carries the
// revert command, the sweeper reverts it at expiry, and the key policy is byte-for-byte back.
func TestHandlerAppliesSampleEventAndSweeperReverts(t *testing.T) {
	const sampleKey = "arn:aws:kms:us-east-1:111122223333:key/7d0c3f5a-1e8b-4a62-9f4d-b2e6a8c1d703"
	ctx := context.Background()
	kmsURL, dynURL := apply.EmulatorURLs()
	creds := credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	kc := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(kmsURL), Credentials: creds})
	db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(dynURL), Credentials: creds})

	base, err := world.Load("../../events/11-key-policy-missing-sandbox/world.json")
	if err != nil {
		t.Fatal(err)
	}
	// The key's policy exactly as the sample writes it, indentation included.
	var raw struct {
		Keys map[string]struct {
			Policy json.RawMessage `json:"policy"`
		} `json:"keys"`
	}
	b, _ := os.ReadFile("../../events/11-key-policy-missing-sandbox/world.json")
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	before := string(raw.Keys[sampleKey].Policy)
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Policy: &before})
	if err != nil {
		t.Fatal(err)
	}
	live := aws.ToString(key.KeyMetadata.Arn)
	event, err := os.ReadFile("../../events/11-key-policy-missing-sandbox/event.json")
	if err != nil {
		t.Fatal(err)
	}
	event = []byte(strings.ReplaceAll(string(event), sampleKey, live))

	table := fmt.Sprintf("kmsfix-handler-%d", time.Now().UnixNano())
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: &table,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddbtypes.KeyTypeRange},
		},
		BillingMode: ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	apply.WaitActive(t, db, table)
	aa := testenv.NewApplyAnalyzerFake(t)
	aaClient := accessanalyzer.New(accessanalyzer.Options{Region: "us-east-1", BaseEndpoint: aws.String(aa.URL), Credentials: creds})

	now := time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{
			"KMSFIX_MODE": "apply", "KMSFIX_SANDBOX_ACCOUNTS": "111122223333", "KMSFIX_TABLE_NAME": table,
			"KMSFIX_TOPIC_ARN":           "arn:aws:sns:us-east-1:111122223333:kmsfix",
			"KMSFIX_REMEDIATOR_ROLE_ARN": "arn:aws:iam::111122223333:role/kmsfix-remediator",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &apply.Applier{
		Settings: apply.SettingsFrom(cfg, "us-east-1"),
		Store:    &apply.Store{DB: db, Table: table, Retention: apply.DefaultRetention},
		KMS:      kc, Grants: kc, Analyzer: aaClient,
		Now: func() time.Time { return now },
	}
	out := &sent{}
	h := &remediator.Handler{
		Enricher:  &liveWorld{base: base, kms: kc, sample: sampleKey, live: live},
		Validator: remediator.NewValidator(aaClient, time.Minute, 5*time.Second),
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
	if rep.Applied == nil || len(out.reports) != 1 || out.reports[0].Applied == nil {
		t.Fatalf("not applied: auto_apply=%v blocked=%q", rep.AutoApply, rep.AutoApplyBlocked)
	}
	applied := rep.Applied
	n := notify.NewNotice(out.reports[0])
	body, _ := notify.ReportJSON(n)
	slack, _ := json.Marshal(notify.SlackMessage(n))
	cmd := "kmsfix revert " + applied.ID + " --table " + table + " --region us-east-1"
	for _, s := range []string{string(body), string(slack)} {
		if !strings.Contains(s, cmd) {
			t.Fatalf("message lacks %q:\n%s", cmd, s)
		}
	}
	got, _ := kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &live, PolicyName: aws.String("default")})
	if !strings.Contains(aws.ToString(got.Policy), applied.Name) {
		t.Fatalf("statement %s not in the key policy", applied.Name)
	}

	// The Lambda receives the sweeper's schedule and runs Sweep at expiry.
	if !apply.IsSweep([]byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`)) {
		t.Fatal("the schedule's event is not recognised")
	}
	res, err := a.Sweep(ctx, now.Add(cfg.ApplyExpiry))
	if err != nil || res.Reverted != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	got, _ = kc.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &live, PolicyName: aws.String("default")})
	if aws.ToString(got.Policy) != before {
		t.Fatalf("key policy after the sweep is not byte-for-byte the sample's:\n%s", aws.ToString(got.Policy))
	}
}
