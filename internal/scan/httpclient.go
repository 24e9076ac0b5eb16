package scan

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// HTTPDoer is what the SDK needs of an HTTP client (aws.HTTPClient).
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// BufferBodies returns a client that sends each request body from an in-memory copy.
//
// Why: the SDK closes the request body as soon as Do returns, while net/http's transport may
// still make its final read of it; that read then fails and the transport closes the
// connection under the response being read, which surfaces as "deserialization failed ...
// use of closed network connection" on about one large LookupEvents page in ten (reproduced
// against a local server). The SDK's standard retryer hides it; a scan retries pages itself
// (each retry costs a slot under the rate limit), so it removes the cause instead.
func BufferBodies(c HTTPDoer) HTTPDoer { return bufferBodies{c} }

type bufferBodies struct{ c HTTPDoer }

func (b bufferBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		buf, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading request body: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	}
	return b.c.Do(r)
}
