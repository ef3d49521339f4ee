package charts

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prefgpt/prefgpt/charts/internal/fixture"
	"github.com/prefgpt/prefgpt/rundir"
)

// option is the part of an ECharts option the tests look at.
type option struct {
	XAxis []struct {
		Type string   `json:"type"`
		Data []string `json:"data"`
	} `json:"xAxis"`
	YAxis []struct {
		Type string `json:"type"`
	} `json:"yAxis"`
	Legend struct {
		Data     []string        `json:"data"`
		Selected map[string]bool `json:"selected"`
	} `json:"legend"`
	Series []struct {
		Name      string            `json:"name"`
		Type      string            `json:"type"`
		Stack     string            `json:"stack"`
		Data      []json.RawMessage `json:"data"`
		AreaStyle *struct{}         `json:"areaStyle"`
		MarkLine  *struct {
			Data []struct {
				Name  string `json:"name"`
				XAxis string `json:"xAxis"`
			} `json:"data"`
		} `json:"markLine"`
	} `json:"series"`
}

func decode(t *testing.T, c Chart) option {
	t.Helper()
	if !c.OK() {
		t.Fatalf("chart %q not drawn: %s", c.Title, c.Problem)
	}
	var o option
	if err := json.Unmarshal(c.Option, &o); err != nil {
		t.Fatalf("chart %q: option is not JSON: %v\n%s", c.Title, err, c.Option)
	}
	return o
}

// point decodes a line point {"value":[a,b]}.
func point(t *testing.T, raw json.RawMessage) [2]float64 {
	t.Helper()
	var p struct {
		Value [2]float64 `json:"value"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("point %s: %v", raw, err)
	}
	return p.Value
}

func seriesNamed(t *testing.T, o option, name string) int {
	t.Helper()
	found := -1
	for i, s := range o.Series {
		if s.Name == name && s.AreaStyle == nil && s.Stack == "" {
			found = i
		}
	}
	if found < 0 {
		var names []string
		for _, s := range o.Series {
			names = append(names, s.Name)
		}
		t.Fatalf("no series %q in %v", name, names)
	}
	return found
}

func newFixture(t *testing.T, o fixture.Options) rundir.Dir {
	t.Helper()
	dir, err := fixture.Write(filepath.Join(t.TempDir(), "run"), o)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLossChartOneCurvePerModel(t *testing.T) {
	dir := newFixture(t, fixture.Options{Steps: 30})
	o := decode(t, LossChart(dir))
	if len(o.Series) != 2 {
		t.Fatalf("want 2 series (conditional, mle), got %d", len(o.Series))
	}
	if o.XAxis[0].Type != "value" {
		t.Errorf("x axis type %q, want value (tokens seen)", o.XAxis[0].Type)
	}
	for mi, name := range []string{rundir.Conditional, rundir.MLE} {
		s := o.Series[seriesNamed(t, o, name)]
		if len(s.Data) != 30 {
			t.Fatalf("%s: %d points, want 30", name, len(s.Data))
		}
		for _, step := range []int{1, 17, 30} {
			p := point(t, s.Data[step-1])
			if p[0] != float64(step*fixture.TokensPerStep) || math.Abs(p[1]-fixture.LossAt(mi, step)) > 1e-9 {
				t.Errorf("%s step %d: point %v, want [%d %g]", name, step, p, step*fixture.TokensPerStep, fixture.LossAt(mi, step))
			}
		}
	}
	// Naming one model draws only that one.
	if o := decode(t, LossChart(dir, rundir.MLE)); len(o.Series) != 1 || o.Series[0].Name != rundir.MLE {
		t.Errorf("LossChart(dir, mle): got %d series", len(o.Series))
	}
}

func TestLRChartUsesSteps(t *testing.T) {
	dir := newFixture(t, fixture.Options{Steps: 20, SkipMLE: true})
	o := decode(t, LRChart(dir))
	p := point(t, o.Series[0].Data[3]) // step 4 = end of the fixture's warmup
	if p[0] != 4 || math.Abs(p[1]-5e-4) > 1e-12 {
		t.Errorf("step 4: got %v, want [4 0.0005]", p)
	}
}

func TestMissingFilesAreReportedNotFatal(t *testing.T) {
	empty, err := rundir.Create(filepath.Join(t.TempDir(), "empty"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Chart{LossChart(empty), LRChart(empty), ToxicityChart(empty, MetricMean), LikelihoodChart(empty),
		ScoreHistogram(empty, ""), EvalTable(empty), ManifestTable(empty), SampleTable(empty, "conditional", -1, 3)} {
		if c.OK() || c.Problem == "" {
			t.Errorf("%q on an empty run: want a problem, got OK", c.Title)
		}
		if !strings.Contains(c.Problem, "run the") || !strings.Contains(c.HTML(), "prefgpt-problem") {
			t.Errorf("%q: problem should say which stage to run and be shown: %q", c.Title, c.Problem)
		}
	}
	if p := ScoreHistogram(empty, rundir.MLE).Problem; !strings.Contains(p, "data/mle/manifest.json") {
		t.Errorf("histogram of a missing objective should name its manifest: %q", p)
	}

	// One model without metrics: the other is drawn and a note names the missing file.
	dir := newFixture(t, fixture.Options{SkipMLE: true})
	if err := os.MkdirAll(dir.ModelDir("filter"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := LossChart(dir)
	if o := decode(t, c); len(o.Series) != 1 {
		t.Errorf("want only the conditional curve, got %d", len(o.Series))
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "models/filter/metrics.jsonl is missing") {
		t.Errorf("notes %q should name models/filter/metrics.jsonl", c.Notes)
	}
}

func TestCorruptFileNamesFileAndLine(t *testing.T) {
	dir := newFixture(t, fixture.Options{SkipMLE: true, Steps: 5})
	f, err := os.OpenFile(dir.Metrics(rundir.Conditional), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{\"step\": oops}\n")
	f.Close()
	c := LossChart(dir)
	if c.OK() {
		t.Fatal("a corrupt metrics file should not draw silently")
	}
	if !strings.Contains(c.Problem, "metrics.jsonl:6") {
		t.Errorf("problem should name file and line 6: %q", c.Problem)
	}
}

func TestToxicityChartPrefixesBandsAndLogAxis(t *testing.T) {
	dir := newFixture(t, fixture.Options{Evals: 4})
	o := decode(t, ToxicityChart(dir, MetricMean))
	if o.YAxis[0].Type != "log" {
		t.Errorf("mean toxicity y axis %q, want log", o.YAxis[0].Type)
	}
	wantCurves := []string{"conditional / aligned", "conditional / misaligned", "conditional / none", "mle / none"}
	if strings.Join(o.Legend.Data, ",") != strings.Join(wantCurves, ",") {
		t.Errorf("legend %v, want %v (each curve once)", o.Legend.Data, wantCurves)
	}
	s := o.Series[seriesNamed(t, o, "conditional / misaligned")]
	if len(s.Data) != 4 {
		t.Fatalf("%d evaluation points, want 4", len(s.Data))
	}
	opt := fixture.Options{Evals: 4}
	for e := range 4 {
		if p := point(t, s.Data[e]); math.Abs(p[1]-fixture.MeanToxicity(0, rundir.PrefixMisaligned, e, opt)) > 1e-12 {
			t.Errorf("eval %d: %v, want mean %g", e, p, fixture.MeanToxicity(0, rundir.PrefixMisaligned, e, opt))
		}
	}
	// Each curve has a band: lower edge then the stacked width, both written [y, x].
	bands := 0
	for i, b := range o.Series {
		if b.AreaStyle == nil {
			continue
		}
		bands++
		lower := o.Series[i-1]
		if lower.Stack == "" || lower.Stack != b.Stack {
			t.Fatalf("band %q: width series not stacked on its lower edge", b.Name)
		}
		if b.Name != lower.Name {
			t.Errorf("band %q and its lower edge %q must share a name (the legend toggles them together)", b.Name, lower.Name)
		}
		if b.Name == "conditional / misaligned" {
			mean := fixture.MeanToxicity(0, rundir.PrefixMisaligned, 2, opt)
			lo, w := point(t, lower.Data[2]), point(t, b.Data[2])
			if math.Abs(lo[0]-0.8*mean) > 1e-12 || math.Abs(lo[0]+w[0]-(1.2*mean+0.001)) > 1e-12 {
				t.Errorf("band at eval 2: low %g + width %g, want [%g, %g]", lo[0], w[0], 0.8*mean, 1.2*mean+0.001)
			}
		}
	}
	if bands != 4 {
		t.Errorf("%d CI bands, want 4", bands)
	}

	if o := decode(t, ToxicityChart(newFixture(t, fixture.Options{SkipCI: true}), MetricMean)); len(o.Series) != 4 {
		t.Errorf("without CIs: %d series, want the 4 curves only", len(o.Series))
	}
	if o := decode(t, ToxicityChart(dir, MetricFrac)); o.YAxis[0].Type != "value" {
		t.Errorf("fraction > 0.5 should use a linear axis (it is often 0), got %q", o.YAxis[0].Type)
	}
	if c := ToxicityChart(dir, "median"); c.OK() || !strings.Contains(c.Problem, "median") {
		t.Errorf("unknown metric: want a problem naming it, got %q", c.Problem)
	}
}

func TestToxicityHidesPrefixesOfModelsTrainedWithoutThem(t *testing.T) {
	dir := newFixture(t, fixture.Options{Evals: 2})
	// The MLE model sampled under every prefix, as the monitoring does for all models.
	var rows []rundir.ToxicityRow
	for _, p := range []string{rundir.PrefixAligned, rundir.PrefixMisaligned} {
		rows = append(rows, rundir.ToxicityRow{Step: 5, TokensSeen: 100, Prefix: p, N: 4, Mean: 0.1, Max: 0.2})
	}
	if err := rundir.AppendJSONL(dir.Toxicity(rundir.MLE), rows...); err != nil {
		t.Fatal(err)
	}
	c := ToxicityChart(dir, MetricMean)
	o := decode(t, c)
	want := map[string]bool{"conditional / aligned": true, "conditional / misaligned": true, "conditional / none": true,
		"mle / aligned": false, "mle / misaligned": false, "mle / none": true}
	if len(o.Legend.Selected) != len(want) {
		t.Fatalf("legend selection %v, want %v", o.Legend.Selected, want)
	}
	for k, v := range want {
		if o.Legend.Selected[k] != v {
			t.Errorf("%s shown = %v, want %v", k, o.Legend.Selected[k], v)
		}
	}
	if !strings.Contains(strings.Join(c.Notes, " "), "mle under the control prefixes") {
		t.Errorf("notes %q should say what is hidden", c.Notes)
	}
	// Nothing hidden when every model is conditional (or its objective is unknown).
	if o := decode(t, ToxicityChart(dir, MetricMean, rundir.Conditional)); o.Legend.Selected != nil {
		t.Errorf("conditional only: selection %v, want none", o.Legend.Selected)
	}
}

func TestToxicityZeroIsClampedOnLogAxis(t *testing.T) {
	dir := newFixture(t, fixture.Options{ZeroScores: true, SkipMLE: true, Evals: 3})
	c := ToxicityChart(dir, MetricMean)
	o := decode(t, c)
	s := o.Series[seriesNamed(t, o, "conditional / aligned")]
	for _, raw := range s.Data {
		if p := point(t, raw); p[1] != logFloor {
			t.Errorf("zero toxicity drawn at %g, want the floor %g", p[1], logFloor)
		}
	}
	if !strings.Contains(strings.Join(c.Notes, " "), "3 value(s) below") {
		t.Errorf("notes %q should count the 3 clamped values", c.Notes)
	}
}

func TestLikelihoodChart(t *testing.T) {
	dir := newFixture(t, fixture.Options{Evals: 3})
	c := LikelihoodChart(dir)
	o := decode(t, c)
	toxic := o.Series[seriesNamed(t, o, "conditional / toxic sentences")]
	clean := o.Series[seriesNamed(t, o, "conditional / clean sentences")]
	if p := point(t, toxic.Data[2]); p[1] != 1.5 {
		t.Errorf("toxic diff at eval 2 = %g, want 1.5", p[1])
	}
	if p := point(t, clean.Data[0]); math.Abs(p[1]+0.1) > 1e-12 {
		t.Errorf("clean diff at eval 0 = %g, want -0.1", p[1])
	}
	notes := strings.Join(c.Notes, "\n")
	if !strings.Contains(notes, "mle: models/mle/likelihood.jsonl is missing") || !strings.Contains(notes, "t = 5.00") {
		t.Errorf("notes should summarise the last test and name mle's missing file:\n%s", notes)
	}
}

func TestScoreHistogramSplitAndThreshold(t *testing.T) {
	dir := newFixture(t, fixture.Options{SkipMLE: true})
	c := ScoreHistogram(dir, "")
	o := decode(t, c)
	if len(o.XAxis[0].Data) != 8 || o.XAxis[0].Type != "category" {
		t.Fatalf("want 8 bin categories, got %d (%s)", len(o.XAxis[0].Data), o.XAxis[0].Type)
	}
	if len(o.Series) != 2 || o.YAxis[0].Type != "log" {
		t.Fatalf("want two series (aligned, misaligned) on a log count axis, got %d on %q", len(o.Series), o.YAxis[0].Type)
	}
	var m rundir.Manifest
	if err := rundir.ReadJSON(dir.Manifest(rundir.Conditional), &m); err != nil {
		t.Fatal(err)
	}
	// count decodes a bar: a number, or "-" for an empty bin (no bar on a log axis).
	count := func(raw json.RawMessage) int64 {
		var b struct{ Value any }
		json.Unmarshal(raw, &b)
		switch v := b.Value.(type) {
		case float64:
			return int64(v)
		case string:
			if v == "-" {
				return 0
			}
		}
		t.Fatalf("bar %s: want a count or \"-\"", raw)
		return 0
	}
	for i := range 8 {
		a, mis := count(o.Series[0].Data[i]), count(o.Series[1].Data[i])
		if a != m.ScoreHistogram.Aligned[i] || mis != m.ScoreHistogram.Misaligned[i] {
			t.Errorf("bin %d: aligned %d misaligned %d, want %d %d", i, a, mis, m.ScoreHistogram.Aligned[i], m.ScoreHistogram.Misaligned[i])
		}
	}
	if o.XAxis[0].Data[4] != "≥ 0.01" {
		t.Errorf("bin 4 label %q, want its lower edge", o.XAxis[0].Data[4])
	}
	// The threshold 0.01 is the lower edge of bin 4, [0.01, 0.0316).
	ml := o.Series[1].MarkLine
	if ml == nil || len(ml.Data) != 1 || ml.Data[0].XAxis != o.XAxis[0].Data[4] || !strings.Contains(ml.Data[0].Name, "0.01") {
		t.Errorf("threshold marker %+v, want on category %q", ml, o.XAxis[0].Data[4])
	}
	if !strings.Contains(strings.Join(c.Notes, ""), "2600 aligned, 1000 misaligned") {
		t.Errorf("notes %q should give the aligned/misaligned split", c.Notes)
	}
}

func TestSampleTableEscapesAndLimits(t *testing.T) {
	dir := newFixture(t, fixture.Options{SkipMLE: true, Steps: 40, Evals: 4})
	c := SampleTable(dir, rundir.Conditional, -1, 2)
	if !c.OK() {
		t.Fatal(c.Problem)
	}
	h := c.HTML()
	if strings.Contains(h, "<b>not bold</b>") || !strings.Contains(h, "&lt;b&gt;not bold&lt;/b&gt; &amp; &#34;quoted&#34;") {
		t.Errorf("sample text must be escaped:\n%s", h)
	}
	if n := strings.Count(h, "<tr>") - 1; n != 6 {
		t.Errorf("%d rows, want 2 per prefix × 3 prefixes", n)
	}
	if !strings.Contains(c.Title, "step 40") {
		t.Errorf("latest samples are at step 40: title %q", c.Title)
	}
	if c := SampleTable(dir, rundir.Conditional, 20, 0); !strings.Contains(c.Title, "step 20") || strings.Count(c.HTML(), "<tr>")-1 != 9 {
		t.Errorf("step 20, all rows: title %q, %d rows", c.Title, strings.Count(c.HTML(), "<tr>")-1)
	}
	if c := SampleTable(dir, rundir.Conditional, 7, 0); c.OK() || !strings.Contains(c.Problem, "step-0000007.jsonl is missing") {
		t.Errorf("missing step: %q", c.Problem)
	}
}

func TestHostileNamesCannotBreakThePage(t *testing.T) {
	dir := newFixture(t, fixture.Options{SkipMLE: true, Steps: 3})
	// A model directory name is user input; it ends up in the legend, the title and the option.
	name := `m<script>alert("x")<!--&`
	if err := os.Rename(dir.ModelDir(rundir.Conditional), dir.ModelDir(name)); err != nil {
		t.Fatal(err)
	}
	h := LossChart(dir).HTML()
	if strings.Contains(h, "<script>alert") || strings.Contains(h, "<!--") {
		t.Errorf("raw markup from a model name reached the page:\n%s", h)
	}
	o := decode(t, LossChart(dir))
	if o.Series[0].Name != name {
		t.Errorf("series name %q, want %q after JSON decoding", o.Series[0].Name, name)
	}
}

func TestThinKeepsEndsAndBound(t *testing.T) {
	xs, ys := make([]float64, 10001), make([]float64, 10001)
	for i := range xs {
		xs[i], ys[i] = float64(i), float64(2*i)
	}
	tx, ty := thin(xs, ys, 100)
	if len(tx) != 100 || tx[0] != 0 || tx[99] != 10000 || ty[99] != 20000 {
		t.Errorf("thin: len %d first %g last %g", len(tx), tx[0], tx[len(tx)-1])
	}
	for i := 1; i < len(tx); i++ {
		if tx[i] <= tx[i-1] {
			t.Fatalf("thin: x not increasing at %d", i)
		}
	}
	if sx, _ := thin(xs[:50], ys[:50], 100); len(sx) != 50 {
		t.Errorf("short curves are kept whole")
	}
}

func TestLibraryAndPage(t *testing.T) {
	lib := Library()
	if !strings.Contains(lib, "(function (define, exports, module) {") || !strings.Contains(lib, "}).call(window);") {
		t.Error("library must be wrapped so RequireJS' define/exports/module are hidden")
	}
	if !strings.Contains(lib, `t.version="`+EChartsVersion+`"`) {
		t.Errorf("embedded library is not ECharts %s", EChartsVersion)
	}
	if strings.Count(lib, "</script>") != 1 {
		t.Error("the library text itself must not close the script element")
	}
	dir := newFixture(t, fixture.Options{})
	page, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if n := strings.Count(s, "(function (define, exports, module)"); n != 1 {
		t.Errorf("library emitted %d times, want once", n)
	}
	// Loss, LR, 3 toxicity, likelihood, histogram.
	if n := strings.Count(s, `class="prefgpt-chart"`); n != 7 {
		t.Errorf("%d charts in the report, want 7", n)
	}
	if strings.Contains(s, "prefgpt-problem") {
		t.Errorf("a complete run should draw every block without problems")
	}
	for _, want := range []string{"Training data", "Final evaluation", "Samples of conditional", "Samples of mle", "chart tests"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Offline: no external script, stylesheet or image (ECharts' source mentions URLs in strings).
	ours := strings.Replace(s, lib, "", 1)
	for _, fetch := range []string{"<script src", "<link", "<img", "http"} {
		if strings.Contains(ours, fetch) {
			t.Errorf("report must not fetch anything, found %q", fetch)
		}
	}

	// An empty run still gives a page, with problems in place of charts.
	empty, _ := rundir.Create(filepath.Join(t.TempDir(), "empty"))
	page, err = Report(empty)
	if err != nil || !strings.Contains(string(page), "prefgpt-problem") {
		t.Errorf("empty run: err %v, want a page saying what is missing", err)
	}
	if _, err := Report(rundir.Dir{Root: filepath.Join(t.TempDir(), "nope")}); err == nil {
		t.Error("a missing run directory is an error")
	}
}

func TestChartIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if seen[id] {
			t.Fatalf("repeated id %s", id)
		}
		seen[id] = true
	}
}
