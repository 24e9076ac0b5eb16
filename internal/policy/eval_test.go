package policy

import (
	"encoding/json"
	"testing"
)

const (
	keyARN  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	roleARN = "arn:aws:iam::111122223333:role/app/reader"
	sessARN = "arn:aws:sts::111122223333:assumed-role/reader/s1"
)

func mustParse(t *testing.T, s string) *Document {
	t.Helper()
	d, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return d
}

func s3Request(action, ctxARN string) Request {
	return Request{
		Action:   action,
		Resource: keyARN,
		Caller:   Caller{ARN: roleARN, SessionARN: sessARN, Account: "111122223333"},
		Context: map[string]string{
			"kms:ViaService":                   "s3.us-east-1.amazonaws.com",
			"kms:EncryptionContext:aws:s3:arn": ctxARN,
			"kms:CallerAccount":                "111122223333",
			"aws:PrincipalArn":                 roleARN,
			"aws:PrincipalAccount":             "111122223333",
		},
	}
}

const defaultKeyPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

func TestAuthorizeKMS(t *testing.T) {
	allowDecrypt := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"` + keyARN + `","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"},"StringLike":{"kms:EncryptionContext:aws:s3:arn":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}}}}`
	objectOnly := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::bkt/*"}}}}`
	denyAll := `{"Version":"2012-10-17","Statement":[{"Sid":"NoDecrypt","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}`
	adminsOnly := `{"Version":"2012-10-17","Statement":[{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/Admin"},"Action":"kms:*","Resource":"*"}]}`
	namesRole := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":"kms:Decrypt","Resource":"*"}]}`
	emptyBoundary := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`

	tests := []struct {
		name     string
		key      string
		identity []string
		boundary string
		grants   []Grant
		ctx      string
		want     Decision
		layer    string
	}{
		{name: "default key policy, no IAM", key: defaultKeyPolicy, ctx: "arn:aws:s3:::bkt/o", want: ImplicitDeny},
		{name: "default key policy, IAM allows", key: defaultKeyPolicy, identity: []string{allowDecrypt}, ctx: "arn:aws:s3:::bkt/o", want: Allow},
		{name: "IAM allows another bucket only", key: defaultKeyPolicy, identity: []string{allowDecrypt}, ctx: "arn:aws:s3:::bkt-other/o", want: ImplicitDeny},
		{name: "bucket key context vs object-only condition", key: defaultKeyPolicy, identity: []string{objectOnly}, ctx: "arn:aws:s3:::bkt", want: ImplicitDeny},
		{name: "no root statement: IAM is useless", key: adminsOnly, identity: []string{allowDecrypt}, ctx: "arn:aws:s3:::bkt/o", want: ImplicitDeny},
		{name: "key policy names role", key: namesRole, ctx: "arn:aws:s3:::bkt/o", want: Allow},
		{name: "key policy names role, boundary caps it", key: namesRole, boundary: emptyBoundary, ctx: "arn:aws:s3:::bkt/o", want: ImplicitDeny},
		{name: "explicit deny in key policy", key: denyAll + "", identity: []string{allowDecrypt}, ctx: "arn:aws:s3:::bkt/o", want: ExplicitDeny, layer: LayerKeyPolicy},
		{name: "grant", key: adminsOnly, grants: []Grant{{Grantee: roleARN, Operations: []string{"Decrypt"}}}, ctx: "arn:aws:s3:::bkt/o", want: Allow},
		{name: "grant for another operation", key: adminsOnly, grants: []Grant{{Grantee: roleARN, Operations: []string{"Encrypt"}}}, ctx: "arn:aws:s3:::bkt/o", want: ImplicitDeny},
		{name: "grant with subset constraint", key: adminsOnly, grants: []Grant{{Grantee: roleARN, Operations: []string{"Decrypt"}, EncryptionContextSubset: map[string]string{"aws:s3:arn": "arn:aws:s3:::bkt"}}}, ctx: "arn:aws:s3:::bkt", want: Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := KMSInputs{KeyAccount: "111122223333", KeyPolicy: mustParse(t, tt.key), Grants: tt.grants}
			for i, p := range tt.identity {
				in.Identity = append(in.Identity, NamedDocument{Name: "p" + string(rune('0'+i)), Doc: mustParse(t, p)})
			}
			if tt.boundary != "" {
				in.Boundary = mustParse(t, tt.boundary)
			}
			got := AuthorizeKMS(s3Request("kms:Decrypt", tt.ctx), in)
			if got.Decision != tt.want {
				t.Fatalf("decision = %v, want %v (%+v)", got.Decision, tt.want, got)
			}
			if got.DenyLayer != tt.layer {
				t.Errorf("deny layer = %q, want %q", got.DenyLayer, tt.layer)
			}
		})
	}
}

func TestCrossAccountNeedsBothSides(t *testing.T) {
	keyPolicy := mustParse(t, `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:Decrypt","Resource":"*"}]}`)
	idp := mustParse(t, `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"`+keyARN+`"}]}`)
	req := s3Request("kms:Decrypt", "arn:aws:s3:::bkt/o")
	req.Caller.Account = "999999999999"
	req.Caller.ARN = "arn:aws:iam::999999999999:role/x"
	in := KMSInputs{KeyAccount: "111122223333", KeyPolicy: keyPolicy}
	if d := AuthorizeKMS(req, in).Decision; d != ImplicitDeny {
		t.Fatalf("key policy alone: %v", d)
	}
	in.Identity = []NamedDocument{{"p", idp}}
	if d := AuthorizeKMS(req, in).Decision; d != Allow {
		t.Fatalf("both sides: %v", d)
	}
	in.KeyPolicy = mustParse(t, defaultKeyPolicy)
	if d := AuthorizeKMS(req, in).Decision; d != ImplicitDeny {
		t.Fatalf("identity alone: %v", d)
	}
}

func TestConditionOperators(t *testing.T) {
	ctx := newContext(map[string]string{"kms:ViaService": "s3.us-east-1.amazonaws.com", "aws:ViaAWSService": "true"})
	tests := []struct {
		op, key string
		vals    []string
		want    bool
	}{
		{"StringEquals", "kms:viaservice", []string{"s3.us-east-1.amazonaws.com"}, true},
		{"StringEquals", "kms:ViaService", []string{"s3.us-west-2.amazonaws.com"}, false},
		{"StringNotEquals", "kms:ViaService", []string{"a", "b"}, true},
		{"StringLike", "kms:ViaService", []string{"s3.*.amazonaws.com"}, true},
		{"StringEquals", "aws:SourceIp", []string{"1.2.3.4"}, false},
		{"StringEqualsIfExists", "aws:SourceIp", []string{"1.2.3.4"}, true},
		{"StringNotEquals", "aws:SourceVpce", []string{"vpce-1"}, true},
		{"ForAnyValue:StringEquals", "aws:SourceVpce", []string{"vpce-1"}, false},
		{"ForAllValues:StringEquals", "aws:SourceVpce", []string{"vpce-1"}, true},
		{"Null", "aws:SourceIp", []string{"true"}, true},
		{"Null", "kms:ViaService", []string{"true"}, false},
		{"Bool", "aws:ViaAWSService", []string{"True"}, true},
		{"NotIpAddress", "aws:SourceIp", []string{"10.0.0.0/8"}, true},
		{"IpAddress", "aws:SourceIp", []string{"10.0.0.0/8"}, false},
	}
	for _, tt := range tests {
		if got := evalOperator(tt.op, tt.key, tt.vals, ctx); got != tt.want {
			t.Errorf("%s %s %v = %v, want %v", tt.op, tt.key, tt.vals, got, tt.want)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		p, s string
		fold bool
		want bool
	}{
		{"kms:*", "kms:Decrypt", true, true},
		{"KMS:decrypt", "kms:Decrypt", true, true},
		{"kms:Decrypt", "kms:decrypt", false, false},
		{"kms:?ecrypt", "kms:Decrypt", true, true},
		{"kms:Gen*Key", "kms:GenerateDataKey", true, true},
		{"kms:Gen*Key", "kms:GenerateDataKeyPair", true, false},
		{"arn:aws:s3:::bkt/*", "arn:aws:s3:::bkt", false, false},
		{"arn:aws:s3:::bkt*", "arn:aws:s3:::bkt-other/x", false, true},
	}
	for _, tt := range tests {
		if got := glob(tt.p, tt.s, tt.fold); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestDocumentRoundTripKeepsText(t *testing.T) {
	src := `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root"]},"Action":"kms:*","Resource":"*"}]}`
	d := mustParse(t, src)
	extra := Statement{Sid: "New", Effect: "Allow", Principal: AWSPrincipal(roleARN), Action: List("kms:Decrypt"), Resource: V("*")}
	b, err := json.Marshal(d.With(extra))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root"]},"Action":"kms:*","Resource":"*"},{"Sid":"New","Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":["kms:Decrypt"],"Resource":"*"}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestNearMissKeyIsDeterministic(t *testing.T) {
	d := mustParse(t, `{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{
		"StringEquals":{"kms:ViaService":"s3.eu-west-1.amazonaws.com","kms:CallerAccount":"999999999999"},
		"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::other/*"},
		"Bool":{"aws:SecureTransport":"true"}}}]}`)
	req := s3Request("kms:Decrypt", "arn:aws:s3:::bkt/o")
	for i := 0; i < 50; i++ {
		r := d.Evaluate(req, "p", false)
		if r.NearMiss == nil || r.NearMissKey != "aws:SecureTransport" {
			t.Fatalf("run %d: near miss %v key %q, want the smallest failing key aws:SecureTransport", i, r.NearMiss, r.NearMissKey)
		}
	}
}
