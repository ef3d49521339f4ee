package charts

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	gecharts "github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/prefgpt/prefgpt/rundir"
)

// Colours shared by the charts: aligned (below the threshold) green, misaligned red.
const (
	colorAligned    = "#3a9a5b"
	colorMisaligned = "#c8453b"
	colorThreshold  = "#333333"
)

// readManifest reads data/<objective>/manifest.json; objective "" takes the first present
// among conditional, mle and filter.
func readManifest(dir rundir.Dir, objective string) (rundir.Manifest, string, error) {
	candidates := []string{objective}
	if objective == "" {
		candidates = []string{rundir.Conditional, rundir.MLE, rundir.Filter}
	}
	for _, obj := range candidates {
		var m rundir.Manifest
		err := rundir.ReadJSON(dir.Manifest(obj), &m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return m, obj, err
	}
	if objective == "" {
		return rundir.Manifest{}, "", fmt.Errorf("no data/<objective>/manifest.json in %s: run the data stage first", dir.Root)
	}
	return rundir.Manifest{}, objective, fmt.Errorf("%s is missing: run the data stage with objective %q first", rel(dir, dir.Manifest(objective)), objective)
}

// binLabel names a log-spaced bin by its lower edge (the tooltip and the axis name say the rest).
func binLabel(lo float64) string {
	return "≥ " + strconv.FormatFloat(lo, 'g', 2, 64)
}

// ScoreHistogram draws the data stage's histogram of sentence toxicity scores (log10-spaced
// bins, Manifest.ScoreHistogram), split into the sentences that got <|aligned|> and those that
// got <|misaligned|> (side by side), with the bin holding the threshold marked. The count axis is
// logarithmic: with a low threshold the toxic tail is orders of magnitude smaller than the bulk. Objective "" takes the first
// manifest present (conditional, then mle, then filter).
func ScoreHistogram(dir rundir.Dir, objective string) Chart {
	const title = "Sentence toxicity scores in the training data"
	m, obj, err := readManifest(dir, objective)
	if err != nil {
		return problem(title, "%v", err)
	}
	h := m.ScoreHistogram
	if h == nil || len(h.Counts) == 0 {
		return problem(title, "%s has no score_histogram (the data stage records it while scoring sentences)", rel(dir, dir.Manifest(obj)))
	}
	if len(h.Edges) != len(h.Counts)+1 {
		return problem(title, "%s: score_histogram has %d edges for %d counts (want counts+1)", rel(dir, dir.Manifest(obj)), len(h.Edges), len(h.Counts))
	}
	split := len(h.Aligned) == len(h.Counts) && len(h.Misaligned) == len(h.Counts)

	labels := make([]string, len(h.Counts))
	thresholdBin := -1
	for i := range h.Counts {
		labels[i] = binLabel(h.Edges[i])
		if m.Threshold >= h.Edges[i] && m.Threshold < h.Edges[i+1] {
			thresholdBin = i
		}
	}
	bar := gecharts.NewBar()
	bar.SetGlobalOptions(
		gecharts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		gecharts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "0"}),
		gecharts.WithGridOpts(opts.Grid{Left: "80", Right: "32", Top: "48", Bottom: "80"}),
		gecharts.WithXAxisOpts(opts.XAxis{Type: "category", Name: "toxicity score (log-spaced bins)", NameLocation: "middle", NameGap: 58,
			AxisLabel: &opts.AxisLabel{Rotate: 30}}),
		gecharts.WithYAxisOpts(opts.YAxis{Type: "log", Name: "sentences (log)", NameLocation: "middle", NameGap: 56}),
		gecharts.WithAnimation(false),
	)
	bar.SetXAxis(labels)
	// An empty bin is "-" (no bar): a log axis has no place for 0.
	barData := func(v []int64) []opts.BarData {
		out := make([]opts.BarData, len(v))
		for i, c := range v {
			out[i] = opts.BarData{Value: c}
			if c == 0 {
				out[i].Value = "-"
			}
		}
		return out
	}
	// The threshold marker rides on the last series so it is drawn once.
	marker := []gecharts.SeriesOpts{}
	if thresholdBin >= 0 {
		marker = append(marker,
			gecharts.WithMarkLineNameXAxisItemOpts(opts.MarkLineNameXAxisItem{
				Name: "threshold " + strconv.FormatFloat(m.Threshold, 'g', 4, 64), XAxis: labels[thresholdBin]}),
			gecharts.WithMarkLineStyleOpts(opts.MarkLineStyle{
				Symbol:    []string{"none", "none"},
				LineStyle: &opts.LineStyle{Color: colorThreshold, Type: "dashed", Width: 2},
				Label:     &opts.Label{Show: opts.Bool(true), Formatter: "{b}"},
			}))
	}
	grouped := gecharts.WithBarChartOpts(opts.BarChart{BarGap: "0%", BarCategoryGap: "20%"})
	if split {
		bar.AddSeries("aligned (<|aligned|>)", barData(h.Aligned), grouped,
			gecharts.WithItemStyleOpts(opts.ItemStyle{Color: colorAligned}))
		bar.AddSeries("misaligned (<|misaligned|>)", barData(h.Misaligned), append([]gecharts.SeriesOpts{grouped,
			gecharts.WithItemStyleOpts(opts.ItemStyle{Color: colorMisaligned})}, marker...)...)
	} else {
		bar.AddSeries("sentences", barData(h.Counts), append([]gecharts.SeriesOpts{grouped}, marker...)...)
	}
	c := fromGoEcharts(title, bar)
	c.Notes = append(c.Notes, fmt.Sprintf("%s data: %d sentences, %d aligned, %d misaligned, %d without a control token; threshold %g (score above it → <|misaligned|>).",
		obj, m.Sentences, m.Aligned, m.Misaligned, m.Unprefixed, m.Threshold))
	if thresholdBin < 0 {
		c.Notes = append(c.Notes, fmt.Sprintf("The threshold %g lies outside the histogram's bins [%g, %g).", m.Threshold, h.Edges[0], h.Edges[len(h.Edges)-1]))
	}
	return c
}
