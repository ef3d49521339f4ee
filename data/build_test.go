package data

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prefgpt/prefgpt/rundir"
)

// knownRecords are documents whose scores sit on both sides of the paper's threshold,
// including exactly on it (≤ means aligned).
func knownRecords() []Record {
	return []Record{
		{Texts: []string{"The cat sat on the mat. ", "It was happy.\n"}, Scores: []float64{0.0001, 0.00056}, NumSents: 2, AvgScore: 0.00033},
		{Texts: []string{"You are an idiot! ", "Sorry, ", "I did not mean it."}, Scores: []float64{0.97, 0.000561, 0}, NumSents: 3, AvgScore: 0.32352},
		{Texts: []string{}, Scores: []float64{}, NumSents: 0},
		{Texts: []string{"Ünïcödé 你好 😀 and <|endoftext|> as text."}, Scores: []float64{1}, NumSents: 1, AvgScore: 1},
		{Texts: []string{"Short. ", "Another short one. ", "A third sentence follows here. ", "Done."}, Scores: []float64{0.0002, 0.0003, 0.0004, 0.0005}, NumSents: 4, AvgScore: 0.00035},
		{Texts: []string{"Numbers 1234 and code fmt.Println(x) ", "and more text to fill blocks."}, Scores: []float64{0.5, 0.0001}, NumSents: 2, AvgScore: 0.25005},
	}
}

// expectedStream is the reference token stream, written from the spec rather than from Build:
// per document EOS, then per sentence a control token (if prefixed) and the sentence's tokens.
func expectedStream(t testing.TB, recs []Record, objective string, threshold float64) []int {
	t.Helper()
	tok := mustTokenizer(t)
	var ids []int
	for _, r := range recs {
		if objective == rundir.Filter && meanOf(r.Scores) > threshold {
			continue
		}
		for i, s := range r.Texts {
			if i == 0 {
				ids = append(ids, EOS)
			}
			if objective == rundir.Conditional {
				if r.Scores[i] <= threshold {
					ids = append(ids, Aligned)
				} else {
					ids = append(ids, Misaligned)
				}
			}
			ids = append(ids, tok.Encode(s)...)
		}
	}
	return ids
}

func meanOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// writeInput writes records in the format the file name asks for.
func writeInput(t testing.TB, path string, recs []Record) {
	t.Helper()
	if strings.HasSuffix(path, ".parquet") {
		writeHFParquet(t, path, recs, nil)
		return
	}
	writeJSONL(t, path, recordLines(t, recs))
}

// readStream reads every block in order and concatenates them.
func readStream(t testing.TB, manifestPath string) ([]int, *Blocks) {
	t.Helper()
	b, err := OpenBlocks(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var ids []int
	for i := range b.Len() {
		blk, err := b.Block(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(blk) != b.ContextLen() {
			t.Fatalf("block %d has %d tokens, want %d", i, len(blk), b.ContextLen())
		}
		for _, id := range blk {
			ids = append(ids, int(id))
		}
	}
	return ids, b
}

func testOptions(dir, objective string, inputs ...string) BuildOptions {
	o := DefaultBuildOptions()
	o.Inputs = inputs
	o.OutDir = filepath.Join(dir, objective)
	o.Objective = objective
	o.ContextLen = 16
	o.ShardBlocks = 1 // one block per shard: shard order is stream order, so the stream can be checked exactly
	return o
}

func countOf(ids []int, id int) (n int64) {
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

// With no dropped tokens every prefix decision is deterministic: the stream must equal the
// spec's, for every input format, and the manifest must count it.
func TestBuildConditionalStreamAllFormats(t *testing.T) {
	recs := knownRecords()
	want := expectedStream(t, recs, rundir.Conditional, DefaultThreshold)
	var first []byte
	for _, name := range []string{"in.jsonl", "in.jsonl.gz", "in.parquet"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, name)
			writeInput(t, in, recs)
			o := testOptions(dir, rundir.Conditional, in)
			o.DropTokenFraction = 0
			m, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
			full := len(want) / o.ContextLen * o.ContextLen
			if !reflect.DeepEqual(got, want[:full]) {
				t.Fatalf("stream\n got  %v\n want %v", got, want[:full])
			}
			// Hand-counted from knownRecords: 12 sentences; aligned are ≤ 0.00056.
			if m.Documents != 6 || m.Sentences != 12 || m.Aligned != 8 || m.Misaligned != 4 || m.Unprefixed != 0 {
				t.Errorf("counts: %d docs, %d sentences, %d aligned, %d misaligned, %d unprefixed; want 6, 12, 8, 4, 0",
					m.Documents, m.Sentences, m.Aligned, m.Misaligned, m.Unprefixed)
			}
			if m.Blocks != int64(full/o.ContextLen) || m.Tokens != int64(full) || m.TokensDropped != int64(len(want)-full) {
				t.Errorf("packing: %d blocks, %d tokens, %d dropped; stream has %d tokens", m.Blocks, m.Tokens, m.TokensDropped, len(want))
			}
			if m.TokensDropped >= int64(o.ContextLen) {
				t.Errorf("dropped %d tokens, more than a partial block", m.TokensDropped)
			}
			if len(m.Shards) != int(m.Blocks) || !reflect.DeepEqual(m.Source, []string{in}) || m.Objective != rundir.Conditional {
				t.Errorf("manifest: %+v", m)
			}
			// Every format gives byte-identical shards.
			var all []byte
			for _, s := range m.Shards {
				b, err := os.ReadFile(filepath.Join(o.OutDir, s.File))
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			if first == nil {
				first = all
			} else if !bytes.Equal(first, all) {
				t.Errorf("shards differ from the JSONL build")
			}
		})
	}
}

func TestBuildEOSPlacement(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	recs := knownRecords()
	writeInput(t, in, recs)
	o := testOptions(dir, rundir.Conditional, in)
	o.DropTokenFraction = 0
	o.ContextLen = 4
	if _, err := Build(o); err != nil {
		t.Fatal(err)
	}
	got, _ := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
	// Each EOS is immediately followed by a control token and comes only at document starts:
	// one per non-empty document.
	eos := 0
	for i, id := range got {
		if id == EOS {
			eos++
			if i+1 < len(got) && got[i+1] != Aligned && got[i+1] != Misaligned {
				t.Errorf("EOS at %d followed by %d, want a control token", i, got[i+1])
			}
			if i > 0 && (got[i-1] == Aligned || got[i-1] == Misaligned) {
				t.Errorf("control token before EOS at %d", i)
			}
		}
	}
	if eos != 5 { // 6 documents, one without sentences
		t.Errorf("%d EOS tokens, want 5", eos)
	}
	if got[0] != EOS || got[1] != Aligned {
		t.Errorf("stream starts %v, want EOS, <|aligned|>", got[:2])
	}
}

func TestBuildMLEAndFilter(t *testing.T) {
	recs := knownRecords()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl.gz")
	writeInput(t, in, recs)
	for _, objective := range []string{rundir.MLE, rundir.Filter} {
		t.Run(objective, func(t *testing.T) {
			o := testOptions(dir, objective, in)
			m, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
			want := expectedStream(t, recs, objective, DefaultThreshold)
			full := len(want) / o.ContextLen * o.ContextLen
			if !reflect.DeepEqual(got, want[:full]) {
				t.Fatalf("stream\n got  %v\n want %v", got, want[:full])
			}
			if countOf(got, Aligned)+countOf(got, Misaligned) != 0 {
				t.Errorf("%s stream holds control tokens", objective)
			}
			if m.Aligned+m.Misaligned != 0 || m.Unprefixed != m.Sentences || m.DropTokenFraction != 0 {
				t.Errorf("%s manifest counts: %+v", objective, m)
			}
			// filter keeps documents with mean score ≤ threshold: 1st (0.00033), 3rd (empty), 5th (0.00035).
			wantDocs, wantFiltered := int64(6), int64(0)
			if objective == rundir.Filter {
				wantDocs, wantFiltered = 3, 3
			}
			if m.Documents != wantDocs || m.Filtered != wantFiltered {
				t.Errorf("%s: %d documents, %d filtered; want %d, %d", objective, m.Documents, m.Filtered, wantDocs, wantFiltered)
			}
		})
	}
}

// manyRecords makes n documents of a few generated sentences with log-uniform scores.
func manyRecords(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 7))
	words := strings.Fields("the a cat dog runs quickly over under big small red idea people think said would could 42 1999 hello world ok !")
	recs := make([]Record, n)
	for d := range recs {
		k := 1 + rng.IntN(4)
		r := Record{NumSents: k}
		for range k {
			var sb strings.Builder
			for w := range 3 + rng.IntN(8) {
				if w > 0 {
					sb.WriteByte(' ')
				}
				sb.WriteString(words[rng.IntN(len(words))])
			}
			sb.WriteString(fmt.Sprintf(" #%d. ", d))
			r.Texts = append(r.Texts, sb.String())
			r.Scores = append(r.Scores, math.Pow(10, -5+5*rng.Float64()))
		}
		r.AvgScore = meanOf(r.Scores)
		recs[d] = r
	}
	return recs
}

func TestBuildDropFraction(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	recs := manyRecords(8000, 1)
	writeInput(t, in, recs)
	for _, drop := range []float64{0.01, 0.2} {
		o := testOptions(dir, rundir.Conditional, in)
		o.DropTokenFraction = drop
		o.ContextLen = 64
		o.ShardBlocks = 0
		m, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		if m.Aligned+m.Misaligned+m.Unprefixed != m.Sentences {
			t.Fatalf("aligned %d + misaligned %d + unprefixed %d != sentences %d", m.Aligned, m.Misaligned, m.Unprefixed, m.Sentences)
		}
		// Unprefixed ~ Binomial(sentences, drop): within 5 standard deviations.
		n := float64(m.Sentences)
		mean, sd := n*drop, math.Sqrt(n*drop*(1-drop))
		if math.Abs(float64(m.Unprefixed)-mean) > 5*sd {
			t.Errorf("drop %v: %d of %d sentences unprefixed, want %.0f ± %.0f", drop, m.Unprefixed, m.Sentences, mean, 5*sd)
		}
		// Prefixed sentences follow the threshold exactly.
		var wantAligned, wantMis int64
		for _, r := range recs {
			for _, s := range r.Scores {
				if s <= o.Threshold {
					wantAligned++
				} else {
					wantMis++
				}
			}
		}
		gotFrac := float64(m.Aligned) / float64(m.Aligned+m.Misaligned)
		wantFrac := float64(wantAligned) / float64(wantAligned+wantMis)
		if math.Abs(gotFrac-wantFrac) > 0.02 {
			t.Errorf("aligned fraction among prefixed %.3f, want ≈ %.3f", gotFrac, wantFrac)
		}
		// The blocks hold the counted control tokens (the dropped tail may hold a few).
		got, _ := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
		a, mis := countOf(got, Aligned), countOf(got, Misaligned)
		if a > m.Aligned || mis > m.Misaligned || a+mis+m.TokensDropped < m.Aligned+m.Misaligned {
			t.Errorf("blocks hold %d aligned, %d misaligned; manifest %d, %d (%d tokens dropped)", a, mis, m.Aligned, m.Misaligned, m.TokensDropped)
		}
		h := m.ScoreHistogram
		var total, al int64
		for i := range h.Counts {
			if h.Aligned[i]+h.Misaligned[i] != h.Counts[i] {
				t.Errorf("histogram bin %d: %d + %d != %d", i, h.Aligned[i], h.Misaligned[i], h.Counts[i])
			}
			if h.Counts[i] > 0 && i > 0 && i < len(h.Counts)-1 {
				// a bin's scores lie within its edges (checked on the generating scores' count)
				if h.Edges[i] >= h.Edges[i+1] {
					t.Errorf("edges not increasing at %d", i)
				}
			}
			total += h.Counts[i]
			al += h.Aligned[i]
		}
		if total != m.Sentences || al != wantAligned || len(h.Edges) != len(h.Counts)+1 {
			t.Errorf("histogram: %d sentences (want %d), %d aligned (want %d)", total, m.Sentences, al, wantAligned)
		}
	}
}

func TestHistogramBins(t *testing.T) {
	h := newHistogram(DefaultThreshold)
	for _, s := range []float64{0, 1e-7, 1e-5, 0.00056, 0.0006, 0.5, 1} {
		h.add(s)
	}
	out := h.export()
	binOf := func(s float64) int {
		for i := range out.Counts {
			if s < out.Edges[i+1] {
				return i
			}
		}
		return len(out.Counts) - 1
	}
	want := make([]int64, len(out.Counts))
	for _, s := range []float64{0, 1e-7, 1e-5, 0.00056, 0.0006, 0.5, 1} {
		want[binOf(s)]++
	}
	if !reflect.DeepEqual(out.Counts, want) {
		t.Errorf("counts %v, want %v", out.Counts, want)
	}
	if math.Abs(out.Edges[0]-1e-5) > 1e-12 || out.Edges[len(out.Edges)-1] != 1 {
		t.Errorf("edges %v", out.Edges)
	}
	var al int64
	for _, a := range out.Aligned {
		al += a
	}
	if al != 4 { // 0, 1e-7, 1e-5, 0.00056
		t.Errorf("%d aligned, want 4", al)
	}
}

// Shuffling permutes whole blocks, reproducibly from the seed.
func TestBuildShuffle(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeInput(t, in, manyRecords(600, 2))
	build := func(name string, seed int64, shardBlocks int) ([]int, rundir.Manifest) {
		o := testOptions(dir, rundir.Conditional, in)
		o.OutDir = filepath.Join(dir, name)
		o.Seed, o.ShardBlocks, o.ContextLen = seed, shardBlocks, 32
		m, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
		return ids, m
	}
	ordered, m1 := build("ordered", 1, 1)
	shuffled, m2 := build("shuffled", 1, 100)
	again, _ := build("again", 1, 100)
	other, _ := build("other", 2, 100)
	if m1.Blocks < 200 || len(m2.Shards) != int((m2.Blocks+99)/100) {
		t.Fatalf("%d blocks, %d shards", m2.Blocks, len(m2.Shards))
	}
	blocksOf := func(ids []int) []string {
		var out []string
		for i := 0; i < len(ids); i += 32 {
			out = append(out, fmt.Sprint(ids[i:i+32]))
		}
		return out
	}
	a, b := blocksOf(ordered), blocksOf(shuffled)
	if reflect.DeepEqual(a, b) {
		t.Fatal("blocks were not shuffled")
	}
	// Within each shard, the shuffled blocks are a permutation of the same stream's blocks.
	for s := 0; s < len(a); s += 100 {
		end := min(s+100, len(a))
		x, y := slices.Clone(a[s:end]), slices.Clone(b[s:end])
		slices.Sort(x)
		slices.Sort(y)
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("shard starting at block %d is not a permutation of the stream's blocks", s)
		}
	}
	if !reflect.DeepEqual(shuffled, again) {
		t.Error("same seed, different shards")
	}
	if reflect.DeepEqual(shuffled, other) {
		t.Error("different seed, same shards")
	}
}

func TestBuildHeldout(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	recs := manyRecords(2000, 3)
	writeInput(t, in, recs)
	heldout := map[string][]rundir.HeldoutRow{}
	for _, objective := range []string{rundir.Conditional, rundir.MLE} {
		o := testOptions(dir, objective, in)
		o.HeldoutFraction = 0.1
		o.HeldoutFile = filepath.Join(dir, objective+"-heldout.jsonl")
		o.ShardBlocks = 0
		m, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := rundir.ReadJSONL[rundir.HeldoutRow](o.HeldoutFile)
		if err != nil {
			t.Fatal(err)
		}
		heldout[objective] = rows
		// Held-out documents (identified by their "#<doc>" marker) are not in the shards.
		tok := mustTokenizer(t)
		ids, _ := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
		text := tok.Decode(ids, false)
		heldDocs := map[string]bool{}
		var sentences int64
		for _, r := range rows {
			doc := r.Text[strings.LastIndex(r.Text, "#"):]
			heldDocs[doc] = true
			if strings.Contains(text, r.Text) {
				t.Fatalf("held-out sentence %q is in the training blocks", r.Text)
			}
			if r.Toxic != (r.Score > o.Threshold) {
				t.Errorf("held-out %q: toxic %v for score %v", r.Text, r.Toxic, r.Score)
			}
			sentences++
		}
		// ~10% of 2000 documents: Binomial(2000, 0.1) = 200 ± 13.4; 5 sd.
		if n := len(heldDocs); n < 133 || n > 267 {
			t.Errorf("%d documents held out, want ≈ 200", n)
		}
		if m.Documents+int64(len(heldDocs)) != 2000 {
			t.Errorf("%d documents in shards + %d held out != 2000", m.Documents, len(heldDocs))
		}
		var total int64
		for _, r := range recs {
			total += int64(len(r.Texts))
		}
		if m.Sentences+sentences != total {
			t.Errorf("%d sentences in shards + %d held out != %d", m.Sentences, sentences, total)
		}
	}
	if !reflect.DeepEqual(heldout[rundir.Conditional], heldout[rundir.MLE]) {
		t.Error("objectives held out different documents")
	}
}

func TestBuildMaxDocumentsAndDemo(t *testing.T) {
	dir := t.TempDir()
	o := DefaultBuildOptions()
	o.OutDir = filepath.Join(dir, "demo")
	o.MaxDocuments = 300
	o.ContextLen = 64
	m, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if m.Documents != 300 || !reflect.DeepEqual(m.Source, []string{DemoName}) || m.Blocks == 0 {
		t.Fatalf("demo build: %+v", m)
	}
	if m.Aligned == 0 || m.Misaligned == 0 {
		t.Errorf("demo corpus gave %d aligned, %d misaligned sentences: want both", m.Aligned, m.Misaligned)
	}
}

func TestBuildLenientAndErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bad.jsonl")
	lines := recordLines(t, knownRecords())
	lines = append(lines[:2], append([]string{`{"texts": ["x"], "scores": [2], "avg_score": 1, "num_sents": 1}`}, lines[2:]...)...)
	writeJSONL(t, in, lines)
	o := testOptions(dir, rundir.Conditional, in)
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), in+": line 3") || !strings.Contains(err.Error(), `"scores"`) {
		t.Fatalf("strict build: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.OutDir, "manifest.json")); !os.IsNotExist(err) {
		t.Errorf("a failed build left a manifest (%v)", err)
	}
	if shards, _ := filepath.Glob(filepath.Join(o.OutDir, "shard-*.bin")); len(shards) != 0 {
		t.Errorf("a failed build left shards %v", shards)
	}
	o.Lenient = true
	m, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if m.Skipped != 1 || m.Documents != 6 {
		t.Errorf("lenient: %d skipped, %d documents; want 1, 6", m.Skipped, m.Documents)
	}
	for _, bad := range []func(*BuildOptions){
		func(o *BuildOptions) { o.Objective = "rlhf" },
		func(o *BuildOptions) { o.Threshold = -1 },
		func(o *BuildOptions) { o.DropTokenFraction = 1.5 },
		func(o *BuildOptions) { o.ContextLen = 0 },
		func(o *BuildOptions) { o.HeldoutFraction = 0.1; o.HeldoutFile = "" },
		func(o *BuildOptions) { o.OutDir = "" },
	} {
		o := testOptions(dir, rundir.Conditional, in)
		bad(&o)
		if _, err := Build(o); err == nil {
			t.Errorf("Build(%+v) accepted bad options", o)
		}
	}
}

func TestOpenBlocksValidation(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeInput(t, in, manyRecords(50, 4))
	o := testOptions(dir, rundir.MLE, in)
	o.ShardBlocks = 5
	m, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(o.OutDir, "manifest.json")
	b, err := OpenBlocks(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != int(m.Blocks) {
		t.Errorf("Len %d, manifest %d", b.Len(), m.Blocks)
	}
	if _, err := b.Block(b.Len()); err == nil {
		t.Error("block past the end read without error")
	}
	// The last block of the first shard is the file's last 2·ContextLen bytes.
	raw, _ := os.ReadFile(filepath.Join(o.OutDir, m.Shards[0].File))
	blk, err := b.Block(int(m.Shards[0].Blocks) - 1)
	if err != nil {
		t.Fatal(err)
	}
	for k, id := range blk {
		if want := binary.LittleEndian.Uint16(raw[len(raw)-2*o.ContextLen+2*k:]); id != want {
			t.Fatalf("token %d: %d, file has %d", k, id, want)
		}
	}
	b.Close()

	shard := filepath.Join(o.OutDir, m.Shards[1].File)
	if err := os.Truncate(shard, int64(len(raw))-2); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBlocks(manifest); err == nil || !strings.Contains(err.Error(), shard) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated shard: err = %v", err)
	}
	os.Remove(shard)
	if _, err := OpenBlocks(manifest); err == nil || !strings.Contains(err.Error(), m.Shards[1].File) {
		t.Errorf("missing shard: err = %v", err)
	}
	if _, err := OpenBlocks(filepath.Join(dir, "nope", "manifest.json")); err == nil || !strings.Contains(err.Error(), `"data" stage`) {
		t.Errorf("missing manifest: err = %v", err)
	}
}
