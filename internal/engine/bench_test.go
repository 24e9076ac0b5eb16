package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/world"
)

type benchCase struct {
	name  string
	event []byte
	world *world.World
}

// loadBenchCases reads every bundled sample under events/ that diagnoses a denial.
func loadBenchCases(b *testing.B) []benchCase {
	b.Helper()
	dirs, err := filepath.Glob("../../events/*/event.json")
	if err != nil || len(dirs) == 0 {
		b.Fatalf("no samples under events/: %v", err)
	}
	var out []benchCase
	for _, ev := range dirs {
		dir := filepath.Dir(ev)
		raw, err := os.ReadFile(ev)
		if err != nil {
			b.Fatal(err)
		}
		it, err := cloudtrail.Parse(raw)
		if err != nil || it.Denial == nil {
			continue // ignored samples and log files are not the hot path
		}
		w := &world.World{}
		if _, err := os.Stat(filepath.Join(dir, "world.json")); err == nil {
			if w, err = world.Load(filepath.Join(dir, "world.json")); err != nil {
				b.Fatal(err)
			}
		}
		out = append(out, benchCase{name: filepath.Base(dir), event: raw, world: w})
	}
	return out
}

// BenchmarkPipeline measures the whole pure pipeline for one event: parse, diagnose, patch,
// verify, and render the report JSON, averaged over the bundled samples.
func BenchmarkPipeline(b *testing.B) {
	cases := loadBenchCases(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &cases[i%len(cases)]
		it, err := cloudtrail.Parse(c.event)
		if err != nil {
			b.Fatal(err)
		}
		r := Explain(it, c.world)
		if _, err := r.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
