package main

import (
	"github.com/kmsfix/kmsfix/internal/apply"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/notify"
)

// TestTopicOnlyTheFunctionPublishes: the topic policy denies sns:Publish to every IAM
// principal but the function's role (services, i.e. the alarms, are left to their Allow).
func TestTopicOnlyTheFunctionPublishes(t *testing.T) {
	for _, name := range []string{"notify", "full"} {
		s := synth(t, name)
		roleID, _ := s.one(t, "AWS::IAM::Role")
		var found bool
		for _, p := range s.resources("AWS::SNS::TopicPolicy") {
			for _, raw := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				st := raw.(map[string]any)
				if st["Sid"] != "OnlyTheFunctionPublishes" {
					continue
				}
				found = true
				c := asJSON(st["Condition"])
				if st["Effect"] != "Deny" || asJSON(st["Principal"]) != `{"AWS":"*"}` || st["Action"] != "sns:Publish" ||
					!strings.Contains(c, `"ArnNotEquals":{"aws:PrincipalArn":{"Fn::GetAtt":["`+roleID+`","Arn"]}}`) ||
					!strings.Contains(c, `"Bool":{"aws:PrincipalIsAWSService":"false"}`) {
					t.Errorf("%s: topic statement %s", name, asJSON(st))
				}
			}
		}
		if !found {
			t.Errorf("%s: no topic statement limits publishing to the function", name)
		}
	}
}

// TestFunctionInvokedOnlyByTheStacksRules: every Lambda permission admits EventBridge for
// one rule of this stack (aws:SourceArn), nothing else.
func TestFunctionInvokedOnlyByTheStacksRules(t *testing.T) {
	for _, name := range []string{"notify", "full"} {
		s := synth(t, name)
		rules := s.resources("AWS::Events::Rule")
		perms := s.resources("AWS::Lambda::Permission")
		if len(perms) != len(rules) {
			t.Errorf("%s: %d Lambda permissions for %d rules", name, len(perms), len(rules))
		}
		for id, p := range perms {
			src := asJSON(p["SourceArn"])
			ruleID := strings.TrimSuffix(strings.TrimPrefix(src, `{"Fn::GetAtt":["`), `","Arn"]}`)
			if p["Principal"] != "events.amazonaws.com" || p["Action"] != "lambda:InvokeFunction" || rules[ruleID] == nil {
				t.Errorf("%s: permission %s admits %v from %s", name, id, p["Principal"], src)
			}
		}
	}
}

// TestSlackWebhookRejectedAlarm: with Slack, an alarm on the metric the notifier writes when
// Slack refuses the webhook, sent to the topic; without Slack, none.
func TestSlackWebhookRejectedAlarm(t *testing.T) {
	find := func(s *synthesized) map[string]any {
		for _, a := range s.resources("AWS::CloudWatch::Alarm") {
			if a["MetricName"] == notify.MetricWebhookRejected {
				return a
			}
		}
		return nil
	}
	a := find(synth(t, "full"))
	if a == nil {
		t.Fatal("no alarm on the Slack webhook metric")
	}
	topicID, _ := synth(t, "full").one(t, "AWS::SNS::Topic")
	if a["Namespace"] != notify.MetricNamespace || asJSON(a["Dimensions"]) != `[{"Name":"Service","Value":"remediator"}]` ||
		a["Statistic"] != "Sum" || a["Threshold"] != float64(1) || asJSON(a["AlarmActions"]) != `[{"Ref":"`+topicID+`"}]` {
		t.Errorf("alarm = %s", asJSON(a))
	}
	if find(synth(t, "notify")) != nil {
		t.Error("an alarm on Slack without Slack")
	}
}

// TestTableOnlyTheFunctionWrites: the table cannot be deleted, and its resource policy
// denies item writes to every IAM principal but the function's role and the break-glass role.
func TestTableOnlyTheFunctionWrites(t *testing.T) {
	s := synth(t, "full")
	_, table := s.one(t, "AWS::DynamoDB::Table")
	if table["DeletionProtectionEnabled"] != true {
		t.Errorf("deletion protection: %v", table["DeletionProtectionEnabled"])
	}
	roleID, _ := s.one(t, "AWS::IAM::Role")
	doc, _ := table["ResourcePolicy"].(map[string]any)["PolicyDocument"].(map[string]any)
	var found bool
	for _, raw := range doc["Statement"].([]any) {
		st := raw.(map[string]any)
		if st["Sid"] != "OnlyTheFunctionWrites" {
			continue
		}
		found = true
		c, actions := asJSON(st["Condition"]), asJSON(st["Action"])
		if st["Effect"] != "Deny" || asJSON(st["Principal"]) != `{"AWS":"*"}` ||
			!strings.Contains(c, `"ArnNotEquals":{"aws:PrincipalArn":[{"Fn::GetAtt":["`+roleID+`","Arn"]}`) ||
			!strings.Contains(c, ":role/kmsfix-break-glass") || !strings.Contains(c, `"Bool":{"aws:PrincipalIsAWSService":"false"}`) {
			t.Errorf("table statement %s", asJSON(st))
		}
		for _, a := range []string{"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "PartiQLInsert", "PartiQLUpdate", "PartiQLDelete"} {
			if !strings.Contains(actions, `"dynamodb:`+a+`"`) {
				t.Errorf("writes by %s not denied: %s", a, actions)
			}
		}
	}
	if !found {
		t.Error("no table statement limits writes to the function")
	}
}

// TestApplyAlarms: in apply mode, a change left for a person and a tampered audit record each
// raise an alarm to the topic; notify mode has no such metric.
func TestApplyAlarms(t *testing.T) {
	alarms := func(s *synthesized) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, a := range s.resources("AWS::CloudWatch::Alarm") {
			if name, _ := a["MetricName"].(string); name == apply.AlertRevertNotExact || name == apply.AlertTampered {
				out[name] = a
			}
		}
		return out
	}
	full := synth(t, "full")
	topicID, _ := full.one(t, "AWS::SNS::Topic")
	got := alarms(full)
	for _, name := range []string{apply.AlertRevertNotExact, apply.AlertTampered} {
		a := got[name]
		if a == nil {
			t.Errorf("no alarm on %s", name)
			continue
		}
		if a["Namespace"] != notify.MetricNamespace || asJSON(a["Dimensions"]) != `[{"Name":"Service","Value":"remediator"}]` ||
			a["Threshold"] != float64(1) || asJSON(a["AlarmActions"]) != `[{"Ref":"`+topicID+`"}]` {
			t.Errorf("%s alarm = %s", name, asJSON(a))
		}
	}
	if n := len(alarms(synth(t, "notify"))); n != 0 {
		t.Errorf("notify mode has %d apply alarms", n)
	}
}
