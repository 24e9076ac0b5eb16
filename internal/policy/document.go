// Package policy models IAM policy documents (identity policies, key policies, boundaries) in
// IAM's own grammar and evaluates the subset of requests KMS sees when S3 calls it for a
// principal.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Values is IAM's "string or list of strings". It remembers which form it was read in so a
// document written back differs from the original only where we changed it.
type Values struct {
	Items  []string
	Single bool // written as a bare string (or bool/number) rather than a list
}

// V builds a Values; one item is written as a bare string.
func V(items ...string) Values { return Values{Items: items, Single: len(items) == 1} }

// List builds a Values that is always written as a JSON list.
func List(items ...string) Values { return Values{Items: items} }

func (v Values) IsZero() bool { return len(v.Items) == 0 }

func (v Values) MarshalJSON() ([]byte, error) {
	if v.Single && len(v.Items) == 1 {
		return json.Marshal(v.Items[0])
	}
	if v.Items == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(v.Items)
}

func (v *Values) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("empty value")
	}
	d := newDecoder(b)
	if x, ok := d.values(); ok && d.end() {
		*v = x
		return nil
	}
	// Anything the one-pass decoder does not take (errors included) is read as before.
	switch b[0] {
	case '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		v.Items = make([]string, 0, len(raw))
		for _, r := range raw {
			s, err := scalar(r)
			if err != nil {
				return err
			}
			v.Items = append(v.Items, s)
		}
		v.Single = false
		return nil
	default:
		s, err := scalar(b)
		if err != nil {
			return err
		}
		v.Items, v.Single = []string{s}, true
		return nil
	}
}

// scalar reads a JSON string, bool or number as the string IAM compares it as.
func scalar(b json.RawMessage) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", fmt.Errorf("empty value")
	}
	switch b[0] {
	case '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case 't', 'f':
		var x bool
		if err := json.Unmarshal(b, &x); err != nil {
			return "", err
		}
		return strconv.FormatBool(x), nil
	case 'n':
		return "", fmt.Errorf("null is not a policy value")
	case '{', '[':
		return "", fmt.Errorf("expected a string, got %s", firstBytes(b))
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	}
}

func firstBytes(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "..."
	}
	return string(b)
}

// Principal is the Principal or NotPrincipal element: the string "*" or a map of
// principal types ("AWS", "Service", "Federated", "CanonicalUser") to values.
type Principal struct {
	Wildcard bool              // the bare string "*"
	Types    map[string]Values // keyed by type as written
}

// AWSPrincipal is {"AWS": arns...}.
func AWSPrincipal(arns ...string) *Principal {
	return &Principal{Types: map[string]Values{"AWS": V(arns...)}}
}

func (p Principal) MarshalJSON() ([]byte, error) {
	if p.Wildcard {
		return []byte(`"*"`), nil
	}
	return marshalSorted(p.Types)
}

func (p *Principal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	d := newDecoder(b)
	if x, ok := d.principal(); ok && d.end() {
		if x.Wildcard {
			p.Wildcard = true
			return nil
		}
		// Like json.Unmarshal into p.Types: a map already there gets the types added.
		if p.Types == nil {
			p.Types = x.Types
			return nil
		}
		for typ, v := range x.Types {
			p.Types[typ] = v
		}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != "*" {
			return fmt.Errorf("principal string must be \"*\", got %q", s)
		}
		p.Wildcard = true
		return nil
	}
	return json.Unmarshal(b, &p.Types)
}

// Condition maps an operator (e.g. "StringEquals", "ForAnyValue:StringLike") to condition
// keys and their values.
type Condition map[string]map[string]Values

func (c Condition) MarshalJSON() ([]byte, error) {
	ops := make(map[string]json.RawMessage, len(c))
	for op, kv := range c {
		b, err := marshalSorted(kv)
		if err != nil {
			return nil, err
		}
		ops[op] = b
	}
	return marshalSorted(ops)
}

// Statement is one policy statement.
type Statement struct {
	Sid          string     `json:"Sid,omitempty"`
	Effect       string     `json:"Effect"`
	Principal    *Principal `json:"Principal,omitempty"`
	NotPrincipal *Principal `json:"NotPrincipal,omitempty"`
	Action       Values     `json:"Action,omitzero"`
	NotAction    Values     `json:"NotAction,omitzero"`
	Resource     Values     `json:"Resource,omitzero"`
	NotResource  Values     `json:"NotResource,omitzero"`
	Condition    Condition  `json:"Condition,omitempty"`

	raw json.RawMessage // as read; written back unchanged so merges keep others' text
}

type statementFields Statement

func (s *Statement) UnmarshalJSON(b []byte) error {
	d := newDecoder(b)
	if x, ok := d.statement(); ok && d.end() {
		*s = x
		return nil
	}
	var f statementFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Statement(f)
	s.raw = append(json.RawMessage(nil), bytes.TrimSpace(b)...)
	return nil
}

func (s Statement) MarshalJSON() ([]byte, error) {
	if s.raw != nil {
		return s.raw, nil
	}
	return appendStatement(make([]byte, 0, 256), &s), nil // = json.Marshal(statementFields(s))
}

// Statements is the Statement element: a single object or a list.
type Statements []Statement

func (ss *Statements) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	d := newDecoder(b)
	if x, ok := d.statements(); ok && d.end() {
		*ss = x
		return nil
	}
	if len(b) > 0 && b[0] == '{' {
		var one Statement
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*ss = Statements{one}
		return nil
	}
	var many []Statement
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*ss = many
	return nil
}

// Document is a whole policy.
type Document struct {
	Version   string     `json:"Version,omitempty"`
	ID        string     `json:"Id,omitempty"`
	Statement Statements `json:"Statement"`
}

// Parse reads a policy document. IAM returns documents URL-encoded; callers decode first.
func Parse(b []byte) (*Document, error) {
	dec := newDecoder(b)
	d, ok := dec.document()
	if !ok {
		// Anything the one-pass decoder does not take (errors included) is read as before.
		d = &Document{}
		if err := json.Unmarshal(b, d); err != nil {
			return nil, err
		}
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate reports grammar errors that would make IAM reject the document.
func (d *Document) Validate() error {
	for i, s := range d.Statement {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return fmt.Errorf("statement %d: Effect must be Allow or Deny, got %q", i, s.Effect)
		}
		if s.Action.IsZero() == s.NotAction.IsZero() {
			return fmt.Errorf("statement %d: exactly one of Action and NotAction is required", i)
		}
		if !s.Resource.IsZero() && !s.NotResource.IsZero() {
			return fmt.Errorf("statement %d: Resource and NotResource are exclusive", i)
		}
		if s.Principal != nil && s.NotPrincipal != nil {
			return fmt.Errorf("statement %d: Principal and NotPrincipal are exclusive", i)
		}
	}
	return nil
}

// StatementBySid returns the statement with the given Sid, if any.
func (d *Document) StatementBySid(sid string) (Statement, bool) {
	for _, s := range d.Statement {
		if s.Sid == sid {
			return s, true
		}
	}
	return Statement{}, false
}

// With returns a copy of d with extra statements appended; existing statements keep their text.
func (d *Document) With(extra ...Statement) *Document {
	out := &Document{Version: d.Version, ID: d.ID}
	out.Statement = append(append(Statements{}, d.Statement...), extra...)
	if out.Version == "" {
		out.Version = "2012-10-17"
	}
	return out
}

// marshalSorted writes a map with sorted keys (encoding/json already sorts map keys); kept as
// one place so output is deterministic for golden files.
func marshalSorted[T any](m map[string]T) ([]byte, error) { return json.Marshal(m) }
