// Command chartpage writes an offline HTML page of a run's charts: the whole report, or only
// the charts named. With -fixture it first fills the run directory with the synthetic run of
// the charts' tests, so pages can be checked in a browser without training anything.
//
//	go run ./charts/internal/chartpage -run runs/notebook -out /tmp/p.html -charts loss,toxicity
//	go run ./charts/internal/chartpage -fixture -run /tmp/demo-run          # /tmp/demo-run/report.html
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/prefgpt/prefgpt/charts"
	"github.com/prefgpt/prefgpt/charts/internal/fixture"
	"github.com/prefgpt/prefgpt/rundir"
)

// blocks maps the names accepted by -charts to the blocks they draw.
var blocks = map[string]func(rundir.Dir) charts.Chart{
	"loss":       func(d rundir.Dir) charts.Chart { return charts.LossChart(d) },
	"lr":         func(d rundir.Dir) charts.Chart { return charts.LRChart(d) },
	"toxicity":   func(d rundir.Dir) charts.Chart { return charts.ToxicityChart(d, charts.MetricMean) },
	"max":        func(d rundir.Dir) charts.Chart { return charts.ToxicityChart(d, charts.MetricMax) },
	"frac":       func(d rundir.Dir) charts.Chart { return charts.ToxicityChart(d, charts.MetricFrac) },
	"likelihood": func(d rundir.Dir) charts.Chart { return charts.LikelihoodChart(d) },
	"histogram":  func(d rundir.Dir) charts.Chart { return charts.ScoreHistogram(d, "") },
	"eval":       func(d rundir.Dir) charts.Chart { return charts.EvalTable(d) },
	"data":       func(d rundir.Dir) charts.Chart { return charts.ManifestTable(d) },
}

func main() {
	run := flag.String("run", "", "run directory (required)")
	out := flag.String("out", "", "page to write (default RUN/report.html)")
	names := flag.String("charts", "", "comma-separated blocks (loss, lr, toxicity, max, frac, likelihood, histogram, eval, data); empty = the whole report")
	title := flag.String("title", "prefgpt", "page title (with -charts)")
	withFixture := flag.Bool("fixture", false, "first write the synthetic test run into -run")
	flag.Parse()
	if err := write(*run, *out, *names, *title, *withFixture); err != nil {
		fmt.Fprintln(os.Stderr, "chartpage:", err)
		os.Exit(1)
	}
}

func write(run, out, names, title string, withFixture bool) error {
	if run == "" {
		return fmt.Errorf("-run is required")
	}
	var dir rundir.Dir
	var err error
	if withFixture {
		dir, err = fixture.Write(run, fixture.Options{})
	} else {
		dir, err = rundir.Open(run)
	}
	if err != nil {
		return err
	}
	if out == "" {
		out = dir.Report()
	}
	var page []byte
	if names == "" {
		if page, err = charts.Report(dir); err != nil {
			return err
		}
	} else {
		var list []charts.Chart
		for _, n := range strings.Split(names, ",") {
			build, ok := blocks[strings.TrimSpace(n)]
			if !ok {
				return fmt.Errorf("-charts: unknown block %q", n)
			}
			list = append(list, build(dir))
		}
		page = charts.Page(title, list...)
	}
	if err := os.WriteFile(out, page, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	fmt.Println(out)
	return nil
}
