package config

import (
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	const (
		secret = "arn:aws:secretsmanager:us-east-1:999988887777:secret:kmsfix/payments-AbC123"
		topic  = "arn:aws:sns:us-east-1:999988887777:payments"
	)
	d, err := deploy(map[string]string{"routes": " 111122223333 = slack:" + secret + " | sns:" + topic + ",444455556666=sns:" + topic})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Route{"111122223333": {SlackSecretARN: secret, TopicARN: topic}, "444455556666": {TopicARN: topic}}
	if len(d.Function.Routes) != 2 || d.Function.Routes["111122223333"] != want["111122223333"] || d.Function.Routes["444455556666"] != want["444455556666"] {
		t.Fatalf("routes = %+v", d.Function.Routes)
	}

	for value, wants := range map[string][]string{
		"111122223333":                                             {`has "111122223333"; want ACCOUNT=`},
		"1111=sns:" + topic:                                        {`account "1111"`},
		"ou:ou-ab12-cdef3456=sns:" + topic:                         {`"ou:ou-ab12-cdef3456": routing by OU or tag is not supported`},
		"tag:team=payments=sns:" + topic:                           {"routing by OU or tag is not supported"},
		"111122223333=sns:arn:aws:sqs:us-east-1:1:q":               {"sns target for account 111122223333 that is not a complete sns ARN"},
		"111122223333=slack:https://hooks.slack.com/x":             {"slack target for account 111122223333"},
		"111122223333=email:a@example.com":                         {`kind "email" for account 111122223333`},
		"111122223333=sns:" + topic + "|sns:" + topic:              {"or a second one"},
		"111122223333=sns:" + topic + ",111122223333=sns:" + topic: {"names account 111122223333 twice"},
	} {
		_, err := deploy(map[string]string{"routes": value})
		if err == nil {
			t.Errorf("%q: want an error", value)
			continue
		}
		if strings.Contains(err.Error(), "hooks.slack.com") {
			t.Errorf("%q: the error echoes what may be a webhook URL: %v", value, err)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), "routes (KMSFIX_ROUTES)") {
				t.Errorf("%q: error %q does not contain %q and the parameter's name", value, err, w)
			}
		}
	}
}
