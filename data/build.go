// Package data is everything between raw text and token blocks for the reproduction of
// "Pretraining Language Models with Human Preferences" (Korbak et al. 2023), conditional training
// for toxicity:
//
//   - Tokenizer: GPT-2's byte-level BPE plus <|aligned|> (50257) and <|misaligned|> (50258);
//   - OpenRecords / NewJSONLReader: streaming, validating readers of detoxify-pile documents
//     (sentences + Detoxify scores) from JSONL, gzip JSONL and Parquet; OpenDemo for the
//     embedded demo corpus; DownloadDetoxifyPile for the paper's data on the HF hub;
//   - Build: the conditional / mle / filter token streams, packed into shuffled uint16 shards
//     with a manifest; OpenBlocks reads them back;
//   - BuildVocabMap / Vocab: an optional smaller output vocabulary for the offline demo;
//   - Scorer implementations (lexicon, precomputed, Detoxify through ONNX).
//
// It never imports the model package.
package data

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/prefgpt/prefgpt/rundir"
)

// Paper defaults (PHF configs/toxicity/conditional.yml).
const (
	DefaultThreshold         = 0.00056 // score above which a sentence is <|misaligned|>
	DefaultDropTokenFraction = 0.01    // sentences left without any control token
	DefaultContextLen        = 1024    // GPT-2's n_positions
)

// BuildOptions configures Build. Values are taken literally (0 is a valid threshold or drop
// fraction); DefaultBuildOptions gives the paper's.
type BuildOptions struct {
	Inputs            []string // .jsonl / .jsonl.gz / .parquet files, read in order; nil = the embedded demo corpus
	OutDir            string   // where shard-NNNNN.bin and manifest.json go (data/<objective>)
	Objective         string   // rundir.Conditional, rundir.MLE or rundir.Filter
	Threshold         float64  // conditional: sentence score > Threshold → <|misaligned|>; filter: document cut-off
	DropTokenFraction float64  // conditional: probability that a sentence gets no control token
	Seed              int64    // drives the drop decisions, the held-out split and the block shuffle
	ContextLen        int      // tokens per block
	Lenient           bool     // skip (and count) bad records instead of failing
	HeldoutFraction   float64  // fraction of documents kept out of the shards
	HeldoutFile       string   // where held-out sentences go (rundir.HeldoutRow lines); required if HeldoutFraction > 0
	MaxDocuments      int      // stop after this many documents read (0 = all)

	// ShardBlocks is the number of blocks per shard, which is also the shuffle window: blocks
	// are shuffled within each shard, so memory stays bounded by one shard (0 = DefaultShardBlocks).
	ShardBlocks int
}

// DefaultShardBlocks is the number of blocks in one shard, i.e. in the in-memory shuffle buffer:
// PHF's shuffle buffer of 20 000 blocks (40 MB of uint16 at 1024 tokens per block).
const DefaultShardBlocks = 20000

// DefaultBuildOptions returns the paper's settings for the conditional objective on the demo corpus.
func DefaultBuildOptions() BuildOptions {
	return BuildOptions{
		Objective: rundir.Conditional, Threshold: DefaultThreshold, DropTokenFraction: DefaultDropTokenFraction,
		Seed: 42, ContextLen: DefaultContextLen,
	}
}

func (o *BuildOptions) validate() error {
	switch o.Objective {
	case rundir.Conditional, rundir.MLE, rundir.Filter:
	default:
		return fmt.Errorf("objective %q: want %q, %q or %q", o.Objective, rundir.Conditional, rundir.MLE, rundir.Filter)
	}
	switch {
	case o.OutDir == "":
		return errors.New("OutDir is empty")
	case !(o.Threshold >= 0 && o.Threshold <= 1):
		return fmt.Errorf("threshold %v is not in [0, 1]", o.Threshold)
	case !(o.DropTokenFraction >= 0 && o.DropTokenFraction <= 1):
		return fmt.Errorf("drop token fraction %v is not in [0, 1]", o.DropTokenFraction)
	case o.ContextLen < 2:
		return fmt.Errorf("context length %d: want at least 2 tokens", o.ContextLen)
	case !(o.HeldoutFraction >= 0 && o.HeldoutFraction < 1):
		return fmt.Errorf("held-out fraction %v is not in [0, 1)", o.HeldoutFraction)
	case o.HeldoutFraction > 0 && o.HeldoutFile == "":
		return fmt.Errorf("held-out fraction %v needs a HeldoutFile", o.HeldoutFraction)
	case o.MaxDocuments < 0:
		return fmt.Errorf("MaxDocuments %d is negative", o.MaxDocuments)
	case o.ShardBlocks < 0:
		return fmt.Errorf("ShardBlocks %d is negative", o.ShardBlocks)
	}
	return nil
}

// Build turns detoxify-pile records into shuffled blocks of token ids for one objective, exactly
// as the reference (PHF apo/dataset_wrappers.py) builds its training stream:
//
//   - conditional: for each sentence, `<|endoftext|>` first if it opens a document, then with
//     probability 1−DropTokenFraction a control token — `<|aligned|>` if score ≤ Threshold,
//     else `<|misaligned|>` — then the sentence's own tokens (each sentence is tokenized on its
//     own, so no BPE merge crosses a sentence boundary; a literal "<|endoftext|>" or
//     "<|aligned|>" inside a sentence stays text — HF's tokenizer in PHF would have turned it
//     into the control id, letting documents forge control tokens);
//   - mle: the same without control tokens (`<|endoftext|>` + sentences);
//   - filter: mle on the documents whose mean sentence score (avg_score) is ≤ Threshold; the
//     others are dropped whole and counted in Manifest.Filtered (documents).
//
// The token stream runs across documents without padding and is cut into ContextLen-token
// blocks; the trailing partial block is dropped (counted in TokensDropped). (PHF cuts per
// ~3.77M-character buffer and drops a partial block per buffer; here only the last one is
// lost.) Blocks are shuffled within each shard with a seeded shuffle and written as uint16
// little-endian shard-NNNNN.bin files, then manifest.json is written (last, atomically: a
// build that fails leaves no manifest).
//
// A seeded HeldoutFraction of documents is kept out of the shards: their sentences go to
// HeldoutFile as rundir.HeldoutRow lines. Which documents are held out depends only on Seed
// and the document's position in the input, so every objective built from the same inputs
// and seed holds out the same documents.
//
// Memory is bounded: records are streamed and one shard of blocks is buffered at a time.
// Manifest counts (Documents, Sentences, Aligned, Misaligned, Unprefixed, score histogram)
// describe the documents that went into the shards.
func Build(opts BuildOptions) (rundir.Manifest, error) {
	if err := opts.validate(); err != nil {
		return rundir.Manifest{}, fmt.Errorf("building data: %w", err)
	}
	tok, err := NewTokenizer()
	if err != nil {
		return rundir.Manifest{}, fmt.Errorf("building data: %w", err)
	}
	b, err := newBuilder(opts, tok)
	if err != nil {
		return rundir.Manifest{}, fmt.Errorf("building data: %w", err)
	}
	defer b.abort()
	if err := b.run(); err != nil {
		return rundir.Manifest{}, fmt.Errorf("building %s data: %w", opts.Objective, err)
	}
	return b.manifest, nil
}

type builder struct {
	opts     BuildOptions
	tok      *Tokenizer
	manifest rundir.Manifest
	hist     *histogram

	dropRNG *rand.Rand // per-sentence drop decisions, in document order
	packer  *packer

	heldoutTmp string
	heldoutF   *os.File
	heldoutW   *bufio.Writer
	heldoutEnc *json.Encoder

	docIndex int64 // documents read so far (held out, filtered and kept)
	ids      []int // scratch: one document's tokens
}

func newBuilder(opts BuildOptions, tok *Tokenizer) (*builder, error) {
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	// Remove the previous build's manifest first: if this build fails, no manifest points at
	// half-rewritten shards. Old shards go too, so a smaller rebuild leaves no strays.
	manifestPath := filepath.Join(opts.OutDir, "manifest.json")
	if err := os.Remove(manifestPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	old, _ := filepath.Glob(filepath.Join(opts.OutDir, "shard-*.bin"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, err
		}
	}
	shardBlocks := opts.ShardBlocks
	if shardBlocks == 0 {
		shardBlocks = DefaultShardBlocks
	}
	source := opts.Inputs
	if len(source) == 0 {
		source = []string{DemoName}
	}
	b := &builder{
		opts: opts,
		tok:  tok,
		manifest: rundir.Manifest{
			Objective: opts.Objective, Source: source, Threshold: opts.Threshold,
			DropTokenFraction: opts.DropTokenFraction, Seed: opts.Seed, ContextLen: opts.ContextLen,
		},
		hist:    newHistogram(opts.Threshold),
		dropRNG: rand.New(rand.NewPCG(uint64(opts.Seed), 0x64726f70)), // "drop"
		packer:  newPacker(opts.OutDir, opts.ContextLen, shardBlocks, opts.Seed),
	}
	if opts.Objective != rundir.Conditional {
		b.manifest.DropTokenFraction = 0
	}
	if opts.HeldoutFraction > 0 {
		if err := os.MkdirAll(filepath.Dir(opts.HeldoutFile), 0o755); err != nil {
			return nil, err
		}
		b.heldoutTmp = opts.HeldoutFile + ".tmp"
		f, err := os.Create(b.heldoutTmp)
		if err != nil {
			return nil, err
		}
		b.heldoutF, b.heldoutW = f, bufio.NewWriterSize(f, 1<<16)
		b.heldoutEnc = json.NewEncoder(b.heldoutW)
		b.heldoutEnc.SetEscapeHTML(false)
	}
	return b, nil
}

// abort releases files after a failure (a no-op after success).
func (b *builder) abort() {
	if b.heldoutF != nil {
		b.heldoutF.Close()
		os.Remove(b.heldoutTmp)
		b.heldoutF = nil
	}
	b.packer.abort()
}

func (b *builder) run() error {
	if len(b.opts.Inputs) == 0 {
		r, err := OpenDemo()
		if err != nil {
			return err
		}
		if err := b.readAll(r); err != nil {
			return err
		}
	}
	for _, path := range b.opts.Inputs {
		if b.full() {
			break
		}
		r, err := OpenRecords(path, ReadOptions{Lenient: b.opts.Lenient})
		if err != nil {
			return err
		}
		if err := b.readAll(r); err != nil {
			return err
		}
	}
	return b.finish()
}

func (b *builder) full() bool {
	return b.opts.MaxDocuments > 0 && b.docIndex >= int64(b.opts.MaxDocuments)
}

// readAll feeds every record of r to the builder and closes r.
func (b *builder) readAll(r RecordReader) error {
	defer r.Close()
	for !b.full() {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := b.addDocument(rec); err != nil {
			return err
		}
	}
	b.manifest.Skipped += r.Skipped()
	return r.Close()
}

// addDocument routes one document to the held-out file, the filter, or the token stream.
func (b *builder) addDocument(rec Record) error {
	index := b.docIndex
	b.docIndex++
	if b.opts.HeldoutFraction > 0 && isHeldout(b.opts.Seed, index, b.opts.HeldoutFraction) {
		for i, text := range rec.Texts {
			row := rundir.HeldoutRow{Text: text, Score: rec.Scores[i], Toxic: rec.Scores[i] > b.opts.Threshold}
			if err := b.heldoutEnc.Encode(row); err != nil {
				return fmt.Errorf("writing %s: %w", b.heldoutTmp, err)
			}
		}
		return nil
	}
	if b.opts.Objective == rundir.Filter && meanScore(rec.Scores) > b.opts.Threshold {
		b.manifest.Filtered++
		return nil
	}
	b.manifest.Documents++
	b.ids = b.appendDocument(b.ids[:0], rec)
	return b.packer.push(b.ids)
}

// appendDocument appends the token stream of one document (see Build) and counts its sentences.
func (b *builder) appendDocument(ids []int, rec Record) []int {
	for i, text := range rec.Texts {
		score := rec.Scores[i]
		b.manifest.Sentences++
		b.hist.add(score)
		if i == 0 {
			ids = append(ids, EOS) // documents are separated by <|endoftext|>, before any control token
		}
		if b.opts.Objective == rundir.Conditional {
			// One draw per sentence, in order: prefix with probability 1 − DropTokenFraction.
			if b.dropRNG.Float64() >= b.opts.DropTokenFraction {
				if score <= b.opts.Threshold {
					ids = append(ids, Aligned)
					b.manifest.Aligned++
				} else {
					ids = append(ids, Misaligned)
					b.manifest.Misaligned++
				}
			} else {
				b.manifest.Unprefixed++
			}
		} else {
			b.manifest.Unprefixed++
		}
		// Each sentence is tokenized on its own, as the reference does.
		ids = b.tok.AppendEncode(ids, text)
	}
	return ids
}

func meanScore(scores []float64) float64 {
	if len(scores) == 0 {
		return 0
	}
	sum := 0.0
	for _, s := range scores {
		sum += s
	}
	return sum / float64(len(scores))
}

// isHeldout decides, from the seed and the document's index alone, whether a document is held
// out: a splitmix64 hash of (seed, index) mapped to [0, 1) and compared with the fraction.
func isHeldout(seed, index int64, fraction float64) bool {
	x := uint64(seed)*0x9E3779B97F4A7C15 + uint64(index) + 0x68656c64 // "held"
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return float64(x>>11)/(1<<53) < fraction
}

func (b *builder) finish() error {
	shards, tokens, dropped, err := b.packer.finish()
	if err != nil {
		return err
	}
	b.manifest.Shards = shards
	b.manifest.Tokens = tokens
	b.manifest.TokensDropped = dropped
	for _, s := range shards {
		b.manifest.Blocks += s.Blocks
	}
	b.manifest.ScoreHistogram = b.hist.export()
	b.manifest.Created = time.Now().UTC().Format(time.RFC3339)
	if b.heldoutF != nil {
		if err := b.heldoutW.Flush(); err != nil {
			return fmt.Errorf("writing %s: %w", b.heldoutTmp, err)
		}
		if err := b.heldoutF.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", b.heldoutTmp, err)
		}
		b.heldoutF = nil
		if err := os.Rename(b.heldoutTmp, b.opts.HeldoutFile); err != nil {
			return err
		}
	}
	return rundir.WriteJSON(filepath.Join(b.opts.OutDir, "manifest.json"), b.manifest)
}

// packer cuts the token stream into blocks, buffers one shard of blocks, shuffles them and
// writes the shard.
type packer struct {
	dir         string
	contextLen  int
	shardBlocks int
	seed        int64

	buf     []uint16 // the current shard's tokens, plus the partial block being filled
	shards  []rundir.Shard
	written []string // shard files written, removed on abort
	out     []byte   // scratch for encoding
}

func newPacker(dir string, contextLen, shardBlocks int, seed int64) *packer {
	return &packer{dir: dir, contextLen: contextLen, shardBlocks: shardBlocks, seed: seed,
		buf: make([]uint16, 0, min(shardBlocks, 1<<12)*contextLen+contextLen)}
}

func (p *packer) push(ids []int) error {
	full := p.shardBlocks * p.contextLen
	if need := len(p.buf) + len(ids); need > cap(p.buf) {
		// Grow by doubling but not past one shard (plus a block): append's own growth could
		// overshoot a 40 MB shard buffer to twice that.
		grown := make([]uint16, len(p.buf), max(need, min(2*cap(p.buf), full+p.contextLen)))
		copy(grown, p.buf)
		p.buf = grown
	}
	for _, id := range ids {
		p.buf = append(p.buf, uint16(id))
	}
	for len(p.buf) >= full {
		if err := p.writeShard(p.shardBlocks); err != nil {
			return err
		}
		// Keep the tokens past the shard for the next one.
		n := copy(p.buf, p.buf[full:])
		p.buf = p.buf[:n]
	}
	return nil
}

// writeShard shuffles the first n blocks of the buffer and writes them as the next shard.
func (p *packer) writeShard(n int) error {
	index := len(p.shards)
	name := fmt.Sprintf("shard-%05d.bin", index)
	path := filepath.Join(p.dir, name)
	// A fresh seeded shuffle per shard: reproducible, and independent of how many shards came before.
	rng := rand.New(rand.NewPCG(uint64(p.seed), 0x73687566^uint64(index))) // "shuf"
	order := rng.Perm(n)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	p.written = append(p.written, path)
	w := bufio.NewWriterSize(f, 1<<20)
	if cap(p.out) < 2*p.contextLen {
		p.out = make([]byte, 2*p.contextLen)
	}
	out := p.out[:2*p.contextLen]
	for _, blk := range order {
		for i, id := range p.buf[blk*p.contextLen : (blk+1)*p.contextLen] {
			binary.LittleEndian.PutUint16(out[2*i:], id)
		}
		if _, err := w.Write(out); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	p.shards = append(p.shards, rundir.Shard{File: name, Blocks: int64(n)})
	return nil
}

// finish writes the last (smaller) shard and drops the trailing partial block.
func (p *packer) finish() (shards []rundir.Shard, tokens, dropped int64, err error) {
	n := len(p.buf) / p.contextLen
	dropped = int64(len(p.buf) - n*p.contextLen)
	if n > 0 {
		if err := p.writeShard(n); err != nil {
			return nil, 0, 0, err
		}
	}
	p.buf = p.buf[:0]
	for _, s := range p.shards {
		tokens += s.Blocks * int64(p.contextLen)
	}
	p.written = nil // success: keep the files
	return p.shards, tokens, dropped, nil
}

func (p *packer) abort() {
	for _, f := range p.written {
		os.Remove(f)
	}
	p.written = nil
}

// Score histogram: log10-spaced bins from 1e-5 to 1, five per decade. Scores below 1e-5
// (including 0) count in the first bin, 1 in the last.
const (
	histMinExp        = -5
	histBinsPerDecade = 5
	histBins          = -histMinExp * histBinsPerDecade
)

type histogram struct {
	threshold                   float64
	counts, aligned, misaligned [histBins]int64
}

func newHistogram(threshold float64) *histogram { return &histogram{threshold: threshold} }

func (h *histogram) add(score float64) {
	bin := 0
	if score > 0 {
		bin = int(math.Floor((math.Log10(score) - histMinExp) * histBinsPerDecade))
	}
	bin = min(max(bin, 0), histBins-1)
	h.counts[bin]++
	// The split follows the threshold (as the control token would), not the bin edges.
	if score <= h.threshold {
		h.aligned[bin]++
	} else {
		h.misaligned[bin]++
	}
}

func (h *histogram) export() *rundir.Histogram {
	out := &rundir.Histogram{
		Edges:      make([]float64, histBins+1),
		Counts:     append([]int64(nil), h.counts[:]...),
		Aligned:    append([]int64(nil), h.aligned[:]...),
		Misaligned: append([]int64(nil), h.misaligned[:]...),
	}
	for i := range out.Edges {
		out.Edges[i] = math.Pow(10, float64(histMinExp)+float64(i)/histBinsPerDecade)
	}
	return out
}
