package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
)

// STSFake answers GetCallerIdentity (query protocol) for one account.
type STSFake struct {
	URL     string
	Account string
	faults  awsFaults
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
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::%s:assumed-role/kmsfix-remediator/fn</Arn><UserId>AROAFAKE:fn</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
		f.Account, f.Account)
}

func stsfakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
		xmlEsc(code), xmlEsc(msg))
}
