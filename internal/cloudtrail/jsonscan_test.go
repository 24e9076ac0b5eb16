package cloudtrail

import (
	"encoding/json"
	"testing"
)

func TestMemberValue(t *testing.T) {
	tests := []struct {
		name, obj string
		want      string // "-" for none
		ok        bool
	}{
		{"simple", `{"id":"1","detail":{"a":1}}`, `{"a":1}`, true},
		{"spaces", "{ \"detail\" :\n\t{ \"a\" : [1, {\"b\": \"}\"}] } , \"x\": 2 }", `{ "a" : [1, {"b": "}"}] }`, true},
		{"nested key of the same name is not it", `{"x":{"detail":1},"detail":2}`, `2`, true},
		{"string holding quotes and braces", `{"s":"a\"}{\\","detail":"v\"w"}`, `"v\"w"`, true},
		{"case-insensitive, last wins", `{"detail":1,"DETAIL":2}`, `2`, true},
		{"scalars", `{"a":true,"b":null,"c":-1.5e3,"detail":false}`, `false`, true},
		{"absent", `{"a":1}`, "-", true},
		{"empty object", `{}`, "-", true},
		{"detail-type is another key", `{"detail-type":"x"}`, "-", true},
		{"escaped key: ask encoding/json", `{"d\u0065tail":1}`, "-", false},
		{"not an object", `[1]`, "-", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := memberValue([]byte(tt.obj), "detail")
			if ok != tt.ok || (tt.want == "-") != (got == nil) || (got != nil && string(got) != tt.want) {
				t.Errorf("memberValue(%s) = %q, %v; want %q, %v", tt.obj, got, ok, tt.want, tt.ok)
			}
			if !ok || !json.Valid([]byte(tt.obj)) {
				return
			}
			// Same answer as encoding/json.
			var d struct {
				Detail json.RawMessage `json:"detail"`
			}
			if err := json.Unmarshal([]byte(tt.obj), &d); err != nil {
				t.Fatal(err)
			}
			if string(d.Detail) != string(got) {
				t.Errorf("encoding/json says %q", d.Detail)
			}
		})
	}
}
