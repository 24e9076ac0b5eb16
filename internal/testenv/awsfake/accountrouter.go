package awsfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// AccountRouter stands where one service's endpoint is and sends each call to the backend of
// the account whose credentials signed it (the access key id of the SigV4 Authorization
// header, issued by the STS fake's AssumeRole). A call signed with credentials the STS fake
// did not issue, or of an account without a backend, is refused (403), as AWS refuses
// credentials it does not know, and so is one signed with expired credentials (ExpiredToken);
// Calls counts the calls per signing account, so a test can prove which account's
// credentials read what, and Ops the operations per signing role.
// KMS's GetKeyPolicy and PutKeyPolicy do not work across accounts
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html, "Cross-account
// use: No"): one naming another account's key ARN is refused (AccessDeniedException) and
// counted by Foreign.
type AccountRouter struct {
	URL string

	sts      *STS
	backends map[string]http.Handler
	mu       sync.Mutex
	calls    map[string]int
	ops      map[string]map[string]int // role ARN → operation → calls
	refused  int
	foreign  int
	expired  int
}

// NewAccountRouter starts the router over backends (account → base URL); it stops at cleanup.
func NewAccountRouter(t testenv.Harness, sts *STS, backends map[string]string) *AccountRouter {
	t.Helper()
	handlers := map[string]http.Handler{}
	for acct, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("backend of %s: %v", acct, err)
		}
		handlers[acct] = httputil.NewSingleHostReverseProxy(u)
	}
	return NewAccountRouterTo(t, sts, handlers)
}

// NewAccountRouterTo is NewAccountRouter over in-process backends (an *IAM is one): a router
// in front of a thousand accounts' fakes then opens no connection per account.
func NewAccountRouterTo(t testenv.Harness, sts *STS, backends map[string]http.Handler) *AccountRouter {
	t.Helper()
	a := &AccountRouter{sts: sts, backends: backends, calls: map[string]int{}, ops: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Expired is how many calls were signed with credentials past their expiry.
func (a *AccountRouter) Expired() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.expired
}

// Calls is how many calls were signed with an account's credentials.
func (a *AccountRouter) Calls(account string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[account]
}

// Refused is how many calls carried credentials of no known account.
func (a *AccountRouter) Refused() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

// Ops is how many times each operation was called with credentials of a role.
func (a *AccountRouter) Ops(roleARN string) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for op, n := range a.ops[roleARN] {
		out[op] = n
	}
	return out
}

// Foreign is how many key-policy calls named a key of another account than the signer's.
func (a *AccountRouter) Foreign() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.foreign
}

// operation reads the operation of a JSON 1.1 call (X-Amz-Target) or a query-protocol call
// (the form's Action), and the KeyId of a JSON call; the body is left readable.
func operation(r *http.Request) (op, keyID string) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		_, op, _ = strings.Cut(t, ".")
		var in struct{ KeyId string }
		_ = json.Unmarshal(body, &in)
		return op, in.KeyId
	}
	v, _ := url.ParseQuery(string(body))
	return v.Get("Action"), ""
}

func (a *AccountRouter) serve(w http.ResponseWriter, r *http.Request) {
	akid := AccessKeyID(r)
	acct := a.sts.AccountOf(akid)
	backend := a.backends[acct]
	op, keyID := operation(r)
	foreign := (op == "GetKeyPolicy" || op == "PutKeyPolicy") && strings.HasPrefix(keyID, "arn:") &&
		len(strings.SplitN(keyID, ":", 6)) == 6 && strings.SplitN(keyID, ":", 6)[4] != acct
	expired := backend != nil && a.sts.Expired(akid)
	a.mu.Lock()
	switch {
	case backend == nil:
		a.refused++
	case expired:
		a.expired++
	case foreign:
		a.foreign++
	default:
		a.calls[acct]++
		role := a.sts.RoleOf(akid)
		if a.ops[role] == nil {
			a.ops[role] = map[string]int{}
		}
		a.ops[role][op]++
	}
	a.mu.Unlock()
	switch {
	case backend == nil:
		RefuseCredentials(w, r, "UnrecognizedClientException", "InvalidClientTokenId", "The security token included in the request is invalid.")
	case expired:
		RefuseCredentials(w, r, "ExpiredTokenException", "ExpiredToken", "The security token included in the request is expired")
	case foreign:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"AccessDeniedException","message":"` + op + ` does not work across accounts: the key is not the caller's account's"}`))
	default:
		backend.ServeHTTP(w, r)
	}
}

// RefuseCredentials answers a call whose credentials AWS would not accept, in the call's
// protocol: JSON (KMS) or query (IAM, STS).
func RefuseCredentials(w http.ResponseWriter, r *http.Request, jsonCode, queryCode, msg string) {
	if strings.Contains(r.Header.Get("Content-Type"), "json") {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"` + jsonCode + `","message":"` + msg + `"}`))
		return
	}
	iamfakeError(w, http.StatusForbidden, queryCode, msg)
}
