package policy

import (
	"maps"
	"testing"
)

// TestOverrideIsACopiedContext: a request with Override decides as the same request with
// its context copied and changed (a key replaced, a key dropped, a key added), at both
// bounds, with more keys than the context keeps on the stack too.
func TestOverrideIsACopiedContext(t *testing.T) {
	conds := []string{
		`{"StringEquals":{"kms:ViaService":"s3.eu-west-1.amazonaws.com"}}`,
		`{"Null":{"kms:ViaService":"true"}}`,
		`{"Bool":{"aws:ViaAWSService":"false"}}`,
		`{"StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::bkt/*"}}`,
		`{"StringEquals":{"kms:EncryptionContext:dept":"x"}}`,
		`{"StringEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/other"}}`,
		`{"StringEquals":{"aws:PrincipalTag/team":"a"}}`,
	}
	overrides := [][]Override{
		nil,
		{{Key: "kms:ViaService", Drop: true}, {Key: "aws:ViaAWSService", Value: "false"}},
		{{Key: "kms:ViaService", Value: "sqs.eu-west-1.amazonaws.com"}},
		{{Key: "kms:EncryptionContext:aws:s3:arn", Value: "arn:aws:s3:::bktx/object"}},
		{{Key: "kms:EncryptionContext:dept", Value: "x"}, {Key: "aws:PrincipalArn", Value: "arn:aws:iam::111122223333:role/other"}},
		{{Key: "kms:Absent", Drop: true}},
	}
	unknown := func(key string) KeyState { return KeyUnknown }
	for _, many := range []bool{false, true} {
		ctx := map[string]string{
			"kms:ViaService":                   "s3.eu-west-1.amazonaws.com",
			"aws:ViaAWSService":                "true",
			"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::bkt/o",
			"aws:PrincipalArn":                 "arn:aws:iam::111122223333:role/app",
		}
		if many {
			for i := range 40 {
				ctx["aws:PrincipalTag/k"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
			}
		}
		for _, c := range conds {
			key := mustParse(t, `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*","Condition":`+c+`}]}`)
			in := KMSInputs{KeyAccount: "111122223333", KeyPolicy: key}
			for _, over := range overrides {
				copied := maps.Clone(ctx)
				for _, o := range over {
					if o.Drop {
						delete(copied, o.Key)
					} else {
						copied[o.Key] = o.Value
					}
				}
				base := Request{Action: "kms:Decrypt", Resource: "arn:aws:kms:eu-west-1:111122223333:key/k",
					Caller: Caller{ARN: "arn:aws:iam::111122223333:role/app", Account: "111122223333"}, Unknown: unknown}
				withOverride, withCopy := base, base
				withOverride.Context, withOverride.Override = ctx, over
				withCopy.Context = copied
				a, b := AuthorizeKMS(withOverride, in), AuthorizeKMS(withCopy, in)
				if a.Decision != b.Decision || a.Upper != b.Upper || len(a.Unknown) != len(b.Unknown) {
					t.Errorf("many=%v %s %v: override %v/%v %v, copy %v/%v %v", many, c, over, a.Decision, a.Upper, a.Unknown, b.Decision, b.Upper, b.Unknown)
				}
			}
		}
	}
}
