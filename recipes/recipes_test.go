package recipes

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prefgpt/prefgpt/rundir"
)

// The tests run the real stages on the "test" preset (a 2-layer, 16-wide GPT-2 with 16-token blocks) over
// a slice of the embedded demo corpus, on the pure-Go backend.

const childEnv = "PREFGPT_RECIPES_TRAIN_CHILD" // set: this process is a training child (see TestMain)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(trainChild(spec))
	}
	os.Exit(m.Run())
}

// trainChild trains with the options in the JSON spec, slowly (so the parent can kill it mid-run).
func trainChild(spec string) int {
	var o TrainOptions
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	stepHook = func(int) { time.Sleep(30 * time.Millisecond) }
	if _, err := Train(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// prepareRun makes a run directory with the tokenizer and conditional data for the test preset.
func prepareRun(t testing.TB, objectives ...string) string {
	t.Helper()
	run := t.TempDir()
	ctx := context.Background()
	if _, err := ExpandTokenizer(ctx, TokenizerOptions{Common: Common{Run: run}}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range objectives {
		o := DemoDataOptions(run)
		o.Preset, o.Objective, o.ContextLen, o.MaxDocuments, o.VocabMinCount = "test", obj, 16, 400, 2
		o.HeldoutFraction = 0.1
		if _, err := BuildData(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return run
}

func testTrainOptions(run, name string, steps int) TrainOptions {
	o := DemoTrainOptions(run)
	o.Preset, o.Name, o.Backend = "test", name, "go"
	o.Opt.Steps, o.Opt.MicroBatch, o.Opt.Accum, o.Opt.LR = steps, 4, 2, 3e-3
	o.CheckpointEvery, o.KeepCheckpoints, o.LogEvery = 5, 2, 1
	o.MonitorEvery, o.MonitorSamples = 0, 0
	o.Sampling.MaxLength = 16
	return o
}

func TestStagesSayWhichStageToRunFirst(t *testing.T) {
	ctx := context.Background()
	run := t.TempDir()
	_, err := BuildData(ctx, DataOptions{Common: Common{Run: run}, Objective: rundir.Conditional})
	if err == nil || !strings.Contains(err.Error(), `"tokenizer" stage first`) {
		t.Errorf("data without tokenizer: %v", err)
	}
	if _, err := ExpandTokenizer(ctx, TokenizerOptions{Common: Common{Run: run}}); err != nil {
		t.Fatal(err)
	}
	_, err = Train(ctx, testTrainOptions(run, "", 3))
	if err == nil || !strings.Contains(err.Error(), `"data" stage first`) {
		t.Errorf("train without data: %v", err)
	}
	_, err = Evaluate(ctx, EvalOptions{Common: Common{Run: run}, Model: "conditional"})
	if err == nil || !strings.Contains(err.Error(), `"train" stage first`) {
		t.Errorf("eval without a model: %v", err)
	}
	_, err = BuildData(ctx, DataOptions{Common: Common{Run: run}, Objective: "nonsense"})
	if err == nil || !strings.Contains(err.Error(), "valid are conditional, mle, filter") {
		t.Errorf("bad objective: %v", err)
	}
}

// The whole pipeline end to end on a tiny budget: every file each stage promises exists and is sane.
func TestPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	run := prepareRun(t, rundir.Conditional)
	dir, _ := rundir.Open(run)
	o := testTrainOptions(run, "", 12)
	o.MonitorEvery, o.MonitorSamples = 6, 3
	res, err := Train(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 12 || res.Interrupted || math.IsNaN(res.Loss) {
		t.Fatalf("train result %+v", res)
	}
	metrics, err := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics("conditional"))
	if err != nil || len(metrics) != 12 {
		t.Fatalf("metrics: %d rows, %v", len(metrics), err)
	}
	for i, m := range metrics {
		if m.Step != i+1 || m.TokensSeen != int64(i+1)*8*16 {
			t.Fatalf("metric row %d: step %d tokens %d", i, m.Step, m.TokensSeen)
		}
	}
	// HF's schedule: the first update warms up from 0, then the rate decays linearly towards 0 after the last.
	peak := 0
	for i, m := range metrics {
		if m.LR > metrics[peak].LR {
			peak = i
		}
	}
	if metrics[0].LR != 0 || metrics[peak].LR > o.Opt.LR+1e-12 || metrics[11].LR <= 0 || metrics[11].LR >= metrics[10].LR {
		t.Errorf("LR should warm up from 0 to at most %g then decay: %v", o.Opt.LR, metrics)
	}
	tox, err := rundir.ReadJSONL[rundir.ToxicityRow](dir.Toxicity("conditional"))
	if err != nil || len(tox) != 9 { // steps 0, 6, 12 × 3 prefixes
		t.Fatalf("toxicity rows: %d, %v", len(tox), err)
	}
	lik, err := rundir.ReadJSONL[rundir.LikelihoodRow](dir.Likelihood("conditional"))
	if err != nil || len(lik) != 3 || lik[2].NToxic == 0 || lik[2].NClean == 0 {
		t.Fatalf("likelihood rows: %+v, %v", lik, err)
	}

	eo := DemoEvalOptions(run)
	eo.SamplesPerPrefix, eo.Batch, eo.Bootstrap, eo.Permutations = 6, 6, 100, 100
	eo.Sampling.MaxLength = 16
	eo.Backend = "go"
	ev, err := Evaluate(ctx, eo)
	if err != nil {
		t.Fatal(err)
	}
	s := ev.Summary
	if s.Step != 12 || len(s.Toxicity) != 3 || s.Likelihood == nil || s.Toxicity[0].N != 6 {
		t.Fatalf("eval summary %+v", s)
	}
	for _, r := range s.Toxicity {
		if r.CILow > r.Mean || r.CIHigh < r.Mean || r.Mean < 0 || r.Mean > 1 {
			t.Errorf("toxicity row %+v: mean outside its CI or [0,1]", r)
		}
	}
	var onDisk rundir.EvalSummary
	if err := rundir.ReadJSON(dir.Eval("conditional"), &onDisk); err != nil || onDisk.Step != 12 {
		t.Fatalf("eval.json: %+v %v", onDisk, err)
	}
	samples, err := rundir.ReadJSONL[rundir.SampleRow](dir.Samples("conditional", 12))
	if err != nil || len(samples) != 18 {
		t.Fatalf("samples at step 12: %d, %v", len(samples), err)
	}
	for _, smp := range samples {
		if strings.Contains(smp.Text, "<|aligned|>") || strings.Contains(smp.Text, "<|misaligned|>") {
			t.Errorf("control token left in a sample: %q", smp.Text)
		}
	}

	sr, err := Sample(ctx, SampleOptions{Common: Common{Run: run, Backend: "go"}, Model: "conditional", Prompt: "The",
		Prefixes: []string{rundir.PrefixAligned}, N: 2, Sampling: eo.Sampling})
	if err != nil || len(sr.Samples) != 2 || sr.Samples[0].Prefix != rundir.PrefixAligned {
		t.Fatalf("sample: %+v %v", sr, err)
	}
	rep, err := Report(ctx, ReportOptions{Common: Common{Run: run}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(rep.Path); err != nil || st.Size() < 10000 {
		t.Fatalf("report %s: %v", rep.Path, err)
	}
	for _, str := range []string{res.String(), ev.String(), sr.String(), rep.String(), ev.HTML()} {
		if str == "" {
			t.Error("empty rendering of a result")
		}
	}
}

// A training child is SIGKILLed mid-run; resuming from its last checkpoint must reproduce an
// uninterrupted run step for step.
func TestResumeAfterSIGKILLMatchesUninterruptedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three times")
	}
	ctx := context.Background()
	run := prepareRun(t, rundir.Conditional)
	dir, _ := rundir.Open(run)
	const steps = 30

	ref := testTrainOptions(run, "reference", steps)
	ref.MonitorEvery, ref.MonitorSamples = 10, 2 // monitoring must not disturb the training state
	if _, err := Train(ctx, ref); err != nil {
		t.Fatal(err)
	}

	killed := testTrainOptions(run, "killed", steps)
	killed.MonitorEvery, killed.MonitorSamples = 10, 2
	spec, _ := json.Marshal(killed)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill once the child has logged step 13: its last checkpoint is step 10, so steps 11–13 get redone.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, _ := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics("killed"))
		if len(rows) > 0 && rows[len(rows)-1].Step >= 13 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child never reached step 13")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	rows, _ := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics("killed"))
	killedAt := rows[len(rows)-1].Step
	if killedAt >= steps {
		t.Fatalf("the child finished (step %d) before it was killed", killedAt)
	}

	res, err := Train(ctx, killed)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Step != steps {
		t.Fatalf("resume: %+v", res)
	}
	want, _ := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics("reference"))
	got, _ := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics("killed"))
	if len(got) != steps || len(want) != steps {
		t.Fatalf("rows: resumed %d, reference %d, want %d each (killed at step %d)", len(got), len(want), steps, killedAt)
	}
	// The monitoring rows (samples are a function of the seed and the step) match too.
	wantTox, _ := rundir.ReadJSONL[rundir.ToxicityRow](dir.Toxicity("reference"))
	gotTox, _ := rundir.ReadJSONL[rundir.ToxicityRow](dir.Toxicity("killed"))
	if len(gotTox) != len(wantTox) || len(wantTox) != 4*3 {
		t.Fatalf("toxicity rows: resumed %d, reference %d, want 12", len(gotTox), len(wantTox))
	}
	for i := range wantTox {
		if gotTox[i] != wantTox[i] {
			t.Errorf("toxicity row %d: resumed %+v, uninterrupted %+v", i, gotTox[i], wantTox[i])
		}
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Step != w.Step || g.TokensSeen != w.TokensSeen || math.Abs(g.Loss-w.Loss) > 1e-6 ||
			math.Abs(g.LR-w.LR) > 1e-12 || math.Abs(g.GradNorm-w.GradNorm) > 1e-6 {
			t.Errorf("step %d: resumed %+v, uninterrupted %+v (killed at step %d)", w.Step, g, w, killedAt)
		}
	}
}

func TestResumeRefusesChangedSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	run := prepareRun(t, rundir.Conditional)
	o := testTrainOptions(run, "m", 10)
	o.StopAfter = 5
	res, err := Train(ctx, o)
	if err != nil || !res.Interrupted || res.Step != 5 {
		t.Fatalf("first part: %+v %v", res, err)
	}
	o.StopAfter = 0
	o.Opt.LR *= 2
	if _, err := Train(ctx, o); err == nil || !strings.Contains(err.Error(), "--fresh") {
		t.Fatalf("changed lr on resume: %v", err)
	}
	o.Fresh = true
	res, err = Train(ctx, o)
	if err != nil || res.Resumed || res.Step != 10 {
		t.Fatalf("fresh: %+v %v", res, err)
	}
}

func TestNaNLossStopsAndKeepsCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	run := prepareRun(t, rundir.Conditional)
	o := testTrainOptions(run, "nan", 20)
	o.CheckpointEvery = 1
	o.Opt.LR = 1e30 // the first update throws the weights to ±1e30: the next loss is not finite
	o.Opt.WarmupRatio = 0
	o.Opt.ClipNorm = 0
	_, err := Train(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "last good checkpoint") {
		t.Fatalf("want a NaN/Inf stop, got %v", err)
	}
	dir, _ := rundir.Open(run)
	if _, err := os.Stat(filepath.Join(dir.Checkpoints("nan"))); err != nil {
		t.Fatalf("no checkpoint kept: %v", err)
	}
	l, err := LoadModel(ctx, ModelOptions{Common: Common{Run: run, Backend: "go"}, Model: "nan"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rows, _ := rundir.ReadJSONL[rundir.MetricRow](dir.Metrics("nan"))
	if l.Step != len(rows) {
		t.Errorf("checkpoint at step %d, but %d finite steps were logged", l.Step, len(rows))
	}
	for _, r := range rows {
		if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
			t.Errorf("a non-finite loss was logged: %+v", r)
		}
	}
}

// With the full vocabulary, training exports HF weights; Evaluate reads them back as an HF checkpoint
// and files its results under models/hf-<dir name>.
func TestHFExportEvaluatesAsHFCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	run := t.TempDir()
	if _, err := ExpandTokenizer(ctx, TokenizerOptions{Common: Common{Run: run}}); err != nil {
		t.Fatal(err)
	}
	do := DemoDataOptions(run)
	do.Preset, do.ContextLen, do.MaxDocuments, do.VocabMinCount, do.HeldoutFraction = "test", 16, 200, 0, 0.1
	if _, err := BuildData(ctx, do); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, testTrainOptions(run, "full", 3)); err != nil {
		t.Fatal(err)
	}
	dir, _ := rundir.Open(run)
	eo := DemoEvalOptions(run)
	eo.Backend, eo.HF, eo.SamplesPerPrefix, eo.Batch, eo.Bootstrap, eo.Permutations = "go", dir.HFExport("full"), 3, 3, 50, 50
	ev, err := Evaluate(ctx, eo)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Summary.Model != "hf-hf" || ev.Summary.Objective != "hf" || ev.Summary.Likelihood == nil {
		t.Fatalf("HF eval summary %+v", ev.Summary)
	}
	var onDisk rundir.EvalSummary
	if err := rundir.ReadJSON(dir.Eval("hf-hf"), &onDisk); err != nil || len(onDisk.Toxicity) != 3 {
		t.Fatalf("models/hf-hf/eval.json: %+v %v", onDisk, err)
	}
}

func TestVerdict(t *testing.T) {
	good := rundir.EvalSummary{Model: "c", Ratio: 0.2, PValue: 0.001,
		Likelihood: &rundir.LikelihoodRow{ToxicMeanDiff: 2, CleanMeanDiff: 0.1, PValue: 1e-6}}
	if v := Verdict(good); !strings.Contains(v, "effect shown") {
		t.Errorf("good: %s", v)
	}
	for name, mod := range map[string]func(*rundir.EvalSummary){
		"ratio":      func(e *rundir.EvalSummary) { e.Ratio = 0.7 },
		"toxicity p": func(e *rundir.EvalSummary) { e.PValue = 0.2 },
		"lik p":      func(e *rundir.EvalSummary) { l := *e.Likelihood; l.PValue = 0.05; e.Likelihood = &l },
		"lik sign":   func(e *rundir.EvalSummary) { l := *e.Likelihood; l.ToxicMeanDiff = -1; e.Likelihood = &l },
		"no lik":     func(e *rundir.EvalSummary) { e.Likelihood = nil },
	} {
		e := good
		mod(&e)
		if v := Verdict(e); !strings.Contains(v, "NOT shown") {
			t.Errorf("%s: %s", name, v)
		}
	}
}
