package apply

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	// StatusNeedsReview: the revert could not be proven exact (what kmsfix wrote was changed
	// since, or a read never settled). Nothing more is removed automatically; the change stays
	// listed by `kmsfix applied`, keeps its finding from being applied again, and raises the
	// RevertNotExact metric until a person settles it (`kmsfix revert ID` tries again).
	StatusNeedsReview = "needs-review"
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
	// Role is the role that made the change: the function's own, or in the organization's
	// hub the kmsfix-apply role of Account. Reverts use the same account's role.
	Role       string
	Region     string // of the key (KMS levers)
	Target     string // role/user ARN or key ARN
	Name       string // inline policy name, statement Sid, grant name
	GrantID    string
	Patch      string // the patch applied (JSON)
	Finding    string // the report (JSON)
	Before     string // key policy as GetKeyPolicy returned it before; inline: empty
	After      string // key policy or inline policy as re-read after the change
	StartedAt  string
	AppliedAt  string
	ExpiresAt  string // when the sweeper reverts it
	EndedAt    string
	Error      string // last error of apply or revert (a failed revert is retried next sweep)
	Note       string // how the revert went, e.g. "key policy restored byte-for-byte"
	LeaseUntil string // Owner holds the change until then (RFC 3339); empty: nobody does
	Attempts   int    // revert attempts
	// Version counts the record's writes: every write is conditional on the version read,
	// so two invocations never both act on one change (the loser gets errLost).
	Version int
}

func (r *Record) fields() map[string]*string {
	return map[string]*string{
		"id": &r.ID, "status": &r.Status, "fingerprint": &r.Fingerprint, "event_id": &r.EventID,
		"owner": &r.Owner, "lever": &r.Lever, "account": &r.Account, "role": &r.Role, "region": &r.Region,
		"target": &r.Target, "name": &r.Name, "grant_id": &r.GrantID, "patch": &r.Patch,
		"finding": &r.Finding, "before": &r.Before, "after": &r.After, "started_at": &r.StartedAt,
		"applied_at": &r.AppliedAt, "revert_at": &r.ExpiresAt, "ended_at": &r.EndedAt,
		"error": &r.Error, "note": &r.Note, "lease_until": &r.LeaseUntil,
	}
}

// Expires parses ExpiresAt.
func (r *Record) Expires() time.Time {
	t, _ := time.Parse(time.RFC3339, r.ExpiresAt)
	return t
}

// leaseEnd is when the owner's hold on the change ends: LeaseUntil, or for a record written
// without one, StartedAt plus the lease.
func (r *Record) leaseEnd(lease time.Duration) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, r.LeaseUntil); err == nil {
		return t
	}
	return r.Started().Add(lease)
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
//	pk "apply#<id>",          sk "change":  the audit record, sealed (mac: see seal.go)
//	pk "applyfp#<address>",   sk "current": the change for a finding; a conditional put on it
//	                                       makes two events with one fingerprint one change.
//	                                       The address is the MAC of the fingerprint, so the
//	                                       fingerprint published in SNS does not name the item.
//	pk "apply#active",        sk "<id>":    one per change not yet closed; the sweeper queries
//	                                       this partition (no scan, no TTL needed)
//
// expires_at (the table's TTL) is set only on closed records, Retention after they end: TTL
// must never remove what the sweeper still has to revert.
type Store struct {
	DB    DynamoDB
	Table string
	// Sealer seals every record written and checks every record read; without it the store
	// neither reads nor writes records (nothing unchecked is ever acted on).
	Sealer Sealer
	// Retention is how long a closed record stays (expires_at); 0 means DefaultRetention,
	// a negative value keeps records forever.
	Retention time.Duration

	addrs sync.Map // fingerprint -> Address (an HMAC is deterministic)
}

// errNoSealer: the store has no audit key.
var errNoSealer = errors.New("audit: no audit integrity key is configured (KMSFIX_AUDIT_KEY_ARN), so records can be neither written nor trusted")

// sealed is the canonical text a record's MAC covers: every field, the revert attempts, and
// the table, so a record copied to another table or edited in any field fails the check.
func (s *Store) sealed(r *Record) []byte {
	m := map[string]string{"table": s.Table, "attempts": strconv.Itoa(r.Attempts), "version": strconv.Itoa(r.Version)}
	for name, p := range r.fields() {
		if name == "role" && *p == "" {
			continue // records written before the field existed keep their MAC
		}
		m[name] = *p
	}
	b, _ := json.Marshal(m) // map keys are written sorted: canonical
	return b
}

// Address is the item key of a fingerprint's pointer: its MAC, so knowing a fingerprint (it
// is in every SNS message) does not tell where its pointer is.
func (s *Store) Address(ctx context.Context, fp string) (string, error) {
	if s.Sealer == nil {
		return "", errNoSealer
	}
	if a, ok := s.addrs.Load(fp); ok {
		return a.(string), nil
	}
	mac, err := s.Sealer.Seal(ctx, []byte("fingerprint\x00"+fp))
	if err != nil {
		return "", err
	}
	if len(mac) < 16 {
		return "", fmt.Errorf("audit: a MAC of %d bytes is too short to address records", len(mac))
	}
	a := hex.EncodeToString(mac[:16])
	s.addrs.Store(fp, a)
	return a, nil
}

func (s *Store) pointerKey(ctx context.Context, fp string) (map[string]types.AttributeValue, error) {
	a, err := s.Address(ctx, fp)
	if err != nil {
		return nil, err
	}
	return key("applyfp#"+a, "current"), nil
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
	if s.Sealer == nil {
		return nil, errNoSealer
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
	if v, ok := out.Item["version"].(*types.AttributeValueMemberN); ok {
		r.Version, _ = strconv.Atoi(v.Value)
	}
	var mac []byte
	if v, ok := out.Item["mac"].(*types.AttributeValueMemberS); ok {
		mac, _ = base64.StdEncoding.DecodeString(v.Value)
	}
	if r.ID != id {
		return nil, fmt.Errorf("audit: record %s: %w: it names itself %q", id, ErrTampered, r.ID)
	}
	if err := s.Sealer.Check(ctx, s.sealed(&r), mac); err != nil {
		return nil, fmt.Errorf("audit: record %s: %w", id, err)
	}
	return &r, nil
}

// errLost means the record changed since it was read: another invocation owns the change now.
var errLost = errors.New("audit: the record changed since it was read; another invocation owns the change")

// Put writes the record and keeps the active index in step: the index item is written
// before a change can exist and removed only after it is closed. The write is conditional on
// the version the record was read at (a new record: that none exists), and bumps it.
func (s *Store) Put(ctx context.Context, r *Record, now time.Time) error {
	if s.Sealer == nil {
		return errNoSealer
	}
	read := r.Version
	next := *r
	next.Version = read + 1
	mac, err := s.Sealer.Seal(ctx, s.sealed(&next))
	if err != nil {
		return err
	}
	item := key("apply#"+r.ID, "change")
	item["mac"] = str(base64.StdEncoding.EncodeToString(mac))
	for name, p := range next.fields() {
		if *p != "" {
			item[name] = str(*p)
		}
	}
	item["attempts"] = &types.AttributeValueMemberN{Value: strconv.Itoa(next.Attempts)}
	item["version"] = &types.AttributeValueMemberN{Value: strconv.Itoa(next.Version)}
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
	in := &dynamodb.PutItemInput{TableName: &s.Table, Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(pk)"),
		ExpressionAttributeNames: map[string]string{"#v": "version"}}
	if read > 0 {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.Itoa(read)}}
	} else {
		in.ExpressionAttributeNames = nil
	}
	_, err = s.DB.PutItem(ctx, in)
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return fmt.Errorf("%w (change %s, %s)", errLost, r.ID, r.Status)
	}
	if err != nil {
		return fmt.Errorf("audit: put %s (%s): %w", r.ID, r.Status, err)
	}
	r.Version = next.Version
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
	k, err := s.pointerKey(ctx, fp)
	if err != nil {
		return nil, err
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.Table, Key: k, ConsistentRead: aws.Bool(true),
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
	item, err := s.pointerKey(ctx, fp)
	if err != nil {
		return err
	}
	item["id"], item["owner"], item["status"] = str(id), str(owner), str(StatusPending)
	item["claimed_at"] = str(now.UTC().Format(time.RFC3339Nano))
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
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
	item, err := s.pointerKey(ctx, fp)
	if err != nil {
		return err
	}
	item["id"], item["owner"], item["status"] = str(id), str(owner), str(status)
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
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
