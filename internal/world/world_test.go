package world

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, errHas string
	}{
		{"empty world", `{}`, ""},
		{"full", `{"sandbox_accounts":["111122223333"],"keys":{"arn:aws:kms:us-east-1:111122223333:key/k":{"manager":"CUSTOMER","state":"Enabled","policy":{"Version":"2012-10-17","Statement":[]},"grants":[]}},"principals":{"arn:aws:iam::111122223333:role/r":{"policies":[]}}}`, ""},
		{"not JSON", `{"keys":`, "not valid JSON"},
		{"wrong type", `{"keys":[]}`, "world-file format"},
		{"bad key policy", `{"keys":{"k":{"policy":{"Statement":[{"Effect":"Maybe","Action":"kms:*"}]}}}}`, `Effect must be "Allow" or "Deny", got "Maybe"`},
		{"policy without document", `{"principals":{"p":{"policies":[{"name":"x"}]}}}`, "no document"},
		{"null key", `{"keys":{"k":null}}`, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if tt.errHas == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error = %v, want one containing %q", err, tt.errHas)
			}
		})
	}
}

func TestUnknownIsNotEmpty(t *testing.T) {
	w, err := Parse([]byte(`{"keys":{"arn:k":{"grants":[]},"arn:j":{}},"principals":{"arn:p":{"policies":[]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !w.Key("arn:k").GrantsKnown || w.Key("arn:j").GrantsKnown {
		t.Error("grants: an empty list is known, an absent one is not")
	}
	if w.Principal("arn:p").Policies == nil {
		t.Error("an empty policy list must stay known (non-nil)")
	}
	if w.Key("arn:missing") != nil || w.Principal("arn:missing") != nil {
		t.Error("absent entries must be unknown (nil)")
	}
	var none *World
	if none.Key("x") != nil || none.IsSandbox("1") || none.KeyMissing("x") {
		t.Error("a nil world knows nothing")
	}
}

const testKey = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

const keyDoc = `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

const idDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt"],"Resource":"` + testKey + `"}]}`

// TestParseStrict: unknown fields are errors naming field and path; policy documents follow
// the IAM grammar, with errors naming the statement.
func TestParseStrict(t *testing.T) {
	key := func(policy string) string { return `{"keys":{"` + testKey + `":{"policy":` + policy + `}}}` }
	principal := func(doc string) string {
		return `{"principals":{"arn:aws:iam::111122223333:role/r":{"policies":[{"name":"p","document":` + doc + `}]}}}`
	}
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	tests := []struct{ name, in, errHas string }{
		{"unknown top-level field", `{"sandbox_acounts":["1"]}`, `the world: unknown field "sandbox_acounts"`},
		{"misspelt case", `{"Keys":{}}`, `unknown field "Keys" (did you mean "keys"?)`},
		{"unknown key field", `{"keys":{"` + testKey + `":{"state":"Enabled","rotation":true}}}`, `keys["` + testKey + `"]: unknown field "rotation"`},
		{"unknown grant field", `{"keys":{"k":{"grants":[{"grantee":"x","operations":["Decrypt"],"retiree":"y"}]}}}`, `keys["k"].grants[0]: unknown field "retiree"`},
		{"unknown document field", key(`{"Version":"2012-10-17","Statment":[]}`), `keys["` + testKey + `"].policy: unknown field "Statment"`},
		{"unknown statement field", key(stmt(`{"Sid":"A","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condtion":{}}`)),
			`policy.Statement[0] (Sid "A"): unknown field "Condtion"`},
		{"bad effect", key(stmt(`{"Effect":"Permit","Principal":"*","Action":"kms:*","Resource":"*"}`)), `Statement[0]: Effect must be "Allow" or "Deny", got "Permit"`},
		{"no action", key(stmt(`{"Effect":"Allow","Principal":"*","Resource":"*"}`)), `Statement[0]: Action (or NotAction) is required`},
		{"action and notaction", key(stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:Decrypt","Resource":"*"}`)), "Action and NotAction are exclusive"},
		{"bad action", key(stmt(`{"Effect":"Allow","Principal":"*","Action":"Decrypt","Resource":"*"}`)), `Action: "Decrypt" is not an action`},
		{"empty action list", key(stmt(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}`)), "non-empty array"},
		{"no resource", key(stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:*"}`)), "Resource (or NotResource) is required"},
		{"bad resource", key(stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"my-key"}`)), `Resource: "my-key" is not "*" or an ARN`},
		{"key policy without principal", key(stmt(`{"Effect":"Allow","Action":"kms:*","Resource":"*"}`)), "Principal (or NotPrincipal) is required"},
		{"bad principal", key(stmt(`{"Effect":"Allow","Principal":{"IAM":"x"},"Action":"kms:*","Resource":"*"}`)), `Principal: unknown field "IAM"`},
		{"principal in identity policy", principal(stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`)),
			`principals["arn:aws:iam::111122223333:role/r"].policies[0].document.Statement[0]: Principal is not allowed`},
		{"unknown operator", principal(stmt(`{"Sid":"C","Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}`)),
			`(Sid "C") Condition: unknown operator "StringEqualz"`},
		{"bad condition value", principal(stmt(`{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}`)), "values are strings, numbers or booleans"},
		{"bad version", key(`{"Version":"2012-10-18","Statement":[]}`), `policy.Version: "2012-10-18"`},
		{"statement not a list", key(`{"Statement":"x"}`), "Statement: want an object or an array"},
		{"boundary checked", `{"principals":{"p":{"policies":[],"permissions_boundary":` + stmt(`{"Effect":"Allow","Action":"kms:*"}`) + `}}}`, "permissions_boundary.Statement[0]: Resource (or NotResource) is required"},
		{"list output refused", `{"principals":{"p":{"policies":[{"name":"x","document":{"PolicyNames":["a"]}}]}}}`, "a list of policies, not a policy document"},
		{"not a document", key(`{"foo":1}`), "not a policy document: no Statement (give the document, or paste `aws kms get-key-policy`"},
		{"string not JSON", key(`"Allow everything"`), "a string that is not a JSON policy document"},
		{"get-key-policy with extra", key(`{"Policy":` + strconv.Quote(keyDoc) + `,"KeyId":"x"}`), "`aws kms get-key-policy` output with an unexpected field \"KeyId\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error = %v\nwant one containing %q", err, tt.errHas)
			}
		})
	}
}

// TestParsePastedShapes: the AWS CLI outputs people paste where a document goes are read as
// the document they hold.
func TestParsePastedShapes(t *testing.T) {
	for name, policy := range map[string]string{
		"document":                 keyDoc,
		"JSON string":              strconv.Quote(keyDoc),
		"get-key-policy output":    `{"Policy":` + strconv.Quote(keyDoc) + `,"PolicyName":"default"}`,
		"URL-encoded (IAM API)":    strconv.Quote(url.QueryEscape(keyDoc)),
		"get-policy-version":       `{"PolicyVersion":{"Document":` + keyDoc + `,"VersionId":"v3","IsDefaultVersion":true,"CreateDate":"2026-01-01T00:00:00Z"}}`,
		"get-role-policy document": `{"RoleName":"r","PolicyName":"p","PolicyDocument":` + keyDoc + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			w, err := Parse([]byte(`{"keys":{"` + testKey + `":{"policy":` + policy + `}}}`))
			if err != nil {
				t.Fatal(err)
			}
			p := w.Key(testKey).Policy
			if p == nil || len(p.Statement) != 1 || p.Statement[0].Sid != "Root" {
				t.Fatalf("policy = %+v", p)
			}
		})
	}
	// get-role-policy output as an entry of a principal's policies: named by its PolicyName.
	w, err := Parse([]byte(`{"principals":{"arn:aws:iam::111122223333:role/r":{"policies":[{"RoleName":"r","PolicyName":"kms-read","PolicyDocument":` + strconv.Quote(url.QueryEscape(idDoc)) + `}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ps := w.Principal("arn:aws:iam::111122223333:role/r").Policies; len(ps) != 1 || ps[0].Name != "kms-read" || len(ps[0].Document.Statement) != 1 {
		t.Fatalf("policies = %+v", ps)
	}
}

// TestParseKeepsDocumentBytes: a document's statements keep their text (a fix merged into a
// key policy writes the others' statements back unchanged).
func TestParseKeepsDocumentBytes(t *testing.T) {
	doc := `{"Statement":[{"Sid":"Z","Effect":"Allow","Resource":"*","Action":"kms:*","Principal":{"AWS":"arn:aws:iam::111122223333:root"}}],"Version":"2012-10-17"}`
	w, err := Parse([]byte(`{"keys":{"` + testKey + `":{"policy":` + doc + `}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(w.Key(testKey).Policy.Statement[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Sid":"Z","Effect":"Allow","Resource":"*","Action":"kms:*","Principal":{"AWS":"arn:aws:iam::111122223333:root"}}`; string(b) != want {
		t.Errorf("statement written back as %s, want %s", b, want)
	}
}

// The condition-key fields (docs/contract.md section 2): absent is unknown, empty is known
// empty, and both survive a round trip through the file format.
func TestConditionKeyFields(t *testing.T) {
	in := `{"keys":{"arn:k":{"aliases":[],"tags":{},"key_spec":"SYMMETRIC_DEFAULT","key_usage":"ENCRYPT_DECRYPT","origin":"AWS_KMS","multi_region":false},` +
		`"arn:j":{"state":"Enabled"}},` +
		`"principals":{"arn:p":{"policies":[],"tags":{"team":"orders"}},"arn:q":{"policies":[]}},` +
		`"accounts":{"111122223333":{"org_id":"o-a1b2c3d4e5","org_paths":["o-a1b2c3d4e5/r-ab12/"]}}}`
	w, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	k, j := w.Key("arn:k"), w.Key("arn:j")
	if k.Aliases == nil || k.Tags == nil || k.MultiRegion == nil || *k.MultiRegion || k.KeySpec != "SYMMETRIC_DEFAULT" || k.Origin != "AWS_KMS" {
		t.Errorf("known-empty or known values lost: %+v", k)
	}
	if j.Aliases != nil || j.Tags != nil || j.MultiRegion != nil || j.KeySpec != "" {
		t.Errorf("absent fields must stay unknown: %+v", j)
	}
	if w.Principal("arn:p").Tags["team"] != "orders" || w.Principal("arn:q").Tags != nil {
		t.Errorf("principal tags: %+v %+v", w.Principal("arn:p"), w.Principal("arn:q"))
	}
	if a := w.Account("111122223333"); a == nil || a.OrgID != "o-a1b2c3d4e5" || len(a.OrgPaths) != 1 || w.Account("444455556666") != nil {
		t.Errorf("accounts: %+v", w.Accounts)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parsing %s: %v", b, err)
	}
	if back.Key("arn:k").Tags == nil || back.Key("arn:k").Aliases == nil || back.Key("arn:j").Tags != nil {
		t.Errorf("round trip lost known-empty versus unknown: %s", b)
	}
	if _, err := Parse([]byte(`{"accounts":{"1":{"org":"o-x"}}}`)); err == nil {
		t.Error("an unknown account field must be refused (strict world files)")
	}
}
