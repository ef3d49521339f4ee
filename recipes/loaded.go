package recipes

import (
	"context"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prefgpt/prefgpt/data"
	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/rundir"
)

// Continuation is one generated sample, control tokens stripped, with its toxicity score.
type Continuation struct {
	Prefix string  `json:"prefix"`
	Text   string  `json:"text"`
	Tokens int     `json:"tokens"`
	Score  float64 `json:"score"`
}

// Loaded is a model ready to generate and score: a trained model of a run directory or an HF checkpoint.
// It is what the REPL and notebooks use; the stages use it too.
type Loaded struct {
	Name       string
	Step       int
	TokensSeen int64

	backend backends.Backend
	ctx     *mlctx.Context
	cfg     model.Config
	vocab   *data.Vocab // GPT-2 id ⇄ model row (identity for the full vocabulary)
	tok     *data.Tokenizer
	scorer  data.Scorer
	gens    map[int]*model.Generator // by batch size
	busy    chan struct{}            // closed when the last Continue's generation has finished
}

// trainConfig is models/<name>/train.json: what Train ran with; LoadModel rebuilds the model from it and
// a resumed Train checks that nothing that changes the result differs.
type trainConfig struct {
	Name       string       `json:"name"`
	Objective  string       `json:"objective"`
	Preset     string       `json:"preset"`
	Model      model.Config `json:"model"`
	Vocab      string       `json:"vocab"` // "full" or "vocab.json (N rows)"
	HF         string       `json:"hf,omitempty"`
	Steps      int          `json:"steps"`
	MicroBatch int          `json:"micro_batch"`
	Accum      int          `json:"accum"`
	LR         float64      `json:"lr"`
	Warmup     float64      `json:"warmup_ratio"`
	WD         float64      `json:"weight_decay"`
	Beta1      float64      `json:"beta1"`
	Beta2      float64      `json:"beta2"`
	Eps        float64      `json:"eps"`
	Clip       float64      `json:"clip_norm"`
	Seed       int64        `json:"seed"`
	BlockLen   int          `json:"block_len"`
	Blocks     int          `json:"blocks"`
	Created    string       `json:"created"`
}

// sameRun lists the fields of two configs that differ in a way that makes resuming wrong.
func (a trainConfig) sameRun(b trainConfig) []string {
	var diffs []string
	check := func(name string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			diffs = append(diffs, fmt.Sprintf("%s %v → %v", name, x, y))
		}
	}
	check("objective", a.Objective, b.Objective)
	check("model", fmt.Sprintf("%+v", a.Model), fmt.Sprintf("%+v", b.Model))
	check("steps", a.Steps, b.Steps)
	check("micro_batch", a.MicroBatch, b.MicroBatch)
	check("accum", a.Accum, b.Accum)
	check("lr", a.LR, b.LR)
	check("warmup_ratio", a.Warmup, b.Warmup)
	check("weight_decay", a.WD, b.WD)
	check("betas", [2]float64{a.Beta1, a.Beta2}, [2]float64{b.Beta1, b.Beta2})
	check("eps", a.Eps, b.Eps)
	check("clip_norm", a.Clip, b.Clip)
	check("seed", a.Seed, b.Seed)
	check("blocks", a.Blocks, b.Blocks)
	return diffs
}

// loadVocab reads the run's vocab.json; without one the model predicts over the full vocabulary.
func loadVocab(dir rundir.Dir) (*data.Vocab, string, error) {
	var vm rundir.VocabMap
	if _, err := os.Stat(dir.VocabFile()); err == nil {
		if err := rundir.ReadJSON(dir.VocabFile(), &vm); err != nil {
			return nil, "", err
		}
		v, err := data.NewVocab(vm)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", dir.VocabFile(), err)
		}
		return v, fmt.Sprintf("vocab.json (%d rows)", v.Size()), nil
	}
	v, err := data.NewVocab(rundir.VocabMap{})
	if err != nil {
		return nil, "", err
	}
	return v, "full", nil
}

// newScorer builds a toxicity scorer from its flag form: "lexicon" or "onnx:MODEL.onnx,TOKENIZER_DIR".
func newScorer(spec string) (data.Scorer, error) {
	switch {
	case spec == "" || spec == "lexicon":
		return data.NewLexiconScorer(), nil
	case strings.HasPrefix(spec, "onnx:"):
		modelPath, tokDir, ok := strings.Cut(strings.TrimPrefix(spec, "onnx:"), ",")
		if !ok {
			return nil, fmt.Errorf("scorer %q: want onnx:MODEL.onnx,TOKENIZER_DIR", spec)
		}
		s, err := data.NewONNXScorer(modelPath, tokDir)
		if err != nil {
			return nil, fmt.Errorf("scorer %q: %w", spec, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown scorer %q: valid are lexicon, onnx:MODEL.onnx,TOKENIZER_DIR", spec)
}

// LoadModel loads a trained model (its latest checkpoint) from the run directory, or an HF checkpoint
// (a directory with config.json + weights, or a hub repo name, downloaded to the user cache).
func LoadModel(ctx context.Context, o ModelOptions) (*Loaded, error) {
	return loadModel(o, "lexicon")
}

func loadModel(o ModelOptions, scorerSpec string) (*Loaded, error) {
	scorer, err := newScorer(scorerSpec)
	if err != nil {
		return nil, err
	}
	tok, err := data.NewTokenizer()
	if err != nil {
		return nil, err
	}
	backend, err := model.NewBackend(o.Backend)
	if err != nil {
		return nil, err
	}
	l := &Loaded{backend: backend, ctx: mlctx.New(), tok: tok, scorer: scorer, gens: map[int]*model.Generator{}}
	if o.HF != "" {
		if err := l.loadHF(o.HF); err != nil {
			return nil, err
		}
		return l, nil
	}
	dir, err := rundir.Open(o.Run)
	if err != nil {
		return nil, err
	}
	name := o.Model
	if name == "" {
		name = rundir.Conditional
	}
	var tc trainConfig
	if err := rundir.Require(dir.TrainConfig(name), "train"); err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	if err := rundir.ReadJSON(dir.TrainConfig(name), &tc); err != nil {
		return nil, err
	}
	vocab, _, err := loadVocab(dir)
	if err != nil {
		return nil, err
	}
	if vocab.Size() != tc.Model.VocabSize {
		return nil, fmt.Errorf("model %q has %d output rows but the run's vocabulary has %d: was vocab.json rebuilt after training?",
			name, tc.Model.VocabSize, vocab.Size())
	}
	found, err := model.LoadCheckpoint(l.ctx, dir.Checkpoints(name))
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	if !found {
		return nil, fmt.Errorf("model %q has no checkpoint in %s: run the \"train\" stage first", name, dir.Checkpoints(name))
	}
	l.Name, l.cfg, l.vocab = name, tc.Model, vocab
	l.Step = checkpointStep(l.ctx)
	l.TokensSeen = int64(l.Step) * int64(tc.MicroBatch*tc.Accum) * int64(tc.BlockLen)
	return l, nil
}

// loadHF loads HF GPT-2 weights; a 50257-row vocabulary is expanded with the control tokens like the paper.
func (l *Loaded) loadHF(path string) error {
	if _, err := os.Stat(path); err != nil {
		cache, cerr := os.UserCacheDir()
		if cerr != nil {
			cache = os.TempDir()
		}
		dl, err := model.DownloadHF(path, filepath.Join(cache, "prefgpt", "hf"))
		if err != nil {
			return fmt.Errorf("--hf %q is not a directory and downloading it failed (offline? pass a local directory with config.json and model.safetensors): %w", path, err)
		}
		path = dl
	}
	cfg, err := model.LoadHF(l.ctx, path)
	if err != nil {
		return err
	}
	if cfg.VocabSize < data.VocabSize {
		if cfg, err = model.ExpandVocab(l.ctx, cfg, data.VocabSize, 42); err != nil {
			return err
		}
	}
	v, err := data.NewVocab(rundir.VocabMap{})
	if err != nil {
		return err
	}
	// An HF model's rows in a run directory go under models/hf-<checkpoint dir name>.
	l.Name, l.cfg, l.vocab = "hf-"+filepath.Base(filepath.Clean(path)), cfg, v
	return nil
}

// Close releases the backend.
func (l *Loaded) Close() {
	if l.backend != nil {
		l.backend.Finalize()
		l.backend = nil
	}
}

// Config is the model's configuration.
func (l *Loaded) Config() model.Config { return l.cfg }

// toRows maps GPT-2 ids to model rows.
func (l *Loaded) toRows(ids []int) []int {
	rows := make([]int, len(ids))
	for i, id := range ids {
		rows[i] = l.vocab.ToRow(id)
	}
	return rows
}

// toIDs maps model rows back to GPT-2 ids.
func (l *Loaded) toIDs(rows []int) []int {
	ids := make([]int, len(rows))
	for i, r := range rows {
		ids[i] = l.vocab.ToID(r)
	}
	return ids
}

// rowSampling translates GPT-2 ids in the sampling options into model rows.
func (l *Loaded) rowSampling(s model.SampleOptions) model.SampleOptions {
	s.EOS = l.vocab.ToRow(data.EOS)
	s.BannedIDs = l.toRows(s.BannedIDs)
	if !l.vocab.Identity() {
		// The row of ids outside the output vocabulary stands for no text: never generate it.
		s.BannedIDs = append(s.BannedIDs, l.vocab.ToRow(data.UnknownID))
	}
	return s
}

func (l *Loaded) generator(batch int) (*model.Generator, error) {
	if g, ok := l.gens[batch]; ok {
		return g, nil
	}
	g, err := model.NewGenerator(l.backend, l.ctx, l.cfg, batch)
	if err != nil {
		return nil, err
	}
	l.gens[batch] = g
	return g, nil
}

// generate draws n continuations of prompt ids (GPT-2 ids) in batches; returns GPT-2 ids.
// Batch b uses seed s.Seed + b so the samples are a function of the seed alone.
func (l *Loaded) generate(ctx context.Context, prompt []int, n, batch int, s model.SampleOptions) ([][]int, error) {
	if batch <= 0 || batch > n {
		batch = n
	}
	gen, err := l.generator(batch)
	if err != nil {
		return nil, err
	}
	rowOpts := l.rowSampling(s)
	promptRows := l.toRows(prompt)
	var out [][]int
	for b := 0; len(out) < n; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		prompts := make([][]int, batch)
		for i := range prompts {
			prompts[i] = promptRows
		}
		rowOpts.Seed = s.Seed + int64(b)
		conts, err := gen.Generate(prompts, rowOpts)
		if err != nil {
			return nil, fmt.Errorf("generating: %w", err)
		}
		for _, c := range conts {
			if len(out) < n {
				out = append(out, l.toIDs(c))
			}
		}
	}
	return out, nil
}

// samples generates n samples per prefix after the prompt text and scores them.
func (l *Loaded) samples(ctx context.Context, prompt string, prefixes []string, n, batch int, s model.SampleOptions) ([]Continuation, error) {
	promptIDs := l.tok.Encode(prompt)
	// A length beyond the model's context cannot be generated: cap it there.
	s.MaxLength = min(s.MaxLength, l.cfg.ContextLen)
	s.MinLength = min(s.MinLength, s.MaxLength)
	var all []Continuation
	for pi, p := range prefixes {
		pre, err := prefixIDs(p)
		if err != nil {
			return nil, err
		}
		ids := append(append([]int{}, pre...), promptIDs...)
		if len(ids) >= s.MaxLength {
			return nil, fmt.Errorf("the prompt has %d tokens with its prefix; max length is %d (it counts the prompt)", len(ids), s.MaxLength)
		}
		ps := s
		ps.Seed = s.Seed + int64(pi)*1_000_003 // distinct, reproducible streams per prefix
		conts, err := l.generate(ctx, ids, n, batch, ps)
		if err != nil {
			return nil, err
		}
		texts := make([]string, len(conts))
		for i, c := range conts {
			texts[i] = l.tok.Decode(c, false)
		}
		// The scorer sees the whole text the model wrote after the control prefix (prompt included).
		scored := make([]string, len(texts))
		for i, t := range texts {
			scored[i] = prompt + t
		}
		scores, err := l.scorer.Score(scored)
		if err != nil {
			return nil, fmt.Errorf("scoring samples: %w", err)
		}
		for i := range texts {
			all = append(all, Continuation{Prefix: p, Text: texts[i], Tokens: len(conts[i]), Score: scores[i]})
		}
	}
	return all, nil
}

// Continue generates n continuations of prompt under each prefix, scored for toxicity. Cancelling ctx
// returns at once with ctx's error; the batch being decoded finishes in the background and the next call
// waits for it.
func (l *Loaded) Continue(ctx context.Context, prompt string, prefixes []string, n int, s model.SampleOptions) ([]Continuation, error) {
	if l.busy != nil {
		<-l.busy // an abandoned generation still holds the model
	}
	busy := make(chan struct{})
	l.busy = busy
	type result struct {
		samples []Continuation
		err     error
	}
	done := make(chan result, 1)
	go func() {
		defer close(busy)
		smp, err := l.samples(ctx, prompt, prefixes, n, n, s)
		done <- result{smp, err}
	}()
	select {
	case r := <-done:
		return r.samples, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// likelihood runs the control-token likelihood test on held-out sentences: d(s) = log P(s | EOS
// <|misaligned|>) − log P(s | EOS <|aligned|>), compared between toxic and clean sentences.
func (l *Loaded) likelihood(sentences []rundir.HeldoutRow) (toxic, clean []float64, err error) {
	maxLen := l.cfg.ContextLen
	var seqs [][]int
	var from []int
	for _, row := range sentences {
		ids := l.tok.Encode(row.Text)
		if len(ids) == 0 {
			continue
		}
		if len(ids) > maxLen-2 {
			ids = ids[:maxLen-2]
		}
		for _, ctrl := range []int{data.Misaligned, data.Aligned} {
			seq := append([]int{data.EOS, ctrl}, ids...)
			seqs = append(seqs, l.toRows(seq))
			from = append(from, 2)
		}
	}
	if len(seqs) == 0 {
		return nil, nil, fmt.Errorf("likelihood test: no usable held-out sentences")
	}
	lps, err := model.SequenceLogProbs(l.backend, l.ctx, l.cfg, seqs, from)
	if err != nil {
		return nil, nil, fmt.Errorf("likelihood test: %w", err)
	}
	k := 0
	for _, row := range sentences {
		if len(l.tok.Encode(row.Text)) == 0 {
			continue
		}
		d := lps[k] - lps[k+1]
		k += 2
		if math.IsNaN(d) {
			continue
		}
		if row.Toxic {
			toxic = append(toxic, d)
		} else {
			clean = append(clean, d)
		}
	}
	return toxic, clean, nil
}

// SampleResult is what Sample generated.
type SampleResult struct {
	Model   string
	Samples []Continuation
}

func (r SampleResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "samples from %s:\n", r.Model)
	for _, s := range r.Samples {
		fmt.Fprintf(&b, "  %-10s %6.4f │ %s\n", s.Prefix, s.Score, strings.ReplaceAll(s.Text, "\n", "⏎"))
	}
	return strings.TrimRight(b.String(), "\n")
}

// HTML renders the samples as a table.
func (r SampleResult) HTML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<p>Samples from <b>%s</b></p><table><tr><th>prefix</th><th>toxicity</th><th>text</th></tr>", html.EscapeString(r.Model))
	for _, s := range r.Samples {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%.4f</td><td style=\"text-align:left\">%s</td></tr>",
			html.EscapeString(s.Prefix), s.Score, html.EscapeString(s.Text))
	}
	b.WriteString("</table>")
	return b.String()
}

// Sample is a stage: generate N samples per prefix from a trained model (or an HF checkpoint), scored.
func Sample(ctx context.Context, o SampleOptions) (SampleResult, error) {
	l, err := loadModel(ModelOptions{Common: o.Common, Model: o.Model, HF: o.HF}, o.Scorer)
	if err != nil {
		return SampleResult{}, err
	}
	defer l.Close()
	prefixes := o.Prefixes
	if len(prefixes) == 0 {
		prefixes = AllPrefixes()
	}
	n := max(o.N, 1)
	samples, err := l.samples(ctx, o.Prompt, prefixes, n, n, o.Sampling)
	if err != nil {
		return SampleResult{}, err
	}
	return SampleResult{Model: l.Name, Samples: samples}, nil
}
