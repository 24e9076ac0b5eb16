package world

import (
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
		{"bad key policy", `{"keys":{"k":{"policy":{"Statement":[{"Effect":"Maybe","Action":"kms:*"}]}}}}`, "Effect must be Allow or Deny"},
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
