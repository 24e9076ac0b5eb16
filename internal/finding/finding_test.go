package finding

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kmsfix/kmsfix/internal/policy"
)

func TestEncodeMatchesMarshal(t *testing.T) {
	reports := []Report{
		{EventID: "e1", Ignored: "not a KMS call", EventName: "GetObject", Diagnosis: "x"},
		{EventID: "e2", Diagnosis: KeyDisabled, Detail: "disabled <key> & \"quoted\"", Advice: []string{"aws kms enable-key"}},
		{EventID: "e3", Diagnosis: IdentityPolicyMissing, Actions: []string{"kms:Decrypt"}, Verified: true,
			Patches: []Patch{{Kind: KindIdentityPolicy, Policy: &policy.Document{Version: "2012-10-17",
				Statement: policy.Statements{{Effect: "Allow", Action: policy.V("kms:Decrypt"), Resource: policy.V("*")}}}}}},
	}
	for _, r := range reports {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Encode = %s\nMarshal = %s", got, want)
		}
	}
}

func TestReportShapes(t *testing.T) {
	b, _ := json.Marshal(Report{EventID: "e", Ignored: "why", Diagnosis: Undetermined})
	if string(b) != `{"event_id":"e","ignored":"why"}` {
		t.Errorf("ignored = %s", b)
	}
	b, _ = json.Marshal(Report{EventID: "e", Diagnosis: KeyDisabled})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"event_id", "diagnosis", "detail", "principal", "principal_account", "key", "key_account", "region", "actions", "patches", "auto_apply", "verified"} {
		if _, ok := m[f]; !ok {
			t.Errorf("field %s missing from %s", f, b)
		}
	}
	if string(mustJSON(t, m["patches"])) != "[]" || string(mustJSON(t, m["actions"])) != "[]" {
		t.Errorf("empty lists must be [], got %s", b)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
