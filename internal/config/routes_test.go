package config

import (
	"reflect"
	"strings"
	"testing"
)

const (
	routeSecret = "arn:aws:secretsmanager:us-east-1:999988887777:secret:kmsfix/payments-AbC123"
	routeTopic  = "arn:aws:sns:us-east-1:999988887777:payments"
)

func TestRoutes(t *testing.T) {
	const (
		secret = routeSecret
		topic  = routeTopic
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
		"ou:ou-ab12-cdef3456=sns:" + topic:                         {`"ou:ou-ab12-cdef3456"; write the OU id alone`},
		"ou-ab12-cdef3456=sns:" + topic:                            {"only the organization's hub resolves"},
		"tag:team=payments=sns:" + topic:                           {"only the organization's hub resolves"},
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

// Issue 19 item 3: OU and tag entries in the hub; tags percent-encoded, so a key or value
// holding "=", ":" or spaces reads back exactly.
func TestRoutesOUAndTag(t *testing.T) {
	v := orgValues()
	v["routes"] = "tag:cost%20center=a%3Db:c/d=sns:" + routeTopic + "," +
		"ou-ab12-cdef3456=slack:" + routeSecret + "," +
		"111122223333=sns:" + routeTopic + "," +
		"tag:team=payments=slack:" + routeSecret + "|sns:" + routeTopic + "," +
		"tag:env==sns:" + routeTopic // an empty value is a value
	d, err := deploy(v)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Function
	wantTags := []TagRoute{
		{Key: "cost center", Value: "a=b:c/d", Route: Route{TopicARN: routeTopic}},
		{Key: "team", Value: "payments", Route: Route{SlackSecretARN: routeSecret, TopicARN: routeTopic}},
		{Key: "env", Value: "", Route: Route{TopicARN: routeTopic}},
	}
	if !reflect.DeepEqual(c.TagRoutes, wantTags) {
		t.Errorf("tag routes = %+v\nwant %+v", c.TagRoutes, wantTags)
	}
	if len(c.OURoutes) != 1 || c.OURoutes["ou-ab12-cdef3456"] != (Route{SlackSecretARN: routeSecret}) {
		t.Errorf("OU routes = %+v", c.OURoutes)
	}
	if len(c.Routes) != 1 || !c.OrgRoutes() || len(c.AllRoutes()) != 5 {
		t.Errorf("account routes = %+v, all = %+v", c.Routes, c.AllRoutes())
	}
	// The environment the stack renders reads back the same in the hub, tag order kept.
	env := c.Environment()
	env["KMSFIX_TOPIC_ARN"], env["KMSFIX_TABLE_NAME"], env["KMSFIX_HUB_ORG_ID"] = routeTopic, "tbl", "o-abcdefghij"
	back, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("%v\n%s", err, env["KMSFIX_ROUTES"])
	}
	if !reflect.DeepEqual(back.TagRoutes, c.TagRoutes) || !reflect.DeepEqual(back.OURoutes, c.OURoutes) || !reflect.DeepEqual(back.Routes, c.Routes) {
		t.Errorf("round trip through %q: %+v", env["KMSFIX_ROUTES"], back)
	}
	if got := wantTags[0].Name(); got != "tag:cost%20center=a%3Db:c/d" {
		t.Errorf("name = %q", got)
	}
	// The function of a single-account stack refuses them too.
	delete(env, "KMSFIX_HUB_ORG_ID")
	if _, err := Load(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "KMSFIX_ROUTES has OU or tag entries") {
		t.Errorf("single-account Load: %v", err)
	}
}

func TestRoutesOUAndTagErrors(t *testing.T) {
	for value, want := range map[string]string{
		"tag:team=payments":                                                                "want tag:KEY=VALUE=slack:",
		"tag:team=pay=ments=sns:" + routeTopic:                                             `kind "ments=sns" for tag:team=pay`, // an unencoded "=" never routes
		"tag:=x=sns:" + routeTopic:                                                         "is not an Organizations tag",
		"tag:team=a%ZZ=sns:" + routeTopic:                                                  "not followed by two hex digits",
		"tag:team=a%=sns:" + routeTopic:                                                    "not followed by two hex digits",
		"tag: team=payments=sns:" + routeTopic:                                             "starts or ends with a space",
		"tag:team=payments =sns:" + routeTopic:                                             "starts or ends with a space",
		"tag:team=<!channel>=sns:" + routeTopic:                                            "is not an Organizations tag",
		"tag:team=a%0Ab=sns:" + routeTopic:                                                 "is not an Organizations tag", // a control character, encoded
		"tag:team=a%7Cb=sns:" + routeTopic:                                                 "is not an Organizations tag",
		"tag:team=a%25b=sns:" + routeTopic:                                                 "is not an Organizations tag", // "%" is not a tag character
		"tag:" + strings.Repeat("k", 129) + "=v=sns:" + routeTopic:                         "is not an Organizations tag",
		"tag:k=" + strings.Repeat("v", 257) + "=sns:" + routeTopic:                         "is not an Organizations tag",
		"tag:team=payments=sns:" + routeTopic + ",tag:team=payments=slack:" + routeSecret:  "names tag:team=payments twice",
		"tag:team=pay%20ments=sns:" + routeTopic + ",tag:team=pay ments=sns:" + routeTopic: "names tag:team=pay%20ments twice",
		"ou-ab12-cdef3456=sns:" + routeTopic + ",ou-ab12-cdef3456=sns:" + routeTopic:       "names OU ou-ab12-cdef3456 twice",
		"ou-AB12-cdef3456=sns:" + routeTopic:                                               `"ou-AB12-cdef3456", which is not an OU id`,
		"ou-ab12-cdef=sns:" + routeTopic:                                                   "which is not an OU id",
		"r-ab12=sns:" + routeTopic:                                                         "has the root",
		"ou-ab12-cdef3456=slack:https://hooks.slack.com/services/x":                        "slack target for OU ou-ab12-cdef3456",
		"tag:team=x=slack:https://hooks.slack.com/services/x":                              "slack target for tag:team=x",
	} {
		v := orgValues()
		v["routes"] = value
		_, err := deploy(v)
		if err == nil {
			t.Errorf("%q: want an error", value)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "routes (KMSFIX_ROUTES)") {
			t.Errorf("%q: error %q does not contain %q", value, err, want)
		}
		if strings.Contains(err.Error(), "hooks.slack.com") {
			t.Errorf("%q: the error echoes what may be a webhook URL: %v", value, err)
		}
	}
	// Accepted: every character an Organizations tag allows, other scripts included.
	v := orgValues()
	v["routes"] = "tag:aws:cloudformation:stack-name=équipe_1.2+x@y/z=sns:" + routeTopic
	if d, err := deploy(v); err != nil || d.Function.TagRoutes[0].Key != "aws:cloudformation:stack-name" || d.Function.TagRoutes[0].Value != "équipe_1.2+x@y/z" {
		t.Errorf("a tag of allowed characters: %+v, %v", d.Function.TagRoutes, err)
	}
}

// FuzzRoutes: on any KMSFIX_ROUTES value, parsing never panics; what is accepted renders to
// an environment that reads back identically (so what cdk synth accepts, the hub reads the
// same way), and every accepted tag is a valid Organizations tag.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{
		"111122223333=sns:" + routeTopic,
		"tag:team=payments=slack:" + routeSecret + "|sns:" + routeTopic,
		"tag:a%3Db=c%20d=sns:" + routeTopic + ",ou-ab12-cdef3456=sns:" + routeTopic,
		"tag:k==sns:" + routeTopic,
		"tag:k=v=w=sns:" + routeTopic,
		"tag:%zz=v=sns:" + routeTopic,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, routes string) {
		env := map[string]string{"KMSFIX_TOPIC_ARN": routeTopic, "KMSFIX_TABLE_NAME": "tbl",
			"KMSFIX_HUB_ORG_ID": "o-abcdefghij", "KMSFIX_ROUTES": routes}
		c, err := Load(func(k string) string { return env[k] })
		if err != nil {
			return
		}
		for _, tr := range c.TagRoutes {
			if !isTagText(tr.Key, 1, MaxTagKey) || !isTagText(tr.Value, 0, MaxTagValue) {
				t.Fatalf("accepted tag %q=%q", tr.Key, tr.Value)
			}
		}
		env["KMSFIX_ROUTES"] = c.Environment()["KMSFIX_ROUTES"]
		back, err := Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("rendered %q does not read back: %v", env["KMSFIX_ROUTES"], err)
		}
		if !reflect.DeepEqual(back.Routes, c.Routes) || !reflect.DeepEqual(back.OURoutes, c.OURoutes) || !reflect.DeepEqual(back.TagRoutes, c.TagRoutes) {
			t.Fatalf("%q read back as %+v, was %+v", env["KMSFIX_ROUTES"], back, c)
		}
	})
}
