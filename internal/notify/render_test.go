package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./internal/notify -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended.\ngot:\n%s", path, got)
	}
}

func slackJSON(t *testing.T, n Notice) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(SlackMessage(n)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extraNotices are golden cases beyond one per code: repeats, an applied change, a dry run.
func extraNotices(t *testing.T, reports map[finding.Code]finding.Report) map[string]Notice {
	repeat := NewNotice(reports[finding.IdentityPolicyMissing])
	repeat.Repeats, repeat.LastSent = 9999, time.Date(2026, 11, 28, 8, 14, 7, 0, time.UTC)

	r := reports[finding.IdentityPolicyMissing]
	r.Applied = &finding.Applied{
		ID: "chg-20261128-091408-3f8c1c9e", Lever: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN,
		Name: "kmsfix-decrypt-app-data", AppliedAt: "2026-11-28T09:14:08Z", ExpiresAt: "2026-11-29T09:14:08Z",
		RevertCommand: "aws iam delete-role-policy --role-name reader --policy-name kmsfix-decrypt-app-data",
	}
	applied := NewNotice(r)

	r = reports[finding.KeyPolicyMissing]
	r.Applied = &finding.Applied{
		ID: "chg-dry-run", Lever: finding.KindKeyPolicyStatement, Account: acctApp, Target: keyARN,
		Name: "KmsfixAppReaderDecrypt", DryRun: true,
		Calls: []string{"kms:PutKeyPolicy KeyId=" + keyARN + " PolicyName=default (policy with statement KmsfixAppReaderDecrypt appended)"},
	}
	dry := NewNotice(r)

	// The organization's hub applied both halves of a cross-account fix, each in its account.
	r = reports[finding.CrossAccountAccessMissing]
	var halves []finding.Applied
	for i, p := range r.Patches {
		halves = append(halves, finding.Applied{
			ID: fmt.Sprintf("chg-hub-half-%d", i+1), Lever: p.Kind, Account: p.Account,
			Role: "arn:aws:iam::" + p.Account + ":role/kmsfix-apply", Target: p.Target, Name: p.Name,
			AppliedAt: "2026-11-28T09:14:08Z", ExpiresAt: "2026-11-29T09:14:08Z",
			// As apply.Settings.RevertCommand writes it in the hub (the break-glass role, the audit key).
			RevertCommand: fmt.Sprintf("kmsfix revert chg-hub-half-%d --table kmsfix-hub --region eu-west-1 --hub "+
				"--role arn:aws:iam::999988887777:role/kmsfix-break-glass "+
				"--audit-key arn:aws:kms:eu-west-1:999988887777:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", i+1),
		})
	}
	if len(halves) != 2 {
		t.Fatalf("the cross-account sample has %d patches, want 2", len(halves))
	}
	r.Applied, r.AppliedMore = &halves[0], halves[1:]
	hubBoth := NewNotice(r)
	return map[string]Notice{"repeat-after-window": repeat, "applied": applied, "dry-run": dry, "applied-hub-both-halves": hubBoth}
}

// goldenNotices is every diagnosis code's notice and the extra cases, by golden file name.
func goldenNotices(t *testing.T) map[string]Notice {
	t.Helper()
	reports := sampleReports(t)
	cases := map[string]Notice{}
	for _, c := range finding.AllCodes {
		cases[string(c)] = NewNotice(reports[c])
	}
	for name, n := range extraNotices(t, reports) {
		cases[name] = n
	}
	return cases
}

// TestSlackGolden renders every diagnosis code (and the extra cases) and holds the payloads
// to golden files and to Slack's limits.
func TestSlackGolden(t *testing.T) {
	cases := goldenNotices(t)
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			got := slackJSON(t, n)
			checkSlackLimits(t, got)
			golden(t, filepath.Join("slack", name+".json"), got)
		})
	}
}

// TestGoldenFilesCoverEveryCode fails when a code has no golden payload.
func TestGoldenFilesCoverEveryCode(t *testing.T) {
	for _, c := range finding.AllCodes {
		for _, p := range []string{"slack/" + string(c) + ".json", "sns/" + string(c) + ".txt"} {
			if _, err := os.Stat(filepath.Join("testdata", "golden", p)); err != nil {
				t.Errorf("no golden file for %s: %v", c, err)
			}
		}
	}
}

// checkSlackLimits reads the payload as Slack would (plain JSON) and checks Block Kit limits.
func checkSlackLimits(t *testing.T, payload []byte) {
	t.Helper()
	var msg struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal(payload, &msg); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	if msg.Text == "" {
		t.Error("no fallback text (notifications show it)")
	}
	if len(msg.Blocks) == 0 || len(msg.Blocks) > MaxBlocks {
		t.Errorf("%d blocks, want 1..%d", len(msg.Blocks), MaxBlocks)
	}
	textOf := func(v any) string {
		m, _ := v.(map[string]any)
		s, _ := m["text"].(string)
		return s
	}
	chars := func(s string) int { return len([]rune(s)) }
	code := 0
	for i, b := range msg.Blocks {
		switch b["type"] {
		case "header":
			if n := chars(textOf(b["text"])); n == 0 || n > MaxHeaderText {
				t.Errorf("block %d: header of %d characters", i, n)
			}
		case "section":
			if n := chars(textOf(b["text"])); n > MaxSectionText {
				t.Errorf("block %d: section text of %d characters", i, n)
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > MaxFields {
				t.Errorf("block %d: %d fields", i, len(fields))
			}
			for _, f := range fields {
				if n := chars(textOf(f)); n > MaxFieldText {
					t.Errorf("block %d: field of %d characters", i, n)
				}
			}
			if b["text"] == nil && len(fields) == 0 {
				t.Errorf("block %d: section without text or fields", i)
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > MaxContextElems {
				t.Errorf("block %d: %d context elements", i, len(els))
			}
			for _, e := range els {
				if n := chars(textOf(e)); n > MaxSectionText {
					t.Errorf("block %d: context text of %d characters", i, n)
				}
			}
		case "rich_text":
			for _, e := range b["elements"].([]any) {
				for _, el := range e.(map[string]any)["elements"].([]any) {
					n := chars(textOf(el))
					code += n
					if n > MaxCodeText {
						t.Errorf("block %d: code block of %d characters", i, n)
					}
				}
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 25 {
				t.Errorf("block %d: %d action elements", i, len(els))
			}
			for _, e := range els {
				m := e.(map[string]any)
				if n := chars(textOf(m["text"])); n > MaxButtonText {
					t.Errorf("block %d: button text of %d characters", i, n)
				}
				if u, _ := m["url"].(string); len(u) > MaxURL || !strings.HasPrefix(u, "https://") {
					t.Errorf("block %d: button url %q", i, u)
				}
			}
		default:
			t.Errorf("block %d: unexpected type %v", i, b["type"])
		}
	}
	if code > MaxCodeTotal {
		t.Errorf("code blocks hold %d characters, budget %d", code, MaxCodeTotal)
	}
}

// TestSNSGolden holds the e-mail text, subject and attributes of every code to golden files.
func TestSNSGolden(t *testing.T) {
	cases := goldenNotices(t)
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			in, err := PublishInput("arn:aws:sns:us-east-1:111122223333:kmsfix", n)
			if err != nil {
				t.Fatal(err)
			}
			subj := *in.Subject
			if len(subj) >= 100 || strings.ContainsAny(subj, "\r\n") {
				t.Errorf("subject %q: %d characters", subj, len(subj))
			}
			for _, c := range subj {
				if c > 0x7e || c < 0x20 {
					t.Errorf("subject %q has non-ASCII %q", subj, c)
				}
			}
			var parts map[string]string
			if err := json.Unmarshal([]byte(*in.Message), &parts); err != nil {
				t.Fatalf("message structure: %v", err)
			}
			var report map[string]any
			if err := json.Unmarshal([]byte(parts["default"]), &report); err != nil {
				t.Fatalf("default is not the report JSON: %v", err)
			}
			if report["diagnosis"] != string(n.Report.Diagnosis) || report["event_id"] != n.Report.EventID {
				t.Errorf("report JSON: diagnosis %v, event_id %v", report["diagnosis"], report["event_id"])
			}
			for _, k := range []string{"diagnosis", "principal_account", "key_account", "severity", "auto_apply"} {
				if v, ok := in.MessageAttributes[k]; k != "principal_account" && (!ok || *v.StringValue == "") {
					t.Errorf("attribute %s missing", k)
				}
			}
			var attrs []string
			for k, v := range in.MessageAttributes {
				attrs = append(attrs, k+"="+*v.StringValue+" ("+*v.DataType+")")
			}
			sort.Strings(attrs)
			out := fmt.Sprintf("Subject: %s\nAttributes: %s\nSMS: %s\n\n%s", subj, strings.Join(attrs, ", "), parts["sms"], parts["email"])
			golden(t, filepath.Join("sns", name+".txt"), []byte(out))
		})
	}
}

func TestHeadline(t *testing.T) {
	reports := sampleReports(t)
	r := reports[finding.IdentityPolicyMissing]
	r.Bucket, r.Object = "bucket", "key"
	want := "role app/reader cannot decrypt s3://bucket/key: no identity policy allows kms:Decrypt"
	if got := Headline(r); got != want {
		t.Errorf("Headline = %q, want %q", got, want)
	}
	tests := []struct {
		name string
		edit func(*finding.Report)
		want string
	}{
		{"put", func(r *finding.Report) { r.Actions = []string{"kms:GenerateDataKey"} }, "role app/reader cannot encrypt s3://bucket/key"},
		{"bucket key", func(r *finding.Report) { r.Object = "" }, "role app/reader cannot decrypt s3://bucket:"},
		{"user", func(r *finding.Report) { r.Principal = "arn:aws:iam::111122223333:user/alice" }, "user alice cannot decrypt"},
		{"anonymous", func(r *finding.Report) { r.Principal, r.PrincipalType = "", "anonymous" }, "anonymous caller cannot decrypt"},
		{"copy", func(r *finding.Report) { r.Actions = []string{"kms:Decrypt", "kms:GenerateDataKey"} }, "cannot decrypt or encrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := r
			tt.edit(&r)
			if got := Headline(r); !strings.Contains(got, tt.want) {
				t.Errorf("Headline = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	r := sampleReports(t)[finding.IdentityPolicyMissing]
	fp := finding.Fingerprint(r)
	if len(fp) != 32 {
		t.Fatalf("fingerprint %q", fp)
	}
	same := []func(*finding.Report){
		func(r *finding.Report) { r.Object = "another/object" },
		func(r *finding.Report) { r.EventID = "another-event" },
		func(r *finding.Report) { r.Actions = []string{"kms:GenerateDataKey", "kms:Decrypt"} },
	}
	base := r
	base.Actions = []string{"kms:Decrypt", "kms:GenerateDataKey"}
	for i, edit := range same {
		x := base
		edit(&x)
		if finding.Fingerprint(x) != finding.Fingerprint(base) {
			t.Errorf("edit %d changed the fingerprint", i)
		}
	}
	differ := []func(*finding.Report){
		func(r *finding.Report) { r.Bucket = "other" },
		func(r *finding.Report) { r.Diagnosis = finding.KeyPolicyMissing },
		func(r *finding.Report) { r.Principal = "arn:aws:iam::111122223333:role/other" },
		func(r *finding.Report) { r.Key = xKeyARN },
		func(r *finding.Report) { r.Actions = []string{"kms:Decrypt"} },
	}
	for i, edit := range differ {
		x := base
		edit(&x)
		if finding.Fingerprint(x) == finding.Fingerprint(base) {
			t.Errorf("edit %d kept the fingerprint", i)
		}
	}
	r.Fingerprint = "given"
	if finding.Fingerprint(r) != "given" {
		t.Error("a report's own fingerprint must be kept")
	}
}

// TestHugePolicyShortened: a policy too long for Slack is cut with a note, and the SNS copy
// keeps it whole.
func TestHugePolicyShortened(t *testing.T) {
	r := sampleReports(t)[finding.IdentityPolicyMissing]
	var stmts []string
	for i := range 300 {
		stmts = append(stmts, fmt.Sprintf(`{"Sid":"S%03d","Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/%08d-0000-4000-8000-000000000000"}`, i, i))
	}
	huge := mustDoc(t, `{"Version":"2012-10-17","Statement":[`+strings.Join(stmts, ",")+`]}`)
	inline, err := json.Marshal(huge)
	if err != nil {
		t.Fatal(err)
	}
	longCmd := "aws iam put-role-policy --role-name reader --policy-name kmsfix-huge --policy-document '" + string(inline) + "'"
	r.Patches = []finding.Patch{{Kind: finding.KindIdentityPolicy, Account: acctApp, Target: roleARN,
		Name: "kmsfix-huge", Policy: huge, Commands: []string{longCmd}}}
	n := NewNotice(r)
	payload := slackJSON(t, n)
	checkSlackLimits(t, payload)
	s := string(payload)
	for _, want := range []string{"characters shown", "Shortened to fit Slack", "SNS copy", "Open CloudTrail event", ReproduceCommand,
		"take it from the SNS copy, patches[0].commands[0]"} {
		if !strings.Contains(s, want) {
			t.Errorf("payload lacks %q", want)
		}
	}
	in, err := PublishInput("arn:aws:sns:us-east-1:111122223333:kmsfix", n)
	if err != nil {
		t.Fatal(err)
	}
	var parts map[string]string
	if err := json.Unmarshal([]byte(*in.Message), &parts); err != nil {
		t.Fatal(err)
	}
	var back finding.Report
	if err := json.Unmarshal([]byte(parts["default"]), &back); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "put-role-policy --role-name reader --policy-name kmsfix-huge") {
		t.Error("a command too long for Slack was cut instead of pointed to")
	}
	if back.Patches[0].Commands[0] != longCmd {
		t.Error("the SNS copy does not keep the whole command")
	}
	if got := len(back.Patches[0].Policy.Statement); got != 300 {
		t.Errorf("SNS report keeps %d statements, want 300", got)
	}
	if len(*in.Message) > MaxSNSMessage {
		t.Errorf("SNS message of %d bytes", len(*in.Message))
	}
}

// TestManyPatchesKeepBlockLimit: more patches than 50 blocks hold are cut with a pointer to SNS.
func TestManyPatchesKeepBlockLimit(t *testing.T) {
	r := sampleReports(t)[finding.IdentityPolicyMissing]
	p := r.Patches[0]
	for range 40 {
		r.Patches = append(r.Patches, p)
	}
	payload := slackJSON(t, NewNotice(r))
	checkSlackLimits(t, payload)
	for _, want := range []string{"more changes than a Slack message holds", "Open CloudTrail event", ReproduceCommand} {
		if !strings.Contains(string(payload), want) {
			t.Errorf("payload lacks %q", want)
		}
	}
}

func TestReportJSONAddsNotification(t *testing.T) {
	r := sampleReports(t)[finding.KeyDisabled]
	n := NewNotice(r)
	n.Repeats, n.LastSent = 7, time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	b, err := ReportJSON(n)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	for _, k := range []string{"event_id", "diagnosis", "detail", "principal", "principal_account", "key", "key_account", "region", "actions", "patches", "auto_apply", "verified"} {
		if _, ok := got[k]; !ok {
			t.Errorf("contract field %s missing", k)
		}
	}
	if p, ok := got["patches"].([]any); !ok || len(p) != 0 {
		t.Errorf("patches = %v, want []", got["patches"])
	}
	note, _ := got["notification"].(map[string]any)
	if note["repeats_since_last"] != float64(7) || note["fingerprint"] != n.Fingerprint || note["last_sent"] != "2026-11-28T08:00:00Z" {
		t.Errorf("notification = %v", note)
	}
	if got["fingerprint"] != n.Fingerprint {
		t.Errorf("fingerprint = %v", got["fingerprint"])
	}
}

func TestConsoleURLs(t *testing.T) {
	reports := sampleReports(t)
	r := reports[finding.IdentityPolicyMissing]
	if got, want := KeyConsoleURL(r), "https://us-east-1.console.aws.amazon.com/kms/home?region=us-east-1#/kms/keys/1234abcd-12ab-34cd-56ef-1234567890ab"; got != want {
		t.Errorf("key URL = %s", got)
	}
	if got, want := EventConsoleURL(r), "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/3f8c1c9e-6b0a-4d8e-9e52-6f1b2a7c9d10"; got != want {
		t.Errorf("event URL = %s", got)
	}
	if got := KeyConsoleURL(reports[finding.AWSManagedKeyCrossAccount]); !strings.Contains(got, "#/kms/defaultKeys/5e6f7a8b-") {
		t.Errorf("AWS managed key URL = %s", got)
	}
}

func TestSubjectShortened(t *testing.T) {
	r := sampleReports(t)[finding.CrossAccountAccessMissing]
	r.Principal = "arn:aws:iam::111122223333:role/" + strings.Repeat("very-long-path/", 10) + "reader-ü"
	s := Subject(NewNotice(r))
	if len(s) > MaxSubject || !strings.HasSuffix(s, "...") {
		t.Errorf("subject %q (%d)", s, len(s))
	}
}

// TestEngineReportsRender renders what the engine really produced for the sample events
// (events/*/golden.json, one report per line) and holds every message to the limits.
func TestEngineReportsRender(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "*", "golden.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample reports under events/: %v", err)
	}
	codes := map[finding.Code]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		for dec.More() {
			var r finding.Report
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if r.Ignored != "" {
				continue
			}
			codes[r.Diagnosis] = true
			t.Run(filepath.Base(filepath.Dir(f))+"/"+r.EventID, func(t *testing.T) {
				n := NewNotice(r)
				checkSlackLimits(t, slackJSON(t, n))
				in, err := PublishInput("arn:aws:sns:us-east-1:111122223333:kmsfix", n)
				if err != nil {
					t.Fatal(err)
				}
				if len(*in.Subject) >= 100 {
					t.Errorf("subject %q", *in.Subject)
				}
			})
		}
	}
	t.Logf("%d diagnosis codes among the sample reports", len(codes))
}
