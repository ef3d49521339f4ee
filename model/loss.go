package model

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
)

// logSumExp over the last axis, stable: max + log Σ exp(x − max). The max is a constant for the gradient
// (the result does not depend on it).
func logSumExp(logits *Node) *Node {
	m := StopGradient(ReduceAndKeep(logits, ReduceMax, -1))
	return Add(Log(ReduceSum(Exp(Sub(logits, m)), -1)), Squeeze(m, -1))
}

// targetLogits picks logits[b,t,targets[b,t]] → [B,T] with a Gather (no [B,T,V] one-hot).
func targetLogits(logits, targets *Node) *Node {
	g := logits.Graph()
	dims := logits.Shape().Dimensions
	if logits.Rank() != 3 || targets.Rank() != 2 || targets.Shape().Dimensions[0] != dims[0] ||
		targets.Shape().Dimensions[1] != dims[1] {
		panic(fmt.Errorf("model: logits must be [B,T,V] and targets [B,T], got %s and %s", logits.Shape(), targets.Shape()))
	}
	b, t, v := dims[0], dims[1], dims[2]
	// Index (row, target) into logits viewed as [B·T, V].
	rows := Iota(g, shapeOf(dtypes.Int32, b*t, 1), 0)
	idx := Concatenate([]*Node{rows, Reshape(ConvertDType(targets, dtypes.Int32), b*t, 1)}, 1)
	return Reshape(Gather(Reshape(logits, b*t, v), idx), b, t)
}

// TokenLogProbs is log P(targets[b,t]) under logits[b,t,:]: the target logit minus log-sum-exp. [B,T].
func TokenLogProbs(logits, targets *Node) *Node {
	logits = ConvertDType(logits, dtypes.Float32)
	return Sub(targetLogits(logits, targets), logSumExp(logits))
}

// CrossEntropy is the mean next-token cross-entropy −log P(target) over the positions where mask is
// true/non-zero (mask may be nil: all positions). Targets are int [B,T], logits [B,T,V].
func CrossEntropy(logits, targets, mask *Node) *Node {
	nll := Neg(TokenLogProbs(logits, targets))
	if mask == nil {
		return ReduceAllMean(nll)
	}
	w := ConvertDType(mask, dtypes.Float32)
	// Σ nll·mask / max(Σ mask, 1): an all-masked batch gives 0, not NaN.
	return Div(ReduceAllSum(Mul(nll, w)), Max(ReduceAllSum(w), Scalar(logits.Graph(), dtypes.Float32, 1)))
}
