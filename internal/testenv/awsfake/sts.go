package awsfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// STS answers GetCallerIdentity (query protocol) for one account, and AssumeRole into the
// member accounts a test adds (AddMember): each AssumeRole issues credentials whose access key
// id belongs to that account, and GetCallerIdentity signed with them names that account, so a
// fake behind AccountRouter can tell which account's credentials signed a call.
type STS struct {
	URL     string
	Account string
	// Lifetime of issued credentials (default 1h); Now is the fake's clock (default time.Now).
	Lifetime time.Duration
	Now      func() time.Time

	faults  testenv.Faults
	mu      sync.Mutex
	arn     string // set by SetCaller
	members map[string]bool
	refuse  map[string]bool   // role ARNs refused even in a member account (RefuseRole)
	issued  map[string]string // access key id → account
	roleOf  map[string]string // access key id → role ARN it was issued for
	expires map[string]time.Time
	assumed map[string]int      // account → AssumeRole calls that issued credentials
	roles   []string            // role ARNs assumed, in order
	trust   map[string][]string // role name → the principals its trust admits (Trust)
	known   map[string]string   // access key id → principal ARN (KnowAs)
	by      map[string][]string // role ARN → the caller of each AssumeRole that issued credentials
}

// Trust models the trust policy of every role named name (in any account): AssumeRole of it
// succeeds only for a caller whose principal is listed, as IAM admits only the principals a
// trust policy names (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
// The caller's principal is the role its credentials were issued for (AssumeRole), or the
// one KnowAs names; "arn:aws:iam::ACCOUNT:root" admits any principal of that account (the
// account's own identity policies then decide, which the fake does not model). A role without
// Trust admits every caller, as before. Conditions (aws:PrincipalOrgID) are not modelled: the
// members (AddMember) stand for the organization.
func (f *STS) Trust(name string, principals ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.trust == nil {
		f.trust = map[string][]string{}
	}
	f.trust[name] = append([]string(nil), principals...)
}

// KnowAs is Know for the credentials of a named principal (a person's user or role of
// account), which Trust then judges by that ARN.
func (f *STS) KnowAs(accessKeyID, account, principalARN string) {
	f.Know(accessKeyID, account)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.known == nil {
		f.known = map[string]string{}
	}
	f.known[accessKeyID] = principalARN
}

// AssumedBy are the callers (principal ARNs, "" for credentials the fake cannot name) of the
// AssumeRole calls that issued credentials for a role, in order.
func (f *STS) AssumedBy(roleARN string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.by[roleARN]...)
}

// admits says whether the role's modelled trust admits the caller (locked).
func (f *STS) admits(roleARN, callerAccount, caller string) bool {
	_, name, _ := strings.Cut(roleARN, ":role/")
	list, ok := f.trust[name]
	if !ok {
		return true
	}
	for _, p := range list {
		if (caller != "" && p == caller) || (callerAccount != "" && p == "arn:aws:iam::"+callerAccount+":root") {
			return true
		}
	}
	return false
}

// AddMember lets AssumeRole into role arn:aws:iam::<account>:role/<anything>; any other
// account is refused with AccessDenied, as for an account without the spoke's role.
func (f *STS) AddMember(account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.members == nil {
		f.members = map[string]bool{}
	}
	f.members[account] = true
}

// RefuseRole makes AssumeRole of one role fail with AccessDenied, as for a member account
// whose spoke has no such role (the apply role exists only in sandbox OUs).
func (f *STS) RefuseRole(roleARN string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse == nil {
		f.refuse = map[string]bool{}
	}
	f.refuse[roleARN] = true
}

// Know makes credentials the fake did not issue (the hub's own, static in a test) those of
// account, so an AccountRouter sends their calls to that account's backend.
func (f *STS) Know(accessKeyID, account string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.issued == nil {
		f.issued, f.assumed, f.roleOf = map[string]string{}, map[string]int{}, map[string]string{}
	}
	f.issued[accessKeyID] = account
}

// AccountOf is the account whose credentials carry the access key id ("" when not issued).
func (f *STS) AccountOf(accessKeyID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[accessKeyID]
}

// Credential is the account of credentials the fake issued or knows ("" otherwise) and,
// for issued ones, their expiry (zero for Know's, which do not expire): AccountRouter refuses
// expired ones, as AWS does (ExpiredToken).
func (f *STS) Credential(accessKeyID string) (account string, expires time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[accessKeyID], f.expires[accessKeyID]
}

// Expired says whether credentials the fake issued have expired by its clock.
func (f *STS) Expired(accessKeyID string) bool {
	_, exp := f.Credential(accessKeyID)
	return !exp.IsZero() && !f.Clock().Before(exp)
}

// Clock is the fake's clock (Now, or time.Now).
func (f *STS) Clock() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// RoleOf is the role ARN whose credentials carry the access key id ("" when not issued).
func (f *STS) RoleOf(accessKeyID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.roleOf[accessKeyID]
}

// AssumeRoleCalls is how many credentials were issued for an account.
func (f *STS) AssumeRoleCalls(account string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.assumed[account]
}

// AssumedRoles are the role ARNs credentials were issued for, in order.
func (f *STS) AssumedRoles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.roles...)
}

// assumeRole issues credentials of the role's account to the caller signing with
// callerKey, or says why not.
func (f *STS) assumeRole(roleARN, callerKey string) (akid string, expires time.Time, code string) {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", time.Time{}, "ValidationError"
	}
	acct := parts[4]
	f.mu.Lock()
	defer f.mu.Unlock()
	caller := f.roleOf[callerKey]
	if caller == "" {
		caller = f.known[callerKey]
	}
	if !f.members[acct] || f.refuse[roleARN] || !f.admits(roleARN, f.issued[callerKey], caller) {
		return "", time.Time{}, "AccessDenied"
	}
	if f.by == nil {
		f.by = map[string][]string{}
	}
	f.by[roleARN] = append(f.by[roleARN], caller)
	if f.issued == nil {
		f.issued, f.assumed, f.roleOf = map[string]string{}, map[string]int{}, map[string]string{}
	}
	if f.expires == nil {
		f.expires = map[string]time.Time{}
	}
	f.assumed[acct]++
	// Unique per issue (AWS never reuses one), so expired credentials stay recognisable.
	akid = fmt.Sprintf("ASIA%s%08d", acct, len(f.issued))
	f.issued[akid] = acct
	f.roleOf[akid] = roleARN
	f.roles = append(f.roles, roleARN)
	life := f.Lifetime
	if life <= 0 {
		life = time.Hour
	}
	expires = f.Clock().Add(life)
	f.expires[akid] = expires
	return akid, expires, ""
}

// AccessKeyID reads the access key id from a SigV4 Authorization header ("" when unsigned).
func AccessKeyID(r *http.Request) string {
	h := r.Header.Get("Authorization")
	_, rest, ok := strings.Cut(h, "Credential=")
	if !ok {
		return ""
	}
	akid, _, _ := strings.Cut(rest, "/")
	return akid
}

// SetCaller makes GetCallerIdentity name arn (default: the remediator's role session).
func (f *STS) SetCaller(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arn = arn
}

// NewSTS starts the fake; it stops at cleanup.
func NewSTS(t testenv.Harness, account string) *STS {
	t.Helper()
	f := &STS{Account: account}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Fail makes an operation fail or stall.
func (f *STS) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }

// Calls is how many times an operation was called.
func (f *STS) Calls(op string) int { return f.faults.Count(op) }

func (f *STS) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	op := r.Form.Get("Action")
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		stsfakeError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	if op == "AssumeRole" {
		akid, exp, code := f.assumeRole(r.Form.Get("RoleArn"), AccessKeyID(r))
		if code != "" {
			stsfakeError(w, 403, code, "not authorized to perform sts:AssumeRole on "+r.Form.Get("RoleArn"))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>%s</Arn><AssumedRoleId>AROAFAKE:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			akid, exp.UTC().Format(time.RFC3339), xmlEsc(r.Form.Get("RoleArn")), xmlEsc(r.Form.Get("RoleSessionName")))
		return
	}
	if op != "GetCallerIdentity" {
		stsfakeError(w, 400, "InvalidAction", "the STS fake does not implement "+op)
		return
	}
	f.mu.Lock()
	arn, account := f.arn, f.Account
	if acct := f.issued[AccessKeyID(r)]; acct != "" {
		arn, account = "arn:aws:sts::"+acct+":assumed-role/kmsfix-reader/kmsfix-hub", acct
	}
	f.mu.Unlock()
	if arn == "" {
		arn = "arn:aws:sts::" + account + ":assumed-role/kmsfix-remediator/fn"
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AROAFAKE:fn</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
		xmlEsc(arn), account)
}

func stsfakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
		xmlEsc(code), xmlEsc(msg))
}
