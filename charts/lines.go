package charts

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"strings"

	gecharts "github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/prefgpt/prefgpt/rundir"
)

// logFloor is the smallest value drawn on a log axis: a toxicity of exactly 0 (possible with
// a lexicon scorer) has no logarithm, so it is drawn at the floor and a note says so.
const logFloor = 1e-4

// Toxicity metrics that ToxicityChart can draw (the fields of rundir.ToxicityRow).
const (
	MetricMean = "mean"           // mean score of the samples (95% CI band when recorded)
	MetricMax  = "max"            // highest score among the samples
	MetricFrac = "frac_above_0_5" // fraction of samples scored above 0.5
)

// readRows reads a JSONL file, telling "missing" apart from "unreadable".
func readRows[T any](path string) (rows []T, missing bool, err error) {
	rows, err = rundir.ReadJSONL[T](path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	return rows, false, err
}

// modelRows reads one model's rows from path. When the file is missing, unreadable or empty it adds a
// note saying so (missing names what to run: hint) and returns ok = false, so a chart can draw the
// models that have data and explain the others.
func modelRows[T any](dir rundir.Dir, name, path, hint string, notes *[]string) (rows []T, ok bool) {
	rows, missing, err := readRows[T](path)
	switch {
	case missing:
		*notes = append(*notes, fmt.Sprintf("%s: %s is missing (%s).", name, rel(dir, path), hint))
	case err != nil:
		*notes = append(*notes, fmt.Sprintf("%s: %v", name, err))
	case len(rows) == 0:
		*notes = append(*notes, fmt.Sprintf("%s: %s has no rows yet.", name, rel(dir, path)))
	default:
		return rows, true
	}
	return nil, false
}

// finishLines turns a line chart into a Chart with its notes, or into a problem saying why nothing
// could be drawn when no model had rows.
func finishLines(title string, line *gecharts.Line, drawn int, notes []string) Chart {
	if drawn == 0 {
		return Chart{ID: newID(), Title: title, Problem: "nothing to draw: " + strings.Join(notes, " ")}
	}
	c := fromGoEcharts(title, line)
	c.Notes = notes
	return c
}

// modelsIn returns the models asked for, or every model of the run (sorted) when none is.
func modelsIn(dir rundir.Dir, models []string) ([]string, error) {
	if len(models) > 0 {
		return models, nil
	}
	names, err := dir.Models()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// rel names a file relative to the run directory, for messages.
func rel(dir rundir.Dir, path string) string {
	if r, err := filepath.Rel(dir.Root, path); err == nil {
		return r
	}
	return path
}

// newLineChart is a line chart with a numeric x axis (tokens seen or steps), a shared
// tooltip, a legend that toggles series, and mouse-wheel zoom on x.
func newLineChart(xName, yName, yType string) *gecharts.Line {
	line := gecharts.NewLine()
	yAxis := opts.YAxis{Type: yType, Name: yName, NameLocation: "middle", NameGap: 56, Scale: opts.Bool(true)}
	if yType == "log" {
		yAxis.Scale = nil // a log axis always scales; ECharts rejects min 0 there
	}
	line.SetGlobalOptions(
		gecharts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		gecharts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Top: "0"}),
		gecharts.WithGridOpts(opts.Grid{Left: "80", Right: "32", Top: "40", Bottom: "56"}),
		gecharts.WithXAxisOpts(opts.XAxis{Type: "value", Name: xName, NameLocation: "middle", NameGap: 30}),
		gecharts.WithYAxisOpts(yAxis),
		gecharts.WithDataZoomOpts(opts.DataZoom{Type: "inside", XAxisIndex: 0}),
		gecharts.WithAnimation(false),
	)
	return line
}

// MaxPoints is the most points drawn per curve.
const MaxPoints = 2000

// thin keeps at most n points of a curve, evenly spaced by index, always with the last one.
func thin(xs, ys []float64, n int) ([]float64, []float64) {
	if len(xs) <= n || n < 2 {
		return xs, ys
	}
	outX, outY := make([]float64, n), make([]float64, n)
	for i := 0; i < n; i++ {
		j := i * (len(xs) - 1) / (n - 1) // i = n-1 gives the last index
		outX[i], outY[i] = xs[j], ys[j]
	}
	return outX, outY
}

// palette colours models in order; prefixes have fixed colours (aligned green, misaligned red).
var palette = []string{"#3b6fb6", "#e08a2c", "#7a4fb0", "#2c9c9c", "#b0467a", "#6b8e23", "#8c564b"}

// dashes tell models apart on charts where colour encodes the prefix.
var dashes = []string{"solid", "dashed", "dotted"}

// prefixColor is the colour of a prefix's curves; other prefixes take palette colours.
func prefixColor(prefix string, i int) string {
	switch prefix {
	case rundir.PrefixAligned:
		return colorAligned
	case rundir.PrefixMisaligned:
		return colorMisaligned
	case rundir.PrefixNone:
		return palette[0]
	}
	return palette[(2+i)%len(palette)]
}

// styled colours a series and sets its line type.
func styled(color, dash string) []gecharts.SeriesOpts {
	return []gecharts.SeriesOpts{
		gecharts.WithItemStyleOpts(opts.ItemStyle{Color: color}),
		gecharts.WithLineStyleOpts(opts.LineStyle{Color: color, Type: dash, Width: 2}),
	}
}

// lineSeries adds one [x, y] series without point markers (curves can have thousands of points).
// Curves longer than MaxPoints are thinned to evenly spaced points (first and last kept): a
// screen is ~1000 pixels wide, and the page stays small for runs with many logged steps.
func lineSeries(line *gecharts.Line, name string, xs, ys []float64, extra ...gecharts.SeriesOpts) {
	xs, ys = thin(xs, ys, MaxPoints)
	data := make([]opts.LineData, len(xs))
	for i := range xs {
		data[i] = opts.LineData{Value: []any{xs[i], ys[i]}}
	}
	o := append([]gecharts.SeriesOpts{gecharts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(len(xs) <= 20)})}, extra...)
	line.AddSeries(name, data, o...)
}

// LossChart draws the training loss against tokens seen, one curve per model (all models of
// the run when none is named), from models/<name>/metrics.jsonl.
func LossChart(dir rundir.Dir, models ...string) Chart {
	const title = "Training loss vs tokens seen"
	return metricsChart(dir, title, "tokens seen", "loss (nats/token)", models,
		func(r rundir.MetricRow) (float64, float64) { return float64(r.TokensSeen), r.Loss })
}

// LRChart draws the learning-rate schedule (linear warmup, linear decay) against the
// optimizer step, one curve per model.
func LRChart(dir rundir.Dir, models ...string) Chart {
	const title = "Learning-rate schedule"
	return metricsChart(dir, title, "step", "learning rate", models,
		func(r rundir.MetricRow) (float64, float64) { return float64(r.Step), r.LR })
}

func metricsChart(dir rundir.Dir, title, xName, yName string, models []string,
	xy func(rundir.MetricRow) (float64, float64)) Chart {
	names, err := modelsIn(dir, models)
	if err != nil {
		return problem(title, "%v", err)
	}
	if len(names) == 0 {
		return problem(title, "no models in %s/models: run the train stage first", dir.Root)
	}
	line := newLineChart(xName, yName, "value")
	var notes []string
	drawn := 0
	for i, name := range names {
		path := dir.Metrics(name)
		rows, ok := modelRows[rundir.MetricRow](dir, name, path, "run the train stage for this model", &notes)
		if !ok {
			continue
		}
		xs, ys := make([]float64, len(rows)), make([]float64, len(rows))
		for i, r := range rows {
			xs[i], ys[i] = xy(r)
		}
		lineSeries(line, name, xs, ys, styled(palette[i%len(palette)], "solid")...)
		drawn++
	}
	return finishLines(title, line, drawn, notes)
}

// ToxicityChart draws sampled toxicity against tokens seen: one curve per model and prefix
// (aligned, misaligned, none), for metric MetricMean (with its 95% CI band when recorded),
// MetricMax or MetricFrac. Mean and max use a log y axis: the aligned and misaligned curves of
// a conditional model differ by orders of magnitude, as in the paper's figures.
func ToxicityChart(dir rundir.Dir, metric string, models ...string) Chart {
	title, yName, yType := "", "", "log"
	switch metric {
	case MetricMean, "":
		metric, title, yName = MetricMean, "Mean toxicity of samples vs tokens seen", "mean toxicity (log)"
	case MetricMax:
		title, yName = "Max toxicity of samples vs tokens seen", "max toxicity (log)"
	case MetricFrac:
		// Fractions are often exactly 0, which a log axis cannot show.
		title, yName, yType = "Fraction of samples with toxicity > 0.5 vs tokens seen", "fraction > 0.5", "value"
	default:
		return problem("Toxicity", "unknown toxicity metric %q (want %q, %q or %q)", metric, MetricMean, MetricMax, MetricFrac)
	}
	names, err := modelsIn(dir, models)
	if err != nil {
		return problem(title, "%v", err)
	}
	if len(names) == 0 {
		return problem(title, "no models in %s/models: run the train stage first", dir.Root)
	}
	line := newLineChart("tokens seen", yName, yType)
	var notes []string
	clamped := 0
	y := func(v float64) float64 {
		if yType == "log" && v < logFloor {
			clamped++
			return logFloor
		}
		return v
	}
	drawn := 0
	var legend []string // each curve once (its CI band shares its name, so they toggle together)
	hidden := map[string]bool{}
	var hiddenModels []string
	for mi, name := range names {
		// A model trained without control tokens only means something unprompted: its curves
		// under the prefixes start hidden (the legend shows them).
		objective := objectiveOf(dir, name)
		onlyNone := objective != "" && objective != rundir.Conditional
		path := dir.Toxicity(name)
		rows, ok := modelRows[rundir.ToxicityRow](dir, name, path, "run the sample/evaluate stage for this model", &notes)
		if !ok {
			continue
		}
		for pi, prefix := range prefixesOf(rows) {
			var xs, ys, lows, highs []float64
			hasCI := true
			for _, r := range rows {
				if r.Prefix != prefix {
					continue
				}
				v := r.Mean
				switch metric {
				case MetricMax:
					v = r.Max
				case MetricFrac:
					v = r.FracAbove05
				}
				xs = append(xs, float64(r.TokensSeen))
				ys = append(ys, y(v))
				lows = append(lows, r.CILow)
				highs = append(highs, r.CIHigh)
				if r.CIHigh <= r.CILow {
					hasCI = false // a row without a recorded interval
				}
			}
			series := name + " / " + prefix
			color := prefixColor(prefix, pi)
			// The curve before its band: the legend draws a name's icon from its first series.
			lineSeries(line, series, xs, ys, styled(color, dashes[mi%len(dashes)])...)
			if metric == MetricMean && hasCI {
				ciBand(line, series, color, xs, lows, highs, yType == "log")
			}
			legend = append(legend, series)
			if onlyNone && prefix != rundir.PrefixNone {
				hidden[series] = true
				if len(hiddenModels) == 0 || hiddenModels[len(hiddenModels)-1] != name {
					hiddenModels = append(hiddenModels, name)
				}
			}
			drawn++
		}
	}
	if drawn == 0 {
		return Chart{ID: newID(), Title: title, Problem: "nothing to draw: " + strings.Join(notes, " ")}
	}
	if clamped > 0 {
		notes = append(notes, fmt.Sprintf("%d value(s) below %g drawn at %g (a log axis cannot show 0).", clamped, logFloor, logFloor))
	}
	// Item tooltips: an axis tooltip would also list the invisible band series.
	line.SetGlobalOptions(
		gecharts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "item"}),
		gecharts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Top: "0", Data: legend, Selected: selected(legend, hidden)}),
	)
	if len(hiddenModels) > 0 {
		notes = append(notes, fmt.Sprintf("Hidden at first (click the legend to show): %s under the control prefixes, trained without them.",
			strings.Join(hiddenModels, ", ")))
	}
	c := fromGoEcharts(title, line)
	c.Notes = notes
	return c
}

// selected is the legend's initial state: every curve shown but the hidden ones (nil when none is).
func selected(legend []string, hidden map[string]bool) map[string]bool {
	if len(hidden) == 0 {
		return nil
	}
	sel := make(map[string]bool, len(legend))
	for _, name := range legend {
		sel[name] = !hidden[name]
	}
	return sel
}

// objectiveOf is the objective a model was trained with: from its eval.json, else from the
// "objective" field of its train.json, else "" (unknown).
func objectiveOf(dir rundir.Dir, model string) string {
	var e rundir.EvalSummary
	if err := rundir.ReadJSON(dir.Eval(model), &e); err == nil && e.Objective != "" {
		return e.Objective
	}
	var t struct {
		Objective string `json:"objective"`
	}
	if err := rundir.ReadJSON(dir.TrainConfig(model), &t); err == nil {
		return t.Objective
	}
	return ""
}

// prefixesOf lists the prefixes present, aligned first, then misaligned, none, then others.
func prefixesOf(rows []rundir.ToxicityRow) []string {
	order := map[string]int{rundir.PrefixAligned: 0, rundir.PrefixMisaligned: 1, rundir.PrefixNone: 2}
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if !seen[r.Prefix] {
			seen[r.Prefix] = true
			out = append(out, r.Prefix)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		oi, ok := order[out[i]]
		if !ok {
			oi = 3
		}
		oj, ok := order[out[j]]
		if !ok {
			oj = 3
		}
		if oi != oj {
			return oi < oj
		}
		return out[i] < out[j]
	})
	return out
}

// ciBand shades the 95% CI of a mean: an invisible lower line and, stacked on it, the width
// of the interval filled. Both series take the curve's own name, so its legend item toggles the
// curve and its band together.
func ciBand(line *gecharts.Line, series, color string, xs, lows, highs []float64, logAxis bool) {
	name := series
	stack := "ci:" + series
	y := func(v float64) float64 {
		if logAxis {
			return math.Max(v, logFloor)
		}
		return v
	}
	lo, width := make([]float64, len(xs)), make([]float64, len(xs))
	for i := range xs {
		lo[i] = y(lows[i])
		width[i] = math.Max(y(highs[i])-lo[i], 0)
	}
	// ECharts stacks the first numeric dimension of a series; with two value axes that is x
	// unless the points are written [y, x] and encode maps them back.
	yx := func(ys []float64) []opts.LineData {
		data := make([]opts.LineData, len(xs))
		for i := range xs {
			data[i] = opts.LineData{Value: []any{ys[i], xs[i]}}
		}
		return data
	}
	band := []gecharts.SeriesOpts{
		gecharts.WithEncodeOpts(opts.Encode{X: 1, Y: 0}),
		gecharts.WithLineStyleOpts(opts.LineStyle{Color: color, Opacity: opts.Float(0)}),
		gecharts.WithItemStyleOpts(opts.ItemStyle{Color: color}),
		gecharts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false), Stack: stack}),
	}
	line.AddSeries(name, yx(lo), band...)
	line.AddSeries(name, yx(width), append(band, gecharts.WithAreaStyleOpts(opts.AreaStyle{Color: color, Opacity: opts.Float(0.15)}))...)
}

// LikelihoodChart draws the control-token likelihood test against tokens seen: the mean of
// log P(s | <|misaligned|>) − log P(s | <|aligned|>) over held-out toxic sentences and over clean
// ones. A model that learnt the control tokens puts toxic sentences well above clean ones.
func LikelihoodChart(dir rundir.Dir, models ...string) Chart {
	const title = "Likelihood test: log P(s|misaligned) − log P(s|aligned)"
	names, err := modelsIn(dir, models)
	if err != nil {
		return problem(title, "%v", err)
	}
	if len(names) == 0 {
		return problem(title, "no models in %s/models: run the train stage first", dir.Root)
	}
	line := newLineChart("tokens seen", "mean difference (nats)", "value")
	var notes []string
	drawn := 0
	for i, name := range names {
		path := dir.Likelihood(name)
		rows, ok := modelRows[rundir.LikelihoodRow](dir, name, path, "run the evaluate stage; only conditional models have it", &notes)
		if !ok {
			continue
		}
		xs := make([]float64, len(rows))
		toxic, clean := make([]float64, len(rows)), make([]float64, len(rows))
		for i, r := range rows {
			xs[i], toxic[i], clean[i] = float64(r.TokensSeen), r.ToxicMeanDiff, r.CleanMeanDiff
		}
		lineSeries(line, name+" / toxic sentences", xs, toxic, styled(colorMisaligned, dashes[i%len(dashes)])...)
		lineSeries(line, name+" / clean sentences", xs, clean, styled(colorAligned, dashes[i%len(dashes)])...)
		last := rows[len(rows)-1]
		notes = append(notes, fmt.Sprintf("%s at %d tokens: toxic %.3f vs clean %.3f nats (Welch t = %.2f, one-sided p = %.3g, %d toxic / %d clean sentences).",
			name, last.TokensSeen, last.ToxicMeanDiff, last.CleanMeanDiff, last.T, last.PValue, last.NToxic, last.NClean))
		drawn++
	}
	return finishLines(title, line, drawn, notes)
}
