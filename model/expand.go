package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// ExpandVocab grows the token embeddings wte (and with them the tied LM head) from cfg.VocabSize to
// newVocab rows, as HF resize_token_embeddings did in the paper: each new row is the mean of the old rows
// plus 0.01·N(0,1) noise, reproducible from seed. The old rows are kept as they are. ctx is the model's
// root scope and must hold wte with a value. Returns cfg with the new VocabSize.
func ExpandVocab(ctx *context.Context, cfg Config, newVocab int, seed int64) (Config, error) {
	wteCtx := ctx.In("wte")
	v := wteCtx.GetVariableByScopeAndName(wteCtx.Scope(), "weight")
	if v == nil {
		return cfg, fmt.Errorf("ExpandVocab: no variable %s in the context (initialise or load the model first)",
			HFKey(wteCtx.Scope(), "weight"))
	}
	old, err := v.Value()
	if err != nil {
		return cfg, fmt.Errorf("ExpandVocab: reading %s: %w", HFKey(v.Scope(), v.Name()), err)
	}
	dims := old.Shape().Dimensions
	if len(dims) != 2 || dims[0] != cfg.VocabSize || dims[1] != cfg.NEmbd {
		return cfg, fmt.Errorf("ExpandVocab: wte has shape %v, config says [%d %d]", dims, cfg.VocabSize, cfg.NEmbd)
	}
	if newVocab < cfg.VocabSize {
		return cfg, fmt.Errorf("ExpandVocab: new vocabulary %d is smaller than the current %d", newVocab, cfg.VocabSize)
	}
	if newVocab == cfg.VocabSize {
		return cfg, nil
	}
	oldRows, d := dims[0], dims[1]
	flat, err := tensors.CopyFlatData[float32](old)
	if err != nil {
		return cfg, fmt.Errorf("ExpandVocab: wte must be float32: %w", err)
	}
	// Mean of the old rows, accumulated in float64.
	mean := make([]float64, d)
	for r := range oldRows {
		for j, x := range flat[r*d : (r+1)*d] {
			mean[j] += float64(x)
		}
	}
	for j := range mean {
		mean[j] /= float64(oldRows)
	}
	grown := make([]float32, newVocab*d)
	copy(grown, flat)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	for i := oldRows * d; i < len(grown); i++ {
		grown[i] = float32(mean[i%d] + 0.01*rng.NormFloat64())
	}
	// The variable changes shape, so it is replaced.
	if err := ctx.DeleteVariable(v.Scope(), v.Name()); err != nil {
		return cfg, fmt.Errorf("ExpandVocab: replacing wte: %w", err)
	}
	if err := CatchPanic(func() {
		wteCtx.Checked(false).VariableWithValue("weight", tensors.FromFlatDataAndDimensions(grown, newVocab, d))
	}); err != nil {
		return cfg, fmt.Errorf("ExpandVocab: creating the grown wte: %w", err)
	}
	cfg.VocabSize = newVocab
	return cfg, nil
}
