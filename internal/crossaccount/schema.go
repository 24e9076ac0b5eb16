// Package crossaccount carries the key-policy half of a cross-account fix to the key's owner.
//
// AWS logs a denied cross-account KMS call only in the caller's account, so only the
// remediator there learns of it. Its Sender puts a "key policy change requested" event on
// the key owner's EventBridge bus; the key owner's Receiver accepts it only from trusted
// accounts, only for keys in its own account, and only when the requested statement is
// exactly the least-privilege statement this package rebuilds from the finding. The event is
// a stable interface (docs/cross-account.md): fields are added, never renamed.
package crossaccount

import (
	"bytes"
	"encoding/json"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
)

// The event's source and detail-type; the CDK stack (infra/stack.go) matches the same two
// in the key owner's bus policy and rule, and in the caller's events:PutEvents permission.
const (
	Source     = "kmsfix.remediator"
	DetailType = "KMS Key Policy Change Requested"
	// Version is the schema version this code writes. A receiver accepts any version from 1
	// on: later versions only add fields.
	Version = 1
)

// maxEntryBytes is EventBridge's limit on one PutEvents entry (256 KiB).
const maxEntryBytes = 256 * 1024

// Request is the event's detail (docs/cross-account.md lists every field).
type Request struct {
	// Version is the schema version (Version).
	Version int `json:"version"`
	// RequestID identifies the request: the finding's fingerprint. The sender sends one
	// request per fingerprint per dedupe window.
	RequestID string `json:"request_id"`
	// RequestedAt is when the caller's remediator sent it (RFC 3339, UTC).
	RequestedAt string `json:"requested_at"`
	// SenderAccount is the account the caller's remediator runs in. Informational only: the
	// receiver trusts the envelope's `account`, which EventBridge sets and a sender cannot forge.
	SenderAccount string `json:"sender_account"`
	// Key and KeyAccount name the key whose policy should change.
	Key        string `json:"key"`
	KeyAccount string `json:"key_account"`
	// Statement is the key-policy statement requested (the finding's key-policy-statement
	// patch). The receiver rebuilds it from the finding and accepts only an exact match.
	Statement *policy.Statement `json:"statement"`
	// DenialEventID and DenialTime are the original denial's CloudTrail eventID and
	// eventTime (the finding's event_id and event_time). The receiver refuses a request whose
	// denial is older than its dedupe window, or whose denial it accepted a request for before.
	DenialEventID string `json:"denial_event_id"`
	DenialTime    string `json:"denial_time"`
	// Finding is the caller's report with both halves (docs/contract.md section 3).
	Finding finding.Report `json:"finding"`
}

// Envelope is the EventBridge event as the key owner's function receives it.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"` // set by EventBridge: the sender's account
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// IsRequest says whether an event is a key-policy change request (by its source: whatever
// else is wrong with it is the receiver's to reject and log).
func IsRequest(event []byte) bool {
	// Most events are CloudTrail records: skip decoding them twice.
	if !bytes.Contains(event, []byte(Source)) {
		return false
	}
	var e struct {
		Source string `json:"source"`
	}
	return json.Unmarshal(event, &e) == nil && e.Source == Source
}
