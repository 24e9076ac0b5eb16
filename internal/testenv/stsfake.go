package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
)

// STSFake answers GetCallerIdentity (query protocol) for one account.
type STSFake struct {
	URL     string
	Account string
	faults  awsFaults
	mu      sync.Mutex
	arn     string // set by SetCaller
}

// SetCaller makes GetCallerIdentity name arn (default: the remediator's role session).
func (f *STSFake) SetCaller(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arn = arn
}

// NewSTSFake starts the fake; it stops at cleanup.
func NewSTSFake(t Harness, account string) *STSFake {
	t.Helper()
	f := &STSFake{Account: account}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Fail makes an operation fail or stall.
func (f *STSFake) Fail(op string, fault AWSFault) { f.faults.set(op, fault) }

// Calls is how many times an operation was called.
func (f *STSFake) Calls(op string) int { return f.faults.count(op) }

func (f *STSFake) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	op := r.Form.Get("Action")
	if fault := f.faults.hit(r.Context(), op); fault != nil {
		stsfakeError(w, fault.Status, fault.Code, "injected by the test")
		return
	}
	if op != "GetCallerIdentity" {
		stsfakeError(w, 400, "InvalidAction", "the STS fake does not implement "+op)
		return
	}
	f.mu.Lock()
	arn := f.arn
	f.mu.Unlock()
	if arn == "" {
		arn = "arn:aws:sts::" + f.Account + ":assumed-role/kmsfix-remediator/fn"
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AROAFAKE:fn</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
		xmlEsc(arn), f.Account)
}

func stsfakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
		xmlEsc(code), xmlEsc(msg))
}
