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
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/hub"
	"github.com/kmsfix/kmsfix/internal/notify"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

// recorder counts what reached one route.
type recorder struct {
	mu  sync.Mutex
	got []finding.Report
}

func (r *recorder) Notify(_ context.Context, rep finding.Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rep)
	return nil
}

// A reduced organization storm through the hub handler: events of M accounts in 3 Regions
// (sample 01 rewritten per account and Region), each account's world read with its own
// credentials: one AssumeRole per account for the whole storm, every event diagnosed from a
// fully read world and verified, each routed to its account's route. (Dedupe across routes is
// notify's TestRoutedOneMessagePerFinding; the throughput figures of issue 19 item 5 are not
// measured here.)
func TestHubStormAccountsAndRoutes(t *testing.T) {
	const (
		template = "210987654321"
		keyID    = "6f3c1a2e-8d4b-4e7a-9c15-2b7d90e4a3f1"
		accounts = 30
		perAcct  = 20 // events per account, spread over 3 Regions
	)
	regions := []string{"eu-west-1", "us-east-1", "ap-southeast-2"}
	dir := filepath.Join("..", "..", "events", "01-identity-policy-missing")
	tmpl, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := world.Load(filepath.Join(dir, "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	keyPolicy, err := json.Marshal(w.Keys["arn:aws:kms:eu-west-1:"+template+":key/"+keyID].Policy)
	if err != nil {
		t.Fatal(err)
	}

	kmsShim := emulator.StartLocalKMS(t, emulator.LocalKMSOptions{Account: template, Region: "eu-west-1"})
	worldJSON, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	stsFake := awsfake.NewSTS(t, hubAccount)
	kmsURLs, iamURLs := map[string]string{}, map[string]string{}
	var accts []string
	for i := range accounts {
		acct := fmt.Sprintf("3000000%05d", i)
		accts = append(accts, acct)
		stsFake.AddMember(acct)
		// One IAM fake per account (it keys roles by name), seeded with the template's role
		// moved into this account.
		iamFake := awsfake.NewIAM(t)
		aw, err := world.Parse([]byte(strings.ReplaceAll(string(worldJSON), template, acct)))
		if err != nil {
			t.Fatal(err)
		}
		if err := iamFake.SeedWorld(aw); err != nil {
			t.Fatal(err)
		}
		kmsURLs[acct], iamURLs[acct] = kmsShim.URL, iamFake.URL
		for _, r := range regions {
			kmsShim.PutForeignKey("arn:aws:kms:"+r+":"+acct+":key/"+keyID, emulator.ForeignKey{Manager: "CUSTOMER", State: "Enabled",
				Policy: strings.ReplaceAll(string(keyPolicy), template, acct)})
		}
	}
	kmsRouter := awsfake.NewAccountRouter(t, stsFake, kmsURLs)
	iamRouter := awsfake.NewAccountRouter(t, stsFake, iamURLs)

	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIAHUBHUBHUBHUBHUB0", "hub", "")}
	stsEndpoint := func(so *sts.Options) { so.BaseEndpoint = aws.String(stsFake.URL) }
	hubAccounts := &hub.Accounts{Base: cfg, STS: sts.NewFromConfig(cfg, stsEndpoint), Partition: "aws",
		Enrich: enrich.Options{CallTimeout: 5 * time.Second},
		Clients: func(c aws.Config) (enrich.KMSAPI, enrich.IAMAPI, enrich.STSAPI) {
			return kms.NewFromConfig(c, func(ko *kms.Options) { ko.BaseEndpoint = aws.String(kmsRouter.URL) }),
				iam.NewFromConfig(c, func(io *iam.Options) { io.BaseEndpoint = aws.String(iamRouter.URL) }),
				sts.NewFromConfig(c, stsEndpoint)
		}}
	routed, def := &recorder{}, &recorder{}
	routes := map[string]notify.Sender{}
	for _, a := range accts[:accounts/3] {
		routes[a] = routed
	}
	var logs bytes.Buffer
	aa := awsfake.NewAccessAnalyzer(t)
	validator := pipeline.NewValidator(accessanalyzer.NewFromConfig(cfg, func(o *accessanalyzer.Options) { o.BaseEndpoint = aws.String(aa.URL) }),
		time.Minute, 5*time.Second)
	h := &remediator.Handler{Enricher: hubAccounts, Validator: validator, Notifier: &notify.Routed{Default: def, Routes: routes}, Hub: true,
		Log: slog.New(slog.NewJSONHandler(&logs, nil))}

	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var problems []string
	for i := range accounts * perAcct {
		acct, region := accts[i%accounts], regions[(i/accounts)%len(regions)]
		ev := strings.ReplaceAll(strings.ReplaceAll(string(tmpl), template, acct), "eu-west-1", region)
		ev = strings.Replace(ev, `"id": "`, fmt.Sprintf(`"id": "storm-%d-`, i), 1)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rep, err := h.Handle(context.Background(), json.RawMessage(ev))
			if err != nil || rep.Diagnosis != finding.IdentityPolicyMissing || len(rep.Unknown) != 0 || !rep.Verified || rep.PrincipalAccount != acct {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("event %d (%s %s): %v %s unknown %v ignored %q", i, acct, region, err, rep.Diagnosis, rep.Unknown, rep.Ignored))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d events went wrong, first: %s", len(problems), problems[0])
	}
	for _, a := range accts {
		if n := stsFake.AssumeRoleCalls(a); n != 1 {
			t.Errorf("AssumeRole for %s: %d over the storm, want 1", a, n)
		}
		if kmsRouter.Calls(a) == 0 || iamRouter.Calls(a) == 0 {
			t.Errorf("no calls signed for %s", a)
		}
	}
	if kmsRouter.Refused()+iamRouter.Refused() != 0 {
		t.Errorf("calls with credentials of no account: %d", kmsRouter.Refused()+iamRouter.Refused())
	}
	if want := accounts / 3 * perAcct; len(routed.got) != want || len(def.got) != accounts*perAcct-want {
		t.Errorf("routed %d, default %d; want %d and %d", len(routed.got), len(def.got), want, accounts*perAcct-want)
	}
	for _, r := range routed.got {
		if _, ok := routes[r.PrincipalAccount]; !ok {
			t.Errorf("a finding of %s reached the routed channel", r.PrincipalAccount)
		}
	}
}
