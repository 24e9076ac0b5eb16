package policy

import (
	"encoding/json"
	"slices"
)

// appendStatement appends what json.Marshal(statementFields(s)) writes, without reflection
// and without the nested json.Marshal calls of Values, Principal and Condition (a statement
// built in Go is written into every report and patch command). Strings that are not plain
// printable ASCII are escaped by encoding/json itself. FuzzParse and
// TestMarshalStatementMatchesEncodingJSON check the output byte for byte.
func appendStatement(b []byte, s *Statement) []byte {
	b = append(b, '{')
	if s.Sid != "" {
		b = append(b, `"Sid":`...)
		b = appendString(b, s.Sid)
		b = append(b, ',')
	}
	b = append(b, `"Effect":`...)
	b = appendString(b, s.Effect)
	b = appendPrincipal(b, `,"Principal":`, s.Principal)
	b = appendPrincipal(b, `,"NotPrincipal":`, s.NotPrincipal)
	b = appendValuesField(b, `,"Action":`, s.Action)
	b = appendValuesField(b, `,"NotAction":`, s.NotAction)
	b = appendValuesField(b, `,"Resource":`, s.Resource)
	b = appendValuesField(b, `,"NotResource":`, s.NotResource)
	if len(s.Condition) > 0 {
		b = append(b, `,"Condition":{`...)
		for i, op := range sortedKeys(s.Condition) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, op)
			b = append(b, ':')
			b = appendValuesMap(b, s.Condition[op])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendPrincipal writes a Principal element unless p is nil (omitempty).
func appendPrincipal(b []byte, name string, p *Principal) []byte {
	if p == nil {
		return b
	}
	b = append(b, name...)
	if p.Wildcard {
		return append(b, `"*"`...)
	}
	return appendValuesMap(b, p.Types)
}

// appendValuesField writes a Values element unless it is empty (omitzero).
func appendValuesField(b []byte, name string, v Values) []byte {
	if v.IsZero() {
		return b
	}
	return appendValues(append(b, name...), v)
}

// appendValues writes what Values.MarshalJSON does.
func appendValues(b []byte, v Values) []byte {
	if v.Single && len(v.Items) == 1 {
		return appendString(b, v.Items[0])
	}
	b = append(b, '[')
	for i, s := range v.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendValuesMap writes a map of Values as json.Marshal does: keys sorted, nil as null.
func appendValuesMap(b []byte, m map[string]Values) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValues(b, m[k])
	}
	return append(b, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendString writes s as a JSON string exactly as encoding/json does (which escapes <, >
// and &, replaces invalid UTF-8, and escapes U+2028 and U+2029): plain printable ASCII is
// copied, anything else is left to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
