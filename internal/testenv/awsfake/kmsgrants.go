package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// KMSGrants serves the KMS grant operations (JSON 1.1) the apply tests need: local-kms
// answers 501 for grants.

// KMSGrant is one grant the KMS grant fake holds.
type KMSGrant struct {
	GrantID, KeyID, Name, Grantee, Retiring string
	Operations                              []string
	Constraints                             map[string]any
}

// KMSGrants serves CreateGrant (idempotent by Name), ListGrants and RetireGrant.
type KMSGrants struct {
	URL string

	faults testenv.Faults
	mu     sync.Mutex
	grants []KMSGrant
	next   int
}

// NewKMSGrants starts the fake; it stops at cleanup.
func NewKMSGrants(t testenv.Harness) *KMSGrants {
	t.Helper()
	f := &KMSGrants{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Grants returns the live grants (a copy).
func (f *KMSGrants) Grants() []KMSGrant {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]KMSGrant(nil), f.grants...)
}

// Fail injects a fault for an operation; Calls counts calls of it.
func (f *KMSGrants) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }
func (f *KMSGrants) Calls(op string) int                    { return f.faults.Count(op) }

func (f *KMSGrants) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		testenv.JSONError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	b, _ := io.ReadAll(r.Body)
	var in struct {
		KeyID             string `json:"KeyId"`
		GrantID           string `json:"GrantId"`
		GranteePrincipal  string
		RetiringPrincipal string
		Name              string
		Operations        []string
		Constraints       map[string]any
	}
	if err := json.Unmarshal(b, &in); err != nil {
		testenv.JSONError(w, 400, "ValidationException", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out any
	switch op {
	case "CreateGrant":
		for _, g := range f.grants {
			if in.Name != "" && g.KeyID == in.KeyID && g.Name == in.Name && g.Grantee == in.GranteePrincipal {
				out = map[string]string{"GrantId": g.GrantID, "GrantToken": "token-" + g.GrantID}
			}
		}
		if out == nil {
			f.next++
			g := KMSGrant{GrantID: fmt.Sprintf("grant-%04d", f.next), KeyID: in.KeyID, Name: in.Name,
				Grantee: in.GranteePrincipal, Retiring: in.RetiringPrincipal, Operations: in.Operations, Constraints: in.Constraints}
			f.grants = append(f.grants, g)
			out = map[string]string{"GrantId": g.GrantID, "GrantToken": "token-" + g.GrantID}
		}
	case "ListGrants":
		var list []map[string]any
		for _, g := range f.grants {
			if g.KeyID != in.KeyID || (in.GrantID != "" && g.GrantID != in.GrantID) {
				continue
			}
			list = append(list, map[string]any{"GrantId": g.GrantID, "KeyId": g.KeyID, "Name": g.Name,
				"GranteePrincipal": g.Grantee, "RetiringPrincipal": g.Retiring, "Operations": g.Operations,
				"Constraints": g.Constraints})
		}
		out = map[string]any{"Grants": list, "Truncated": false}
	case "RetireGrant":
		found := false
		for i, g := range f.grants {
			if g.GrantID == in.GrantID && g.KeyID == in.KeyID {
				f.grants = append(f.grants[:i], f.grants[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			testenv.JSONError(w, 400, "NotFoundException", "Grant ID "+in.GrantID+" not found")
			return
		}
		out = map[string]any{}
	default:
		testenv.JSONError(w, 400, "UnknownOperationException", "not served by the fake: "+op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}
