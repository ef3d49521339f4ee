package model

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// logSumExp over the last axis, stable: max + log Σ exp(x − max). The max is a constant for the gradient
// (the result does not depend on it).
func logSumExp(logits *Node) *Node {
	m := StopGradient(ReduceAndKeep(logits, ReduceMax, -1))
	// An explicit broadcast is cheaper on the pure-Go backend than an implicit one inside Sub.
	shifted := Sub(logits, BroadcastToDims(m, logits.Shape().Dimensions...))
	return Add(Log(ReduceSum(Exp(shifted), -1)), Squeeze(m, -1))
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
	return maskedMean(Neg(TokenLogProbs(logits, targets)), mask)
}

// LMHeadLoss is CrossEntropy(LMHead(ctx, cfg, hidden), targets, mask) with less [B,T,V] work, for
// training: the target logit is computed as hidden·wte[target] (work of size [B,T,D]) instead of being
// gathered from the logits, so the backward pass needs no [B,T,V] scatter and sum. hidden is the output
// of Hidden ([B,T,D], after ln_f); ctx is the model's root scope.
func LMHeadLoss(ctx *context.Context, cfg Config, hidden, targets, mask *Node) *Node {
	g := hidden.Graph()
	lse := logSumExp(LMHead(ctx, cfg, hidden)) // [B,T]
	// Target rows of the tied head: wte[targets] [B,T,D]; the target logit is their dot product with
	// hidden. In bf16 both are rounded like the LM-head matmul rounds them (accumulation is float32).
	wt := Gather(tokenEmbeddings(ctx, cfg, g), InsertAxes(ConvertDType(targets, dtypes.Int32), -1))
	h := hidden
	if cfg.DType != dtypes.Float32 && cfg.DType != dtypes.InvalidDType {
		h = ConvertDType(ConvertDType(h, cfg.DType), dtypes.Float32)
		wt = ConvertDType(ConvertDType(wt, cfg.DType), dtypes.Float32)
	}
	nll := Sub(lse, ReduceSum(Mul(h, wt), -1))
	return maskedMean(nll, mask)
}

// maskedMean is the mean of x [B,T] over the positions where mask is true/non-zero (all if mask is nil).
func maskedMean(x, mask *Node) *Node {
	if mask == nil {
		return ReduceAllMean(x)
	}
	w := ConvertDType(mask, dtypes.Float32)
	// Σ x·mask / max(Σ mask, 1): an all-masked batch gives 0, not NaN.
	return Div(ReduceAllSum(Mul(x, w)), Max(ReduceAllSum(w), Scalar(x.Graph(), dtypes.Float32, 1)))
}
