package crossaccount_test

// Forged and replayed key-policy change requests (issue 15 item 3). Each test fails if the
// weakness returns.

import (
	"context"
	"fmt"
	"github.com/kmsfix/kmsfix/internal/retry"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// envelopeWithID is envelope with a chosen EventBridge event id (each PutEvents gets its own).
func envelopeWithID(t *testing.T, id string, detail any) []byte {
	t.Helper()
	return []byte(strings.Replace(string(envelope(t, callerAcct, detail)), "7bf73129-1428-4cd3-a780-95db273d1602", id, 1))
}

func wantRejection(t *testing.T, err error, want string) {
	t.Helper()
	if !retry.IsPermanent(err) || !strings.Contains(retry.Reason(err), want) {
		t.Fatalf("got %v, want a rejection containing %q", err, want)
	}
}

// A request replayed in a new EventBridge event is refused, across containers (the seen log
// is the shared table, a conditional put); the same event again (Lambda's retry) is not.
func TestAttackReplayedRequestRefused(t *testing.T) {
	db := dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(emu.dynamo), Credentials: creds})
	table := fmt.Sprintf("kmsfix-replay-%d", time.Now().UnixNano())
	emulator.CreateDynamoTable(t, db, table)
	enr := keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)}
	first, second := receiver(t, enr), receiver(t, enr) // two containers
	first.Seen = &crossaccount.TableSeenLog{DB: db, Table: table}
	second.Seen = &crossaccount.TableSeenLog{DB: db, Table: table}
	detail := detailOf(t, callerReport(t, sampleKey))
	ctx := context.Background()
	if _, _, _, _, err := first.Receive(ctx, envelopeWithID(t, "ev-bridge-1", detail)); err != nil {
		t.Fatalf("first request: %v", err)
	}
	if _, _, _, _, err := second.Receive(ctx, envelopeWithID(t, "ev-bridge-1", detail)); err != nil {
		t.Fatalf("Lambda's retry of the same event: %v", err)
	}
	_, _, _, _, err := second.Receive(ctx, envelopeWithID(t, "ev-bridge-2", detail))
	wantRejection(t, err, "was accepted before (a replay)")
	// Without a shared log each container still refuses what it saw.
	mem := receiver(t, enr)
	if _, _, _, _, err := mem.Receive(ctx, envelopeWithID(t, "ev-bridge-3", detail)); err != nil {
		t.Fatal(err)
	}
	_, _, _, _, err = mem.Receive(ctx, envelopeWithID(t, "ev-bridge-4", detail))
	wantRejection(t, err, "a replay")
}

// Requests for denials too old or dated ahead, without their denial, or whose denial is not
// their finding's, are refused.
func TestAttackStaleAndForgedDenialsRefused(t *testing.T) {
	enr := keyWorld{key: sampleKey, policy: defaultKeyPolicy(ownerAcct)}
	base := callerReport(t, sampleKey)
	ctx := context.Background()
	cases := []struct {
		name   string
		now    time.Time
		tamper []func(map[string]any)
		want   string
	}{
		{"denial older than the window", sampleTime.Add(2 * time.Hour), nil, "too old to act on"},
		{"denial dated ahead", sampleTime.Add(-time.Hour), nil, "in the future"},
		{"no denial id", sampleTime.Add(time.Minute), []func(map[string]any){set("denial_event_id", nil)}, "does not carry its denial"},
		{"no denial time", sampleTime.Add(time.Minute), []func(map[string]any){set("denial_time", nil)}, "does not carry its denial"},
		{"re-dated request, finding left old", sampleTime.Add(3 * time.Hour),
			[]func(map[string]any){set("denial_time", sampleTime.Add(3*time.Hour).Format(time.RFC3339))}, "is not its finding's"},
		{"another denial id than the finding's", sampleTime.Add(time.Minute),
			[]func(map[string]any){set("denial_event_id", "00000000-0000-0000-0000-000000000000")}, "is not its finding's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := receiver(t, enr)
			rc.Now = func() time.Time { return c.now }
			m := detailOf(t, base)
			for _, f := range c.tamper {
				f(m)
			}
			_, _, _, _, err := rc.Receive(ctx, envelope(t, callerAcct, m))
			wantRejection(t, err, c.want)
		})
	}
}

// A key owner caps kmsfix's statements per key: requests for ever new buckets stop there.
func TestAttackStatementCapPerKey(t *testing.T) {
	pol := defaultKeyPolicy(ownerAcct)
	for i := range 3 {
		stmt := fmt.Sprintf(`,{"Sid":"KmsfixS3%012d","Effect":"Allow","Principal":{"AWS":"%s"},"Action":"kms:Decrypt","Resource":"*"}`, i, principal)
		pol = pol[:strings.LastIndex(pol, "]")] + stmt + pol[strings.LastIndex(pol, "]"):]
	}
	ctx := context.Background()
	rc := receiver(t, keyWorld{key: sampleKey, policy: pol})
	rc.MaxStatements = 3
	_, _, _, _, err := rc.Receive(ctx, envelope(t, callerAcct, detailOf(t, callerReport(t, sampleKey))))
	wantRejection(t, err, "already has 3 kmsfix statements (the cap is 3")
	rc = receiver(t, keyWorld{key: sampleKey, policy: pol})
	rc.MaxStatements = 4
	if _, _, _, _, err := rc.Receive(ctx, envelope(t, callerAcct, detailOf(t, callerReport(t, sampleKey)))); err != nil {
		t.Fatalf("under the cap: %v", err)
	}
}
