// Package eventpattern evaluates Amazon EventBridge event patterns against events, so tests (and
// `kmsfix doctor`) can check offline that a rule's pattern matches the events it is meant for.
//
// It implements the documented content-filtering semantics
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html):
//   - every field named in the pattern must match (AND); the values listed for a field are
//     alternatives (OR); a field absent from the event matches only {"exists": false};
//   - nested objects in the pattern address nested objects in the event;
//   - when the event's value is an array, the field matches if any element matches;
//   - literal strings, numbers (compared numerically), booleans and null match exactly;
//   - operators: exists, prefix, suffix, equals-ignore-case, wildcard, numeric, anything-but
//     (values, prefix, suffix, equals-ignore-case, wildcard), cidr, and $or.
//
// Operators it does not know are reported as errors rather than silently not matching, so a test
// built on it fails loudly instead of giving a false answer.
package eventpattern

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// Pattern is a compiled event pattern.
type Pattern struct {
	root map[string]any
}

// Compile parses and validates an event pattern given as JSON.
func Compile(pattern []byte) (*Pattern, error) {
	v, err := decode(pattern)
	if err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("event pattern: must be a JSON object, got %T", v)
	}
	if err := validateObject(root, ""); err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	return &Pattern{root: root}, nil
}

// FromValue compiles a pattern that is already decoded (for instance taken from a synthesized
// CloudFormation template).
func FromValue(v any) (*Pattern, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	return Compile(b)
}

// Match reports whether the event (JSON) matches the pattern.
func (p *Pattern) Match(event []byte) (bool, error) {
	v, err := decode(event)
	if err != nil {
		return false, fmt.Errorf("event: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false, fmt.Errorf("event: must be a JSON object, got %T", v)
	}
	return matchObject(p.root, obj), nil
}

func decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

// validateObject checks the pattern's shape once, so matching never meets a malformed pattern.
func validateObject(obj map[string]any, path string) error {
	for k, v := range obj {
		p := join(path, k)
		if k == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return fmt.Errorf("%s: $or needs an array of at least two patterns", p)
			}
			for _, a := range alts {
				ao, ok := a.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: each $or alternative must be an object", p)
				}
				if err := validateObject(ao, path); err != nil {
					return err
				}
			}
			continue
		}
		switch t := v.(type) {
		case map[string]any:
			if err := validateObject(t, p); err != nil {
				return err
			}
		case []any:
			if len(t) == 0 {
				return fmt.Errorf("%s: empty array matches nothing", p)
			}
			for _, m := range t {
				if err := validateMatcher(m, p); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%s: leaf values must be arrays, got %T", p, v)
		}
	}
	return nil
}

func validateMatcher(m any, path string) error {
	op, ok := m.(map[string]any)
	if !ok {
		switch m.(type) {
		case string, json.Number, bool, nil:
			return nil
		}
		return fmt.Errorf("%s: unsupported matcher %T", path, m)
	}
	if len(op) != 1 {
		return fmt.Errorf("%s: an operator object must have exactly one key", path)
	}
	for name, arg := range op {
		switch name {
		case "exists":
			if _, ok := arg.(bool); !ok {
				return fmt.Errorf("%s: exists takes true or false", path)
			}
		case "prefix", "suffix":
			if _, ok := arg.(string); ok {
				return nil
			}
			if inner, ok := arg.(map[string]any); ok && len(inner) == 1 {
				if s, ok := inner["equals-ignore-case"].(string); ok && s != "" {
					return nil
				}
			}
			return fmt.Errorf("%s: %s takes a string or {\"equals-ignore-case\": string}", path, name)
		case "equals-ignore-case", "wildcard":
			if _, ok := arg.(string); !ok {
				return fmt.Errorf("%s: %s takes a string", path, name)
			}
		case "cidr":
			s, ok := arg.(string)
			if !ok {
				return fmt.Errorf("%s: cidr takes a string", path)
			}
			if _, err := netip.ParsePrefix(s); err != nil {
				return fmt.Errorf("%s: cidr: %w", path, err)
			}
		case "numeric":
			if _, err := numericRange(arg); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		case "anything-but":
			switch a := arg.(type) {
			case string, json.Number:
			case []any:
				for _, x := range a {
					switch x.(type) {
					case string, json.Number:
					default:
						return fmt.Errorf("%s: anything-but lists strings or numbers", path)
					}
				}
			case map[string]any:
				if len(a) != 1 {
					return fmt.Errorf("%s: anything-but takes one operator", path)
				}
				for k, v := range a {
					switch k {
					case "prefix", "suffix", "equals-ignore-case", "wildcard":
					default:
						return fmt.Errorf("%s: anything-but does not support %q", path, k)
					}
					if err := checkStrings(v); err != nil {
						return fmt.Errorf("%s: anything-but %s: %w", path, k, err)
					}
				}
			default:
				return fmt.Errorf("%s: unsupported anything-but argument %T", path, arg)
			}
		default:
			return fmt.Errorf("%s: unsupported operator %q", path, name)
		}
	}
	return nil
}

func checkStrings(v any) error {
	switch a := v.(type) {
	case string:
		return nil
	case []any:
		for _, x := range a {
			if _, ok := x.(string); !ok {
				return fmt.Errorf("expects strings")
			}
		}
		return nil
	}
	return fmt.Errorf("expects a string or a list of strings")
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// matchObject: every key of the pattern must match; absent event keys can only satisfy exists:false.
func matchObject(pat map[string]any, ev map[string]any) bool {
	for k, pv := range pat {
		if k == "$or" {
			if !matchAnyOf(pv.([]any), ev) {
				return false
			}
			continue
		}
		evVal, present := ev[k]
		switch p := pv.(type) {
		case map[string]any:
			if !matchNested(p, evVal) {
				return false
			}
		case []any:
			if !matchField(p, evVal, present) {
				return false
			}
		}
	}
	return true
}

func matchAnyOf(alts []any, ev map[string]any) bool {
	for _, a := range alts {
		if matchObject(a.(map[string]any), ev) {
			return true
		}
	}
	return false
}

func matchNested(p map[string]any, evVal any) bool {
	switch e := evVal.(type) {
	case map[string]any:
		return matchObject(p, e)
	case []any:
		for _, el := range e {
			if o, ok := el.(map[string]any); ok && matchObject(p, o) {
				return true
			}
		}
		return false
	}
	// The event has no object here: only a sub-pattern made entirely of exists:false can match.
	return matchObject(p, map[string]any{})
}

// matchField: the listed matchers are alternatives; an array value matches if any element does.
func matchField(matchers []any, evVal any, present bool) bool {
	if !present {
		for _, m := range matchers {
			if op, ok := m.(map[string]any); ok {
				if b, ok := op["exists"].(bool); ok && !b {
					return true
				}
			}
		}
		return false
	}
	values := []any{evVal}
	if arr, ok := evVal.([]any); ok {
		values = arr
	}
	for _, m := range matchers {
		for _, v := range values {
			if matchLeaf(m, v) {
				return true
			}
		}
	}
	return false
}

func matchLeaf(m any, v any) bool {
	// Leaf matchers apply to leaf values only (exists does not match intermediate objects).
	if _, isObj := v.(map[string]any); isObj {
		return false
	}
	op, isOp := m.(map[string]any)
	if !isOp {
		return literalEqual(m, v)
	}
	for name, arg := range op {
		switch name {
		case "exists":
			return arg.(bool)
		case "prefix":
			return stringOp(arg, v, strings.HasPrefix)
		case "suffix":
			return stringOp(arg, v, strings.HasSuffix)
		case "equals-ignore-case":
			s, ok := v.(string)
			return ok && strings.EqualFold(s, arg.(string))
		case "wildcard":
			s, ok := v.(string)
			return ok && wildcard(arg.(string), s)
		case "cidr":
			s, ok := v.(string)
			if !ok {
				return false
			}
			addr, err := netip.ParseAddr(s)
			pfx, _ := netip.ParsePrefix(arg.(string))
			return err == nil && pfx.Contains(addr)
		case "numeric":
			n, ok := v.(json.Number)
			if !ok {
				return false
			}
			f, err := n.Float64()
			if err != nil {
				return false
			}
			r, _ := numericRange(arg)
			return r.contains(f)
		case "anything-but":
			return anythingBut(arg, v)
		}
	}
	return false
}

// stringOp applies prefix/suffix, optionally case-insensitively.
func stringOp(arg any, v any, f func(s, affix string) bool) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	if a, ok := arg.(string); ok {
		return f(s, a)
	}
	a := arg.(map[string]any)["equals-ignore-case"].(string)
	return f(strings.ToLower(s), strings.ToLower(a))
}

func anythingBut(arg any, v any) bool {
	switch a := arg.(type) {
	case string, json.Number:
		return !literalEqual(a, v)
	case []any:
		for _, x := range a {
			if literalEqual(x, v) {
				return false
			}
		}
		return true
	case map[string]any:
		s, ok := v.(string)
		if !ok {
			return false
		}
		for k, raw := range a {
			for _, x := range strs(raw) {
				var hit bool
				switch k {
				case "prefix":
					hit = strings.HasPrefix(s, x)
				case "suffix":
					hit = strings.HasSuffix(s, x)
				case "equals-ignore-case":
					hit = strings.EqualFold(s, x)
				case "wildcard":
					hit = wildcard(x, s)
				}
				if hit {
					return false
				}
			}
		}
		return true
	}
	return false
}

func strs(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func literalEqual(m any, v any) bool {
	switch a := m.(type) {
	case nil:
		return v == nil
	case string:
		s, ok := v.(string)
		return ok && s == a
	case bool:
		b, ok := v.(bool)
		return ok && b == a
	case json.Number:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		x, err1 := a.Float64()
		y, err2 := n.Float64()
		return err1 == nil && err2 == nil && x == y
	}
	return false
}

// wildcard matches '*' against any run of characters; "\*" is a literal star.
func wildcard(pat, s string) bool {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(pat); i++ {
		switch {
		case pat[i] == '\\' && i+1 < len(pat) && pat[i+1] == '*':
			cur.WriteByte('*')
			i++
		case pat[i] == '*':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(pat[i])
		}
	}
	parts = append(parts, cur.String())
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

type numRange struct {
	lo, hi       float64
	loInc, hiInc bool
	eq           *float64
}

func (r numRange) contains(f float64) bool {
	if r.eq != nil {
		return f == *r.eq
	}
	if f < r.lo || (f == r.lo && !r.loInc) {
		return false
	}
	if f > r.hi || (f == r.hi && !r.hiInc) {
		return false
	}
	return true
}

// numericRange parses ["<", 10], [">=", 0, "<", 5] or ["=", 3].
func numericRange(arg any) (numRange, error) {
	a, ok := arg.([]any)
	if !ok || len(a) == 0 || len(a)%2 != 0 || len(a) > 4 {
		return numRange{}, fmt.Errorf("numeric takes [op, n] or [op, n, op, n]")
	}
	r := numRange{lo: math.Inf(-1), hi: math.Inf(1), loInc: true, hiInc: true}
	for i := 0; i < len(a); i += 2 {
		op, ok1 := a[i].(string)
		num, ok2 := a[i+1].(json.Number)
		if !ok1 || !ok2 {
			return numRange{}, fmt.Errorf("numeric takes operator strings followed by numbers")
		}
		f, err := num.Float64()
		if err != nil {
			return numRange{}, fmt.Errorf("numeric: %w", err)
		}
		switch op {
		case "=":
			if len(a) != 2 {
				return numRange{}, fmt.Errorf("numeric: = cannot be combined")
			}
			r.eq = &f
		case ">":
			r.lo, r.loInc = f, false
		case ">=":
			r.lo, r.loInc = f, true
		case "<":
			r.hi, r.hiInc = f, false
		case "<=":
			r.hi, r.hiInc = f, true
		default:
			return numRange{}, fmt.Errorf("numeric: unknown operator %q", op)
		}
	}
	return r, nil
}
