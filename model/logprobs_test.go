package model

import (
	"math"
	"strings"
	"testing"
)

// hostLogProb computes log softmax(logits)[target] in float64 from one row of logits.
func hostLogProb(logits []float32, target int) float64 {
	maxLogit := math.Inf(-1)
	for _, l := range logits {
		maxLogit = max(maxLogit, float64(l))
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l) - maxLogit)
	}
	return float64(logits[target]) - maxLogit - math.Log(sum)
}

func TestSequenceLogProbsMatchesLogits(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 17)
	// Lengths 2..16 across more than one batch of 8, with various start positions.
	var seqs [][]int
	var from []int
	for i := range 11 {
		length := 2 + (i*5)%15
		seq := make([]int, length)
		for t := range seq {
			seq[t] = (i*7 + t*13) % cfg.VocabSize
		}
		seqs = append(seqs, seq)
		from = append(from, i%4) // 0 and 1 both mean "from the second token"
	}
	got, err := SequenceLogProbs(backend, ctx, cfg, seqs, from)
	if err != nil {
		t.Fatal(err)
	}
	for i, seq := range seqs {
		// Reference: the full forward pass on this sequence alone, unpadded.
		tokens := make([]int32, len(seq))
		for t, id := range seq {
			tokens[t] = int32(id)
		}
		logits := logitsOf(t, backend, ctx, cfg, [][]int32{tokens})
		want := 0.0
		for position := max(from[i], 1); position < len(seq); position++ {
			row := logits[(position-1)*cfg.VocabSize : position*cfg.VocabSize]
			want += hostLogProb(row, seq[position])
		}
		if math.Abs(got[i]-want) > 1e-4*max(1, math.Abs(want)) {
			t.Errorf("sequence %d (length %d, from %d): %g, want %g", i, len(seq), from[i], got[i], want)
		}
		if from[i] < len(seq) && got[i] >= 0 {
			t.Errorf("sequence %d: log-probability %g is not negative", i, got[i])
		}
	}
	// A start past the end scores nothing.
	if empty, _ := SequenceLogProbs(backend, ctx, cfg, [][]int{{1, 2, 3}}, []int{3}); empty[0] != 0 {
		t.Errorf("from = len(seq): %g, want 0", empty[0])
	}
}

func TestSequenceLogProbsErrors(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 1)
	cases := []struct {
		seqs    [][]int
		from    []int
		wantErr string
	}{
		{[][]int{{1, 2}}, nil, "1 sequences but 0 start positions"},
		{[][]int{make([]int, 17)}, []int{0}, "17 tokens, more than the model's context 16"},
		{[][]int{{1, 99}}, []int{0}, "token 1 is 99, outside the vocabulary"},
	}
	for _, c := range cases {
		if _, err := SequenceLogProbs(backend, ctx, cfg, c.seqs, c.from); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("error = %v, want it to contain %q", err, c.wantErr)
		}
	}
}
