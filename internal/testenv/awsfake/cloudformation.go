package awsfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// CloudFormation answers the StackSet reads of `kmsfix doctor --hub` (DescribeStackSet,
// ListStackInstances) in the query protocol, for one administrator account. A StackSet is
// found only when read as its administrator reads it: CallAs (SELF when the request omits
// it) must be the StackSet's CallAs, as a delegated administrator must say DELEGATED_ADMIN
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackSet.html).
type CloudFormation struct {
	URL string
	// PageSize is how many instances ListStackInstances returns per page (default 100).
	PageSize int

	faults testenv.Faults
	mu     sync.Mutex
	sets   map[string]*StackSet
}

// StackSet is a StackSet and its instances.
type StackSet struct {
	Name, Status, PermissionModel string // Status ACTIVE, PermissionModel SERVICE_MANAGED when empty
	CallAs                        string // how it must be read: SELF or DELEGATED_ADMIN (default)
	AutoDeployment                bool
	OUs, Regions                  []string
	Instances                     []StackInstance
}

// StackInstance is one account and Region of a StackSet.
type StackInstance struct {
	Account, Region, OU string
	Status              string // CURRENT, OUTDATED, INOPERABLE
	DetailedStatus      string // SUCCEEDED, FAILED, ...
	Reason              string
}

// NewCloudFormation starts the fake; it stops at cleanup.
func NewCloudFormation(t testenv.Harness) *CloudFormation {
	t.Helper()
	f := &CloudFormation{sets: map[string]*StackSet{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// PutStackSet adds or replaces a StackSet (a copy is kept).
func (f *CloudFormation) PutStackSet(s StackSet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Instances = append([]StackInstance(nil), s.Instances...)
	f.sets[s.Name] = &s
}

// Edit changes a StackSet in place under the fake's lock.
func (f *CloudFormation) Edit(name string, edit func(*StackSet)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(f.sets[name])
}

// Fail makes an operation ("ListStackInstances") fail or stall.
func (f *CloudFormation) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }

// Calls is how many times an operation was called.
func (f *CloudFormation) Calls(op string) int { return f.faults.Count(op) }

func (f *CloudFormation) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		cfnError(w, 400, "ValidationError", err.Error())
		return
	}
	op := r.Form.Get("Action")
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		cfnError(w, fault.Status, fault.Code, "injected by the test: "+fault.Code)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.Form.Get("StackSetName")
	callAs := r.Form.Get("CallAs")
	if callAs == "" {
		callAs = "SELF"
	}
	s := f.sets[name]
	if op == "DescribeStackSet" || op == "ListStackInstances" {
		if s == nil || callAs != or(s.CallAs, "DELEGATED_ADMIN") {
			cfnError(w, 404, "StackSetNotFoundException", "StackSet "+name+" not found")
			return
		}
	}
	var body string
	switch op {
	case "DescribeStackSet":
		body = "<StackSet><StackSetName>" + xmlEsc(s.Name) + "</StackSetName><StackSetId>" + xmlEsc(s.Name) + ":fake-id</StackSetId>" +
			"<Status>" + or(s.Status, "ACTIVE") + "</Status><PermissionModel>" + or(s.PermissionModel, "SERVICE_MANAGED") + "</PermissionModel>" +
			fmt.Sprintf("<AutoDeployment><Enabled>%t</Enabled><RetainStacksOnAccountRemoval>false</RetainStacksOnAccountRemoval></AutoDeployment>", s.AutoDeployment) +
			"<OrganizationalUnitIds>" + xmlMembers(s.OUs) + "</OrganizationalUnitIds><Regions>" + xmlMembers(s.Regions) + "</Regions></StackSet>"
	case "ListStackInstances":
		start, _ := strconv.Atoi(r.Form.Get("NextToken"))
		size := f.PageSize
		if size <= 0 {
			size = 100
		}
		end := min(start+size, len(s.Instances))
		body = "<Summaries>"
		for _, in := range s.Instances[min(start, end):end] {
			body += "<member><StackSetId>" + xmlEsc(s.Name) + ":fake-id</StackSetId><Account>" + xmlEsc(in.Account) + "</Account><Region>" + xmlEsc(in.Region) +
				"</Region><OrganizationalUnitId>" + xmlEsc(in.OU) + "</OrganizationalUnitId><Status>" + xmlEsc(or(in.Status, "CURRENT")) + "</Status>" +
				"<StackInstanceStatus><DetailedStatus>" + xmlEsc(or(in.DetailedStatus, "SUCCEEDED")) + "</DetailedStatus></StackInstanceStatus>"
			if in.Reason != "" {
				body += "<StatusReason>" + xmlEsc(in.Reason) + "</StatusReason>"
			}
			body += "</member>"
		}
		body += "</Summaries>"
		if end < len(s.Instances) {
			body += "<NextToken>" + strconv.Itoa(end) + "</NextToken>"
		}
	default:
		cfnError(w, 400, "InvalidAction", "the CloudFormation fake does not implement "+op)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%sResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><%sResult>%s</%sResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></%sResponse>`,
		op, op, body, op, op)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func xmlMembers(items []string) string {
	var b string
	for _, it := range items {
		b += "<member>" + xmlEsc(it) + "</member>"
	}
	return b
}

func cfnError(w http.ResponseWriter, status int, code, msg string) {
	if status == 0 {
		status = 400
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
		xmlEsc(code), xmlEsc(msg))
}
