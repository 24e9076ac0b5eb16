package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/crossaccount"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// TestCrossAccountThroughTheBootstrap: the real bootstrap, configured only by environment
// variables as the stack configures it, in two accounts. The caller's function (sample 21)
// sends the key-policy request through EventBridge (a fake behind the real SDK client); the
// key owner's function accepts it from the trusted account, notifies it on SNS with the
// statement and the merged key policy, and rejects the same request sent from another account.
func TestCrossAccountThroughTheBootstrap(t *testing.T) {
	const (
		callerAcct = "482910375610"
		ownerAcct  = "609284715320"
		ownerBus   = "arn:aws:events:eu-west-2:609284715320:event-bus/default"
		key        = "arn:aws:kms:eu-west-2:609284715320:key/d15f7a3c-0e92-4b6d-8c41-5b7e2a9f0d13"
	)
	s := loadSample(t, "21-cross-account-message-only")
	// The key owner acts only on a denial at most its dedupe window old: the denial is now.
	s.event = bytes.Replace(s.event, []byte(`"eventTime": "2025-11-04T09:12:40Z"`), []byte(`"eventTime": "`+time.Now().UTC().Format(time.RFC3339)+`"`), 1)
	bridge := awsfake.NewEventBridge(t, callerAcct)
	bridge.AddBus(ownerBus)
	caller := start(t, s, "KMSFIX_KEY_OWNER_BUSES="+ownerAcct+"="+ownerBus, "AWS_ENDPOINT_URL_EVENTBRIDGE="+bridge.URL)
	mark := snsEmu.Receiver.Count() // the topic is shared: look only at what this test caused
	rep, inv := caller.invoke(t, s.event)
	if inv.Error || rep.Diagnosis != finding.CrossAccountAccessMissing {
		t.Fatalf("caller: %s", inv.Body)
	}
	envs := bridge.Take(ownerBus)
	if len(envs) != 1 {
		t.Fatalf("%d requests on the owner's bus, want 1\n%s", len(envs), caller.rie.Logs())
	}

	// The key owner: its key with the default policy, a table of its own.
	doc, err := policy.Parse([]byte(`{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + ownerAcct + `:root"},"Action":"kms:*","Resource":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	emus := emulator.StartServices(t, emulator.ServicesOptions{Account: ownerAcct, Region: "eu-west-2",
		World: &world.World{Keys: map[string]*world.Key{key: {Manager: world.ManagerCustomer, State: world.StateEnabled, Policy: doc}}}})
	vars := append(emus.Env(), "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_TIMEOUT=20",
		"KMSFIX_TOPIC_ARN="+snsEmu.TopicARN, "KMSFIX_TABLE_NAME="+ownTable(t), "KMSFIX_TRUSTED_SENDER_ROLES=arn:aws:iam::"+callerAcct+":role/kmsfix-remediator",
		"AWS_ENDPOINT_URL_SNS="+snsEmu.Endpoint, "AWS_ENDPOINT_URL_DYNAMODB="+ddb.Endpoint)
	owner := &fn{aws: emus, rie: emulator.StartRIE(t, bootstrap, vars)}

	got, inv := owner.invoke(t, envs[0])
	if inv.Error {
		t.Fatalf("owner: %s\n%s", inv.Body, owner.rie.Logs())
	}
	requested, _ := crossaccount.KeyPolicyPatch(rep)
	if len(got.Patches) != 1 || got.Patches[0].MergedKeyPolicy == nil || !got.Verified ||
		crossaccount.CheckStatement(got.Patches[0].Statement, requested.Statement) != "" {
		t.Fatalf("owner's report: %s", asJSON(t, got))
	}
	merged := asJSON(t, got.Patches[0].MergedKeyPolicy)
	deadline := time.Now().Add(10 * time.Second)
	for found := false; !found; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no SNS message from the key owner with the merged key policy")
		}
		for _, d := range snsEmu.Receiver.Deliveries()[mark:] {
			var r finding.Report
			body := d.ForProtocol("default")
			if json.Unmarshal([]byte(body), &r) == nil && r.EventID == got.EventID && len(r.Patches) == 1 &&
				strings.Contains(body, `"merged_key_policy":`+merged) {
				found = true
			}
		}
	}

	// The same detail delivered from an account the owner does not trust (EventBridge sets
	// the envelope's account): rejected, logged, not retried.
	var e crossaccount.Envelope
	if err := json.Unmarshal(envs[0], &e); err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(envs[0]), `"account":"`+callerAcct+`"`, `"account":"999988887777"`, 1)
	if _, inv := owner.invoke(t, []byte(forged)); inv.Error {
		t.Fatalf("a rejected request must not fail the invocation: %s", inv.Body)
	}
	line := owner.lastLine(t, e.ID)
	if line.Outcome != "rejected" || !strings.Contains(line.Reason, "sending account 999988887777 is not trusted") {
		t.Errorf("forged request's log line: %+v", line)
	}
}
