//go:build unix

package model

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

// BenchmarkDecode measures generation throughput (new tokens per second, all rows counted) of the
// "tiny" preset with and without the KV cache, at batch 1 and 64, for a ~12k output vocabulary (the
// demo's) and the full 50259. Each iteration generates 63 tokens per row after a 1-token prompt with the
// paper's sampling settings (EOS disabled so every row runs to the end). Backend from $BENCH_BACKEND
// ("go" by default; e.g. "go:dotgeneral_small").
//
//	go test ./model -run '^$' -bench Decode -benchtime 2x
func BenchmarkDecode(b *testing.B) {
	backendName := benchBackendName()
	backend, err := NewBackend(backendName)
	if err != nil {
		b.Fatal(err)
	}
	for _, vocab := range []int{12000, 50259} {
		cfg, _ := Preset("tiny")
		cfg.VocabSize = vocab
		ctx := context.New()
		if err := Init(backend, ctx, cfg, 1); err != nil {
			b.Fatal(err)
		}
		for _, batch := range []int{1, 64} {
			for _, noCache := range []bool{false, true} {
				name := fmt.Sprintf("vocab=%d/batch=%d/cache=%v", vocab, batch, !noCache)
				b.Run(name, func(b *testing.B) {
					gen, err := NewGenerator(backend, ctx, cfg, batch)
					if err != nil {
						b.Fatal(err)
					}
					defer gen.Close()
					prompts := make([][]int, batch)
					for i := range prompts {
						prompts[i] = []int{i % vocab}
					}
					opts := DefaultSampleOptions()
					opts.MaxLength, opts.EOS, opts.NoCache = 64, -1, noCache
					// Compile outside the timing.
					if _, err := gen.Generate(prompts, SampleOptions{MaxLength: 3, EOS: -1, NoCache: noCache}); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					cpuStart := processCPUTime()
					tokens := 0
					for i := range b.N {
						opts.Seed = int64(i)
						out, err := gen.Generate(prompts, opts)
						if err != nil {
							b.Fatal(err)
						}
						for _, continuation := range out {
							tokens += len(continuation)
						}
					}
					b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
					// CPU time per token is steadier than wall time when other jobs share the cores.
					b.ReportMetric((processCPUTime()-cpuStart).Seconds()*1e6/float64(tokens), "cpu-µs/tok")
				})
			}
		}
	}
}

func benchBackendName() string {
	if name := os.Getenv("BENCH_BACKEND"); name != "" {
		return name
	}
	return "go"
}

// processCPUTime is the user + system CPU time of this process so far.
func processCPUTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
