package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// Slack's Block Kit limits (api.slack.com/reference/block-kit/blocks). Code blocks have no
// documented limit of their own; they are held to the section text limit, and all of them
// together to a budget that keeps a message readable and well under Slack's message size.
const (
	MaxBlocks       = 50
	MaxHeaderText   = 150
	MaxSectionText  = 3000
	MaxFields       = 10
	MaxFieldText    = 2000
	MaxContextElems = 10
	MaxButtonText   = 75
	MaxURL          = 3000
	MaxCodeText     = 3000
	MaxCodeTotal    = 12000
	MaxFallbackText = 3000
)

// SlackMessage renders a notice as a Block Kit webhook message.
func SlackMessage(n Notice) *slack.WebhookMessage {
	r := n.Report
	b := &slackBuilder{budget: MaxCodeTotal}
	head := Headline(r)
	b.add(slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(quote.Text(ShortHeadline(r, MaxHeaderText)), MaxHeaderText), false, false)))

	if r.Detail != "" {
		b.section(escape(r.Detail))
	}
	if c := statusLine(n); c != "" {
		b.add(slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, c, false, false)))
	}
	b.add(slack.NewSectionBlock(nil, fields(r), nil))

	if r.Applied != nil {
		b.applied(*r.Applied)
	}
	for _, a := range r.AppliedMore { // the other account's half (the organization's hub)
		b.applied(a)
	}
	if len(r.Patches) > 0 {
		b.patches(r)
	}
	if !r.Diagnosis.PolicyFixable() && r.Diagnosis != finding.Undetermined {
		b.notFixable(r)
	} else if len(r.Advice) > 0 {
		b.advice(r.Advice)
	}
	if len(r.Unknown) > 0 {
		b.section("*Could not read:* " + escape(strings.Join(r.Unknown, "; ")))
	}
	b.links(r)
	b.add(slack.NewContextBlock("",
		slack.NewTextBlockObject(slack.MarkdownType, "*Reproduce offline:* `"+ReproduceCommand+"`", false, false),
		slack.NewTextBlockObject(slack.MarkdownType, truncate(reproduceHint(r, escape), MaxSectionText), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "fingerprint `"+n.Fingerprint+"` · event `"+escape(r.EventID)+"`", false, false),
	))

	// The fallback text (notifications, screen readers) is mrkdwn too: escaped like the rest.
	text := escape(head)
	if r.Detail != "" {
		text += "\n" + escape(r.Detail)
	}
	return &slack.WebhookMessage{
		Text:   truncate(text, MaxFallbackText),
		Blocks: &slack.Blocks{BlockSet: b.finish()},
	}
}

// statusLine is the one-line context: severity, repeats, auto-apply and verification.
func statusLine(n Notice) string {
	r := n.Report
	var parts []string
	sev := r.Severity
	if sev == "" {
		sev = r.Diagnosis.Severity()
	}
	parts = append(parts, severityEmoji(sev)+" *"+escape(sev)+"* · `"+escape(string(r.Diagnosis))+"`")
	if n.Repeats > 0 {
		since := ""
		if !n.LastSent.IsZero() {
			since = " since the last message (" + n.LastSent.UTC().Format("2006-01-02 15:04 UTC") + ")"
		}
		parts = append(parts, fmt.Sprintf(":repeat: seen %d more %s%s", n.Repeats, plural(n.Repeats, "time", "times"), since))
	}
	if r.Diagnosis.PolicyFixable() || r.Diagnosis == finding.Undetermined {
		switch {
		case r.AutoApply:
			parts = append(parts, "auto-apply: allowed here")
		case r.AutoApplyBlocked != "":
			parts = append(parts, "auto-apply: no, "+escape(r.AutoApplyBlocked))
		default:
			parts = append(parts, "auto-apply: no")
		}
		if len(r.Patches) > 0 {
			switch {
			case r.Verified:
				parts = append(parts, "verified: the patched policies allow this request")
			case r.Unverified != "":
				parts = append(parts, "not verified: "+escape(r.Unverified))
			default:
				parts = append(parts, "not verified: review before applying")
			}
		}
	}
	return truncate(strings.Join(parts, "  ·  "), MaxSectionText)
}

func severityEmoji(sev string) string {
	switch sev {
	case "critical":
		return ":rotating_light:"
	case "high":
		return ":red_circle:"
	}
	return ":large_orange_circle:"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func fields(r finding.Report) []*slack.TextBlockObject {
	key := "`" + escape(orUnknown(r.Key)) + "`"
	if r.KeyAlias != "" {
		key = "*" + escape(r.KeyAlias) + "*\n" + key
	}
	object := "(unknown)"
	switch {
	case r.Bucket != "" && r.Object != "":
		object = "`s3://" + escape(r.Bucket) + "/" + escape(r.Object) + "`"
	case r.Bucket != "":
		object = "`s3://" + escape(r.Bucket) + "` (S3 Bucket Key: no object in the context)"
	}
	action := escape(actionList(r.Actions))
	if r.EventName != "" {
		action += " (" + escape(r.EventName) + ")"
	}
	account := "principal " + escape(orUnknown(r.PrincipalAccount))
	if r.KeyAccount != "" && r.KeyAccount != r.PrincipalAccount {
		account += "\nkey " + escape(r.KeyAccount) + " (cross-account)"
	} else {
		account += ", key in the same account"
	}
	principal := "`" + escape(orUnknown(r.Principal)) + "`"
	if r.SessionARN != "" && r.SessionARN != r.Principal {
		principal += "\nsession `" + escape(r.SessionARN) + "`"
	}
	pairs := [][2]string{
		{"Principal", principal},
		{"Key", key},
		{"Bucket and object", object},
		{"Action", action},
		{"Account", account},
		{"Region", escape(orUnknown(r.Region))},
		{"Time", escape(orUnknown(displayTime(r.EventTime)))},
	}
	out := make([]*slack.TextBlockObject, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, slack.NewTextBlockObject(slack.MarkdownType, truncate("*"+p[0]+"*\n"+p[1], MaxFieldText), false, false))
	}
	return out
}

// slackBuilder collects blocks and keeps the message within Slack's limits.
type slackBuilder struct {
	blocks    []slack.Block
	budget    int // characters left for code blocks
	shortened []string
}

func (b *slackBuilder) add(bl slack.Block) { b.blocks = append(b.blocks, bl) }

func (b *slackBuilder) section(mrkdwn string) {
	b.add(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, truncate(mrkdwn, MaxSectionText), false, false), nil, nil))
}

// code adds a preformatted block, shortened to the per-block limit and the message budget.
// what names the text in the note that says it was shortened.
func (b *slackBuilder) code(text, what string) {
	limit := min(MaxCodeText, b.budget)
	if limit < 200 {
		b.shortened = append(b.shortened, what+" (omitted)")
		return
	}
	if len(text) > limit {
		shown := cutLines(text, limit-60)
		text = shown + fmt.Sprintf("\n… (%d of %d characters shown)", len(shown), len(text))
		b.shortened = append(b.shortened, what)
	}
	b.budget -= len(text)
	b.add(slack.NewRichTextBlock("", &slack.RichTextPreformatted{
		Type:     slack.RTEPreformatted,
		Elements: []slack.RichTextSectionElement{slack.NewRichTextSectionTextElement(text, nil)},
	}))
}

// cutLines cuts text at the last line break before max bytes (or at max when there is none).
func cutLines(text string, max int) string {
	if len(text) <= max {
		return text
	}
	cut := text[:max]
	if i := strings.LastIndexByte(cut, '\n'); i > max/2 {
		return cut[:i]
	}
	return truncate(text, max)
}

func (b *slackBuilder) applied(a finding.Applied) {
	what := escape(a.Lever) + " `" + escape(a.Name) + "` on " + escape(a.Target) + " (account " + escape(orUnknown(a.Account)) + ")"
	if a.DryRun {
		b.section(":test_tube: *Dry run:* would apply " + what + ". Nothing was changed.")
		if len(a.Calls) > 0 {
			b.code(codeLines(a.Calls), "dry-run calls")
		}
		return
	}
	s := ":white_check_mark: *Applied automatically:* " + what + ", change `" + escape(a.ID) + "`"
	if a.ExpiresAt != "" {
		s += "; reverted automatically at " + escape(displayTime(a.ExpiresAt))
	}
	s += ". Repeats are held back while KMS and IAM propagate the change."
	b.section(s)
	if a.RevertCommand != "" {
		b.section("*Revert now:*")
		b.code(quote.Text(a.RevertCommand), "revert command")
	}
}

func (b *slackBuilder) patches(r finding.Report) {
	intro := "*Fix:* "
	switch {
	case r.Diagnosis == finding.Undetermined:
		intro += "the most likely patch (unverified: the evidence was not enough to decide)."
	case len(r.Patches) == 1:
		intro += "one change."
	default:
		intro += fmt.Sprintf("%d changes, all needed.", len(r.Patches))
	}
	b.section(intro)
	for i, p := range r.Patches {
		b.section(fmt.Sprintf("*%d. %s*", i+1, patchTitle(r, p)))
		b.code(patchBody(p), fmt.Sprintf("patch %d", i+1))
		if len(p.Commands) > 0 {
			b.code(commandsText(p.Commands, i), fmt.Sprintf("commands of patch %d", i+1))
		}
	}
}

// commandsText joins a patch's commands. A command too long for a code block (one that
// carries a whole key policy) is never cut in the middle, where a paste would run half of it:
// a comment points to it in the SNS copy instead.
func commandsText(cmds []string, patch int) string {
	lines := make([]string, len(cmds))
	for j, c := range cmds {
		if len(c) > MaxCodeText/2 {
			c = fmt.Sprintf("# command %d (%d characters) is too long for Slack: take it from the SNS copy, patches[%d].commands[%d]",
				j+1, len(c), patch, j)
		}
		lines[j] = quote.Text(c)
	}
	return strings.Join(lines, "\n")
}

// patchTitle says what a patch changes, where, and who applies it.
func patchTitle(r finding.Report, p finding.Patch) string {
	name := ""
	if p.Name != "" {
		name = " `" + escape(p.Name) + "`"
	}
	var s string
	switch p.Kind {
	case finding.KindIdentityPolicy:
		s = "Inline policy" + name + " on " + escape(labelARN(p.Target))
	case finding.KindKeyPolicyStatement:
		s = "Key policy statement" + name + " on key " + escape(keyLabel(r))
	case finding.KindGrant:
		s = "KMS grant" + name + " on key " + escape(keyLabel(r))
	default:
		s = escape(p.Kind) + name + " on " + escape(p.Target)
	}
	s += " (account " + escape(orUnknown(p.Account)) + ")"
	if p.Account != "" && r.PrincipalAccount != "" && p.Account != r.PrincipalAccount {
		s += ": send this to the key owner's account"
	}
	return s
}

func labelARN(arn string) string {
	return principalLabel(finding.Report{Principal: arn})
}

// patchBody is the JSON a person pastes: the policy, the statement, or the grant.
func patchBody(p finding.Patch) string {
	var v any
	switch {
	case p.Policy != nil:
		v = p.Policy
	case p.Statement != nil:
		v = p.Statement
	case p.Grant != nil:
		v = p.Grant
	default:
		v = p
	}
	return quote.Block(indentJSON(v))
}

func indentJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("(cannot render: %v)", err)
	}
	return strings.TrimRight(buf.String(), "\n")
}

func (b *slackBuilder) notFixable(r finding.Report) {
	s := ":no_entry: *No policy change of ours fixes this.*"
	if who := whoMustAct(r); who != "" {
		s += "\n*Who must act:* " + escape(who)
	}
	b.section(s)
	if r.NeededStatement != nil {
		b.section("*The statement that layer would need* (advice for its owners; kmsfix never applies it):")
		b.code(quote.Block(indentJSON(r.NeededStatement)), "needed statement")
	}
	if len(r.Advice) > 0 {
		b.advice(r.Advice)
	}
}

// advice shows steps as text and commands (lines starting with "aws ") as code.
func (b *slackBuilder) advice(lines []string) {
	var steps, cmds []string
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "aws ") {
			cmds = append(cmds, l)
		} else {
			steps = append(steps, "• "+escape(l))
		}
	}
	if len(steps) > 0 {
		b.section("*What to do:*\n" + strings.Join(steps, "\n"))
	}
	if len(cmds) > 0 {
		if len(steps) == 0 {
			b.section("*What to do:*")
		}
		b.code(codeLines(cmds), "advice commands")
	}
}

func (b *slackBuilder) links(r finding.Report) {
	var els []slack.BlockElement
	if u := KeyConsoleURL(r); u != "" && len(u) <= MaxURL {
		label := "Open key in KMS console"
		if r.KeyAccount != "" && r.KeyAccount != r.PrincipalAccount {
			label = "Open key (account " + quote.Text(r.KeyAccount) + ")"
		}
		els = append(els, slack.NewButtonBlockElement("open_key", "", slack.NewTextBlockObject(slack.PlainTextType, truncate(label, MaxButtonText), false, false)).WithURL(u))
	}
	if u := EventConsoleURL(r); u != "" && len(u) <= MaxURL {
		els = append(els, slack.NewButtonBlockElement("open_event", "", slack.NewTextBlockObject(slack.PlainTextType, "Open CloudTrail event", false, false)).WithURL(u))
	}
	if len(els) > 0 {
		b.add(slack.NewActionBlock("links", els...))
	}
}

// finish adds the note about shortened text and keeps the block count within the limit.
func (b *slackBuilder) finish() []slack.Block {
	var note slack.Block
	if len(b.shortened) > 0 {
		note = slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			truncate(":scissors: Shortened to fit Slack: "+strings.Join(b.shortened, ", ")+
				". The full text is in the SNS copy of this finding (the report JSON).", MaxSectionText), false, false))
	}
	blocks := b.blocks
	limit := MaxBlocks
	if note != nil {
		limit--
	}
	if len(blocks) > limit {
		// Keep the head and the last two blocks (links, reproduction); drop the middle.
		tail := blocks[len(blocks)-2:]
		blocks = append(blocks[:limit-3:limit-3], slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType,
			"… more changes than a Slack message holds: see the SNS copy.", false, false)))
		blocks = append(blocks, tail...)
	}
	if note != nil {
		blocks = append(blocks, note)
	}
	return blocks
}

// escape makes untrusted text literal in mrkdwn, inside a `code span` or out (quote.Mrkdwn):
// every value from a report goes through it before it joins kmsfix's own markup.
func escape(s string) string { return quote.Mrkdwn(s) }

// codeLines joins commands or calls for a preformatted block, one per line: a rich-text block
// shows text as it is, so only control characters need escaping (a value's line break would
// otherwise show as a line of its own).
func codeLines(ls []string) string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = quote.Text(l)
	}
	return strings.Join(out, "\n")
}
