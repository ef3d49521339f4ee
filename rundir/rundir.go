// Package rundir is the layout of a run directory and the rows its files hold.
//
// Every stage of the reproduction reads its inputs from and writes its outputs to one
// run directory, so that a notebook cell, the REPL, the command line or a resumed run
// can pick up where another left off. This package knows only files: it imports
// nothing from the model, the data pipeline or the charts, and all of them import it.
//
// Layout (names relative to the run directory):
//
//	run.json                               what made the run (RunInfo)
//	tokenizer/tokenizer.json               the expanded GPT-2 tokenizer (stage 1)
//	vocab.json                             optional output vocabulary (GPT-2 id ⇄ model row)
//	data/<objective>/manifest.json         token shards + manifest (stage 2), objective = conditional | mle | filter
//	data/<objective>/shard-NNNNN.bin       uint16 little-endian tokens, whole blocks only
//	data/heldout.jsonl                     held-out sentences for the likelihood test (HeldoutRow)
//	models/<name>/checkpoints/             GoMLX checkpoints (model + optimizer + trainer state)
//	models/<name>/hf/                      HF export: model.safetensors + config.json
//	models/<name>/train.json               the training configuration used (resume checks it)
//	models/<name>/metrics.jsonl            one MetricRow per logged step
//	models/<name>/toxicity.jsonl           one ToxicityRow per (evaluation, prefix)
//	models/<name>/likelihood.jsonl         one LikelihoodRow per evaluation
//	models/<name>/samples/step-NNNNNNN.jsonl  SampleRow per generated sample
//	models/<name>/eval.json                final evaluation summary (EvalSummary)
//	report.html                            standalone offline report
package rundir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir is a run directory. The zero value is not usable; use Open or Create.
type Dir struct {
	Root string
}

// Objectives that name data directories and (by default) model directories.
const (
	Conditional = "conditional"
	MLE         = "mle"
	Filter      = "filter"
)

// Create makes the run directory (and parents) if it does not exist.
func Create(root string) (Dir, error) {
	if root == "" {
		return Dir{}, fmt.Errorf("run directory: empty path")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Dir{}, fmt.Errorf("creating run directory %q: %w", root, err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return Dir{}, fmt.Errorf("run directory %q: %w", root, err)
	}
	return Dir{Root: abs}, nil
}

// Open returns an existing run directory, or an error that says how to make one.
func Open(root string) (Dir, error) {
	st, err := os.Stat(root)
	if err != nil {
		return Dir{}, fmt.Errorf("run directory %q does not exist (create it with `prefgpt tokenizer --run %s` or any first stage): %w", root, root, err)
	}
	if !st.IsDir() {
		return Dir{}, fmt.Errorf("run directory %q is not a directory", root)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return Dir{}, fmt.Errorf("run directory %q: %w", root, err)
	}
	return Dir{Root: abs}, nil
}

func (d Dir) path(parts ...string) string {
	return filepath.Join(append([]string{d.Root}, parts...)...)
}

func (d Dir) RunInfo() string       { return d.path("run.json") }
func (d Dir) TokenizerDir() string  { return d.path("tokenizer") }
func (d Dir) TokenizerFile() string { return d.path("tokenizer", "tokenizer.json") }
func (d Dir) VocabFile() string     { return d.path("vocab.json") }
func (d Dir) DataDir(objective string) string {
	return d.path("data", objective)
}
func (d Dir) Manifest(objective string) string {
	return d.path("data", objective, "manifest.json")
}
func (d Dir) Heldout() string                { return d.path("data", "heldout.jsonl") }
func (d Dir) ModelDir(name string) string    { return d.path("models", name) }
func (d Dir) Checkpoints(name string) string { return d.path("models", name, "checkpoints") }
func (d Dir) HFExport(name string) string    { return d.path("models", name, "hf") }
func (d Dir) TrainConfig(name string) string { return d.path("models", name, "train.json") }
func (d Dir) Metrics(name string) string     { return d.path("models", name, "metrics.jsonl") }
func (d Dir) Toxicity(name string) string    { return d.path("models", name, "toxicity.jsonl") }
func (d Dir) Likelihood(name string) string  { return d.path("models", name, "likelihood.jsonl") }
func (d Dir) SamplesDir(name string) string  { return d.path("models", name, "samples") }
func (d Dir) Samples(name string, step int) string {
	return d.path("models", name, "samples", fmt.Sprintf("step-%07d.jsonl", step))
}
func (d Dir) Eval(name string) string { return d.path("models", name, "eval.json") }
func (d Dir) Report() string          { return d.path("report.html") }

// Models lists the model names that have a directory under models/.
func (d Dir) Models() ([]string, error) {
	entries, err := os.ReadDir(d.path("models"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing models in %s: %w", d.Root, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Require returns an error naming the stage to run first when path is missing.
func Require(path, stage string) error {
	if _, err := os.Stat(path); err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("%s is missing: run the %q stage first", path, stage)
		}
		return fmt.Errorf("checking %s: %w", path, err)
	}
	return nil
}
