package emulator

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// FaultProxy sits in front of an emulator and makes chosen operations fail, so the real
// emulator answers everything else. The operation is the X-Amz-Target suffix (JSON
// protocols, e.g. "UpdateItem") or the Action form field (query protocols, e.g. "Publish").
type FaultProxy struct {
	URL    string
	faults testenv.Faults
	all    testenv.Faults // faults for every operation
	// xml answers errors in the query protocol's XML (SNS); otherwise JSON 1.0 (DynamoDB).
	xml bool
}

func newFaultProxy(t testenv.Harness, target string, xml bool) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("proxy target %q: %v", target, err)
	}
	p := &FaultProxy{xml: xml}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := operation(r)
		f := p.faults.Hit(r.Context(), op)
		if f == nil {
			f = p.all.Hit(r.Context(), "*")
		}
		if f != nil {
			p.writeFault(w, f)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Fail makes an operation fail (see testenv.AWSFault; Status 500 makes the SDK treat it as transient).
func (p *FaultProxy) Fail(op string, f testenv.AWSFault) { p.faults.Set(op, f) }

// FailAll makes every operation fail (the service is down).
func (p *FaultProxy) FailAll(f testenv.AWSFault) { p.all.Set("*", f) }

// Clear removes all faults.
func (p *FaultProxy) Clear() {
	p.faults.Clear()
	p.all.Clear()
}

// Calls counts calls of an operation seen by the proxy.
func (p *FaultProxy) Calls(op string) int { return p.faults.Count(op) }

func operation(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if i := strings.LastIndexByte(t, '.'); i >= 0 {
			return t[i+1:]
		}
		return t
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return ""
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	v, _ := url.ParseQuery(string(body))
	return v.Get("Action")
}

func (p *FaultProxy) writeFault(w http.ResponseWriter, f *testenv.AWSFault) {
	if p.xml {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>injected fault</Message></Error><RequestId>fault</RequestId></ErrorResponse>`, f.Code)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(f.Status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected fault"}`, f.Code)
}
