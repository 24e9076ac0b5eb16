package policy

import (
	"bytes"
	"unicode/utf8"
)

// decoder reads the policy grammar in one pass over the input. The encoding/json-based
// UnmarshalJSON methods re-scan each nesting level's bytes (json.Unmarshal validates and
// decodes them again), which made parsing twenty times slower than evaluating.
//
// The decoder handles the documents seen in practice and gives up (ok == false) on anything
// else: escapes in strings, invalid UTF-8, null, duplicate statement or document fields,
// deep nesting, non-ASCII element names, or any syntax or type error. Callers then decode
// with encoding/json as before, so the result, and every error, are encoding/json's. On
// success the result equals encoding/json's (FuzzParse checks this).
//
// Decoded strings are substrings of one copy of the input, statements' raw text are
// capacity-limited sub-slices of another, and Values.Items and Principals come from a few
// shared arrays sized from the input, so a document costs a handful of allocations besides
// its maps.
type decoder struct {
	b          []byte
	i          int
	s          string      // the input as a string; decoded strings are substrings of it
	raw        []byte      // copy of the input for statements' raw text, made at the first statement
	items      []string    // backing store for Values.Items; each Values gets a capacity-limited window
	principals []Principal // backing store for Principal and NotPrincipal elements
}

func newDecoder(b []byte) decoder {
	return decoder{b: b, s: string(b)}
}

// maxSkipDepth bounds the nesting of values the decoder skips; deeper input goes to
// encoding/json (which allows 10,000 levels).
const maxSkipDepth = 64

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end says only JSON whitespace is left.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// consume reads the byte c after optional whitespace.
func (d *decoder) consume(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// str reads a JSON string without escapes that is valid UTF-8 and returns its contents.
func (d *decoder) str() (string, bool) {
	if d.peek() != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(d.b[start:j]) {
				return "", false // encoding/json would replace invalid bytes with U+FFFD
			}
			d.i = j + 1
			return d.s[start:j], true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// name reads an object member name and the colon after it. Names with escapes or
// non-ASCII bytes are refused: encoding/json matches struct fields case-insensitively with
// Unicode folding ("ſid" is Sid), which the ASCII comparisons here do not do.
func (d *decoder) name() (string, bool) {
	s, ok := d.str()
	if !ok || !d.consume(':') {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return "", false
		}
	}
	return s, true
}

// key reads a map key (kept as written, like encoding/json) and the colon after it.
func (d *decoder) key() (string, bool) {
	s, ok := d.str()
	if !ok || !d.consume(':') {
		return "", false
	}
	return s, true
}

// next reads the separator after an object member or array element: it returns more ==
// true after ',' and false after the closing byte.
func (d *decoder) next(closing byte) (more, ok bool) {
	switch d.peek() {
	case ',':
		d.i++
		return true, true
	case closing:
		d.i++
		return false, true
	}
	return false, false
}

// fields reads an object whose known members are names: member reads the value of the
// known member at that index; unknown members are skipped; a repeated one fails, leaving it
// to encoding/json.
func (d *decoder) fields(names []string, member func(f int) bool) bool {
	var seen uint32
	return d.object(func(name string) bool {
		f := field(names, name)
		if f < 0 {
			return d.skip(0)
		}
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		return member(f)
	}, true)
}

// object calls member for each member of a JSON object; member reads the value.
func (d *decoder) object(member func(name string) bool, named bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		var n string
		var ok bool
		if named {
			n, ok = d.name()
		} else {
			n, ok = d.key()
		}
		if !ok || !member(n) {
			return false
		}
		more, ok := d.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// literal reads true, false or a number and returns its text (what IAM compares).
func (d *decoder) literal() (string, bool) {
	switch c := d.peek(); {
	case c == 't':
		return d.word("true")
	case c == 'f':
		return d.word("false")
	case c == '-' || ('0' <= c && c <= '9'):
		start := d.i
		if !d.number() {
			return "", false
		}
		return d.s[start:d.i], true
	}
	return "", false
}

func (d *decoder) word(w string) (string, bool) {
	if len(d.b)-d.i < len(w) || string(d.b[d.i:d.i+len(w)]) != w {
		return "", false
	}
	d.i += len(w)
	return w, true
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() bool {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	d.i = i
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skip reads and validates any JSON value (an element the policy grammar does not use).
func (d *decoder) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	switch c := d.peek(); c {
	case '"':
		return d.skipString()
	case '{':
		return d.object(func(string) bool { return d.skip(depth + 1) }, false)
	case '[':
		d.i++
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			more, ok := d.next(']')
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case 'n':
		_, ok := d.word("null")
		return ok
	}
	_, ok := d.literal()
	return ok
}

// skipString validates a string, escapes included.
func (d *decoder) skipString() bool {
	b := d.b
	for j := d.i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(b) {
				return false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return false
				}
				for _, h := range b[j+1 : j+5] {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// --- the policy grammar ---

// values reads a string, bool or number, or a list of them, as Values.UnmarshalJSON does.
func (d *decoder) values() (Values, bool) {
	if d.items == nil {
		// At most one item per string in the input (names included), plus a few literals.
		d.items = make([]string, 0, bytes.Count(d.b, []byte{'"'})/2+4)
	}
	switch d.peek() {
	case '[':
		d.i++
		start := len(d.items)
		if d.peek() == ']' {
			d.i++
			return Values{Items: []string{}}, true
		}
		for {
			s, ok := d.scalar()
			if !ok {
				return Values{}, false
			}
			d.items = append(d.items, s)
			more, ok := d.next(']')
			if !ok {
				return Values{}, false
			}
			if !more {
				end := len(d.items)
				return Values{Items: d.items[start:end:end]}, true
			}
		}
	default:
		s, ok := d.scalar()
		if !ok {
			return Values{}, false
		}
		d.items = append(d.items, s)
		end := len(d.items)
		return Values{Items: d.items[end-1 : end : end], Single: true}, true
	}
}

func (d *decoder) scalar() (string, bool) {
	if d.peek() == '"' {
		return d.str()
	}
	return d.literal()
}

// principal reads "*" or a map of principal types to values.
func (d *decoder) principal() (*Principal, bool) {
	if d.peek() == '"' {
		s, ok := d.str()
		if !ok || s != "*" {
			return nil, false
		}
		return &Principal{Wildcard: true}, true
	}
	if d.principals == nil {
		// At most one Principal per "...rincipal" name as usually written; more get their own.
		d.principals = make([]Principal, 0, bytes.Count(d.b, []byte(`rincipal"`)))
	}
	var p *Principal
	if len(d.principals) < cap(d.principals) {
		d.principals = d.principals[:len(d.principals)+1]
		p = &d.principals[len(d.principals)-1]
	} else {
		p = &Principal{}
	}
	p.Types = map[string]Values{}
	ok := d.object(func(typ string) bool {
		v, ok := d.values()
		p.Types[typ] = v
		return ok
	}, false)
	return p, ok
}

func (d *decoder) condition() (Condition, bool) {
	c := Condition{}
	ok := d.object(func(op string) bool {
		keys := map[string]Values{}
		c[op] = keys
		return d.object(func(key string) bool {
			v, ok := d.values()
			keys[key] = v
			return ok
		}, false)
	}, false)
	return c, ok
}

// Statement element names, in the order of their bit in statement's seen set.
var statementNames = [...]string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

// field returns the index of name in names, matched as encoding/json matches struct fields
// (case-insensitively; no two names here differ only in case), or -1.
func field(names []string, name string) int {
	for i, n := range names {
		if equalFoldASCII(n, name) {
			return i
		}
	}
	return -1
}

// statement reads one statement object and keeps its text. A repeated element goes to
// encoding/json (which merges a repeated Principal into the first).
func (d *decoder) statement() (Statement, bool) {
	var s Statement
	if d.peek() != '{' {
		return s, false
	}
	start := d.i
	ok := d.fields(statementNames[:], func(f int) bool {
		var ok bool
		switch f {
		case 0:
			s.Sid, ok = d.str()
		case 1:
			s.Effect, ok = d.str()
		case 2:
			s.Principal, ok = d.principal()
		case 3:
			s.NotPrincipal, ok = d.principal()
		case 4:
			s.Action, ok = d.values()
		case 5:
			s.NotAction, ok = d.values()
		case 6:
			s.Resource, ok = d.values()
		case 7:
			s.NotResource, ok = d.values()
		case 8:
			s.Condition, ok = d.condition()
		}
		return ok
	})
	if !ok {
		return s, false
	}
	if d.raw == nil {
		d.raw = append([]byte(nil), d.b...)
	}
	s.raw = d.raw[start:d.i:d.i]
	return s, true
}

// statements reads the Statement element: one statement object or a list of them.
func (d *decoder) statements() (Statements, bool) {
	var ss Statements
	switch d.peek() {
	case '{':
		s, ok := d.statement()
		if !ok {
			return nil, false
		}
		ss = Statements{s}
	case '[':
		d.i++
		ss = Statements{}
		if d.peek() == ']' {
			d.i++
			return ss, true
		}
		var buf [8]Statement // most documents have a few statements: one allocation for them
		list := buf[:0]
		for {
			s, ok := d.statement()
			if !ok {
				return nil, false
			}
			list = append(list, s)
			more, ok := d.next(']')
			if !ok {
				return nil, false
			}
			if !more {
				break
			}
		}
		ss = append(Statements(nil), list...)
	default:
		return nil, false
	}
	return ss, true
}

var documentNames = [...]string{"Version", "Id", "Statement"}

// document reads a whole policy document, as json.Unmarshal into a Document does.
func (d *decoder) document() (*Document, bool) {
	doc := &Document{}
	ok := d.fields(documentNames[:], func(f int) bool {
		var ok bool
		switch f {
		case 0:
			doc.Version, ok = d.str()
		case 1:
			doc.ID, ok = d.str()
		case 2:
			doc.Statement, ok = d.statements()
		}
		return ok
	})
	return doc, ok && d.end()
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}
