package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/eventpattern"
)

// outDir receives the cloud assemblies; it must outlive single tests because the stacks are
// shared and re-synthesized (Annotations_FromStack writes the cdk-nag report there).
var outDir string

// One Node kernel serves every test of this package; close it once at the end.
func TestMain(m *testing.M) {
	var err error
	if outDir, err = os.MkdirTemp("", "kmsfix-cdk-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	jsii.Close()
	os.RemoveAll(outDir)
	os.Exit(code)
}

// try runs a CDK assertion: a failed assertion is a jsii error surfaced as a Go panic, which
// would kill the whole test binary; it becomes an ordinary error here.
func try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}

func check(t *testing.T, what string, f func()) {
	t.Helper()
	if err := try(f); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

const (
	sandbox    = "111122223333"
	otherAcct  = "444455556666"
	secretARN  = "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/slack-AbC123"
	secretKey  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	ownerBus   = "arn:aws:events:us-east-1:444455556666:event-bus/default"
	trustedOrg = "o-abcdefghij"
	// senderRole is the sender's remediator role in otherAcct, the one principal the bus policy admits.
	senderRole = "arn:aws:iam::444455556666:role/kmsfix-remediator"
	// KMSFIX_ROUTES targets (issue 19 item 3).
	routedSecret = "arn:aws:secretsmanager:us-east-1:444455556666:secret:kmsfix/payments-AbC123"
	routedTopic  = "arn:aws:sns:us-east-1:444455556666:payments"
)

// configs: the default deployment, and one with every option on.
func configFor(t *testing.T, name string) config.Deployment {
	t.Helper()
	values := map[string]map[string]string{
		"notify": {},
		"full": {
			"mode": "apply", "sandboxAccounts": sandbox, "slackSecretArn": secretARN, "slackSecretKeyArn": secretKey,
			"notifyEmails": "sec@example.com,ops@example.com", "keyOwnerBuses": otherAcct + "=" + ownerBus,
			"trustedAccounts": otherAcct, "trustedOrgId": trustedOrg, "trustedSenderRoles": senderRole, "createTrail": "true",
			"reservedConcurrency": "7", "dedupeWindow": "2h",
			"routes": otherAcct + "=slack:" + routedSecret + "|sns:" + routedTopic + "," + sandbox + "=sns:" + routedTopic,
		},
		"accounts-only": {"trustedSenderRoles": senderRole},
		"dryrun":        {"mode": "apply", "sandboxAccounts": sandbox, "dryRun": "true"},
	}[name]
	cfg, err := config.LoadDeployment(func(p config.Param) string { return values[p.Context] })
	if err != nil {
		t.Fatalf("config %s: %v", name, err)
	}
	return cfg
}

type synthesized struct {
	stack    awscdk.Stack
	template assertions.Template
	json     map[string]any // the template as plain Go values
	raw      []byte
}

var (
	synthMu sync.Mutex
	synths  = map[string]*synthesized{}
)

// synth builds the stack for a named config once (with the cdk-nag Aspect on) and shares it.
func synth(t *testing.T, name string) *synthesized {
	t.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	if s, ok := synths[name]; ok {
		return s
	}
	assetDir := filepath.Join(outDir, "asset-"+name)
	if err := os.MkdirAll(assetDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Tests never compile the function: the asset is a placeholder file.
	if err := os.WriteFile(filepath.Join(assetDir, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(outDir, "cdk.out-"+name))})
	stack := NewKmsfixStack(app, "Kmsfix", &StackProps{Config: configFor(t, name), AssetDir: assetDir})
	awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	s := &synthesized{stack: stack}
	if err := try(func() { s.template = assertions.Template_FromStack(stack, nil) }); err != nil {
		t.Fatalf("synth %s: %v", name, err)
	}
	raw, err := json.Marshal(s.template.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	s.raw = raw
	if err := json.Unmarshal(raw, &s.json); err != nil {
		t.Fatal(err)
	}
	synths[name] = s
	return s
}

// resources returns the template's resources of one type, by logical id.
func (s *synthesized) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			props, _ := res["Properties"].(map[string]any)
			if props == nil {
				props = map[string]any{}
			}
			out[id] = props
		}
	}
	return out
}

func (s *synthesized) one(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	rs := s.resources(typ)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(rs))
	}
	for id, p := range rs {
		return id, p
	}
	return "", nil
}

// denialRule finds the rule whose pattern has source aws.kms.
func (s *synthesized) denialRule(t *testing.T) map[string]any {
	t.Helper()
	for _, p := range s.resources("AWS::Events::Rule") {
		if ep, ok := p["EventPattern"].(map[string]any); ok && fmt.Sprint(ep["source"]) == "[aws.kms]" {
			return p
		}
	}
	t.Fatal("no rule with source aws.kms")
	return nil
}

// denialPattern is the denial rule's pattern with the stack's account, a token until
// deployment, replaced by account, or left out when account is "" (the samples come from
// many accounts). It fails unless the rule filters on exactly this stack's account.
func (s *synthesized) denialPattern(t *testing.T, account string) *eventpattern.Pattern {
	t.Helper()
	var ep map[string]any
	if err := json.Unmarshal([]byte(asJSON(s.denialRule(t)["EventPattern"])), &ep); err != nil {
		t.Fatal(err)
	}
	if got := asJSON(ep["account"]); got != `[{"Ref":"AWS::AccountId"}]` {
		t.Fatalf("the denial rule must take only this account's events, account = %s", got)
	}
	if account == "" {
		delete(ep, "account")
	} else {
		ep["account"] = []any{account}
	}
	p, err := eventpattern.FromValue(ep)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAssertionFailureIsAnErrorNotACrash(t *testing.T) {
	s := synth(t, "notify")
	err := try(func() { s.template.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(7)) })
	if err == nil || !strings.Contains(err.Error(), "Expected 7 resources") {
		t.Fatalf("a wrong count must fail as an error, got %v", err)
	}
	// The kernel is still usable after the recovered failure.
	check(t, "count after failure", func() {
		s.template.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(1))
	})
}

func TestRuleStateAndPattern(t *testing.T) {
	for _, name := range []string{"notify", "full"} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, name)
			check(t, "rule state and pattern", func() {
				s.template.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
					"State": "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
					"EventPattern": map[string]any{
						"source":      []string{"aws.kms"},
						"detail-type": []string{"AWS API Call via CloudTrail"},
						"detail": assertions.Match_ObjectLike(&map[string]any{
							"eventName": []string{"Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Encrypt"},
							"errorCode": []string{"AccessDenied", "AccessDeniedException", "DisabledException",
								"KMSInvalidStateException", "NotFoundException"},
							"requestParameters": map[string]any{"encryptionContext": map[string]any{"$or": []any{
								map[string]any{"aws:s3:arn": []any{map[string]any{"exists": true}}},
								map[string]any{"aws:s3express:arn": []any{map[string]any{"exists": true}}},
							}}},
						}),
					},
				})
			})
			// `kmsfix doctor` finds the rule by the prefix <stack>-KmsDenialRule of the name
			// CloudFormation generates from the logical id.
			for id, p := range s.resources("AWS::Events::Rule") {
				ep, _ := p["EventPattern"].(map[string]any)
				if fmt.Sprint(ep["source"]) == "[aws.kms]" && !strings.HasPrefix(id, "KmsDenialRule") {
					t.Errorf("denial rule logical id %s: doctor looks for KmsDenialRule*", id)
				}
			}
			rule := s.denialRule(t)
			if rule["EventBusName"] != nil {
				t.Errorf("the denial rule must be on the default bus, got EventBusName %v", rule["EventBusName"])
			}
			targets := rule["Targets"].([]any)
			if len(targets) != 1 {
				t.Fatalf("want one target, got %d", len(targets))
			}
			tg := targets[0].(map[string]any)
			if tg["DeadLetterConfig"] == nil || tg["RetryPolicy"] == nil {
				t.Errorf("target needs a dead-letter queue and a retry policy: %s", asJSON(tg))
			}
			if rp := tg["RetryPolicy"].(map[string]any); rp["MaximumRetryAttempts"] != float64(8) {
				t.Errorf("retry policy = %s", asJSON(rp))
			}
		})
	}
}

// sample is one event file (or one record of a log file) with what the rule must do with it.
type sample struct {
	name     string
	envelope []byte
	relevant bool
}

// loadSamples reads events/<case>/event.json + expect.json. A sample is relevant when its
// expectation is not "ignored".
func loadSamples(t *testing.T) []sample {
	t.Helper()
	dirs, err := filepath.Glob("../events/*/event.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no samples in ../events")
	}
	var out []sample
	for _, path := range dirs {
		dir := filepath.Dir(path)
		name := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		expRaw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
		if err != nil {
			t.Fatalf("%s: every sample needs an expect.json saying whether it is ignored: %v", name, err)
		}
		type expect struct {
			Ignored *bool `json:"ignored"`
		}
		var records []json.RawMessage
		var expects []expect
		// A CloudTrail log file {"Records": [...]}, `aws cloudtrail lookup-events` output
		// {"Events": [{"CloudTrailEvent": "<record as a string>"}]}, or one record or envelope.
		var multi struct {
			Records []json.RawMessage `json:"Records"`
			Events  []struct {
				CloudTrailEvent string `json:"CloudTrailEvent"`
			} `json:"Events"`
		}
		if err := json.Unmarshal(raw, &multi); err == nil && (multi.Records != nil || multi.Events != nil) {
			records = multi.Records
			for _, e := range multi.Events {
				records = append(records, json.RawMessage(e.CloudTrailEvent))
			}
			if err := json.Unmarshal(expRaw, &expects); err != nil {
				t.Fatalf("%s: expect.json of a multi-record file is an array: %v", name, err)
			}
		} else {
			records = []json.RawMessage{raw}
			var e expect
			if err := json.Unmarshal(expRaw, &e); err != nil {
				t.Fatalf("%s: expect.json: %v", name, err)
			}
			expects = []expect{e}
		}
		if len(records) != len(expects) {
			t.Fatalf("%s: %d records but %d expectations", name, len(records), len(expects))
		}
		for i, rec := range records {
			if expects[i].Ignored == nil {
				t.Fatalf("%s record %d: expect.json has no \"ignored\"", name, i)
			}
			env, err := eventpattern.CloudTrailEnvelope(rec)
			if err != nil {
				t.Fatalf("%s record %d: %v", name, i, err)
			}
			n := name
			if len(records) > 1 {
				n = fmt.Sprintf("%s#%d", name, i)
			}
			out = append(out, sample{name: n, envelope: env, relevant: !*expects[i].Ignored})
		}
	}
	return out
}

// indistinguishable lists ignored samples that an event pattern cannot tell apart from relevant
// ones, each with the reason; the function drops them. Every other ignored sample differs in a
// field the pattern tests (source, detail-type, eventSource, eventName, errorCode, the S3
// context, or an AWSService identity).
var indistinguishable = map[string]string{
	"events/98-ignored-mainframe-modernization-s3-context": "another service's call with an aws:s3:arn context; " +
		"only its invokedBy tells it apart, which the function checks (a rule filtering on it would drop S3's own " +
		"records if AWS changed how it writes them)",
}

func TestPatternMatchesSamples(t *testing.T) {
	s := synth(t, "notify")
	p := s.denialPattern(t, "") // the samples' accounts differ; the account filter has its own case below
	samples := loadSamples(t)
	var relevant, ignored int
	for _, smp := range samples {
		got, err := p.Match(smp.envelope)
		if err != nil {
			t.Fatalf("%s: %v", smp.name, err)
		}
		switch {
		case smp.relevant:
			relevant++
			if !got {
				t.Errorf("%s: relevant sample not matched by the rule's pattern", smp.name)
			}
		case got:
			if _, ok := indistinguishable[smp.name]; !ok {
				t.Errorf("%s: ignored sample matched by the rule's pattern", smp.name)
			}
		default:
			ignored++
		}
	}
	// Guard against a silently empty corpus: the shared scenarios alone hold four denials.
	if relevant < 4 || ignored < 1 {
		t.Fatalf("only %d relevant and %d ignored samples found: is the events/ layout unchanged?", relevant, ignored)
	}
	t.Logf("%d relevant samples matched, %d ignored samples not matched", relevant, ignored)
}

// TestPatternRejectsNearMisses mutates a relevant denial one field at a time.
func TestPatternRejectsNearMisses(t *testing.T) {
	s := synth(t, "notify")
	raw, err := os.ReadFile("../events/02-identity-policy-missing-sandbox-role/event.json")
	if err != nil {
		t.Fatal(err)
	}
	var envelope struct{ Account string }
	if err := json.Unmarshal(raw, &envelope); err != nil || envelope.Account == "" {
		t.Fatalf("sample envelope has no account: %v", err)
	}
	p := s.denialPattern(t, envelope.Account) // deployed in the sample's account
	mutations := []struct {
		name   string
		mutate func(ev, detail map[string]any)
		want   bool
	}{
		{"unchanged", func(ev, d map[string]any) {}, true},
		{"GenerateDataKey", func(ev, d map[string]any) { d["eventName"] = "GenerateDataKey" }, true},
		{"AccessDeniedException", func(ev, d map[string]any) { d["errorCode"] = "AccessDeniedException" }, true},
		{"KMSInvalidStateException", func(ev, d map[string]any) { d["errorCode"] = "KMSInvalidStateException" }, true},
		{"Encrypt (replication)", func(ev, d map[string]any) { d["eventName"] = "Encrypt" }, true},
		{"CreateGrant is not a call S3 makes", func(ev, d map[string]any) { d["eventName"] = "CreateGrant" }, false},
		{"success", func(ev, d map[string]any) { delete(d, "errorCode") }, false},
		{"throttled", func(ev, d map[string]any) { d["errorCode"] = "ThrottlingException" }, false},
		{"no S3 context", func(ev, d map[string]any) {
			d["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{"aws:lambda:FunctionArn": "x"}
		}, false},
		{"AWS service as itself", func(ev, d map[string]any) {
			d["userIdentity"] = map[string]any{"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}
		}, false},
		{"other source", func(ev, d map[string]any) { ev["source"] = "aws.s3" }, false},
		{"native KMS event", func(ev, d map[string]any) { ev["detail-type"] = "KMS CMK Rotation" }, false},
		{"another account's event", func(ev, d map[string]any) {
			ev["account"] = "999999999999"
			d["recipientAccountId"] = "999999999999"
		}, false},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			m.mutate(ev, ev["detail"].(map[string]any))
			got, err := p.Match([]byte(asJSON(ev)))
			if err != nil {
				t.Fatal(err)
			}
			if got != m.want {
				t.Errorf("match = %v, want %v", got, m.want)
			}
		})
	}
}

func TestEncryptionAtRest(t *testing.T) {
	s := synth(t, "full")
	keyID := stackKeyID(t, s)
	key := s.resources("AWS::KMS::Key")[keyID]
	if key["EnableKeyRotation"] != true {
		t.Errorf("key rotation off: %s", asJSON(key))
	}
	keyRef := asJSON(map[string]any{"Fn::GetAtt": []string{keyID, "Arn"}})
	for _, typ := range []string{"AWS::SNS::Topic", "AWS::SQS::Queue"} {
		for id, p := range s.resources(typ) {
			if asJSON(p["KmsMasterKeyId"]) != keyRef {
				t.Errorf("%s %s: KmsMasterKeyId = %s, want the stack key", typ, id, asJSON(p["KmsMasterKeyId"]))
			}
		}
	}
	_, table := s.one(t, "AWS::DynamoDB::Table")
	if asJSON(table["SSESpecification"]) != `{"SSEEnabled":true}` {
		t.Errorf("table SSESpecification = %s", asJSON(table["SSESpecification"]))
	}
	if asJSON(table["PointInTimeRecoverySpecification"]) != `{"PointInTimeRecoveryEnabled":true}` {
		t.Errorf("table PITR = %s", asJSON(table["PointInTimeRecoverySpecification"]))
	}
	if asJSON(table["TimeToLiveSpecification"]) != `{"AttributeName":"expires_at","Enabled":true}` {
		t.Errorf("table TTL = %s", asJSON(table["TimeToLiveSpecification"]))
	}
	for id, lg := range s.resources("AWS::Logs::LogGroup") {
		if asJSON(lg["KmsKeyId"]) != keyRef || lg["RetentionInDays"] != float64(365) {
			t.Errorf("log group %s: %s", id, asJSON(lg))
		}
	}
	for id, b := range s.resources("AWS::S3::Bucket") {
		if !strings.Contains(asJSON(b["BucketEncryption"]), "aws:kms") {
			t.Errorf("bucket %s not KMS-encrypted: %s", id, asJSON(b["BucketEncryption"]))
		}
	}
	// Secure transport is enforced on the topic and the queue.
	for _, typ := range []string{"AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"} {
		for id, p := range s.resources(typ) {
			if !strings.Contains(asJSON(p), `"aws:SecureTransport":"false"`) {
				t.Errorf("%s %s does not deny insecure transport", typ, id)
			}
		}
	}
}

func TestFunction(t *testing.T) {
	s := synth(t, "full")
	_, fn := s.one(t, "AWS::Lambda::Function")
	want := map[string]any{
		"Runtime": "provided.al2023", "Handler": "bootstrap", "MemorySize": float64(256), "Timeout": float64(30),
		"ReservedConcurrentExecutions": float64(7),
	}
	for k, v := range want {
		if fn[k] != v {
			t.Errorf("%s = %v, want %v", k, fn[k], v)
		}
	}
	if asJSON(fn["Architectures"]) != `["arm64"]` {
		t.Errorf("Architectures = %s", asJSON(fn["Architectures"]))
	}
	if lc := fn["LoggingConfig"].(map[string]any); lc["LogFormat"] != "JSON" || lc["LogGroup"] == nil {
		t.Errorf("LoggingConfig = %s", asJSON(lc))
	}
	env := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
	for k, v := range map[string]string{
		"KMSFIX_MODE": "apply", "KMSFIX_SANDBOX_ACCOUNTS": sandbox, "KMSFIX_SLACK_SECRET_ARN": secretARN,
		"KMSFIX_DEDUPE_WINDOW": "2h0m0s", "KMSFIX_KEY_OWNER_BUSES": otherAcct + "=" + ownerBus,
		"KMSFIX_TRUSTED_ACCOUNTS": otherAcct, "KMSFIX_TRUSTED_ORG_ID": trustedOrg, "KMSFIX_APPLY_EXPIRY": "24h0m0s",
	} {
		if env[k] != v {
			t.Errorf("env %s = %v, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"KMSFIX_TOPIC_ARN", "KMSFIX_TABLE_NAME", "KMSFIX_REMEDIATOR_ROLE_ARN"} {
		if env[k] == nil {
			t.Errorf("env %s missing", k)
		}
	}
	// Every variable is documented in docs/CONFIG.md (the stable interface).
	doc, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range env {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("env %s is not documented in docs/CONFIG.md", k)
		}
	}
	_, inv := s.one(t, "AWS::Lambda::EventInvokeConfig")
	qID, _ := s.one(t, "AWS::SQS::Queue")
	dest := asJSON(inv["DestinationConfig"])
	if !strings.Contains(dest, `"OnFailure":{"Destination":{"Fn::GetAtt":["`+qID+`","Arn"]}}`) {
		t.Errorf("on-failure destination = %s, want the dead-letter queue", dest)
	}
}

func TestAlarmsNotifyTopic(t *testing.T) {
	s := synth(t, "notify")
	topicID, _ := s.one(t, "AWS::SNS::Topic")
	alarms := s.resources("AWS::CloudWatch::Alarm")
	var metrics []string
	for id, a := range alarms {
		if asJSON(a["AlarmActions"]) != asJSON([]any{map[string]any{"Ref": topicID}}) {
			t.Errorf("alarm %s actions = %s, want the topic", id, asJSON(a["AlarmActions"]))
		}
		metrics = append(metrics, a["Namespace"].(string)+"/"+a["MetricName"].(string))
	}
	sort.Strings(metrics)
	want := []string{"AWS/Lambda/Errors", "AWS/Lambda/Throttles", "AWS/SQS/ApproximateNumberOfMessagesVisible"}
	if !slices.Equal(metrics, want) {
		t.Errorf("alarm metrics = %v, want %v", metrics, want)
	}
	// The topic policy lets CloudWatch publish (it replaces SNS's default policy).
	_, tp := s.one(t, "AWS::SNS::TopicPolicy")
	if !strings.Contains(asJSON(tp), `"Service":"cloudwatch.amazonaws.com"`) {
		t.Errorf("topic policy does not admit CloudWatch alarms: %s", asJSON(tp))
	}
}

func TestEmailSubscriptions(t *testing.T) {
	if n := len(synth(t, "notify").resources("AWS::SNS::Subscription")); n != 0 {
		t.Errorf("notify config: %d subscriptions, want 0", n)
	}
	var got []string
	for _, p := range synth(t, "full").resources("AWS::SNS::Subscription") {
		if p["Protocol"] != "email" {
			t.Errorf("protocol %v", p["Protocol"])
		}
		got = append(got, p["Endpoint"].(string))
	}
	sort.Strings(got)
	if !slices.Equal(got, []string{"ops@example.com", "sec@example.com"}) {
		t.Errorf("subscriptions = %v", got)
	}
}

// stmt is an IAM statement flattened for checks.
type stmt struct {
	policy, sid, effect string
	actions, resources  []string
	condition           map[string]any
}

func strs(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			} else {
				out = append(out, asJSON(x))
			}
		}
		return out
	case map[string]any:
		return []string{asJSON(t)}
	}
	return nil
}

func (s *synthesized) statements() []stmt {
	var out []stmt
	for id, p := range s.resources("AWS::IAM::Policy") {
		for _, raw := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := raw.(map[string]any)
			c, _ := st["Condition"].(map[string]any)
			sid, _ := st["Sid"].(string)
			out = append(out, stmt{policy: id, sid: sid, effect: st["Effect"].(string),
				actions: strs(st["Action"]), resources: strs(st["Resource"]), condition: c})
		}
	}
	return out
}

// starOnly: actions with no resource type, for which IAM accepts only "*".
var starOnly = []string{"kms:ListAliases", "access-analyzer:ValidatePolicy",
	"access-analyzer:CheckAccessNotGranted", "access-analyzer:CheckNoNewAccess"}

func TestLeastPrivilege(t *testing.T) {
	notifyActions := []string{
		"access-analyzer:CheckAccessNotGranted", "access-analyzer:CheckNoNewAccess", "access-analyzer:ValidatePolicy",
		"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
		"iam:GetGroupPolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
		"iam:GetUser", "iam:GetUserPolicy", "iam:ListAttachedGroupPolicies", "iam:ListAttachedRolePolicies",
		"iam:ListAttachedUserPolicies", "iam:ListGroupPolicies", "iam:ListGroupsForUser", "iam:ListRolePolicies",
		"iam:ListUserPolicies", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:GetKeyPolicy",
		"kms:ListAliases", "kms:ListGrants", "kms:ListResourceTags", "logs:CreateLogStream", "logs:PutLogEvents", "sns:Publish", "sqs:SendMessage",
	}
	applyOnly := []string{"iam:DeleteRolePolicy", "iam:DeleteUserPolicy", "iam:PutRolePolicy", "iam:PutUserPolicy",
		"kms:CreateGrant", "kms:GenerateMac", "kms:PutKeyPolicy", "kms:RetireGrant", "kms:VerifyMac"}
	fullExtra := []string{"events:PutEvents", "secretsmanager:GetSecretValue"}

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"notify", notifyActions},
		{"full", append(append(slices.Clone(notifyActions), applyOnly...), fullExtra...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := synth(t, tc.name)
			var allowed []string
			for _, st := range s.statements() {
				if st.effect != "Allow" {
					continue
				}
				for _, a := range st.actions {
					if strings.Contains(a, "*") {
						t.Errorf("%s: wildcard action %q", st.sid, a)
					}
					allowed = append(allowed, a)
				}
				for _, r := range st.resources {
					if r == "*" {
						for _, a := range st.actions {
							if !slices.Contains(starOnly, a) {
								t.Errorf("%s: Resource \"*\" for %s, which has a resource type", st.sid, a)
							}
						}
						if asJSON(st.condition) != `{"StringEquals":{"aws:RequestedRegion":{"Ref":"AWS::Region"}}}` {
							t.Errorf("%s: Resource \"*\" must be narrowed to the Region, condition %s", st.sid, asJSON(st.condition))
						}
					}
				}
			}
			slices.Sort(allowed)
			allowed = slices.Compact(allowed)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(allowed, want) {
				t.Errorf("allowed actions differ\n got: %v\nwant: %v", allowed, want)
			}
			// The function's own key is used only through SNS and SQS.
			for _, st := range s.statements() {
				if slices.Contains(st.actions, "kms:GenerateDataKey") && !strings.Contains(asJSON(st.condition), "kms:ViaService") {
					t.Errorf("%s: kms:GenerateDataKey without kms:ViaService", st.sid)
				}
			}
		})
	}
}

func findStmt(t *testing.T, s *synthesized, sid string) stmt {
	t.Helper()
	for _, st := range s.statements() {
		if st.sid == sid {
			return st
		}
	}
	t.Fatalf("no statement %s", sid)
	return stmt{}
}

func TestApplyModeIsFenced(t *testing.T) {
	s := synth(t, "full")
	if r := findStmt(t, s, "ReadOwnKeyPolicies").resources; len(r) != 1 || !strings.Contains(r[0], "AWS::AccountId") {
		t.Errorf("key policies readable beyond this account: %v", r)
	}
	// Every lever is fenced by the opt-in tag (StringEquals: present and exactly "enabled";
	// an untagged resource has no value, so the condition is false) and stays in this account.
	optIn := `"StringEquals":{"aws:ResourceTag/kmsfix:auto-fix":"enabled"`
	for _, sid := range []string{"ApplyIdentityPolicies", "ApplyKeyPolicies", "ApplyGrants", "RetireGrants"} {
		st := findStmt(t, s, sid)
		c := asJSON(st.condition)
		if sid != "RetireGrants" && !strings.Contains(c, optIn) {
			t.Errorf("%s is not fenced by the opt-in tag: %s", sid, c)
		}
		// Conditions that decide nothing: the resources are all in this account, and a Bool on a
		// key absent from the request is false (an Allow that never matches).
		for _, bad := range []string{"aws:ResourceAccount", "kms:GrantIsForAWSResource", "kms:BypassPolicyLockoutSafetyCheck", "StringNotEquals"} {
			if strings.Contains(c, bad) {
				t.Errorf("%s: condition on %s: %s", sid, bad, c)
			}
		}
		for _, r := range st.resources {
			if !strings.Contains(r, "AWS::AccountId") {
				t.Errorf("%s: resource %s is not in this account", sid, r)
			}
		}
	}
	grant := asJSON(findStmt(t, s, "ApplyGrants").condition)
	for _, want := range []string{`"ForAllValues:StringEquals":{"kms:GrantOperations":["Decrypt","GenerateDataKey"]}`,
		`"kms:RetiringPrincipal":{"Fn::GetAtt":["FunctionRole`, `"StringLike":{"kms:GranteePrincipal":[`, `":role/*"`, `":user/*"`} {
		if !strings.Contains(grant, want) {
			t.Errorf("grant condition lacks %s: %s", want, grant)
		}
	}
	roleID, _ := s.one(t, "AWS::IAM::Role")
	ownRole := asJSON(map[string]any{"Fn::GetAtt": []string{roleID, "Arn"}})
	keyID := stackKeyID(t, s)
	ownKey := asJSON(map[string]any{"Fn::GetAtt": []string{keyID, "Arn"}})
	for _, d := range []struct {
		sid, resource, condition string
		actions                  []string
	}{
		{"NeverChangeOwnRole", ownRole, "", []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy"}},
		{"NeverChangeCdkBootstrapRoles", ":role/cdk-hnb659fds-*", "", []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy"}},
		{"NeverChangeOwnKey", ownKey, "", []string{"kms:PutKeyPolicy", "kms:CreateGrant"}},
		{"NeverGrantToOwnOrBootstrapRoles", ":key/*", `"ArnLike":{"kms:GranteePrincipal":[{"Fn::GetAtt":["FunctionRole`, []string{"kms:CreateGrant"}},
		{"NeverBypassLockoutCheck", ":key/*", `{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}`, []string{"kms:PutKeyPolicy"}},
	} {
		st := findStmt(t, s, d.sid)
		if st.effect != "Deny" || !strings.Contains(strings.Join(st.resources, " "), d.resource) ||
			!strings.Contains(asJSON(st.condition), d.condition) {
			t.Errorf("%s: %+v", d.sid, st)
		}
		for _, a := range d.actions {
			if !slices.Contains(st.actions, a) {
				t.Errorf("%s does not deny %s", d.sid, a)
			}
		}
	}
	if c := asJSON(findStmt(t, s, "NeverGrantToOwnOrBootstrapRoles").condition); !strings.Contains(c, "cdk-hnb659fds-*") {
		t.Errorf("grants to the CDK bootstrap roles are not denied: %s", c)
	}
	// A dry run changes nothing, so it may change nothing.
	for _, st := range synth(t, "dryrun").statements() {
		for _, a := range st.actions {
			if st.effect == "Allow" && (strings.HasPrefix(a, "iam:Put") || strings.HasPrefix(a, "iam:Delete") ||
				a == "kms:PutKeyPolicy" || a == "kms:CreateGrant" || a == "kms:RetireGrant") {
				t.Errorf("dry run allows %s", a)
			}
		}
	}
	// The expiry sweeper exists only in apply mode.
	if !hasSchedule(s) {
		t.Error("apply mode: no expiry sweeper rule")
	}
	if hasSchedule(synth(t, "notify")) {
		t.Error("notify mode: unexpected sweeper rule")
	}
	for _, st := range synth(t, "notify").statements() {
		for _, a := range st.actions {
			if st.effect == "Allow" && (strings.HasPrefix(a, "iam:Put") || strings.HasPrefix(a, "iam:Delete") ||
				a == "kms:PutKeyPolicy" || a == "kms:CreateGrant") {
				t.Errorf("notify mode allows %s", a)
			}
		}
	}
}

func hasSchedule(s *synthesized) bool {
	for _, r := range s.resources("AWS::Events::Rule") {
		if r["ScheduleExpression"] == "rate(15 minutes)" {
			return true
		}
	}
	return false
}

// Routed accounts' topics and secrets are reachable by ARN, each once; without routes, none.
func TestRoutedTargetsByARNOnly(t *testing.T) {
	s := synth(t, "full")
	if st := findStmt(t, s, "PublishRoutedFindings"); !slices.Equal(st.actions, []string{"sns:Publish"}) || !slices.Equal(st.resources, []string{routedTopic}) {
		t.Errorf("PublishRoutedFindings = %v on %v", st.actions, st.resources)
	}
	if st := findStmt(t, s, "ReadRoutedSlackSecrets"); !slices.Equal(st.actions, []string{"secretsmanager:GetSecretValue"}) || !slices.Equal(st.resources, []string{routedSecret}) {
		t.Errorf("ReadRoutedSlackSecrets = %v on %v", st.actions, st.resources)
	}
	for _, st := range synth(t, "notify").statements() {
		if strings.Contains(st.sid, "Routed") {
			t.Errorf("statement %s without routes", st.sid)
		}
	}
}

func TestSecretByARNOnly(t *testing.T) {
	s := synth(t, "full")
	st := findStmt(t, s, "ReadSlackSecret")
	if !slices.Equal(st.resources, []string{secretARN}) {
		t.Errorf("secret resources = %v", st.resources)
	}
	if n := len(s.resources("AWS::SecretsManager::Secret")); n != 0 {
		t.Errorf("the stack must not create or hold the secret, found %d", n)
	}
	if c := asJSON(findStmt(t, s, "DecryptSlackSecret").condition); !strings.Contains(c, "secretsmanager.") {
		t.Errorf("secret key usable outside Secrets Manager: %s", c)
	}
	if strings.Contains(string(synth(t, "notify").raw), "secretsmanager:GetSecretValue") {
		t.Error("without a secret ARN the function must not read secrets")
	}
}

func TestCrossAccount(t *testing.T) {
	full := synth(t, "full")
	bus := findStmt(t, full, "SendKeyPolicyRequests")
	if !slices.Equal(bus.resources, []string{ownerBus}) || !slices.Equal(bus.actions, []string{"events:PutEvents"}) {
		t.Errorf("PutEvents statement = %+v", bus)
	}
	// Issue 15 item 3: the bus policy admits exactly the sender's remediator role (never the
	// account root nor "*"), only for this source and detail-type; the organization id only
	// narrows it further.
	for name, wantOrg := range map[string]bool{"full": true, "accounts-only": false} {
		s := full
		if name != "full" {
			s = synth(t, name)
		}
		policies := s.resources("AWS::Events::EventBusPolicy")
		if len(policies) != 1 {
			t.Fatalf("%s: want one bus policy, got %d: %s", name, len(policies), asJSON(policies))
		}
		var st map[string]any
		for _, pol := range policies {
			st, _ = pol["Statement"].(map[string]any)
		}
		if got := asJSON(st["Principal"]); got != `{"AWS":["`+senderRole+`"]}` {
			t.Errorf("%s: bus policy Principal = %s, want exactly the sender role", name, got)
		}
		if st["Effect"] != "Allow" || st["Action"] != "events:PutEvents" || st["NotPrincipal"] != nil {
			t.Errorf("%s: bus policy statement = %s", name, asJSON(st))
		}
		want := map[string]any{"events:source": "kmsfix.remediator", "events:detail-type": "KMS Key Policy Change Requested"}
		if wantOrg {
			want["aws:PrincipalOrgID"] = trustedOrg
		}
		if got := asJSON(st["Condition"]); got != asJSON(map[string]any{"StringEquals": want}) {
			t.Errorf("%s: bus policy Condition = %s, want %s", name, got, asJSON(map[string]any{"StringEquals": want}))
		}
		if all := asJSON(policies); strings.Contains(all, ":root") || strings.Contains(all, `"*"`) {
			t.Errorf("%s: bus policy admits a whole account or anyone: %s", name, all)
		}
	}
	requestRule := func(s *synthesized) map[string]any {
		for _, r := range s.resources("AWS::Events::Rule") {
			if ep, ok := r["EventPattern"].(map[string]any); ok && asJSON(ep["source"]) == `["kmsfix.remediator"]` {
				return ep
			}
		}
		return nil
	}
	ep := requestRule(full)
	if ep == nil {
		t.Fatal("no key-policy request rule")
	}
	if asJSON(ep["account"]) != `["`+otherAcct+`"]` {
		t.Errorf("the request rule must take only the senders' accounts, with an organization too: %s", asJSON(ep))
	}
	acc := requestRule(synth(t, "accounts-only"))
	if acc == nil || asJSON(acc["account"]) != `["`+otherAcct+`"]` {
		t.Errorf("accounts-only request rule = %s", asJSON(acc))
	}
	notify := synth(t, "notify")
	if requestRule(notify) != nil || len(notify.resources("AWS::Events::EventBusPolicy")) != 0 ||
		strings.Contains(string(notify.raw), "events:PutEvents") {
		t.Error("without trusted sender roles or buses there is no request rule, bus policy or PutEvents")
	}
}

func TestOptionalTrail(t *testing.T) {
	if n := len(synth(t, "notify").resources("AWS::CloudTrail::Trail")); n != 0 {
		t.Fatalf("trail created without createTrail: %d", n)
	}
	_, trail := synth(t, "full").one(t, "AWS::CloudTrail::Trail")
	if trail["IsLogging"] != true || trail["IsMultiRegionTrail"] != true || trail["EnableLogFileValidation"] != true ||
		trail["KMSKeyId"] == nil {
		t.Errorf("trail = %s", asJSON(trail))
	}
	// KMS events must not be excluded, and read-only events must be logged.
	for _, sel := range strs(trail["EventSelectors"]) {
		if strings.Contains(sel, "ExcludeManagementEventSources") || strings.Contains(sel, "WriteOnly") {
			t.Errorf("trail selector drops KMS read events: %s", sel)
		}
	}
}

func TestCdkNag(t *testing.T) {
	nagErrors := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, name := range []string{"notify", "full", "accounts-only"} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, name)
			var ann assertions.Annotations
			if err := try(func() { ann = assertions.Annotations_FromStack(s.stack) }); err != nil {
				t.Fatal(err)
			}
			if err := try(func() { ann.HasNoError(jsii.String("*"), nagErrors) }); err != nil {
				t.Errorf("unsuppressed cdk-nag errors: %v", err)
			}
		})
	}
	// The same check on a plainly non-compliant stack must fail: the Aspect really runs.
	t.Run("detects a violation", func(t *testing.T) {
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(outDir, "cdk.out-nag"))})
		stack := awscdk.NewStack(app, jsii.String("Bad"), nil)
		awssqs.NewQueue(stack, jsii.String("Plain"), &awssqs.QueueProps{Encryption: awssqs.QueueEncryption_UNENCRYPTED})
		awscdk.Aspects_Of(stack).Add(cdknag.NewAwsSolutionsChecks(nil), nil)
		err := try(func() { assertions.Annotations_FromStack(stack).HasNoError(jsii.String("*"), nagErrors) })
		if err == nil || !strings.Contains(err.Error(), "AwsSolutions-SQS") {
			t.Errorf("cdk-nag should report the unencrypted queue, got %v", err)
		}
	})
}

// toolPath finds a tool under .tools (KMSFIX_TOOLS, or the repository's .tools).
func toolPath(t *testing.T, rel string) string {
	t.Helper()
	root := os.Getenv("KMSFIX_TOOLS")
	if root == "" {
		root = "../.tools"
	}
	p := filepath.Join(root, rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make tools` (%v)", p, err)
	}
	return p
}

// guardRules assembles the Control Tower rules (minus infra/guard/disabled-ct-rules.txt) and the
// project rules in one directory.
func guardRules(t *testing.T) string {
	t.Helper()
	ct, err := filepath.Abs(toolPath(t, "node/node_modules/@cdklabs/cdk-validator-cfnguard/rules/control-tower/cfn-guard"))
	if err != nil {
		t.Fatal(err)
	}
	disabled := map[string]bool{}
	list, err := os.ReadFile("guard/disabled-ct-rules.txt")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(list), "\n") {
		if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(f[0], "#") {
			disabled[f[0]] = true
		} else if len(f) == 1 {
			t.Fatalf("disabled rule %s has no reason", f[0])
		}
	}
	dir := t.TempDir()
	n := 0
	err = filepath.WalkDir(ct, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".guard") {
			return err
		}
		if disabled[strings.TrimSuffix(d.Name(), ".guard")] {
			return nil
		}
		n++
		return os.Symlink(p, filepath.Join(dir, d.Name()))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 200 {
		t.Fatalf("only %d Control Tower rules found under %s", n, ct)
	}
	own, _ := filepath.Glob("guard/*.guard")
	for _, p := range own {
		abs, _ := filepath.Abs(p)
		if err := os.Symlink(abs, filepath.Join(dir, "kmsfix-"+filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runGuard(t *testing.T, rules string, template []byte) (string, error) {
	t.Helper()
	bin := toolPath(t, "node/node_modules/@cdklabs/cdk-validator-cfnguard/bin/ubuntu/x86_64/cfn-guard")
	f := filepath.Join(t.TempDir(), "template.json")
	if err := os.WriteFile(f, template, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "validate", "-r", rules, "-d", f, "--show-summary", "fail",
		"-o", "single-line-summary").CombinedOutput()
	return string(out), err
}

func TestCfnGuard(t *testing.T) {
	rules := guardRules(t)
	for _, name := range []string{"notify", "full", "accounts-only"} {
		t.Run(name, func(t *testing.T) {
			out, err := runGuard(t, rules, synth(t, name).raw)
			if err != nil {
				t.Errorf("cfn-guard failed (%v):\n%s", err, out)
			}
		})
	}
}

// TestGuardRulesCanFail breaks the template the ways the project rules forbid.
func TestGuardRulesCanFail(t *testing.T) {
	rules := guardRules(t)
	breakages := []struct {
		name, want string
		mutate     func(tmpl map[string]any)
	}{
		{"plain ENABLED rule", "KMSFIX.1", func(tmpl map[string]any) {
			for _, r := range tmpl["Resources"].(map[string]any) {
				res := r.(map[string]any)
				if res["Type"] == "AWS::Events::Rule" {
					res["Properties"].(map[string]any)["State"] = "ENABLED"
				}
			}
		}},
		// A Control Tower rule: proves the bundled rules are loaded, not only the project's.
		{"key rotation off", "ct-kms-pr-1", func(tmpl map[string]any) {
			for _, r := range tmpl["Resources"].(map[string]any) {
				res := r.(map[string]any)
				if res["Type"] == "AWS::KMS::Key" {
					res["Properties"].(map[string]any)["EnableKeyRotation"] = false
				}
			}
		}},
		{"wildcard action", "KMSFIX.3", func(tmpl map[string]any) { addStatement(tmpl, "kms:*", "arn:aws:kms:*:*:key/*") }},
		{"star resource", "KMSFIX.4", func(tmpl map[string]any) { addStatement(tmpl, "iam:GetRole", "*") }},
	}
	for _, b := range breakages {
		t.Run(b.name, func(t *testing.T) {
			var tmpl map[string]any
			if err := json.Unmarshal(synth(t, "notify").raw, &tmpl); err != nil {
				t.Fatal(err)
			}
			b.mutate(tmpl)
			out, err := runGuard(t, rules, []byte(asJSON(tmpl)))
			var exit *exec.ExitError
			if !errors.As(err, &exit) || !strings.Contains(out, b.want) {
				t.Errorf("cfn-guard should fail with %s, got %v:\n%s", b.want, err, out)
			}
		})
	}
}

func addStatement(tmpl map[string]any, action, resource string) {
	for _, r := range tmpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == "AWS::IAM::Policy" {
			doc := res["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)
			doc["Statement"] = append(doc["Statement"].([]any),
				map[string]any{"Effect": "Allow", "Action": action, "Resource": resource})
			return
		}
	}
}

// TestWildcardsOnlyWhereAWSRequiresThem walks every policy in the template (IAM, key, topic,
// queue, bus): an Allow may use "*" as its resource only in a key policy (where it means "this
// key") or for actions without a resource type, and the only wildcard action is the key
// policy's account statement (the AWS default that lets IAM policies grant use of the key and
// keeps it manageable).
func TestWildcardsOnlyWhereAWSRequiresThem(t *testing.T) {
	for _, name := range []string{"notify", "full"} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, name)
			for id, r := range s.json["Resources"].(map[string]any) {
				res := r.(map[string]any)
				isKeyPolicy := res["Type"] == "AWS::KMS::Key"
				var visit func(v any)
				visit = func(v any) {
					switch n := v.(type) {
					case []any:
						for _, x := range n {
							visit(x)
						}
					case map[string]any:
						if eff, ok := n["Effect"].(string); ok {
							if _, ok := n["NotAction"]; ok && eff == "Allow" {
								t.Errorf("%s: Allow with NotAction", id)
							}
							if eff == "Allow" {
								checkAllow(t, id, isKeyPolicy, n)
							}
							return
						}
						for _, x := range n {
							visit(x)
						}
					}
				}
				visit(res["Properties"])
			}
		})
	}
}

func checkAllow(t *testing.T, id string, isKeyPolicy bool, st map[string]any) {
	t.Helper()
	actions, resources := strs(st["Action"]), strs(st["Resource"])
	for _, a := range actions {
		if !strings.Contains(a, "*") {
			continue
		}
		principal := asJSON(st["Principal"])
		if isKeyPolicy && a == "kms:*" && strings.Contains(principal, `":iam::"`) && strings.Contains(principal, `":root"`) {
			continue // the key's account statement
		}
		t.Errorf("%s: wildcard action %s (principal %s)", id, a, principal)
	}
	if slices.Contains(resources, "*") && !isKeyPolicy {
		for _, a := range actions {
			if !slices.Contains(starOnly, a) {
				t.Errorf("%s: Resource \"*\" for %s", id, a)
			}
		}
	}
}

// stackKeyID is the stack's one encryption key; apply mode adds the audit key (HMAC_256,
// GENERATE_VERIFY_MAC, infra/apply.go), which only seals audit records.
func stackKeyID(t *testing.T, s *synthesized) string {
	t.Helper()
	var keyID string
	for id, k := range s.resources("AWS::KMS::Key") {
		if k["KeySpec"] == "HMAC_256" {
			if k["KeyUsage"] != "GENERATE_VERIFY_MAC" || !strings.HasPrefix(id, "AuditKey") {
				t.Errorf("HMAC key %s: %s", id, asJSON(k))
			}
			continue
		}
		if keyID != "" {
			t.Fatalf("more than one encryption key: %s and %s", keyID, id)
		}
		keyID = id
	}
	if keyID == "" {
		t.Fatal("no stack key")
	}
	return keyID
}
