package world

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kmsfix/kmsfix/internal/policy"
)

// A world file is read strictly, because a field read wrong changes a diagnosis without a
// word: an unknown field (a typo, another tool's format) is an error naming it and its path,
// and every policy document is checked against the IAM policy grammar
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html) with
// errors naming the statement. The shapes people paste from the AWS CLI are accepted where a
// policy document goes, and reduced to the document:
//
//   - a document as a JSON string, or URL-encoded as the IAM API returns it;
//   - `aws kms get-key-policy` output: {"Policy": "<document as a JSON string>", "PolicyName": ...};
//   - `aws iam get-role-policy` / `get-user-policy` output: {"RoleName", "PolicyName", "PolicyDocument"}
//     (also as an entry of a principal's policies, named by its PolicyName);
//   - `aws iam get-policy-version` output: {"PolicyVersion": {"Document": ..., ...}}.

var (
	documentType = reflect.TypeFor[policy.Document]()
	keyType      = reflect.TypeFor[Key]()
	namedType    = reflect.TypeFor[NamedPolicy]()
)

// strict checks b against the World type and returns it with pasted policy shapes replaced by
// their documents. The bytes of each document are kept as written (statements are written back
// unchanged when a fix is merged into a policy).
func strict(b []byte) ([]byte, error) {
	return walk(json.RawMessage(b), reflect.TypeFor[World](), "")
}

func walk(raw json.RawMessage, t reflect.Type, path string) (json.RawMessage, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return raw, nil
	}
	if t == documentType {
		return document(raw, path, false)
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == namedType {
			raw = namedPolicyShape(raw)
		}
		m, err := object(raw, path)
		if err != nil {
			return nil, err
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields[k]
			if !ok {
				return nil, unknownField(path, k, fields)
			}
			sub := path + "." + k
			if t == keyType && k == "policy" {
				m[k], err = document(m[k], sub, true)
			} else {
				m[k], err = walk(m[k], f, sub)
			}
			if err != nil {
				return nil, err
			}
		}
		return join(m)
	case reflect.Map:
		m, err := object(raw, path)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(m) {
			if m[k], err = walk(m[k], t.Elem(), path+"["+strconv.Quote(k)+"]"); err != nil {
				return nil, err
			}
		}
		return join(m)
	case reflect.Slice:
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return raw, nil // the typed decode names the field and the type
		}
		for i := range items {
			var err error
			if items[i], err = walk(items[i], t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return nil, err
			}
		}
		return json.Marshal(items)
	}
	return raw, nil // scalars: the typed decode checks them
}

// object decodes a JSON object into its members, or says what the value is instead.
func object(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, fmt.Errorf("%s: want an object, got %s", where(path), kind(raw))
	}
	return m, nil
}

func where(path string) string {
	if path == "" {
		return "the world"
	}
	return strings.TrimPrefix(path, ".")
}

func kind(raw json.RawMessage) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '"':
		return "a string"
	case raw[0] == '[':
		return "an array"
	case raw[0] == '{':
		return "an object"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	case raw[0] == 'n':
		return "null"
	}
	return "a number"
}

func join(m map[string]json.RawMessage) (json.RawMessage, error) { return json.Marshal(m) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonFields maps the JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// unknownField names the field and, when it is a misspelling of a known one, the fix.
func unknownField[V any](path, k string, known map[string]V) error {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for _, name := range sortedKeys(known) {
		if norm(name) == norm(k) {
			return fmt.Errorf("%s: unknown field %q (did you mean %q?)", where(path), k, name)
		}
	}
	return fmt.Errorf("%s: unknown field %q (known: %s)", where(path), k, strings.Join(sortedKeys(known), ", "))
}

// namedPolicyShape turns `aws iam get-role-policy` (or get-user-policy, get-group-policy)
// output pasted as an entry of a principal's policies into {"name", "document"}.
func namedPolicyShape(raw json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m["PolicyDocument"] == nil || m["document"] != nil {
		return raw
	}
	out := map[string]json.RawMessage{"document": m["PolicyDocument"]}
	if m["PolicyName"] != nil {
		out["name"] = m["PolicyName"]
	}
	for k := range m {
		switch k {
		case "PolicyDocument", "PolicyName", "RoleName", "UserName", "GroupName":
		default:
			out[k] = m[k] // reported as unknown by the walk
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// document reduces a pasted shape to a policy document and checks it; resource says it is a
// key policy (statements name a Principal) rather than an identity policy or boundary.
func document(raw json.RawMessage, path string, resource bool) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", where(path), err)
		}
		if strings.HasPrefix(s, "%7B") || strings.HasPrefix(s, "%7b") {
			// The IAM API returns documents URL-encoded (RFC 3986).
			dec, err := url.QueryUnescape(s)
			if err != nil {
				return nil, fmt.Errorf("%s: a URL-encoded policy document that does not decode: %w", where(path), err)
			}
			s = dec
		}
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("%s: a string that is not a JSON policy document; give the document itself (an object with Statement)", where(path))
		}
		return document(json.RawMessage(s), path, resource)
	}
	m, err := object(raw, path)
	if err != nil {
		return nil, err
	}
	if _, ok := m["Statement"]; !ok {
		switch {
		case m["Policy"] != nil: // aws kms get-key-policy
			if err := only(m, path, "`aws kms get-key-policy` output", "Policy", "PolicyName"); err != nil {
				return nil, err
			}
			return document(m["Policy"], path+".Policy", resource)
		case m["PolicyDocument"] != nil: // aws iam get-role-policy, get-user-policy, get-group-policy
			if err := only(m, path, "`aws iam get-role-policy` output", "PolicyDocument", "PolicyName", "RoleName", "UserName", "GroupName"); err != nil {
				return nil, err
			}
			return document(m["PolicyDocument"], path+".PolicyDocument", resource)
		case m["PolicyVersion"] != nil: // aws iam get-policy-version
			if err := only(m, path, "`aws iam get-policy-version` output", "PolicyVersion"); err != nil {
				return nil, err
			}
			v, err := object(m["PolicyVersion"], path+".PolicyVersion")
			if err != nil {
				return nil, err
			}
			if v["Document"] == nil {
				return nil, fmt.Errorf("%s: `aws iam get-policy-version` output without PolicyVersion.Document", where(path))
			}
			return document(v["Document"], path+".PolicyVersion.Document", resource)
		case m["Policies"] != nil || m["PolicyNames"] != nil || m["AttachedPolicies"] != nil:
			return nil, fmt.Errorf("%s: a list of policies, not a policy document: give each document (aws iam get-role-policy / get-policy-version output is accepted)", where(path))
		}
		if m["Version"] != nil || m["Id"] != nil { // a document missing its Statement
			for _, k := range sortedKeys(m) {
				if !documentFields[k] {
					return nil, unknownField(path, k, documentFields)
				}
			}
			return nil, fmt.Errorf("%s: Statement is required", where(path))
		}
		return nil, fmt.Errorf("%s: not a policy document: no Statement (give the document, or paste `aws kms get-key-policy`, `aws iam get-role-policy` or `aws iam get-policy-version` output)", where(path))
	}
	if err := checkDocument(m, path, resource); err != nil {
		return nil, err
	}
	return raw, nil
}

// only checks that a pasted CLI output has only the members that command prints.
func only(m map[string]json.RawMessage, path, what string, allowed ...string) error {
	for _, k := range sortedKeys(m) {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%s: %s with an unexpected field %q", where(path), what, k)
		}
	}
	return nil
}

var (
	documentFields  = map[string]bool{"Version": true, "Id": true, "Statement": true}
	statementFields = map[string]bool{"Sid": true, "Effect": true, "Principal": true, "NotPrincipal": true,
		"Action": true, "NotAction": true, "Resource": true, "NotResource": true, "Condition": true}
	principalFields = map[string]bool{"AWS": true, "Service": true, "Federated": true, "CanonicalUser": true}
	// actionPattern: "*" or service:action with wildcards
	// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
	actionPattern = regexp.MustCompile(`^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]*)$`)
)

// conditionOperators are the base names of IAM's condition operators; ForAllValues: and
// ForAnyValue: prefixes and the IfExists suffix are taken off before the lookup
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
var conditionOperators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true,
	"NumericEquals": true, "NumericNotEquals": true, "NumericLessThan": true, "NumericLessThanEquals": true,
	"NumericGreaterThan": true, "NumericGreaterThanEquals": true,
	"DateEquals": true, "DateNotEquals": true, "DateLessThan": true, "DateLessThanEquals": true,
	"DateGreaterThan": true, "DateGreaterThanEquals": true,
	"Bool": true, "BinaryEquals": true, "IpAddress": true, "NotIpAddress": true,
	"ArnEquals": true, "ArnLike": true, "ArnNotEquals": true, "ArnNotLike": true, "Null": true,
}

// checkDocument checks a policy document against the IAM grammar.
func checkDocument(m map[string]json.RawMessage, path string, resource bool) error {
	for _, k := range sortedKeys(m) {
		if !documentFields[k] {
			return unknownField(path, k, documentFields)
		}
	}
	if v := m["Version"]; v != nil {
		var s string
		if json.Unmarshal(v, &s) != nil || s != "2012-10-17" && s != "2008-10-17" {
			return fmt.Errorf("%s.Version: %s, want \"2012-10-17\"", where(path), v)
		}
	}
	if v := m["Id"]; v != nil && kind(v) != "a string" {
		return fmt.Errorf("%s.Id: want a string, got %s", where(path), kind(v))
	}
	st := bytes.TrimSpace(m["Statement"])
	var list []json.RawMessage
	switch {
	case len(st) > 0 && st[0] == '{':
		list = []json.RawMessage{st}
	case len(st) > 0 && st[0] == '[':
		if err := json.Unmarshal(st, &list); err != nil {
			return fmt.Errorf("%s.Statement: %w", where(path), err)
		}
	default:
		return fmt.Errorf("%s.Statement: want an object or an array of objects, got %s", where(path), kind(st))
	}
	for i, raw := range list {
		if err := checkStatement(raw, fmt.Sprintf("%s.Statement[%d]", path, i), resource); err != nil {
			return err
		}
	}
	return nil
}

// checkStatement checks one statement; errors name it by index and Sid.
func checkStatement(raw json.RawMessage, path string, resource bool) error {
	s, err := object(raw, path)
	if err != nil {
		return err
	}
	label := where(path)
	var sid string
	if v := s["Sid"]; v != nil {
		if json.Unmarshal(v, &sid) != nil {
			return fmt.Errorf("%s: Sid must be a string, got %s", label, kind(v))
		}
		label += fmt.Sprintf(" (Sid %q)", sid)
	}
	for _, k := range sortedKeys(s) {
		if !statementFields[k] {
			return unknownField(label, k, statementFields)
		}
	}
	var effect string
	if json.Unmarshal(s["Effect"], &effect) != nil || effect != "Allow" && effect != "Deny" {
		return fmt.Errorf("%s: Effect must be \"Allow\" or \"Deny\", got %s", label, orMissing(s["Effect"]))
	}
	if err := exactlyOne(s, label, "Action", "NotAction", true); err != nil {
		return err
	}
	if err := exactlyOne(s, label, "Resource", "NotResource", true); err != nil {
		return err
	}
	for _, k := range []string{"Action", "NotAction"} {
		if err := stringList(s[k], label+" "+k, func(a string) bool { return actionPattern.MatchString(a) }, "an action (service:Action, wildcards allowed)"); err != nil {
			return err
		}
	}
	for _, k := range []string{"Resource", "NotResource"} {
		if err := stringList(s[k], label+" "+k, func(r string) bool { return r == "*" || strings.HasPrefix(r, "arn:") }, `"*" or an ARN`); err != nil {
			return err
		}
	}
	if resource {
		if err := exactlyOne(s, label, "Principal", "NotPrincipal", true); err != nil {
			return fmt.Errorf("%w (a key policy statement names who it applies to)", err)
		}
	} else if s["Principal"] != nil || s["NotPrincipal"] != nil {
		return fmt.Errorf("%s: Principal is not allowed in an identity policy or permissions boundary", label)
	}
	for _, k := range []string{"Principal", "NotPrincipal"} {
		if err := checkPrincipal(s[k], label+" "+k); err != nil {
			return err
		}
	}
	return checkCondition(s["Condition"], label)
}

func orMissing(v json.RawMessage) string {
	if v == nil {
		return "nothing"
	}
	return string(v)
}

func exactlyOne(s map[string]json.RawMessage, label, a, b string, required bool) error {
	switch {
	case s[a] != nil && s[b] != nil:
		return fmt.Errorf("%s: %s and %s are exclusive", label, a, b)
	case required && s[a] == nil && s[b] == nil:
		return fmt.Errorf("%s: %s (or %s) is required", label, a, b)
	}
	return nil
}

// stringList checks a string or a non-empty array of strings, each accepted by ok.
func stringList(raw json.RawMessage, label string, ok func(string) bool, want string) error {
	if raw == nil {
		return nil
	}
	var list []string
	var one string
	switch {
	case json.Unmarshal(raw, &one) == nil:
		list = []string{one}
	case json.Unmarshal(raw, &list) == nil && len(list) > 0:
	default:
		return fmt.Errorf("%s: want a string or a non-empty array of strings, got %s", label, raw)
	}
	for _, v := range list {
		if !ok(v) {
			return fmt.Errorf("%s: %q is not %s", label, v, want)
		}
	}
	return nil
}

func checkPrincipal(raw json.RawMessage, label string) error {
	if raw == nil {
		return nil
	}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return fmt.Errorf("%s: a string Principal must be \"*\", got %q", label, star)
		}
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return fmt.Errorf("%s: want \"*\" or an object of AWS, Service, Federated or CanonicalUser, got %s", label, raw)
	}
	for _, k := range sortedKeys(m) {
		if !principalFields[k] {
			return unknownField(label, k, principalFields)
		}
		if err := stringList(m[k], label+"."+k, func(string) bool { return true }, ""); err != nil {
			return err
		}
	}
	return nil
}

func checkCondition(raw json.RawMessage, label string) error {
	if raw == nil {
		return nil
	}
	var ops map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ops); err != nil {
		return fmt.Errorf("%s Condition: want {operator: {key: value}}, got %s", label, raw)
	}
	for _, op := range sortedKeys(ops) {
		base := strings.TrimPrefix(strings.TrimPrefix(op, "ForAllValues:"), "ForAnyValue:")
		base = strings.TrimSuffix(base, "IfExists")
		if !conditionOperators[base] || (base == "Null" && strings.HasSuffix(op, "IfExists")) {
			return fmt.Errorf("%s Condition: unknown operator %q", label, op)
		}
		for _, key := range sortedKeys(ops[op]) {
			v := bytes.TrimSpace(ops[op][key])
			var scalars []any
			switch {
			case len(v) > 0 && v[0] == '[':
				if json.Unmarshal(v, &scalars) != nil || len(scalars) == 0 {
					return fmt.Errorf("%s Condition %s %s: want a value or a non-empty array of values, got %s", label, op, key, v)
				}
			default:
				var one any
				if json.Unmarshal(v, &one) != nil {
					return fmt.Errorf("%s Condition %s %s: invalid value %s", label, op, key, v)
				}
				scalars = []any{one}
			}
			for _, x := range scalars {
				switch x.(type) {
				case string, bool, float64:
				default:
					return fmt.Errorf("%s Condition %s %s: values are strings, numbers or booleans, got %s", label, op, key, v)
				}
			}
		}
	}
	return nil
}
