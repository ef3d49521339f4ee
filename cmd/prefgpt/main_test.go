package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/prefgpt/prefgpt/recipes"
	"github.com/prefgpt/prefgpt/rundir"
)

func TestUnknownCommandAndHelp(t *testing.T) {
	var out, errOut strings.Builder
	if err := run([]string{"frobnicate"}, strings.NewReader(""), &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "prefgpt help") {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(nil, strings.NewReader(""), &out, &errOut); err != nil || !strings.Contains(out.String(), "prefgpt reproduce") {
		t.Errorf("usage: %v\n%s", err, out.String())
	}
	errOut.Reset()
	if err := run([]string{"train", "-h"}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Errorf("train -h: %v", err)
	}
	for _, flag := range []string{"-lr", "-warmup", "-weight-decay", "-beta1", "-beta2", "-adam-eps", "-clip", "-steps",
		"-micro-batch", "-accum", "-seed", "-tokens", "-dtype", "-checkpoint-every", "-keep", "-monitor-every",
		"-monitor-samples", "-temperature", "-top-p", "-max-length", "-min-length", "-hf", "-fresh", "-preset", "-backend", "-run"} {
		if !strings.Contains(errOut.String(), flag+" ") && !strings.Contains(errOut.String(), flag+"\n") {
			t.Errorf("train -h does not list %s", flag)
		}
	}
}

func TestPresetPicksDefaults(t *testing.T) {
	if got := scanFlag([]string{"--steps", "3", "--preset=gpt2"}, "preset", "tiny"); got != "gpt2" {
		t.Errorf("--preset=gpt2 read as %q", got)
	}
	if got := scanFlag([]string{"-preset", "test"}, "preset", "tiny"); got != "test" {
		t.Errorf("-preset test read as %q", got)
	}
	if got := scanFlag([]string{"--steps", "3"}, "preset", "tiny"); got != "tiny" {
		t.Errorf("default preset %q", got)
	}
	if !scanBool([]string{"--smoke"}, "smoke") || scanBool([]string{"--smoker"}, "smoke") {
		t.Error("scanBool")
	}
}

func TestStagesNameTheMissingStage(t *testing.T) {
	run0 := t.TempDir()
	var out, errOut strings.Builder
	err := run([]string{"train", "--run", run0, "--quiet"}, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `run the "data" stage first`) {
		t.Errorf("train on an empty run: %v", err)
	}
	err = run([]string{"repl", "--run", run0 + "/nope"}, strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("repl on a missing run: %v", err)
	}
}

// The REPL over a real (briefly trained) model, scripted through stdin and stdout.
func TestREPLOverATrainedModelThroughStdin(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	runDir := t.TempDir()
	ctx := context.Background()
	if _, err := recipes.ExpandTokenizer(ctx, recipes.TokenizerOptions{Common: recipes.Common{Run: runDir}}); err != nil {
		t.Fatal(err)
	}
	do := recipes.DemoDataOptions(runDir)
	do.Preset, do.ContextLen, do.MaxDocuments, do.VocabMinCount = "test", 16, 300, 2
	if _, err := recipes.BuildData(ctx, do); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	err := run([]string{"train", "--run", runDir, "--preset", "test", "--backend", "go", "--steps", "4",
		"--micro-batch", "2", "--accum", "1", "--monitor-every", "0", "--quiet"}, strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, errOut.String())
	}
	out.Reset()
	script := "The cat\n:n 2\n:max 14\n:prefixes aligned,misaligned\nA second prompt\n:quit\n"
	err = run([]string{"repl", "--run", runDir, "--backend", "go", "--max-length", "12", "--quiet"},
		strings.NewReader(script), &out, &errOut)
	if err != nil {
		t.Fatalf("repl: %v\n%s", err, errOut.String())
	}
	text := out.String()
	line := regexp.MustCompile(`(?m)^#(\d) (aligned|misaligned|none) +(\d\.\d{4}) │ (The cat|A second prompt)`)
	matches := line.FindAllStringSubmatch(text, -1)
	// First prompt: 1 sample × 3 prefixes; second: 2 samples × 2 prefixes.
	if len(matches) != 7 {
		t.Fatalf("want 7 sample lines, got %d:\n%s", len(matches), text)
	}
	for _, m := range matches[3:] {
		if m[4] != "A second prompt" || m[2] == rundir.PrefixNone {
			t.Errorf("second prompt line %q ignores the :prefixes setting", m[0])
		}
	}
}
