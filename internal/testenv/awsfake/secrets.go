package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// Secrets answers Secrets Manager GetSecretValue (JSON 1.1) for the secrets a test puts
// in it: no emulator of Secrets Manager runs here.
type Secrets struct {
	URL    string
	faults testenv.Faults

	mu      sync.Mutex
	secrets map[string]string
}

// NewSecrets starts the fake; it stops at cleanup.
func NewSecrets(t testenv.Harness) *Secrets {
	t.Helper()
	f := &Secrets{secrets: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Put stores a secret string under an ARN.
func (f *Secrets) Put(arn, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[arn] = value
}

// Fail makes GetSecretValue fail.
func (f *Secrets) Fail(fault testenv.AWSFault) { f.faults.Set("GetSecretValue", fault) }

// Calls counts GetSecretValue calls.
func (f *Secrets) Calls() int { return f.faults.Count("GetSecretValue") }

// Client is a Secrets Manager client for the fake, SDK retries off.
func (f *Secrets) Client() *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
}

func (f *Secrets) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if op != "GetSecretValue" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"UnknownOperationException","message":"fake does not know %s"}`, op)
		return
	}
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		w.WriteHeader(fault.Status)
		fmt.Fprintf(w, `{"__type":"%s","message":"injected fault"}`, fault.Code)
		return
	}
	var in struct{ SecretId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"InvalidRequestException","message":%q}`, err.Error())
		return
	}
	f.mu.Lock()
	v, ok := f.secrets[in.SecretId]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN": in.SecretId, "Name": in.SecretId[strings.LastIndexByte(in.SecretId, ':')+1:],
		"SecretString": v, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"},
	})
}
