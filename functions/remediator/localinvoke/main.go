// Command localinvoke runs one event through the remediator's bootstrap under the Lambda
// Runtime Interface Emulator, against local emulators (local-kms; IAM, STS and Access Analyzer
// fakes; goaws for SNS; dynalite for DynamoDB), and prints the finding. With -world, the
// emulators are seeded from a world file, so the function reads live what the file says.
// `make invoke EVENT=events/x/event.json [WORLD=events/x/world.json]` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

func main() {
	eventPath := flag.String("event", "", "the event (EventBridge envelope or CloudTrail record)")
	worldPath := flag.String("world", "", "a world file to seed the emulators with (optional)")
	bootstrap := flag.String("bootstrap", "dist/host/bootstrap", "the function binary (host build)")
	logs := flag.Bool("logs", false, "also print the function's log lines to stderr")
	flag.Parse()
	h := &testenv.ProcessHarness{Prefix: "localinvoke: "}
	defer h.Close()
	if *eventPath == "" {
		h.Fatalf("-event is required")
	}
	event, err := os.ReadFile(*eventPath)
	if err != nil {
		h.Fatalf("%v", err)
	}
	var w *world.World
	if *worldPath != "" {
		if w, err = world.Load(*worldPath); err != nil {
			h.Fatalf("%v", err)
		}
	}
	// The function plays the account and Region that logged the event.
	opts := emulator.ServicesOptions{World: w}
	if item, err := cloudtrail.Parse(event); err == nil && item.Denial != nil {
		opts.Account, opts.Region = item.Denial.RecipientAccount, item.Denial.Region
	}
	env := emulator.StartServices(h, opts)
	sns := emulator.StartGoaws(h, "kmsfix")
	ddb := emulator.StartDynalite(h)
	ddb.CreateTable(h, "kmsfix")
	vars := append(env.Env(),
		"AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_TIMEOUT=30",
		"KMSFIX_TOPIC_ARN="+sns.TopicARN, "KMSFIX_TABLE_NAME=kmsfix",
		"AWS_ENDPOINT_URL_SNS="+sns.Endpoint, "AWS_ENDPOINT_URL_DYNAMODB="+ddb.Endpoint)
	if w != nil && len(w.SandboxAccounts) > 0 {
		vars = append(vars, "KMSFIX_SANDBOX_ACCOUNTS="+strings.Join(w.SandboxAccounts, ","))
	}
	rie := emulator.StartRIE(h, *bootstrap, vars)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv, err := rie.Invoke(ctx, event)
	if err != nil {
		h.Fatalf("%v", err)
	}
	if *logs || inv.Error {
		for _, l := range strings.Split(rie.Logs(), "\n") {
			if strings.HasPrefix(l, "{") {
				fmt.Fprintln(os.Stderr, l)
			}
		}
	}
	var out bytes.Buffer
	if json.Indent(&out, inv.Body, "", "  ") != nil {
		out.Write(inv.Body)
	}
	fmt.Println(out.String())
	if inv.Error {
		h.Close()
		os.Exit(1)
	}
}
