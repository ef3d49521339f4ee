// Package kernel is the notebook side of prefgpt: small display helpers for GoNB cells (charts,
// tables, Markdown, results of the recipes, live progress) that fall back to plain text in a
// terminal, and the run directory the notebooks share. kernel/install.sh installs Jupyter,
// GoNB and the "Go (prefgpt)" kernel.
//
// Every GoNB cell is a new process: state passes through the run directory, and the first
// cell of a notebook calls LoadCharts once so later cells can draw.
package kernel

import (
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"

	"github.com/prefgpt/prefgpt/charts"
	"github.com/prefgpt/prefgpt/rundir"
)

// The notebook and the terminal behind variables, so tests can watch what a cell would show.
// A notebook output carries HTML and a plain-text twin: front-ends that cannot show HTML
// (jupyter console) print the text instead.
var (
	inNotebook           = func() bool { return gonbui.IsNotebook }
	display              = func(html, text string) { send("", html, text) }
	update               = func(id, html, text string) { send(id, html, text) }
	displayMD            = gonbui.DisplayMarkdown
	stdout     io.Writer = os.Stdout
	stderr     io.Writer = os.Stderr
	exit                 = os.Exit
)

// send is one display_data (or update_display_data when id is set) with both representations.
// It waits until GoNB has taken the output: a cell that exits right after displaying something
// (a 1 MB library, say) would otherwise lose it now and then.
func send(id, html, text string) {
	gonbui.SendData(&protocol.DisplayData{
		Data:      map[protocol.MIMEType]any{protocol.MIMETextHTML: html, protocol.MIMETextPlain: text},
		DisplayID: id,
	})
	gonbui.Sync()
}

// InNotebook reports whether the program runs as a GoNB cell.
func InNotebook() bool { return inNotebook() }

// LoadCharts loads the ECharts library into the notebook page. Call it once, in the first cell
// of a notebook (it costs ~1 MB of output); charts shown later draw with it, in the live
// notebook and in its HTML export. Outside a notebook it does nothing.
func LoadCharts() {
	if !inNotebook() {
		return
	}
	note := fmt.Sprintf("ECharts %s loaded (offline copy).", charts.EChartsVersion)
	display(charts.Library()+`<p style="color:#555;font-size:90%">`+note+"</p>", note)
}

// RunsRoot is the folder that holds the notebooks' run directories: $PREFGPT_RUNS when set
// (CI points it at a temporary folder), else runs/ at the repository root (a notebook's folder
// is $GONB_DIR = <repo>/notebooks), else $PREFGPT_ROOT/runs, else ./runs.
func RunsRoot() string {
	if r := os.Getenv("PREFGPT_RUNS"); r != "" {
		return r
	}
	if d := os.Getenv("GONB_DIR"); d != "" {
		return filepath.Join(d, "..", "runs")
	}
	if root := os.Getenv("PREFGPT_ROOT"); root != "" {
		return filepath.Join(root, "runs")
	}
	return "runs"
}

// RunDir is the run directory called name under RunsRoot ("" = "notebook", the one the stage
// notebooks 01–06 share; the quickstart uses its own).
func RunDir(name string) string {
	if name == "" {
		name = "notebook"
	}
	return filepath.Join(RunsRoot(), name)
}

// Dir opens an existing run directory for the charts, ending the cell with a message that says
// which stage to run when it does not exist.
func Dir(run string) rundir.Dir {
	return Must(rundir.Open(run))
}

// Smoke reports whether notebooks should use the recipes' smoke settings (PREFGPT_SMOKE=1, set
// by scripts/notebooks.sh): every stage runs, on a budget too small to show the effect.
func Smoke() bool {
	v := strings.ToLower(os.Getenv("PREFGPT_SMOKE"))
	return v != "" && v != "0" && v != "false"
}

// Show displays each item in the notebook, or prints it in a terminal:
//   - charts.Chart (or []charts.Chart): the chart, table or problem, with its notes;
//   - a value with an HTML() string method (every recipes result): its HTML;
//   - error: a red box (stderr in a terminal);
//   - anything else: its text (String() or %v) in a <pre>.
func Show(items ...any) {
	for _, it := range items {
		switch v := it.(type) {
		case nil:
		case charts.Chart:
			show(v.HTML(), chartText(v))
		case []charts.Chart:
			for _, c := range v {
				show(c.HTML(), chartText(c))
			}
		case error:
			msg := "error: " + v.Error()
			if inNotebook() {
				display(`<pre style="color:#a00;background:#fff0f0;padding:6px 10px">`+html.EscapeString(msg)+"</pre>", msg)
			} else {
				fmt.Fprintln(stderr, msg)
			}
		case interface{ HTML() string }:
			show(v.HTML(), text(v))
		default:
			t := text(v)
			show("<pre>"+html.EscapeString(t)+"</pre>", t)
		}
	}
}

// show displays HTML (with its text twin) in a notebook and prints the text elsewhere.
func show(htmlText, plain string) {
	if inNotebook() {
		display(htmlText, plain)
		return
	}
	fmt.Fprintln(stdout, plain)
}

func text(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(v)
}

// chartText is a chart's plain-text form: its title and problem or kind, then its notes (the
// drawing itself needs a browser: a notebook or the run's report.html).
func chartText(c charts.Chart) string {
	var b strings.Builder
	switch {
	case c.Problem != "":
		fmt.Fprintf(&b, "%s: %s", c.Title, c.Problem)
	case c.Option != nil:
		fmt.Fprintf(&b, "%s: chart (drawn in a notebook or in report.html)", c.Title)
	case c.Headers != nil:
		fmt.Fprintf(&b, "%s\n%s", c.Title, tableText(c.Headers, c.Rows))
	default: // a section heading
		b.WriteString(strings.TrimSpace(stripTags(c.Table)))
	}
	for _, n := range c.Notes {
		b.WriteString("\n  " + n)
	}
	return b.String()
}

var tags = regexp.MustCompile(`<[^>]*>`)

// stripTags turns a small HTML fragment (a section heading) into text.
func stripTags(s string) string { return html.UnescapeString(tags.ReplaceAllString(s, "")) }

// ShowRun shows every chart and table of a run directory (the body of its report).
func ShowRun(run string) {
	dir, err := rundir.Open(run)
	if err != nil {
		Show(err)
		return
	}
	blocks, err := charts.ReportBlocks(dir)
	if err != nil {
		Show(err)
		return
	}
	Show(blocks)
}

// Table displays a table (escaped) in a notebook, or aligned columns in a terminal.
func Table(headers []string, rows [][]string) {
	show(charts.TableHTML(headers, rows), tableText(headers, rows))
}

// tableText aligns a table's columns for a terminal.
func tableText(headers []string, rows [][]string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
	return strings.TrimRight(b.String(), "\n")
}

// Markdown displays Markdown in a notebook, or prints it as is in a terminal.
func Markdown(md string) {
	if inNotebook() {
		displayMD(md)
		return
	}
	fmt.Fprintln(stdout, md)
}

// Check ends the cell when err is not nil: the error is printed, pending display output is
// flushed and the process exits with status 1, so the cell fails (and so does a headless run).
func Check(err error) {
	if err == nil {
		return
	}
	if inNotebook() {
		gonbui.Sync()
	}
	fmt.Fprintln(stderr, "error:", err)
	exit(1)
}

// Must returns v, or ends the cell like Check when err is not nil.
func Must[T any](v T, err error) T {
	Check(err)
	return v
}
