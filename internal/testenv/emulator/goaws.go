package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// Goaws is the goaws SNS emulator with one topic whose HTTP subscription delivers to an
// SNSReceiver, behind a FaultProxy.
type Goaws struct {
	Endpoint, Direct string
	TopicARN         string
	Proxy            *FaultProxy
	Receiver         *SNSReceiver
	proc             *Process
}

// goawsAccount and goawsRegion are the emulator's identity (ARNs carry them).
const (
	goawsAccount = "100010001000"
	goawsRegion  = "us-east-1"
)

// StartGoaws starts goaws (.tools/bin/goaws) on a free port with the topic already
// subscribed by a receiver; both stop at cleanup.
func StartGoaws(t testenv.Harness, topic string) *Goaws {
	t.Helper()
	bin := emuTool(t, filepath.Join("bin", "goaws"))
	rcv := newSNSReceiver(t)
	arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s", goawsRegion, goawsAccount, topic)
	dir, err := os.MkdirTemp("", "goaws")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	proc := Launch(t, Command{Name: "goaws", Path: bin, Args: func(ports []int) []string {
		port := ports[0]
		// goaws delivers to HTTP subscriptions from its configuration without a confirmation.
		conf := fmt.Sprintf(`Local:
  Host: 127.0.0.1
  Port: %d
  Region: %s
  AccountId: "%s"
  LogToFile: false
  QueueAttributeDefaults: {VisibilityTimeout: 30, ReceiveMessageWaitTimeSeconds: 0}
  Queues: []
  Topics:
    - Name: %s
      Subscriptions:
        - Protocol: http
          EndPoint: %s
          TopicArn: %s
          Raw: false
`, port, goawsRegion, goawsAccount, topic, rcv.URL, arn)
		path := filepath.Join(dir, fmt.Sprintf("goaws-%d.yaml", port))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatalf("write goaws config: %v", err)
		}
		return []string{"-config", path, "Local"}
	}})
	g := &Goaws{Direct: proc.URL(), TopicARN: arn, Receiver: rcv, proc: proc}
	g.Proxy = newFaultProxy(t, g.Direct, true)
	g.Endpoint = g.Proxy.URL
	return g
}

// PeakRSS is goaws's peak resident memory in KiB.
func (g *Goaws) PeakRSS() int64 { return g.proc.PeakRSS() }

// Client is an SNS client for the emulator through the fault proxy, SDK retries off unless
// maxAttempts > 1.
func (g *Goaws) Client(maxAttempts int) *sns.Client {
	return sns.New(sns.Options{
		Region:           goawsRegion,
		BaseEndpoint:     aws.String(g.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: max(maxAttempts, 1),
	})
}

// SNSDelivery is one notification goaws delivered to the HTTP subscription.
type SNSDelivery struct {
	Subject    string
	Message    string            // as published (with MessageStructure json: the whole structure)
	Attributes map[string]string // name -> value
	Types      map[string]string // name -> data type
}

// ForProtocol is what a subscriber of the protocol receives: goaws does not split a
// MessageStructure=json message for HTTP subscribers, so the receiver does it as SNS would.
func (d SNSDelivery) ForProtocol(protocol string) string {
	var m map[string]string
	if err := json.Unmarshal([]byte(d.Message), &m); err != nil || m["default"] == "" {
		return d.Message
	}
	if v, ok := m[protocol]; ok {
		return v
	}
	return m["default"]
}

// SNSReceiver records what an SNS HTTP subscription receives.
type SNSReceiver struct {
	URL string

	mu   sync.Mutex
	got  []SNSDelivery
	errs []string
}

func newSNSReceiver(t testenv.Harness) *SNSReceiver {
	r := &SNSReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/sns"
	return r
}

func (r *SNSReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg struct {
		Type              string
		Subject           string
		Message           string
		MessageAttributes map[string]struct{ Type, Value string }
	}
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if msg.Type != "Notification" {
		return
	}
	d := SNSDelivery{Subject: msg.Subject, Message: msg.Message, Attributes: map[string]string{}, Types: map[string]string{}}
	for k, v := range msg.MessageAttributes {
		d.Attributes[k], d.Types[k] = v.Value, v.Type
	}
	r.got = append(r.got, d)
}

// Deliveries returns what was received so far.
func (r *SNSReceiver) Deliveries() []SNSDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SNSDelivery(nil), r.got...)
}

// Count is the number of notifications received.
func (r *SNSReceiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Reset forgets what was received.
func (r *SNSReceiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got, r.errs = nil, nil
}
