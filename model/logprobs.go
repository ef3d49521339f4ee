package model

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// logProbBatch is how many sequences are scored together. The full-vocabulary logits of a batch are
// [batch, T, V] floats: 8 × 1024 × 50259 × 4 B ≈ 1.6 GB at the paper's sizes.
const logProbBatch = 8

// SequenceLogProbs scores sequences under the model in ctx: for each i, the sum over t ≥ from[i]
// (and t ≥ 1: the first token has no context) of log P(seqs[i][t] | seqs[i][:t]), in nats. Sequences
// may differ in length (at most cfg.ContextLen); they are right-padded to a multiple of 16 so few graphs
// are compiled, and the padding never influences earlier positions (attention is causal).
func SequenceLogProbs(backend backends.Backend, ctx *context.Context, cfg Config, seqs [][]int, from []int) ([]float64, error) {
	if len(from) != len(seqs) {
		return nil, fmt.Errorf("SequenceLogProbs: %d sequences but %d start positions", len(seqs), len(from))
	}
	for i, seq := range seqs {
		if len(seq) > cfg.ContextLen {
			return nil, fmt.Errorf("SequenceLogProbs: sequence %d has %d tokens, more than the model's context %d", i, len(seq), cfg.ContextLen)
		}
		for t, id := range seq {
			if id < 0 || id >= cfg.VocabSize {
				return nil, fmt.Errorf("SequenceLogProbs: sequence %d token %d is %d, outside the vocabulary of %d", i, t, id, cfg.VocabSize)
			}
		}
	}
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, tokens *Node) *Node {
		// Position t predicts token t+1: log-probs of targets tokens[:, 1:] under logits[:, :-1].
		t := tokens.Shape().Dimensions[1]
		logits := Logits(ctx, cfg, tokens)
		inputs := SliceAxis(logits, 1, AxisRange(0, t-1))
		targets := SliceAxis(tokens, 1, AxisRange(1, t))
		return TokenLogProbs(inputs, targets) // [B, T-1]
	})
	if err != nil {
		return nil, fmt.Errorf("SequenceLogProbs: %w", err)
	}
	defer exec.Finalize()
	exec.SetMaxCache(-1)

	scores := make([]float64, len(seqs))
	for start := 0; start < len(seqs); start += logProbBatch {
		end := min(start+logProbBatch, len(seqs))
		longest := 2
		for _, seq := range seqs[start:end] {
			longest = max(longest, len(seq))
		}
		// Pad to a multiple of 16 (capped at the context) so lengths share compiled graphs.
		padded := min((longest+15)/16*16, cfg.ContextLen)
		padded = max(padded, longest)
		tokens := make([][]int32, logProbBatch)
		for row := range tokens {
			tokens[row] = make([]int32, padded) // padding (and missing rows) are token 0, ignored below
			if start+row < end {
				for t, id := range seqs[start+row] {
					tokens[row][t] = int32(id)
				}
			}
		}
		var outputs []*tensors.Tensor
		if perr := CatchPanic(func() { outputs, err = exec.Exec(tokens) }); perr != nil {
			err = perr
		}
		if err != nil {
			return nil, fmt.Errorf("SequenceLogProbs: sequences %d..%d: %w", start, end-1, err)
		}
		if outputs[0].DType() != dtypes.Float32 {
			return nil, fmt.Errorf("SequenceLogProbs: log-probs are %s, want float32", outputs[0].DType())
		}
		logProbs := tensors.MustCopyFlatData[float32](outputs[0]) // [batch, padded-1]
		outputs[0].MustFinalizeAll()
		for row := range end - start {
			seq := seqs[start+row]
			// Target position t (token seq[t]) is column t-1; sum in float64.
			var sum float64
			for t := max(from[start+row], 1); t < len(seq); t++ {
				sum += float64(logProbs[row*(padded-1)+t-1])
			}
			scores[start+row] = sum
		}
	}
	return scores, nil
}
