package charts

import (
	"path/filepath"
	"testing"

	"github.com/prefgpt/prefgpt/charts/internal/fixture"
)

// BenchmarkReport builds the whole report of a run with 20,000 logged steps per model (two
// models), the size of a long training run: reading the JSONL files, thinning the curves
// and rendering the page. Target: well under a second, so a report never slows a stage.
func BenchmarkReport(b *testing.B) {
	dir, err := fixture.Write(filepath.Join(b.TempDir(), "run"), fixture.Options{Steps: 20000, Evals: 50})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var size int
	for b.Loop() {
		page, err := Report(dir)
		if err != nil {
			b.Fatal(err)
		}
		size = len(page)
	}
	b.ReportMetric(float64(size)/1e6, "MB/page")
}
