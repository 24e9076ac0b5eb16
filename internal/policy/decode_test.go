package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The reference decoder: the encoding/json-based decoding this package had before the
// one-pass decoder (decode.go), unchanged, on shadow types. The fast path must agree with it
// on every input: same document, same error.

type stdValues Values

func (v *stdValues) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("empty value")
	}
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

type stdPrincipal struct {
	Wildcard bool
	Types    map[string]stdValues
}

func (p *stdPrincipal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
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

type stdstatementFields struct {
	Sid          string        `json:"Sid,omitempty"`
	Effect       string        `json:"Effect"`
	Principal    *stdPrincipal `json:"Principal,omitempty"`
	NotPrincipal *stdPrincipal `json:"NotPrincipal,omitempty"`
	Action       stdValues     `json:"Action,omitzero"`
	NotAction    stdValues     `json:"NotAction,omitzero"`
	Resource     stdValues     `json:"Resource,omitzero"`
	NotResource  stdValues     `json:"NotResource,omitzero"`
	Condition    stdCondition  `json:"Condition,omitempty"`
}

type stdCondition map[string]map[string]stdValues

type stdStatement struct {
	stdstatementFields
	raw json.RawMessage
}

func (s *stdStatement) UnmarshalJSON(b []byte) error {
	var f stdstatementFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = stdStatement{f, append(json.RawMessage(nil), bytes.TrimSpace(b)...)}
	return nil
}

type stdStatements []stdStatement

func (ss *stdStatements) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one stdStatement
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*ss = stdStatements{one}
		return nil
	}
	var many []stdStatement
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*ss = many
	return nil
}

type stdDocument struct {
	Version   string        `json:"Version,omitempty"`
	ID        string        `json:"Id,omitempty"`
	Statement stdStatements `json:"Statement"`
}

// parseStd is Parse as it was.
func parseStd(b []byte) (*Document, error) {
	var sd stdDocument
	if err := json.Unmarshal(b, &sd); err != nil {
		return nil, err
	}
	d := sd.doc()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

func (sd *stdDocument) doc() *Document {
	d := &Document{Version: sd.Version, ID: sd.ID}
	if sd.Statement != nil {
		d.Statement = make(Statements, 0, len(sd.Statement))
	}
	for _, s := range sd.Statement {
		d.Statement = append(d.Statement, s.statement())
	}
	return d
}

func (s *stdStatement) statement() Statement {
	out := Statement{
		Sid: s.Sid, Effect: s.Effect,
		Principal: s.Principal.principal(), NotPrincipal: s.NotPrincipal.principal(),
		Action: Values(s.Action), NotAction: Values(s.NotAction),
		Resource: Values(s.Resource), NotResource: Values(s.NotResource),
		raw: s.raw,
	}
	if s.Condition != nil {
		out.Condition = Condition{}
		for op, keys := range s.Condition {
			out.Condition[op] = valuesMap(keys)
		}
	}
	return out
}

func (p *stdPrincipal) principal() *Principal {
	if p == nil {
		return nil
	}
	return &Principal{Wildcard: p.Wildcard, Types: valuesMap(p.Types)}
}

func valuesMap(m map[string]stdValues) map[string]Values {
	if m == nil {
		return nil
	}
	out := make(map[string]Values, len(m))
	for k, v := range m {
		out[k] = Values(v)
	}
	return out
}

// sameError compares errors from the two decoders; json's messages name the Go types, which
// differ only by the "std" prefix of the shadow types.
func sameError(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	norm := func(e error) string { return strings.ReplaceAll(e.Error(), "std", "") }
	return norm(a) == norm(b)
}

// checkParse is the property FuzzParse and TestParseMatchesEncodingJSON check for one input.
func checkParse(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := parseStd(b)

	// Parse (the one-pass decoder, else encoding/json) gives what the old decoding gave.
	got, err := Parse(b)
	if !sameError(err, wantErr) {
		t.Fatalf("Parse error %v, encoding/json %v", err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse = %s\nencoding/json = %s", dump(got), dump(want))
	}
	// The one-pass decoder alone: when it takes an input, encoding/json takes it too and
	// decodes the same document.
	dec := newDecoder(b)
	if fast, ok := dec.document(); ok {
		var sd stdDocument
		if err := json.Unmarshal(b, &sd); err != nil {
			t.Fatalf("the one-pass decoder took an input encoding/json refuses (%v)", err)
		}
		if !reflect.DeepEqual(fast, sd.doc()) {
			t.Fatalf("one-pass = %s\nencoding/json = %s", dump(fast), dump(sd.doc()))
		}
	}
	// The same text embedded in a larger JSON value, as in a world file: encoding/json calls
	// the UnmarshalJSON methods on each part.
	var emb struct{ P *Document }
	var stdEmb struct{ P *stdDocument }
	wrapped := append(append([]byte(`{"P":`), b...), '}')
	err, wantErr = json.Unmarshal(wrapped, &emb), json.Unmarshal(wrapped, &stdEmb)
	if !sameError(err, wantErr) {
		t.Fatalf("embedded: error %v, encoding/json %v", err, wantErr)
	}
	if err == nil && (emb.P == nil) == (stdEmb.P == nil) && emb.P != nil && !reflect.DeepEqual(emb.P, stdEmb.P.doc()) {
		t.Fatalf("embedded = %s\nencoding/json = %s", dump(emb.P), dump(stdEmb.P.doc()))
	}
	// Each element's UnmarshalJSON called directly on the same bytes.
	var v Values
	var sv stdValues
	if err, wantErr := v.UnmarshalJSON(b), sv.UnmarshalJSON(b); !sameError(err, wantErr) || !reflect.DeepEqual(v, Values(sv)) {
		t.Fatalf("Values.UnmarshalJSON = %+v, %v; encoding/json %+v, %v", v, err, sv, wantErr)
	}
	var p Principal
	var sp stdPrincipal
	if err, wantErr := p.UnmarshalJSON(b), sp.UnmarshalJSON(b); !sameError(err, wantErr) || !reflect.DeepEqual(&p, sp.principal()) {
		t.Fatalf("Principal.UnmarshalJSON = %+v, %v; encoding/json %+v, %v", p, err, sp, wantErr)
	}
	var s Statement
	var ss stdStatement
	if err, wantErr := s.UnmarshalJSON(b), ss.UnmarshalJSON(b); !sameError(err, wantErr) || !reflect.DeepEqual(s, ss.statement()) {
		t.Fatalf("Statement.UnmarshalJSON = %+v, %v; encoding/json %+v, %v", s, err, ss, wantErr)
	}
	var sts Statements
	var ssts stdStatements
	if err, wantErr := sts.UnmarshalJSON(b), ssts.UnmarshalJSON(b); !sameError(err, wantErr) ||
		!reflect.DeepEqual(sts, (&stdDocument{Statement: ssts}).doc().Statement) {
		t.Fatalf("Statements.UnmarshalJSON = %+v, %v; encoding/json %+v, %v", sts, err, ssts, wantErr)
	}
	// A parsed document writes back what it read; its statements without their raw text are
	// written as encoding/json writes them.
	if got != nil {
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("writing back: %v", err)
		}
		for _, s := range got.Statement {
			checkMarshal(t, s)
		}
	}
}

func dump(d *Document) string {
	if d == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{Version:%q ID:%q nil:%v [", d.Version, d.ID, d.Statement == nil)
	for _, s := range d.Statement {
		fmt.Fprintf(&b, "%+v raw=%q; ", s, s.raw)
	}
	return b.String() + "]}"
}

// parseSeeds are the policies of the bundled samples' world files, a few generated
// documents, and inputs aimed at each rule the one-pass decoder must share with
// encoding/json.
func parseSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	worlds, err := filepath.Glob("../../events/*/world.json")
	if err != nil || len(worlds) == 0 {
		tb.Fatalf("no world files under events/: %v", err)
	}
	for _, w := range worlds {
		b, err := os.ReadFile(w)
		if err != nil {
			tb.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			tb.Fatalf("%s: %v", w, err)
		}
		out = append(out, policiesIn(tb, v)...)
	}
	for i, c := range generateCases(diffSeed, 40) {
		if i%4 == 0 {
			out = append(out, mustMarshal(tb, c.KeyPolicy))
		}
	}
	for _, s := range []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}`,
		`{"Statement":[]}`, `{}`, `null`, ` {"Statement":null} `, `{"Statement":[null]}`, `[]`, `"x"`, ``, ` `,
		`{"Statement":[{"Effect":"Allow","Action":[],"Resource":[]}]}`,
		`{"statement":[{"effect":"Allow","ACTION":"kms:*","notresource":"x","SID":"a"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Effect":"Deny"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Principal":"*","Principal":{"AWS":"1"}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Principal":{"AWS":"1","AWS":["2"]}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Condition":{"Bool":{"k":true},"Bool":{"j":1.5e3}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Condition":{"NumericLessThan":{"k":[-0, 12, 1E+2, false]}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Condition":{"StringEquals":null}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Condition":{"StringEquals":{"k":null}}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":["a",null]}]}`,
		`{"Statement":[{"Effect":"Allow","Action":["a",{}]}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"\u006bms:Decrypt"}]}`,
		`{"Statement":[{"Eff\u0065ct":"Allow","Action":"a"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Sid":"caf\u00e9 ✓"}]}`,
		"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"a\",\"Sid\":\"\xff\"}]}",
		"{\"Statement\":[{\"\xc5\xbfid\":\"x\",\"Effect\":\"Allow\",\"Action\":\"a\"}]}", // ſid is Sid to encoding/json
		"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"a\tb\"}]}",
		`{"Statement":[{"Effect":"Allow","Action":"a","Extra":{"x":[1,{"y":"\"\\\/\b\f\n\r\t\u00ff"},null,true]}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Extra":"\x"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Extra":01}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Extra":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a"}]} x`,
		`{"Statement":[{"Effect":"Allow","Action":"a"},]}`,
		`{"Version":1,"Statement":[{"Effect":"Allow","Action":"a"}]}`,
		`{"Statement":[{"Effect":"Maybe","Action":"a"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Principal":"me"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Principal":["*"]}]}`,
		`{"Id":"x","Statement":{"Effect":"Allow","NotAction":"a","raw":"b","c":1}}`,
		"\v{\"Statement\":[]}", "{\"Statement\":[]}\u00a0", ` "*" `, ` ["a", true, 7] `, ` {"AWS":"x"} `, "\u00a0\"a\"",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// policiesIn returns the policy documents in a decoded world file.
func policiesIn(tb testing.TB, v any) [][]byte {
	var out [][]byte
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "policy" || k == "permissions_boundary" || k == "document" {
				out = append(out, mustMarshal(tb, x))
				continue
			}
			out = append(out, policiesIn(tb, x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, policiesIn(tb, x)...)
		}
	}
	return out
}

func mustMarshal(tb testing.TB, v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestParseMatchesEncodingJSON checks the seeds in plain `go test`.
func TestParseMatchesEncodingJSON(t *testing.T) {
	for i, b := range parseSeeds(t) {
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkParse(t, b) })
	}
}

// FuzzParse: on any input, Parse and the elements' UnmarshalJSON methods (the one-pass
// decoder, with encoding/json for what it does not take) give what the encoding/json-based
// decoding gave: the same document, raw text included, or the same error.
func FuzzParse(f *testing.F) {
	for _, b := range parseSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(checkParse)
}

// TestOneDecoderTakesTheSamples: the bundled samples' policies are all read by the one-pass
// decoder (else the fast path would be dead code for real documents).
func TestOneDecoderTakesTheSamples(t *testing.T) {
	seeds := parseSeeds(t)
	n := 0
	for _, b := range seeds {
		if !bytes.HasPrefix(b, []byte("{\n")) {
			continue // the hand-written edge cases
		}
		n++
		dec := newDecoder(b)
		if _, ok := dec.document(); !ok {
			t.Errorf("the one-pass decoder does not take %s", b)
		}
	}
	if n < 20 {
		t.Fatalf("only %d sample policies", n)
	}
}

// checkMarshal: a statement without raw text is written as json.Marshal(statementFields(s))
// writes it.
func checkMarshal(t *testing.T, s Statement) {
	t.Helper()
	s.raw = nil
	want, err := json.Marshal(statementFields(s))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.MarshalJSON()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("MarshalJSON = %s, %v\nencoding/json  %s", got, err, want)
	}
}

// TestMarshalStatementMatchesEncodingJSON covers statements built in Go, with the strings
// and shapes encoding/json writes specially.
func TestMarshalStatementMatchesEncodingJSON(t *testing.T) {
	odd := []string{"", "a<b>&c", "quote\" back\\slash", "tab\tnl\n\x01", "caf\u00e9", "\xff\xfe", "\u2028\u2029", "\x7f", "ok"}
	for i, c := range generateCases(diffSeed, 200) {
		for _, d := range append([]*Document{c.KeyPolicy, c.Boundary}, identityDocs(c)...) {
			if d != nil {
				for _, s := range d.Statement {
					checkMarshal(t, s)
				}
			}
		}
		o := odd[i%len(odd)]
		checkMarshal(t, Statement{
			Sid: o, Effect: o, Principal: &Principal{Types: map[string]Values{o: V(o), "AWS": List(o, "x"), "": {}}},
			NotPrincipal: &Principal{}, Action: V(o), NotAction: Values{Items: []string{o}}, Resource: List(),
			NotResource: Values{Items: []string{}, Single: true},
			Condition:   Condition{o: {o: V(o), "k": List("a", o)}, "Null": nil, "StringLike": {}},
		})
	}
	checkMarshal(t, Statement{})
	checkMarshal(t, Statement{Principal: &Principal{Wildcard: true, Types: map[string]Values{"AWS": V("x")}}})
}

func identityDocs(c *diffCase) []*Document {
	var out []*Document
	for _, nd := range c.Identity {
		out = append(out, nd.Doc)
	}
	return out
}
