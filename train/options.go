// Package train is the optimisation of the paper (HF Trainer 4.17 defaults): AdamW with decoupled weight
// decay not applied to biases and LayerNorm parameters, a linear warmup then linear decay of the learning
// rate, global gradient-norm clipping and gradient accumulation. All optimizer state lives in the model's
// context, so a GoMLX checkpoint of the context resumes training bit-identically.
package train

import (
	"fmt"
	"math"
	"strings"
)

// Options of the optimisation. DefaultOptions are the paper's.
type Options struct {
	LR          float64 // peak learning rate
	WarmupRatio float64 // fraction of Steps of linear warmup (HF rounds the step count up)
	WeightDecay float64 // decoupled weight decay (AdamW), not applied to biases and LayerNorm parameters
	Beta1       float64
	Beta2       float64
	Eps         float64
	ClipNorm    float64 // global gradient L2-norm clip; <= 0 disables clipping
	Steps       int     // total optimizer updates (the schedule decays to 0 at Steps)
	MicroBatch  int     // sequences per micro-batch
	Accum       int     // micro-batches per update (gradient accumulation)
	Seed        int64   // seed of the model init, data order and dropout
}

// DefaultOptions are the paper's hyperparameters: lr 5e-4, warmup 1%, weight decay 0.1, AdamW
// (0.9, 0.999, 1e-8), grad-norm clip 1.0, 32 sequences × 2 accumulation, seed 42. Steps must be set.
func DefaultOptions() Options {
	return Options{LR: 5e-4, WarmupRatio: 0.01, WeightDecay: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		ClipNorm: 1.0, MicroBatch: 32, Accum: 2, Seed: 42}
}

// Validate names the first unusable option.
func (o Options) Validate() error {
	switch {
	case o.LR <= 0:
		return fmt.Errorf("train options: LR must be > 0, got %g", o.LR)
	case o.WarmupRatio < 0 || o.WarmupRatio > 1:
		return fmt.Errorf("train options: WarmupRatio must be in [0, 1], got %g", o.WarmupRatio)
	case o.WeightDecay < 0:
		return fmt.Errorf("train options: WeightDecay must be >= 0, got %g", o.WeightDecay)
	case o.Beta1 < 0 || o.Beta1 >= 1:
		return fmt.Errorf("train options: Beta1 must be in [0, 1), got %g", o.Beta1)
	case o.Beta2 < 0 || o.Beta2 >= 1:
		return fmt.Errorf("train options: Beta2 must be in [0, 1), got %g", o.Beta2)
	case o.Eps <= 0:
		return fmt.Errorf("train options: Eps must be > 0, got %g", o.Eps)
	case o.Steps <= 0:
		return fmt.Errorf("train options: Steps must be > 0, got %d", o.Steps)
	case o.MicroBatch <= 0:
		return fmt.Errorf("train options: MicroBatch must be > 0, got %d", o.MicroBatch)
	case o.Accum <= 0:
		return fmt.Errorf("train options: Accum must be > 0, got %d", o.Accum)
	}
	return nil
}

// WarmupSteps is ceil(WarmupRatio·Steps), as HF TrainingArguments.get_warmup_steps.
func WarmupSteps(total int, opts Options) int {
	return int(math.Ceil(opts.WarmupRatio * float64(total)))
}

// LRAt is the learning rate of update number step (0-based) out of total, as HF
// get_linear_schedule_with_warmup: LR·step/warmup during warmup (so the very first update has LR 0 when
// there is a warmup), then LR·(total−step)/(total−warmup), reaching 0 at total.
func LRAt(step, total int, opts Options) float64 {
	warmup := WarmupSteps(total, opts)
	if step < warmup {
		return opts.LR * float64(step) / float64(max(1, warmup))
	}
	return opts.LR * max(0, float64(total-step)/float64(max(1, total-warmup)))
}

// DecayMask says whether weight decay applies to a parameter, given its HF key ("h.0.attn.c_attn.weight")
// or GoMLX scope path ("/h/0/attn/c_attn/weight"). Like HF Trainer: every parameter except biases and
// LayerNorm parameters (ln_1, ln_2, ln_f) decays; the embeddings (wte, wpe) do.
func DecayMask(varName string) bool {
	parts := strings.FieldsFunc(varName, func(r rune) bool { return r == '.' || r == '/' })
	if len(parts) == 0 {
		return false
	}
	if parts[len(parts)-1] == "bias" {
		return false
	}
	for _, p := range parts {
		if strings.HasPrefix(p, "ln_") {
			return false
		}
	}
	return true
}
