package kernel

import (
	"html"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/schollz/progressbar/v3"
)

// Progress is where a long cell draws its progress, e.g. a recipe's Common.Progress. In a
// notebook it is one output block updated in place (gonbui.UpdateHTML with a stable id) showing
// the latest status line: the saved notebook keeps the final one. In a terminal it is
// os.Stderr, where the progress bar redraws itself.
func Progress() io.Writer {
	if !inNotebook() {
		return stderr
	}
	return &liveLine{id: "prefgpt-progress-" + gonbui.UniqueId()}
}

// NewBar is a progress bar over total units for a cell's own loops, drawn on Progress().
func NewBar(total int64, description string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(Progress()),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)
}

// ansi matches terminal escape sequences (colours, cursor moves) that mean nothing in HTML.
var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// liveLine turns terminal progress output, which redraws one line with '\r', into updates
// of a single notebook output: it shows the last line written.
type liveLine struct {
	id      string
	mu      sync.Mutex
	partial string // text after the last line break, not yet complete
	shown   string
}

func (l *liveLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := l.partial + ansi.ReplaceAllString(string(p), "")
	// Segments between '\r' and '\n'; the last one may still grow.
	segs := strings.FieldsFunc(buf, func(r rune) bool { return r == '\r' || r == '\n' })
	if strings.HasSuffix(buf, "\r") || strings.HasSuffix(buf, "\n") {
		l.partial = ""
	} else if len(segs) > 0 {
		l.partial = segs[len(segs)-1]
	}
	if len(segs) == 0 {
		return len(p), nil
	}
	// The bar redraws by writing a whole line after '\r'; a line of spaces is the bar clearing itself
	// when it finishes: the block is emptied then (the stage's result follows), rather than left at
	// the last throttled percentage.
	latest := strings.TrimSpace(segs[len(segs)-1])
	if latest != l.shown {
		l.shown = latest
		if latest == "" {
			update(l.id, "", "")
		} else {
			update(l.id, `<pre style="margin:0">`+html.EscapeString(latest)+"</pre>", latest)
		}
	}
	return len(p), nil
}
