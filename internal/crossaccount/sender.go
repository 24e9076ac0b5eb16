package crossaccount

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/kmsfix/kmsfix/internal/finding"
)

// PutEventsAPI is the EventBridge call the sender makes; *eventbridge.Client satisfies it.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// SentLog remembers which requests went out, so one is sent once per window.
type SentLog interface {
	// Sent says whether the request was sent and its window has not ended at now.
	Sent(ctx context.Context, id string, now time.Time) (bool, error)
	// MarkSent records a request sent at now, for window.
	MarkSent(ctx context.Context, id string, now time.Time, window time.Duration) error
}

// Sender sends the key-policy half of cross-account findings to the key owners' buses.
type Sender struct {
	Events PutEventsAPI
	// Buses maps a key account to its bus ARN; "*" is any other account
	// (KMSFIX_KEY_OWNER_BUSES, config.Config.KeyOwnerBuses).
	Buses  map[string]string
	Log    SentLog       // nil: remember in this container only
	Window time.Duration // one request per finding per window (default 1h)
	Logger *slog.Logger
	Now    func() time.Time

	once sync.Once
	mem  *MemorySentLog
}

// Outcomes of Send, for the caller's log.
const (
	Sent      = "sent"
	Duplicate = "duplicate"  // sent within the window
	NoBus     = "no-bus"     // no bus configured for the key's account
	NotNeeded = "not-needed" // not a cross-account finding with a key-policy half
	TooLarge  = "too-large"  // the event exceeds EventBridge's entry limit
)

// BusFor returns the bus of a key account: its own entry, else "*".
func BusFor(buses map[string]string, account string) string {
	if b, ok := buses[account]; ok {
		return b
	}
	return buses["*"]
}

// KeyPolicyPatch returns the finding's key-policy statement for the key's account, if any.
func KeyPolicyPatch(r finding.Report) (finding.Patch, bool) {
	for _, p := range r.Patches {
		if p.Kind == finding.KindKeyPolicyStatement && p.Statement != nil && p.Account == r.KeyAccount && p.Target == r.Key {
			return p, true
		}
	}
	return finding.Patch{}, false
}

// NewRequest is the request for a finding and its key-policy patch.
func NewRequest(r finding.Report, p finding.Patch, now time.Time) Request {
	return Request{
		Version:       Version,
		RequestID:     finding.Fingerprint(r),
		RequestedAt:   now.UTC().Format(time.RFC3339),
		SenderAccount: r.PrincipalAccount,
		Key:           r.Key,
		KeyAccount:    r.KeyAccount,
		Statement:     p.Statement,
		DenialEventID: r.EventID,
		DenialTime:    r.EventTime,
		Finding:       r,
	}
}

// Send puts a key-policy change request for the finding on its key owner's bus, once per
// window. It returns an error only for what a retry may fix (EventBridge failed, or refused
// the entry); the other outcomes are logged and returned as a word.
func (s *Sender) Send(ctx context.Context, r finding.Report) (string, error) {
	if r.Ignored != "" || r.Diagnosis != finding.CrossAccountAccessMissing || r.KeyAccount == "" || r.KeyAccount == r.PrincipalAccount {
		return NotNeeded, nil
	}
	p, ok := KeyPolicyPatch(r)
	if !ok {
		return NotNeeded, nil // the key policy already allows: only the caller's half is missing
	}
	lg := s.logger().With("event_id", r.EventID, "key", r.Key, "key_account", r.KeyAccount)
	bus := BusFor(s.Buses, r.KeyAccount)
	if bus == "" {
		lg.Info("crossaccount: no key-owner bus for the key's account; the key-policy half is only in this account's notification")
		return NoBus, nil
	}
	now := s.now()
	id := finding.Fingerprint(r)
	log := s.sentLog()
	if sent, err := log.Sent(ctx, id, now); err != nil {
		// Sending twice beats not sending: the key owner's notifier dedupes too.
		lg.Warn("crossaccount: sent-request log unavailable, sending anyway", "request_id", id, "error", err.Error())
	} else if sent {
		lg.Info("crossaccount: request already sent in this window", "request_id", id, "bus", bus)
		return Duplicate, nil
	}
	detail, err := json.Marshal(NewRequest(r, p, now))
	if err != nil {
		return "", fmt.Errorf("crossaccount: encode request: %w", err)
	}
	if n := len(detail) + len(Source) + len(DetailType) + len(r.Key); n > maxEntryBytes {
		lg.Error("crossaccount: request too large for EventBridge, not sent", "request_id", id, "bytes", n)
		return TooLarge, nil
	}
	out, err := s.Events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(bus),
		Source:       aws.String(Source),
		DetailType:   aws.String(DetailType),
		Detail:       aws.String(string(detail)),
		Resources:    []string{r.Key},
		Time:         aws.Time(now),
	}}})
	if err != nil {
		return "", fmt.Errorf("crossaccount: put request on %s: %w", bus, err)
	}
	if out.FailedEntryCount > 0 {
		why := "unknown"
		if len(out.Entries) > 0 {
			why = aws.ToString(out.Entries[0].ErrorCode) + ": " + aws.ToString(out.Entries[0].ErrorMessage)
		}
		return "", fmt.Errorf("crossaccount: EventBridge refused the request for %s: %s", bus, why)
	}
	if err := log.MarkSent(ctx, id, now, s.window()); err != nil {
		lg.Warn("crossaccount: could not record the sent request; a repeat may send it again", "request_id", id, "error", err.Error())
	}
	lg.Info("crossaccount: key-policy change request sent", "request_id", id, "bus", bus)
	return Sent, nil
}

func (s *Sender) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s.Logger
}

func (s *Sender) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Sender) window() time.Duration {
	if s.Window <= 0 {
		return time.Hour
	}
	return s.Window
}

func (s *Sender) sentLog() SentLog {
	if s.Log != nil {
		return s.Log
	}
	s.once.Do(func() { s.mem = &MemorySentLog{} })
	return s.mem
}

// MemorySentLog keeps sent requests in the container's memory.
type MemorySentLog struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// Sent implements SentLog.
func (m *MemorySentLog) Sent(_ context.Context, id string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.until[id].After(now), nil
}

// MarkSent implements SentLog.
func (m *MemorySentLog) MarkSent(_ context.Context, id string, now time.Time, window time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = map[string]time.Time{}
	}
	for k, t := range m.until { // keep the map small
		if !t.After(now) {
			delete(m.until, k)
		}
	}
	m.until[id] = now.Add(window)
	return nil
}

// Table is the DynamoDB calls TableSentLog makes; *dynamodb.Client satisfies it.
type Table interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// TableSentLog keeps sent requests in the shared table (KMSFIX_TABLE_NAME), so every
// container agrees: pk "crossaccount#sent#<request id>", sk "sent", window_end (unix ms) and
// the expires_at TTL. Two containers racing on one finding may both send; the key owner's
// notifier dedupes that.
type TableSentLog struct {
	DB    Table
	Table string
}

func (t *TableSentLog) key(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "crossaccount#sent#" + id},
		"sk": &ddbtypes.AttributeValueMemberS{Value: "sent"},
	}
}

// Sent implements SentLog.
func (t *TableSentLog) Sent(ctx context.Context, id string, now time.Time) (bool, error) {
	out, err := t.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.Table), Key: t.key(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("crossaccount: read sent request %s: %w", id, err)
	}
	v, ok := out.Item["window_end"].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return false, nil
	}
	end, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return false, errors.New("crossaccount: sent request " + id + " has a malformed window_end")
	}
	return time.UnixMilli(end).After(now), nil // the TTL deletes late: compare
}

// MarkSent implements SentLog.
func (t *TableSentLog) MarkSent(ctx context.Context, id string, now time.Time, window time.Duration) error {
	item := t.key(id)
	end := now.Add(window)
	item["sent_at"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)}
	item["window_end"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(end.UnixMilli(), 10)}
	item["expires_at"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(end.Add(24*time.Hour).Unix(), 10)}
	if _, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.Table), Item: item}); err != nil {
		return fmt.Errorf("crossaccount: record sent request %s: %w", id, err)
	}
	return nil
}
