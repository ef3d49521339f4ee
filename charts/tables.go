package charts

import (
	"errors"
	"fmt"
	"html"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prefgpt/prefgpt/rundir"
)

// TableHTML is an HTML table; every header and cell is escaped (sample text is model output
// and may hold anything). Cells that parse as numbers are right-aligned.
func TableHTML(headers []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString(`<table class="prefgpt-table"><thead><tr>`)
	for _, h := range headers {
		fmt.Fprintf(&b, "<th>%s</th>", html.EscapeString(h))
	}
	b.WriteString("</tr></thead><tbody>\n")
	for _, row := range rows {
		b.WriteString("<tr>")
		for _, cell := range row {
			class := ""
			if _, err := strconv.ParseFloat(strings.TrimSuffix(cell, "%"), 64); err == nil {
				class = ` class="num"`
			}
			fmt.Fprintf(&b, "<td%s>%s</td>", class, html.EscapeString(cell))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table>\n")
	return b.String()
}

// Table is a titled table block.
func Table(title string, headers []string, rows [][]string) Chart {
	return Chart{ID: newID(), Title: title, Table: TableHTML(headers, rows), Headers: headers, Rows: rows}
}

func num(v float64) string   { return strconv.FormatFloat(v, 'g', 4, 64) }
func count(v int64) string   { return strconv.FormatInt(v, 10) }
func fixed(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

// latestSamples returns the samples file of the highest step.
func latestSamples(dir rundir.Dir, model string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir.SamplesDir(model), "step-*.jsonl"))
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("%s has no samples (run the sample stage for model %q first)", rel(dir, dir.SamplesDir(model)), model)
	}
	sort.Strings(files) // step-NNNNNNN is zero-padded, so names sort by step
	return files[len(files)-1], nil
}

// SampleTable shows generated samples of one model: the samples file of the given step, or
// the latest when step < 0; at most perPrefix rows per prefix (all when perPrefix <= 0), in
// file order, with their toxicity scores. Text is escaped.
func SampleTable(dir rundir.Dir, model string, step, perPrefix int) Chart {
	title := fmt.Sprintf("Samples of %s", model)
	path := dir.Samples(model, step)
	if step < 0 {
		p, err := latestSamples(dir, model)
		if err != nil {
			return problem(title, "%v", err)
		}
		path = p
	}
	rows, missing, err := readRows[rundir.SampleRow](path)
	if missing {
		return problem(title, "%s is missing: run the sample stage for model %q at step %d first", rel(dir, path), model, step)
	}
	if err != nil {
		return problem(title, "%v", err)
	}
	if len(rows) == 0 {
		return problem(title, "%s has no samples", rel(dir, path))
	}
	shown := map[string]int{}
	var cells [][]string
	for _, r := range rows {
		if perPrefix > 0 && shown[r.Prefix] >= perPrefix {
			continue
		}
		shown[r.Prefix]++
		cells = append(cells, []string{r.Prefix, fixed(r.Score), strconv.Itoa(r.Tokens), r.Text})
	}
	title = fmt.Sprintf("Samples of %s at step %d (%d tokens seen)", model, rows[0].Step, rows[0].TokensSeen)
	c := Table(title, []string{"prefix", "toxicity", "tokens", "text"}, cells)
	if len(cells) < len(rows) {
		c.Notes = []string{fmt.Sprintf("%d of %d samples shown; all are in %s.", len(cells), len(rows), rel(dir, path))}
	}
	return c
}

// EvalTable summarises models/<name>/eval.json of each model (all when none is named):
// toxicity per prefix, the aligned/misaligned ratio and the likelihood test.
func EvalTable(dir rundir.Dir, models ...string) Chart {
	const title = "Final evaluation"
	names, err := modelsIn(dir, models)
	if err != nil {
		return problem(title, "%v", err)
	}
	var rows [][]string
	var notes []string
	for _, name := range names {
		var e rundir.EvalSummary
		err := rundir.ReadJSON(dir.Eval(name), &e)
		if errors.Is(err, fs.ErrNotExist) {
			notes = append(notes, fmt.Sprintf("%s: %s is missing (run the evaluate stage).", name, rel(dir, dir.Eval(name))))
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		for _, t := range e.Toxicity {
			ci := ""
			if t.CIHigh > t.CILow {
				ci = fmt.Sprintf("[%s, %s]", num(t.CILow), num(t.CIHigh))
			}
			rows = append(rows, []string{name, e.Objective, t.Prefix, strconv.Itoa(t.N), num(t.Mean), ci, num(t.Max), num(t.FracAbove05)})
		}
		if e.Ratio != 0 {
			notes = append(notes, fmt.Sprintf("%s (step %d, %d tokens, scorer %s): mean toxicity aligned / misaligned = %s, one-sided p = %s.",
				name, e.Step, e.TokensSeen, e.Scorer, num(e.Ratio), num(e.PValue)))
		}
		if l := e.Likelihood; l != nil {
			notes = append(notes, fmt.Sprintf("%s likelihood test: toxic %s vs clean %s nats (t = %s, p = %s).",
				name, num(l.ToxicMeanDiff), num(l.CleanMeanDiff), num(l.T), num(l.PValue)))
		}
	}
	if len(rows) == 0 {
		if len(names) == 0 {
			return problem(title, "no models in %s/models: run the train and evaluate stages first", dir.Root)
		}
		return problem(title, "no evaluation yet: %s", strings.Join(notes, " "))
	}
	c := Table(title, []string{"model", "objective", "prefix", "samples", "mean toxicity", "95% CI", "max", "fraction > 0.5"}, rows)
	c.Notes = notes
	return c
}

// ManifestTable lists the data stage's numbers for every objective built in the run.
func ManifestTable(dir rundir.Dir) Chart {
	const title = "Training data"
	var rows [][]string
	for _, obj := range []string{rundir.Conditional, rundir.MLE, rundir.Filter} {
		var m rundir.Manifest
		err := rundir.ReadJSON(dir.Manifest(obj), &m)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return problem(title, "%v", err)
		}
		rows = append(rows, []string{obj, count(m.Documents), count(m.Sentences), count(m.Aligned), count(m.Misaligned),
			count(m.Unprefixed), count(m.Filtered), count(m.Tokens), count(m.Blocks), strconv.Itoa(m.ContextLen), num(m.Threshold),
			strings.Join(m.Source, ", ")})
	}
	if len(rows) == 0 {
		return problem(title, "no data/<objective>/manifest.json in %s: run the data stage first", dir.Root)
	}
	return Table(title, []string{"objective", "documents", "sentences", "aligned", "misaligned", "unprefixed", "filtered",
		"tokens", "blocks", "context", "threshold", "source"}, rows)
}

// RunTable shows run.json: what made the run.
func RunTable(dir rundir.Dir) Chart {
	const title = "Run"
	var info rundir.RunInfo
	err := rundir.ReadJSON(dir.RunInfo(), &info)
	if errors.Is(err, fs.ErrNotExist) {
		return Table(title, []string{"field", "value"}, [][]string{{"directory", dir.Root}, {"run.json", "missing"}})
	}
	if err != nil {
		return problem(title, "%v", err)
	}
	rows := [][]string{{"directory", dir.Root}, {"created", info.Created}, {"command", info.Command},
		{"preset", info.Preset}, {"backend", info.Backend}}
	keys := make([]string, 0, len(info.Notes))
	for k := range info.Notes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rows = append(rows, []string{k, info.Notes[k]})
	}
	return Table(title, []string{"field", "value"}, rows)
}

// heading is a section title inside a page.
func heading(text string) Chart {
	return Chart{Table: "<h2>" + html.EscapeString(text) + "</h2>\n"}
}

// ReportBlocks are the blocks of the report, in order: run info, data numbers and score
// histogram, loss and learning-rate curves, toxicity curves, the likelihood test, the final
// evaluation and the latest samples of every model. Missing files show up as problems in
// place of their blocks.
func ReportBlocks(dir rundir.Dir) ([]Chart, error) {
	models, err := modelsIn(dir, nil)
	if err != nil {
		return nil, err
	}
	blocks := []Chart{
		RunTable(dir),
		heading("Data"), ManifestTable(dir), ScoreHistogram(dir, ""),
		heading("Training"), LossChart(dir), LRChart(dir),
		heading("Toxicity of samples"), ToxicityChart(dir, MetricMean), ToxicityChart(dir, MetricMax), ToxicityChart(dir, MetricFrac),
		heading("Control tokens"), LikelihoodChart(dir),
		heading("Evaluation"), EvalTable(dir),
		heading("Samples"),
	}
	if len(models) == 0 {
		blocks = append(blocks, problem("", "no models in %s/models yet", dir.Root))
	}
	for _, m := range models {
		blocks = append(blocks, SampleTable(dir, m, -1, 5))
	}
	return blocks, nil
}

// Report is the standalone offline HTML report of a run (ReportBlocks on one page with the
// ECharts library). Only a missing or unreadable run directory is an error.
func Report(dir rundir.Dir) ([]byte, error) {
	if st, err := os.Stat(dir.Root); err != nil {
		return nil, fmt.Errorf("report: run directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("report: %s is not a directory", dir.Root)
	}
	blocks, err := ReportBlocks(dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return Page("prefgpt report: "+filepath.Base(dir.Root), blocks...), nil
}
