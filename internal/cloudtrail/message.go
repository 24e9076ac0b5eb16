package cloudtrail

import "strings"

// StateCustomKeyStore is the Message.State for a custom key store (CloudHSM or external key
// store) failure: KMS returns KMSInvalidStateException for all of them and only the text says
// which.
const StateCustomKeyStore = "CustomKeyStore"

// ParseMessage reads a KMS errorMessage as logged. It never panics; wording it does not
// recognise gives MsgUnknown with whatever caller, action and resource it could read.
func ParseMessage(text string) Message { return Classify("", text) }

// Classify reads the errorMessage together with the errorCode of the record ("AccessDenied",
// "DisabledException", "KMS.NotFoundException", ...). The text decides when it is specific;
// the code decides when the text alone is not enough (an empty or unfamiliar message on a
// DisabledException still means the key is disabled).
func Classify(errorCode, text string) Message {
	m := parseText(text)
	switch strings.TrimPrefix(errorCode, "KMS.") {
	case "DisabledException":
		// KMS also answers DisabledException for a key pending deletion: keep that reading.
		if !isKeyState(m.Kind) {
			m.Kind, m.State = MsgDisabled, "Disabled"
		}
	case "NotFoundException":
		if !isKeyState(m.Kind) {
			m.Kind = MsgNotFound
		}
	case "KMSInvalidStateException":
		if !isKeyState(m.Kind) {
			m.Kind = MsgInvalidState
		}
	}
	return m
}

// isKeyState reports whether the kind is about the key itself rather than a policy.
func isKeyState(k MessageKind) bool {
	switch k {
	case MsgDisabled, MsgPendingDeletion, MsgInvalidState, MsgNotFound:
		return true
	}
	return false
}

// Phrases, in lower case. Matching is done on an ASCII-lowered copy of the text that keeps
// byte offsets, so the caller, action and resource are cut from the original text.
const (
	phUser         = "user: "
	phNotAuth      = " is not authorized to perform: "
	phOnResource   = "on resource: "
	phOnThis       = "on this resource"
	phOnCiphertext = "on the resource associated with this ciphertext"
	phExplicit     = "with an explicit deny"
	phBecauseNo    = "because no "
	phTransitive   = "transitively through "
	phPolicyARN    = ": arn:"
	phCiphertext   = "the ciphertext refers to a"
)

// ambiguousPhrases are the parts of KMS's deliberately vague message for a key the caller
// cannot see (cross-account, wrong Region, deleted, or denied by the key policy).
var ambiguousPhrases = [...]string{
	"the resource does not exist in this region",
	"no resource-based policies allow access",
	"a resource-based policy explicitly denies access",
}

func parseText(text string) Message {
	m := Message{Kind: MsgUnknown, Text: text}
	t := strings.TrimSpace(text)
	low := asciiLower(t)

	userMsg := strings.HasPrefix(low, phUser)
	rest := low // where the reason is looked for
	restAt := 0
	if userMsg {
		// Search from the space that ends "User: " so an empty caller still parses.
		if i := strings.Index(low[len(phUser)-1:], phNotAuth); i >= 0 {
			i += len(phUser) - 1
			if i >= len(phUser) {
				m.Caller = strings.TrimSpace(t[len(phUser):i])
			}
			restAt = i + len(phNotAuth)
			m.Action, restAt = token(t, restAt)
			m.Action = strings.TrimRight(m.Action, ".,;")
			restAt = skipSpaces(t, restAt)
			m.Resource, restAt = resourceClause(t, low, restAt)
			rest = low[restAt:]
		} else {
			userMsg = false
		}
	}

	if reasonKind(&m, t, low, restAt) {
		return m
	}
	if userMsg {
		if strings.Trim(rest, " .") == "" {
			m.Kind = MsgNoReason
		}
		return m
	}
	keyStateKind(&m, t, low)
	return m
}

// reasonKind reads the "because ..." / "with an explicit deny ..." clause that starts at or
// after from. It reports whether it found one.
func reasonKind(m *Message, t, low string, from int) bool {
	rest := low[from:]
	for _, p := range ambiguousPhrases {
		if strings.Contains(rest, p) {
			m.Kind = MsgAmbiguous
			return true
		}
	}
	if strings.Contains(rest, phCiphertext) {
		m.Kind = MsgCiphertext
		return true
	}
	if i := strings.Index(rest, phExplicit); i >= 0 {
		m.Kind = MsgExplicitDeny
		at := from + i + len(phExplicit)
		if strings.HasPrefix(low[at:], " in ") {
			at += len(" in ")
			end := len(low)
			// Since 2025 the message may end with the denying policy's ARN:
			// "... in a service control policy: arn:aws:organizations::...".
			if j := strings.Index(low[at:], phPolicyARN); j >= 0 {
				end = at + j
				m.PolicyARN, _ = token(t, end+2)
				m.PolicyARN = strings.TrimRight(m.PolicyARN, ".,;")
			}
			if j := strings.Index(low[at:end], phTransitive); j >= 0 {
				m.Transitive, _, _ = policyType(low[at+j+len(phTransitive) : end])
				end = at + j
			}
			pt, skip, name := policyType(low[at:end])
			m.PolicyType, m.PolicyPhrase = pt, t[at+skip:at+skip+len(name)]
		}
		return true
	}
	if i := strings.Index(rest, phBecauseNo); i >= 0 {
		at := from + i + len(phBecauseNo)
		end := len(low)
		if j := strings.Index(low[at:], " allow"); j >= 0 {
			end = at + j
		}
		pt, skip, name := policyType(low[at:end])
		m.PolicyType, m.PolicyPhrase = pt, t[at+skip:at+skip+len(name)]
		switch pt {
		case PolicyIdentity:
			m.Kind = MsgNoIdentityAllow
		case PolicyResource:
			m.Kind = MsgNoResourceAllow
		case "":
			m.Kind = MsgUnknown
		default:
			m.Kind = MsgNoAllow
		}
		return true
	}
	return false
}

// policyTypes maps the phrase IAM uses (after an optional article) to a Policy* constant.
// "sessions policy" is IAM's own spelling in the explicit-deny message.
var policyTypes = [...]struct{ phrase, typ string }{
	{"service control polic", PolicySCP},
	{"resource control polic", PolicyRCP},
	{"permissions boundar", PolicyBoundary},
	{"permission boundar", PolicyBoundary},
	{"sessions polic", PolicySession},
	{"session polic", PolicySession},
	{"vpc endpoint polic", PolicyVPCEndpoint},
	{"identity-based polic", PolicyIdentity},
	{"identity based polic", PolicyIdentity},
	{"resource-based polic", PolicyResource},
	{"resource based polic", PolicyResource},
}

// policyType reads a policy type name at the start of s (lower case), after an optional
// article. It returns the Policy* constant ("" when unknown), the length of the article, and
// the name without trailing punctuation, so callers can cut the same bytes from the original.
func policyType(s string) (typ string, skip int, name string) {
	for _, a := range [...]string{"a ", "an ", "the "} {
		if strings.HasPrefix(s, a) {
			skip = len(a)
			break
		}
	}
	name = strings.TrimRight(s[skip:], " .,;")
	for _, p := range policyTypes {
		if strings.HasPrefix(name, p.phrase) {
			return p.typ, skip, name
		}
	}
	return "", skip, name
}

// keyStateKind reads the KMS key-state and not-found messages ("<arn> is disabled.",
// "Key '<arn>' does not exist", ...).
func keyStateKind(m *Message, t, low string) {
	if strings.Contains(low, phCiphertext) {
		m.Kind = MsgCiphertext
		return
	}
	states := [...]struct {
		phrase string
		kind   MessageKind
		state  string
	}{
		{" is disabled", MsgDisabled, "Disabled"},
		{" is pending deletion", MsgPendingDeletion, "PendingDeletion"},
		{" is pending replica deletion", MsgPendingDeletion, "PendingReplicaDeletion"},
		{" is pending import", MsgInvalidState, "PendingImport"},
		{" is unavailable", MsgInvalidState, "Unavailable"},
		{" is creating", MsgInvalidState, "Creating"},
		{" is updating", MsgInvalidState, "Updating"},
		{" is not found", MsgNotFound, ""},
	}
	for _, s := range states {
		if i := strings.Index(low, s.phrase); i >= 0 {
			m.Kind, m.State = s.kind, s.state
			m.Resource = lastToken(t[:i])
			return
		}
	}
	switch {
	case strings.Contains(low, "custom key store"), strings.Contains(low, "external key store"),
		strings.Contains(low, "key store proxy"), strings.Contains(low, "cloudhsm"),
		strings.Contains(low, "xks proxy"):
		m.Kind, m.State = MsgInvalidState, StateCustomKeyStore
	case strings.Contains(low, "does not exist"):
		m.Kind = MsgNotFound
		m.Resource = quoted(t, low)
	case strings.HasPrefix(low, "invalid keyid"), strings.HasPrefix(low, "invalid arn"),
		strings.HasPrefix(low, "invalid key id"), strings.HasPrefix(low, "invalid alias"):
		m.Kind = MsgNotFound
		m.Resource = quoted(t, low)
	}
}

// resourceClause reads "on resource: R", "on this resource" or "on the resource associated
// with this ciphertext" at t[at:]. R may be quoted (S3 quotes it).
func resourceClause(t, low string, at int) (string, int) {
	switch {
	case strings.HasPrefix(low[at:], phOnResource):
		at = skipSpaces(t, at+len(phOnResource))
		if at < len(t) && t[at] == '"' {
			if j := strings.IndexByte(t[at+1:], '"'); j >= 0 {
				return t[at+1 : at+1+j], at + j + 2
			}
		}
		r, end := token(t, at)
		return strings.TrimRight(strings.Trim(r, `"`), ".,;"), end
	case strings.HasPrefix(low[at:], phOnThis):
		return "", at + len(phOnThis)
	case strings.HasPrefix(low[at:], phOnCiphertext):
		return "", at + len(phOnCiphertext)
	}
	return "", at
}

// token returns the run of non-space bytes at t[at:] and the offset after it.
func token(t string, at int) (string, int) {
	end := at
	for end < len(t) && t[end] != ' ' {
		end++
	}
	return t[at:end], end
}

func skipSpaces(t string, at int) int {
	for at < len(t) && t[at] == ' ' {
		at++
	}
	return at
}

// lastToken returns the last space-separated word of s without quotes.
func lastToken(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		s = s[i+1:]
	}
	return strings.Trim(s, `"'`)
}

// quoted returns the first '...' quoted part of t, or "".
func quoted(t, low string) string {
	i := strings.IndexByte(low, '\'')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(low[i+1:], '\'')
	if j < 0 {
		return ""
	}
	return t[i+1 : i+1+j]
}

// asciiLower lowers A-Z only, so byte offsets in the result match the input (strings.ToLower
// may change the length of non-ASCII text).
func asciiLower(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
