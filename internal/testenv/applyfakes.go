package testenv

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Fakes for the apply tests, behind the real SDK clients: IAM inline policies (query
// protocol), KMS grants (JSON 1.1; local-kms answers 501 for grants) and IAM Access Analyzer
// policy checks (REST-JSON). Names carry "Apply" so they cannot collide with other files.

// ApplyIAMFake keeps the inline policies of roles and users.
type ApplyIAMFake struct {
	URL string

	faults awsFaults
	mu     sync.Mutex
	inline map[string]map[string]string // "role/<name>" or "user/<name>" -> policy name -> document
	// Protected are entities IAM refuses to edit (IAM Identity Center and service-linked roles).
	protected map[string]bool
}

// NewApplyIAMFake starts the fake; it stops at cleanup.
func NewApplyIAMFake(t Harness) *ApplyIAMFake {
	t.Helper()
	f := &ApplyIAMFake{inline: map[string]map[string]string{}, protected: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// AddEntity creates a role or user ("role/<name>" or "user/<name>"); protected ones refuse
// every change with UnmodifiableEntity.
func (f *ApplyIAMFake) AddEntity(entity string, protected bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inline[entity] == nil {
		f.inline[entity] = map[string]string{}
	}
	f.protected[entity] = protected
}

// SetInline puts an inline policy directly (as another administrator would).
func (f *ApplyIAMFake) SetInline(entity, name, doc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inline[entity] == nil {
		f.inline[entity] = map[string]string{}
	}
	f.inline[entity][name] = doc
}

// Inline returns an entity's inline policies (a copy).
func (f *ApplyIAMFake) Inline(entity string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.inline[entity] {
		out[k] = v
	}
	return out
}

// Fail injects a fault for an operation; Calls counts calls of it.
func (f *ApplyIAMFake) Fail(op string, fault AWSFault) { f.faults.set(op, fault) }
func (f *ApplyIAMFake) Calls(op string) int            { return f.faults.count(op) }

func (f *ApplyIAMFake) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		applyIAMError(w, 400, "MalformedInput", err.Error())
		return
	}
	op := r.Form.Get("Action")
	if fault := f.faults.hit(r.Context(), op); fault != nil {
		applyIAMError(w, fault.Status, fault.Code, "injected by the test: "+fault.Code)
		return
	}
	kind, param := "role", "RoleName"
	if strings.Contains(op, "User") {
		kind, param = "user", "UserName"
	}
	entity := kind + "/" + r.Form.Get(param)
	policyName := r.Form.Get("PolicyName")
	f.mu.Lock()
	defer f.mu.Unlock()
	docs, ok := f.inline[entity]
	if !ok {
		applyIAMError(w, 404, "NoSuchEntity", "The "+kind+" with name "+r.Form.Get(param)+" cannot be found.")
		return
	}
	var body string
	switch op {
	case "ListRolePolicies", "ListUserPolicies":
		names := make([]string, 0, len(docs))
		for n := range docs {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			b.WriteString("<member>" + html.EscapeString(n) + "</member>")
		}
		body = "<PolicyNames>" + b.String() + "</PolicyNames><IsTruncated>false</IsTruncated>"
	case "GetRolePolicy", "GetUserPolicy":
		doc, ok := docs[policyName]
		if !ok {
			applyIAMError(w, 404, "NoSuchEntity", "The "+kind+" policy with name "+policyName+" cannot be found.")
			return
		}
		enc := strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
		body = fmt.Sprintf("<%s>%s</%s><PolicyName>%s</PolicyName><PolicyDocument>%s</PolicyDocument>",
			param, html.EscapeString(r.Form.Get(param)), param, html.EscapeString(policyName), html.EscapeString(enc))
	case "PutRolePolicy", "PutUserPolicy":
		if f.protected[entity] {
			applyIAMError(w, 400, "UnmodifiableEntity", "Cannot perform the operation on the protected role")
			return
		}
		docs[policyName] = r.Form.Get("PolicyDocument")
	case "DeleteRolePolicy", "DeleteUserPolicy":
		if f.protected[entity] {
			applyIAMError(w, 400, "UnmodifiableEntity", "Cannot perform the operation on the protected role")
			return
		}
		if _, ok := docs[policyName]; !ok {
			applyIAMError(w, 404, "NoSuchEntity", "The "+kind+" policy with name "+policyName+" cannot be found.")
			return
		}
		delete(docs, policyName)
	default:
		applyIAMError(w, 400, "InvalidAction", "not served by the fake: "+op)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	if body == "" {
		fmt.Fprintf(w, `<%sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></%sResponse>`, op, op)
		return
	}
	fmt.Fprintf(w, `<%sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><%sResult>%s</%sResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></%sResponse>`,
		op, op, body, op, op)
}

func applyIAMError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
		html.EscapeString(code), html.EscapeString(msg))
}

// ApplyGrant is one grant the KMS grant fake holds.
type ApplyGrant struct {
	GrantID, KeyID, Name, Grantee, Retiring string
	Operations                              []string
	Constraints                             map[string]any
}

// ApplyGrantsFake serves CreateGrant (idempotent by Name), ListGrants and RetireGrant.
type ApplyGrantsFake struct {
	URL string

	faults awsFaults
	mu     sync.Mutex
	grants []ApplyGrant
	next   int
}

// NewApplyGrantsFake starts the fake; it stops at cleanup.
func NewApplyGrantsFake(t Harness) *ApplyGrantsFake {
	t.Helper()
	f := &ApplyGrantsFake{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Grants returns the live grants (a copy).
func (f *ApplyGrantsFake) Grants() []ApplyGrant {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ApplyGrant(nil), f.grants...)
}

// Fail injects a fault for an operation; Calls counts calls of it.
func (f *ApplyGrantsFake) Fail(op string, fault AWSFault) { f.faults.set(op, fault) }
func (f *ApplyGrantsFake) Calls(op string) int            { return f.faults.count(op) }

func (f *ApplyGrantsFake) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if fault := f.faults.hit(r.Context(), op); fault != nil {
		jsonError(w, fault.Status, fault.Code, "injected by the test")
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
		jsonError(w, 400, "ValidationException", err.Error())
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
			g := ApplyGrant{GrantID: fmt.Sprintf("grant-%04d", f.next), KeyID: in.KeyID, Name: in.Name,
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
			jsonError(w, 400, "NotFoundException", "Grant ID "+in.GrantID+" not found")
			return
		}
		out = map[string]any{}
	default:
		jsonError(w, 400, "UnknownOperationException", "not served by the fake: "+op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}
