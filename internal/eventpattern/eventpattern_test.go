package eventpattern

import (
	"encoding/json"
	"strings"
	"testing"
)

const sampleEvent = `{
  "version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
  "account": "111122223333", "region": "us-east-1", "resources": [],
  "detail": {
    "eventName": "Decrypt", "errorCode": "AccessDenied", "readOnly": true,
    "userIdentity": {"type": "AssumedRole"},
    "sourceIPAddress": "10.0.3.7",
    "bytes": 1024, "ratio": 0.5, "nothing": null,
    "tags": ["blue", "green"],
    "items": [{"kind": "a", "n": 1}, {"kind": "b", "n": 2}],
    "requestParameters": {"encryptionContext": {"aws:s3:arn": "arn:aws:s3:::bucket/key"}}
  }
}`

func TestMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    bool
	}{
		{"empty pattern matches everything", `{}`, true},
		{"exact string", `{"source":["aws.kms"]}`, true},
		{"exact string differs", `{"source":["aws.s3"]}`, false},
		{"array is OR", `{"source":["aws.s3","aws.kms"]}`, true},
		{"fields are AND", `{"source":["aws.kms"],"account":["999999999999"]}`, false},
		{"case sensitive", `{"source":["AWS.KMS"]}`, false},
		{"nested", `{"detail":{"eventName":["Decrypt"],"userIdentity":{"type":["AssumedRole"]}}}`, true},
		{"nested mismatch", `{"detail":{"userIdentity":{"type":["IAMUser"]}}}`, false},
		{"key with colon", `{"detail":{"requestParameters":{"encryptionContext":{"aws:s3:arn":[{"exists":true}]}}}}`, true},
		{"exists true absent", `{"detail":{"requestParameters":{"encryptionContext":{"aws:ebs:id":[{"exists":true}]}}}}`, false},
		{"exists false absent", `{"detail":{"missing":[{"exists":false}]}}`, true},
		{"exists false present", `{"detail":{"eventName":[{"exists":false}]}}`, false},
		{"exists false under absent parent", `{"detail":{"nope":{"x":[{"exists":false}]}}}`, true},
		{"exists true under absent parent", `{"detail":{"nope":{"x":[{"exists":true}]}}}`, false},
		{"exists does not match an intermediate object", `{"detail":{"userIdentity":[{"exists":true}]}}`, false},
		{"absent field never matches a literal", `{"detail":{"missing":["x"]}}`, false},
		{"object pattern against a string", `{"source":{"x":["y"]}}`, false},
		{"prefix", `{"detail":{"requestParameters":{"encryptionContext":{"aws:s3:arn":[{"prefix":"arn:aws:s3:::bucket/"}]}}}}`, true},
		{"prefix miss", `{"source":[{"prefix":"aws.s3"}]}`, false},
		{"prefix ignore case", `{"source":[{"prefix":{"equals-ignore-case":"AWS."}}]}`, true},
		{"suffix", `{"source":[{"suffix":".kms"}]}`, true},
		{"equals-ignore-case", `{"detail":{"errorCode":[{"equals-ignore-case":"accessdenied"}]}}`, true},
		{"wildcard", `{"detail":{"requestParameters":{"encryptionContext":{"aws:s3:arn":[{"wildcard":"arn:aws:s3:::*/key"}]}}}}`, true},
		{"wildcard miss", `{"detail":{"requestParameters":{"encryptionContext":{"aws:s3:arn":[{"wildcard":"arn:aws:s3:::other*"}]}}}}`, false},
		{"anything-but value", `{"detail":{"userIdentity":{"type":[{"anything-but":"AWSService"}]}}}`, true},
		{"anything-but list hit", `{"detail":{"userIdentity":{"type":[{"anything-but":["AWSService","AssumedRole"]}]}}}`, false},
		{"anything-but absent field", `{"detail":{"missing":[{"anything-but":"x"}]}}`, false},
		{"anything-but prefix", `{"source":[{"anything-but":{"prefix":"aws."}}]}`, false},
		{"anything-but suffix", `{"source":[{"anything-but":{"suffix":".s3"}}]}`, true},
		{"anything-but ignore case", `{"source":[{"anything-but":{"equals-ignore-case":["AWS.KMS"]}}]}`, false},
		{"numeric equal", `{"detail":{"bytes":[1024]}}`, true},
		{"numeric equal as float", `{"detail":{"bytes":[1024.0]}}`, true},
		{"number is not a string", `{"detail":{"bytes":["1024"]}}`, false},
		{"numeric range", `{"detail":{"bytes":[{"numeric":[">",1000,"<=",1024]}]}}`, true},
		{"numeric range excl", `{"detail":{"bytes":[{"numeric":[">",1024]}]}}`, false},
		{"numeric eq", `{"detail":{"ratio":[{"numeric":["=",0.5]}]}}`, true},
		{"numeric on string", `{"source":[{"numeric":[">",0]}]}`, false},
		{"boolean", `{"detail":{"readOnly":[true]}}`, true},
		{"boolean mismatch", `{"detail":{"readOnly":[false]}}`, false},
		{"null literal", `{"detail":{"nothing":[null]}}`, true},
		{"null vs absent", `{"detail":{"missing":[null]}}`, false},
		{"event array any element", `{"detail":{"tags":["green"]}}`, true},
		{"event array none", `{"detail":{"tags":["red"]}}`, false},
		{"empty event array", `{"resources":[{"exists":true}]}`, false},
		{"array of objects", `{"detail":{"items":{"kind":["b"]}}}`, true},
		{"array of objects miss", `{"detail":{"items":{"kind":["c"]}}}`, false},
		{"cidr", `{"detail":{"sourceIPAddress":[{"cidr":"10.0.0.0/16"}]}}`, true},
		{"cidr miss", `{"detail":{"sourceIPAddress":[{"cidr":"10.1.0.0/16"}]}}`, false},
		{"$or one side", `{"$or":[{"source":["aws.s3"]},{"detail":{"eventName":["Decrypt"]}}]}`, true},
		{"$or neither", `{"$or":[{"source":["aws.s3"]},{"detail":{"eventName":["Encrypt"]}}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile([]byte(tt.pattern))
			if err != nil {
				t.Fatalf("Compile(%s): %v", tt.pattern, err)
			}
			got, err := p.Match([]byte(sampleEvent))
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Errorf("pattern %s: got %v, want %v", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct{ name, pattern, wantErr string }{
		{"not an object", `["a"]`, "must be a JSON object"},
		{"scalar leaf", `{"source":"aws.kms"}`, "leaf values must be arrays"},
		{"empty array", `{"source":[]}`, "empty array"},
		{"unknown operator", `{"source":[{"regex":"a.*"}]}`, `unsupported operator "regex"`},
		{"two keys in operator", `{"source":[{"prefix":"a","suffix":"b"}]}`, "exactly one key"},
		{"bad numeric", `{"n":[{"numeric":[">"]}]}`, "numeric takes"},
		{"bad numeric op", `{"n":[{"numeric":["!=",1]}]}`, "unknown operator"},
		{"bad exists", `{"n":[{"exists":"yes"}]}`, "exists takes"},
		{"bad cidr", `{"n":[{"cidr":"10.0.0.0/99"}]}`, "cidr"},
		{"bad $or", `{"$or":[{"a":["b"]}]}`, "$or needs"},
		{"anything-but exists", `{"n":[{"anything-but":{"exists":true}}]}`, "does not support"},
		{"trailing data", `{"a":["b"]} {}`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.pattern))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Compile(%s) error = %v, want it to contain %q", tt.pattern, err, tt.wantErr)
			}
		})
	}
}

func TestMatchRejectsNonObjectEvent(t *testing.T) {
	p, err := Compile([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Match([]byte(`[1]`)); err == nil {
		t.Fatal("Match of an array event: want an error")
	}
}

func TestWildcard(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"a*c", "abbbc", true},
		{"a*c", "ac", true},
		{"a*c", "acb", false},
		{"*", "", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
	}
	for _, tt := range tests {
		if got := wildcard(tt.pat, tt.s); got != tt.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestCloudTrailEnvelope(t *testing.T) {
	bare := `{"eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventID":"e1","eventTime":"2025-05-01T09:03:12Z",` +
		`"awsRegion":"eu-west-1","recipientAccountId":"444455556666"}`
	out, err := CloudTrailEnvelope([]byte(bare))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"source": "aws.kms", "detail-type": "AWS API Call via CloudTrail", "account": "444455556666",
		"region": "eu-west-1", "time": "2025-05-01T09:03:12Z", "id": "e1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("envelope[%q] = %v, want %q", k, env[k], v)
		}
	}
	if d, _ := env["detail"].(map[string]any); d["eventName"] != "Decrypt" {
		t.Errorf("detail = %v, want the bare record", env["detail"])
	}

	already := `{"detail-type":"x","source":"y","detail":{}}`
	out, err = CloudTrailEnvelope([]byte(already))
	if err != nil || string(out) != already {
		t.Errorf("an envelope must pass through unchanged: %s, %v", out, err)
	}
	if _, err := CloudTrailEnvelope([]byte(`{"foo":1}`)); err == nil {
		t.Error("a record without eventSource: want an error")
	}
}

func TestFromValue(t *testing.T) {
	p, err := FromValue(map[string]any{"source": []any{"aws.kms"}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.Match([]byte(sampleEvent))
	if err != nil || !ok {
		t.Fatalf("FromValue pattern: match = %v, %v", ok, err)
	}
}
