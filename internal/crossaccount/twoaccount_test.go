package crossaccount_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/enrich"
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

// The package's two-account tests share one local-kms (the key owner's account, holding the
// key policy) and one dynalite (each account's table: dedupe, sent requests, audit).
var emu struct{ kms, dynamo string }

func TestMain(m *testing.M) {
	h := &testenv.ProcessHarness{}
	emu.kms = emulator.LocalKMSEndpoint(h, ownerAcct, region)
	emu.dynamo = emulator.DynaliteEndpoint(h)
	code := m.Run()
	h.Close()
	os.Exit(code)
}

// logLines is a JSON log sink whose lines a test can search.
type logLines struct{ testenv.LockedBuffer }

// events returns the handler's per-event lines.
func (l *logLines) events() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "event" {
			out = append(out, m)
		}
	}
	return out
}

// callerWorld is what the caller's account can read: its role (no KMS policy), not the
// other account's key.
type callerWorld struct{}

func (callerWorld) World(context.Context, *cloudtrail.Denial) *world.World {
	return &world.World{Principals: map[string]*world.Principal{principal: {Policies: []world.NamedPolicy{}}},
		Unreadable: []string{"the key (the key is in account " + ownerAcct + " and only its owner can read the policy)"}}
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accounts is the two remediators, wired as functions/remediator wires them from their
// configuration, with an EventBridge fake between them.
type accounts struct {
	caller, owner         *remediator.Handler
	callerSent, ownerSent *testenv.Reports
	callerLog, ownerLog   *logLines
	bridge                *awsfake.EventBridge // PutEvents made with the caller's credentials
	kms                   *kms.Client
	key, policyBefore     string
}

func twoAccounts(t *testing.T) *accounts {
	t.Helper()
	ctx := context.Background()
	a := &accounts{callerSent: &testenv.Reports{}, ownerSent: &testenv.Reports{}, callerLog: &logLines{}, ownerLog: &logLines{}}
	a.kms = kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(emu.kms), Credentials: creds})
	db := dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(emu.dynamo), Credentials: creds})
	a.policyBefore = defaultKeyPolicy(ownerAcct)
	// The key opts in to automatic changes (apply mode changes only tagged keys).
	out, err := a.kms.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(a.policyBefore),
		Tags: []kmstypes.Tag{{TagKey: aws.String(config.AutoFixTagKey), TagValue: aws.String(config.AutoFixTagValue)}}})
	if err != nil {
		t.Fatal(err)
	}
	a.key = aws.ToString(out.KeyMetadata.Arn)
	mac, err := a.kms.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UnixNano()
	callerTable, ownerTable := fmt.Sprintf("kmsfix-caller-%d", stamp), fmt.Sprintf("kmsfix-owner-%d", stamp)
	emulator.CreateDynamoTable(t, db, callerTable)
	emulator.CreateDynamoTable(t, db, ownerTable)

	aa := awsfake.NewAccessAnalyzer(t)
	analyzer := accessanalyzer.New(accessanalyzer.Options{Region: region, BaseEndpoint: aws.String(aa.URL), Credentials: creds})
	a.bridge = awsfake.NewEventBridge(t, callerAcct)
	a.bridge.AddBus(ownerBus)

	// The caller's account: sends key-policy requests to the owner's bus.
	callerCfg := loadConfig(t, map[string]string{
		"KMSFIX_TOPIC_ARN": "arn:aws:sns:eu-west-2:" + callerAcct + ":kmsfix", "KMSFIX_TABLE_NAME": callerTable,
		"KMSFIX_KEY_OWNER_BUSES": ownerAcct + "=" + ownerBus,
	})
	a.caller = &remediator.Handler{
		Enricher:  callerWorld{},
		Validator: pipeline.NewValidator(analyzer, time.Minute, 5*time.Second),
		Notifier:  a.callerSent,
		KeyOwner: &crossaccount.Sender{
			Events: eventbridge.New(eventbridge.Options{Region: region, BaseEndpoint: aws.String(a.bridge.URL), Credentials: creds}),
			Buses:  callerCfg.KeyOwnerBuses,
			Log:    &crossaccount.TableSentLog{DB: db, Table: callerCfg.TableName},
			Window: callerCfg.DedupeWindow,
		},
		Log:     slog.New(slog.NewJSONHandler(a.callerLog, nil)),
		Metrics: &bytes.Buffer{},
	}

	// The key owner's account: a sandbox that trusts the caller's account.
	ownerCfg := loadConfig(t, map[string]string{
		"KMSFIX_TOPIC_ARN": "arn:aws:sns:eu-west-2:" + ownerAcct + ":kmsfix", "KMSFIX_TABLE_NAME": ownerTable,
		"KMSFIX_MODE": "apply", "KMSFIX_SANDBOX_ACCOUNTS": ownerAcct, "KMSFIX_TRUSTED_SENDER_ROLES": "arn:aws:iam::" + callerAcct + ":role/kmsfix-remediator",
		"KMSFIX_REMEDIATOR_ROLE_ARN": "arn:aws:iam::" + ownerAcct + ":role/kmsfix-remediator",
		"KMSFIX_AUDIT_KEY_ARN":       aws.ToString(mac.KeyMetadata.Arn),
	})
	ownerSTS := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(awsfake.NewSTS(t, ownerAcct).URL), Credentials: creds})
	ownerIAM := iam.New(iam.Options{Region: region, BaseEndpoint: aws.String(awsfake.NewIAM(t).URL), Credentials: creds})
	enricher := enrich.New(a.kms, ownerIAM, ownerSTS, enrich.Options{TTL: time.Nanosecond})
	a.owner = &remediator.Handler{
		Enricher:  enricher,
		Validator: pipeline.NewValidator(analyzer, time.Minute, 5*time.Second),
		Notifier:  a.ownerSent,
		Applier: &apply.Applier{
			Settings: apply.SettingsFrom(ownerCfg, region),
			Store:    &apply.Store{DB: db, Table: ownerCfg.TableName, Sealer: apply.KMSSealer{API: a.kms, KeyID: ownerCfg.AuditKeyARN}},
			KMS:      a.kms, Grants: a.kms, Analyzer: analyzer,
		},
		Requests: &crossaccount.Receiver{
			Enricher: enricher, STS: ownerSTS, Region: region,
			TrustedAccounts: ownerCfg.TrustedAccounts, Sandbox: ownerCfg.SandboxAccounts,
			Window: ownerCfg.DedupeWindow, MaxStatements: ownerCfg.MaxKeyStatements,
			Seen: &crossaccount.TableSeenLog{DB: db, Table: ownerCfg.TableName},
			Now:  func() time.Time { return sampleTime.Add(time.Minute) },
		},
		Sandbox: ownerCfg.SandboxAccounts,
		Log:     slog.New(slog.NewJSONHandler(a.ownerLog, nil)),
		Metrics: &bytes.Buffer{},
	}
	return a
}

func (a *accounts) livePolicy(t *testing.T) string {
	t.Helper()
	out, err := a.kms.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: &a.key, PolicyName: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Policy)
}

func sampleEvent(t *testing.T, key string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../events/21-cross-account-message-only/event.json")
	if err != nil {
		t.Fatal(err)
	}
	// As EventBridge delivers CloudTrail records to the caller's function.
	return []byte(`{"version":"0","id":"0d1f9e6b-7c4e-4f0a-9b1d-2f3c4d5e6f70","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"` +
		callerAcct + `","time":"2025-11-04T09:12:40Z","region":"eu-west-2","resources":[],"detail":` + strings.ReplaceAll(string(raw), sampleKey, key) + `}`)
}

// The request travels from the caller's account to the key owner's: the caller notifies
// both halves and sends the key-policy half once; the owner accepts it from the trusted
// account, verifies the statement against its live key policy, notifies the exact statement
// with the merged policy, and (a sandbox) applies it in local-kms.
func TestTwoAccounts(t *testing.T) {
	ctx := context.Background()
	a := twoAccounts(t)

	// 1. The caller's account sees the denial (only it does) and notifies both halves.
	rep, err := a.caller.Handle(ctx, sampleEvent(t, a.key))
	if err != nil {
		t.Fatal(err)
	}
	local := a.callerSent.All()
	if len(local) != 1 || local[0].Diagnosis != finding.CrossAccountAccessMissing || len(local[0].Patches) != 2 {
		t.Fatalf("caller notified %+v", local)
	}
	kinds := local[0].Patches[0].Kind + "+" + local[0].Patches[1].Kind
	if kinds != finding.KindIdentityPolicy+"+"+finding.KindKeyPolicyStatement || local[0].Patches[1].Account != ownerAcct {
		t.Fatalf("caller's patches: %s", kinds)
	}
	requested, _ := crossaccount.KeyPolicyPatch(rep)
	if line := a.callerLog.events(); len(line) != 1 || line[0]["key_owner_request"] != crossaccount.Sent {
		t.Fatalf("caller's log line: %v", line)
	}

	// 2. EventBridge carries it to the owner's bus, from the caller's account.
	envs := a.bridge.Take(ownerBus)
	if len(envs) != 1 {
		t.Fatalf("%d requests on the owner's bus, want 1", len(envs))
	}
	var env crossaccount.Envelope
	if err := json.Unmarshal(envs[0], &env); err != nil || env.Account != callerAcct || env.Source != crossaccount.Source {
		t.Fatalf("envelope %s (%v)", envs[0], err)
	}

	// 3. The key owner accepts, verifies, notifies and applies.
	owned, err := a.owner.Handle(ctx, envs[0])
	if err != nil {
		t.Fatal(err)
	}
	msgs := a.ownerSent.All()
	if len(msgs) != 1 {
		t.Fatalf("owner notified %d times", len(msgs))
	}
	got := msgs[0]
	if len(got.Patches) != 1 || got.Patches[0].Kind != finding.KindKeyPolicyStatement || got.KeyAccount != ownerAcct {
		t.Fatalf("owner's report has patches %+v; want only the key-policy statement", got.Patches)
	}
	st := got.Patches[0].Statement
	if why := crossaccount.CheckStatement(st, requested.Statement); why != "" {
		t.Fatalf("the owner's statement is not the one requested: %s", why)
	}
	if !got.Verified || got.Applied == nil || owned.Applied == nil {
		t.Fatalf("verified=%v applied=%v (unverified %q, blocked %q)", got.Verified, got.Applied, got.Unverified, got.AutoApplyBlocked)
	}
	// Least privilege, as the contract words it.
	stJSON, _ := json.Marshal(st)
	for _, want := range []string{`"Effect":"Allow"`, `"Principal":{"AWS":"` + principal + `"}`, `"Action":["kms:GenerateDataKey"]`,
		`"Resource":"` + a.key + `"`, `"kms:ViaService":"s3.eu-west-2.amazonaws.com"`,
		`"kms:EncryptionContext:aws:s3:arn":["` + bucketARN + `","` + bucketARN + `/*"]`} {
		if !strings.Contains(string(stJSON), want) {
			t.Errorf("statement lacks %s: %s", want, stJSON)
		}
	}

	// The messages carry the exact statement and the merged key policy.
	n := notify.NewNotice(got)
	body, err := notify.ReportJSON(n)
	if err != nil {
		t.Fatal(err)
	}
	slack, _ := json.Marshal(notify.SlackMessage(n))
	merged, _ := json.Marshal(got.Patches[0].MergedKeyPolicy)
	if !bytes.Contains(body, stJSON) || !bytes.Contains(body, []byte(`"merged_key_policy":`+string(merged))) {
		t.Errorf("SNS body lacks the statement or the merged key policy:\n%s", body)
	}
	if !strings.Contains(string(slack), got.Patches[0].Name) || !strings.Contains(string(slack), "put-key-policy") {
		t.Errorf("Slack message lacks the statement or the put-key-policy command:\n%s", slack)
	}

	// 4. The live key policy is the merged one, and it now admits the request (with the
	// caller's half) and nothing else the probes try.
	live := a.livePolicy(t)
	doc, err := policy.Parse([]byte(live))
	if err != nil {
		t.Fatal(err)
	}
	have, ok := doc.StatementBySid(st.Sid)
	if !ok || crossaccount.CheckStatement(&have, st) != "" || len(doc.Statement) != 2 {
		t.Fatalf("live key policy:\n%s", live)
	}
	liveMerged, _ := json.Marshal(doc)
	if !sameJSON(liveMerged, merged) {
		t.Errorf("live policy differs from the notified merged policy:\n%s\n%s", liveMerged, merged)
	}
	ident := rep.Patches[0].Policy
	in := policy.KMSInputs{KeyAccount: ownerAcct, KeyPolicy: doc, Identity: []policy.NamedDocument{{Name: "caller half", Doc: ident}}}
	req := policy.Request{Action: "kms:GenerateDataKey", Resource: a.key,
		Caller: policy.Caller{ARN: principal, Account: callerAcct},
		Context: map[string]string{"kms:ViaService": "s3.eu-west-2.amazonaws.com", "kms:CallerAccount": callerAcct,
			"aws:PrincipalArn": principal, "aws:PrincipalAccount": callerAcct, "kms:EncryptionContext:aws:s3:arn": bucketARN}}
	if d := policy.AuthorizeKMS(req, in).Decision; d != policy.Allow {
		t.Errorf("the request is still refused after both halves: %v", d)
	}
	req.Context["kms:EncryptionContext:aws:s3:arn"] = "arn:aws:s3:::another-bucket/x"
	if d := policy.AuthorizeKMS(req, in).Decision; d == policy.Allow {
		t.Error("the statement also allows another bucket")
	}

	// 5. The same denial again: notified locally (deduped by the notifier's own logic) but
	// not sent to the key owner a second time within the window.
	if _, err := a.caller.Handle(ctx, sampleEvent(t, a.key)); err != nil {
		t.Fatal(err)
	}
	if n := len(a.bridge.Entries()); n != 1 {
		t.Errorf("the repeat sent %d requests in all, want 1", n)
	}
	if lines := a.callerLog.events(); lines[len(lines)-1]["key_owner_request"] != crossaccount.Duplicate {
		t.Errorf("repeat's log line: %v", lines[len(lines)-1])
	}
}

// Every forged or over-broad request is refused with a logged reason and changes nothing.
// Each travels through EventBridge from the account that sends it.
func TestTwoAccountsRejects(t *testing.T) {
	ctx := context.Background()
	a := twoAccounts(t)
	base := callerReport(t, a.key)
	forger := awsfake.NewEventBridge(t, otherAcct)
	forger.AddBus(ownerBus)
	otherKey := strings.Replace(sampleKey, ownerAcct, otherAcct, 1)

	tests := []struct {
		name   string
		from   *awsfake.EventBridge
		report finding.Report
		tamper []func(map[string]any)
		want   string
	}{
		{name: "untrusted sender", from: forger, report: base, want: "sending account " + otherAcct + " is not trusted"},
		{name: "detail claims the trusted account, envelope is not", from: forger, report: base,
			tamper: []func(map[string]any){set("sender_account", callerAcct), set("finding.principal_account", callerAcct)},
			want:   "sending account " + otherAcct + " is not trusted"},
		{name: "wrong-account key", from: a.bridge, report: *withKey(callerReport(t, otherKey)), want: "is not in this account (" + ownerAcct + ")"},
		{name: "Action kms:*", from: a.bridge, report: base, tamper: []func(map[string]any){set("statement.Action", "kms:*")}, want: "Action kms:* has a wildcard"},
		{name: "Principal account root", from: a.bridge, report: base,
			tamper: []func(map[string]any){set("statement.Principal", map[string]any{"AWS": "arn:aws:iam::" + callerAcct + ":root"})}, want: "is a whole account"},
		{name: `Principal "*"`, from: a.bridge, report: base, tamper: []func(map[string]any){set("statement.Principal", "*")}, want: `Principal is "*"`},
		{name: "missing kms:ViaService", from: a.bridge, report: base,
			tamper: []func(map[string]any){set("statement.Condition.StringEquals.kms:ViaService", nil)}, want: "Condition lacks StringEquals kms:ViaService"},
		{name: "bucket wildcard", from: a.bridge, report: base,
			tamper: []func(map[string]any){set("statement.Condition.StringLike.kms:EncryptionContext:aws:s3:arn", "arn:aws:s3:::*")},
			want:   "kms:EncryptionContext:aws:s3:arn is [arn:aws:s3:::*]"},
		{name: "extra actions", from: a.bridge, report: base,
			tamper: []func(map[string]any){set("statement.Action", []any{"kms:GenerateDataKey", "kms:Decrypt"})}, want: "is not the finding's actions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := detailOf(t, tt.report)
			for _, f := range tt.tamper {
				f(m)
			}
			detail, _ := json.Marshal(m)
			out, err := eventbridge.New(eventbridge.Options{Region: region, BaseEndpoint: aws.String(tt.from.URL), Credentials: creds}).
				PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
					EventBusName: aws.String(ownerBus), Source: aws.String(crossaccount.Source),
					DetailType: aws.String(crossaccount.DetailType), Detail: aws.String(string(detail)),
				}}})
			if err != nil || out.FailedEntryCount != 0 {
				t.Fatalf("put: %v", err)
			}
			envs := tt.from.Take(ownerBus)
			if len(envs) != 1 {
				t.Fatalf("%d envelopes", len(envs))
			}
			before := len(a.ownerLog.events())
			if _, err := a.owner.Handle(ctx, envs[0]); err != nil {
				t.Fatalf("a rejected request must not be retried, got %v", err)
			}
			lines := a.ownerLog.events()
			if len(lines) != before+1 {
				t.Fatalf("%d log lines for one event", len(lines)-before)
			}
			line := lines[len(lines)-1]
			reason, _ := line["reason"].(string)
			if line["outcome"] != "rejected" || !strings.Contains(reason, tt.want) || line["source"] != crossaccount.Source {
				t.Errorf("log line %v\nwant outcome rejected, reason containing %q", line, tt.want)
			}
		})
	}
	if n := len(a.ownerSent.All()); n != 0 {
		t.Errorf("the owner notified %d rejected requests", n)
	}
	if live := a.livePolicy(t); live != a.policyBefore {
		t.Errorf("a rejected request changed the key policy:\n%s", live)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
