package recipes

import (
	"context"
	"fmt"
	"html"
	"os"
	"os/signal"
	"syscall"

	"github.com/prefgpt/prefgpt/charts"
	"github.com/prefgpt/prefgpt/rundir"
)

// ReportResult says where the report is.
type ReportResult struct {
	Path   string
	Models []string
}

func (r ReportResult) String() string {
	return fmt.Sprintf("report: %s (models: %v) — open it in a browser, it works offline", r.Path, r.Models)
}

// HTML links the report for a notebook.
func (r ReportResult) HTML() string {
	return fmt.Sprintf(`<p>Report: <a href="%s" target="_blank">%s</a></p>`, html.EscapeString(r.Path), html.EscapeString(r.Path))
}

// Report is stage 6: report.html with every chart and table of the run (charts.Report), self-contained
// and offline.
func Report(ctx context.Context, o ReportOptions) (ReportResult, error) {
	dir, err := rundir.Open(o.Run)
	if err != nil {
		return ReportResult{}, err
	}
	page, err := charts.Report(dir)
	if err != nil {
		return ReportResult{}, err
	}
	if err := os.WriteFile(dir.Report(), page, 0o644); err != nil {
		return ReportResult{}, fmt.Errorf("writing the report: %w", err)
	}
	models, err := dir.Models()
	if err != nil {
		return ReportResult{}, err
	}
	res := ReportResult{Path: dir.Report(), Models: models}
	return res, nil
}

// InterruptContext is cancelled on the first SIGINT (Ctrl-C) or SIGTERM, so a stage can stop cleanly
// (training saves a checkpoint). A second signal kills the process as usual. Call stop when done.
func InterruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			fmt.Fprintf(os.Stderr, "\nprefgpt: %v: finishing the current step and saving (press again to kill)\n", sig)
			cancel()
			signal.Stop(ch)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
