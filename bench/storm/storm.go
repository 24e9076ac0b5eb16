// Command storm replays a storm of CloudTrail KMS denials through the remediator's handler
// against real parts (dynalite for DynamoDB, goaws for SNS, a Slack webhook receiver, a
// Secrets Manager fake) and checks that every distinct finding is notified exactly once on
// each channel, none lost, with the repeats counted. `make storm` runs the full size.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// config sizes a storm.
type config struct {
	Events     int // denial events
	Findings   int // distinct findings among them (principal x bucket)
	Containers int // Lambda containers: handlers with their own notifier and caches
	Workers    int // concurrent invocations (Lambda runs one at a time per container)
	Seed       uint64
}

// result is what a storm measured and checked.
type result struct {
	Events, Findings       int
	Slack, SNS             int
	Duration               time.Duration
	EventsPerSec           float64
	HandlerErrors          int64
	PeakHeapMiB            float64    // largest heap in use seen while the storm ran
	QuarterPeakMiB         [4]float64 // the same per quarter of the events: flat means no growth per event
	HeapBeforeMiB          float64    // after a GC, before the storm
	HeapAfterMiB           float64    // after a GC, after the storm
	MaxRSSMiB              float64    // the Go process (handler, receivers, fakes)
	DynaliteRSSMiB         float64
	GoawsRSSMiB            float64
	Problems               []string
	DistinctSlack          int
	DistinctSNS            int
	CountsChecked, CountOK int
}

const (
	templateDir = "events/01-identity-policy-missing"
	topicName   = "kmsfix-storm"
	tableName   = "kmsfix-storm"
	secretARN   = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:kmsfix/slack-Storm1"
)

// run starts the parts, replays the storm, and checks it.
func run(ctx context.Context, h testenv.Harness, cfg config) (*result, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmpl, base, err := loadTemplate(root)
	if err != nil {
		return nil, err
	}
	dyn := emulator.StartDynalite(h)
	dyn.CreateTable(h, tableName)
	sns := emulator.StartGoaws(h, topicName)
	slack := awsfake.NewSlackReceiver(h)
	secrets := awsfake.NewSecrets(h)
	secrets.Put(secretARN, slack.WebhookURL)

	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	handlers := make([]*remediator.Handler, cfg.Containers)
	for i := range handlers {
		n, err := notify.New(notify.Config{
			TopicARN: sns.TopicARN, Table: tableName, SlackSecretARN: secretARN,
			Window: time.Hour, Propagation: 10 * time.Minute, Logger: discard,
		}, notify.Clients{SNS: sns.Client(3), DynamoDB: dyn.Client(3), Secrets: secrets.Client()})
		if err != nil {
			return nil, err
		}
		handlers[i] = &remediator.Handler{Enricher: worldEnricher{base}, Notifier: n, Log: discard}
	}

	// Events are made on the fly (memory measures the pipeline, not the input), in a shuffled
	// order so repeats of one finding interleave with the others as in a real batch failure.
	order := rand.New(rand.NewPCG(cfg.Seed, 1)).Perm(cfg.Events)
	events := make(chan int, cfg.Workers)
	go func() {
		defer close(events)
		for _, i := range order {
			events <- i
		}
	}()

	res := &result{Events: cfg.Events, Findings: cfg.Findings}
	runtime.GC()
	res.HeapBeforeMiB = heapMiB()
	stop := make(chan struct{})
	var peak atomic.Uint64
	var done atomic.Int64
	var quarters [4]atomic.Uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		sampleHeap(stop, &peak, func(heap uint64) {
			q := &quarters[min(3, int(done.Load()*4/int64(cfg.Events)))]
			if heap > q.Load() {
				q.Store(heap)
			}
		})
	}()

	start := time.Now()
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Value
	for w := range cfg.Workers {
		wg.Go(func() {
			hd := handlers[w%len(handlers)]
			for i := range events {
				ev, err := makeEvent(tmpl, i, cfg.Findings)
				if err == nil {
					_, err = hd.Handle(ctx, ev)
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	res.Duration = time.Since(start)
	close(stop)
	<-sampled
	for i := range quarters {
		res.QuarterPeakMiB[i] = float64(quarters[i].Load()) / (1 << 20)
	}
	res.EventsPerSec = float64(cfg.Events) / res.Duration.Seconds()
	res.HandlerErrors = errs.Load()
	res.PeakHeapMiB = float64(peak.Load()) / (1 << 20)
	runtime.GC()
	res.HeapAfterMiB = heapMiB()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res.MaxRSSMiB = float64(ru.Maxrss) / 1024
	}
	res.DynaliteRSSMiB = float64(dyn.PeakRSS()) / 1024
	res.GoawsRSSMiB = float64(sns.PeakRSS()) / 1024

	if e := firstErr.Load(); e != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("%d handler errors, first: %s", res.HandlerErrors, e))
	}
	check(ctx, res, cfg, slack, sns, dyn)
	return res, nil
}

var slackFingerprint = regexp.MustCompile("fingerprint `([0-9a-f]{32})`")

// check counts what arrived and compares the store's counts with what was sent in.
func check(ctx context.Context, res *result, cfg config, slack *awsfake.SlackReceiver, sns *emulator.Goaws, dyn *emulator.Dynalite) {
	res.Slack, res.SNS = slack.Count(), sns.Receiver.Count()
	if res.Slack != cfg.Findings || res.SNS != cfg.Findings {
		res.Problems = append(res.Problems, fmt.Sprintf("%d Slack and %d SNS messages, want %d each", res.Slack, res.SNS, cfg.Findings))
	}
	seenSlack := map[string]bool{}
	for _, p := range slack.Payloads() {
		if m := slackFingerprint.FindSubmatch(p); m != nil {
			seenSlack[string(m[1])] = true
		}
	}
	seenSNS := map[string]bool{}
	for _, d := range sns.Receiver.Deliveries() {
		seenSNS[d.Attributes["fingerprint"]] = true
	}
	res.DistinctSlack, res.DistinctSNS = len(seenSlack), len(seenSNS)
	if len(seenSlack) != cfg.Findings || len(seenSNS) != cfg.Findings {
		res.Problems = append(res.Problems, fmt.Sprintf("%d distinct findings on Slack and %d on SNS, want %d", len(seenSlack), len(seenSNS), cfg.Findings))
	}
	// Every fingerprint notified must have counted all of its events.
	want := map[string]int{}
	for f := range cfg.Findings {
		want[f2fp(f)] = 0
	}
	for i := range cfg.Events {
		want[f2fp(i%cfg.Findings)]++
	}
	client := dyn.Client(3)
	for fp, n := range want {
		res.CountsChecked++
		if !seenSNS[fp] || !seenSlack[fp] {
			res.Problems = append(res.Problems, "finding "+fp+" was not notified")
			continue
		}
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(tableName), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "notify#fp#" + fp},
				"sk": &types.AttributeValueMemberS{Value: "state"},
			},
		})
		if err != nil {
			res.Problems = append(res.Problems, "read "+fp+": "+err.Error())
			continue
		}
		total, since := num(out.Item["total"]), num(out.Item["since"])
		if total != n || since != n-1 {
			res.Problems = append(res.Problems, fmt.Sprintf("finding %s: total %d since %d, want %d and %d", fp, total, since, n, n-1))
			continue
		}
		res.CountOK++
	}
}

func num(v types.AttributeValue) int {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return -1
	}
	var x int
	fmt.Sscan(n.Value, &x)
	return x
}

// The storm's findings: finding f is role app/storm-<f/10> reading bucket storm-data-<f%10>.
func roleOf(f int) string   { return fmt.Sprintf("storm-%03d", f/10) }
func bucketOf(f int) string { return fmt.Sprintf("storm-data-%d", f%10) }

const (
	account = "210987654321"
	keyARN  = "arn:aws:kms:eu-west-1:210987654321:key/6f3c1a2e-8d4b-4e7a-9c15-2b7d90e4a3f1"
)

// f2fp is the fingerprint the engine's report for finding f has.
func f2fp(f int) string {
	return finding.FingerprintOf("arn:aws:iam::"+account+":role/app/"+roleOf(f), keyARN, []string{"kms:Decrypt"}, "identity-policy-missing", bucketOf(f))
}

// makeEvent is event i of the storm: finding i%findings, its own event id, session and object.
func makeEvent(tmpl map[string]any, i, findings int) (json.RawMessage, error) {
	f := i % findings
	role := roleOf(f)
	detail := clone(tmpl["detail"]).(map[string]any)
	ui := detail["userIdentity"].(map[string]any)
	session := fmt.Sprintf("%s-task-%05d", role, i)
	ui["arn"] = "arn:aws:sts::" + account + ":assumed-role/" + role + "/" + session
	ui["principalId"] = "AROASTORM" + role + ":" + session
	issuer := ui["sessionContext"].(map[string]any)["sessionIssuer"].(map[string]any)
	issuer["arn"] = "arn:aws:iam::" + account + ":role/app/" + role
	issuer["userName"] = role
	detail["errorMessage"] = "User: " + ui["arn"].(string) + " is not authorized to perform: kms:Decrypt on resource: " + keyARN +
		" because no identity-based policy allows the kms:Decrypt action"
	detail["requestParameters"].(map[string]any)["encryptionContext"] = map[string]any{
		"aws:s3:arn": fmt.Sprintf("arn:aws:s3:::%s/batch/2026-11-28/part-%05d.parquet", bucketOf(f), i),
	}
	id := fmt.Sprintf("5703a11d-0000-4000-8000-%012d", i)
	detail["eventID"] = id
	env := map[string]any{}
	for k, v := range tmpl {
		env[k] = v
	}
	env["id"] = "eb-" + id
	env["detail"] = detail
	return json.Marshal(env)
}

// clone deep-copies decoded JSON.
func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = clone(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = clone(e)
		}
		return s
	}
	return v
}

// worldEnricher stands in for live enrichment: every storm role has the template role's
// policies, and the key is the template's.
type worldEnricher struct{ base *world.World }

func (e worldEnricher) World(_ context.Context, d *cloudtrail.Denial) *world.World {
	w := *e.base
	w.Principals = map[string]*world.Principal{}
	for _, p := range e.base.Principals {
		w.Principals[d.Identity.PrincipalARN] = p
		break
	}
	return &w
}

func loadTemplate(root string) (map[string]any, *world.World, error) {
	dir := filepath.Join(root, templateDir)
	b, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("storm template: %w", err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(b, &tmpl); err != nil {
		return nil, nil, fmt.Errorf("storm template %s: %w", dir, err)
	}
	w, err := world.Load(filepath.Join(dir, "world.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("storm world: %w", err)
	}
	if len(w.Principals) != 1 {
		return nil, nil, fmt.Errorf("storm world %s: want one principal, got %d", dir, len(w.Principals))
	}
	return tmpl, w, nil
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

func heapMiB() float64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

func sampleHeap(stop <-chan struct{}, peak *atomic.Uint64, each func(uint64)) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var m runtime.MemStats
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			each(m.HeapInuse)
		}
	}
}
