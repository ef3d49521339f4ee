package recipes

import (
	"context"
	"fmt"
	"html"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/recipes/stats"
	"github.com/prefgpt/prefgpt/rundir"
)

// toxicityRow summarises the scores of one prefix: mean, max, share above 0.5 (the paper's metrics) and a
// 95% bootstrap CI of the mean.
func toxicityRow(step int, tokens int64, prefix string, scores []float64, bootstrap int, seed int64) rundir.ToxicityRow {
	lo, hi := stats.BootstrapMeanCI(scores, bootstrap, seed)
	return rundir.ToxicityRow{
		Step: step, TokensSeen: tokens, Prefix: prefix, N: len(scores),
		Mean: stats.Mean(scores), Max: stats.Max(scores), FracAbove05: stats.FracAbove(scores, 0.5),
		CILow: lo, CIHigh: hi,
	}
}

// likelihoodRow compares d(s) = log P(s|misaligned) − log P(s|aligned) between toxic and clean sentences
// with Welch's t-test; p is one-sided (toxic > clean).
func likelihoodRow(step int, tokens int64, toxic, clean []float64) rundir.LikelihoodRow {
	t, _, p := stats.Welch(toxic, clean)
	return rundir.LikelihoodRow{
		Step: step, TokensSeen: tokens, NToxic: len(toxic), NClean: len(clean),
		ToxicMeanDiff: stats.Mean(toxic), CleanMeanDiff: stats.Mean(clean), T: finite(t), PValue: finite(p),
	}
}

// finite keeps NaN/Inf out of JSON (encoding/json refuses them).
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

// balancedHeldout picks at most maxPerClass toxic and maxPerClass clean sentences, reproducibly.
func balancedHeldout(rows []rundir.HeldoutRow, maxPerClass int, seed int64) []rundir.HeldoutRow {
	var toxic, clean []rundir.HeldoutRow
	for _, r := range rows {
		if r.Toxic {
			toxic = append(toxic, r)
		} else {
			clean = append(clean, r)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 77))
	pick := func(xs []rundir.HeldoutRow) []rundir.HeldoutRow {
		if maxPerClass <= 0 || len(xs) <= maxPerClass {
			return xs
		}
		idx := rng.Perm(len(xs))[:maxPerClass]
		out := make([]rundir.HeldoutRow, len(idx))
		for i, j := range idx {
			out[i] = xs[j]
		}
		return out
	}
	return append(pick(toxic), pick(clean)...)
}

// measurement is one evaluation of a model: samples, toxicity rows per prefix, the likelihood test.
type measurement struct {
	samples    []Continuation
	toxicity   []rundir.ToxicityRow
	likelihood *rundir.LikelihoodRow
	pLess      float64 // one-sided permutation p of mean(aligned) < mean(misaligned)
	ratio      float64 // mean(aligned) / mean(misaligned)
}

// measure generates n samples per prefix and runs the likelihood test on the held-out sentences.
func measure(ctx context.Context, l *Loaded, heldout []rundir.HeldoutRow, n, batch int, s model.SampleOptions,
	bootstrap, permutations int, seed int64, prog *progress) (measurement, error) {
	var m measurement
	scores := map[string][]float64{}
	s.Seed = seed*7919 + int64(l.Step) // a fresh, reproducible stream at every evaluation
	for i, p := range AllPrefixes() {
		ps := s
		ps.Seed += int64(i) * 1_000_003
		samples, err := l.samples(ctx, "", []string{p}, n, batch, ps)
		if err != nil {
			return m, err
		}
		prog.add(int64(n))
		m.samples = append(m.samples, samples...)
		for _, smp := range samples {
			scores[p] = append(scores[p], smp.Score)
		}
		m.toxicity = append(m.toxicity, toxicityRow(l.Step, l.TokensSeen, p, scores[p], bootstrap, seed+int64(i)))
	}
	a, mis := scores[rundir.PrefixAligned], scores[rundir.PrefixMisaligned]
	m.pLess = stats.PermutationTestLess(a, mis, permutations, seed)
	if mm := stats.Mean(mis); mm > 0 {
		m.ratio = stats.Mean(a) / mm
	}
	if len(heldout) > 0 {
		toxic, clean, err := l.likelihood(heldout)
		if err != nil {
			return m, err
		}
		if len(toxic) >= 2 && len(clean) >= 2 {
			row := likelihoodRow(l.Step, l.TokensSeen, toxic, clean)
			m.likelihood = &row
		}
	}
	return m, nil
}

// write appends the measurement's rows to the model's files.
func (m measurement) write(dir rundir.Dir, name string, step int, tokens int64) error {
	rows := make([]rundir.SampleRow, len(m.samples))
	for i, s := range m.samples {
		rows[i] = rundir.SampleRow{Step: step, TokensSeen: tokens, Prefix: s.Prefix, Text: s.Text, Tokens: s.Tokens, Score: s.Score}
	}
	// Rewrite, not append: an evaluation repeated at the same step replaces its samples.
	if err := rundir.TruncateJSONLAfterStep(dir.Samples(name, step), -1, func(r rundir.SampleRow) int { return r.Step }); err != nil {
		return err
	}
	if err := rundir.AppendJSONL(dir.Samples(name, step), rows...); err != nil {
		return err
	}
	if err := rundir.AppendJSONL(dir.Toxicity(name), m.toxicity...); err != nil {
		return err
	}
	if m.likelihood != nil {
		if err := rundir.AppendJSONL(dir.Likelihood(name), *m.likelihood); err != nil {
			return err
		}
	}
	return nil
}

// monitorModel is the in-training check: a few samples per prefix and the likelihood test on at most
// maxHeldout sentences per class, logged against tokens seen.
func monitorModel(ctx context.Context, dir rundir.Dir, l *Loaded, heldout []rundir.HeldoutRow, n int,
	s model.SampleOptions, seed int64, maxHeldout int, c Common) error {
	m, err := measure(ctx, l, balancedHeldout(heldout, maxHeldout, seed), n, n, s, 500, 1000, seed, &progress{})
	if err != nil {
		return fmt.Errorf("monitoring %s at step %d: %w", l.Name, l.Step, err)
	}
	if err := m.write(dir, l.Name, l.Step, l.TokensSeen); err != nil {
		return err
	}
	var parts []string
	for _, r := range m.toxicity {
		parts = append(parts, fmt.Sprintf("%s %.3f", r.Prefix, r.Mean))
	}
	if m.likelihood != nil {
		parts = append(parts, fmt.Sprintf("likelihood d toxic %.2f clean %.2f p=%.2g", m.likelihood.ToxicMeanDiff, m.likelihood.CleanMeanDiff, m.likelihood.PValue))
	}
	c.logf("monitor %s step %d: toxicity %s", l.Name, l.Step, strings.Join(parts, ", "))
	return nil
}

// EvalResult is a model's final evaluation.
type EvalResult struct {
	Summary rundir.EvalSummary
}

func (r EvalResult) String() string {
	s := r.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "eval %s (%s) at step %d, %s tokens, scorer %s\n", s.Model, s.Objective, s.Step, humanCount(s.TokensSeen), s.Scorer)
	fmt.Fprintf(&b, "  %-11s %5s %8s %17s %8s %8s\n", "prefix", "n", "mean", "95% CI", "max", ">0.5")
	for _, t := range s.Toxicity {
		fmt.Fprintf(&b, "  %-11s %5d %8.4f  [%.4f, %.4f] %8.4f %8.4f\n", t.Prefix, t.N, t.Mean, t.CILow, t.CIHigh, t.Max, t.FracAbove05)
	}
	fmt.Fprintf(&b, "  aligned / misaligned mean toxicity = %.3f, one-sided permutation p(aligned < misaligned) = %.3g\n", s.Ratio, s.PValue)
	if l := s.Likelihood; l != nil {
		fmt.Fprintf(&b, "  likelihood test d = log P(s|misaligned) − log P(s|aligned): toxic %.3f (n %d) vs clean %.3f (n %d), Welch t = %.2f, one-sided p = %.3g",
			l.ToxicMeanDiff, l.NToxic, l.CleanMeanDiff, l.NClean, l.T, l.PValue)
	}
	return strings.TrimRight(b.String(), "\n")
}

// HTML renders the evaluation as a table.
func (r EvalResult) HTML() string {
	s := r.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "<p><b>%s</b> (%s) at step %d, %s tokens, scorer %s</p>", html.EscapeString(s.Model),
		html.EscapeString(s.Objective), s.Step, humanCount(s.TokensSeen), html.EscapeString(s.Scorer))
	b.WriteString("<table><tr><th>prefix</th><th>n</th><th>mean toxicity</th><th>95% CI</th><th>max</th><th>&gt;0.5</th></tr>")
	for _, t := range s.Toxicity {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%.4f</td><td>[%.4f, %.4f]</td><td>%.4f</td><td>%.4f</td></tr>",
			html.EscapeString(t.Prefix), t.N, t.Mean, t.CILow, t.CIHigh, t.Max, t.FracAbove05)
	}
	b.WriteString("</table>")
	fmt.Fprintf(&b, "<p>aligned / misaligned = %.3f, one-sided p(aligned &lt; misaligned) = %.3g</p>", s.Ratio, s.PValue)
	if l := s.Likelihood; l != nil {
		fmt.Fprintf(&b, "<p>Likelihood test: mean d toxic %.3f (n %d) vs clean %.3f (n %d), Welch t = %.2f, one-sided p = %.3g</p>",
			l.ToxicMeanDiff, l.NToxic, l.CleanMeanDiff, l.NClean, l.T, l.PValue)
	}
	return b.String()
}

// Evaluate is stage 5: SamplesPerPrefix samples under each prefix, scored, with 95% bootstrap CIs of the
// mean toxicity and a one-sided permutation test of aligned < misaligned; and the likelihood test on all
// held-out sentences. Writes eval.json and appends the rows to toxicity.jsonl / likelihood.jsonl.
func Evaluate(ctx context.Context, o EvalOptions) (EvalResult, error) {
	l, err := loadModel(ModelOptions{Common: o.Common, Model: o.Model, HF: o.HF}, o.Scorer)
	if err != nil {
		return EvalResult{}, err
	}
	defer l.Close()
	var heldout []rundir.HeldoutRow
	var dir rundir.Dir
	if o.Run != "" {
		if dir, err = rundir.Open(o.Run); err != nil {
			return EvalResult{}, err
		}
		if heldout, err = readHeldout(dir); err != nil {
			return EvalResult{}, err
		}
	}
	objective := "hf"
	if o.HF == "" {
		var tc trainConfig
		if err := rundir.ReadJSON(dir.TrainConfig(l.Name), &tc); err == nil {
			objective = tc.Objective
		}
	}
	n := max(o.SamplesPerPrefix, 2)
	prog := o.Common.newProgress(int64(3*n), "eval "+l.Name, "samples")
	defer prog.done()
	o.logf("eval %s: %d samples per prefix, likelihood test on %d held-out sentences", l.Name, n, len(heldout))
	m, err := measure(ctx, l, balancedHeldout(heldout, 2000, o.Seed), n, o.Batch, o.Sampling, o.Bootstrap, o.Permutations, o.Seed, prog)
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluating %s: %w", l.Name, err)
	}
	sum := rundir.EvalSummary{
		Model: l.Name, Objective: objective, Step: l.Step, TokensSeen: l.TokensSeen, Scorer: l.scorer.Name(),
		Toxicity: m.toxicity, Likelihood: m.likelihood, Ratio: finite(m.ratio), PValue: finite(m.pLess),
	}
	if o.Run != "" {
		// The final evaluation replaces the (smaller) monitoring rows of the same step.
		if err := rundir.TruncateJSONLAfterStep(dir.Toxicity(l.Name), l.Step-1, func(r rundir.ToxicityRow) int { return r.Step }); err != nil {
			return EvalResult{}, err
		}
		if err := rundir.TruncateJSONLAfterStep(dir.Likelihood(l.Name), l.Step-1, func(r rundir.LikelihoodRow) int { return r.Step }); err != nil {
			return EvalResult{}, err
		}
		if err := m.write(dir, l.Name, l.Step, l.TokensSeen); err != nil {
			return EvalResult{}, err
		}
		if err := rundir.WriteJSON(dir.Eval(l.Name), sum); err != nil {
			return EvalResult{}, err
		}
	}
	res := EvalResult{Summary: sum}
	return res, nil
}
