package main

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// The Lambda benchmarks (bench/lambda.sh runs them): the real bootstrap under the emulator
// against local-kms and the fakes, on sample 01 (same-account role, identity policy missing).

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkLambdaColdStart starts a new emulator and function per iteration and measures
// from process start to the first response.
func BenchmarkLambdaColdStart(b *testing.B) {
	s := loadSample(b, base)
	f := startBench(b, s)
	var (
		ds, inits, handlers []time.Duration
		calls               int
	)
	for b.Loop() {
		h := &testenv.ProcessHarness{}
		rie := emulator.StartRIE(h, bootstrap, f.vars)
		inv, err := rie.Invoke(context.Background(), s.event)
		d := time.Since(rie.Started)
		if err != nil || inv.Error {
			h.Close()
			b.Fatalf("invoke: %v %s", err, inv.Body)
		}
		ds = append(ds, d)
		line := benchLine(b, rie, s.item.EventID)
		calls += line.AWSCalls
		handlers = append(handlers, time.Duration(line.DurationMS*float64(time.Millisecond)))
		inits = append(inits, rieInit(b, rie))
		h.Close()
	}
	// cold = emulator start .. first response; init = the bootstrap's init as the emulator
	// reports it (process start .. ready for the first event); handler = the first event.
	b.ReportMetric(float64(median(ds).Microseconds())/1000, "ms-median-cold")
	b.ReportMetric(float64(median(inits).Microseconds())/1000, "ms-median-init")
	b.ReportMetric(float64(median(handlers).Microseconds())/1000, "ms-median-cold-handler")
	b.ReportMetric(float64(calls)/float64(len(ds)), "aws-calls/cold-event")
}

// BenchmarkLambdaWarm invokes one warm function repeatedly with the same event.
func BenchmarkLambdaWarm(b *testing.B) {
	s := loadSample(b, base)
	f := startBench(b, s)
	rie := emulator.StartRIE(b, bootstrap, f.vars)
	if _, err := rie.Invoke(context.Background(), s.event); err != nil {
		b.Fatal(err)
	}
	before := len(rie.LogLines(`"message":"event"`))
	var ds []time.Duration
	for b.Loop() {
		inv, err := rie.Invoke(context.Background(), s.event)
		if err != nil || inv.Error {
			b.Fatalf("invoke: %v %s", err, inv.Body)
		}
		ds = append(ds, inv.Duration)
	}
	all, err := rie.WaitFor(5*time.Second, before+len(ds), `"message":"event"`)
	if err != nil {
		b.Fatal(err)
	}
	lines := all[before:]
	total := 0
	for _, l := range lines {
		total += lineCalls(b, l)
	}
	b.ReportMetric(float64(median(ds).Microseconds())/1000, "ms-median-warm")
	b.ReportMetric(float64(total)/float64(max(len(lines), 1)), "aws-calls/warm-event")
}

type benchFn struct{ vars []string }

func startBench(b *testing.B, s sample) benchFn {
	b.Helper()
	d := s.item.Denial
	env := emulator.StartServices(b, emulator.ServicesOptions{Account: d.RecipientAccount, Region: d.Region, World: s.world})
	return benchFn{vars: append(env.Env(),
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"KMSFIX_TOPIC_ARN="+snsEmu.TopicARN,
		"KMSFIX_TABLE_NAME="+ownTable(b),
		"AWS_ENDPOINT_URL_SNS="+snsEmu.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+ddb.Endpoint,
	)}
}

func benchLine(b *testing.B, rie *emulator.RIE, id string) eventLine {
	b.Helper()
	lines, err := rie.WaitFor(5*time.Second, 1, `"message":"event"`, id)
	if err != nil {
		b.Fatalf("no log line: %v", err)
	}
	var e eventLine
	l := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(l[strings.Index(l, "{"):]), &e); err != nil {
		b.Fatalf("log line %q: %v", l, err)
	}
	return e
}

// rieInit reads the emulator's "INIT REPORT(durationMs: N)".
func rieInit(b *testing.B, rie *emulator.RIE) time.Duration {
	b.Helper()
	for _, l := range rie.LogLines("INIT REPORT(durationMs: ") {
		v := l[strings.Index(l, "durationMs: ")+len("durationMs: "):]
		ms, err := strconv.ParseFloat(strings.TrimRight(v, ") \r"), 64)
		if err == nil {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	b.Fatalf("no INIT REPORT in the emulator's log:\n%s", rie.Logs())
	return 0
}

// lineCalls reads aws_calls from a per-event log line.
func lineCalls(b *testing.B, line string) int {
	b.Helper()
	var e eventLine
	if err := json.Unmarshal([]byte(line[strings.Index(line, "{"):]), &e); err != nil {
		b.Fatalf("log line %q: %v", line, err)
	}
	return e.AWSCalls
}
