package policy

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"
)

// benchCase is a generated case ready for AuthorizeKMS, plus its documents as JSON text for
// the parse-and-evaluate benchmark.
type benchCase struct {
	req      Request
	in       KMSInputs
	key      []byte
	identity [][]byte
	boundary []byte
}

// benchCases are the differential test's cases (the same seed), every step-th one: a mix of
// same- and cross-account keys, S3 and direct calls, allows, implicit and explicit denies.
func benchCases(b *testing.B, step int) []benchCase {
	b.Helper()
	var out []benchCase
	for i, c := range generateCases(diffSeed, diffCases) {
		if i%step != 0 {
			continue
		}
		in, err := c.inputs()
		if err != nil {
			b.Fatal(err)
		}
		bc := benchCase{req: c.request(), in: in}
		bc.key = mustJSON(b, c.KeyPolicy)
		if c.Boundary != nil {
			bc.boundary = mustJSON(b, c.Boundary)
		}
		for _, nd := range c.Identity {
			bc.identity = append(bc.identity, mustJSON(b, nd.Doc))
		}
		out = append(out, bc)
	}
	return out
}

// benchMixes are the two case sets timed: 200 cases (every 10th; their policies, about 1 MB,
// stay in cache, as when the remediator re-evaluates one denial's policies) and all 2,000
// (about 10 MB of parsed policies cycled, so most accesses miss the cache).
// bench/evaluator.sh times the same two sets in iam-simulate.
var benchMixes = []struct {
	name string
	step int
}{{"cases=200", 10}, {"cases=2000", 1}}

func mustJSON(b *testing.B, d *Document) []byte {
	j, err := json.Marshal(d)
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// BenchmarkAuthorizeKMS is one KMS authorization decision on already-parsed policies: what
// the remediator does per denial once it holds the key policy and the principal's policies.
func BenchmarkAuthorizeKMS(b *testing.B) {
	for _, mix := range benchMixes {
		b.Run(mix.name, func(b *testing.B) {
			cases := benchCases(b, mix.step)
			allowed := 0
			b.ReportAllocs()
			i, n := 0, 0
			cpu := startCPU()
			for b.Loop() {
				c := &cases[i]
				if AuthorizeKMS(c.req, c.in).Decision == Allow {
					allowed++
				}
				if i++; i == len(cases) {
					i = 0
				}
				n++
			}
			cpu.report(b, n)
			if allowed == 0 {
				b.Fatal("no case was allowed: the benchmark mix is degenerate")
			}
		})
	}
}

// BenchmarkParseAndAuthorizeKMS also parses every policy document from JSON, as
// iam-simulate's runUnsafeSimulation does on each call; it is the like-for-like figure.
func BenchmarkParseAndAuthorizeKMS(b *testing.B) {
	for _, mix := range benchMixes {
		b.Run(mix.name, func(b *testing.B) {
			cases := benchCases(b, mix.step)
			b.ReportAllocs()
			i, n := 0, 0
			cpu := startCPU()
			for b.Loop() {
				n++
				c := &cases[i]
				in := KMSInputs{KeyAccount: c.in.KeyAccount}
				var err error
				if in.KeyPolicy, err = Parse(c.key); err != nil {
					b.Fatal(err)
				}
				if c.boundary != nil {
					if in.Boundary, err = Parse(c.boundary); err != nil {
						b.Fatal(err)
					}
				}
				for _, j := range c.identity {
					d, err := Parse(j)
					if err != nil {
						b.Fatal(err)
					}
					in.Identity = append(in.Identity, NamedDocument{Name: "inline", Doc: d})
				}
				AuthorizeKMS(c.req, in)
				if i++; i == len(cases) {
					i = 0
				}
			}
			cpu.report(b, n)
		})
	}
}

// cpuClock measures the process's CPU time (user+system, GC included). Reported next to
// ns/op as cpu-ns/op because this 2-core machine is often loaded by other builds: CPU time
// is stable where wall time is not, and oracle.cjs --bench reports the same measure.
type cpuClock time.Duration

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock(processCPU()) }

func (c cpuClock) report(b *testing.B, n int) {
	if n > 0 {
		b.ReportMetric(float64(processCPU()-time.Duration(c))/float64(n), "cpu-ns/op")
	}
}

// BenchmarkParse is Parse alone on the same documents (key policies, identity policies and
// boundaries of the cases), per document; "encoding/json" is the decoding Parse had before
// the one-pass decoder (parseStd, decode_test.go), for comparison.
func BenchmarkParse(b *testing.B) {
	cases := benchCases(b, 10)
	var docs [][]byte
	for _, c := range cases {
		docs = append(docs, c.key)
		if c.boundary != nil {
			docs = append(docs, c.boundary)
		}
		docs = append(docs, c.identity...)
	}
	for _, p := range []struct {
		name  string
		parse func([]byte) (*Document, error)
	}{{"one-pass", Parse}, {"encoding/json", parseStd}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			i, n := 0, 0
			cpu := startCPU()
			for b.Loop() {
				if _, err := p.parse(docs[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(docs) {
					i = 0
				}
				n++
			}
			cpu.report(b, n)
		})
	}
}
