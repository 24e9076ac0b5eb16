package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

// TestSmallHubStorm is the organization storm reduced: 1,200 events of 30 accounts in 3
// Regions holding 60 findings through the hub handler in 2 containers, 4 accounts routed to
// 2 team channels by account and 6 by their team's OU, credentials usable for 2 s so the
// containers renew them. The run checks
// itself (checkHub); the test also asks that renewal happened and that every channel got
// exactly its findings.
func TestSmallHubStorm(t *testing.T) {
	cfg := hubConfig{Events: 1200, Findings: 60, Accounts: 30, Regions: 3, Routed: 4, OURouted: 6, Channels: 2,
		Containers: 2, Workers: 4, Lifetime: 2 * time.Second, Seed: 3}
	res, err := runHub(context.Background(), t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	reportHub(&out, cfg, res)
	t.Log(out.String())
	if len(res.Problems) > 0 {
		t.Fatalf("storm problems:\n%s", strings.Join(res.Problems, "\n"))
	}
	if res.Want["default"] != 40 || res.Want["team0"] != 10 || res.Want["team1"] != 10 {
		t.Errorf("findings per channel %v, want 40 default and 10 per team", res.Want)
	}
	if res.OrgCalls == 0 {
		t.Error("no Organizations calls: the OU routes were not resolved")
	}
	for ch, n := range res.Want {
		if res.Slack[ch] != n || res.SNS[ch] != n {
			t.Errorf("%s: %d Slack and %d SNS, want %d each", ch, res.Slack[ch], res.SNS[ch], n)
		}
	}
	if res.CountOK != 60 || res.HandlerErrors != 0 {
		t.Errorf("%d findings counted, %d handler errors", res.CountOK, res.HandlerErrors)
	}
	if res.Duration > 3*cfg.Lifetime && res.Renewed == 0 {
		t.Errorf("a %s storm with %s credentials renewed none", res.Duration, cfg.Lifetime)
	}
	if res.MaxAssumePerContainer > res.AssumeBound || res.AssumeTotal < cfg.Accounts*cfg.Containers/2 {
		t.Errorf("AssumeRole: %d in all, at most %d per account and container, bound %d", res.AssumeTotal, res.MaxAssumePerContainer, res.AssumeBound)
	}
}

// kmsScope lets a call through only for the signing account's own key in the signing
// Region, with live credentials; everything else is refused and counted.
func TestKMSScopeRefusesOtherAccountsAndExpiredCredentials(t *testing.T) {
	now := time.Now()
	st := awsfake.NewSTS(t, hubAcct)
	st.Now = func() time.Time { return now }
	st.Lifetime = time.Minute
	const a, b = "300000000001", "300000000002"
	st.AddMember(a)
	st.AddMember(b)
	// The backend answers DescribeKey naming the account local-kms plays.
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Write([]byte(`{"KeyMetadata":{"AWSAccountId":"` + kmsAcct + `","KeyId":"k","Arn":"arn:aws:kms:us-east-1:` + kmsAcct + `:key/k","KeyState":"Enabled","KeyManager":"CUSTOMER"}}`))
	})
	srv := newTestServer(t, backend)
	scope := newKMSScope(t, st, kmsAcct, map[string]string{"us-east-1": srv})

	creds := func(acct string) aws.CredentialsProvider {
		t.Helper()
		out, err := stsAssume(st, acct)
		if err != nil {
			t.Fatal(err)
		}
		return credentials.NewStaticCredentialsProvider(out, "secret", "token")
	}
	client := func(p aws.CredentialsProvider, region string) *kms.Client {
		return kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(scope.URL), Credentials: p, RetryMaxAttempts: 1})
	}
	ctx := context.Background()
	keyOf := func(acct string) *string {
		return aws.String("arn:aws:kms:us-east-1:" + acct + ":key/" + keyID(acct, 1))
	}
	ca := creds(a)

	out, err := client(ca, "us-east-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: keyOf(a)})
	if err != nil || aws.ToString(out.KeyMetadata.AWSAccountId) != a || !strings.Contains(aws.ToString(out.KeyMetadata.Arn), ":"+a+":") {
		t.Fatalf("own key: %v %+v", err, out)
	}
	if _, err := client(ca, "us-east-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: keyOf(b)}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("another account's key with %s's credentials: %v, want AccessDenied", a, err)
	}
	if _, err := client(ca, "eu-west-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: keyOf(a)}); err == nil {
		t.Error("a key of us-east-1 signed for eu-west-1 passed")
	}
	if _, err := client(credentials.NewStaticCredentialsProvider("AKIAUNKNOWN", "x", ""), "us-east-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: keyOf(a)}); err == nil {
		t.Error("credentials the STS fake never issued passed")
	}
	now = now.Add(2 * time.Minute)
	if _, err := client(ca, "us-east-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: keyOf(a)}); err == nil || !strings.Contains(err.Error(), "ExpiredToken") {
		t.Errorf("expired credentials: %v, want ExpiredTokenException", err)
	}
	if scope.foreign.Load() != 2 || scope.refused.Load() != 1 || scope.expired.Load() != 1 || scope.calls(a) != 1 || scope.calls(b) != 0 {
		t.Errorf("counted foreign %d refused %d expired %d, calls %d and %d", scope.foreign.Load(), scope.refused.Load(), scope.expired.Load(), scope.calls(a), scope.calls(b))
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// stsAssume assumes acct's reader role at the STS fake and returns the access key id.
func stsAssume(st *awsfake.STS, acct string) (string, error) {
	c := sts.New(sts.Options{Region: "eu-west-1", BaseEndpoint: aws.String(st.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAHUB", "hub", "")})
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::" + acct + ":role/kmsfix-reader"), RoleSessionName: aws.String("kmsfix-hub")})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Credentials.AccessKeyId), nil
}

// The storm's checks fail when what they check breaks: findings that reach the default
// channel instead of their routes, and a heap that grows with every event.
func TestHubStormChecksFail(t *testing.T) {
	for _, tc := range []struct {
		sabotage, want string
	}{
		{"routes", "does not belong to this channel"},
		{"leak", "live heap rose"},
	} {
		t.Run(tc.sabotage, func(t *testing.T) {
			cfg := hubConfig{Events: 400, Findings: 20, Accounts: 10, Regions: 3, Routed: 2, OURouted: 2, Channels: 2,
				Containers: 1, Workers: 2, Seed: 5, sabotage: tc.sabotage}
			res, err := runHub(context.Background(), t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(res.Problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("sabotage %q: no problem saying %q; problems: %q", tc.sabotage, tc.want, res.Problems)
			}
		})
	}
}
