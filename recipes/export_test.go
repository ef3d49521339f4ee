package recipes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportHFRoundTrip trains a few steps of the test preset on the full vocabulary, exports it
// as an HF checkpoint and loads that back: greedy continuations under every prefix must be the
// same from the run's checkpoint and from the export.
func TestExportHFRoundTrip(t *testing.T) {
	ctx := context.Background()
	run := t.TempDir()
	if _, err := ExpandTokenizer(ctx, TokenizerOptions{Common: Common{Run: run}}); err != nil {
		t.Fatal(err)
	}
	d := DemoDataOptions(run)
	d.Preset, d.ContextLen, d.MaxDocuments, d.VocabMinCount = "test", 16, 200, 0 // full vocabulary
	if _, err := BuildData(ctx, d); err != nil {
		t.Fatal(err)
	}
	to := DemoTrainOptions(run)
	to.Preset, to.Name, to.Backend = "test", "conditional", "go"
	to.Opt.Steps, to.Opt.MicroBatch, to.Opt.Accum = 3, 2, 1
	to.CheckpointEvery, to.LogEvery, to.MonitorEvery, to.MonitorSamples = 3, 1, 0, 0
	if _, err := Train(ctx, to); err != nil {
		t.Fatal(err)
	}
	res, err := ExportHF(ctx, ExportOptions{Common: Common{Run: run, Backend: "go"}, Model: "conditional"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 3 || res.Dir != filepath.Join(run, "models", "conditional", "hf") {
		t.Errorf("result %+v", res)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		if _, err := os.Stat(filepath.Join(res.Dir, f)); err != nil {
			t.Errorf("export lacks %s: %v", f, err)
		}
	}
	greedy := PaperSampling()
	greedy.Temperature, greedy.MaxLength, greedy.MinLength = 0, 12, 8 // at least a few tokens each
	continuations := func(o ModelOptions) []string {
		l, err := LoadModel(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		outs, err := l.Continue(ctx, "The", AllPrefixes(), 1, greedy)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, c := range outs {
			texts = append(texts, c.Prefix+": "+c.Text)
		}
		return texts
	}
	fromRun := continuations(ModelOptions{Common: Common{Run: run, Backend: "go"}, Model: "conditional"})
	fromHF := continuations(ModelOptions{Common: Common{Backend: "go"}, HF: res.Dir})
	t.Logf("greedy continuations: %q", fromRun)
	if strings.Join(fromRun, "\n") != strings.Join(fromHF, "\n") {
		t.Errorf("greedy continuations differ:\nrun: %q\nhf:  %q", fromRun, fromHF)
	}
}

func TestExportHFRefusesRestrictedVocabulary(t *testing.T) {
	ctx := context.Background()
	run := t.TempDir()
	if _, err := ExpandTokenizer(ctx, TokenizerOptions{Common: Common{Run: run}}); err != nil {
		t.Fatal(err)
	}
	d := DemoDataOptions(run)
	d.Preset, d.ContextLen, d.MaxDocuments, d.VocabMinCount = "test", 16, 200, 2
	if _, err := BuildData(ctx, d); err != nil {
		t.Fatal(err)
	}
	to := DemoTrainOptions(run)
	to.Preset, to.Name, to.Backend = "test", "conditional", "go"
	to.Opt.Steps, to.Opt.MicroBatch, to.Opt.Accum = 1, 2, 1
	to.CheckpointEvery, to.LogEvery, to.MonitorEvery, to.MonitorSamples = 1, 1, 0, 0
	if _, err := Train(ctx, to); err != nil {
		t.Fatal(err)
	}
	_, err := ExportHF(ctx, ExportOptions{Common: Common{Run: run, Backend: "go"}, Model: "conditional"})
	if err == nil || !strings.Contains(err.Error(), "restricted vocabulary") {
		t.Errorf("want a restricted-vocabulary error, got %v", err)
	}
}
