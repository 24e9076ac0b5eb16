package eventpattern

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func TestKMSDenialFields(t *testing.T) {
	f := KMSDenialFields()
	if !slices.Equal(f.Source, []string{"aws.kms"}) || !slices.Equal(f.DetailType, []string{"AWS API Call via CloudTrail"}) {
		t.Fatalf("source %v, detail-type %v", f.Source, f.DetailType)
	}
	back, err := json.Marshal(map[string]any{"source": f.Source, "detail-type": f.DetailType, "detail": f.Detail})
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if json.Unmarshal([]byte(KMSDenial), &want) != nil || json.Unmarshal(back, &got) != nil {
		t.Fatal("not JSON")
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields differ from the pattern:\n%s", back)
	}
	f.Detail["eventName"] = nil
	if KMSDenialFields().Detail["eventName"] == nil {
		t.Fatal("a caller's change leaked into the next copy")
	}
}

// The pattern matches an S3 denial of each data-key call and not an AWS service's own call.
func TestKMSDenialMatches(t *testing.T) {
	p, err := Compile([]byte(KMSDenial))
	if err != nil {
		t.Fatal(err)
	}
	event := func(name, identity string) []byte {
		return []byte(`{"source":"aws.kms","detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"kms.amazonaws.com",` +
			`"eventName":"` + name + `","errorCode":"AccessDenied","userIdentity":{"type":"` + identity + `"},` +
			`"requestParameters":{"encryptionContext":{"aws:s3:arn":"arn:aws:s3:::bucket/object"}}}}`)
	}
	for _, tt := range []struct {
		name, identity string
		want           bool
	}{
		{"Decrypt", "AssumedRole", true},
		{"GenerateDataKey", "IAMUser", true},
		{"Encrypt", "AssumedRole", true},
		{"Decrypt", "AWSService", false},
		{"DescribeKey", "AssumedRole", false},
	} {
		got, err := p.Match(event(tt.name, tt.identity))
		if err != nil || got != tt.want {
			t.Errorf("%s by %s: match = %v (%v), want %v", tt.name, tt.identity, got, err, tt.want)
		}
	}
}
