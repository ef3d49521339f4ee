package recipes

import (
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a bar on Common.Progress, or nothing when that is nil (not a terminal, tests). A stage
// that runs beside others (Common.shared) draws its part on their shared bar instead.
type progress struct {
	bar    *progressbar.ProgressBar
	shared *sharedBar
	index  int // this stage's slot in shared.descriptions
}

// newProgress is newProgress on c.Progress, or a part of c.shared when stages run side by side.
func (c Common) newProgress(max int64, description, unit string) *progress {
	if c.shared != nil {
		return c.shared.join(c.slot, max, description)
	}
	return newProgress(c.Progress, max, description, unit)
}

// sharedBar is one bar for stages that run at the same time (Reproduce trains the conditional model and
// the MLE baseline together): two bars redrawing one terminal line would garble it. The bar counts the
// units of all of them, so its rate and ETA are for the whole, and its text lists each stage's own.
type sharedBar struct {
	mu           sync.Mutex
	bar          *progressbar.ProgressBar // nil: no terminal
	max          int64
	descriptions []string
}

// newSharedBar starts an empty shared bar on w (nil = none) for n stages; each adds its units with join.
func newSharedBar(w io.Writer, unit string, n int) *sharedBar {
	s := &sharedBar{descriptions: make([]string, n)}
	if w != nil {
		s.bar = newProgress(w, 1, "", unit).bar
	}
	return s
}

// join adds a stage's units to the bar; slot is its place in the text, whichever stage starts first.
func (s *sharedBar) join(slot int, max int64, description string) *progress {
	s.mu.Lock()
	s.max += max
	if s.bar != nil {
		s.bar.ChangeMax64(s.max)
	}
	s.mu.Unlock()
	s.describe(slot, description)
	return &progress{shared: s, index: slot}
}

func (s *sharedBar) describe(slot int, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.descriptions[slot] = description
	if s.bar != nil {
		var parts []string
		for _, d := range s.descriptions {
			if d != "" {
				parts = append(parts, d)
			}
		}
		s.bar.Describe(strings.Join(parts, " | "))
	}
}

// finish clears the bar once every stage on it is done.
func (s *sharedBar) finish() {
	if s.bar != nil {
		_ = s.bar.Finish()
	}
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
	if p.shared != nil {
		p.shared.mu.Lock()
		defer p.shared.mu.Unlock()
		if p.shared.bar != nil {
			_ = p.shared.bar.Add64(n)
		}
		return
	}
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

// describe changes the text before the bar (for the current loss, say).
func (p *progress) describe(s string) {
	if p.shared != nil {
		p.shared.describe(p.index, s)
		return
	}
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

// done finishes the bar and clears it (a shared bar is finished by its owner).
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
