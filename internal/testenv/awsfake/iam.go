package awsfake

import (
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/world"
)

// IAM is the one in-memory IAM, speaking the query protocol to the real SDK client
// (AWS_ENDPOINT_URL_IAM or BaseEndpoint): what enrichment reads (roles, users, groups, inline
// and managed policies, boundaries) and what apply writes (Put/Delete{Role,User}Policy, with
// protected entities refusing as IAM does). Policy documents come back URL-encoded, as IAM
// returns them.
type IAM struct {
	URL string

	faults testenv.Faults
	mu     sync.Mutex
	byName map[string]*IAMPrincipal // "role/<name>" or "user/<name>"
	groups map[string]*IAMGroup
	// managed maps a policy ARN to its name and document.
	managed map[string]IAMPolicy
	// denyUnknown (set by SeedWorld) answers AccessDenied for principals the world does not
	// know, so the function learns no more than the world says.
	denyUnknown bool
	// protected are entities IAM refuses to edit ("role/<name>": IAM Identity Center and
	// service-linked roles): UnmodifiableEntity.
	protected map[string]bool
}

// IAMPolicy is a named policy document (JSON).
type IAMPolicy struct {
	Name     string
	Document string
}

// IAMPrincipal is a role or a user.
type IAMPrincipal struct {
	ARN      string      // arn:aws:iam::ACCOUNT:role/path/name or ...:user/path/name
	Inline   []IAMPolicy // inline policies
	Attached []string    // managed policy ARNs
	Boundary string      // managed policy ARN of the permissions boundary
	Groups   []string    // users only
	Tags     map[string]string
	Trust    string // roles: the trust policy (AssumeRolePolicyDocument) JSON; "" for none
}

// IAMGroup is a group with its policies.
type IAMGroup struct {
	Name     string
	Inline   []IAMPolicy
	Attached []string
}

// NewIAM starts the fake; it stops at cleanup.
func NewIAM(t testenv.Harness) *IAM {
	t.Helper()
	f := &IAM{byName: map[string]*IAMPrincipal{}, groups: map[string]*IAMGroup{}, managed: map[string]IAMPolicy{},
		protected: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// PutPrincipal adds or replaces a role or user.
func (f *IAM) PutPrincipal(p IAMPrincipal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind, name := iamfakeName(p.ARN)
	f.byName[kind+"/"+name] = &p
}

// EditPrincipal changes a role or user ("role/<name>" or "user/<name>") in place; it reports
// whether the entity exists.
func (f *IAM) EditPrincipal(entity string, edit func(*IAMPrincipal)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.byName[entity]
	if p != nil {
		edit(p)
	}
	return p != nil
}

// DeleteEntity removes a role or user ("role/<name>" or "user/<name>").
func (f *IAM) DeleteEntity(entity string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byName, entity)
}

// AddEntity creates a role or user by kind and name ("role/<name>" or "user/<name>", in
// account 000000000000) unless it exists; a protected one refuses every change.
func (f *IAM) AddEntity(entity string, protected bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName[entity] == nil {
		f.byName[entity] = &IAMPrincipal{ARN: "arn:aws:iam::000000000000:" + entity}
	}
	f.protected[entity] = protected
}

// SetInline puts an inline policy directly (as another administrator would), creating the
// entity ("role/<name>" or "user/<name>") when needed.
func (f *IAM) SetInline(entity, name, doc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName[entity] == nil {
		f.byName[entity] = &IAMPrincipal{ARN: "arn:aws:iam::000000000000:" + entity}
	}
	f.byName[entity].putInline(name, doc)
}

// Inline returns an entity's inline policies by name (a copy).
func (f *IAM) Inline(entity string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	if p := f.byName[entity]; p != nil {
		for _, ip := range p.Inline {
			out[ip.Name] = ip.Document
		}
	}
	return out
}

func (p *IAMPrincipal) putInline(name, doc string) {
	if i := slices.IndexFunc(p.Inline, func(ip IAMPolicy) bool { return ip.Name == name }); i >= 0 {
		p.Inline[i].Document = doc
		return
	}
	p.Inline = append(p.Inline, IAMPolicy{Name: name, Document: doc})
}

// PutGroup adds or replaces a group.
func (f *IAM) PutGroup(g IAMGroup) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[g.Name] = &g
}

// PutManaged adds or replaces a managed policy.
func (f *IAM) PutManaged(arn string, p IAMPolicy) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.managed[arn] = p
}

// SeedWorld adds the world's principals: each policy becomes an inline policy of the same
// name, the boundary a managed policy, so enrichment reads back the same principal.
func (f *IAM) SeedWorld(w *world.World) error {
	f.mu.Lock()
	f.denyUnknown = true
	f.mu.Unlock()
	for arn, p := range w.Principals {
		ip := IAMPrincipal{ARN: arn, Tags: p.Tags}
		for _, np := range p.Policies {
			b, err := json.Marshal(np.Document)
			if err != nil {
				return err
			}
			ip.Inline = append(ip.Inline, IAMPolicy{Name: np.Name, Document: string(b)})
		}
		if p.PermissionsBoundary != nil {
			b, err := json.Marshal(p.PermissionsBoundary)
			if err != nil {
				return err
			}
			_, name := iamfakeName(arn)
			ip.Boundary = "arn:aws:iam::" + strings.Split(arn, ":")[4] + ":policy/boundary-" + name
			f.PutManaged(ip.Boundary, IAMPolicy{Name: "boundary-" + name, Document: string(b)})
		}
		f.PutPrincipal(ip)
	}
	return nil
}

// Fail makes an operation ("GetRole") fail or stall.
func (f *IAM) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }

// Calls is how many times an operation was called; Total counts every call.
func (f *IAM) Calls(op string) int { return f.faults.Count(op) }
func (f *IAM) Total() int          { return f.faults.Total() }

// ServeHTTP answers a call in process (behind NewAccountRouterTo).
func (f *IAM) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.serve(w, r) }

func (f *IAM) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		iamfakeError(w, 400, "MalformedInput", err.Error())
		return
	}
	op := r.Form.Get("Action")
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		iamfakeError(w, fault.Status, fault.Code, "injected by the test: "+fault.Code)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	body, code, msg := f.answer(op, r.Form)
	if code != "" {
		status := 400
		switch code {
		case "NoSuchEntity":
			status = 404
		case "AccessDenied":
			status = 403
		}
		iamfakeError(w, status, code, msg)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	if body == "" { // the write operations answer without a result element
		fmt.Fprintf(w, `<%sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></%sResponse>`, op, op)
		return
	}
	fmt.Fprintf(w, `<%sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><%sResult>%s</%sResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></%sResponse>`,
		op, op, body, op, op)
}

func (f *IAM) answer(op string, form url.Values) (body, code, msg string) {
	principal := func(kind, param string) *IAMPrincipal { return f.byName[kind+"/"+form.Get(param)] }
	noSuch := func(what string) (string, string, string) {
		if f.denyUnknown {
			return "", "AccessDenied", "the world does not say: not authorized to read " + what
		}
		return "", "NoSuchEntity", "The " + what + " cannot be found."
	}
	switch op {
	case "GetRole", "GetUser":
		kind, tag := "role", "Role"
		if op == "GetUser" {
			kind, tag = "user", "User"
		}
		p := principal(kind, tag+"Name")
		if p == nil {
			return noSuch(kind + " " + form.Get(tag+"Name"))
		}
		_, name := iamfakeName(p.ARN)
		b := fmt.Sprintf("<%s><Path>%s</Path><%sName>%s</%sName><%sId>AID%s</%sId><Arn>%s</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate>",
			tag, xmlEsc(iamfakePath(p.ARN)), tag, xmlEsc(name), tag, tag, xmlEsc(strings.ToUpper(name)), tag, xmlEsc(p.ARN))
		if p.Trust != "" {
			b += "<AssumeRolePolicyDocument>" + xmlEsc(iamEncode(p.Trust)) + "</AssumeRolePolicyDocument>"
		}
		if p.Boundary != "" {
			b += "<PermissionsBoundary><PermissionsBoundaryType>Policy</PermissionsBoundaryType><PermissionsBoundaryArn>" + xmlEsc(p.Boundary) + "</PermissionsBoundaryArn></PermissionsBoundary>"
		}
		if len(p.Tags) > 0 {
			b += "<Tags>"
			for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
				b += "<member><Key>" + xmlEsc(k) + "</Key><Value>" + xmlEsc(p.Tags[k]) + "</Value></member>"
			}
			b += "</Tags>"
		}
		return b + "</" + tag + ">", "", ""
	case "ListRolePolicies", "ListUserPolicies":
		kind, param := "role", "RoleName"
		if op == "ListUserPolicies" {
			kind, param = "user", "UserName"
		}
		p := principal(kind, param)
		if p == nil {
			return noSuch(kind + " " + form.Get(param))
		}
		return iamfakeNames(p.Inline), "", ""
	case "GetRolePolicy", "GetUserPolicy":
		kind, param := "role", "RoleName"
		if op == "GetUserPolicy" {
			kind, param = "user", "UserName"
		}
		p := principal(kind, param)
		if p == nil {
			return noSuch(kind + " " + form.Get(param))
		}
		return iamfakeInline(p.Inline, param, form.Get(param), form.Get("PolicyName"))
	case "PutRolePolicy", "PutUserPolicy", "DeleteRolePolicy", "DeleteUserPolicy":
		kind, param := "role", "RoleName"
		if strings.Contains(op, "User") {
			kind, param = "user", "UserName"
		}
		p := principal(kind, param)
		if p == nil {
			return noSuch(kind + " " + form.Get(param))
		}
		if f.protected[kind+"/"+form.Get(param)] {
			return "", "UnmodifiableEntity", "Cannot perform the operation on the protected role"
		}
		name := form.Get("PolicyName")
		if strings.HasPrefix(op, "Put") {
			p.putInline(name, form.Get("PolicyDocument"))
			return "", "", ""
		}
		i := slices.IndexFunc(p.Inline, func(ip IAMPolicy) bool { return ip.Name == name })
		if i < 0 {
			return "", "NoSuchEntity", "The " + kind + " policy with name " + name + " cannot be found."
		}
		p.Inline = slices.Delete(p.Inline, i, i+1)
		return "", "", ""
	case "ListAttachedRolePolicies", "ListAttachedUserPolicies":
		kind, param := "role", "RoleName"
		if op == "ListAttachedUserPolicies" {
			kind, param = "user", "UserName"
		}
		p := principal(kind, param)
		if p == nil {
			return noSuch(kind + " " + form.Get(param))
		}
		return f.attachedXML(p.Attached), "", ""
	case "ListGroupsForUser":
		p := principal("user", "UserName")
		if p == nil {
			return noSuch("user " + form.Get("UserName"))
		}
		b := "<Groups>"
		for _, g := range p.Groups {
			b += fmt.Sprintf("<member><Path>/</Path><GroupName>%s</GroupName><GroupId>AGP%s</GroupId><Arn>arn:aws:iam::%s:group/%s</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>",
				xmlEsc(g), xmlEsc(strings.ToUpper(g)), strings.Split(p.ARN, ":")[4], xmlEsc(g))
		}
		return b + "</Groups><IsTruncated>false</IsTruncated>", "", ""
	case "ListGroupPolicies":
		g := f.groups[form.Get("GroupName")]
		if g == nil {
			return noSuch("group " + form.Get("GroupName"))
		}
		return iamfakeNames(g.Inline), "", ""
	case "GetGroupPolicy":
		g := f.groups[form.Get("GroupName")]
		if g == nil {
			return noSuch("group " + form.Get("GroupName"))
		}
		return iamfakeInline(g.Inline, "GroupName", g.Name, form.Get("PolicyName"))
	case "ListAttachedGroupPolicies":
		g := f.groups[form.Get("GroupName")]
		if g == nil {
			return noSuch("group " + form.Get("GroupName"))
		}
		return f.attachedXML(g.Attached), "", ""
	case "GetPolicy":
		arn := form.Get("PolicyArn")
		p, ok := f.managed[arn]
		if !ok {
			return noSuch("policy " + arn)
		}
		return fmt.Sprintf("<Policy><PolicyName>%s</PolicyName><Arn>%s</Arn><DefaultVersionId>v1</DefaultVersionId><AttachmentCount>1</AttachmentCount><IsAttachable>true</IsAttachable></Policy>",
			xmlEsc(p.Name), xmlEsc(arn)), "", ""
	case "GetPolicyVersion":
		arn := form.Get("PolicyArn")
		p, ok := f.managed[arn]
		if !ok || form.Get("VersionId") != "v1" {
			return noSuch("policy version " + arn + " " + form.Get("VersionId"))
		}
		return fmt.Sprintf("<PolicyVersion><Document>%s</Document><VersionId>v1</VersionId><IsDefaultVersion>true</IsDefaultVersion></PolicyVersion>",
			xmlEsc(iamEncode(p.Document))), "", ""
	}
	return "", "InvalidAction", "the IAM fake does not implement " + op
}

func (f *IAM) attachedXML(arns []string) string {
	b := "<AttachedPolicies>"
	for _, arn := range arns {
		b += fmt.Sprintf("<member><PolicyName>%s</PolicyName><PolicyArn>%s</PolicyArn></member>", xmlEsc(f.managed[arn].Name), xmlEsc(arn))
	}
	return b + "</AttachedPolicies><IsTruncated>false</IsTruncated>"
}

func iamfakeNames(ps []IAMPolicy) string {
	b := "<PolicyNames>"
	for _, p := range ps {
		b += "<member>" + xmlEsc(p.Name) + "</member>"
	}
	return b + "</PolicyNames><IsTruncated>false</IsTruncated>"
}

func iamfakeInline(ps []IAMPolicy, param, owner, name string) (string, string, string) {
	i := slices.IndexFunc(ps, func(p IAMPolicy) bool { return p.Name == name })
	if i < 0 {
		return "", "NoSuchEntity", "The policy " + name + " cannot be found."
	}
	return fmt.Sprintf("<%s>%s</%s><PolicyName>%s</PolicyName><PolicyDocument>%s</PolicyDocument>",
		param, xmlEsc(owner), param, xmlEsc(name), xmlEsc(iamEncode(ps[i].Document))), "", ""
}

// iamEncode URL-encodes a document the way IAM does (RFC 3986: spaces as %20).
func iamEncode(doc string) string { return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20") }

func xmlEsc(s string) string { return html.EscapeString(s) }

func iamfakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
		xmlEsc(code), xmlEsc(msg))
}

// iamfakeName returns "role" or "user" and the name of an IAM ARN.
func iamfakeName(arn string) (kind, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "", ""
	}
	kind, rest, _ := strings.Cut(parts[5], "/")
	return kind, rest[strings.LastIndex(rest, "/")+1:]
}

// iamfakePath returns the path of an IAM ARN ("/" or "/a/b/").
func iamfakePath(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "/"
	}
	_, rest, _ := strings.Cut(parts[5], "/")
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		return "/" + rest[:i+1]
	}
	return "/"
}
