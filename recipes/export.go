package recipes

import (
	"context"
	"fmt"
	"html"

	"github.com/prefgpt/prefgpt/data"
	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/rundir"
)

// ExportOptions configures ExportHF.
type ExportOptions struct {
	Common
	Model string // model name under models/ (default conditional)
	Out   string // directory to write; "" = models/<name>/hf
}

// ExportResult says where the HF checkpoint was written.
type ExportResult struct {
	Model string
	Dir   string
	Step  int
}

func (r ExportResult) String() string {
	return fmt.Sprintf("exported %s (step %d) as an HF GPT-2 checkpoint: %s", r.Model, r.Step, r.Dir)
}

// HTML is the same line for a notebook.
func (r ExportResult) HTML() string { return "<p>" + html.EscapeString(r.String()) + "</p>" }

// ExportHF writes a trained model of the run (its latest checkpoint) as an HF GPT-2 checkpoint:
// model.safetensors + config.json, which LoadModel / Sample / Evaluate take as HF, like any GPT-2
// checkpoint. Only a model trained on the full vocabulary can be exported: a restricted output
// vocabulary (vocab.json) has no HF equivalent.
func ExportHF(ctx context.Context, o ExportOptions) (ExportResult, error) {
	if err := ctx.Err(); err != nil {
		return ExportResult{}, err
	}
	l, err := loadModel(ModelOptions{Common: o.Common, Model: o.Model}, "lexicon")
	if err != nil {
		return ExportResult{}, err
	}
	defer l.Close()
	if rows := l.vocab.Size(); rows != data.VocabSize {
		return ExportResult{}, fmt.Errorf("model %q predicts over a restricted vocabulary of %d rows (vocab.json), which HF checkpoints cannot express: export a model whose data was built with VocabMinCount 0", l.Name, rows)
	}
	out := o.Out
	if out == "" {
		dir, err := rundir.Open(o.Run)
		if err != nil {
			return ExportResult{}, err
		}
		out = dir.HFExport(l.Name)
	}
	if err := model.SaveHF(l.ctx, l.cfg, out); err != nil {
		return ExportResult{}, fmt.Errorf("exporting %s: %w", l.Name, err)
	}
	res := ExportResult{Model: l.Name, Dir: out, Step: l.Step}
	o.logf("%s", res)
	return res, nil
}
