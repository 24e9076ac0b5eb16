package awsfake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// AccessAnalyzer answers ValidatePolicy (REST-JSON, POST /policy/validation) and
// CheckAccessNotGranted (POST /policy/check-access-not-granted), and records what it was
// asked. ValidatePolicy reports the findings a test sets (by text the document contains, or
// by policy type) and no finding otherwise; CheckAccessNotGranted answers PASS unless set.
type AccessAnalyzer struct {
	URL    string
	faults testenv.Faults

	mu       sync.Mutex
	rules    []aaRule
	result   string
	requests []AnalyzerRequest
}

// ValidatedPolicy is one document the fake was asked to validate.
type ValidatedPolicy struct {
	Document     string `json:"policyDocument"`
	Type         string `json:"policyType"`
	ResourceType string `json:"validatePolicyResourceType"`
}

// AnalyzerRequest is one call the fake received.
type AnalyzerRequest struct {
	Op, PolicyType, PolicyDocument string
	ResourceType                   string   // ValidatePolicy's validatePolicyResourceType
	Actions                        []string // CheckAccessNotGranted's actions
}

// AAFinding is a ValidatePolicy finding.
type AAFinding struct {
	FindingType string `json:"findingType"` // ERROR, SECURITY_WARNING, WARNING, SUGGESTION
	IssueCode   string `json:"issueCode"`
	Details     string `json:"findingDetails"`
}

// aaRule reports finding for documents that contain text and are of policyType ("" matches
// all).
type aaRule struct {
	contains, policyType string
	finding              AAFinding
}

// NewAccessAnalyzer starts the fake (no findings, PASS); it stops at cleanup.
func NewAccessAnalyzer(t testenv.Harness) *AccessAnalyzer {
	t.Helper()
	f := &AccessAnalyzer{result: "PASS"}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// FlagWhenContains reports finding for every document that contains text ("" matches all).
func (f *AccessAnalyzer) FlagWhenContains(text string, finding AAFinding) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, aaRule{contains: text, finding: finding})
}

// SetFinding makes ValidatePolicy report a finding for a policy type ("" for all).
func (f *AccessAnalyzer) SetFinding(policyType, findingType, issueCode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, aaRule{policyType: policyType,
		finding: AAFinding{FindingType: findingType, IssueCode: issueCode, Details: "set by the test"}})
}

// SetResult sets CheckAccessNotGranted's result (PASS or FAIL).
func (f *AccessAnalyzer) SetResult(result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.result = result
}

// Fail makes ValidatePolicy fail or stall.
func (f *AccessAnalyzer) Fail(fault testenv.AWSFault) { f.faults.Set("ValidatePolicy", fault) }

// Seen returns the requests received so far.
func (f *AccessAnalyzer) Seen() []AnalyzerRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AnalyzerRequest(nil), f.requests...)
}

// Validated returns the documents validated so far.
func (f *AccessAnalyzer) Validated() []ValidatedPolicy {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ValidatedPolicy
	for _, r := range f.requests {
		if r.Op == "ValidatePolicy" {
			out = append(out, ValidatedPolicy{Document: r.PolicyDocument, Type: r.PolicyType, ResourceType: r.ResourceType})
		}
	}
	return out
}

func (f *AccessAnalyzer) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	op := map[string]string{"/policy/validation": "ValidatePolicy", "/policy/check-access-not-granted": "CheckAccessNotGranted"}[r.URL.Path]
	if r.Method != http.MethodPost || op == "" {
		aafakeError(w, 404, "ResourceNotFoundException", "the Access Analyzer fake implements only ValidatePolicy and CheckAccessNotGranted")
		return
	}
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		aafakeError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	var in struct {
		ValidatedPolicy
		Access []struct {
			Actions []string `json:"actions"`
		} `json:"access"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Document == "" || in.Type == "" {
		aafakeError(w, 400, "ValidationException", "policyDocument and policyType are required")
		return
	}
	req := AnalyzerRequest{Op: op, PolicyType: in.Type, PolicyDocument: in.Document, ResourceType: in.ResourceType}
	for _, a := range in.Access {
		req.Actions = append(req.Actions, a.Actions...)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if op == "CheckAccessNotGranted" {
		msg := "The policy document does not grant access to perform the listed actions."
		if f.result != "PASS" {
			msg = "The policy document grants access to perform one or more of the listed actions."
		}
		json.NewEncoder(w).Encode(map[string]any{"result": f.result, "message": msg, "reasons": []any{}})
		return
	}
	findings := []map[string]any{}
	for _, rule := range f.rules {
		if (rule.contains == "" || strings.Contains(in.Document, rule.contains)) &&
			(rule.policyType == "" || rule.policyType == in.Type) {
			findings = append(findings, map[string]any{
				"findingType": rule.finding.FindingType, "issueCode": rule.finding.IssueCode,
				"findingDetails": rule.finding.Details, "learnMoreLink": "https://docs.aws.amazon.com/",
				"locations": []any{},
			})
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"findings": findings})
}

func aafakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
