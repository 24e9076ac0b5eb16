package awsfake

import (
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
// credentials it does not know; Calls counts the calls per signing account, so a test can
// prove which account's credentials read what.
type AccountRouter struct {
	URL string

	sts      *STS
	backends map[string]*httputil.ReverseProxy
	mu       sync.Mutex
	calls    map[string]int
	refused  int
}

// NewAccountRouter starts the router over backends (account → base URL); it stops at cleanup.
func NewAccountRouter(t testenv.Harness, sts *STS, backends map[string]string) *AccountRouter {
	t.Helper()
	a := &AccountRouter{sts: sts, backends: map[string]*httputil.ReverseProxy{}, calls: map[string]int{}}
	for acct, raw := range backends {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("backend of %s: %v", acct, err)
		}
		a.backends[acct] = httputil.NewSingleHostReverseProxy(u)
	}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
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

func (a *AccountRouter) serve(w http.ResponseWriter, r *http.Request) {
	acct := a.sts.AccountOf(AccessKeyID(r))
	backend := a.backends[acct]
	a.mu.Lock()
	if backend == nil {
		a.refused++
	} else {
		a.calls[acct]++
	}
	a.mu.Unlock()
	if backend == nil {
		const msg = "The security token included in the request is invalid."
		if strings.Contains(r.Header.Get("Content-Type"), "json") {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"UnrecognizedClientException","message":"` + msg + `"}`))
			return
		}
		iamfakeError(w, http.StatusForbidden, "InvalidClientTokenId", msg)
		return
	}
	backend.ServeHTTP(w, r)
}
