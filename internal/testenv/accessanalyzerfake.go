package testenv

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// AccessAnalyzerFake answers ValidatePolicy (REST-JSON, POST /policy/validation). It reports
// the findings a test sets for documents containing a given text, and no finding otherwise.
type AccessAnalyzerFake struct {
	URL    string
	faults awsFaults

	mu    sync.Mutex
	rules []aaRule
	docs  []ValidatedPolicy
}

// ValidatedPolicy is one document the fake was asked to validate.
type ValidatedPolicy struct {
	Document     string `json:"policyDocument"`
	Type         string `json:"policyType"`
	ResourceType string `json:"validatePolicyResourceType"`
}

// AAFinding is a ValidatePolicy finding.
type AAFinding struct {
	FindingType string `json:"findingType"` // ERROR, SECURITY_WARNING, WARNING, SUGGESTION
	IssueCode   string `json:"issueCode"`
	Details     string `json:"findingDetails"`
}

type aaRule struct {
	contains string
	finding  AAFinding
}

// NewAccessAnalyzerFake starts the fake; it stops at cleanup.
func NewAccessAnalyzerFake(t Harness) *AccessAnalyzerFake {
	t.Helper()
	f := &AccessAnalyzerFake{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// FlagWhenContains reports finding for every document that contains text ("" matches all).
func (f *AccessAnalyzerFake) FlagWhenContains(text string, finding AAFinding) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, aaRule{text, finding})
}

// Fail makes ValidatePolicy fail or stall.
func (f *AccessAnalyzerFake) Fail(fault AWSFault) { f.faults.set("ValidatePolicy", fault) }

// Validated returns the documents validated so far.
func (f *AccessAnalyzerFake) Validated() []ValidatedPolicy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ValidatedPolicy(nil), f.docs...)
}

func (f *AccessAnalyzerFake) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/policy/validation" {
		aafakeError(w, 404, "ResourceNotFoundException", "the Access Analyzer fake implements only ValidatePolicy")
		return
	}
	if fault := f.faults.hit(r.Context(), "ValidatePolicy"); fault != nil {
		aafakeError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	var in ValidatedPolicy
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Document == "" || in.Type == "" {
		aafakeError(w, 400, "ValidationException", "policyDocument and policyType are required")
		return
	}
	f.mu.Lock()
	f.docs = append(f.docs, in)
	findings := []map[string]any{}
	for _, rule := range f.rules {
		if rule.contains == "" || strings.Contains(in.Document, rule.contains) {
			findings = append(findings, map[string]any{
				"findingType": rule.finding.FindingType, "issueCode": rule.finding.IssueCode,
				"findingDetails": rule.finding.Details, "learnMoreLink": "https://docs.aws.amazon.com/",
				"locations": []any{},
			})
		}
	}
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"findings": findings})
}

func aafakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
