package recipes

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a bar on Common.Progress, or nothing when that is nil (not a terminal, tests).
type progress struct {
	bar *progressbar.ProgressBar
}

// newProgress draws a bar of max units; unit names what is counted ("tok" shows tokens/s).
func newProgress(w io.Writer, max int64, description, unit string) *progress {
	if w == nil {
		return &progress{}
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
	return &progress{bar: bar}
}

// add advances the bar by n units.
func (p *progress) add(n int64) {
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// describe changes the text before the bar (for the current loss, say).
func (p *progress) describe(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

// done finishes the bar and clears it.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
