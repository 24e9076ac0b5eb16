package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/world"
)

// LocalKMS is nsmithuk/local-kms behind a thin shim. local-kms keeps keys, key policies,
// aliases and key states; the shim adds what it lacks: ListGrants (grants set by the test),
// keys it cannot hold (another account's keys, AWS managed keys), and injected faults.
// URL is the shim: point AWS_ENDPOINT_URL_KMS or the client's BaseEndpoint at it.
type LocalKMS struct {
	URL     string
	Account string
	Region  string
	Client  *kms.Client // a client for the test itself (creating keys, disabling them)

	backend string
	faults  testenv.Faults
	mu      sync.Mutex
	grants  map[string][]world.Grant // by key ARN
	foreign map[string]ForeignKey    // by key ARN
	// After SeedWorld, reads of what the world does not know are denied, so the function
	// learns as little as the world says: known lists the keys (and missing keys) it names,
	// denied the operations on known keys whose answer it does not know. (A world that
	// names a key but no grants is read as "no grants": sample worlds leave them out.)
	seeded bool
	known  map[string]bool
	denied map[string]bool // "<arn>|<operation>"
}

// ForeignKey is a key the shim answers for itself.
type ForeignKey struct {
	Manager string // CUSTOMER or AWS
	State   string // a KMS KeyState
	Policy  string // returned by GetKeyPolicy ("" → access denied)
	Aliases []string
	// Denied makes DescribeKey answer AccessDeniedException, as for another account's key
	// whose policy does not let us describe it.
	Denied bool
}

// LocalKMSOptions says which account and Region local-kms plays, and which key ids to seed.
type LocalKMSOptions struct {
	Account string // default 111122223333
	Region  string // default eu-west-2
	KeyIDs  []string
}

// StartLocalKMS starts local-kms on a free loopback port and the shim in front of it; both stop
// at cleanup.
func StartLocalKMS(t testenv.Harness, opts LocalKMSOptions) *LocalKMS {
	t.Helper()
	if opts.Account == "" {
		opts.Account = "111122223333"
	}
	if opts.Region == "" {
		opts.Region = "eu-west-2"
	}
	backend := runLocalKMS(t, opts.Account, opts.Region, localKMSSeed(opts.KeyIDs))
	k := &LocalKMS{Account: opts.Account, Region: opts.Region, backend: backend,
		grants: map[string][]world.Grant{}, foreign: map[string]ForeignKey{}}
	srv := httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(srv.Close)
	k.URL = srv.URL
	k.Client = kms.New(kms.Options{
		Region: opts.Region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return k
}

// runLocalKMS runs local-kms for account and region, seeded with seed unless it is nil, on a
// free loopback port and returns its URL; it is stopped and its data removed at cleanup.
func runLocalKMS(t testenv.Harness, account, region string, seed []byte) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kmsfix-local-kms-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var seedPath string
	if seed != nil {
		seedPath = filepath.Join(dir, "seed.yaml")
		if err := os.WriteFile(seedPath, seed, 0o600); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	p := Launch(t, Command{
		Name: "local-kms", Path: Tool(t, "local-kms"), Args: func([]int) []string { return nil },
		Env: func(ports []int) []string {
			env := []string{"PORT=" + strconv.Itoa(ports[0]), "KMS_ACCOUNT_ID=" + account, "KMS_REGION=" + region,
				"KMS_DATA_PATH=" + filepath.Join(dir, fmt.Sprintf("data-%d", ports[0]))}
			if seedPath != "" {
				env = append(env, "KMS_SEED_PATH="+seedPath)
			}
			return env
		},
	})
	return p.URL()
}

func localKMSSeed(ids []string) []byte {
	var b bytes.Buffer
	b.WriteString("Keys:\n  Symmetric:\n    Aes:\n")
	for _, id := range ids {
		material := make([]byte, 32)
		rand.Read(material)
		fmt.Fprintf(&b, "      - Metadata:\n          KeyId: %s\n        BackingKeys:\n          - %s\n", id, hex.EncodeToString(material))
	}
	if len(ids) == 0 {
		b.Reset()
		b.WriteString("Keys: {}\n")
	}
	return b.Bytes()
}

// CreateKey creates a customer managed key with the given policy ("" for the KMS default
// policy) and returns its ARN.
func (k *LocalKMS) CreateKey(t testenv.Harness, policy string) string {
	t.Helper()
	in := &kms.CreateKeyInput{Description: aws.String("kmsfix test key")}
	if policy != "" {
		in.Policy = &policy
	}
	out, err := k.Client.CreateKey(context.Background(), in)
	if err != nil {
		t.Fatalf("local-kms CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// AddGrant adds a grant that ListGrants will report for the key.
func (k *LocalKMS) AddGrant(keyARN string, g world.Grant) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.grants[keyARN] = append(k.grants[keyARN], g)
}

// PutForeignKey makes the shim answer for a key local-kms cannot hold.
func (k *LocalKMS) PutForeignKey(arn string, fk ForeignKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.foreign[arn] = fk
}

// Fail makes an operation ("DescribeKey") fail or stall.
func (k *LocalKMS) Fail(op string, fault testenv.AWSFault) { k.faults.Set(op, fault) }

// Calls is how many times an operation reached the shim.
func (k *LocalKMS) Calls(op string) int { return k.faults.Count(op) }

// SeedWorld makes live KMS say what the world's keys say: policy, state, aliases and grants on
// local-kms for this account's customer managed keys (seeded by id at start), the shim for
// the others.
func (k *LocalKMS) SeedWorld(t testenv.Harness, w *world.World) {
	t.Helper()
	ctx := context.Background()
	k.mu.Lock()
	k.seeded, k.known, k.denied = true, map[string]bool{}, map[string]bool{}
	for arn, key := range w.Keys {
		k.known[arn] = true
		for _, a := range key.Aliases {
			if k.Local(arn) && key.Manager != world.ManagerAWS {
				k.known[a] = true // local-kms resolves the alias itself
			}
		}
		if key.Policy == nil {
			k.denied[arn+"|GetKeyPolicy"] = true
		}
		if key.Manager == "" && key.State == "" {
			k.denied[arn+"|DescribeKey"] = true
		}
	}
	for _, arn := range w.MissingKeys {
		k.known[arn] = true
	}
	k.mu.Unlock()
	for arn, key := range w.Keys {
		var policy string
		if key.Policy != nil {
			b, err := json.Marshal(key.Policy)
			if err != nil {
				t.Fatalf("key %s policy: %v", arn, err)
			}
			policy = string(b)
		}
		for _, g := range key.Grants {
			k.AddGrant(arn, g)
		}
		if !k.Local(arn) || key.Manager == world.ManagerAWS {
			k.PutForeignKey(arn, ForeignKey{Manager: key.Manager, State: key.State, Policy: policy, Aliases: key.Aliases, Denied: key.Manager == "" && key.State == ""})
			continue
		}
		if policy != "" {
			if _, err := k.Client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: &arn, PolicyName: aws.String("default"), Policy: &policy}); err != nil {
				t.Fatalf("PutKeyPolicy %s: %v", arn, err)
			}
		}
		for _, a := range key.Aliases {
			if _, err := k.Client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(a), TargetKeyId: &arn}); err != nil {
				t.Fatalf("CreateAlias %s: %v", a, err)
			}
		}
		if len(key.Tags) > 0 {
			in := &kms.TagResourceInput{KeyId: &arn}
			for tk, tv := range key.Tags {
				in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(tk), TagValue: aws.String(tv)})
			}
			if _, err := k.Client.TagResource(ctx, in); err != nil {
				t.Fatalf("TagResource %s: %v", arn, err)
			}
		}
		var err error
		switch key.State {
		case world.StateDisabled:
			_, err = k.Client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &arn})
		case world.StatePendingDeletion:
			_, err = k.Client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &arn, PendingWindowInDays: aws.Int32(7)})
		case "", world.StateEnabled:
		default:
			k.PutForeignKey(arn, ForeignKey{Manager: key.Manager, State: key.State, Policy: policy, Aliases: key.Aliases})
		}
		if err != nil {
			t.Fatalf("set state %s of %s: %v", key.State, arn, err)
		}
	}
}

// Local says whether local-kms holds keys of this ARN's account and Region.
func (k *LocalKMS) Local(arn string) bool {
	p := strings.SplitN(arn, ":", 6)
	// local-kms writes arn:aws: ARNs only; other partitions are the shim's.
	return len(p) == 6 && p[1] == "aws" && p[3] == k.Region && p[4] == k.Account
}

// LocalKMSKeyID returns the key id of a key ARN.
func LocalKMSKeyID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

func (k *LocalKMS) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		testenv.JSONError(w, 400, "SerializationException", err.Error())
		return
	}
	if fault := k.faults.Hit(r.Context(), op); fault != nil {
		testenv.JSONError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	var in struct{ KeyId, GranteePrincipal string }
	json.Unmarshal(body, &in)
	k.mu.Lock()
	fk, isForeign := k.foreign[in.KeyId]
	grants := k.grants[in.KeyId]
	unknown := k.seeded && in.KeyId != "" && (!k.known[in.KeyId] || k.denied[in.KeyId+"|"+op])
	k.mu.Unlock()
	switch {
	case unknown && localKMSReads[op]:
		testenv.JSONError(w, 400, "AccessDeniedException", "the world does not say: User is not authorized to perform: kms:"+op+" on resource: "+in.KeyId)
		return
	case isForeign:
		k.serveForeign(w, op, in.KeyId, fk, grants, in.GranteePrincipal)
		return
	case op == "ListGrants":
		localKMSJSON(w, map[string]any{"Grants": localKMSGrants(in.KeyId, grants, in.GranteePrincipal), "Truncated": false})
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, k.backend+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		testenv.JSONError(w, 500, "KMSInternalException", err.Error())
		return
	}
	req.Header = r.Header.Clone()
	resp, err := localKMSClient.Do(req)
	if err != nil {
		testenv.JSONError(w, 500, "KMSInternalException", err.Error())
		return
	}
	defer resp.Body.Close()
	for h, v := range resp.Header {
		w.Header()[h] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// localKMSClient forwards to local-kms keeping idle connections for concurrent callers: the
// default client keeps two per host, so a storm of concurrent calls opened and closed a
// connection per call (thousands of sockets in TIME-WAIT, bench/storm hub).
var localKMSClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}

// localKMSReads are the operations enrichment makes.
var localKMSReads = map[string]bool{"DescribeKey": true, "GetKeyPolicy": true, "ListAliases": true, "ListGrants": true}

func (k *LocalKMS) serveForeign(w http.ResponseWriter, op, arn string, fk ForeignKey, grants []world.Grant, grantee string) {
	deny := func() {
		testenv.JSONError(w, 400, "AccessDeniedException", "User is not authorized to perform: kms:"+op+" on resource: "+arn)
	}
	if fk.Denied {
		deny()
		return
	}
	account := strings.Split(arn, ":")[4]
	switch op {
	case "DescribeKey":
		localKMSJSON(w, map[string]any{"KeyMetadata": map[string]any{
			"KeyId": LocalKMSKeyID(arn), "Arn": arn, "AWSAccountId": account, "KeyManager": fk.Manager,
			"KeyState": fk.State, "Enabled": fk.State == string(types.KeyStateEnabled), "KeyUsage": "ENCRYPT_DECRYPT",
			"KeySpec": "SYMMETRIC_DEFAULT", "Origin": "AWS_KMS", "MultiRegion": false, "CreationDate": 1.7e9,
		}})
	case "GetKeyPolicy":
		if fk.Policy == "" {
			deny()
			return
		}
		localKMSJSON(w, map[string]any{"Policy": fk.Policy, "PolicyName": "default"})
	case "ListAliases":
		var as []map[string]any
		for _, a := range fk.Aliases {
			as = append(as, map[string]any{"AliasName": a, "AliasArn": "arn:aws:kms:" + strings.Split(arn, ":")[3] + ":" + account + ":" + a, "TargetKeyId": LocalKMSKeyID(arn)})
		}
		localKMSJSON(w, map[string]any{"Aliases": as, "Truncated": false})
	case "ListGrants":
		localKMSJSON(w, map[string]any{"Grants": localKMSGrants(arn, grants, grantee), "Truncated": false})
	default:
		deny()
	}
}

func localKMSGrants(keyARN string, grants []world.Grant, grantee string) []map[string]any {
	out := []map[string]any{}
	for _, g := range grants {
		if grantee != "" && g.Grantee != grantee {
			continue
		}
		e := map[string]any{"KeyId": keyARN, "GrantId": g.ID, "Name": g.Name, "GranteePrincipal": g.Grantee, "Operations": g.Operations}
		if c := g.Constraints; c != nil {
			e["Constraints"] = map[string]any{"EncryptionContextEquals": c.EncryptionContextEquals, "EncryptionContextSubset": c.EncryptionContextSubset}
		}
		out = append(out, e)
	}
	return out
}

func localKMSJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(v)
}
