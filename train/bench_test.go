package train

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prefgpt/prefgpt/model"
)

// benchStep measures one optimizer update of a preset with the given vocabulary on batch×seq tokens
// (Accum 1). The backend is chosen as the CLI would ($GOMLX_BACKEND, else auto).
func benchStep(b *testing.B, preset string, vocab, batch, seq int) {
	backend, err := model.NewBackend("")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := model.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	cfg.VocabSize = vocab
	if seq > cfg.ContextLen {
		cfg.ContextLen = seq
	}
	opts := DefaultOptions()
	opts.Steps, opts.MicroBatch, opts.Accum = 1000, batch, 1
	tr, err := NewTrainer(backend, context.New(), cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	micro := [][][]int32{make([][]int32, batch)}
	for i := range micro[0] {
		row := make([]int32, seq+1)
		for j := range row {
			row[j] = int32(rng.IntN(vocab))
		}
		micro[0][i] = row
	}
	if _, err := tr.Step(micro); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	cpuStart := processCPU()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Step(micro); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*seq)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	// CPU time per step (all threads): stable when other processes share the cores, unlike wall time.
	b.ReportMetric((processCPU()-cpuStart).Seconds()*1000/float64(b.N), "cpu-ms/op")
}

func BenchmarkStepTiny12k(b *testing.B) { benchStep(b, "tiny", 12000, 16, 64) }
func BenchmarkStepTiny50k(b *testing.B) { benchStep(b, "tiny", 50259, 16, 64) }
func BenchmarkStepTest50k(b *testing.B) { benchStep(b, "test", 50259, 16, 16) }
