package awsfake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// Organizations answers ListParents and ListTagsForResource (JSON 1.1, X-Amz-Target
// AWSOrganizationsV20161128.*) over an organization tree the test builds: one root, OUs under
// it or under each other, accounts under them, tags on accounts. Answers are paged PageSize
// items at a time (0: all at once), and with EmptyFirstPage every list starts with an empty
// page that carries a NextToken, which the API documents it may do
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListParents.html).
type Organizations struct {
	URL    string
	faults testenv.Faults

	mu             sync.Mutex
	root           string
	parents        map[string]string // child id to parent id
	tags           map[string][][2]string
	calls          map[string]int // "op id" to count
	PageSize       int
	EmptyFirstPage bool
}

// NewOrganizations starts the fake with the root rootID; it stops at cleanup.
func NewOrganizations(t testenv.Harness, rootID string) *Organizations {
	t.Helper()
	f := &Organizations{root: rootID, parents: map[string]string{}, tags: map[string][][2]string{}, calls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Place puts an OU or account under parent (the root, or an OU placed before); placing it
// again moves it.
func (f *Organizations) Place(id, parent string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parents[id] = parent
}

// Tag sets a tag on an account (or OU), keeping the order tags were first set.
func (f *Organizations) Tag(id, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, kv := range f.tags[id] {
		if kv[0] == key {
			f.tags[id][i][1] = value
			return
		}
	}
	f.tags[id] = append(f.tags[id], [2]string{key, value})
}

// Fail makes an operation ("ListParents", "ListTagsForResource") fail or stall.
func (f *Organizations) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }

// Clear removes the faults set.
func (f *Organizations) Clear() { f.faults.Clear() }

// Calls is how many times an operation was called (every page counts).
func (f *Organizations) Calls(op string) int { return f.faults.Count(op) }

// CallsFor is how many times an operation was called for one id (ChildId or ResourceId).
func (f *Organizations) CallsFor(op, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op+" "+id]
}

// Client is an Organizations client for the fake, SDK retries off.
func (f *Organizations) Client() *organizations.Client {
	return organizations.New(organizations.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
}

func (f *Organizations) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSOrganizationsV20161128.")
	var in struct {
		ChildID    string `json:"ChildId"`
		ResourceID string `json:"ResourceId"`
		NextToken  string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		testenv.JSONError(w, 400, "InvalidInputException", err.Error())
		return
	}
	f.mu.Lock()
	f.calls[op+" "+in.ChildID+in.ResourceID]++
	f.mu.Unlock()
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		testenv.JSONError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var items []any
	switch op {
	case "ListParents":
		p, ok := f.parents[in.ChildID]
		if !ok {
			testenv.JSONError(w, 400, "ChildNotFoundException", "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.")
			return
		}
		typ := "ORGANIZATIONAL_UNIT"
		if p == f.root {
			typ = "ROOT"
		}
		items = []any{map[string]string{"Id": p, "Type": typ}}
	case "ListTagsForResource":
		if _, ok := f.parents[in.ResourceID]; !ok {
			testenv.JSONError(w, 400, "TargetNotFoundException", "We can't find a root, OU, account, or policy with the TargetId that you specified.")
			return
		}
		for _, kv := range f.tags[in.ResourceID] {
			items = append(items, map[string]string{"Key": kv[0], "Value": kv[1]})
		}
	default:
		testenv.JSONError(w, 400, "UnknownOperationException", "the Organizations fake does not implement "+op)
		return
	}
	page, next := f.page(items, in.NextToken)
	field := map[string]string{"ListParents": "Parents", "ListTagsForResource": "Tags"}[op]
	out := map[string]any{field: page}
	if next != "" {
		out["NextToken"] = next
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// page cuts items at the token (an offset; "e" is the empty first page's).
func (f *Organizations) page(items []any, token string) ([]any, string) {
	if token == "" && f.EmptyFirstPage {
		return []any{}, "e"
	}
	start, _ := strconv.Atoi(strings.TrimPrefix(token, "e"))
	if start > len(items) {
		start = len(items)
	}
	end := len(items)
	if f.PageSize > 0 && start+f.PageSize < end {
		end = start + f.PageSize
	}
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return append([]any{}, items[start:end]...), next
}
