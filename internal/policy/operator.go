package policy

import (
	"strconv"
	"strings"
	"time"
)

// Condition operators, parsed once per operator rather than once per key and value.

// condEntry is one condition key under one operator, the operator parsed once:
// "ForAnyValue:StringNotLikeIfExists" is set forAny, kind opLike, negated, ifExists.
type condEntry struct {
	key      string
	vals     []string
	kind     opKind
	cmp      cmpKind // Numeric and Date comparisons
	set      setKind
	ifExists bool
	negated  bool
}

type opKind uint8

const (
	opNever   opKind = iota // an operator IAM does not have: never matches
	opNull                  // Null
	opEquals                // StringEquals, BinaryEquals and their negations: ==
	opFold                  // StringEqualsIgnoreCase, its negation, Bool: strings.EqualFold
	opLike                  // StringLike, StringNotLike
	opArn                   // ArnEquals, ArnLike and their negations
	opIP                    // IpAddress, NotIpAddress
	opNumeric               // Numeric*
	opDate                  // Date*
)

type cmpKind uint8

const (
	cmpNone cmpKind = iota // not a comparison IAM has: never matches
	cmpEquals
	cmpLessThan
	cmpLessThanEquals
	cmpGreaterThan
	cmpGreaterThanEquals
)

type setKind uint8

const (
	setNone setKind = iota
	setForAll
	setForAny
)

// parseOperator reads an operator as the evaluator always has: an optional set prefix up to
// the first colon, an optional IfExists suffix, then the operator name, case-sensitively.
func parseOperator(op string) condEntry {
	var e condEntry
	name := op
	if i := strings.IndexByte(name, ':'); i >= 0 {
		switch set := name[:i]; {
		case strings.EqualFold(set, "ForAllValues"):
			e.set = setForAll
		case strings.EqualFold(set, "ForAnyValue"):
			e.set = setForAny
		}
		name = name[i+1:]
	}
	if len(name) > len("IfExists") && strings.HasSuffix(name, "IfExists") {
		name, e.ifExists = name[:len(name)-len("IfExists")], true
	}
	switch name {
	case "Null":
		e.kind = opNull
	case "StringEquals", "BinaryEquals":
		e.kind = opEquals
	case "StringNotEquals", "BinaryNotEquals":
		e.kind, e.negated = opEquals, true
	case "StringEqualsIgnoreCase", "Bool":
		e.kind = opFold
	case "StringNotEqualsIgnoreCase":
		e.kind, e.negated = opFold, true
	case "StringLike":
		e.kind = opLike
	case "StringNotLike":
		e.kind, e.negated = opLike, true
	case "ArnEquals", "ArnLike":
		e.kind = opArn
	case "ArnNotEquals", "ArnNotLike":
		e.kind, e.negated = opArn, true
	case "IpAddress":
		e.kind = opIP
	case "NotIpAddress":
		e.kind, e.negated = opIP, true
	default:
		switch {
		case strings.HasPrefix(name, "Numeric"):
			e.kind, e.cmp = opNumeric, parseCmp(name[len("Numeric"):])
			e.negated = name == "NumericNotEquals"
		case strings.HasPrefix(name, "Date"):
			e.kind, e.cmp = opDate, parseCmp(name[len("Date"):])
			e.negated = name == "DateNotEquals"
		}
	}
	return e
}

// parseCmp reads a comparison suffix; NotEquals compares as Equals, negated by the caller.
func parseCmp(s string) cmpKind {
	switch s {
	case "Equals", "NotEquals":
		return cmpEquals
	case "LessThan":
		return cmpLessThan
	case "LessThanEquals":
		return cmpLessThanEquals
	case "GreaterThan":
		return cmpGreaterThan
	case "GreaterThanEquals":
		return cmpGreaterThanEquals
	}
	return cmpNone
}

// evalOperator evaluates one operator for one key, an unknown value counting as false.
func evalOperator(op, key string, vals []string, ctx *condContext) bool {
	e := parseOperator(op)
	e.key, e.vals = key, vals
	return e.holds(ctx) == True
}

// holds evaluates the entry on the request: True or False when the context settles it,
// Unknown when the key's presence or value is unknown and the answer depends on it.
func (e *condEntry) holds(ctx *condContext) Tri {
	got, multi, state := ctx.lookup(e.key)
	switch state {
	case stateAbsent:
		return triOf(e.whenAbsent())
	case stateUnknownValue:
		// Present with a value nobody read: Null is settled, the rest depends on the value.
		if e.kind == opNull {
			return triOf(!e.nullWant())
		}
		if v, ok := e.constantWhenPresent(); ok {
			return triOf(v)
		}
		return Unknown
	case stateUnknown:
		if e.kind == opNull {
			return Unknown
		}
		if v, ok := e.constantWhenPresent(); ok && v == e.whenAbsent() {
			return triOf(v)
		}
		return Unknown
	}
	if e.kind == opNull {
		return triOf(!e.nullWant())
	}
	if multi != nil {
		return triOf(e.holdsMulti(multi))
	}
	// Single-valued keys: ForAnyValue and ForAllValues over a set of one reduce to the plain
	// operator.
	return triOf(e.anyMatch(got) != e.negated)
}

// nullWant is the Null operator's policy value: true tests that the key is absent.
func (e *condEntry) nullWant() bool {
	return len(e.vals) > 0 && strings.EqualFold(e.vals[0], "true")
}

// whenAbsent is the entry's answer when the key is not in the request (IAM User Guide,
// condition operators: a missing key makes the condition false, except for negated
// operators and IfExists; ForAnyValue on a missing key is false, ForAllValues true).
func (e *condEntry) whenAbsent() bool {
	switch {
	case e.kind == opNull:
		return e.nullWant()
	case e.set == setForAll:
		return true
	case e.set == setForAny:
		return false
	case e.ifExists:
		return true
	}
	return e.negated
}

// constantWhenPresent is the entry's answer for any single present value when one exists:
// StringLike "*" matches every string (and StringNotLike "*" none).
func (e *condEntry) constantWhenPresent() (bool, bool) {
	if e.kind == opLike && e.set == setNone {
		for _, v := range e.vals {
			if v == "*" {
				return !e.negated, true
			}
		}
	}
	return false, false
}

func (e *condEntry) anyMatch(got string) bool {
	for _, v := range e.vals {
		if e.match(v, got) {
			return true
		}
	}
	return false
}

// holdsMulti evaluates a multivalued key (aws:CalledVia, kms:EncryptionContextKeys, ...):
// ForAnyValue needs one request value to satisfy the operator, ForAllValues every one (an
// empty set satisfies it); a plain operator never matches a multivalued key, as
// iam-simulate decides it (IAM User Guide, "Set operators for multivalued context keys").
func (e *condEntry) holdsMulti(vals []string) bool {
	switch e.set {
	case setForAny:
		for _, got := range vals {
			if e.anyMatch(got) != e.negated {
				return true
			}
		}
		return false
	case setForAll:
		for _, got := range vals {
			if e.anyMatch(got) == e.negated {
				return false
			}
		}
		return true
	}
	return false
}

// match reports whether the request value got matches the policy value want under the
// positive form of the operator.
func (e *condEntry) match(want, got string) bool {
	switch e.kind {
	case opEquals:
		return want == got
	case opFold:
		return strings.EqualFold(want, got)
	case opLike:
		return glob(want, got, false)
	case opArn:
		return arnLike(want, got)
	case opIP:
		return ipIn(want, got)
	case opNumeric:
		return e.cmp != cmpNone && compareNumbers(e.cmp, want, got)
	case opDate:
		return e.cmp != cmpNone && compareDates(e.cmp, want, got)
	}
	return false
}

func compareNumbers(kind cmpKind, want, got string) bool {
	w, err1 := strconv.ParseFloat(want, 64)
	g, err2 := strconv.ParseFloat(got, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return compare(kind, g, w)
}

func compareDates(kind cmpKind, want, got string) bool {
	w, ok1 := parseDate(want)
	g, ok2 := parseDate(got)
	if !ok1 || !ok2 {
		return false
	}
	return compare(kind, float64(g), float64(w))
}

func parseDate(s string) (int64, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.Unix(), true
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Unix(), true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// compare applies a numeric comparison; NotEquals is handled by negation upstream.
func compare(kind cmpKind, got, want float64) bool {
	switch kind {
	case cmpEquals:
		return got == want
	case cmpLessThan:
		return got < want
	case cmpLessThanEquals:
		return got <= want
	case cmpGreaterThan:
		return got > want
	case cmpGreaterThanEquals:
		return got >= want
	}
	return false
}
