package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// SNS limits: a Subject is ASCII, one line, under 100 characters; a message with its
// attributes is at most 256 KiB.
const (
	MaxSubject    = 99
	MaxSNSMessage = 256 * 1024
	maxSMS        = 140
)

// notification is added to the report JSON (the contract allows added fields): what the
// notifier knows about the finding's history.
type notification struct {
	Fingerprint      string `json:"fingerprint"`
	RepeatsSinceLast int    `json:"repeats_since_last"`
	LastSent         string `json:"last_sent,omitempty"`
}

// ReportJSON is the SNS message body: the contract's report (docs/contract.md section 3) with the
// fingerprint set and a "notification" object added.
func ReportJSON(n Notice) ([]byte, error) {
	r := n.Report
	r.Fingerprint = n.Fingerprint
	body, err := r.Encode()
	if err != nil {
		return nil, fmt.Errorf("marshal report %s: %w", r.EventID, err)
	}
	extra := notification{Fingerprint: n.Fingerprint, RepeatsSinceLast: n.Repeats}
	if !n.LastSent.IsZero() {
		extra.LastSent = n.LastSent.UTC().Format(time.RFC3339)
	}
	add, err := json.Marshal(extra)
	if err != nil {
		return nil, fmt.Errorf("marshal notification %s: %w", r.EventID, err)
	}
	// body is a JSON object: splice the field in before its closing brace.
	body = bytes.TrimRight(body, "\n")
	out := make([]byte, 0, len(body)+len(add)+20)
	out = append(out, body[:len(body)-1]...)
	out = append(out, `,"notification":`...)
	out = append(out, add...)
	return append(out, '}'), nil
}

// Subject is the e-mail subject: the headline, ASCII, within 100 characters.
func Subject(n Notice) string {
	// No prefix: every character goes to the headline (the topic's display name says kmsfix).
	s := strings.ReplaceAll(ShortHeadline(n.Report, MaxSubject), "…", "...")
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '\n' || c == '\r' || c == '\t':
			b.WriteByte(' ')
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(c)
		}
	}
	s = b.String()
	if len(s) > MaxSubject {
		s = s[:MaxSubject-3] + "..."
	}
	return s
}

// Attributes are the message attributes subscribers filter on. Empty values are left out
// (SNS refuses them).
func Attributes(n Notice) map[string]types.MessageAttributeValue {
	r := n.Report
	sev := r.Severity
	if sev == "" {
		sev = r.Diagnosis.Severity()
	}
	attrs := map[string]types.MessageAttributeValue{}
	str := func(k, v string) {
		if v != "" {
			attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	str("diagnosis", string(r.Diagnosis))
	str("principal_account", r.PrincipalAccount)
	str("key_account", r.KeyAccount)
	str("severity", sev)
	str("auto_apply", strconv.FormatBool(r.AutoApply))
	str("fingerprint", n.Fingerprint)
	if r.Applied != nil && !r.Applied.DryRun {
		str("applied", "true")
	}
	attrs["repeats"] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(n.Repeats))}
	return attrs
}

// PublishInput is the SNS Publish request: per-protocol messages (MessageStructure json),
// the report JSON by default (SQS, Lambda, HTTP, email-json), readable text for e-mail.
func PublishInput(topicARN string, n Notice) (*sns.PublishInput, error) {
	report, err := ReportJSON(n)
	if err != nil {
		return nil, err
	}
	email := EmailText(n)
	msg, err := structure(report, email, n)
	if err != nil {
		return nil, err
	}
	if len(msg) > MaxSNSMessage-4096 { // leave room for the attributes
		// Only a huge policy gets here; the report JSON must stay whole, the e-mail may not.
		msg, err = structure(report, truncate(email, 2000)+"\n\nThe full finding is in the JSON copy of this message.", n)
		if err != nil {
			return nil, err
		}
	}
	if len(msg) > MaxSNSMessage-4096 {
		return nil, fmt.Errorf("report %s is %d bytes, over the SNS limit", n.Report.EventID, len(report))
	}
	return &sns.PublishInput{
		TopicArn:          aws.String(topicARN),
		Subject:           aws.String(Subject(n)),
		Message:           aws.String(string(msg)),
		MessageStructure:  aws.String("json"),
		MessageAttributes: Attributes(n),
	}, nil
}

func structure(report []byte, email string, n Notice) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(map[string]string{
		"default": string(report),
		"email":   email,
		"sms":     truncate(Headline(n.Report), maxSMS),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal SNS message: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// plainText drops mrkdwn marks from text shared with the Slack message.
var plainText = strings.NewReplacer("`", "", "*", "")

// EmailText is the plain-text message for e-mail subscribers.
func EmailText(n Notice) string {
	r := n.Report
	var b strings.Builder
	// Every string argument is a value from the report: quote.Text keeps it on its line. JSON
	// kmsfix laid out over lines goes through block.
	line := func(format string, args ...any) {
		for i, a := range args {
			if s, ok := a.(string); ok {
				args[i] = quote.Text(s)
			}
		}
		fmt.Fprintf(&b, format+"\n", args...)
	}
	block := func(s string) { b.WriteString(quote.Block(s) + "\n") }
	line("%s", Headline(r))
	line("")
	if r.Detail != "" {
		line("%s", r.Detail)
		line("")
	}
	sev := r.Severity
	if sev == "" {
		sev = r.Diagnosis.Severity()
	}
	line("Diagnosis:  %s (severity %s)", r.Diagnosis, sev)
	if n.Repeats > 0 {
		since := ""
		if !n.LastSent.IsZero() {
			since = " since the last message at " + n.LastSent.UTC().Format("2006-01-02 15:04 UTC")
		}
		line("Repeats:    seen %d more %s%s", n.Repeats, plural(n.Repeats, "time", "times"), since)
	}
	line("Principal:  %s", orUnknown(r.Principal))
	key := orUnknown(r.Key)
	if r.KeyAlias != "" {
		key += " (" + r.KeyAlias + ")"
	}
	line("Key:        %s", key)
	line("Object:     %s", objectLabel(r))
	line("Action:     %s", actionList(r.Actions))
	line("Accounts:   principal %s, key %s", orUnknown(r.PrincipalAccount), orUnknown(r.KeyAccount))
	line("Region:     %s", orUnknown(r.Region))
	line("Time:       %s", orUnknown(displayTime(r.EventTime)))
	line("Event:      %s", orUnknown(r.EventID))
	applied := r.AppliedMore // the other account's half (the organization's hub)
	if r.Applied != nil {
		applied = append([]finding.Applied{*r.Applied}, applied...)
	}
	for _, a := range applied {
		line("")
		if a.DryRun {
			line("Dry run: would apply %s %s on %s (account %s). Nothing was changed.", a.Lever, a.Name, a.Target, a.Account)
			for _, c := range a.Calls {
				line("  %s", c)
			}
		} else {
			line("Applied automatically: %s %s on %s (account %s), change %s, reverted at %s.", a.Lever, a.Name, a.Target, a.Account, a.ID, displayTime(a.ExpiresAt))
			if a.RevertCommand != "" {
				line("Revert now: %s", a.RevertCommand)
			}
		}
	}
	for i, p := range r.Patches {
		line("")
		line("Fix %d of %d: %s", i+1, len(r.Patches), plainText.Replace(patchTitle(r, p)))
		block(patchBody(p))
		if len(p.Commands) > 0 {
			line("Commands:")
			for _, c := range p.Commands {
				line("  %s", c)
			}
		}
	}
	if !r.Diagnosis.PolicyFixable() && r.Diagnosis != finding.Undetermined {
		line("")
		line("No policy change of ours fixes this.")
		if who := whoMustAct(r); who != "" {
			line("Who must act: %s", who)
		}
		if r.NeededStatement != nil {
			line("The statement that layer would need (advice, never applied):")
			block(indentJSON(r.NeededStatement))
		}
	}
	if len(r.Advice) > 0 {
		line("")
		line("What to do:")
		for _, a := range r.Advice {
			line("  %s", a)
		}
	}
	if !r.Verified && r.Unverified != "" && len(r.Patches) > 0 {
		line("")
		line("Not verified: %s", r.Unverified)
	}
	if len(r.Unknown) > 0 {
		line("")
		line("Could not read: %s", strings.Join(r.Unknown, "; "))
	}
	line("")
	if u := KeyConsoleURL(r); u != "" {
		line("Key in the console:       %s", u)
	}
	if u := EventConsoleURL(r); u != "" {
		line("CloudTrail event:         %s", u)
	}
	line("Reproduce offline:        %s", ReproduceCommand)
	line("  %s", strings.ReplaceAll(reproduceHint(r, quote.Text), "`", ""))
	line("Fingerprint:              %s", n.Fingerprint)
	return b.String()
}
