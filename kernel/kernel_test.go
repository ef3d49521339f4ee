package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prefgpt/prefgpt/charts"
	"github.com/prefgpt/prefgpt/rundir"
)

// fakeNotebook records what cells would display.
type fakeNotebook struct {
	html    []string
	text    []string // the plain-text twin of each html output
	md      []string
	updates map[string][]string
	out     bytes.Buffer
	errOut  bytes.Buffer
	exited  int
}

func useFake(t *testing.T, notebook bool) *fakeNotebook {
	t.Helper()
	f := &fakeNotebook{updates: map[string][]string{}, exited: -1}
	savedIn, savedDisplay, savedMD, savedUpdate := inNotebook, display, displayMD, update
	savedOut, savedErr, savedExit := stdout, stderr, exit
	inNotebook = func() bool { return notebook }
	display = func(h, t string) { f.html, f.text = append(f.html, h), append(f.text, t) }
	displayMD = func(s string) { f.md = append(f.md, s) }
	update = func(id, h, _ string) { f.updates[id] = append(f.updates[id], h) }
	stdout, stderr = &f.out, &f.errOut
	exit = func(code int) { f.exited = code }
	t.Cleanup(func() {
		inNotebook, display, displayMD, update = savedIn, savedDisplay, savedMD, savedUpdate
		stdout, stderr, exit = savedOut, savedErr, savedExit
	})
	return f
}

type result struct{ n int }

func (r result) String() string { return fmt.Sprintf("result %d <ok>", r.n) }
func (r result) HTML() string   { return fmt.Sprintf("<b>result %d</b>", r.n) }

func TestShowInNotebook(t *testing.T) {
	f := useFake(t, true)
	LoadCharts()
	if len(f.html) != 1 || !strings.Contains(f.html[0], "(function (define, exports, module)") {
		t.Fatalf("LoadCharts should display the wrapped library once")
	}
	chart := charts.Table("T", []string{"a"}, [][]string{{"<x>"}})
	Show(chart, result{3}, errors.New("bad <thing>"), 42)
	got := f.html[1:]
	if len(got) != 4 {
		t.Fatalf("want 4 outputs, got %d", len(got))
	}
	if !strings.Contains(got[0], "&lt;x&gt;") || !strings.Contains(got[1], "<b>result 3</b>") ||
		!strings.Contains(got[2], "error: bad &lt;thing&gt;") || got[3] != "<pre>42</pre>" {
		t.Errorf("outputs:\n%s", strings.Join(got, "\n"))
	}
	// Front-ends without HTML (jupyter console) print the text twin.
	wantText := []string{"T\na\n<x>", "result 3 <ok>", "error: bad <thing>", "42"}
	if strings.Join(f.text[1:], "|") != strings.Join(wantText, "|") {
		t.Errorf("text twins %q, want %q", f.text[1:], wantText)
	}
	Markdown("# hi")
	if len(f.md) != 1 || f.md[0] != "# hi" {
		t.Errorf("markdown: %q", f.md)
	}
	if f.out.Len() != 0 {
		t.Errorf("nothing should be printed in a notebook, got %q", f.out.String())
	}
}

func TestShowInTerminal(t *testing.T) {
	f := useFake(t, false)
	LoadCharts()
	Show(result{7}, errors.New("oops"), charts.Chart{Title: "Loss", Problem: "metrics.jsonl is missing"})
	Table([]string{"model", "loss"}, [][]string{{"conditional", "3.1"}, {"mle", "3.25"}})
	if len(f.html) != 0 {
		t.Errorf("no HTML outside a notebook")
	}
	out := f.out.String()
	for _, want := range []string{"result 7 <ok>", "Loss: metrics.jsonl is missing", "model        loss", "conditional  3.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(f.errOut.String(), "error: oops") {
		t.Errorf("errors go to stderr: %q", f.errOut.String())
	}
}

func TestShowRunMissingAndPresent(t *testing.T) {
	f := useFake(t, true)
	ShowRun(filepath.Join(t.TempDir(), "missing"))
	if len(f.html) != 1 || !strings.Contains(f.html[0], "does not exist") {
		t.Fatalf("missing run: %q", f.html)
	}
	f.html = nil
	dir, _ := rundir.Create(filepath.Join(t.TempDir(), "run"))
	ShowRun(dir.Root)
	blocks, _ := charts.ReportBlocks(dir)
	if len(f.html) != len(blocks) {
		t.Errorf("ShowRun displayed %d blocks, want %d", len(f.html), len(blocks))
	}
}

func TestCheckExitsOnError(t *testing.T) {
	f := useFake(t, false)
	Check(nil)
	if f.exited != -1 {
		t.Fatal("Check(nil) must not exit")
	}
	if v := Must(5, nil); v != 5 {
		t.Errorf("Must returned %d", v)
	}
	Check(fmt.Errorf("train: %w", errors.New("no data")))
	if f.exited != 1 || !strings.Contains(f.errOut.String(), "error: train: no data") {
		t.Errorf("exit %d, stderr %q", f.exited, f.errOut.String())
	}
}

func TestRunDirAndSmoke(t *testing.T) {
	t.Setenv("PREFGPT_RUNS", "")
	t.Setenv("GONB_DIR", "/repo/notebooks")
	if got := RunDir(""); got != "/repo/runs/notebook" {
		t.Errorf("from GONB_DIR: %q", got)
	}
	t.Setenv("PREFGPT_RUNS", "/tmp/x")
	if got := RunDir("quickstart"); got != "/tmp/x/quickstart" {
		t.Errorf("PREFGPT_RUNS wins: %q", got)
	}
	t.Setenv("PREFGPT_RUNS", "")
	t.Setenv("GONB_DIR", "")
	t.Setenv("PREFGPT_ROOT", "/r")
	if got := RunDir(""); got != "/r/runs/notebook" {
		t.Errorf("from PREFGPT_ROOT: %q", got)
	}
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "yes": true} {
		t.Setenv("PREFGPT_SMOKE", v)
		if Smoke() != want {
			t.Errorf("PREFGPT_SMOKE=%q: Smoke() = %v", v, !want)
		}
	}
}

func TestDirEndsTheCellWhenMissing(t *testing.T) {
	f := useFake(t, false)
	dir := Dir(t.TempDir())
	if f.exited != -1 || dir.Root == "" {
		t.Fatalf("existing run: exit %d", f.exited)
	}
	Dir(filepath.Join(t.TempDir(), "nope"))
	if f.exited != 1 || !strings.Contains(f.errOut.String(), "does not exist") {
		t.Errorf("missing run: exit %d, %q", f.exited, f.errOut.String())
	}
}

func TestProgressUpdatesOneBlockInPlace(t *testing.T) {
	f := useFake(t, true)
	w := Progress()
	fmt.Fprint(w, "\rtrain  10% |██        | (1/10)")
	fmt.Fprint(w, "\r\x1b[32mtrain\x1b[0m  20% |████      | (2/10)")
	fmt.Fprint(w, "\rtrain  20% |████      | (2/10)")        // unchanged: no update
	fmt.Fprint(w, "\r                                   \r") // the bar clears itself when done: the block empties
	fmt.Fprint(w, "\reval  5% |█         | (1/20)")          // the next stage's bar
	if len(f.updates) != 1 {
		t.Fatalf("want one output block, got %d", len(f.updates))
	}
	for id, ups := range f.updates {
		if !strings.HasPrefix(id, "prefgpt-progress-") {
			t.Errorf("display id %q", id)
		}
		if len(ups) != 4 || !strings.Contains(ups[0], "10%") || !strings.Contains(ups[1], "train  20%") ||
			strings.Contains(ups[1], "\x1b") || ups[2] != "" || !strings.Contains(ups[3], "eval  5%") {
			t.Errorf("updates %q", ups)
		}
	}
	if Progress().(*liveLine).id == w.(*liveLine).id {
		t.Error("each Progress() is its own output block")
	}
}

func TestProgressBarInNotebookAndTerminal(t *testing.T) {
	f := useFake(t, true)
	bar := NewBar(4, "sampling")
	for range 4 {
		bar.Add(1)
		time.Sleep(time.Millisecond)
	}
	bar.Finish()
	var last string
	for _, ups := range f.updates {
		last = ups[len(ups)-1]
	}
	if !strings.Contains(last, "sampling") || !strings.Contains(last, "100%") || !strings.Contains(last, "(4/4") {
		t.Errorf("final notebook progress %q should show the finished bar", last)
	}
	g := useFake(t, false)
	if Progress() != any(&g.errOut) {
		t.Error("outside a notebook progress goes to stderr")
	}
}
