package recipes

import (
	"context"
	"fmt"
	"html"
	"os"
	"strings"

	"github.com/prefgpt/prefgpt/data"
	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/rundir"
)

// DataResult is what BuildData wrote.
type DataResult struct {
	Manifest  rundir.Manifest
	Path      string // manifest.json
	VocabSize int    // rows of the model's output vocabulary (vocab.json, or the full 50259)
	VocabNote string // what happened to vocab.json
}

func (r DataResult) String() string {
	m := r.Manifest
	var b strings.Builder
	fmt.Fprintf(&b, "data (%s): %d documents, %d sentences → %d blocks of %d tokens (%d tokens) in %d shard(s)\n",
		m.Objective, m.Documents, m.Sentences, m.Blocks, m.ContextLen, m.Tokens, len(m.Shards))
	if m.Objective == rundir.Conditional {
		total := max(m.Aligned+m.Misaligned+m.Unprefixed, 1)
		fmt.Fprintf(&b, "  <|aligned|> %d (%.1f%%), <|misaligned|> %d (%.1f%%), no token %d (threshold %g)\n",
			m.Aligned, 100*float64(m.Aligned)/float64(total), m.Misaligned, 100*float64(m.Misaligned)/float64(total),
			m.Unprefixed, m.Threshold)
	}
	if m.Filtered > 0 {
		fmt.Fprintf(&b, "  filtered out: %d\n", m.Filtered)
	}
	if m.Skipped > 0 {
		fmt.Fprintf(&b, "  bad records skipped: %d\n", m.Skipped)
	}
	fmt.Fprintf(&b, "  output vocabulary: %d rows (%s)\n  manifest: %s", r.VocabSize, r.VocabNote, r.Path)
	return b.String()
}

// HTML renders the result for a notebook.
func (r DataResult) HTML() string { return "<pre>" + html.EscapeString(r.String()) + "</pre>" }

// BuildData is stage 2: read records (or the embedded demo corpus), label and tokenize sentences for the
// objective, and write token shards under data/<objective>/ plus the held-out sentences of the
// likelihood test. With VocabMinCount > 0 it also writes vocab.json (once per run, so every model of the
// run shares it).
func BuildData(ctx context.Context, o DataOptions) (DataResult, error) {
	dir, err := rundir.Open(o.Run)
	if err != nil {
		return DataResult{}, err
	}
	if _, err := loadTokenizer(dir); err != nil {
		return DataResult{}, err
	}
	switch o.Objective {
	case rundir.Conditional, rundir.MLE, rundir.Filter:
	default:
		return DataResult{}, fmt.Errorf("data stage: unknown objective %q: valid are %s, %s, %s",
			o.Objective, rundir.Conditional, rundir.MLE, rundir.Filter)
	}
	contextLen := o.ContextLen
	if contextLen == 0 {
		cfg, err := model.Preset(presetOr(o.Preset))
		if err != nil {
			return DataResult{}, err
		}
		contextLen = cfg.ContextLen
	}
	if err := ctx.Err(); err != nil {
		return DataResult{}, err
	}
	o.logf("data (%s): building %d-token blocks from %s", o.Objective, contextLen, sourceName(o.Inputs))
	manifest, err := data.Build(data.BuildOptions{
		Inputs: o.Inputs, OutDir: dir.DataDir(o.Objective), Objective: o.Objective,
		Threshold: o.Threshold, DropTokenFraction: o.DropTokenFraction, Seed: o.Seed, ContextLen: contextLen,
		Lenient: o.Lenient, HeldoutFraction: o.HeldoutFraction, HeldoutFile: dir.Heldout(),
		MaxDocuments: o.MaxDocuments,
	})
	if err != nil {
		return DataResult{}, fmt.Errorf("data stage (%s): %w", o.Objective, err)
	}
	res := DataResult{Manifest: manifest, Path: dir.Manifest(o.Objective), VocabSize: data.VocabSize, VocabNote: "full GPT-2 + control tokens"}
	if o.VocabMinCount > 0 {
		vm, note, err := ensureVocab(dir, o)
		if err != nil {
			return res, err
		}
		res.VocabSize, res.VocabNote = len(vm.IDs), note
	}
	return res, nil
}

// ensureVocab writes vocab.json from the conditional data (or this objective's data if there is no
// conditional data yet) unless the run already has one. EOS and both control tokens are always rows.
func ensureVocab(dir rundir.Dir, o DataOptions) (rundir.VocabMap, string, error) {
	var vm rundir.VocabMap
	if _, err := os.Stat(dir.VocabFile()); err == nil {
		if err := rundir.ReadJSON(dir.VocabFile(), &vm); err != nil {
			return vm, "", err
		}
		return vm, fmt.Sprintf("kept the run's vocab.json, ids seen ≥ %d times", vm.MinCount), nil
	}
	source := rundir.Conditional
	if _, err := os.Stat(dir.Manifest(source)); err != nil {
		source = o.Objective
	}
	blocks, err := data.OpenBlocks(dir.Manifest(source))
	if err != nil {
		return vm, "", fmt.Errorf("building the output vocabulary: %w", err)
	}
	// BuildVocabMap always keeps EOS and both control tokens, and adds one row for every rarer id.
	vm = data.BuildVocabMap(blocks, o.VocabMinCount)
	if len(vm.IDs) == 0 {
		return vm, "", fmt.Errorf("building the output vocabulary from %s: could not read the blocks", dir.Manifest(source))
	}
	if err := rundir.WriteJSON(dir.VocabFile(), vm); err != nil {
		return vm, "", err
	}
	return vm, fmt.Sprintf("ids seen ≥ %d times in data/%s, written to vocab.json", o.VocabMinCount, source), nil
}

func sourceName(inputs []string) string {
	if len(inputs) == 0 {
		return "the embedded demo corpus"
	}
	return strings.Join(inputs, ", ")
}

func presetOr(p string) string {
	if p == "" {
		return "tiny"
	}
	return p
}
