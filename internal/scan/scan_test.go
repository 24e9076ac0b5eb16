package scan

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/testenv/awsfake"
	"github.com/kmsfix/kmsfix/internal/testenv/corpus"
	"github.com/kmsfix/kmsfix/internal/world"
)

// fakeClock is virtual time: Sleep advances it at once. The CloudTrail fake stamps requests
// with it too, so the rate the fake measures is the rate the pacer produced.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

// denialReport stands in for the engine: the report carries what the fingerprint needs,
// straight from the parsed denial, with the error code as the diagnosis.
func denialReport(_ context.Context, it cloudtrail.Item) finding.Report {
	d := it.Denial
	return finding.Report{
		EventID: d.EventID, Diagnosis: finding.Code(d.ErrorCode), Principal: d.Identity.PrincipalARN,
		Key: d.KeyARN, Bucket: d.Bucket, Actions: d.Actions, EventTime: d.EventTime,
	}
}

func ctClient(url string) *awsct.Client {
	return awsct.New(awsct.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  aws.AnonymousCredentials{},
		HTTPClient:   BufferBodies(http.DefaultClient),
	})
}

// checkGroups asserts the scan found exactly the corpus' S3 denials, grouped as generated.
func checkGroups(t *testing.T, got []Group, want []corpus.DenialGroup) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d findings, want %d", len(got), len(want))
	}
	type key struct{ principal, key, bucket, action string }
	byKey := map[key]corpus.DenialGroup{}
	for _, w := range want {
		byKey[key{w.Principal, w.Key, w.Bucket, w.Action}] = w
	}
	for _, g := range got {
		r := g.Report
		k := key{r.Principal, r.Key, r.Bucket, strings.Join(r.Actions, ",")}
		w, ok := byKey[k]
		if !ok {
			t.Errorf("unexpected finding %+v", k)
			continue
		}
		delete(byKey, k)
		if g.Count != w.Count || !g.FirstSeen.Equal(w.First) || !g.LastSeen.Equal(w.Last) {
			t.Errorf("%v: count %d first %v last %v, want %d %v %v", k, g.Count, g.FirstSeen, g.LastSeen, w.Count, w.First, w.Last)
		}
		if g.Report.EventTime != g.LastSeen.Format(time.RFC3339) {
			t.Errorf("%v: report is from %s, want the latest occurrence %v", k, g.Report.EventTime, g.LastSeen)
		}
	}
	for k := range byKey {
		t.Errorf("missing finding %+v", k)
	}
}

func kmsOnly(c *corpus.Corpus) int {
	n := 0
	for _, r := range c.Records {
		if r.Source == "kms.amazonaws.com" {
			n++
		}
	}
	return n
}

func TestFromLookupDay(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 1, NonKMS: 200})
	if day.S3Denials < 200 || day.Successes+day.OtherDenials < 2000 {
		t.Fatalf("corpus too small: %+v", day)
	}
	clock := newFakeClock()
	fake := awsfake.NewCloudTrail(t, day.Records)
	fake.Now = clock.Now
	fake.ThrottleCalls = map[int]bool{3: true, 10: true, 11: true}
	fake.FailPages = map[int]int{5: 2}

	l := NewLookup(ctClient(fake.URL), clock, DefaultRate)
	end := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	var progress []Progress
	res, err := FromLookup(context.Background(), l, end.Add(-24*time.Hour), end, Options{
		Explain:  denialReport,
		Progress: func(p Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	checkGroups(t, res.Groups, day.Groups)

	kms := kmsOnly(day)
	wantPages := (kms + 49) / 50
	if res.Denials != day.S3Denials || res.Records != kms || res.Ignored != kms-day.S3Denials {
		t.Errorf("denials %d records %d ignored %d; want %d %d %d", res.Denials, res.Records, res.Ignored, day.S3Denials, kms, kms-day.S3Denials)
	}
	if !res.Complete || res.Pages != wantPages || res.Retries != 5 {
		t.Errorf("complete %v pages %d retries %d; want true %d 5", res.Complete, res.Pages, res.Retries, wantPages)
	}

	st := fake.Stats()
	if st.Violations != 0 || st.MaxPerSecond > 2 {
		t.Errorf("rate limit exceeded: %d requests over it, at most %d in a second", st.Violations, st.MaxPerSecond)
	}
	if want := l.Pacer.Interval; st.MinGap < want {
		t.Errorf("requests %v apart, want at least %v", st.MinGap, want)
	}
	if st.Requests != wantPages+5 || len(st.Pages) != wantPages {
		t.Errorf("fake saw %d requests, %d pages; want %d, %d", st.Requests, len(st.Pages), wantPages+5, wantPages)
	}
	// Each retry waited at least the backoff, doubling within a page.
	var backoffs int
	for _, d := range clock.slept {
		if d >= time.Second {
			backoffs++
		}
	}
	if backoffs != 5 {
		t.Errorf("%d backoff sleeps of 1s or more, want 5: %v", backoffs, clock.slept)
	}

	if len(progress) != wantPages {
		t.Fatalf("%d progress updates, want one per page (%d)", len(progress), wantPages)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Fraction < progress[i-1].Fraction || progress[i].Records < progress[i-1].Records {
			t.Errorf("progress went back: %+v after %+v", progress[i], progress[i-1])
		}
	}
	if last := progress[len(progress)-1]; last.Fraction < 0.99 || last.Denials != day.S3Denials {
		t.Errorf("last progress %+v", last)
	}
}

func TestFromLookupEmptyWindow(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 2, Successes: 100, Groups: 5})
	clock := newFakeClock()
	fake := awsfake.NewCloudTrail(t, day.Records)
	fake.Now = clock.Now
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	res, err := FromLookup(context.Background(), NewLookup(ctClient(fake.URL), clock, 0), start, start.Add(time.Hour), Options{Explain: denialReport})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 0 || len(res.Groups) != 0 || !res.Complete || res.Pages != 1 {
		t.Errorf("empty window: %+v", res)
	}
	if got := Summary(res); !strings.HasPrefix(got, "no S3 KMS denials; 0 record(s) read in 1 page(s)") {
		t.Errorf("summary %q", got)
	}
}

func TestFromLookupRetriesExhausted(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 3, Successes: 400, Groups: 12})
	clock := newFakeClock()
	fake := awsfake.NewCloudTrail(t, day.Records)
	fake.Now = clock.Now
	fake.FailPages = map[int]int{3: 1000}
	l := NewLookup(ctClient(fake.URL), clock, DefaultRate)
	end := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	res, err := FromLookup(context.Background(), l, end.Add(-24*time.Hour), end, Options{Explain: denialReport})

	var pe *PageError
	if !errors.As(err, &pe) || pe.Page != 3 || pe.Attempts != l.MaxAttempts {
		t.Fatalf("err = %v, want a PageError on page 3 after %d attempts", err, l.MaxAttempts)
	}
	if !strings.Contains(err.Error(), "InternalFailure") {
		t.Errorf("error %q does not say what failed", err)
	}
	if res.Complete || res.Records != 100 || res.Pages != 2 {
		t.Errorf("partial result: complete %v records %d pages %d; want false 100 2", res.Complete, res.Records, res.Pages)
	}
	// Reached is the oldest event of page 2: the 100th newest KMS record.
	var kms []corpus.Record
	for _, r := range slices.Backward(day.Records) {
		if r.Source == "kms.amazonaws.com" {
			kms = append(kms, r)
		}
	}
	if !res.Reached.Equal(kms[99].Time) {
		t.Errorf("reached %v, want %v", res.Reached, kms[99].Time)
	}
	wantDenials := 0
	for _, r := range kms[:100] {
		if r.Group >= 0 {
			wantDenials++
		}
	}
	if res.Denials != wantDenials {
		t.Errorf("denials before the failure: %d, want %d", res.Denials, wantDenials)
	}
	if st := fake.Stats(); st.Violations != 0 {
		t.Errorf("%d requests over the rate limit while retrying", st.Violations)
	}
}

func TestFromLookupCancelled(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 4, Successes: 300})
	clock := newFakeClock()
	fake := awsfake.NewCloudTrail(t, day.Records)
	fake.Now = clock.Now
	ctx, cancel := context.WithCancel(context.Background())
	end := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	res, err := FromLookup(ctx, NewLookup(ctClient(fake.URL), clock, 0), end.Add(-24*time.Hour), end, Options{
		Explain:  denialReport,
		Progress: func(p Progress) { cancel() },
	})
	if !errors.Is(err, context.Canceled) || res.Complete || res.Pages != 1 || res.Records != 50 {
		t.Errorf("err %v complete %v pages %d records %d", err, res.Complete, res.Pages, res.Records)
	}
}

func TestFromFiles(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 5, Successes: 1500, NonKMS: 300})
	dir := t.TempDir()
	paths := corpus.WriteLogFiles(t, dir, day.Records)
	// A plain .json copy of one file and a file that is not a log are read or skipped by name.
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a log"), 0o644); err != nil {
		t.Fatal(err)
	}

	res, err := FromFiles(context.Background(), dir, time.Time{}, time.Time{}, Options{Explain: denialReport})
	if err != nil {
		t.Fatal(err)
	}
	checkGroups(t, res.Groups, day.Groups)
	if res.Files != len(paths) || res.Records != len(day.Records) || res.Denials != day.S3Denials {
		t.Errorf("files %d records %d denials %d; want %d %d %d", res.Files, res.Records, res.Denials, len(paths), len(day.Records), day.S3Denials)
	}
}

func TestFromFilesWindowAndBadFile(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 6, Successes: 500})
	dir := t.TempDir()
	corpus.WriteLogFiles(t, dir, day.Records)
	bad := filepath.Join(dir, "AWSLogs", "broken.json.gz")
	if err := os.WriteFile(bad, []byte{0x1f, 0x8b, 0, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	since, until := end.Add(-12*time.Hour), end.Add(-6*time.Hour)
	res, err := FromFiles(context.Background(), dir, since, until, Options{Explain: denialReport})
	if err == nil || !strings.Contains(err.Error(), "broken.json.gz") {
		t.Errorf("err = %v, want one naming broken.json.gz", err)
	}
	if res.Complete {
		t.Error("complete despite a bad file")
	}
	want, outside := 0, 0
	for _, r := range day.Records {
		if r.Group < 0 {
			continue
		}
		if r.Time.Before(since) || r.Time.After(until) {
			outside++
		} else {
			want++
		}
	}
	if res.Denials != want || res.Outside != outside {
		t.Errorf("denials %d outside %d; want %d %d", res.Denials, res.Outside, want, outside)
	}
}

func TestFromFilesMissingDir(t *testing.T) {
	_, err := FromFiles(context.Background(), filepath.Join(t.TempDir(), "nope"), time.Time{}, time.Time{}, Options{Explain: denialReport})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v", err)
	}
}

func TestGrouperOrderIndependent(t *testing.T) {
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	r := func(principal, id string) finding.Report {
		return finding.Report{EventID: id, Principal: principal, Key: "k", Actions: []string{"kms:Decrypt"}, Diagnosis: finding.KeyDisabled}
	}
	adds := []struct {
		r finding.Report
		t time.Time
	}{
		{r("a", "1"), base.Add(2 * time.Hour)},
		{r("b", "2"), base.Add(time.Hour)},
		{r("a", "3"), base},
		{r("a", "4"), base.Add(3 * time.Hour)},
		{r("a", "5"), base.Add(time.Hour)},
	}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		g := NewGrouper()
		for _, i := range order {
			g.Add(adds[i].r, adds[i].t)
		}
		got := g.Groups()
		if len(got) != 2 || got[0].Report.Principal != "a" || got[0].Count != 4 || got[1].Count != 1 {
			t.Fatalf("order %v: %+v", order, got)
		}
		if !got[0].FirstSeen.Equal(base) || !got[0].LastSeen.Equal(base.Add(3*time.Hour)) || got[0].Report.EventID != "4" {
			t.Errorf("order %v: first %v last %v report %s", order, got[0].FirstSeen, got[0].LastSeen, got[0].Report.EventID)
		}
	}
}

// BenchmarkFromFiles measures the offline path per record: gunzip, parse, explain with the
// real engine (empty world), group. Run: go test ./internal/scan -bench FromFiles -benchmem
func BenchmarkFromFiles(b *testing.B) {
	day := corpus.KMSDay(corpus.Options{Seed: 7, NonKMS: 1000})
	dir := b.TempDir()
	corpus.WriteLogFiles(b, dir, day.Records)
	explain := func(_ context.Context, it cloudtrail.Item) finding.Report { return engine.Explain(it, &world.World{}) }
	b.ResetTimer()
	for b.Loop() {
		res, err := FromFiles(context.Background(), dir, time.Time{}, time.Time{}, Options{Explain: explain})
		if err != nil || res.Denials != day.S3Denials {
			b.Fatalf("denials %d, err %v", res.Denials, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(day.Records)), "ns/record")
}

// TestFromFilesTrailBucket: a trail bucket as CloudTrail writes it is scanned complete:
// digest and Insights folders are skipped by name, Insights records and other services'
// records inside log files are ignored, an organization trail's extra level is walked.
// A record that cannot be read is named, and the records after it in its file still count.
func TestFromFilesTrailBucket(t *testing.T) {
	day := corpus.KMSDay(corpus.Options{Seed: 7, Successes: 300, NonKMS: 100})
	dir := t.TempDir()
	corpus.WriteLogFiles(t, filepath.Join(dir, "org"), day.Records)
	put := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest := `{"awsAccountId":"111122223333","digestStartTime":"2026-11-27T00:00:00Z","logFiles":[{"s3Object":"x"}]}`
	put("org/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/27/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20261127T0000Z.json.gz", "not even gzip")
	put("AWSLogs/o-exampleorgid/111122223333/CloudTrail-Digest/us-east-1/2026/11/27/d.json", digest)
	put("AWSLogs/o-exampleorgid/111122223333/CloudTrail-Insight/us-east-1/2026/11/27/i.json", "{broken")
	insight := `{"eventVersion":"1.08","eventType":"AwsCloudTrailInsight","eventID":"ins-1","insightDetails":{"state":"Start","eventSource":"kms.amazonaws.com"},"eventCategory":"Insight"}`
	put("AWSLogs/o-exampleorgid/111122223333/CloudTrail/us-east-1/2026/11/27/a.json", `{"Records":[`+insight+`]}`)

	res, err := FromFiles(context.Background(), dir, time.Time{}, time.Time{}, Options{Explain: denialReport})
	if err != nil || !res.Complete {
		t.Fatalf("clean bucket: err %v complete %v", err, res.Complete)
	}
	if res.Denials != day.S3Denials || res.Unreadable != 0 || res.Records != len(day.Records)+1 {
		t.Errorf("denials %d unreadable %d records %d; want %d 0 %d", res.Denials, res.Unreadable, res.Records, day.S3Denials, len(day.Records)+1)
	}

	// One bad record in the middle of a file: named, and the file's last denial still counts.
	denial := string(day.Records[slices.IndexFunc(day.Records, func(r corpus.Record) bool { return r.Group >= 0 })].JSON)
	denial2 := strings.Replace(denial, `"eventID":"`, `"eventID":"x-`, 1)
	put("AWSLogs/o-exampleorgid/111122223333/CloudTrail/us-east-1/2026/11/27/b.json",
		`{"Records":[{"eventSource":"kms.amazonaws.com","eventName":[]},`+denial2+`]}`)
	res, err = FromFiles(context.Background(), dir, time.Time{}, time.Time{}, Options{Explain: denialReport})
	if err == nil || !strings.Contains(err.Error(), "b.json: record 1:") || res.Complete {
		t.Errorf("err %v complete %v; want b.json record 1 named", err, res.Complete)
	}
	if res.Denials != day.S3Denials+1 || res.Unreadable != 1 {
		t.Errorf("denials %d unreadable %d; want %d 1", res.Denials, res.Unreadable, day.S3Denials+1)
	}
}
