package crossaccount

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SeenLog remembers the denials the receiver accepted a request for.
type SeenLog interface {
	// Accept records that a request for the sender's denial arrived in the EventBridge event
	// envelopeID, until until. It returns false when a request for that denial was accepted
	// before in another event (a replay); the same event again (Lambda's retry) is accepted.
	Accept(ctx context.Context, sender, denialEventID, envelopeID string, now, until time.Time) (bool, error)
}

// MemorySeenLog keeps accepted denials in the container's memory.
type MemorySeenLog struct {
	mu   sync.Mutex
	seen map[string]seenEntry
}

type seenEntry struct {
	envelope string
	until    time.Time
}

// Accept implements SeenLog.
func (m *MemorySeenLog) Accept(_ context.Context, sender, denial, envelope string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]seenEntry{}
	}
	for k, e := range m.seen {
		if !e.until.After(now) {
			delete(m.seen, k)
		}
	}
	k := sender + "#" + denial
	if e, ok := m.seen[k]; ok && e.envelope != envelope {
		return false, nil
	}
	m.seen[k] = seenEntry{envelope, until}
	return true, nil
}

// TableSeenLog keeps accepted denials in the shared table: pk
// "crossaccount#denial#<sender>#<denial event id>", sk "seen", written with a conditional put
// (no item, or the same envelope), so two containers never both accept one denial.
type TableSeenLog struct {
	DB    Table
	Table string
}

// Accept implements SeenLog.
func (t *TableSeenLog) Accept(ctx context.Context, sender, denial, envelope string, now, until time.Time) (bool, error) {
	item := map[string]ddbtypes.AttributeValue{
		"pk":          &ddbtypes.AttributeValueMemberS{Value: "crossaccount#denial#" + sender + "#" + denial},
		"sk":          &ddbtypes.AttributeValueMemberS{Value: "seen"},
		"envelope_id": &ddbtypes.AttributeValueMemberS{Value: envelope},
		"accepted_at": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		// Kept past the window: a request older than the window is refused as too old anyway.
		"expires_at": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(until.Add(24*time.Hour).Unix(), 10)},
	}
	_, err := t.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.Table), Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR envelope_id = :e"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":e": &ddbtypes.AttributeValueMemberS{Value: envelope}},
	})
	var cf *ddbtypes.ConditionalCheckFailedException
	switch {
	case errors.As(err, &cf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("crossaccount: record accepted denial %s of %s: %w", denial, sender, err)
	}
	return true, nil
}
