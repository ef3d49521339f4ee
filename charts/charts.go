// Package charts draws the run directory: loss and learning-rate curves, sampled toxicity,
// the control-token likelihood test, the score histogram of the data stage and tables of
// samples. It reads only run-directory files (package rundir), so a chart can be drawn
// from any run, finished, resumed or still training, without loading a model.
//
// Charts are ECharts options built with go-echarts. They render offline: the ECharts
// library is embedded in the binary (assets/echarts.min.js, Apache-2.0) and emitted once per
// page, wrapped so that RequireJS (loaded by the classic Notebook and by nbconvert's HTML)
// does not capture it. A chart whose files are missing says so in place of the chart.
package charts

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"strings"
)

//go:embed assets/echarts.min.js
var echartsJS string

// EChartsVersion is the version of the embedded ECharts library.
const EChartsVersion = "5.6.0"

// Chart is one block of a page: an ECharts chart, an HTML fragment (a table), or both
// missing with Problem saying why (for example which file is missing and which stage writes it).
type Chart struct {
	ID     string          // DOM id of the chart's div; unique across processes (notebook cells)
	Title  string          // heading shown above the block
	Option json.RawMessage // ECharts option; nil for tables and for charts that could not be drawn
	Table  string          // already-escaped HTML for table blocks
	// Headers and Rows are a table block's cells, for text front-ends (a terminal, jupyter console).
	Headers []string
	Rows    [][]string
	// Problem explains why nothing could be drawn; Notes are remarks drawn under the block
	// (a model without data, values clamped for a log axis...).
	Problem string
	Notes   []string
}

// OK reports whether the block has something to show.
func (c Chart) OK() bool { return c.Problem == "" && (c.Option != nil || c.Table != "") }

// newID returns a DOM id that does not repeat between notebook cells (each cell is a new
// process, so a counter alone would repeat and getElementById would find an older chart).
func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("charts: reading random bytes: %v", err)) // crypto/rand does not fail on Linux
	}
	return "prefgpt-chart-" + hex.EncodeToString(b[:])
}

// problem is a block that could not be drawn.
func problem(title, format string, args ...any) Chart {
	return Chart{ID: newID(), Title: title, Problem: fmt.Sprintf(format, args...)}
}

// fromGoEcharts turns a go-echarts chart into a block: the option JSON only (we write our own
// init script, see HTML), HTML-escaped so a title or label cannot close the <script>.
func fromGoEcharts(title string, c interface {
	Validate()
	JSONNotEscaped() template.HTML
}) Chart {
	c.Validate()
	raw := []byte(string(c.JSONNotEscaped()))
	var buf bytes.Buffer
	json.HTMLEscape(&buf, bytes.TrimSpace(raw))
	return Chart{ID: newID(), Title: title, Option: json.RawMessage(buf.Bytes())}
}

// HTML is the block without the library: a heading, the chart's div and its init script
// (or the table, or the problem), then the notes. Load the library first (Library or Page).
func (c Chart) HTML() string {
	var b strings.Builder
	b.WriteString(`<div class="prefgpt-block">`)
	if c.Title != "" {
		fmt.Fprintf(&b, "<h3>%s</h3>\n", html.EscapeString(c.Title))
	}
	switch {
	case c.Problem != "":
		fmt.Fprintf(&b, `<p class="prefgpt-problem" style="color:#8a4b00;background:#fff6e5;padding:6px 10px;border-left:3px solid #e0a040">%s</p>`+"\n",
			html.EscapeString(c.Problem))
	case c.Option != nil:
		fmt.Fprintf(&b, `<div id="%s" class="prefgpt-chart" style="width:100%%;max-width:960px;height:420px"></div>`+"\n", c.ID)
		fmt.Fprintf(&b, "<script>\n%s</script>\n", initScript(c.ID, c.Option))
	}
	if c.Table != "" {
		b.WriteString(c.Table)
	}
	for _, n := range c.Notes {
		fmt.Fprintf(&b, `<p class="prefgpt-note" style="color:#555;font-size:90%%">%s</p>`+"\n", html.EscapeString(n))
	}
	b.WriteString("</div>\n")
	return b.String()
}

// initScript draws one chart. It finds its div next to itself first (JupyterLab runs output
// scripts before attaching them to the document) and falls back to the id; it sizes the
// chart explicitly when the div has no layout yet and follows later resizes. The
// data-prefgpt-chart attribute records the outcome so headless checks can read it from the DOM.
func initScript(id string, option json.RawMessage) string {
	return fmt.Sprintf(`(function () {
  var id = %q;
  var s = document.currentScript;
  var el = (s && s.previousElementSibling && s.previousElementSibling.id === id) ? s.previousElementSibling : document.getElementById(id);
  if (!el) { return; }
  if (typeof window.echarts === "undefined") {
    el.setAttribute("data-prefgpt-chart", "no-echarts");
    el.style.height = "auto";
    el.textContent = "ECharts is not loaded: run kernel.LoadCharts() in an earlier cell (or view the page made by charts.Page).";
    return;
  }
  try {
    var chart = window.echarts.init(el, null, {renderer: "canvas", width: el.clientWidth || 900, height: el.clientHeight || 420});
    chart.setOption(%s);
    el.setAttribute("data-prefgpt-chart", "ok");
    if (window.ResizeObserver) { new ResizeObserver(function () { chart.resize(); }).observe(el); }
  } catch (e) {
    el.setAttribute("data-prefgpt-chart", "error");
    el.textContent = "chart error: " + e;
    throw e;
  }
})();
`, id, option)
}

// Library is the <script> that defines window.echarts. Emit it once per page or notebook,
// before any chart. The wrapper hides RequireJS' define/exports/module so the UMD bundle
// sets the global instead of registering an anonymous AMD module ("echarts is not defined").
// A second copy on the same page does nothing.
func Library() string {
	var b strings.Builder
	b.Grow(len(echartsJS) + 512)
	b.WriteString("<script>\n/* Apache ECharts ")
	b.WriteString(EChartsVersion)
	b.WriteString(", Apache License 2.0, https://echarts.apache.org */\n")
	b.WriteString("(function (define, exports, module) {\nif (window.echarts) { return; }\n")
	b.WriteString(echartsJS)
	b.WriteString("\n}).call(window);\n</script>\n")
	return b.String()
}

// Fragment is the HTML of several blocks without the library (for a notebook cell, after
// the library was loaded once).
func Fragment(blocks ...Chart) string {
	var b strings.Builder
	for _, c := range blocks {
		b.WriteString(c.HTML())
	}
	return b.String()
}

// pageCSS keeps the report readable without any external stylesheet.
const pageCSS = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:1.1em;margin:1.2em 0 .4em}
table.prefgpt-table{border-collapse:collapse;margin:8px 0;font-size:92%}
table.prefgpt-table th,table.prefgpt-table td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
table.prefgpt-table th{background:#f4f4f4}table.prefgpt-table td.num{text-align:right;font-variant-numeric:tabular-nums}
.prefgpt-block{margin-bottom:18px}`

// Page is a standalone offline HTML page: the library once, then the blocks.
func Page(title string, blocks ...Chart) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<style>%s</style>\n",
		html.EscapeString(title), pageCSS)
	b.WriteString(Library())
	b.WriteString("</head>\n<body>\n")
	fmt.Fprintf(&b, "<h1>%s</h1>\n", html.EscapeString(title))
	b.WriteString(Fragment(blocks...))
	b.WriteString("</body>\n</html>\n")
	return []byte(b.String())
}
