// Package recipes is the reproduction as a sequence of stages over one run directory:
// expand the tokenizer, build the (conditional or MLE) training data, train, sample, evaluate and
// report; Reproduce runs them all for the conditional model and the MLE baseline.
//
// Every stage takes a context (cancel it to stop: training saves a checkpoint first) and an options
// struct, reads its inputs from and writes its outputs to the run directory (package rundir), and
// returns a small result that prints well in a terminal (String) and a notebook (HTML). Nothing is kept
// in memory between stages, so each can run in its own process (a GoNB cell, a CLI call).
//
// Default*Options return the paper's settings (Korbak et al. 2023, conditional training for
// toxicity); Demo*Options return the documented overrides that make the embedded demo corpus train
// and show the effect on 2 CPU cores in minutes (see DemoTrainOptions for the list).
package recipes

import (
	"fmt"
	"io"
	"strings"

	"github.com/prefgpt/prefgpt/data"
	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/rundir"
	"github.com/prefgpt/prefgpt/train"
)

// Common holds what every stage needs to know.
type Common struct {
	Run      string    // run directory
	Preset   string    // model preset: gpt2 (the paper), tiny (demo), test
	Backend  string    // GoMLX backend name; "" = auto (GOMLX_BACKEND, else XLA if present, else pure Go)
	Progress io.Writer // progress bars (nil = none)
	Log      io.Writer // one-line status messages (nil = none)

	shared *sharedBar // set by Reproduce for stages that run side by side: their bars become one
	slot   int        // this stage's place on the shared bar
}

func (c Common) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// TokenizerOptions configures ExpandTokenizer.
type TokenizerOptions struct {
	Common
}

// DataOptions configures BuildData. Defaults (DefaultDataOptions) are the paper's.
type DataOptions struct {
	Common
	Inputs            []string // record files (.jsonl, .jsonl.gz, .parquet); nil = the embedded demo corpus
	Objective         string   // conditional | mle | filter
	Threshold         float64  // score above which a sentence is <|misaligned|> (paper 0.00056)
	DropTokenFraction float64  // sentences left without a control token (paper 0.01)
	Seed              int64
	ContextLen        int // block length; 0 = the preset's context length
	Lenient           bool
	HeldoutFraction   float64 // sentences kept out for the likelihood test
	MaxDocuments      int     // 0 = all
	// VocabMinCount > 0 restricts the model's output vocabulary (a demo lever) to the GPT-2 ids seen at
	// least this often in the conditional data, plus EOS and the control tokens; vocab.json records it.
	VocabMinCount int
}

// TrainOptions configures Train. Defaults (DefaultTrainOptions) are the paper's.
type TrainOptions struct {
	Common
	Name      string // model directory name under models/; "" = Objective
	Objective string // conditional | mle | filter: which data/<objective> to train on
	HF        string // initialise from an HF checkpoint (dir) instead of from scratch
	Opt       train.Options
	// TokenBudget, when > 0, sets the number of steps to ⌈budget / tokens per step⌉ (overrides Opt.Steps).
	TokenBudget int64
	DType       string // float32 | bfloat16 (bf16 is ~2.3× slower than float32 on the pure-Go backend)
	Dropout     float64
	ContextLen  int // the model's context (n_positions); 0 = the preset's. The demo uses 64.
	// Model size overrides (0 = the preset's): width (n_embd), layers (n_layer), heads (n_head).
	Width, Layers, Heads int
	CheckpointEvery      int // steps between checkpoints (paper 5000)
	KeepCheckpoints      int // how many checkpoints to keep
	LogEvery             int // steps between metric rows
	// Monitoring during training: every MonitorEvery steps, MonitorSamples samples per prefix are generated
	// and scored, and the likelihood test runs on the held-out sentences. 0 = off.
	MonitorEvery   int
	MonitorSamples int
	Sampling       model.SampleOptions
	Scorer         string // "lexicon" (default) or "onnx:MODEL.onnx,TOKENIZER_DIR"
	Fresh          bool   // start over even if a checkpoint exists (default: resume exactly)
	// StopAfter, when > 0, ends the run after this many steps of this call (the schedule still spans
	// Opt.Steps): used to split training over several calls and by the resume test.
	StopAfter int
}

// SampleOptions configures Sample.
type SampleOptions struct {
	Common
	Model    string   // model name under models/ (default conditional)
	HF       string   // or an HF checkpoint directory
	Prompt   string   // text after the control prefix ("" = unconditional)
	Prefixes []string // rundir.PrefixAligned, PrefixMisaligned, PrefixNone
	N        int      // samples per prefix
	Sampling model.SampleOptions
	Scorer   string
}

// EvalOptions configures Evaluate.
type EvalOptions struct {
	Common
	Model            string
	HF               string
	SamplesPerPrefix int // paper 4096; demo 512
	Batch            int // samples generated together
	Sampling         model.SampleOptions
	Scorer           string
	Bootstrap        int // resamples for the 95% CI
	Permutations     int // for the one-sided test aligned < misaligned
	Seed             int64
}

// ReportOptions configures Report.
type ReportOptions struct {
	Common
}

// ReproduceOptions configures Reproduce: the data, training and evaluation options applied to each
// objective (Common is copied into each).
type ReproduceOptions struct {
	Common
	Smoke      bool
	HF         string   // evaluate this HF checkpoint (dir or hub repo) instead of training models
	Objectives []string // default conditional, mle
	// ConcurrentTraining trains (then evaluates) the objectives' models at the same time (the demo: the
	// pure-Go backend leaves cores idle with one). Off for gpt2, where each training fills the accelerator.
	ConcurrentTraining bool
	Data               DataOptions
	Train              TrainOptions
	Eval               EvalOptions
}

// ModelOptions says which model LoadModel loads.
type ModelOptions struct {
	Common
	Model string // model name under models/
	HF    string // or an HF checkpoint directory (then Run may be empty)
}

// PaperSampling is the paper's generation setting: temperature 0.7, top-p 0.9, max length 128 (prompt
// included), min length 10, control tokens banned.
func PaperSampling() model.SampleOptions {
	s := model.DefaultSampleOptions()
	s.Temperature, s.TopP, s.TopK = 0.7, 0.9, 0
	s.MaxLength, s.MinLength = 128, 10
	s.EOS = data.EOS
	s.BannedIDs = []int{data.Aligned, data.Misaligned}
	return s
}

// DefaultDataOptions: the paper's conditional data (threshold 0.00056, 1% of sentences without a
// control token, 1024-token blocks for gpt2), full vocabulary.
func DefaultDataOptions(run string) DataOptions {
	return DataOptions{
		Common: Common{Run: run, Preset: "gpt2"}, Objective: rundir.Conditional,
		Threshold: 0.00056, DropTokenFraction: 0.01, Seed: 42, HeldoutFraction: 0.02,
	}
}

// DemoDataOptions: the embedded demo corpus for the tiny preset, with a restricted output vocabulary
// (ids seen ≥ 3 times: ~4.2k rows) and a larger held-out share (10% of documents) so that the likelihood
// test has ~80 toxic sentences to work with.
func DemoDataOptions(run string) DataOptions {
	o := DefaultDataOptions(run)
	o.Preset = "tiny"
	o.ContextLen = 64
	o.VocabMinCount = 3
	o.HeldoutFraction = 0.1
	return o
}

// DefaultTrainOptions: the paper's optimisation (train.DefaultOptions: AdamW 0.9/0.999/1e-8, lr 5e-4,
// 1% warmup then linear decay, weight decay 0.1, clip 1.0, 32×2 sequences per step, seed 42) on the
// gpt2 preset for 3.3B tokens, checkpoints every 5000 steps, monitoring every 1000.
func DefaultTrainOptions(run string) TrainOptions {
	return TrainOptions{
		Common: Common{Run: run, Preset: "gpt2"}, Objective: rundir.Conditional,
		Opt: train.DefaultOptions(), TokenBudget: 3_300_000_000, DType: "float32",
		CheckpointEvery: 5000, KeepCheckpoints: 2, LogEvery: 10,
		MonitorEvery: 1000, MonitorSamples: 512, Sampling: PaperSampling(), Scorer: "lexicon",
	}
}

// DemoTrainOptions lists every departure from the paper used by the demo (the levers allowed):
//   - preset tiny (2 layers, 4 heads, d 64) instead of GPT-2 small, with a 64-token context (blocks
//     of 64 tokens, samples capped at 64 tokens instead of 128), and the restricted output vocabulary
//     of DemoDataOptions (ids seen ≥ 3 times: ~4.2k rows instead of 50259);
//   - 16 sequences per step (micro-batch 16 × accumulation 1) instead of 64;
//   - learning rate 4e-3 (a small model tolerates and needs a larger one) and a fixed 1500 steps
//     (1.5M tokens, ~17 passes over the small demo corpus) instead of 3.3B tokens;
//   - monitoring with 32 samples per prefix every 150 steps, checkpoints every 150 steps.
//
// Everything else (AdamW betas/eps, weight decay 0.1 off biases and LayerNorm, 1% warmup then linear
// decay, clipping at 1.0, seed 42, temperature 0.7, top-p 0.9, min length 10, control tokens banned) is
// the paper's. float32 throughout: bf16 is ~2.3× slower on the pure-Go backend.
func DemoTrainOptions(run string) TrainOptions {
	o := DefaultTrainOptions(run)
	o.Preset = "tiny"
	o.ContextLen = 64
	o.TokenBudget = 0
	o.Opt.Steps = 1500
	o.Opt.MicroBatch, o.Opt.Accum = 16, 1
	o.Opt.LR = 4e-3
	o.CheckpointEvery, o.KeepCheckpoints = 150, 2
	o.MonitorEvery, o.MonitorSamples = 150, 32
	o.Sampling.MaxLength = 64
	return o
}

// DefaultEvalOptions: 4096 samples per prefix like the paper's callbacks, 95% bootstrap CIs.
func DefaultEvalOptions(run string) EvalOptions {
	return EvalOptions{
		Common: Common{Run: run}, Model: rundir.Conditional, SamplesPerPrefix: 4096, Batch: 512,
		Sampling: PaperSampling(), Scorer: "lexicon", Bootstrap: 2000, Permutations: 10000, Seed: 42,
	}
}

// DemoEvalOptions: 1024 samples per prefix (the paper's callbacks use 4096).
func DemoEvalOptions(run string) EvalOptions {
	o := DefaultEvalOptions(run)
	o.SamplesPerPrefix, o.Batch = 1024, 128
	o.Sampling.MaxLength = 64 // the demo model's context
	return o
}

// DemoReproduceOptions: the whole demo (conditional + MLE baseline on the embedded corpus).
func DemoReproduceOptions(run string) ReproduceOptions {
	return ReproduceOptions{
		Common:     Common{Run: run, Preset: "tiny"},
		Objectives: []string{rundir.Conditional, rundir.MLE}, ConcurrentTraining: true,
		Data: DemoDataOptions(run), Train: DemoTrainOptions(run), Eval: DemoEvalOptions(run),
	}
}

// SmokeReproduceOptions: every stage on a budget that finishes in a couple of minutes on 2 cores.
// It checks that the pipeline works, not that the effect shows.
func SmokeReproduceOptions(run string) ReproduceOptions {
	o := DemoReproduceOptions(run)
	o.Smoke = true
	o.Data.MaxDocuments = 1000
	o.Train.Opt.Steps, o.Train.Opt.MicroBatch = 20, 8
	o.Train.CheckpointEvery = 10
	o.Train.MonitorEvery, o.Train.MonitorSamples = 10, 4
	o.Train.Sampling.MaxLength = 32
	o.Eval.SamplesPerPrefix, o.Eval.Batch = 16, 16
	o.Eval.Sampling.MaxLength = 32
	o.Eval.Bootstrap, o.Eval.Permutations = 200, 500
	return o
}

// prefixIDs returns the prompt ids (GPT-2 ids) that start a sample under a prefix name.
func prefixIDs(prefix string) ([]int, error) {
	switch prefix {
	case rundir.PrefixAligned:
		return []int{data.EOS, data.Aligned}, nil
	case rundir.PrefixMisaligned:
		return []int{data.EOS, data.Misaligned}, nil
	case rundir.PrefixNone:
		return []int{data.EOS}, nil
	}
	return nil, fmt.Errorf("unknown prefix %q: valid are %s, %s, %s", prefix,
		rundir.PrefixAligned, rundir.PrefixMisaligned, rundir.PrefixNone)
}

// AllPrefixes is the order samples are shown and evaluated in.
func AllPrefixes() []string {
	return []string{rundir.PrefixAligned, rundir.PrefixMisaligned, rundir.PrefixNone}
}

// ParsePrefixes reads a comma-separated list of prefix names ("aligned,misaligned,none").
func ParsePrefixes(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := prefixIDs(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no prefixes in %q: valid are %s", s, strings.Join(AllPrefixes(), ", "))
	}
	return out, nil
}
