package remediator

import (
	"encoding/json"
	"fmt"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/config"
)

// Where an event may come from. The single-account stack's function serves one account: the
// EventBridge rule on its default bus delivers CloudTrail's KMS records of that account, and
// nothing else is a denial it should act on. Two fences keep anything else out:
//
//  1. Who may invoke. The function's resource policy admits only the stack's rules
//     (AWS::Lambda::Permission for events.amazonaws.com with SourceArn = the rule's ARN, added
//     by the CDK's LambdaFunction target). Within one account an identity policy allowing
//     lambda:InvokeFunction also suffices, so no other principal of the account may hold that
//     permission on the function (docs/lambda.md says so; an SCP can enforce it).
//  2. What is accepted (refused and foreign, below). Only an EventBridge envelope of a CloudTrail API call
//     from aws.kms whose account and recipientAccountId are this account. A bare record, a
//     log file, another account's record (forwarded by another bus) or an envelope whose two
//     account fields disagree is refused before parsing, so it never reaches the applier.
//
// An envelope is JSON anyone who can invoke could write: the check refuses the mistakes and
// the foreign records, the invoke permission refuses the forgers. And what a well-formed
// forged record can steer is bounded: the world is read live (policies, key, principal), the
// guard, evaluator and Access Analyzer decide again, and only a least-privilege, expiring
// grant in a sandbox account can result.

// envelope is what the origin checks read of an event: the EventBridge envelope and the
// record's account fields.
type envelope struct {
	ID         string `json:"id"`
	DetailType string `json:"detail-type"`
	Source     string `json:"source"`
	Account    string `json:"account"`
	Detail     *struct {
		RecipientAccountID string `json:"recipientAccountId"`
		UserIdentity       struct {
			AccountID string `json:"accountId"`
		} `json:"userIdentity"`
		Resources []struct {
			ARN       string `json:"ARN"`
			AccountID string `json:"accountId"`
		} `json:"resources"`
	} `json:"detail"`
}

// refused says why an event is not one this function serves, or "" when it is: the
// single-account stack serves account (foreign), the hub the accounts of its organization
// (foreignToHub); with neither, nothing is checked. The envelope is decoded once for both.
func refused(event []byte, account string, hub bool) string {
	if account == "" && !hub {
		return ""
	}
	var env envelope
	if err := json.Unmarshal(event, &env); err != nil {
		return "" // the parser reports malformed events
	}
	switch {
	case env.Detail == nil || env.DetailType == "" || env.ID == "":
		if hub {
			return "not an EventBridge event: the hub accepts only the envelopes its spokes forward, not bare CloudTrail records"
		}
		return "not an EventBridge event: this function accepts only the envelopes of its rule, not bare CloudTrail records"
	case env.DetailType != "AWS API Call via CloudTrail" || env.Source != "aws.kms":
		return fmt.Sprintf("EventBridge event %q from %q is not a CloudTrail record of a KMS call", env.DetailType, env.Source)
	}
	if account != "" {
		if why := env.foreign(account); why != "" {
			return why
		}
	}
	if hub {
		return env.foreignToHub()
	}
	return ""
}

// foreign says why a KMS record's envelope is not of account, or "".
func (env *envelope) foreign(account string) string {
	switch {
	case env.Account != account:
		return fmt.Sprintf("an event of account %q; this function serves account %s", env.Account, account)
	case env.Detail.RecipientAccountID != account:
		return fmt.Sprintf("a CloudTrail record of account %q (recipientAccountId) in an envelope of account %s; this function serves account %s",
			env.Detail.RecipientAccountID, env.Account, account)
	}
	return ""
}

// foreignToHub says why a KMS record on the hub's bus is not one the hub serves, or ""
// (docs/org.md). The bus policy admits only the organization's accounts, and EventBridge sets
// the envelope's account to the sender's; the record inside is the sender's text, so the hub
// believes it only where it agrees with the envelope:
//
//   - recipientAccountId is the envelope's account: the record is that account's copy;
//   - the call is that account's: userIdentity.accountId is the recipient (a same-account
//     call), or the recipient owns a resource of the call (the key owner's copy of a
//     cross-account call).
//
// The world is then read in that account only, through its reader role.
func (env *envelope) foreignToHub() string {
	switch {
	case !config.IsAccountID(env.Account):
		return fmt.Sprintf("the envelope's account %q is not an account id", env.Account)
	case env.Detail.RecipientAccountID != env.Account:
		return fmt.Sprintf("a CloudTrail record of account %q (recipientAccountId) in an envelope of account %s: the record is not the sender's",
			env.Detail.RecipientAccountID, env.Account)
	case env.Detail.UserIdentity.AccountID == env.Account:
		return ""
	}
	for _, r := range env.Detail.Resources {
		if r.AccountID == env.Account && apply.AccountOf(r.ARN) == env.Account {
			return "" // the key owner's copy of another account's call
		}
	}
	return fmt.Sprintf("a call of account %q that names no resource of account %s: the record is not the sender's",
		env.Detail.UserIdentity.AccountID, env.Account)
}
