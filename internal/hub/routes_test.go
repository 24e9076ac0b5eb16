package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/orgroute"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
)

// Issue 19 item 3 end to end: sample 25's denial (principal in 111122223333) through the hub
// handler, its world read through the members' reader roles, routed by KMSFIX_ROUTES as the
// function reads it (config.Load), to real notifiers (one dedupe table in dynalite, a Slack
// webhook per route), the account's OU chain and tags from the Organizations wire fake.
func TestHubRoutesByOUAndTag(t *testing.T) {
	const (
		root       = "r-ab12"
		ouProd     = "ou-ab12-prod0001"
		ouPayments = "ou-ab12-payments1"
		region     = "us-east-1"
	)
	route := func(name string) string {
		return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:kmsfix/%s-AbC123", region, hubAccount, name)
	}
	o := newOrg(t, time.Hour, callerAccount, ownerAccount)
	record, err := os.ReadFile(filepath.Join("..", "..", "events", sample, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	event := envelope(t, record)
	dyn := emulator.StartDynalite(t)

	orgs := awsfake.NewOrganizations(t, root)
	orgs.Place(ouProd, root)
	orgs.Place(ouPayments, ouProd)
	orgs.Place(callerAccount, ouPayments)
	orgs.Place(ownerAccount, root)
	orgs.Tag(callerAccount, "cost center", "ml=team:a") // "=" and ":" and a space in a tag
	orgs.Tag(callerAccount, "note", "<!channel> *urgent*\n\x1b[31m")

	routes := map[string]string{ // KMSFIX_ROUTES; every case also routes the key owner's account
		"account over tag and OU": callerAccount + "=slack:" + route("own") + ",tag:cost%20center=ml%3Dteam:a=slack:" + route("tag") +
			"," + ouPayments + "=slack:" + route("payments"),
		"tag over OU":       ouPayments + "=slack:" + route("payments") + ",tag:cost%20center=ml%3Dteam:a=slack:" + route("tag"),
		"nearest OU":        ouProd + "=slack:" + route("prod") + "," + ouPayments + "=slack:" + route("payments"),
		"farther OU":        ouProd + "=slack:" + route("prod") + ",tag:cost%20center=other=slack:" + route("tag"),
		"no match":          "tag:note=x=slack:" + route("tag") + "," + ownerAccount + "=slack:" + route("own"),
		"lookup fails":      ouPayments + "=slack:" + route("payments"),
		"hostile tag value": "tag:note=channel=slack:" + route("tag"),
	}
	wantRoute := map[string]string{"account over tag and OU": "own", "tag over OU": "tag", "nearest OU": "payments",
		"farther OU": "prod", "no match": "default", "lookup fails": "default", "hostile tag value": "default"}

	for i, name := range []string{"account over tag and OU", "tag over OU", "nearest OU", "farther OU", "no match", "lookup fails", "hostile tag value"} {
		t.Run(name, func(t *testing.T) {
			table := fmt.Sprintf("kmsfix-routes-%d", i)
			dyn.CreateTable(t, table)
			secrets := awsfake.NewSecrets(t)
			slack := map[string]*awsfake.SlackReceiver{}
			for _, n := range []string{"default", "own", "tag", "payments", "prod"} {
				slack[n] = awsfake.NewSlackReceiver(t)
				secrets.Put(route(n), slack[n].WebhookURL)
			}
			env := map[string]string{"KMSFIX_TOPIC_ARN": "arn:aws:sns:" + region + ":" + hubAccount + ":kmsfix", "KMSFIX_TABLE_NAME": table,
				"KMSFIX_HUB_ORG_ID": "o-abcdefghij", "KMSFIX_SLACK_SECRET_ARN": route("default"), "KMSFIX_ROUTES": routes[name]}
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			clients := notify.Clients{DynamoDB: dyn.Client(1), Secrets: secrets.Client()}
			newNotifier := func(r config.Route) (notify.Sender, error) {
				return notify.New(notify.Config{Table: table, SlackSecretARN: r.SlackSecretARN, Window: cfg.DedupeWindow}, clients)
			}
			def, err := newNotifier(config.Route{SlackSecretARN: cfg.SlackSecretARN})
			if err != nil {
				t.Fatal(err)
			}
			var logs, metrics bytes.Buffer
			resolver := &orgroute.Resolver{Org: orgs.Client(), Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: &metrics}
			if name == "lookup fails" {
				orgs.Fail("ListParents", testenv.AWSFault{Code: "AccessDeniedException"})
				defer orgs.Clear()
			}
			parents0, tags0 := orgs.CallsFor("ListParents", callerAccount), orgs.CallsFor("ListTagsForResource", callerAccount)
			rt, err := orgroute.Routed(cfg, def, newNotifier, resolver)
			if err != nil {
				t.Fatal(err)
			}
			h := &remediator.Handler{Enricher: o.accounts, Validator: o.validator, Notifier: rt, Hub: true,
				Log: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))}

			// The same denial three times (a storm of one finding): one message, on its route.
			for range 3 {
				rep, err := h.Handle(context.Background(), event)
				if err != nil || rep.Diagnosis == "" || rep.PrincipalAccount != callerAccount {
					t.Fatalf("handle: %v, diagnosis %q, principal account %q, ignored %q", err, rep.Diagnosis, rep.PrincipalAccount, rep.Ignored)
				}
			}
			for n, rcv := range slack {
				want := 0
				if n == wantRoute[name] {
					want = 1
				}
				if rcv.Count() != want {
					t.Errorf("route %s received %d messages, want %d", n, rcv.Count(), want)
				}
				for _, p := range rcv.Payloads() {
					for _, bad := range []string{"<!channel>", "*urgent*", "\x1b", `\u001b`, "ml=team"} {
						if strings.Contains(string(p), bad) {
							t.Errorf("route %s: a tag value reached the message: %s", n, p)
						}
					}
				}
			}
			if name == "lookup fails" {
				if strings.Count(logs.String(), "\n") != 1 || !strings.Contains(logs.String(), "AccessDeniedException") ||
					!strings.Contains(metrics.String(), `"`+orgroute.MetricLookupFailed+`":1`) {
					t.Errorf("a failed lookup: log %q, metrics %q; want one line and one metric", logs.String(), metrics.String())
				}
			} else if logs.Len() != 0 || metrics.Len() != 0 {
				t.Errorf("logged or counted without a failure: %s %s", logs.String(), metrics.String())
			}
			// Three events, one lookup: at most one call per level and one for the tags.
			if p, g := orgs.CallsFor("ListParents", callerAccount)-parents0, orgs.CallsFor("ListTagsForResource", callerAccount)-tags0; p > 1 || g > 1 {
				t.Errorf("Organizations asked %d ListParents and %d ListTagsForResource of the account for 3 events", p, g)
			}
		})
	}
}

// envelope puts sample 25's bare record into the envelope EventBridge gives it on the hub bus.
func envelope(t *testing.T, record []byte) []byte {
	t.Helper()
	var r struct {
		EventID            string `json:"eventID"`
		RecipientAccountID string `json:"recipientAccountId"`
		AWSRegion          string `json:"awsRegion"`
		EventTime          string `json:"eventTime"`
	}
	if err := json.Unmarshal(record, &r); err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(map[string]any{"version": "0", "id": "env-" + r.EventID, "detail-type": "AWS API Call via CloudTrail",
		"source": "aws.kms", "account": r.RecipientAccountID, "time": r.EventTime, "region": r.AWSRegion, "resources": []string{},
		"detail": json.RawMessage(record)})
	if err != nil {
		t.Fatal(err)
	}
	return env
}
