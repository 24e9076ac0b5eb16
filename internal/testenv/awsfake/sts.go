package awsfake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// STS answers GetCallerIdentity (query protocol) for one account.
type STS struct {
	URL     string
	Account string
	faults  testenv.Faults
	mu      sync.Mutex
	arn     string // set by SetCaller
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
