// Package notify turns a finding into the messages people act on (Slack Block Kit, SNS with
// the contract's report JSON), sends them, and keeps a storm of repeats down to one message
// per finding and window with conditional writes in DynamoDB.
package notify

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// Notice is what one message renders: the report plus what the notifier knows about the
// finding's history. Rendering is pure: the same Notice gives the same bytes.
type Notice struct {
	Report      finding.Report
	Fingerprint string
	// Repeats counts the events of this finding seen since the previous message (held back
	// by the dedupe window or the propagation window); LastSent is when that message went out.
	Repeats  int
	LastSent time.Time
}

// NewNotice builds the notice of a report with its fingerprint and nothing else.
func NewNotice(r finding.Report) Notice {
	fp := finding.Fingerprint(r)
	r.Fingerprint = fp
	if r.Severity == "" {
		r.Severity = r.Diagnosis.Severity()
	}
	return Notice{Report: r, Fingerprint: fp}
}

// Headline says in plain words what happened, e.g. "role app/reader cannot decrypt
// s3://bucket/key: no identity policy allows kms:Decrypt".
func Headline(r finding.Report) string {
	return headlineWith(r, objectLabel(r))
}

// ShortHeadline is the headline within max bytes: the object path gives way first (shortened
// in the middle, then only the bucket), because the reason at the end is what a reader acts on.
func ShortHeadline(r finding.Report, max int) string {
	h := Headline(r)
	if len(h) <= max {
		return h
	}
	obj := objectLabel(r)
	rest := len(h) - len(obj) // everything but the object
	if keep := max - rest - len("…"); keep >= 16 {
		head := keep / 2
		for head > 0 && !utf8RuneStart(obj[head]) {
			head--
		}
		tail := len(obj) - (keep - head)
		for tail < len(obj) && !utf8RuneStart(obj[tail]) {
			tail++
		}
		return headlineWith(r, obj[:head]+"…"+obj[tail:])
	}
	if r.Bucket != "" && r.Object != "" && rest+len("s3://"+r.Bucket+"/…") <= max {
		return headlineWith(r, "s3://"+r.Bucket+"/…")
	}
	if short := headlineWith(r, "s3://…"); len(short) <= max {
		return short
	}
	return truncate(h, max)
}

func headlineWith(r finding.Report, object string) string {
	return fmt.Sprintf("%s %s %s: %s", principalLabel(r), verb(r.Actions), object, reason(r))
}

// principalLabel shortens an IAM ARN to "role path/name" or "user name".
func principalLabel(r finding.Report) string {
	arn := r.Principal
	if arn == "" {
		if r.PrincipalType != "" {
			return r.PrincipalType + " caller"
		}
		return "an unnamed caller"
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return arn
	}
	res := parts[5]
	if res == "root" {
		return "root of " + parts[4]
	}
	if typ, name, ok := strings.Cut(res, "/"); ok {
		return typ + " " + name
	}
	return res
}

func verb(actions []string) string {
	var dec, enc, other bool
	for _, a := range actions {
		switch {
		case a == "kms:Decrypt":
			dec = true
		case strings.HasPrefix(a, "kms:GenerateDataKey"), a == "kms:Encrypt", a == "kms:ReEncryptTo":
			enc = true
		default:
			other = true
		}
	}
	switch {
	case other || len(actions) == 0:
		return "cannot use the key for"
	case dec && enc:
		return "cannot decrypt or encrypt"
	case enc:
		return "cannot encrypt"
	}
	return "cannot decrypt"
}

func objectLabel(r finding.Report) string {
	switch {
	case r.Bucket != "" && r.Object != "":
		return "s3://" + r.Bucket + "/" + r.Object
	case r.Bucket != "":
		return "s3://" + r.Bucket
	}
	return "data under key " + keyLabel(r)
}

// keyLabel is the alias when known, else the key id.
func keyLabel(r finding.Report) string {
	if r.KeyAlias != "" {
		return r.KeyAlias
	}
	if id := keyID(r.Key); id != "" {
		return id
	}
	return "(unknown key)"
}

func keyID(arn string) string {
	if i := strings.LastIndex(arn, ":key/"); i >= 0 {
		return arn[i+len(":key/"):]
	}
	return ""
}

func keyRegion(r finding.Report) string {
	if parts := strings.SplitN(r.Key, ":", 6); len(parts) == 6 && parts[3] != "" {
		return parts[3]
	}
	return r.Region
}

func actionList(actions []string) string {
	if len(actions) == 0 {
		return "the KMS action"
	}
	return strings.Join(actions, " and ")
}

// reason is the cause in a few words, per diagnosis code.
func reason(r finding.Report) string {
	a := actionList(r.Actions)
	switch r.Diagnosis {
	case finding.IdentityPolicyMissing:
		return "no identity policy allows " + a
	case finding.KeyPolicyMissing:
		return "the key policy does not allow " + a
	case finding.CrossAccountAccessMissing:
		return "cross-account access to the key in " + orUnknown(r.KeyAccount) + " is missing"
	case finding.AWSManagedKeyCrossAccount:
		return "an AWS managed key cannot be used from another account"
	case finding.ConditionMismatch:
		return "a policy condition does not match this request"
	case finding.ExplicitDenyKeyPolicy:
		return "explicitly denied by the key policy"
	case finding.ExplicitDenyIdentityPolicy:
		return "explicitly denied by an identity policy"
	case finding.ExplicitDenySCP:
		return "explicitly denied by a service control policy"
	case finding.ExplicitDenyRCP:
		return "explicitly denied by a resource control policy"
	case finding.ExplicitDenyPermissionsBoundary:
		return "explicitly denied by the permissions boundary"
	case finding.ExplicitDenySessionPolicy:
		return "explicitly denied by the session policy"
	case finding.ExplicitDenyVPCEndpointPolicy:
		return "explicitly denied by a VPC endpoint policy"
	case finding.SCPDoesNotAllow:
		return "no service control policy allows " + a
	case finding.BoundaryDoesNotAllow:
		return "the permissions boundary does not allow " + a
	case finding.SessionPolicyDoesNotAllow:
		return "the session policy does not allow " + a
	case finding.VPCEndpointPolicyDoesNotAllow:
		return "the VPC endpoint policy does not allow " + a
	case finding.KeyDisabled:
		return "the key is disabled"
	case finding.KeyPendingDeletion:
		return "the key is scheduled for deletion"
	case finding.KeyUnavailable:
		return "the key is unavailable"
	case finding.KeyNotFound:
		return "the key does not exist in " + orUnknown(keyRegion(r))
	case finding.UnsupportedPrincipal:
		return "no policy can name this caller"
	case finding.Undetermined:
		return "cause not determined, most likely fix below"
	}
	return string(r.Diagnosis)
}

// whoMustAct names the people who can fix a finding no policy patch of ours fixes. The
// report's own escalate field wins when the engine filled it.
func whoMustAct(r finding.Report) string {
	if r.Escalate != "" {
		return r.Escalate
	}
	ka, pa := orUnknown(r.KeyAccount), orUnknown(r.PrincipalAccount)
	switch r.Diagnosis {
	case finding.AWSManagedKeyCrossAccount:
		return "The owner of bucket " + orUnknown(r.Bucket) + " (account " + ka + "): re-encrypt the objects with a customer managed key and set the bucket's default encryption to that key."
	case finding.ExplicitDenyKeyPolicy:
		return "The administrators of key " + keyLabel(r) + " in account " + ka + ": the Deny statement must change; this is not applied automatically."
	case finding.ExplicitDenyIdentityPolicy:
		return "The IAM administrators of account " + pa + ": the Deny statement in the principal's policy must change."
	case finding.ExplicitDenySCP, finding.SCPDoesNotAllow:
		return "The AWS Organizations administrators (management account or delegated administrator): the service control policy decides."
	case finding.ExplicitDenyRCP:
		return "The AWS Organizations administrators: the resource control policy on account " + ka + " decides."
	case finding.ExplicitDenyPermissionsBoundary, finding.BoundaryDoesNotAllow:
		return "Whoever sets the permissions boundary of the principal (IAM administrators of account " + pa + ")."
	case finding.ExplicitDenySessionPolicy, finding.SessionPolicyDoesNotAllow:
		return "The code or identity provider that creates the session: the session policy passed to AssumeRole or federation limits it."
	case finding.ExplicitDenyVPCEndpointPolicy, finding.VPCEndpointPolicyDoesNotAllow:
		return "The network team that owns the VPC endpoint policy for KMS or S3 in account " + pa + "."
	case finding.KeyDisabled, finding.KeyPendingDeletion, finding.KeyUnavailable:
		return "The administrators of key " + keyLabel(r) + " in account " + ka + "."
	case finding.KeyNotFound:
		return "The owner of bucket " + orUnknown(r.Bucket) + " (its default encryption names a key that does not exist here) or the application that chose the key."
	case finding.UnsupportedPrincipal:
		return "The caller's team: call with a named IAM role or user that a policy can grant."
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// awsManaged says the key is an AWS managed key, whose console page lives elsewhere.
func awsManaged(r finding.Report) bool {
	return strings.HasPrefix(r.KeyAlias, "alias/aws/") || strings.HasPrefix(r.KeyAlias, "aws/") ||
		r.Diagnosis == finding.AWSManagedKeyCrossAccount
}

// KeyConsoleURL links to the key's page in the KMS console, or "" without a key id.
func KeyConsoleURL(r finding.Report) string {
	id := keyID(r.Key)
	region := keyRegion(r)
	if id == "" || !regionName(region) {
		return ""
	}
	kind := "keys"
	if awsManaged(r) {
		kind = "defaultKeys"
	}
	return fmt.Sprintf("https://%s.console.aws.amazon.com/kms/home?region=%s#/kms/%s/%s", region, region, kind, url.PathEscape(id))
}

// EventConsoleURL links to the CloudTrail event, or "" without an event id or Region.
func EventConsoleURL(r finding.Report) string {
	if r.EventID == "" || !regionName(r.Region) {
		return ""
	}
	return fmt.Sprintf("https://%s.console.aws.amazon.com/cloudtrailv2/home?region=%s#/events/%s", r.Region, r.Region, url.PathEscape(r.EventID))
}

// regionName says s looks like a Region name (us-east-1, us-gov-west-1, cn-north-1): it
// becomes part of a link's host name, where anything else could point the link elsewhere.
func regionName(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for _, c := range p {
			digit := '0' <= c && c <= '9'
			if (i == len(parts)-1) != digit || (!digit && (c < 'a' || c > 'z')) {
				return false
			}
		}
	}
	return true
}

// ReproduceCommand is the line that reproduces the finding offline.
const ReproduceCommand = "kmsfix explain --world world.json event.json"

// reproduceHint says where the two files come from; esc escapes the event id for the output
// the hint goes to (its command is shell-quoted first).
func reproduceHint(r finding.Report, esc func(string) string) string {
	return "world.json: the `world` field of the remediator's `event` log line for event " + esc(orUnknown(r.EventID)) +
		" (the function's CloudWatch Logs); event.json: that CloudTrail event (console link above, or `aws cloudtrail lookup-events --lookup-attributes " +
		esc(quote.Shell("AttributeKey=EventId,AttributeValue="+orUnknown(r.EventID))) + "`)."
}

// displayTime renders an RFC 3339 time in UTC for people; anything else is shown as given.
func displayTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// truncate cuts s to at most max bytes on a rune boundary, ending with an ellipsis.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
