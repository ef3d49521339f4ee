package data

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prefgpt/prefgpt/rundir"
)

// demoRecords reads the embedded demo corpus into memory (real English sentences).
func demoRecords(b *testing.B) []Record {
	b.Helper()
	r, err := OpenDemo()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec)
	}
}

// benchPrefixPack runs the conditional tokenize + prefix + pack path (writing shards) over
// in-memory records and reports tokens/s.
func benchPrefixPack(b *testing.B, freshTokenizer bool) {
	recs := demoRecords(b)
	shared := mustTokenizer(b)
	o := DefaultBuildOptions()
	o.OutDir = b.TempDir()
	var tokens int64
	b.ResetTimer()
	for b.Loop() {
		tok := shared
		if freshTokenizer { // an empty piece cache: every distinct piece is byte-pair-encoded once
			b.StopTimer()
			var err error
			if tok, err = buildTokenizer(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		bld, err := newBuilder(o, tok)
		if err != nil {
			b.Fatal(err)
		}
		for _, rec := range recs {
			bld.ids = bld.appendDocument(bld.ids[:0], rec)
			if err := bld.packer.push(bld.ids); err != nil {
				b.Fatal(err)
			}
		}
		_, n, dropped, err := bld.packer.finish()
		if err != nil {
			b.Fatal(err)
		}
		tokens += n + dropped
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkPrefixPack: the steady state of a long build (frequent pieces cached).
func BenchmarkPrefixPack(b *testing.B) { benchPrefixPack(b, false) }

// BenchmarkPrefixPackColdCache: the same with an empty piece cache each time (~750k tokens).
func BenchmarkPrefixPackColdCache(b *testing.B) { benchPrefixPack(b, true) }

// BenchmarkBuildStreaming builds conditional data from a generated ≥100 MB input (demo
// sentences recombined into new documents) in each format, and reports throughput and memory:
// the process's peak RSS during the build (VmHWM, reset after generating the input) and the
// peak Go heap in use, sampled every 50 ms. Run it on its own:
//
//	go test ./data -run '^$' -bench BuildStreaming -benchtime 1x
//
// PREFGPT_BENCH_MB sets the input size (default 100 MB of JSON text).
func BenchmarkBuildStreaming(b *testing.B) {
	sizeMB := 100
	if s := os.Getenv("PREFGPT_BENCH_MB"); s != "" {
		sizeMB, _ = strconv.Atoi(s)
	}
	for _, ext := range []string{"jsonl", "jsonl.gz", "parquet"} {
		b.Run(ext, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "big."+ext)
			jsonBytes := generateCorpus(b, path, int64(sizeMB)<<20)
			st, _ := os.Stat(path)
			runtime.GC()
			debug.FreeOSMemory()
			resetPeakRSS()

			var peakHeap atomic.Uint64
			stop := make(chan struct{})
			go func() {
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						runtime.ReadMemStats(&ms)
						if ms.HeapInuse > peakHeap.Load() {
							peakHeap.Store(ms.HeapInuse)
						}
					}
				}
			}()
			o := DefaultBuildOptions()
			o.Inputs = []string{path}
			o.OutDir = filepath.Join(b.TempDir(), "out")
			o.HeldoutFraction, o.HeldoutFile = 0.01, filepath.Join(o.OutDir, "heldout.jsonl")
			var m rundir.Manifest
			b.ResetTimer()
			for b.Loop() {
				var err error
				if m, err = Build(o); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			secs := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(m.Tokens+m.TokensDropped)/secs, "tokens/s")
			b.ReportMetric(float64(jsonBytes)/1e6, "json-MB")
			b.ReportMetric(float64(st.Size())/1e6, "file-MB")
			b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
		})
	}
}

// generateCorpus writes documents of randomly recombined demo sentences with random
// log-uniform scores, in the format of path's extension, until their JSON form holds size
// bytes (returned); it streams, holding one document at a time.
func generateCorpus(b *testing.B, path string, size int64) int64 {
	b.Helper()
	var sentences []string
	for _, r := range demoRecords(b) {
		sentences = append(sentences, r.Texts...)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var w io.Writer = f
	var zw *gzip.Writer
	var pw *hfParquetWriter
	switch {
	case strings.HasSuffix(path, ".gz"):
		zw = gzip.NewWriter(f)
		w = zw
	case strings.HasSuffix(path, ".parquet"):
		f.Close()
		pw = newHFParquetWriter(b, path)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	var written int64
	for written < size {
		k := 1 + rng.IntN(40) // Pile documents are long: up to tens of sentences
		rec := Record{NumSents: k, Meta: map[string]any{"pile_set_name": "generated"}}
		for range k {
			rec.Texts = append(rec.Texts, sentences[rng.IntN(len(sentences))])
			score := 1e-5 * float64(int64(1)<<rng.IntN(17)) * rng.Float64()
			rec.Scores = append(rec.Scores, min(score, 1))
		}
		rec.AvgScore = meanOf(rec.Scores)
		line, err := json.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		written += int64(len(line) + 1)
		if pw != nil {
			pw.write(b, rec, false)
			continue
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	if pw != nil {
		pw.close(b)
		return written
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return written
}

// resetPeakRSS resets the kernel's peak-RSS mark (VmHWM) of this process, where Linux allows it.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o644)
}

// peakRSS is the process's peak resident set size (VmHWM), in bytes; 0 where /proc is absent.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
