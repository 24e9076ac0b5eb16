package awsfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kmsfix/kmsfix/internal/testenv"
)

// S3Fake is a wire-level S3 (REST-XML, path-style addressing) for the real SDK client, holding
// what `kmsfix why`, `check` and `doctor --buckets` read: HeadObject with the SSE-KMS headers,
// ranged GetObject, GetBucketEncryption, GetBucketPolicy and ListBuckets. No S3 that runs here
// returns SSE-KMS metadata and bucket default encryption (docs/why-check.md says which were
// tried), and none asks KMS on the caller's behalf, so what S3 would answer after KMS refused
// is set by the test with Refuse. Point the client at URL with UsePathStyle.
type S3Fake struct {
	URL string

	faults  testenv.Faults
	mu      sync.Mutex
	buckets map[string]*S3Bucket
	refuse  map[string]S3Error // "<op> <bucket>/<key>" → the error S3 answers
}

// S3Bucket is one bucket.
type S3Bucket struct {
	Region string // the bucket's Region (requests signed for another one get a 301)
	// Encryption is the default encryption; nil: no configuration (GetBucketEncryption answers
	// ServerSideEncryptionConfigurationNotFoundError).
	Encryption *S3Encryption
	Policy     string // bucket policy JSON; "": NoSuchBucketPolicy
	Objects    map[string]S3Object
}

// S3Encryption is a bucket's default encryption rule.
type S3Encryption struct {
	SSE       string // AES256, aws:kms, aws:kms:dsse
	KMSKeyID  string // KMSMasterKeyID as configured ("" for the AWS managed key)
	BucketKey bool
}

// S3Object is one stored object and the encryption S3 reports for it.
type S3Object struct {
	Body      []byte
	SSE       string // AES256, aws:kms, aws:kms:dsse, "" (none reported)
	KMSKeyID  string
	BucketKey bool
	VersionID string
}

// S3Error is an error S3 answers: code, message and HTTP status (default 403).
type S3Error struct {
	Code    string
	Message string
	Status  int
}

// NewS3Fake starts the fake; it stops at cleanup.
func NewS3Fake(t testenv.Harness) *S3Fake {
	t.Helper()
	f := &S3Fake{buckets: map[string]*S3Bucket{}, refuse: map[string]S3Error{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// PutBucket adds or replaces a bucket.
func (f *S3Fake) PutBucket(name string, b S3Bucket) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Objects == nil {
		b.Objects = map[string]S3Object{}
	}
	f.buckets[name] = &b
}

// PutObject stores an object in an existing bucket.
func (f *S3Fake) PutObject(bucket, key string, o S3Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[bucket].Objects[key] = o
}

// Refuse makes an operation ("HeadObject", "GetObject"; a bucket operation such as
// "GetBucketEncryption" with key "") answer e, as S3 does when the caller lacks S3 permissions
// or when KMS refused the call S3 made for it.
func (f *S3Fake) Refuse(op, bucket, key string, e S3Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Status == 0 {
		e.Status = http.StatusForbidden
	}
	f.refuse[op+" "+bucket+"/"+key] = e
}

// Allow removes a refusal set by Refuse (the fix was applied).
func (f *S3Fake) Allow(op, bucket, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.refuse, op+" "+bucket+"/"+key)
}

// Fail makes an operation fail or stall for every resource.
func (f *S3Fake) Fail(op string, fault testenv.AWSFault) { f.faults.Set(op, fault) }

// Calls is how many times an operation was called.
func (f *S3Fake) Calls(op string) int { return f.faults.Count(op) }

// s3Scope reads the Region from a SigV4 Authorization header's credential scope.
var s3Scope = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request`)

func (f *S3Fake) serve(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	op := s3Operation(r.Method, bucket, key, q)
	if fault := f.faults.Hit(r.Context(), op); fault != nil {
		s3Error(w, r, S3Error{Code: fault.Code, Message: "injected by the test", Status: fault.Status})
		return
	}
	if op == "ListBuckets" {
		f.listBuckets(w)
		return
	}
	f.mu.Lock()
	b := f.buckets[bucket]
	var refusal *S3Error
	if e, ok := f.refuse[op+" "+bucket+"/"+key]; ok {
		refusal = &e
	}
	var obj S3Object
	var objOK bool
	if b != nil {
		obj, objOK = b.Objects[key]
	}
	f.mu.Unlock()

	switch {
	case op == "":
		s3Error(w, r, S3Error{Code: "NotImplemented", Message: "the S3 fake does not implement " + r.Method + " " + r.URL.String(), Status: 501})
		return
	case b == nil:
		s3Error(w, r, S3Error{Code: "NoSuchBucket", Message: "The specified bucket does not exist", Status: 404})
		return
	}
	if m := s3Scope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil && b.Region != "" && m[1] != b.Region {
		w.Header().Set("X-Amz-Bucket-Region", b.Region)
		s3Error(w, r, S3Error{Code: "PermanentRedirect", Message: "The bucket you are attempting to access must be addressed using the specified endpoint.", Status: 301})
		return
	}
	if refusal != nil {
		s3Error(w, r, *refusal)
		return
	}
	switch op {
	case "GetBucketEncryption":
		f.encryption(w, r, b)
	case "GetBucketPolicy":
		if b.Policy == "" {
			s3Error(w, r, S3Error{Code: "NoSuchBucketPolicy", Message: "The bucket policy does not exist", Status: 404})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, b.Policy)
	case "HeadObject", "GetObject":
		if !objOK || (q.Get("versionId") != "" && q.Get("versionId") != obj.VersionID) {
			s3Error(w, r, S3Error{Code: "NoSuchKey", Message: "The specified key does not exist.", Status: 404})
			return
		}
		f.object(w, r, op, obj)
	}
}

func s3Operation(method, bucket, key string, q map[string][]string) string {
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case method == http.MethodGet && bucket == "":
		return "ListBuckets"
	case method == http.MethodGet && key == "" && has("encryption"):
		return "GetBucketEncryption"
	case method == http.MethodGet && key == "" && has("policy"):
		return "GetBucketPolicy"
	case method == http.MethodHead && key != "":
		return "HeadObject"
	case method == http.MethodGet && key != "":
		return "GetObject"
	}
	return ""
}

func (f *S3Fake) object(w http.ResponseWriter, r *http.Request, op string, o S3Object) {
	h := w.Header()
	if o.SSE != "" {
		h.Set("X-Amz-Server-Side-Encryption", o.SSE)
	}
	if o.KMSKeyID != "" {
		h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", o.KMSKeyID)
	}
	if o.BucketKey {
		h.Set("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled", "true")
	}
	if o.VersionID != "" {
		h.Set("X-Amz-Version-Id", o.VersionID)
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"fake"`)
	body := o.Body
	status := http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && op == "GetObject" && len(body) > 0 {
		first, last, ok := s3Range(rng, len(body))
		if !ok {
			s3Error(w, r, S3Error{Code: "InvalidRange", Message: "The requested range is not satisfiable", Status: 416})
			return
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(body)))
		body, status = body[first:last+1], http.StatusPartialContent
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if op == "GetObject" {
		w.Write(body)
	}
}

// s3Range reads "bytes=A-B".
func s3Range(s string, size int) (int, int, bool) {
	a, b, ok := strings.Cut(strings.TrimPrefix(s, "bytes="), "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || first > last || first >= size {
		return 0, 0, false
	}
	return first, min(last, size-1), true
}

func (f *S3Fake) encryption(w http.ResponseWriter, r *http.Request, b *S3Bucket) {
	if b.Encryption == nil {
		s3Error(w, r, S3Error{Code: "ServerSideEncryptionConfigurationNotFoundError", Message: "The server side encryption configuration was not found", Status: 404})
		return
	}
	e := b.Encryption
	var key string
	if e.KMSKeyID != "" {
		key = "<KMSMasterKeyID>" + xmlEsc(e.KMSKeyID) + "</KMSMasterKeyID>"
	}
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>%s</SSEAlgorithm>%s</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>%t</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`,
		xmlEsc(e.SSE), key, e.BucketKey)
}

func (f *S3Fake) listBuckets(w http.ResponseWriter) {
	f.mu.Lock()
	names := make([]string, 0, len(f.buckets))
	for n := range f.buckets {
		names = append(names, n)
	}
	regions := map[string]string{}
	for n, b := range f.buckets {
		regions[n] = b.Region
	}
	f.mu.Unlock()
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "<Bucket><Name>%s</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate><BucketRegion>%s</BucketRegion></Bucket>", xmlEsc(n), xmlEsc(regions[n]))
	}
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>fake</ID></Owner><Buckets>%s</Buckets></ListAllMyBucketsResult>`, sb.String())
}

// s3Error answers an S3 error document; HEAD responses carry the status alone, as S3's do.
func s3Error(w http.ResponseWriter, r *http.Request, e S3Error) {
	if e.Status == 0 {
		e.Status = http.StatusForbidden
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	type s3err struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestID string `xml:"RequestId"`
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	b, _ := xml.Marshal(s3err{Code: e.Code, Message: e.Message, RequestID: "fake"})
	w.Write(append([]byte(xml.Header), b...))
}
