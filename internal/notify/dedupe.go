package notify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Table is the DynamoDB calls the dedupe store makes.
type Table interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Item layout in the shared table (pk/sk strings, expires_at TTL):
//
//	pk "notify#fp#<fingerprint>", sk "state": one per finding. owner is the event whose message
//	the current window belongs to; window_start/window_end bound it (unix ms); hold_until holds
//	the finding back after an automatic change; since counts events held back since the last
//	message, total all events seen; slack and sns are the delivery state of the owner's message.
//	pk "notify#event#<CloudTrail eventID>", sk "seen": written once per event, so a retried
//	invocation is recognised.
const (
	attrPK, attrSK   = "pk", "sk"
	skState, skSeen  = "state", "seen"
	markerTTL        = 24 * time.Hour // Lambda retries an asynchronous event for at most 6 hours
	stateTTLAfterEnd = 7 * 24 * time.Hour
)

// Delivery states of one channel for the current window's message.
const (
	statePending = "pending" // not delivered yet (or failed in a way a retry may fix)
	stateSent    = "sent"
	stateFailed  = "failed" // failed for good: a retry will not try again
	stateOff     = "off"    // channel not configured
)

func fpKey(fp string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s("notify#fp#" + fp), attrSK: s(skState)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func ms(t time.Time) types.AttributeValue { return n(t.UnixMilli()) }

// store is the dedupe state in DynamoDB. Every decision is a conditional write, so Lambda
// containers racing on one finding agree on who sends.
type store struct {
	db     Table
	table  string
	window time.Duration
}

// fpState is the finding item as read.
type fpState struct {
	Found              bool
	Owner              string
	WindowStart        time.Time
	WindowEnd, HoldEnd time.Time
	Since, Total       int
	MsgRepeats         int       // repeats the current window's message announces
	MsgLastSent        time.Time // the time of the previous message it announces
	Slack, SNS         string
	WindowEndKnown     bool
	HoldUntilKnown     bool
}

func (st fpState) active(now time.Time) bool {
	return (st.WindowEndKnown && st.WindowEnd.After(now)) || (st.HoldUntilKnown && st.HoldEnd.After(now))
}

func parseState(item map[string]types.AttributeValue) fpState {
	st := fpState{Found: len(item) > 0}
	str := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	num := func(k string) (int64, bool) {
		if v, ok := item[k].(*types.AttributeValueMemberN); ok {
			x, err := strconv.ParseInt(v.Value, 10, 64)
			return x, err == nil
		}
		return 0, false
	}
	st.Owner, st.Slack, st.SNS = str("owner"), str("slack"), str("sns")
	if x, ok := num("window_start"); ok && x > 0 {
		st.WindowStart = time.UnixMilli(x)
	}
	if x, ok := num("window_end"); ok {
		st.WindowEnd, st.WindowEndKnown = time.UnixMilli(x), true
	}
	if x, ok := num("hold_until"); ok {
		st.HoldEnd, st.HoldUntilKnown = time.UnixMilli(x), true
	}
	if x, ok := num("since"); ok {
		st.Since = int(x)
	}
	if x, ok := num("total"); ok {
		st.Total = int(x)
	}
	if x, ok := num("msg_repeats"); ok {
		st.MsgRepeats = int(x)
	}
	if x, ok := num("msg_last_sent"); ok && x > 0 {
		st.MsgLastSent = time.UnixMilli(x)
	}
	return st
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// markEvent records that this event was seen; false means it was seen before (a retry).
func (d *store) markEvent(ctx context.Context, eventID string, now time.Time) (bool, error) {
	_, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table),
		Item: map[string]types.AttributeValue{
			attrPK: s("notify#event#" + eventID), attrSK: s(skSeen),
			"seen_at": ms(now), "expires_at": n(now.Add(markerTTL).Unix()),
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": "pk"},
	})
	switch {
	case err == nil:
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, fmt.Errorf("dedupe: mark event %s: %w", eventID, err)
}

// countRepeat counts an event as a repeat if a window or a hold is running for the finding
// and belongs to another event; false means no window is running.
func (d *store) countRepeat(ctx context.Context, fp, eventID string, now time.Time) (bool, error) {
	_, err := d.db.UpdateItem(ctx, updateFP(d.table, fp,
		"ADD #since :one, #total :one SET #last_seen = :now",
		"attribute_exists(#pk) AND (#window_end > :now OR #hold_until > :now) AND (attribute_not_exists(#owner) OR #owner <> :e)",
		map[string]types.AttributeValue{":one": n(1), ":now": ms(now), ":e": s(eventID)}))
	switch {
	case err == nil:
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, fmt.Errorf("dedupe: count repeat of %s: %w", fp, err)
}

// claim opens a new window owned by eventID when none (and no hold) is running, and returns
// the state before it: its since is the number of events held back since the last message.
func (d *store) claim(ctx context.Context, fp, eventID string, now time.Time, slackState, snsState string, r summary) (fpState, bool, error) {
	old, ok, err := d.openWindow(ctx, fp, eventID, now, slackState, snsState, r, "",
		"attribute_not_exists(#pk) OR (#window_end <= :now AND (attribute_not_exists(#hold_until) OR #hold_until <= :now))", nil)
	if err != nil {
		return fpState{}, false, fmt.Errorf("dedupe: claim window of %s: %w", fp, err)
	}
	return old, ok, nil
}

// announce opens a new window owned by eventID for the message announcing an automatic
// change, whatever window or hold is running: a change is announced by the report that made
// it, never counted as a repeat of another event's message. The condition makes it once per
// change (change is the last change announced). false: this change was announced already.
func (d *store) announce(ctx context.Context, fp, eventID, change string, now time.Time, slackState, snsState string, r summary) (fpState, bool, error) {
	old, ok, err := d.openWindow(ctx, fp, eventID, now, slackState, snsState, r, ", #change = :chg",
		"attribute_not_exists(#pk) OR attribute_not_exists(#change) OR #change <> :chg",
		map[string]types.AttributeValue{":chg": s(change)})
	if err != nil {
		return fpState{}, false, fmt.Errorf("dedupe: announce change %s of %s: %w", change, fp, err)
	}
	return old, ok, nil
}

// openWindow starts a window owned by eventID when cond holds, setting extraSet too (with
// extraValues), and returns the state before it; false when cond does not hold.
func (d *store) openWindow(ctx context.Context, fp, eventID string, now time.Time, slackState, snsState string, r summary,
	extraSet, cond string, extraValues map[string]types.AttributeValue) (fpState, bool, error) {
	end := now.Add(d.window)
	values := map[string]types.AttributeValue{
		":e": s(eventID), ":now": ms(now), ":end": ms(end), ":zero": n(0), ":one": n(1),
		":slack": s(slackState), ":sns": s(snsState), ":exp": n(end.Add(stateTTLAfterEnd).Unix()),
		":diag": s(orDash(r.diagnosis)), ":p": s(orDash(r.principal)), ":k": s(orDash(r.key)),
	}
	for k, v := range extraValues {
		values[k] = v
	}
	in := updateFP(d.table, fp,
		// msg_repeats and msg_last_sent keep what the owner's message says, so a retry that
		// re-sends one channel says the same (SET reads the item as it was before the update).
		"SET #msg_repeats = if_not_exists(#since, :zero), #msg_last_sent = if_not_exists(#window_start, :zero), "+
			"#owner = :e, #window_start = :now, #window_end = :end, #since = :zero, #slack = :slack, #sns = :sns, "+
			"#last_seen = :now, #expires_at = :exp, #diagnosis = :diag, #principal = :p, #kms_key = :k"+extraSet+" ADD #total :one",
		cond, values)
	in.ReturnValues = types.ReturnValueAllOld
	out, err := d.db.UpdateItem(ctx, in)
	switch {
	case err == nil:
		return parseState(out.Attributes), true, nil
	case isConditionFailed(err):
		return fpState{}, false, nil
	}
	return fpState{}, false, err
}

// updateFP builds a conditional UpdateItem on the finding's item. Every attribute is written as
// #name (several, like owner and total, are DynamoDB reserved words).
func updateFP(table, fp, expr, cond string, values map[string]types.AttributeValue) *dynamodb.UpdateItemInput {
	names := map[string]string{}
	for _, m := range attrName.FindAllString(expr+" "+cond, -1) {
		names[m] = m[1:]
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       fpKey(fp),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

var attrName = regexp.MustCompile(`#[a-z_]+`)

// summary is what the state item records about the finding, for people reading the table.
type summary struct{ diagnosis, principal, key string }

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// get reads the finding's state (strongly consistent: it decides a retry).
func (d *store) get(ctx context.Context, fp string) (fpState, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: fpKey(fp), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return fpState{}, fmt.Errorf("dedupe: read %s: %w", fp, err)
	}
	return parseState(out.Item), nil
}

// setChannel records a channel's delivery state for the owner's message.
func (d *store) setChannel(ctx context.Context, fp, eventID, channel, state string) error {
	_, err := d.db.UpdateItem(ctx, updateFP(d.table, fp, "SET #"+channel+" = :state", "#owner = :e",
		map[string]types.AttributeValue{":state": s(state), ":e": s(eventID)}))
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("dedupe: record %s %s for %s: %w", channel, state, fp, err)
	}
	return nil
}

// holdBack suppresses messages for the finding until the given time (a later hold wins; an
// earlier one never shortens a running hold).
func (d *store) holdBack(ctx context.Context, fp string, until time.Time) error {
	_, err := d.db.UpdateItem(ctx, updateFP(d.table, fp,
		"SET #hold_until = :until, #window_end = if_not_exists(#window_end, :zero), #expires_at = :exp",
		"attribute_not_exists(#hold_until) OR #hold_until < :until",
		map[string]types.AttributeValue{
			":until": ms(until), ":zero": n(0), ":exp": n(until.Add(d.window).Add(stateTTLAfterEnd).Unix()),
		}))
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("dedupe: hold back %s until %s: %w", fp, until.UTC().Format(time.RFC3339), err)
	}
	return nil
}
