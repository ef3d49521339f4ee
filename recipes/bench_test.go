package recipes

import (
	"math/rand/v2"
	"testing"

	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prefgpt/prefgpt/model"
	"github.com/prefgpt/prefgpt/train"
)

// demoBenchVocab is the size of the demo's restricted output vocabulary (vocab.json with
// VocabMinCount 3 on the embedded corpus: 4207 rows).
const demoBenchVocab = 4207

func demoBenchConfig(b *testing.B) model.Config {
	cfg, err := model.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	cfg.VocabSize = demoBenchVocab
	cfg.ContextLen = DemoTrainOptions("").ContextLen
	return cfg
}

// newDemoBenchTrainer is a trainer of the demo setting (DemoTrainOptions: tiny preset, 16 sequences of
// 64 tokens, AdamW, clipping) with one step's random tokens, compiled by a first step.
func newDemoBenchTrainer(b *testing.B, seed uint64) (*train.Trainer, [][][]int32, int) {
	cfg := demoBenchConfig(b)
	backend, err := model.NewBackend("go")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(backend.Finalize)
	opt := DemoTrainOptions("").Opt
	opt.Steps = 1000
	ctx := mlctx.New()
	trainer, err := train.NewTrainer(backend, ctx, cfg, opt)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	micro := make([][][]int32, opt.Accum)
	for a := range micro {
		micro[a] = make([][]int32, opt.MicroBatch)
		for m := range micro[a] {
			micro[a][m] = make([]int32, cfg.ContextLen)
			for i := range micro[a][m] {
				micro[a][m][i] = int32(rng.IntN(cfg.VocabSize))
			}
		}
	}
	if _, err := trainer.Step(micro); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	return trainer, micro, opt.MicroBatch * opt.Accum * cfg.ContextLen
}

// BenchmarkDemoTrainStep is one optimizer step of the demo setting on random tokens.
func BenchmarkDemoTrainStep(b *testing.B) {
	trainer, micro, tokensPerStep := newDemoBenchTrainer(b, 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := trainer.Step(micro); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tokensPerStep)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDemoTrainStepSideBySide is one step of each of two demo models at the same time, as
// Reproduce trains the conditional model and the MLE baseline (ReproduceOptions.ConcurrentTraining):
// compare its ns/op with two BenchmarkDemoTrainStep ops.
func BenchmarkDemoTrainStepSideBySide(b *testing.B) {
	t1, m1, tokensPerStep := newDemoBenchTrainer(b, 1)
	t2, m2, _ := newDemoBenchTrainer(b, 2)
	b.ResetTimer()
	for b.Loop() {
		errs := make(chan error, 1)
		go func() {
			_, err := t2.Step(m2)
			errs <- err
		}()
		if _, err := t1.Step(m1); err != nil {
			b.Fatal(err)
		}
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(tokensPerStep)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkSampling generates a batch of 128 samples of up to 64 tokens (the demo's cap) from the demo
// model (random weights: samples run to the max length, the worst case) with the paper's sampling setting.
func BenchmarkSampling(b *testing.B) {
	cfg := demoBenchConfig(b)
	backend, err := model.NewBackend("go")
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Finalize()
	ctx := mlctx.New()
	if err := model.Init(backend, ctx, cfg, 42); err != nil {
		b.Fatal(err)
	}
	const batch = 128
	gen, err := model.NewGenerator(backend, ctx, cfg, batch)
	if err != nil {
		b.Fatal(err)
	}
	s := DemoEvalOptions("").Sampling
	s.EOS, s.BannedIDs = 0, []int{1, 2} // rows of EOS and the control tokens in this synthetic vocabulary
	prompts := make([][]int, batch)
	for i := range prompts {
		prompts[i] = []int{0, 1}
	}
	if _, err := gen.Generate(prompts, s); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	generated := 0
	for b.Loop() {
		s.Seed++
		out, err := gen.Generate(prompts, s)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			generated += len(o)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(generated)/b.Elapsed().Seconds(), "tokens/s")
}
