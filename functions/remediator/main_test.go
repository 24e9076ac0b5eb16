package main

// These tests run the real bootstrap (a host build, with -tags faultinject) under the Lambda
// Runtime Interface Emulator, against local-kms, fakes of IAM, STS and Access Analyzer behind
// the real SDK clients, and goaws (SNS) plus dynalite (DynamoDB) for the notifier.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

var (
	bootstrap string
	snsEmu    *emulator.Goaws
	ddb       *emulator.Dynalite
)

// tables numbers the DynamoDB tables tests create: each function container gets its own, so
// nothing one test (or one run under -count) writes is seen by another.
var tables atomic.Int64

// ownTable creates a fresh table in the shared dynalite and returns its name.
func ownTable(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("kmsfix-%d", tables.Add(1))
	ddb.CreateTable(t, name)
	return name
}

func TestMain(m *testing.M) {
	h := &testenv.ProcessHarness{}
	dir, err := os.MkdirTemp("", "kmsfix-bootstrap-")
	if err != nil {
		h.Fatalf("temp dir: %v", err)
	}
	h.Cleanup(func() { os.RemoveAll(dir) })
	bootstrap = filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc,faultinject", "-o", bootstrap, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		h.Fatalf("build bootstrap: %v\n%s", err, out)
	}
	snsEmu = emulator.StartGoaws(h, "kmsfix")
	ddb = emulator.StartDynalite(h)
	code := m.Run()
	h.Close()
	os.Exit(code)
}

// sample is one events/ directory.
type sample struct {
	name   string
	event  []byte
	world  *world.World
	expect struct {
		Diagnosis string `json:"diagnosis"`
		Ignored   any    `json:"ignored"`
	}
	item     cloudtrail.Item
	parseErr error // the sample is not one event (a log file): the function must drop it
}

func loadSample(t testing.TB, name string) sample {
	t.Helper()
	dir := filepath.Join("..", "..", "events", name)
	s := sample{name: name}
	var err error
	if s.event, err = os.ReadFile(filepath.Join(dir, "event.json")); err != nil {
		t.Fatal(err)
	}
	if s.world, err = world.Load(filepath.Join(dir, "world.json")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "expect.json")); err == nil {
		json.Unmarshal(b, &s.expect) // a log-file sample expects a list; only single events matter here
	}
	s.item, s.parseErr = cloudtrail.Parse(s.event)
	return s
}

// fn is one function container under the emulator, with its AWS emulators.
type fn struct {
	aws *emulator.Services
	rie *emulator.RIE
}

// start seeds the sample's world into fresh emulators (playing the event's account and
// Region) and starts the function; extra environment comes last and wins.
func start(t *testing.T, s sample, extra ...string) *fn {
	t.Helper()
	account, region := "111122223333", "eu-west-2"
	if d := s.item.Denial; d != nil {
		account, region = d.RecipientAccount, d.Region
	}
	env := emulator.StartServices(t, emulator.ServicesOptions{Account: account, Region: region, World: s.world})
	var sandbox []string
	if s.world != nil {
		sandbox = s.world.SandboxAccounts
	}
	vars := append(env.Env(),
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=20",
		"KMSFIX_TOPIC_ARN="+snsEmu.TopicARN,
		"KMSFIX_TABLE_NAME="+ownTable(t),
		"KMSFIX_SANDBOX_ACCOUNTS="+strings.Join(sandbox, ","),
		"AWS_ENDPOINT_URL_SNS="+snsEmu.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+ddb.Endpoint,
	)
	return &fn{aws: env, rie: emulator.StartRIE(t, bootstrap, append(vars, extra...))}
}

// invoke sends the event and returns the report the function answered with.
func (f *fn) invoke(t *testing.T, event []byte) (finding.Report, emulator.Invocation) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := len(f.rie.LogLines(`"message":"event"`))
	inv, err := f.rie.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, f.rie.Logs())
	}
	// An invocation that fails before the handler runs writes no event line; one that
	// answered does, but it may arrive after the answer. Tests that read the log see it.
	if !inv.Error {
		if _, err := f.rie.WaitFor(5*time.Second, before+1, `"message":"event"`); err != nil {
			t.Fatalf("no event line for the invocation: %v", err)
		}
	}
	var rep finding.Report
	if !inv.Error {
		if err := json.Unmarshal(inv.Body, &rep); err != nil {
			t.Fatalf("response %s: %v", inv.Body, err)
		}
	}
	return rep, inv
}

// eventLine is the function's per-event log line.
type eventLine struct {
	Message      string          `json:"message"`
	Level        string          `json:"level"`
	EventID      string          `json:"event_id"`
	Outcome      string          `json:"outcome"`
	Diagnosis    string          `json:"diagnosis"`
	AWSCalls     int             `json:"aws_calls"`
	AWSAttempts  int             `json:"aws_attempts"`
	Reason       string          `json:"reason"`
	Error        string          `json:"error"`
	World        json.RawMessage `json:"world"`
	DurationMS   float64         `json:"duration_ms"`
	RequestID    string          `json:"requestId"`
	Unknown      []string        `json:"unknown"`
	CallsByOpera map[string]int  `json:"aws_calls_by_operation"`
}

// eventLines returns the per-event log lines for an event id, in order.
func (f *fn) eventLines(t *testing.T, id string) []eventLine {
	t.Helper()
	var out []eventLine
	for _, l := range f.rie.LogLines(`"message":"event"`, id) {
		var e eventLine
		if err := json.Unmarshal([]byte(l[strings.Index(l, "{"):]), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

func (f *fn) lastLine(t *testing.T, id string) eventLine {
	t.Helper()
	if _, err := f.rie.WaitFor(5*time.Second, 1, `"message":"event"`, id); err != nil {
		t.Fatalf("no log line for event %s: %v", id, err)
	}
	lines := f.eventLines(t, id)
	return lines[len(lines)-1]
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkReproducible: the world in the log line, fed to the engine offline, gives the report
// the function answered (the check `kmsfix explain --world` relies on).
func checkReproducible(t *testing.T, s sample, rep finding.Report, line eventLine) {
	t.Helper()
	w, err := world.Parse(line.World)
	if err != nil {
		t.Fatalf("logged world: %v\n%s", err, line.World)
	}
	if got, want := asJSON(t, engine.Explain(s.item, w)), asJSON(t, rep); got != want {
		t.Errorf("offline report from the logged world differs:\noffline %s\n   live %s", got, want)
	}
}

func sampleNames(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("..", "..", "events", "*", "world.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no samples under events/: %v", err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	return names
}

// liveDiffers names the samples whose world lives partly in another account: the function
// cannot read another account's key policy or IAM, so live it knows less than the sample's
// world file and may decide differently. For those the test checks the diagnosis the live
// world supports (that offline, with the same world, the engine agrees) and that the
// finding says what it could not read.
func liveDiffers(s sample) bool {
	d := s.item.Denial
	return d != nil && (d.KeyAccount != d.RecipientAccount || d.Identity.Account != d.RecipientAccount)
}

// knowsAll says the sample's world knows the denial's key and principal.
func knowsAll(s sample) bool {
	d := s.item.Denial
	return s.world.Principal(d.Identity.PrincipalARN) != nil && (s.world.Key(d.KeyARN) != nil || s.world.KeyMissing(d.KeyARN))
}

// TestSamples runs every sample event with a world through the function, the world seeded
// into the emulators: local-kms holds the keys (policy, aliases, state set with
// PutKeyPolicy, DisableKey, ScheduleKeyDeletion), the IAM fake the principals.
func TestSamples(t *testing.T) {
	for _, name := range sampleNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := loadSample(t, name)
			f := start(t, s)
			rep, inv := f.invoke(t, s.event)
			if inv.Error {
				t.Fatalf("function error: %s\n%s", inv.Body, f.rie.Logs())
			}
			if s.parseErr != nil || s.item.Denial == nil {
				if rep.Ignored == "" {
					t.Errorf("want an ignored report, got %s", asJSON(t, rep))
				}
				return
			}
			line := f.lastLine(t, s.item.EventID)
			if line.Outcome != "finding" || line.Diagnosis != string(rep.Diagnosis) || line.AWSCalls == 0 {
				t.Errorf("log line = %+v", line)
			}
			checkReproducible(t, s, rep, line)
			if liveDiffers(s) {
				if len(rep.Unknown) == 0 && rep.Diagnosis != finding.Code(s.expect.Diagnosis) {
					t.Errorf("diagnosis %s differs from %s but the report names nothing unknown", rep.Diagnosis, s.expect.Diagnosis)
				}
				t.Logf("live (another account): %s (offline with the full world: %s); unknown: %v", rep.Diagnosis, s.expect.Diagnosis, rep.Unknown)
				return
			}
			if string(rep.Diagnosis) != s.expect.Diagnosis {
				t.Errorf("diagnosis = %s, want %s (%s)\nunknown: %v", rep.Diagnosis, s.expect.Diagnosis, rep.Detail, rep.Unknown)
			}
			// What the event itself leaves open (offline with the full world too) is not a read
			// the live path failed to make.
			offline := engine.Explain(s.item, s.world).Unknown
			if extra := slices.DeleteFunc(slices.Clone(rep.Unknown), func(u string) bool { return slices.Contains(offline, u) }); len(extra) > 0 && knowsAll(s) {
				t.Errorf("everything is readable in the function's account, yet unknown = %v", extra)
			}
			golden, err := os.ReadFile(filepath.Join("..", "..", "events", name, "golden.json"))
			if err != nil {
				return
			}
			var want finding.Report
			if err := json.Unmarshal(golden, &want); err != nil {
				t.Fatal(err)
			}
			// What the sample's world leaves unknown, live lookups fail to find (IAM says
			// NoSuchEntity): the same finding, with the failed reads named too.
			got := rep
			if !knowsAll(s) {
				got.Unknown, want.Unknown = nil, nil
				got.Unverified, want.Unverified = "", ""
			}
			if a, b := asJSON(t, got), asJSON(t, want); a != b {
				t.Errorf("live report differs from the offline golden report:\n  live %s\ngolden %s", a, b)
			}
		})
	}
}
