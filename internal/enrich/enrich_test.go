package enrich_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/enrich"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/emulator"
	"github.com/kmsfix/kmsfix/internal/world"
)

const (
	account = "111122223333"
	region  = "eu-west-2"
	roleARN = "arn:aws:iam::111122223333:role/team/app"
	userARN = "arn:aws:iam::111122223333:user/alice"
)

func rootPolicy(acct string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

const s3Read = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}]}`
const kmsDecrypt = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.eu-west-2.amazonaws.com"}}}]}`
const boundary = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","kms:*"],"Resource":"*"}]}`

// newEnricher builds the enricher over the real SDK clients pointed at the emulators, as
// functions/remediator does (with short retry backoff, to keep the test fast).
func newEnricher(t *testing.T, env *emulator.Services, opts enrich.Options) *enrich.Enricher {
	t.Helper()
	cfg := aws.Config{
		Region:      env.Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 4; o.MaxBackoff = 20 * time.Millisecond })
		},
		APIOptions: []func(*middleware.Stack) error{enrich.CountCalls},
	}
	k := kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(env.KMS.URL) })
	i := iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(env.IAM.URL) })
	s := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(env.STS.URL) })
	return enrich.New(k, i, s, opts)
}

func denial(key, principal string) *cloudtrail.Denial {
	return &cloudtrail.Denial{EventID: "e1", KeyARN: key, KeyAccount: strings.Split(key, ":")[4],
		Identity: cloudtrail.Identity{PrincipalARN: principal, Account: strings.Split(principal, ":")[4]}}
}

func seedRole(env *emulator.Services) {
	env.IAM.PutManaged("arn:aws:iam::111122223333:policy/KMSDecrypt", awsfake.IAMPolicy{Name: "KMSDecrypt", Document: kmsDecrypt})
	env.IAM.PutManaged("arn:aws:iam::111122223333:policy/Boundary", awsfake.IAMPolicy{Name: "Boundary", Document: boundary})
	env.IAM.PutPrincipal(awsfake.IAMPrincipal{ARN: roleARN,
		Inline:   []awsfake.IAMPolicy{{Name: "s3-read", Document: s3Read}},
		Attached: []string{"arn:aws:iam::111122223333:policy/KMSDecrypt"},
		Boundary: "arn:aws:iam::111122223333:policy/Boundary"})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWorldRoleAndKey(t *testing.T) {
	env := emulator.StartServices(t, emulator.ServicesOptions{})
	seedRole(env)
	key := env.KMS.CreateKey(t, rootPolicy(account))
	if _, err := env.KMS.Client.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String("alias/app-data"), TargetKeyId: &key}); err != nil {
		t.Fatal(err)
	}
	env.KMS.AddGrant(key, world.Grant{ID: "g1", Grantee: roleARN, Operations: []string{"Decrypt"}})
	env.KMS.AddGrant(key, world.Grant{ID: "g2", Grantee: "arn:aws:iam::111122223333:role/other", Operations: []string{"Encrypt"}})

	e := newEnricher(t, env, enrich.Options{})
	ctx, calls := enrich.WithCalls(context.Background())
	w := e.World(ctx, denial(key, roleARN))

	if len(w.Unreadable) > 0 {
		t.Fatalf("unreadable: %v", w.Unreadable)
	}
	k := w.Key(key)
	if k == nil || k.Manager != "CUSTOMER" || k.State != "Enabled" || k.Policy == nil ||
		!slices.Equal(k.Aliases, []string{"alias/app-data"}) {
		t.Fatalf("key = %s", mustJSON(t, k))
	}
	if _, ok := k.Policy.StatementBySid("Enable IAM User Permissions"); !ok {
		t.Errorf("key policy lost its root statement: %s", mustJSON(t, k.Policy))
	}
	if !k.GrantsKnown || len(k.Grants) != 1 || k.Grants[0].ID != "g1" {
		t.Errorf("grants (filtered by grantee) = %s", mustJSON(t, k.Grants))
	}
	p := w.Principal(roleARN)
	if p == nil {
		t.Fatal("principal unknown")
	}
	var names []string
	for _, np := range p.Policies {
		names = append(names, np.Name)
	}
	if !slices.Equal(names, []string{"s3-read", "KMSDecrypt"}) {
		t.Errorf("policies = %v", names)
	}
	if got := mustJSON(t, p.Policies[1].Document); !strings.Contains(got, `"kms:ViaService":"s3.eu-west-2.amazonaws.com"`) {
		t.Errorf("managed policy not decoded: %s", got)
	}
	if p.PermissionsBoundary == nil {
		t.Error("boundary not read")
	}
	// STS 1, KMS 5 (DescribeKey, GetKeyPolicy, ListAliases, ListResourceTags, ListGrants),
	// IAM 6 (GetRole, ListRolePolicies, GetRolePolicy, ListAttachedRolePolicies, 2x(GetPolicy, GetPolicyVersion)).
	if got := calls.Total(); got != 1+5+8 {
		t.Errorf("AWS calls = %d, want 14: %v", got, calls.ByOperation())
	}
	if calls.ByOperation()["KMS.DescribeKey"] != 1 || calls.ByOperation()["STS.GetCallerIdentity"] != 1 {
		t.Errorf("calls by operation = %v", calls.ByOperation())
	}

	// Warm: the same denial again costs no call and gives the same world.
	ctx2, calls2 := enrich.WithCalls(context.Background())
	w2 := e.World(ctx2, denial(key, roleARN))
	if calls2.Total() != 0 {
		t.Errorf("warm calls = %v, want none", calls2.ByOperation())
	}
	if mustJSON(t, w2) != mustJSON(t, w) {
		t.Errorf("warm world differs:\n%s\n%s", mustJSON(t, w2), mustJSON(t, w))
	}
}

func TestWorldCacheExpires(t *testing.T) {
	env := emulator.StartServices(t, emulator.ServicesOptions{})
	seedRole(env)
	key := env.KMS.CreateKey(t, rootPolicy(account))
	now := time.Now()
	e := newEnricher(t, env, enrich.Options{TTL: time.Minute, Now: func() time.Time { return now }})
	e.World(context.Background(), denial(key, roleARN))
	if _, err := env.KMS.Client.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: &key}); err != nil {
		t.Fatal(err)
	}
	if got := e.World(context.Background(), denial(key, roleARN)).Key(key).State; got != "Enabled" {
		t.Errorf("within the TTL the cached state should be used, got %s", got)
	}
	now = now.Add(2 * time.Minute)
	if got := e.World(context.Background(), denial(key, roleARN)).Key(key).State; got != "Disabled" {
		t.Errorf("after the TTL the state should be read again, got %s", got)
	}
}

func TestWorldUser(t *testing.T) {
	env := emulator.StartServices(t, emulator.ServicesOptions{})
	env.IAM.PutManaged("arn:aws:iam::aws:policy/ReadOnly", awsfake.IAMPolicy{Name: "ReadOnly", Document: s3Read})
	env.IAM.PutGroup(awsfake.IAMGroup{Name: "devs", Inline: []awsfake.IAMPolicy{{Name: "kms", Document: kmsDecrypt}},
		Attached: []string{"arn:aws:iam::aws:policy/ReadOnly"}})
	env.IAM.PutPrincipal(awsfake.IAMPrincipal{ARN: userARN, Inline: []awsfake.IAMPolicy{{Name: "own", Document: s3Read}}, Groups: []string{"devs"}})
	key := env.KMS.CreateKey(t, rootPolicy(account))
	w := newEnricher(t, env, enrich.Options{}).World(context.Background(), denial(key, userARN))
	p := w.Principal(userARN)
	if p == nil {
		t.Fatalf("user unknown: %v", w.Unreadable)
	}
	var names []string
	for _, np := range p.Policies {
		names = append(names, np.Name)
	}
	if want := []string{"own", "group/devs/kms", "group/devs/ReadOnly"}; !slices.Equal(names, want) {
		t.Errorf("policies = %v, want %v", names, want)
	}
}

// TestWorldDegrades: what cannot be read is left unknown and named, never guessed.
func TestWorldDegrades(t *testing.T) {
	foreignKey := "arn:aws:kms:eu-west-2:444455556666:key/0b0b0b0b-1111-2222-3333-444444444444"
	tests := []struct {
		name    string
		setup   func(t *testing.T, env *emulator.Services) (key, principal string)
		check   func(t *testing.T, w *world.World, key, principal string)
		unknown []string // substrings expected in Unreadable
	}{
		{
			name: "inline policy denied",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.IAM.Fail("GetRolePolicy", testenv.AWSFault{Code: "AccessDenied"})
				return env.KMS.CreateKey(t, rootPolicy(account)), roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if w.Principal(principal) != nil {
					t.Error("a principal with an unreadable policy must be unknown, not partial")
				}
				if w.Key(key) == nil || w.Key(key).Policy == nil {
					t.Error("the key should still be known")
				}
			},
			unknown: []string{"iam:GetRolePolicy app/s3-read: access denied"},
		},
		{
			name: "key policy denied",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.KMS.Fail("GetKeyPolicy", testenv.AWSFault{Code: "AccessDeniedException"})
				return env.KMS.CreateKey(t, rootPolicy(account)), roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				k := w.Key(key)
				if k == nil || k.Policy != nil || k.State != "Enabled" {
					t.Errorf("key = %s, want state known and policy unknown", mustJSON(t, k))
				}
			},
			unknown: []string{"kms:GetKeyPolicy", "access denied"},
		},
		{
			name: "key missing",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				return "arn:aws:kms:eu-west-2:111122223333:key/deadbeef-0000-0000-0000-000000000000", roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if !w.KeyMissing(key) || w.Key(key) != nil || len(w.Unreadable) != 0 {
					t.Errorf("world = %s, want the key listed as missing", mustJSON(t, w))
				}
			},
		},
		{
			name: "another account's key, not describable",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.KMS.PutForeignKey(foreignKey, emulator.ForeignKey{Denied: true})
				return foreignKey, roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if w.Key(key) != nil || w.KeyMissing(key) || w.Principal(principal) == nil {
					t.Errorf("world = %s", mustJSON(t, w))
				}
			},
			unknown: []string{"kms:DescribeKey " + foreignKey + ": access denied", "key policy of " + foreignKey + ": the key is in account 444455556666"},
		},
		{
			name: "another account's AWS managed key",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.KMS.PutForeignKey(foreignKey, emulator.ForeignKey{Manager: "AWS", State: "Enabled"})
				return foreignKey, roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if k := w.Key(key); k == nil || k.Manager != "AWS" || k.Policy != nil {
					t.Errorf("key = %s, want manager AWS, policy unknown", mustJSON(t, k))
				}
			},
			unknown: []string{"the key is in account 444455556666"},
		},
		{
			name: "principal in another account",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				return env.KMS.CreateKey(t, rootPolicy(account)), "arn:aws:iam::444455556666:role/reader"
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if w.Principal(principal) != nil || w.Key(key) == nil {
					t.Errorf("world = %s", mustJSON(t, w))
				}
			},
			unknown: []string{"the principal is in account 444455556666"},
		},
		{
			name: "STS fails",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.STS.Fail("GetCallerIdentity", testenv.AWSFault{Code: "AccessDenied"})
				return env.KMS.CreateKey(t, rootPolicy(account)), roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if k := w.Key(key); k == nil || k.Policy != nil || w.Principal(principal) != nil {
					t.Errorf("without the account id nothing account-bound may be read: %s", mustJSON(t, w))
				}
			},
			unknown: []string{"sts:GetCallerIdentity: access denied", "this account's id is unknown"},
		},
		{
			name: "throttled, then success",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.IAM.Fail("GetRole", testenv.AWSFault{Code: "Throttling", Times: 2})
				return env.KMS.CreateKey(t, rootPolicy(account)), roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if w.Principal(principal) == nil || len(w.Unreadable) != 0 {
					t.Errorf("retries should have read the role: %s", mustJSON(t, w))
				}
			},
		},
		{
			name: "throttled for good",
			setup: func(t *testing.T, env *emulator.Services) (string, string) {
				seedRole(env)
				env.IAM.Fail("ListAttachedRolePolicies", testenv.AWSFault{Code: "Throttling"})
				return env.KMS.CreateKey(t, rootPolicy(account)), roleARN
			},
			check: func(t *testing.T, w *world.World, key, principal string) {
				if w.Principal(principal) != nil {
					t.Error("principal should be unknown")
				}
			},
			unknown: []string{"iam:ListAttachedRolePolicies app: Throttling", "gave up after 4 attempts"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := emulator.StartServices(t, emulator.ServicesOptions{})
			key, principal := tt.setup(t, env)
			w := newEnricher(t, env, enrich.Options{}).World(context.Background(), denial(key, principal))
			tt.check(t, w, key, principal)
			all := strings.Join(w.Unreadable, "\n")
			for _, u := range tt.unknown {
				if !strings.Contains(all, u) {
					t.Errorf("unreadable %q does not mention %q", all, u)
				}
			}
			if len(tt.unknown) == 0 && len(w.Unreadable) > 0 {
				t.Errorf("unexpected unreadable: %v", w.Unreadable)
			}
		})
	}
}

func TestWorldTimeout(t *testing.T) {
	env := emulator.StartServices(t, emulator.ServicesOptions{})
	seedRole(env)
	key := env.KMS.CreateKey(t, rootPolicy(account))
	env.IAM.Fail("GetRole", testenv.AWSFault{Delay: time.Minute})
	e := newEnricher(t, env, enrich.Options{Reserve: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	w := e.World(ctx, denial(key, roleARN))
	// The stalled call would take a minute; enrichment must give up at its own deadline
	// (generous bound: this machine is shared).
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("enrichment took %s; it must give up before the invocation's deadline", d)
	}
	if w.Principal(roleARN) != nil || w.Key(key) == nil {
		t.Errorf("world = %s", mustJSON(t, w))
	}
	if all := strings.Join(w.Unreadable, "\n"); !strings.Contains(all, "iam:GetRole app: timed out") {
		t.Errorf("unreadable = %q", all)
	}
}

// TestWorldRoundTrip: a world seeded into the emulators is read back unchanged.
func TestWorldRoundTrip(t *testing.T) {
	keyARN := "arn:aws:kms:eu-west-2:111122223333:key/11111111-2222-3333-4444-555555555555"
	in, err := world.Parse([]byte(`{
	  "keys": {"` + keyARN + `": {"manager": "CUSTOMER", "state": "Disabled", "aliases": ["alias/app"],
	     "policy": ` + rootPolicy(account) + `,
	     "grants": [{"id": "g1", "grantee": "` + roleARN + `", "operations": ["Decrypt"]}],
	     "key_spec": "SYMMETRIC_DEFAULT", "key_usage": "ENCRYPT_DECRYPT", "multi_region": false,
	     "tags": {"env": "prod", "owner": "data team"}}},
	  "principals": {"` + roleARN + `": {"policies": [{"name": "kms", "document": ` + kmsDecrypt + `}],
	     "permissions_boundary": ` + boundary + `, "tags": {"team": "payments", "cost-center": "4 2"}}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	env := emulator.StartServices(t, emulator.ServicesOptions{World: in})
	got := newEnricher(t, env, enrich.Options{}).World(context.Background(), denial(keyARN, roleARN))
	if a, b := mustJSON(t, got), mustJSON(t, in); a != b {
		t.Errorf("round trip:\n got %s\nwant %s", a, b)
	}
}
