// Command prefgpt reproduces "Pretraining Language Models with Human Preferences" (Korbak et al. 2023),
// conditional training for toxicity, with GPT-2 in GoMLX.
//
//	prefgpt reproduce [--smoke] [--run DIR]   every stage on the embedded demo corpus, then the report
//	prefgpt tokenizer|data|train|sample|eval|report|repl [flags]   one stage
//
// Each sub-command has a flag for every hyper-parameter (`prefgpt train -h`). Defaults: the demo
// settings for --preset tiny (the default) and test, the paper's for --preset gpt2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/recipes"
	"github.com/prefgpt/prefgpt/rundir"
)

const usage = `prefgpt: conditional training with human preferences (Korbak et al. 2023), GPT-2 in GoMLX.

Usage:
  prefgpt reproduce [--smoke] [--run DIR]   all stages on the embedded demo: tokenizer, data (conditional
                                             and MLE), train both, evaluate both, report.html
  prefgpt tokenizer  [--run DIR]            expand GPT-2's tokenizer with <|aligned|>, <|misaligned|>
  prefgpt data       [--run DIR] [FILES]    build token shards (conditional | mle | filter)
  prefgpt train      [--run DIR]            train (resumes exactly from the last checkpoint; Ctrl-C saves)
  prefgpt sample     [--run DIR]            generate and score samples under each control prefix
  prefgpt eval       [--run DIR]            sampled toxicity with CIs + the control-token likelihood test
  prefgpt report     [--run DIR]            write report.html
  prefgpt repl       [--run DIR | --hf DIR] interactive prompts under each control prefix

Common flags: --run DIR (default prefgpt-run), --preset tiny|test|gpt2 (tiny = demo defaults, gpt2 = the
paper's), --backend go|xla ("" = auto), --quiet. Run "prefgpt COMMAND -h" for every flag of a command.
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prefgpt:", err)
		os.Exit(1)
	}
}

// run dispatches a sub-command. It returns errors instead of exiting so tests can call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	commands := map[string]func([]string, io.Reader, io.Writer, io.Writer) error{
		"reproduce": cmdReproduce, "tokenizer": cmdTokenizer, "data": cmdData, "train": cmdTrain,
		"sample": cmdSample, "eval": cmdEval, "evaluate": cmdEval, "report": cmdReport, "repl": cmdREPL,
	}
	f, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q; run `prefgpt help` for the list", cmd)
	}
	err := f(rest, stdin, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// scanFlag finds the value of a flag before parsing (both -name v, --name v and --name=v forms), to pick
// defaults that depend on it (the preset).
func scanFlag(args []string, name, def string) string {
	for i, a := range args {
		trimmed := strings.TrimLeft(a, "-")
		if len(trimmed) == len(a) {
			continue
		}
		if trimmed == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(trimmed, name+"="); ok {
			return v
		}
	}
	return def
}

func scanBool(args []string, name string) bool {
	for _, a := range args {
		t := strings.TrimLeft(a, "-")
		if len(t) != len(a) && (t == name || t == name+"=true" || t == name+"=1") {
			return true
		}
	}
	return false
}

func isDemoPreset(p string) bool { return p != "gpt2" }

// commonFlags binds the flags every stage shares.
type commonFlags struct {
	quiet bool
}

func bindCommon(fs *flag.FlagSet, c *recipes.Common, cf *commonFlags) {
	fs.StringVar(&c.Run, "run", c.Run, "run directory")
	fs.StringVar(&c.Preset, "preset", c.Preset, "model preset: "+strings.Join(model.PresetNames(), ", ")+" (tiny = demo defaults, gpt2 = the paper's)")
	fs.StringVar(&c.Backend, "backend", c.Backend, `GoMLX backend: `+strings.Join(model.BackendNames(), ", ")+` ("" = auto: GOMLX_BACKEND, else XLA if installed, else pure Go)`)
	fs.BoolVar(&cf.quiet, "quiet", false, "no progress bars or status lines")
}

// finishCommon wires progress bars (only on a terminal) and status lines to stderr.
func finishCommon(c *recipes.Common, cf commonFlags, stderr io.Writer) {
	if cf.quiet {
		return
	}
	c.Log = stderr
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		c.Progress = stderr
	}
}

func bindSampling(fs *flag.FlagSet, s *model.SampleOptions) {
	fs.Float64Var(&s.Temperature, "temperature", s.Temperature, "sampling temperature (0 = greedy)")
	fs.Float64Var(&s.TopP, "top-p", s.TopP, "nucleus sampling mass")
	fs.IntVar(&s.TopK, "top-k", s.TopK, "top-k (0 = off)")
	fs.IntVar(&s.MaxLength, "max-length", s.MaxLength, "max tokens per sample, prompt included (like HF)")
	fs.IntVar(&s.MinLength, "min-length", s.MinLength, "min tokens before EOS may end a sample")
	fs.Int64Var(&s.Seed, "sample-seed", s.Seed, "sampling seed")
}

func newFlagSet(name string, stderr io.Writer, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "prefgpt %s: %s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

const defaultRun = "prefgpt-run"

func cmdTokenizer(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o := recipes.TokenizerOptions{Common: recipes.Common{Run: defaultRun, Preset: "tiny"}}
	var cf commonFlags
	fs := newFlagSet("tokenizer", stderr, "expand GPT-2's tokenizer with <|aligned|> and <|misaligned|>")
	bindCommon(fs, &o.Common, &cf)
	if err := fs.Parse(args); err != nil {
		return err
	}
	finishCommon(&o.Common, cf, stderr)
	return runStage(stdout, o, recipes.ExpandTokenizer)
}

func bindData(fs *flag.FlagSet, o *recipes.DataOptions) {
	fs.StringVar(&o.Objective, "objective", o.Objective, "conditional | mle | filter")
	fs.Float64Var(&o.Threshold, "threshold", o.Threshold, "toxicity above which a sentence is <|misaligned|>")
	fs.Float64Var(&o.DropTokenFraction, "drop-token-fraction", o.DropTokenFraction, "share of sentences left without a control token")
	fs.Int64Var(&o.Seed, "data-seed", o.Seed, "seed of the data pipeline")
	fs.IntVar(&o.ContextLen, "context", o.ContextLen, "block length in tokens (0 = the preset's context)")
	fs.BoolVar(&o.Lenient, "lenient", o.Lenient, "skip bad records instead of stopping")
	fs.Float64Var(&o.HeldoutFraction, "heldout-fraction", o.HeldoutFraction, "share of sentences held out for the likelihood test")
	fs.IntVar(&o.MaxDocuments, "max-docs", o.MaxDocuments, "read at most this many documents (0 = all)")
	fs.IntVar(&o.VocabMinCount, "vocab-min-count", o.VocabMinCount, "restrict the output vocabulary to ids seen ≥ N times (0 = full GPT-2 vocabulary)")
}

func cmdData(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	preset := scanFlag(args, "preset", "tiny")
	o := recipes.DefaultDataOptions(defaultRun)
	if isDemoPreset(preset) {
		o = recipes.DemoDataOptions(defaultRun)
	}
	o.Preset = preset
	var cf commonFlags
	fs := newFlagSet("data", stderr, "build token shards from record files (default: the embedded demo corpus); FILES are .jsonl, .jsonl.gz or .parquet")
	bindCommon(fs, &o.Common, &cf)
	bindData(fs, &o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Inputs = fs.Args()
	finishCommon(&o.Common, cf, stderr)
	return runStage(stdout, o, recipes.BuildData)
}

func bindTrain(fs *flag.FlagSet, o *recipes.TrainOptions) {
	fs.StringVar(&o.Name, "name", o.Name, "model name under models/ (default: the objective)")
	fs.StringVar(&o.Objective, "objective", o.Objective, "training data: conditional | mle | filter")
	fs.StringVar(&o.HF, "hf", o.HF, "initialise from an HF GPT-2 checkpoint (directory or hub repo) instead of from scratch")
	fs.Float64Var(&o.Opt.LR, "lr", o.Opt.LR, "peak learning rate")
	fs.Float64Var(&o.Opt.WarmupRatio, "warmup", o.Opt.WarmupRatio, "warmup share of the steps (then linear decay to 0)")
	fs.Float64Var(&o.Opt.WeightDecay, "weight-decay", o.Opt.WeightDecay, "AdamW weight decay (not on biases and LayerNorm)")
	fs.Float64Var(&o.Opt.Beta1, "beta1", o.Opt.Beta1, "AdamW β1")
	fs.Float64Var(&o.Opt.Beta2, "beta2", o.Opt.Beta2, "AdamW β2")
	fs.Float64Var(&o.Opt.Eps, "adam-eps", o.Opt.Eps, "AdamW ε")
	fs.Float64Var(&o.Opt.ClipNorm, "clip", o.Opt.ClipNorm, "global gradient-norm clip")
	fs.IntVar(&o.Opt.Steps, "steps", o.Opt.Steps, "optimizer steps (ignored when --tokens > 0)")
	fs.IntVar(&o.Opt.MicroBatch, "micro-batch", o.Opt.MicroBatch, "sequences per micro-batch")
	fs.IntVar(&o.Opt.Accum, "accum", o.Opt.Accum, "micro-batches accumulated per step (effective batch = micro-batch × accum)")
	fs.Int64Var(&o.Opt.Seed, "seed", o.Opt.Seed, "training seed (initialisation, data order, dropout)")
	fs.Int64Var(&o.TokenBudget, "tokens", o.TokenBudget, "token budget (sets the steps; 0 = use --steps)")
	fs.StringVar(&o.DType, "dtype", o.DType, "float32 | bfloat16 (bf16 is ~2.3× slower on the pure-Go backend)")
	fs.Float64Var(&o.Dropout, "dropout", o.Dropout, "dropout (HF GPT-2 default 0.1)")
	fs.IntVar(&o.ContextLen, "context", o.ContextLen, "the model's context in tokens (0 = the preset's)")
	fs.IntVar(&o.Width, "width", o.Width, "model width n_embd (0 = the preset's)")
	fs.IntVar(&o.Layers, "layers", o.Layers, "model layers n_layer (0 = the preset's)")
	fs.IntVar(&o.Heads, "heads", o.Heads, "attention heads n_head (0 = the preset's)")
	fs.IntVar(&o.CheckpointEvery, "checkpoint-every", o.CheckpointEvery, "steps between checkpoints")
	fs.IntVar(&o.KeepCheckpoints, "keep", o.KeepCheckpoints, "checkpoints kept")
	fs.IntVar(&o.LogEvery, "log-every", o.LogEvery, "steps between metric rows")
	fs.IntVar(&o.MonitorEvery, "monitor-every", o.MonitorEvery, "steps between sampled-toxicity + likelihood checks (0 = off)")
	fs.IntVar(&o.MonitorSamples, "monitor-samples", o.MonitorSamples, "samples per prefix at each check")
	fs.StringVar(&o.Scorer, "scorer", o.Scorer, `toxicity scorer: lexicon | onnx:MODEL.onnx,TOKENIZER_DIR`)
	fs.BoolVar(&o.Fresh, "fresh", o.Fresh, "start over even if a checkpoint exists (default: resume exactly)")
	fs.IntVar(&o.StopAfter, "stop-after", o.StopAfter, "stop after this many steps of this call (0 = run to the end)")
	bindSampling(fs, &o.Sampling)
}

func cmdTrain(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	preset := scanFlag(args, "preset", "tiny")
	o := recipes.DefaultTrainOptions(defaultRun)
	if isDemoPreset(preset) {
		o = recipes.DemoTrainOptions(defaultRun)
	}
	o.Preset = preset
	var cf commonFlags
	fs := newFlagSet("train", stderr, "train a model on data/<objective> (resumes exactly; Ctrl-C saves a checkpoint)")
	bindCommon(fs, &o.Common, &cf)
	bindTrain(fs, &o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	finishCommon(&o.Common, cf, stderr)
	ctx, stop := recipes.InterruptContext()
	defer stop()
	res, err := recipes.Train(ctx, o)
	if err == nil || res.Step > 0 {
		fmt.Fprintln(stdout, res)
	}
	return err
}

func cmdSample(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o := recipes.SampleOptions{Common: recipes.Common{Run: defaultRun}, Model: rundir.Conditional,
		N: 4, Sampling: recipes.PaperSampling(), Scorer: "lexicon"}
	var cf commonFlags
	prefixes := strings.Join(recipes.AllPrefixes(), ",")
	fs := newFlagSet("sample", stderr, "generate and score samples under each control prefix")
	bindCommon(fs, &o.Common, &cf)
	fs.StringVar(&o.Model, "model", o.Model, "model name under models/")
	fs.StringVar(&o.HF, "hf", o.HF, "an HF GPT-2 checkpoint (directory or hub repo) instead of a trained model")
	fs.StringVar(&o.Prompt, "prompt", o.Prompt, "text that follows the control prefix")
	fs.StringVar(&prefixes, "prefixes", prefixes, "comma list of aligned, misaligned, none")
	fs.IntVar(&o.N, "n", o.N, "samples per prefix")
	fs.StringVar(&o.Scorer, "scorer", o.Scorer, "toxicity scorer: lexicon | onnx:MODEL.onnx,TOKENIZER_DIR")
	bindSampling(fs, &o.Sampling)
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := recipes.ParsePrefixes(prefixes)
	if err != nil {
		return err
	}
	o.Prefixes = p
	finishCommon(&o.Common, cf, stderr)
	return runStage(stdout, o, recipes.Sample)
}

func bindEval(fs *flag.FlagSet, o *recipes.EvalOptions) {
	fs.IntVar(&o.SamplesPerPrefix, "samples", o.SamplesPerPrefix, "samples per prefix (paper 4096)")
	fs.IntVar(&o.Batch, "batch", o.Batch, "samples generated together")
	fs.StringVar(&o.Scorer, "scorer", o.Scorer, "toxicity scorer: lexicon | onnx:MODEL.onnx,TOKENIZER_DIR")
	fs.IntVar(&o.Bootstrap, "bootstrap", o.Bootstrap, "bootstrap resamples for the 95% CI")
	fs.IntVar(&o.Permutations, "permutations", o.Permutations, "permutations for the one-sided test aligned < misaligned")
	fs.Int64Var(&o.Seed, "eval-seed", o.Seed, "evaluation seed")
}

func cmdEval(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	preset := scanFlag(args, "preset", "tiny")
	o := recipes.DefaultEvalOptions(defaultRun)
	if isDemoPreset(preset) {
		o = recipes.DemoEvalOptions(defaultRun)
	}
	o.Preset = preset
	var cf commonFlags
	fs := newFlagSet("eval", stderr, "sampled toxicity per prefix with 95% CIs and a one-sided test, and the control-token likelihood test")
	bindCommon(fs, &o.Common, &cf)
	fs.StringVar(&o.Model, "model", o.Model, "model name under models/")
	fs.StringVar(&o.HF, "hf", o.HF, "an HF GPT-2 checkpoint (directory or hub repo) instead of a trained model")
	bindEval(fs, &o)
	bindSampling(fs, &o.Sampling)
	if err := fs.Parse(args); err != nil {
		return err
	}
	finishCommon(&o.Common, cf, stderr)
	return runStage(stdout, o, recipes.Evaluate)
}

func cmdReport(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o := recipes.ReportOptions{Common: recipes.Common{Run: defaultRun}}
	var cf commonFlags
	fs := newFlagSet("report", stderr, "write report.html (offline) from the run directory")
	bindCommon(fs, &o.Common, &cf)
	if err := fs.Parse(args); err != nil {
		return err
	}
	finishCommon(&o.Common, cf, stderr)
	res, err := recipes.Report(context.Background(), o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	return nil
}

func cmdReproduce(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o := recipes.DemoReproduceOptions(defaultRun)
	if scanBool(args, "smoke") {
		o = recipes.SmokeReproduceOptions(defaultRun)
	}
	var cf commonFlags
	fs := newFlagSet("reproduce", stderr, "run every stage on the embedded demo corpus (conditional + MLE baseline) and write report.html")
	bindCommon(fs, &o.Common, &cf)
	fs.BoolVar(&o.Smoke, "smoke", o.Smoke, "a quick run (a few minutes) that checks the pipeline, not the effect")
	fs.StringVar(&o.HF, "hf", o.HF, "evaluate an HF GPT-2 checkpoint (directory or hub repo, e.g. the paper's conditional model tomekkorbak/hungry_saha) instead of training")
	fs.IntVar(&o.Train.Opt.Steps, "steps", o.Train.Opt.Steps, "optimizer steps per model")
	fs.IntVar(&o.Train.Opt.MicroBatch, "micro-batch", o.Train.Opt.MicroBatch, "sequences per micro-batch")
	fs.IntVar(&o.Train.Opt.Accum, "accum", o.Train.Opt.Accum, "micro-batches per step")
	fs.Float64Var(&o.Train.Opt.LR, "lr", o.Train.Opt.LR, "peak learning rate")
	fs.Int64Var(&o.Train.Opt.Seed, "seed", o.Train.Opt.Seed, "training seed")
	fs.IntVar(&o.Train.MonitorEvery, "monitor-every", o.Train.MonitorEvery, "steps between monitoring checks (0 = off)")
	fs.IntVar(&o.Train.Width, "width", o.Train.Width, "model width n_embd (0 = the preset's)")
	fs.IntVar(&o.Train.Layers, "layers", o.Train.Layers, "model layers n_layer (0 = the preset's)")
	fs.IntVar(&o.Train.Heads, "heads", o.Train.Heads, "attention heads n_head (0 = the preset's)")
	fs.IntVar(&o.Data.VocabMinCount, "vocab-min-count", o.Data.VocabMinCount, "restrict the output vocabulary to ids seen ≥ N times (0 = full)")
	fs.IntVar(&o.Data.MaxDocuments, "max-docs", o.Data.MaxDocuments, "demo documents to use (0 = all)")
	fs.IntVar(&o.Eval.SamplesPerPrefix, "samples", o.Eval.SamplesPerPrefix, "evaluation samples per prefix")
	objectives := strings.Join(o.Objectives, ",")
	fs.StringVar(&objectives, "objectives", objectives, "objectives to train and compare")
	fs.BoolVar(&o.ConcurrentTraining, "concurrent", o.ConcurrentTraining, "train, then evaluate, the models at the same time (default on for the demo presets, where one pure-Go model leaves cores idle; off for gpt2)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !isDemoPreset(o.Common.Preset) && !flagGiven(fs, "concurrent") {
		o.ConcurrentTraining = false // each gpt2 training fills the accelerator
	}
	o.Objectives = nil
	for _, obj := range strings.Split(objectives, ",") {
		if obj = strings.TrimSpace(obj); obj != "" {
			o.Objectives = append(o.Objectives, obj)
		}
	}
	finishCommon(&o.Common, cf, stderr)
	ctx, stop := recipes.InterruptContext()
	defer stop()
	res, err := recipes.Reproduce(ctx, o)
	if err == nil || len(res.Evals) > 0 {
		fmt.Fprintln(stdout, res)
	}
	return err
}

func cmdREPL(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o := recipes.ModelOptions{Common: recipes.Common{Run: defaultRun}, Model: rundir.Conditional}
	st := replState{sampling: recipes.PaperSampling(), n: 1, prefixes: recipes.AllPrefixes()}
	st.sampling.Seed = 42
	var cf commonFlags
	prefixes := strings.Join(st.prefixes, ",")
	fs := newFlagSet("repl", stderr, "type prompts; see continuations under each control prefix with their toxicity")
	bindCommon(fs, &o.Common, &cf)
	fs.StringVar(&o.Model, "model", o.Model, "model name under models/")
	fs.StringVar(&o.HF, "hf", o.HF, "an HF GPT-2 checkpoint (directory or hub repo) instead of a trained model")
	fs.IntVar(&st.n, "n", st.n, "samples per prefix")
	fs.StringVar(&prefixes, "prefixes", prefixes, "comma list of aligned, misaligned, none")
	bindSampling(fs, &st.sampling)
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := recipes.ParsePrefixes(prefixes)
	if err != nil {
		return err
	}
	st.prefixes = p
	finishCommon(&o.Common, cf, stderr)
	o.Progress = nil
	loaded, err := recipes.LoadModel(context.Background(), o)
	if err != nil {
		return err
	}
	defer loaded.Close()
	interactive := isTerminal(stdin) && isTerminal(stdout)
	lines, err := newLineReader(stdin, stdout, interactive)
	if err != nil {
		return err
	}
	defer lines.Close()
	interrupts, stop := replInterrupts()
	defer stop()
	return runREPL(loaded, lines, stdout, st, interrupts)
}

func isTerminal(x any) bool {
	f, ok := x.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runStage runs one recipe with Ctrl-C (SIGINT/SIGTERM) cancelling it, and prints its result.
func runStage[O any, R any](stdout io.Writer, o O, stage func(context.Context, O) (R, error)) error {
	ctx, stop := recipes.InterruptContext()
	defer stop()
	res, err := stage(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	return nil
}

// flagGiven reports whether the command line set the flag (as opposed to its default applying).
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
