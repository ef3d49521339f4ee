package recipes

import (
	"context"
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prefgpt/prefgpt/data"
	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/rundir"
	"github.com/prefgpt/prefgpt/train"
)

// TrainResult is where training stopped.
type TrainResult struct {
	Name        string
	Step, Steps int
	TokensSeen  int64
	Loss        float64
	Elapsed     time.Duration // this call
	TokensPerS  float64       // this call
	Interrupted bool          // stopped by ctx (Ctrl-C) or StopAfter; a checkpoint was saved
	Resumed     bool          // started from a checkpoint
	Checkpoint  string
}

func (r TrainResult) String() string {
	state := "finished"
	switch {
	case r.Interrupted:
		state = "stopped (resume with the same command)"
	case r.Step < r.Steps:
		state = "incomplete"
	}
	resumed := ""
	if r.Resumed {
		resumed = ", resumed"
	}
	return fmt.Sprintf("train %s: %s at step %d/%d (%s tokens seen%s), loss %.4f, %.1fs at %.0f tokens/s\n  checkpoints: %s",
		r.Name, state, r.Step, r.Steps, humanCount(r.TokensSeen), resumed, r.Loss, r.Elapsed.Seconds(), r.TokensPerS, r.Checkpoint)
}

// HTML renders the result for a notebook.
func (r TrainResult) HTML() string { return "<pre>" + html.EscapeString(r.String()) + "</pre>" }

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// stepHook, when set (by tests), runs after every step.
var stepHook func(step int)

// checkpointStep is the number of completed optimizer steps of the model in ctx: the trainer's update
// counter, which lives in the context and so is saved in the same checkpoint as the weights and
// optimizer state it belongs to.
func checkpointStep(ctx *mlctx.Context) int {
	v := ctx.GetVariableByScopeAndName(train.OptimizerScope, train.StepVarName)
	if v == nil {
		return 0
	}
	t, err := v.Value()
	if err != nil {
		return 0
	}
	return int(tensors.ToScalar[int64](t))
}

// Train is stage 3: train a model on data/<objective> with the paper's optimiser, logging a MetricRow
// every LogEvery steps, monitoring sampled toxicity and the likelihood test every MonitorEvery steps,
// checkpointing every CheckpointEvery steps (and when ctx is cancelled), and resuming exactly from the
// latest checkpoint: the data order is a function of (seed, step), and the weights, optimizer state,
// step and RNG come from the checkpoint. A NaN or infinite loss stops training with an error; the last
// checkpoint (saved before the bad step) is kept.
func Train(ctx context.Context, o TrainOptions) (TrainResult, error) {
	res := TrainResult{Name: o.Name}
	if res.Name == "" {
		res.Name = o.Objective
	}
	dir, err := rundir.Open(o.Run)
	if err != nil {
		return res, err
	}
	if err := rundir.Require(dir.Manifest(o.Objective), "data"); err != nil {
		return res, fmt.Errorf("training %q on %s data: %w", res.Name, o.Objective, err)
	}
	var manifest rundir.Manifest
	if err := rundir.ReadJSON(dir.Manifest(o.Objective), &manifest); err != nil {
		return res, err
	}
	blocks, err := data.OpenBlocks(dir.Manifest(o.Objective))
	if err != nil {
		return res, fmt.Errorf("training %q: %w", res.Name, err)
	}
	if blocks.Len() == 0 {
		return res, fmt.Errorf("training %q: %s has no blocks: use more data or a shorter --context", res.Name, dir.Manifest(o.Objective))
	}
	tok, err := loadTokenizer(dir)
	if err != nil {
		return res, err
	}
	vocab, vocabNote, err := loadVocab(dir)
	if err != nil {
		return res, err
	}
	scorer, err := newScorer(o.Scorer)
	if err != nil {
		return res, err
	}

	// The model: the preset, with the run's output vocabulary and the data's block length.
	cfg, err := model.Preset(presetOr(o.Preset))
	if err != nil {
		return res, err
	}
	cfg.VocabSize = vocab.Size()
	if o.ContextLen > 0 {
		cfg.ContextLen = o.ContextLen
	}
	if o.Width > 0 {
		cfg.NEmbd = o.Width
	}
	if o.Layers > 0 {
		cfg.NLayer = o.Layers
	}
	if o.Heads > 0 {
		cfg.NHead = o.Heads
	}
	if err := cfg.Validate(); err != nil {
		return res, fmt.Errorf("training %q: %w", res.Name, err)
	}
	if manifest.ContextLen-1 > cfg.ContextLen {
		return res, fmt.Errorf("training %q: data blocks have %d tokens but preset %s has a %d-token context: rebuild the data with --context %d or raise the model's --context",
			res.Name, manifest.ContextLen, cfg.Name, cfg.ContextLen, cfg.ContextLen)
	}
	if o.DType != "" {
		if cfg.DType, err = model.ParseDType(o.DType); err != nil {
			return res, err
		}
	}
	cfg.Dropout = o.Dropout
	opt := o.Opt
	perStep := opt.MicroBatch * opt.Accum
	if perStep <= 0 {
		return res, fmt.Errorf("training %q: micro-batch (%d) and accumulation (%d) must be positive", res.Name, opt.MicroBatch, opt.Accum)
	}
	tokensPerStep := int64(perStep) * int64(manifest.ContextLen)
	if o.TokenBudget > 0 {
		opt.Steps = int((o.TokenBudget + tokensPerStep - 1) / tokensPerStep)
	}
	if opt.Steps <= 0 {
		return res, fmt.Errorf("training %q: no steps to run (set --steps or --tokens)", res.Name)
	}
	res.Steps = opt.Steps

	backend, err := model.NewBackend(o.Backend)
	if err != nil {
		return res, err
	}
	defer backend.Finalize()

	tc := trainConfig{
		Name: res.Name, Objective: o.Objective, Preset: cfg.Name, Model: cfg, Vocab: vocabNote, HF: o.HF,
		Steps: opt.Steps, MicroBatch: opt.MicroBatch, Accum: opt.Accum, LR: opt.LR, Warmup: opt.WarmupRatio,
		WD: opt.WeightDecay, Beta1: opt.Beta1, Beta2: opt.Beta2, Eps: opt.Eps, Clip: opt.ClipNorm,
		Seed: opt.Seed, BlockLen: manifest.ContextLen, Blocks: blocks.Len(),
		Created: time.Now().UTC().Format(time.RFC3339),
	}
	if o.Fresh {
		if err := os.RemoveAll(dir.ModelDir(res.Name)); err != nil {
			return res, fmt.Errorf("training %q: starting fresh: %w", res.Name, err)
		}
	}

	// Weights: the latest checkpoint if there is one, else an HF checkpoint or a fresh initialisation.
	mctx := mlctx.New()
	found, err := model.LoadCheckpoint(mctx, dir.Checkpoints(res.Name))
	if err != nil {
		return res, fmt.Errorf("training %q: loading the checkpoint (use --fresh to start over): %w", res.Name, err)
	}
	startStep := 0
	if found {
		var old trainConfig
		if err := rundir.ReadJSON(dir.TrainConfig(res.Name), &old); err != nil {
			return res, fmt.Errorf("training %q: a checkpoint exists but %w", res.Name, err)
		}
		if diffs := old.sameRun(tc); len(diffs) > 0 {
			return res, fmt.Errorf("training %q: the checkpoint in %s was made with other settings (%s): pass --fresh to start over, or --name for a new model",
				res.Name, dir.Checkpoints(res.Name), strings.Join(diffs, "; "))
		}
		tc.Created = old.Created
		startStep = checkpointStep(mctx)
		res.Resumed = true
		o.logf("train %s: resuming from step %d/%d", res.Name, startStep, opt.Steps)
	} else {
		if o.HF != "" {
			if cfg, err = initFromHF(mctx, o.HF, cfg, vocab.Size()); err != nil {
				return res, fmt.Errorf("training %q: %w", res.Name, err)
			}
			tc.Model = cfg
		}
		// Any rows left from an earlier run of this name no longer describe this model.
		for _, p := range []string{dir.Metrics(res.Name), dir.Toxicity(res.Name), dir.Likelihood(res.Name)} {
			os.Remove(p)
		}
		os.RemoveAll(dir.SamplesDir(res.Name))
	}
	if err := rundir.WriteJSON(dir.TrainConfig(res.Name), tc); err != nil {
		return res, err
	}
	// Rows logged after the checkpoint by an interrupted run are repeated now: drop them.
	if err := truncateAfter(dir, res.Name, startStep); err != nil {
		return res, err
	}

	// NewTrainer initialises the weights from opt.Seed unless they were loaded, and creates or restores the
	// optimizer state.
	trainer, err := train.NewTrainer(backend, mctx, cfg, opt)
	if err != nil {
		return res, fmt.Errorf("training %q: %w", res.Name, err)
	}
	if got := trainer.CurrentStep(); got != startStep {
		return res, fmt.Errorf("training %q: the checkpoint's step counter says %d, expected %d", res.Name, got, startStep)
	}
	loaded := &Loaded{Name: res.Name, backend: backend, ctx: mctx, cfg: cfg, vocab: vocab, tok: tok, scorer: scorer,
		gens: map[int]*model.Generator{}}
	heldout, _ := readHeldout(dir)
	monitor := func(step int) error {
		if o.MonitorEvery <= 0 || o.MonitorSamples <= 0 {
			return nil
		}
		loaded.Step, loaded.TokensSeen = step, int64(step)*tokensPerStep
		return monitorModel(ctx, dir, loaded, heldout, o.MonitorSamples, o.Sampling, opt.Seed, 100, o.Common)
	}
	lastSaved := startStep
	save := func(step int) error {
		if step == lastSaved && found {
			return nil // this state is already the latest checkpoint
		}
		lastSaved, found = step, true
		if err := model.SaveCheckpoint(mctx, dir.Checkpoints(res.Name), max(o.KeepCheckpoints, 1)); err != nil {
			return fmt.Errorf("training %q: saving the checkpoint at step %d: %w", res.Name, step, err)
		}
		return nil
	}

	order := newDataOrder(blocks.Len(), perStep, opt.Seed)
	res.Checkpoint = dir.Checkpoints(res.Name)
	res.Step, res.TokensSeen = startStep, int64(startStep)*tokensPerStep
	if startStep == 0 {
		if err := monitor(0); err != nil {
			return res, err
		}
	}
	bar := o.Common.newProgress(int64(opt.Steps)*tokensPerStep, "train "+res.Name, "tok")
	bar.add(int64(startStep) * tokensPerStep)
	defer bar.done()
	start := time.Now()
	lastLog, lastLogTime := startStep, start
	stepsThisCall := 0
	micro := make([][][]int32, opt.Accum)
	for step := startStep; step < opt.Steps; step++ {
		if ctx.Err() != nil || (o.StopAfter > 0 && stepsThisCall >= o.StopAfter) {
			res.Interrupted = true
			if err := save(step); err != nil {
				return res, err
			}
			o.logf("train %s: stopped at step %d, checkpoint saved; run the same command to resume", res.Name, step)
			break
		}
		// The step's sequences, GPT-2 ids mapped to model rows in one place.
		ids := order.blocksForStep(step)
		for a := range micro {
			micro[a] = make([][]int32, opt.MicroBatch)
			for m := range micro[a] {
				block, err := blocks.Block(ids[a*opt.MicroBatch+m])
				if err != nil {
					return res, fmt.Errorf("training %q: %w", res.Name, err)
				}
				rows := make([]int32, len(block))
				for i, id := range block {
					rows[i] = int32(vocab.ToRow(int(id)))
				}
				micro[a][m] = rows
			}
		}
		sr, err := trainer.Step(micro)
		if err != nil {
			return res, fmt.Errorf("training %q at step %d: %w", res.Name, step+1, err)
		}
		if math.IsNaN(sr.Loss) || math.IsInf(sr.Loss, 0) || math.IsNaN(sr.GradNorm) || math.IsInf(sr.GradNorm, 0) {
			return res, fmt.Errorf("training %q: loss %v (gradient norm %v) at step %d: stopped; the last good checkpoint (step %d) is kept in %s — lower --lr or check the data",
				res.Name, sr.Loss, sr.GradNorm, step+1, lastCheckpoint(step, o.CheckpointEvery, startStep), res.Checkpoint)
		}
		done := step + 1
		stepsThisCall++
		res.Step, res.TokensSeen, res.Loss = done, int64(done)*tokensPerStep, sr.Loss
		bar.add(tokensPerStep)
		bar.describe(fmt.Sprintf("train %s loss %.3f", res.Name, sr.Loss))
		if o.LogEvery <= 0 || done%o.LogEvery == 0 || done == opt.Steps {
			now := time.Now()
			row := rundir.MetricRow{
				Step: done, TokensSeen: res.TokensSeen, Loss: sr.Loss, LR: sr.LR, GradNorm: sr.GradNorm,
				ElapsedS:   now.Sub(start).Seconds(),
				TokensPerS: float64(done-lastLog) * float64(tokensPerStep) / math.Max(now.Sub(lastLogTime).Seconds(), 1e-9),
			}
			lastLog, lastLogTime = done, now
			if err := rundir.AppendJSONL(dir.Metrics(res.Name), row); err != nil {
				return res, err
			}
		}
		// Monitoring runs before the checkpoint so that the checkpoint holds the state the next step starts
		// from, whatever generation did to it: a resumed run continues exactly like an uninterrupted one.
		if o.MonitorEvery > 0 && (done%o.MonitorEvery == 0 || done == opt.Steps) {
			if err := monitor(done); err != nil && !errors.Is(err, context.Canceled) {
				return res, err
			}
		}
		if (o.CheckpointEvery > 0 && done%o.CheckpointEvery == 0) || done == opt.Steps {
			if err := save(done); err != nil {
				return res, err
			}
		}
		if stepHook != nil {
			stepHook(done)
		}
	}
	// With the full vocabulary the weights are a GPT-2 that HF tools can load: export them.
	if res.Step == opt.Steps && !res.Interrupted && vocab.Identity() {
		if err := model.SaveHF(mctx, cfg, dir.HFExport(res.Name)); err != nil {
			return res, fmt.Errorf("training %q: exporting HF weights: %w", res.Name, err)
		}
	}
	res.Elapsed = time.Since(start)
	if s := res.Elapsed.Seconds(); s > 0 {
		res.TokensPerS = float64(stepsThisCall) * float64(tokensPerStep) / s
	}
	bar.done()
	return res, nil
}

// lastCheckpoint is the step of the latest checkpoint saved before `step` in this run.
func lastCheckpoint(step, every, start int) int {
	if every <= 0 {
		return start
	}
	return max(step/every*every, start)
}

// truncateAfter drops metric, toxicity and likelihood rows (and sample files) of steps after `step`.
func truncateAfter(dir rundir.Dir, name string, step int) error {
	if err := rundir.TruncateJSONLAfterStep(dir.Metrics(name), step, func(r rundir.MetricRow) int { return r.Step }); err != nil {
		return err
	}
	if err := rundir.TruncateJSONLAfterStep(dir.Toxicity(name), step, func(r rundir.ToxicityRow) int { return r.Step }); err != nil {
		return err
	}
	if err := rundir.TruncateJSONLAfterStep(dir.Likelihood(name), step, func(r rundir.LikelihoodRow) int { return r.Step }); err != nil {
		return err
	}
	entries, _ := os.ReadDir(dir.SamplesDir(name))
	for _, e := range entries {
		var s int
		if _, err := fmt.Sscanf(e.Name(), "step-%07d.jsonl", &s); err == nil && s > step {
			os.Remove(dir.Samples(name, s))
		}
	}
	return nil
}

// initFromHF loads HF GPT-2 weights into ctx and expands the vocabulary to the control tokens.
// Only the full output vocabulary works with HF weights.
func initFromHF(ctx *mlctx.Context, path string, want model.Config, vocabRows int) (model.Config, error) {
	l := &Loaded{ctx: ctx}
	if err := l.loadHF(path); err != nil {
		return want, err
	}
	cfg := l.cfg
	if cfg.VocabSize != vocabRows {
		return want, fmt.Errorf("HF checkpoint %s has %d vocabulary rows but the run's output vocabulary has %d: build the data without --vocab-min-count",
			path, cfg.VocabSize, vocabRows)
	}
	cfg.DType, cfg.Dropout = want.DType, want.Dropout
	return cfg, nil
}

// readHeldout reads data/heldout.jsonl (written by the data stage).
func readHeldout(dir rundir.Dir) ([]rundir.HeldoutRow, error) {
	if err := rundir.Require(dir.Heldout(), "data"); err != nil {
		return nil, err
	}
	return rundir.ReadJSONL[rundir.HeldoutRow](dir.Heldout())
}
