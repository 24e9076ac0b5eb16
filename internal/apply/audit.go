package apply

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Statuses of a change.
const (
	StatusPending    = "pending"     // audit written, change maybe made: recover or roll back
	StatusApplied    = "applied"     // made and verified; reverted at expires_at
	StatusReverted   = "reverted"    // removed at expiry or by `kmsfix revert`
	StatusRolledBack = "rolled-back" // removed because it failed verification or recovery
)

// Closed says the change is over: nothing of it remains in the account.
func Closed(status string) bool {
	return status == StatusReverted || status == StatusRolledBack
}

// Record is the audit record of one change. Times are RFC 3339 UTC.
type Record struct {
	ID          string
	Status      string
	Fingerprint string
	EventID     string // the CloudTrail event that caused it
	Owner       string // the event whose invocation holds the pending lease
	Lever       string // identity-policy, key-policy-statement, grant
	Account     string
	Region      string // of the key (KMS levers)
	Target      string // role/user ARN or key ARN
	Name        string // inline policy name, statement Sid, grant name
	GrantID     string
	Patch       string // the patch applied (JSON)
	Finding     string // the report (JSON)
	Before      string // key policy as GetKeyPolicy returned it before; inline: empty
	After       string // key policy or inline policy as re-read after the change
	StartedAt   string
	AppliedAt   string
	ExpiresAt   string // when the sweeper reverts it
	EndedAt     string
	Error       string // last error of apply or revert (a failed revert is retried next sweep)
	Note        string // how the revert went, e.g. "key policy restored byte-for-byte"
	Attempts    int    // revert attempts
}

func (r *Record) fields() map[string]*string {
	return map[string]*string{
		"id": &r.ID, "status": &r.Status, "fingerprint": &r.Fingerprint, "event_id": &r.EventID,
		"owner": &r.Owner, "lever": &r.Lever, "account": &r.Account, "region": &r.Region,
		"target": &r.Target, "name": &r.Name, "grant_id": &r.GrantID, "patch": &r.Patch,
		"finding": &r.Finding, "before": &r.Before, "after": &r.After, "started_at": &r.StartedAt,
		"applied_at": &r.AppliedAt, "revert_at": &r.ExpiresAt, "ended_at": &r.EndedAt,
		"error": &r.Error, "note": &r.Note,
	}
}

// Expires parses ExpiresAt.
func (r *Record) Expires() time.Time {
	t, _ := time.Parse(time.RFC3339, r.ExpiresAt)
	return t
}

// Started parses StartedAt.
func (r *Record) Started() time.Time {
	t, _ := time.Parse(time.RFC3339, r.StartedAt)
	return t
}

// DynamoDB is what the audit store needs; *dynamodb.Client satisfies it.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store keeps audit records in the shared table. Item layout (pk/sk strings; the notifier
// uses the "notify#" prefix):
//
//	pk "apply#<id>",          sk "change":  the audit record
//	pk "applyfp#<fingerprint>", sk "current": the change for a finding; a conditional put on it
//	                                       makes two events with one fingerprint one change
//	pk "apply#active",        sk "<id>":    one per change not yet closed; the sweeper queries
//	                                       this partition (no scan, no TTL needed)
//
// expires_at (the table's TTL) is set only on closed records, Retention after they end: TTL
// must never remove what the sweeper still has to revert.
type Store struct {
	DB    DynamoDB
	Table string
	// Retention is how long a closed record stays (expires_at); 0 means DefaultRetention,
	// a negative value keeps records forever.
	Retention time.Duration
}

const activePK = "apply#active"

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)}
}

// Get returns the record, or nil when there is none.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.Table, Key: key("apply#"+id, "change"), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("audit: get %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var r Record
	for name, p := range r.fields() {
		if v, ok := out.Item[name].(*types.AttributeValueMemberS); ok {
			*p = v.Value
		}
	}
	if v, ok := out.Item["attempts"].(*types.AttributeValueMemberN); ok {
		r.Attempts, _ = strconv.Atoi(v.Value)
	}
	return &r, nil
}

// Put writes the record and keeps the active index in step: the index item is written
// before a change can exist and removed only after it is closed.
func (s *Store) Put(ctx context.Context, r *Record, now time.Time) error {
	item := key("apply#"+r.ID, "change")
	for name, p := range r.fields() {
		if *p != "" {
			item[name] = str(*p)
		}
	}
	item["attempts"] = &types.AttributeValueMemberN{Value: strconv.Itoa(r.Attempts)}
	if keep := s.Retention; Closed(r.Status) && keep >= 0 {
		if keep == 0 {
			keep = DefaultRetention
		}
		item["expires_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(keep).Unix(), 10)}
	}
	if !Closed(r.Status) {
		if err := s.putActive(ctx, r); err != nil {
			return err
		}
	}
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: item}); err != nil {
		return fmt.Errorf("audit: put %s (%s): %w", r.ID, r.Status, err)
	}
	if Closed(r.Status) {
		if _, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.Table, Key: key(activePK, r.ID)}); err != nil {
			return fmt.Errorf("audit: unindex %s: %w", r.ID, err)
		}
	}
	return nil
}

func (s *Store) putActive(ctx context.Context, r *Record) error {
	item := key(activePK, r.ID)
	item["status"] = str(r.Status)
	if r.ExpiresAt != "" {
		item["revert_at"] = str(r.ExpiresAt)
	}
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: item}); err != nil {
		return fmt.Errorf("audit: index %s: %w", r.ID, err)
	}
	return nil
}

// Active lists the ids of changes not yet closed.
func (s *Store) Active(ctx context.Context) ([]string, error) {
	var ids []string
	var start map[string]types.AttributeValue
	for {
		out, err := s.DB.Query(ctx, &dynamodb.QueryInput{
			TableName:                 &s.Table,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(activePK)},
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("audit: list active changes: %w", err)
		}
		for _, it := range out.Items {
			if v, ok := it["sk"].(*types.AttributeValueMemberS); ok {
				ids = append(ids, v.Value)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return ids, nil
		}
		start = out.LastEvaluatedKey
	}
}

// Pointer is the change a fingerprint currently has.
type Pointer struct {
	ID, Owner, Status string
	Claimed           time.Time
}

// Pointer returns the fingerprint's pointer, or nil.
func (s *Store) Pointer(ctx context.Context, fp string) (*Pointer, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.Table, Key: key("applyfp#"+fp, "current"), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("audit: get fingerprint %s: %w", fp, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	p := &Pointer{}
	claimed := ""
	for name, dst := range map[string]*string{"id": &p.ID, "owner": &p.Owner, "status": &p.Status, "claimed_at": &claimed} {
		if v, ok := out.Item[name].(*types.AttributeValueMemberS); ok {
			*dst = v.Value
		}
	}
	p.Claimed, _ = time.Parse(time.RFC3339Nano, claimed)
	return p, nil
}

// errClaimed means another change holds the fingerprint.
var errClaimed = errors.New("another change holds this finding")

// Claim points the fingerprint at a new change, unless another change that is not closed
// holds it. Re-claiming with the same id (a retry) succeeds.
func (s *Store) Claim(ctx context.Context, fp, id, owner string, now time.Time) error {
	item := key("applyfp#"+fp, "current")
	item["id"], item["owner"], item["status"] = str(id), str(owner), str(StatusPending)
	item["claimed_at"] = str(now.UTC().Format(time.RFC3339Nano))
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.Table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk) OR #id = :id OR #st IN (:r, :rb)"),
		ExpressionAttributeNames: map[string]string{
			"#id": "id", "#st": "status",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id": str(id), ":r": str(StatusReverted), ":rb": str(StatusRolledBack),
		},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return errClaimed
	}
	if err != nil {
		return fmt.Errorf("audit: claim fingerprint %s: %w", fp, err)
	}
	return nil
}

// SetPointer records the status of the fingerprint's change, if it is still this change.
func (s *Store) SetPointer(ctx context.Context, fp, id, owner, status string) error {
	item := key("applyfp#"+fp, "current")
	item["id"], item["owner"], item["status"] = str(id), str(owner), str(status)
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.Table,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #id = :id"),
		ExpressionAttributeNames:  map[string]string{"#id": "id"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(id)},
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return nil // a newer change owns the fingerprint now
	}
	if err != nil {
		return fmt.Errorf("audit: set fingerprint %s: %w", fp, err)
	}
	return nil
}

func deleteActive(table, id string) *dynamodb.DeleteItemInput {
	return &dynamodb.DeleteItemInput{TableName: &table, Key: key(activePK, id)}
}
