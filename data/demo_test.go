package data

import (
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// demoCounts are the numbers README.md states about the embedded corpus.
type demoCounts struct {
	documents, sentences, misaligned, aligned, above05, tokens int
}

// readDemoREADME pulls the table of data/demo/README.md ("| documents | 2245 |" ...).
func readDemoREADME(t *testing.T) demoCounts {
	t.Helper()
	raw, err := os.ReadFile("demo/README.md")
	if err != nil {
		t.Fatal(err)
	}
	get := func(label string) int {
		re := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(label) + ` \| (\d+)`)
		m := re.FindStringSubmatch(string(raw))
		if m == nil {
			t.Fatalf("README.md has no row %q", label)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return demoCounts{
		documents:  get("documents"),
		sentences:  get("sentences"),
		misaligned: get("misaligned sentences (score > 0.00056)"),
		aligned:    get("aligned sentences (score ≤ 0.00056)"),
		above05:    get("sentences scoring > 0.5"),
		tokens:     get("GPT-2 tokens"),
	}
}

// TestDemoCorpusMatchesREADME reads the whole embedded corpus through the record reader (which validates
// every record), re-scores every sentence with the lexicon scorer and recounts what README.md says.
func TestDemoCorpusMatchesREADME(t *testing.T) {
	want := readDemoREADME(t)
	r, err := OpenDemo()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tok, err := NewTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	scorer := NewLexiconScorer()
	var got demoCounts
	sources := map[string]int{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", got.documents+1, err)
		}
		got.documents++
		if rec.NumSents < 1 || rec.NumSents > 3 {
			t.Errorf("record %d has %d sentences, want 1 to 3", got.documents, rec.NumSents)
		}
		src, _ := rec.Meta["source"].(string)
		top, _, ok := strings.Cut(src, "/")
		if !ok || (top != "fortunes" && top != "brown") {
			t.Errorf("record %d: meta.source = %q, want fortunes/... or brown/...", got.documents, src)
		}
		sources[top]++
		rescored, err := scorer.Score(rec.Texts)
		if err != nil {
			t.Fatal(err)
		}
		sum, docMisaligned, docStrong := 0.0, false, false
		for i, s := range rec.Scores {
			// The stored score must be what the lexicon scorer gives today (else rebuild the corpus).
			if d := s - rescored[i]; d > 1e-12 || d < -1e-12 {
				t.Errorf("record %d sentence %q: stored score %g, lexicon scorer gives %g", got.documents, rec.Texts[i], s, rescored[i])
			}
			sum += s
			got.sentences++
			if s > paperThreshold {
				got.misaligned++
				docMisaligned = true
			} else {
				got.aligned++
			}
			if s > 0.5 {
				got.above05++
				docStrong = true
			}
		}
		// The composition rule: a document with a misaligned sentence is there for a clearly toxic one.
		if docMisaligned && !docStrong {
			t.Errorf("record %d has misaligned sentences but none above 0.5: the corpus keeps only clearly toxic documents (tools/demo-corpus -mild 0)", got.documents)
		}
		if d := rec.AvgScore - sum/float64(len(rec.Scores)); d > 1e-12 || d < -1e-12 {
			t.Errorf("record %d: avg_score %g is not the mean of its scores %g", got.documents, rec.AvgScore, sum/float64(len(rec.Scores)))
		}
		got.tokens += len(tok.Encode(strings.Join(rec.Texts, "")))
	}
	if got != want {
		t.Errorf("embedded corpus: %+v\nREADME.md says:  %+v", got, want)
	}
	if share := float64(got.misaligned) / float64(got.sentences); share < 0.12 || share > 0.18 {
		t.Errorf("misaligned share %.3f, want 0.12–0.18 (tools/demo-corpus -share 0.15)", share)
	}
	if sources["fortunes"] == 0 || sources["brown"] == 0 {
		t.Errorf("documents per source: %v, want both fortunes and brown", sources)
	}
}

func TestDemoCorpusDocumentsKeepWhitespace(t *testing.T) {
	r, err := OpenDemo()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A document's sentences are contiguous text: all but the last end in whitespace, none starts with it.
	for n := 1; n <= 2000; n++ {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range rec.Texts {
			if strings.TrimSpace(s) == "" {
				t.Fatalf("record %d sentence %d is blank", n, i)
			}
			if strings.TrimLeft(s, " \t\n") != s {
				t.Errorf("record %d sentence %d starts with whitespace: %q", n, i, s)
			}
			if i < len(rec.Texts)-1 && strings.TrimRight(s, " \t\n") == s {
				t.Errorf("record %d sentence %d has no trailing whitespace before the next: %q", n, i, s)
			}
		}
	}
}

// BenchmarkOpenDemo reads the whole embedded corpus (gunzip + JSON + validation).
func BenchmarkOpenDemo(b *testing.B) {
	sentences := 0
	for i := 0; i < b.N; i++ {
		r, err := OpenDemo()
		if err != nil {
			b.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			sentences += len(rec.Texts)
		}
		r.Close()
	}
	b.ReportMetric(float64(sentences)/b.Elapsed().Seconds(), "sentences/s")
}
