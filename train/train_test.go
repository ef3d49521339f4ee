package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prefgpt/prefgpt/model"
)

var (
	backendOnce sync.Once
	backend     backends.Backend
	backendErr  error
)

// testBackend is one pure-Go backend for all tests (tensors cannot cross backend instances).
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	backendOnce.Do(func() { backend, backendErr = model.NewBackend("go") })
	if backendErr != nil {
		t.Fatal(backendErr)
	}
	return backend
}

func testConfig() model.Config {
	cfg, _ := model.Preset("test")
	return cfg
}

// patternBatch returns rows of consecutive ids (mod vocab) from random starts: a learnable sequence.
func patternBatch(rng *rand.Rand, rows, width, vocab int) [][]int32 {
	batch := make([][]int32, rows)
	for r := range batch {
		start := rng.IntN(vocab)
		batch[r] = make([]int32, width)
		for i := range batch[r] {
			batch[r][i] = int32((start + i) % vocab)
		}
	}
	return batch
}

func paramValues(t *testing.T, ctx *context.Context) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range ctx.IterVariables() {
		if isModelParam(v) {
			out[model.HFKey(v.Scope(), v.Name())] = tensors.MustCopyFlatData[float32](v.MustValue())
		}
	}
	return out
}

func TestLRSchedule(t *testing.T) {
	opts := DefaultOptions() // lr 5e-4, warmup 1%
	// 200 steps: warmup ceil(2) = 2 steps, then linear decay over 198 steps to 0.
	cases := []struct {
		step int
		want float64
	}{{0, 0}, {1, 2.5e-4}, {2, 5e-4}, {101, 5e-4 * 99 / 198}, {199, 5e-4 / 198}, {200, 0}, {250, 0}}
	for _, c := range cases {
		if got := LRAt(c.step, 200, opts); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LRAt(%d, 200) = %g, want %g", c.step, got, c.want)
		}
	}
	// 150 steps: 1.5 warmup steps round up to 2 (HF uses ceil).
	if w := WarmupSteps(150, opts); w != 2 {
		t.Errorf("WarmupSteps(150) = %d, want 2", w)
	}
	// No warmup: full LR at step 0.
	opts.WarmupRatio = 0
	if got := LRAt(0, 10, opts); got != 5e-4 {
		t.Errorf("no warmup: LRAt(0) = %g, want 5e-4", got)
	}
	if got := LRAt(5, 10, opts); math.Abs(got-2.5e-4) > 1e-15 {
		t.Errorf("no warmup: LRAt(5, 10) = %g, want 2.5e-4", got)
	}
}

func TestDecayMask(t *testing.T) {
	for name, want := range map[string]bool{
		"wte.weight": true, "wpe.weight": true, "h.0.attn.c_attn.weight": true, "h.11.mlp.c_proj.weight": true,
		"h.0.attn.c_attn.bias": false, "h.3.mlp.c_fc.bias": false, "h.0.ln_1.weight": false, "h.0.ln_2.bias": false,
		"ln_f.weight": false, "ln_f.bias": false, "/h/2/ln_1/weight": false, "/h/2/attn/c_proj/weight": true,
	} {
		if got := DecayMask(name); got != want {
			t.Errorf("DecayMask(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	opts := DefaultOptions()
	if err := opts.Validate(); err == nil || !strings.Contains(err.Error(), "Steps") {
		t.Errorf("Steps unset: %v", err)
	}
	opts.Steps = 10
	if err := opts.Validate(); err != nil {
		t.Error(err)
	}
	opts.Accum = 0
	if err := opts.Validate(); err == nil || !strings.Contains(err.Error(), "Accum") {
		t.Errorf("Accum 0: %v", err)
	}
}

// gradients of the mean CE of a batch w.r.t. every model parameter, by HF key, computed by a separate graph.
func gradients(t *testing.T, ctx *context.Context, cfg model.Config, batch [][]int32) (map[string][]float64, float64) {
	t.Helper()
	var x, y [][]int32
	for _, row := range batch {
		x, y = append(x, row[:len(row)-1]), append(y, row[1:])
	}
	var keys []string
	exec, err := context.NewExec(testBackend(t), ctx, func(ctx *context.Context, x, y *Node) []*Node {
		loss := model.CrossEntropy(model.Logits(ctx, cfg, x), y, nil)
		var nodes []*Node
		keys = keys[:0]
		for v := range ctx.IterVariables() {
			if isModelParam(v) && v.InUseByGraph(x.Graph()) {
				keys = append(keys, model.HFKey(v.Scope(), v.Name()))
				nodes = append(nodes, v.ValueGraph(x.Graph()))
			}
		}
		return append([]*Node{loss}, Gradient(loss, nodes...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(x, y)
	if err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float64{}
	for i, k := range keys {
		flat := tensors.MustCopyFlatData[float32](outs[i+1])
		g := make([]float64, len(flat))
		for j, v := range flat {
			g[j] = float64(v)
		}
		grads[k] = g
	}
	return grads, float64(tensors.ToScalar[float32](outs[0]))
}

func TestAdamWOneStepMatchesHandComputed(t *testing.T) {
	cfg := testConfig()
	opts := DefaultOptions()
	opts.Steps, opts.MicroBatch, opts.Accum, opts.WarmupRatio = 10, 3, 1, 0
	opts.LR, opts.ClipNorm = 1e-2, 0.5 // a clip that bites
	ctx := context.New()
	tr, err := NewTrainer(testBackend(t), ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	batch := patternBatch(rand.New(rand.NewPCG(1, 1)), 3, 9, cfg.VocabSize)
	before := paramValues(t, ctx)
	grads, loss := gradients(t, ctx, cfg, batch)
	res, err := tr.Step([][][]int32{batch})
	if err != nil {
		t.Fatal(err)
	}
	after := paramValues(t, ctx)

	// Hand computation in float64: global norm, clip, first AdamW step (m = (1−β1)g, v = (1−β2)g²,
	// bias corrections 1−β1 and 1−β2), then the decoupled decay on the updated weights.
	sq := 0.0
	for _, g := range grads {
		for _, x := range g {
			sq += x * x
		}
	}
	norm := math.Sqrt(sq)
	clip := math.Min(1, opts.ClipNorm/(norm+1e-6))
	if norm <= opts.ClipNorm {
		t.Fatalf("gradient norm %g does not exceed the clip %g: the test would not check clipping", norm, opts.ClipNorm)
	}
	if math.Abs(res.GradNorm-norm) > 1e-4*norm || math.Abs(res.Loss-loss) > 1e-5 || res.LR != opts.LR || res.Step != 1 {
		t.Errorf("StepResult %+v, want loss %g, grad norm %g, LR %g, step 1", res, loss, norm, opts.LR)
	}
	b1, b2 := opts.Beta1, opts.Beta2
	stepSize := opts.LR * math.Sqrt(1-b2) / (1 - b1)
	checked := 0
	for key, g := range grads {
		decay := DecayMask(key)
		for i := range g {
			gc := g[i] * clip
			m, v := (1-b1)*gc, (1-b2)*gc*gc
			p := float64(before[key][i]) - stepSize*m/(math.Sqrt(v)+opts.Eps)
			if decay {
				p -= opts.LR * opts.WeightDecay * p
			}
			got := float64(after[key][i])
			if math.Abs(got-p) > 1e-6+1e-5*math.Abs(p) {
				t.Fatalf("%s[%d]: after one step %.8g, hand-computed %.8g (before %.8g, grad %.3g)", key, i, got, p, before[key][i], g[i])
			}
			checked++
		}
	}
	if checked == 0 || len(grads) != len(before) {
		t.Fatalf("checked %d values of %d parameters (model has %d)", checked, len(grads), len(before))
	}
	// The step counter and moments are in the context.
	if tr.CurrentStep() != 1 {
		t.Errorf("CurrentStep = %d, want 1", tr.CurrentStep())
	}
	if ctx.GetVariableByScopeAndName(OptimizerScope+"/h/0/attn/c_attn", "weight#m") == nil {
		t.Error("no first moment of h.0.attn.c_attn.weight in the context")
	}
}

func TestAccumulationEqualsOneBigBatch(t *testing.T) {
	cfg := testConfig()
	batch := patternBatch(rand.New(rand.NewPCG(2, 2)), 4, 11, cfg.VocabSize)
	run := func(micro, accum int) (map[string][]float32, StepResult) {
		opts := DefaultOptions()
		opts.Steps, opts.MicroBatch, opts.Accum, opts.WarmupRatio, opts.LR = 5, micro, accum, 0, 1e-2
		ctx := context.New()
		tr, err := NewTrainer(testBackend(t), ctx, cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		var mbs [][][]int32
		for a := range accum {
			mbs = append(mbs, batch[a*micro:(a+1)*micro])
		}
		var res StepResult
		for range 2 { // two updates: the second uses the moments of the first
			if res, err = tr.Step(mbs); err != nil {
				t.Fatal(err)
			}
		}
		return paramValues(t, ctx), res
	}
	accParams, accRes := run(2, 2)
	bigParams, bigRes := run(4, 1)
	if math.Abs(accRes.Loss-bigRes.Loss) > 1e-5 || math.Abs(accRes.GradNorm-bigRes.GradNorm) > 1e-4*bigRes.GradNorm {
		t.Errorf("2×2 accumulation %+v, batch 4 %+v", accRes, bigRes)
	}
	for key, want := range bigParams {
		got := accParams[key]
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5 {
				t.Fatalf("%s[%d]: accumulated %g, one batch %g", key, i, got[i], want[i])
			}
		}
	}
}

func TestLossFallsOnTestPreset(t *testing.T) {
	cfg := testConfig()
	opts := DefaultOptions()
	opts.Steps, opts.MicroBatch, opts.Accum, opts.LR = 40, 8, 1, 1e-2
	tr, err := NewTrainer(testBackend(t), context.New(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	heldout := patternBatch(rand.New(rand.NewPCG(4, 4)), 16, 17, cfg.VocabSize)
	first, err := tr.Loss(heldout)
	if err != nil {
		t.Fatal(err)
	}
	for range opts.Steps {
		if _, err := tr.Step([][][]int32{patternBatch(rng, 8, 17, cfg.VocabSize)}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := tr.Loss(heldout)
	if err != nil {
		t.Fatal(err)
	}
	// Uniform over 64 tokens is ln 64 ≈ 4.16; the pattern is learnable.
	if math.Abs(first-math.Log(64)) > 0.3 || last > first-1.0 {
		t.Errorf("held-out loss %g → %g after %d steps, want a drop of more than 1 nat from ≈ln 64", first, last, opts.Steps)
	}
}

func TestResumeFromCheckpointIsBitIdentical(t *testing.T) {
	cfg := testConfig()
	cfg.Dropout = 0.1 // the RNG state must be restored too
	opts := DefaultOptions()
	opts.Steps, opts.MicroBatch, opts.Accum = 6, 2, 2
	batches := make([][][][]int32, opts.Steps)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range batches {
		batches[i] = [][][]int32{patternBatch(rng, 2, 9, cfg.VocabSize), patternBatch(rng, 2, 9, cfg.VocabSize)}
	}
	train := func(tr *Trainer, from, to int) []float64 {
		var losses []float64
		for s := from; s < to; s++ {
			res, err := tr.Step(batches[s])
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, res.Loss)
		}
		return losses
	}
	// Uninterrupted run.
	ctxA := context.New()
	trA, err := NewTrainer(testBackend(t), ctxA, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	lossesA := train(trA, 0, 6)

	// Interrupted at step 3: checkpoint, new context, load, continue.
	dir := t.TempDir()
	ctxB := context.New()
	trB, err := NewTrainer(testBackend(t), ctxB, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	lossesB := train(trB, 0, 3)
	if err := model.SaveCheckpoint(ctxB, dir, 2); err != nil {
		t.Fatal(err)
	}
	ctxC := context.New()
	if found, err := model.LoadCheckpoint(ctxC, dir); err != nil || !found {
		t.Fatalf("LoadCheckpoint: found %v, %v", found, err)
	}
	trC, err := NewTrainer(testBackend(t), ctxC, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if trC.CurrentStep() != 3 {
		t.Fatalf("resumed at step %d, want 3", trC.CurrentStep())
	}
	lossesB = append(lossesB, train(trC, 3, 6)...)
	for i := range lossesA {
		if lossesA[i] != lossesB[i] {
			t.Errorf("step %d: loss %v uninterrupted, %v resumed", i, lossesA[i], lossesB[i])
		}
	}
	pa, pc := paramValues(t, ctxA), paramValues(t, ctxC)
	for key, want := range pa {
		for i := range want {
			if pc[key][i] != want[i] {
				t.Fatalf("%s[%d]: %v uninterrupted, %v resumed", key, i, want[i], pc[key][i])
			}
		}
	}
}

func TestStepRejectsBadInput(t *testing.T) {
	cfg := testConfig()
	opts := DefaultOptions()
	opts.Steps, opts.MicroBatch, opts.Accum = 5, 2, 1
	tr, err := NewTrainer(testBackend(t), context.New(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][][][]int32{
		"micro-batches":  {{{1, 2}, {3, 4}}, {{1, 2}, {3, 4}}},
		"row 1 has 3":    {{{1, 2}, {3, 4, 5}}},
		"token id 64":    {{{1, 2}, {3, 64}}},
		"context length": {{make([]int32, 18), make([]int32, 18)}},
		"at least 2":     {{{1}, {2}}},
	}
	for want, micro := range cases {
		if _, err := tr.Step(micro); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad input (%s): err = %v", want, err)
		}
	}
}

func TestBFloat16TrainingLearns(t *testing.T) {
	cfg := testConfig()
	cfg.DType = dtypes.BFloat16
	opts := DefaultOptions()
	opts.Steps, opts.MicroBatch, opts.Accum, opts.LR = 30, 8, 1, 1e-2
	ctx := context.New()
	tr, err := NewTrainer(testBackend(t), ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 6))
	var first, last StepResult
	for s := range opts.Steps {
		res, err := tr.Step([][][]int32{patternBatch(rng, 8, 17, cfg.VocabSize)})
		if err != nil {
			t.Fatal(err)
		}
		if s == 0 {
			first = res
		}
		last = res
	}
	if math.IsNaN(last.Loss) || last.Loss > first.Loss-0.5 {
		t.Errorf("bf16 training: loss %g → %g", first.Loss, last.Loss)
	}
	// Weights and optimizer state stay float32 (mixed precision).
	for v := range ctx.IterVariables() {
		if isModelParam(v) && v.DType() != dtypes.Float32 {
			t.Errorf("%s/%s is %s, want float32", v.Scope(), v.Name(), v.DType())
		}
	}
}
