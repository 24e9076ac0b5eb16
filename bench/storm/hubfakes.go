package main

// The organization storm's wire fakes where no emulator or shared fake fits (hub.go says why).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	kmsconfig "github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/hub"
	"github.com/kmsfix/kmsfix/internal/testenv"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
)

// kmsScope stands at the KMS endpoint in front of one local-kms per Region. A call passes
// only when it is signed with live credentials the STS fake issued, for a Region with a
// local-kms, and names the signing account's own key of that Region (by ARN or id); the
// member account is then mapped onto the account local-kms plays, and back in the answer
// (account ids are all 12 digits, so lengths do not change). Anything else is refused as AWS
// would and counted: the storm fails on any.
type kmsScope struct {
	URL string

	sts      *awsfake.STS
	local    string            // the account local-kms plays
	backends map[string]string // Region → local-kms shim URL
	client   *http.Client

	refused, expired, foreign atomic.Int64
	mu                        sync.Mutex
	perAcct                   map[string]int
	firstBad                  string
}

func newKMSScope(h testenv.Harness, st *awsfake.STS, local string, backends map[string]string) *kmsScope {
	k := &kmsScope{sts: st, local: local, backends: backends, perAcct: map[string]int{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	srv := httptest.NewServer(http.HandlerFunc(k.serve))
	h.Cleanup(srv.Close)
	k.URL = srv.URL
	return k
}

func (k *kmsScope) calls(acct string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.perAcct[acct]
}

func (k *kmsScope) first() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.firstBad
}

func (k *kmsScope) bad(counter *atomic.Int64, why string) {
	counter.Add(1)
	k.mu.Lock()
	if k.firstBad == "" {
		k.firstBad = why
	}
	k.mu.Unlock()
}

func (k *kmsScope) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	akid := awsfake.AccessKeyID(r)
	acct := k.sts.AccountOf(akid)
	if acct == "" {
		k.bad(&k.refused, op+" with credentials the STS fake did not issue")
		awsfake.RefuseCredentials(w, r, "UnrecognizedClientException", "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if k.sts.Expired(akid) {
		k.bad(&k.expired, op+" with expired credentials of "+acct)
		awsfake.RefuseCredentials(w, r, "ExpiredTokenException", "ExpiredToken", "The security token included in the request is expired")
		return
	}
	region := signingRegion(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		testenv.JSONError(w, 400, "SerializationException", err.Error())
		return
	}
	var in struct{ KeyId string }
	_ = json.Unmarshal(body, &in)
	r0 := slices.Index(hubRegions, region)
	backend := k.backends[region]
	if backend == "" || r0 < 0 || (in.KeyId != keyID(acct, r0) && in.KeyId != "arn:aws:kms:"+region+":"+acct+":key/"+keyID(acct, r0)) {
		k.bad(&k.foreign, fmt.Sprintf("%s of %q signed by %s for %s", op, in.KeyId, acct, region))
		testenv.JSONError(w, 400, "AccessDeniedException", "User: arn:aws:sts::"+acct+":assumed-role/"+kmsconfig.ReaderRoleName+"/"+hub.SessionName+
			" is not authorized to perform: kms:"+op+" on resource: "+in.KeyId)
		return
	}
	k.mu.Lock()
	k.perAcct[acct]++
	k.mu.Unlock()
	body = bytes.ReplaceAll(body, []byte(":"+acct+":"), []byte(":"+k.local+":"))
	req, err := http.NewRequestWithContext(r.Context(), r.Method, backend+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		testenv.JSONError(w, 500, "KMSInternalException", err.Error())
		return
	}
	req.Header = r.Header.Clone()
	resp, err := k.client.Do(req)
	if err != nil {
		testenv.JSONError(w, 500, "KMSInternalException", err.Error())
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		testenv.JSONError(w, 500, "KMSInternalException", err.Error())
		return
	}
	out = bytes.ReplaceAll(out, []byte(k.local), []byte(acct))
	for h, v := range resp.Header {
		if h != "Content-Length" {
			w.Header()[h] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// signingRegion reads the Region of a SigV4 credential scope (Credential=AKID/DATE/REGION/...).
func signingRegion(r *http.Request) string {
	_, rest, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	f := strings.Split(rest, "/")
	if len(f) < 3 {
		return ""
	}
	return f[2]
}

// snsByTopic stands at the SNS endpoint and sends each Publish to the goaws holding its topic
// (one goaws per topic: the default channel's and each team's).
type snsByTopic struct {
	URL    string
	topics map[string]string // topic ARN → goaws URL
	client *http.Client
}

func newSNSByTopic(h testenv.Harness, topics map[string]string) *snsByTopic {
	s := &snsByTopic{topics: topics, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	h.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *snsByTopic) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var topic string
	if strings.Contains(r.Header.Get("Content-Type"), "json") {
		var in struct{ TopicArn string }
		_ = json.Unmarshal(body, &in)
		topic = in.TopicArn
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		topic = form.Get("TopicArn")
	}
	backend := s.topics[topic]
	if backend == "" {
		http.Error(w, "<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error></ErrorResponse>", http.StatusNotFound)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, backend+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for h, v := range resp.Header {
		w.Header()[h] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// quietAnalyzer answers ValidatePolicy with no findings and CheckAccessNotGranted with PASS,
// as awsfake.AccessAnalyzer does by default, without recording the requests.
type quietAnalyzer struct {
	URL   string
	calls atomic.Int64
}

func newQuietAnalyzer(h testenv.Harness) *quietAnalyzer {
	q := &quietAnalyzer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/policy/validation":
			_, _ = w.Write([]byte(`{"findings":[]}`))
		case "/policy/check-access-not-granted":
			_, _ = w.Write([]byte(`{"result":"PASS","message":"The policy document does not grant access to perform the listed actions.","reasons":[]}`))
		default:
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"message":"not implemented"}`))
		}
	}))
	h.Cleanup(srv.Close)
	q.URL = srv.URL
	return q
}
