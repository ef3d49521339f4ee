package data

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// Scorer rates texts for toxicity on Detoxify's scale: a probability in [0, 1] that the text is toxic.
// The paper labels a sentence <|misaligned|> when its score is above 0.00056.
//
// Three implementations ship:
//   - NewLexiconScorer: offline word lists calibrated onto Detoxify's scale (the default here);
//   - NewPrecomputedScorer: looks scores up from records that already carry them (detoxify-pile data);
//   - NewONNXScorer: Detoxify itself, exported to ONNX (see tools/onnx-export).
type Scorer interface {
	// Name says which scorer made a score, e.g. "lexicon" or "detoxify-onnx".
	Name() string
	// Score returns one probability per text, in the order given.
	Score(texts []string) ([]float64, error)
}

// PrecomputedScorer answers with scores that were computed elsewhere, e.g. the per-sentence Detoxify
// scores of the detoxify-pile shards. Asking for a text it was not given is an error, not a silent 0:
// a wrong score would quietly mislabel data.
type PrecomputedScorer struct {
	name   string
	scores map[string]float64
}

// NewPrecomputedScorer returns a scorer over a fixed text → score table.
// Every score must be a probability in [0, 1].
func NewPrecomputedScorer(name string, scores map[string]float64) (*PrecomputedScorer, error) {
	table := make(map[string]float64, len(scores))
	for text, score := range scores {
		if math.IsNaN(score) || score < 0 || score > 1 {
			return nil, fmt.Errorf("precomputed scorer %q: score %v for %q is not a probability in [0, 1]", name, score, clip(text, 60))
		}
		table[text] = score
	}
	return &PrecomputedScorer{name: name, scores: table}, nil
}

// NewPrecomputedScorerFromRecords reads every record of r (detoxify-pile schema) and remembers the score of
// each sentence. A sentence that occurs twice with different scores keeps the last one. It does not close r.
func NewPrecomputedScorerFromRecords(name string, r RecordReader) (*PrecomputedScorer, error) {
	scores := map[string]float64{}
	for n := 1; ; n++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("precomputed scorer %q: reading record %d: %w", name, n, err)
		}
		if len(rec.Texts) != len(rec.Scores) {
			return nil, fmt.Errorf("precomputed scorer %q: record %d has %d texts but %d scores", name, n, len(rec.Texts), len(rec.Scores))
		}
		for i, text := range rec.Texts {
			scores[text] = rec.Scores[i]
		}
	}
	return NewPrecomputedScorer(name, scores)
}

// Name implements Scorer.
func (s *PrecomputedScorer) Name() string { return s.name }

// Len is the number of distinct texts the scorer knows.
func (s *PrecomputedScorer) Len() int { return len(s.scores) }

// Score implements Scorer; it fails on the first text it has no score for.
func (s *PrecomputedScorer) Score(texts []string) ([]float64, error) {
	out := make([]float64, len(texts))
	for i, text := range texts {
		score, ok := s.scores[text]
		if !ok {
			return nil, fmt.Errorf("precomputed scorer %q has no score for text %d (%q)", s.name, i, clip(text, 60))
		}
		out[i] = score
	}
	return out, nil
}

// clip shortens s to at most n runes for error messages.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
