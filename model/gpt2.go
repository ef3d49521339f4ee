package model

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph ops read like maths.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
)

// Scope layout (mirrors HF GPT-2 state-dict keys without "transformer."):
//
//	wte/weight [V,D]          wpe/weight [ctx,D]
//	h/<i>/ln_1/{weight,bias}  h/<i>/attn/c_attn/{weight [D,3D], bias [3D]}  h/<i>/attn/c_proj/{weight [D,D], bias}
//	h/<i>/ln_2/{weight,bias}  h/<i>/mlp/c_fc/{weight [D,4D], bias}         h/<i>/mlp/c_proj/{weight [4D,D], bias}
//	ln_f/{weight,bias}
//
// The LM head is tied to wte: there is no lm_head variable.

// Layer returns the context of transformer block i (scope h/<i>), the ctx the block functions take.
func Layer(ctx *context.Context, i int) *context.Context {
	return ctx.In("h").In(strconv.Itoa(i))
}

// HFKey converts a context scope and variable name into the HF state-dict key,
// e.g. ("/h/0/attn/c_attn", "weight") → "h.0.attn.c_attn.weight".
func HFKey(scope, name string) string {
	scope = strings.Trim(scope, context.ScopeSeparator)
	if scope == "" {
		return name
	}
	return strings.ReplaceAll(scope, context.ScopeSeparator, ".") + "." + name
}

// ScopeOf is the inverse of HFKey: "h.0.attn.c_attn.weight" → ([h 0 attn c_attn], "weight"). A leading
// "transformer." (as in HF GPT2LMHeadModel checkpoints) is dropped.
func ScopeOf(key string) (scope []string, name string) {
	key = strings.TrimPrefix(key, "transformer.")
	parts := strings.Split(key, ".")
	return parts[:len(parts)-1], parts[len(parts)-1]
}

// Logits runs the whole model: int32 tokens [B,T] → float32 logits [B,T,V], positions 0..T-1, causal
// attention. T must not exceed cfg.ContextLen.
func Logits(ctx *context.Context, cfg Config, tokens *Node) *Node {
	return LMHead(ctx, cfg, Hidden(ctx, cfg, tokens))
}

// Hidden runs everything but the LM head: tokens [B,T] → final-LayerNorm'd hidden states [B,T,D] float32.
// The training loss uses it to compute the LM head and the cross-entropy without materialising what it
// does not need.
func Hidden(ctx *context.Context, cfg Config, tokens *Node) *Node {
	g := tokens.Graph()
	if tokens.Rank() != 2 {
		panic(fmt.Errorf("model.Hidden: tokens must be [batch, time], got shape %s", tokens.Shape()))
	}
	seqLen := tokens.Shape().Dimensions[1]
	if seqLen > cfg.ContextLen {
		panic(fmt.Errorf("model.Hidden: sequence length %d exceeds the model's context length %d", seqLen, cfg.ContextLen))
	}
	positions := Iota(g, shapeOf(dtypes.Int32, seqLen), 0)
	x := Embed(ctx, cfg, tokens, positions)
	mask := CausalMask(g, seqLen, seqLen)
	for i := range cfg.NLayer {
		x = Block(Layer(ctx, i), cfg, x, mask)
	}
	return LayerNorm(ctx.In("ln_f"), x, cfg.LayerNormEps)
}

// Block is one pre-LN transformer block (HF GPT2Block): x + attn(ln_1(x)), then + mlp(ln_2(·)).
// ctx is the block's scope (see Layer); mask is as in Attend.
func Block(ctx *context.Context, cfg Config, x, mask *Node) *Node {
	q, k, v := QKV(ctx, cfg, LayerNorm(ctx.In("ln_1"), x, cfg.LayerNormEps))
	x = Add(x, AttnOut(ctx, cfg, attend(ctx, cfg, q, k, v, mask)))
	return Add(x, MLP(ctx, cfg, LayerNorm(ctx.In("ln_2"), x, cfg.LayerNormEps)))
}

// Embed returns token + position embeddings [B,T,D] (float32). tokens is int [B,T]; positions is int [T]
// (shared by the batch) or [B,T]. Embedding dropout (HF embd_pdrop) uses cfg.Dropout in training mode.
func Embed(ctx *context.Context, cfg Config, tokens, positions *Node) *Node {
	wte := tokenEmbeddings(ctx, cfg, tokens.Graph())
	wpe := variable(ctx.In("wpe"), "weight", normalInit(ctx, cfg.InitStd), cfg.ContextLen, cfg.NEmbd).ValueGraph(tokens.Graph())
	// Gather takes the index on a trailing axis of size 1: [B,T,1] → [B,T,D].
	x := Gather(wte, InsertAxes(tokens, -1))
	pos := Gather(wpe, InsertAxes(positions, -1))
	if pos.Rank() == 2 {
		pos = InsertAxes(pos, 0) // [T,D] → [1,T,D], broadcast over the batch.
	}
	return layers.DropoutStatic(ctx, Add(x, pos), cfg.Dropout)
}

// tokenEmbeddings is wte [V,D] (also the tied LM head).
func tokenEmbeddings(ctx *context.Context, cfg Config, g *Graph) *Node {
	return variable(ctx.In("wte"), "weight", normalInit(ctx, cfg.InitStd), cfg.VocabSize, cfg.NEmbd).ValueGraph(g)
}

// LayerNorm normalises the last axis to zero mean and unit (biased) variance, then scales by weight (γ,
// init 1) and shifts by bias (β, init 0). ctx is the LayerNorm's own scope (ln_1, ln_2, ln_f). Always in
// float32.
func LayerNorm(ctx *context.Context, x *Node, eps float64) *Node {
	g := x.Graph()
	dim := x.Shape().Dimensions[x.Rank()-1]
	gamma := variable(ctx, "weight", onesInit, dim).ValueGraph(g)
	beta := variable(ctx, "bias", zerosInit, dim).ValueGraph(g)
	x = ConvertDType(x, dtypes.Float32)
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centred := Sub(x, mean)
	variance := ReduceAndKeep(Square(centred), ReduceMean, -1)
	normed := Div(centred, Sqrt(AddScalar(variance, eps))) // (Rsqrt has no gradient in v0.26)
	return Add(Mul(normed, toRank(gamma, x.Rank())), toRank(beta, x.Rank()))
}

// conv1D is HF's Conv1D: y = x·W + b with W stored [in, out]. ctx is the layer's scope (c_attn, c_proj,
// c_fc); std is the init of W.
func conv1D(ctx *context.Context, cfg Config, x *Node, in, out int, std float64) *Node {
	g := x.Graph()
	w := variable(ctx, "weight", normalInit(ctx, std), in, out).ValueGraph(g)
	b := variable(ctx, "bias", zerosInit, out).ValueGraph(g)
	y := matmul(cfg, x, w)
	return Add(y, toRank(b, y.Rank()))
}

// matmul contracts the last axis of x with the first axis of w, in cfg.DType (bf16 autocast), returning
// float32.
func matmul(cfg Config, x, w *Node) *Node {
	if cfg.DType != dtypes.Float32 && cfg.DType != dtypes.InvalidDType {
		x, w = ConvertDType(x, cfg.DType), ConvertDType(w, cfg.DType)
	}
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil)
	return ConvertDType(y, dtypes.Float32)
}

// residualStd is the init of the projections that write into the residual stream (attn.c_proj,
// mlp.c_proj): 0.02/√(2·n_layer), so the residual's variance does not grow with depth (GPT-2 paper).
func residualStd(cfg Config) float64 { return cfg.InitStd / math.Sqrt(2*float64(cfg.NLayer)) }

// QKV projects x [B,T,D] (already ln_1'd) with the fused c_attn into q, k, v, each split into heads:
// [B,H,T,Dh]. ctx is the block's scope.
func QKV(ctx *context.Context, cfg Config, x *Node) (q, k, v *Node) {
	d, h, dh := cfg.NEmbd, cfg.NHead, cfg.HeadDim()
	qkv := conv1D(ctx.In("attn").In("c_attn"), cfg, x, d, 3*d, cfg.InitStd) // [B,T,3D]: q, k, v in that order.
	dims := qkv.Shape().Dimensions
	b, t := dims[0], dims[1]
	// [B,T,3D] → [B,T,3,H,Dh] → [3,B,H,T,Dh]: one transpose for all three.
	qkv = TransposeAllAxes(Reshape(qkv, b, t, 3, h, dh), 2, 0, 3, 1, 4)
	split := func(i int) *Node {
		return Reshape(SliceAxis(qkv, 0, AxisRange(i, i+1)), b, h, t, dh)
	}
	return split(0), split(1), split(2)
}

// CausalMask is the boolean [T,S] mask of T queries that are the last T of S positions: query i (at
// absolute position S-T+i) may attend key j iff j ≤ S-T+i.
func CausalMask(g *Graph, t, s int) *Node {
	rows := Iota(g, shapeOf(dtypes.Int32, t, s), 0)
	cols := Iota(g, shapeOf(dtypes.Int32, t, s), 1)
	return LessOrEqual(cols, AddScalar(rows, s-t))
}

// Attend is scaled dot-product attention: softmax(q·kᵀ/√Dh + mask)·v. q is [B,H,T,Dh], k and v are
// [B,H,S,Dh]; mask is boolean (true = may attend), shaped [T,S], [B,T,S] or [B,1|H,T,S], or nil for none.
// Returns [B,H,T,Dh]. The scores are scaled once (unlike layers.MultiHeadAttention).
func Attend(q, k, v, mask *Node) *Node {
	return attend(nil, Config{}, q, k, v, mask)
}

// attend is Attend with attention-probability dropout (HF attn_pdrop) when ctx is given and training.
func attend(ctx *context.Context, cfg Config, q, k, v, mask *Node) *Node {
	g := q.Graph()
	dh := q.Shape().Dimensions[3]
	// Scores [B,H,T,S] = q·kᵀ over Dh, batched over B and H; the scores and softmax in float32.
	scores := DotGeneral(q, []int{3}, []int{0, 1}, k, []int{3}, []int{0, 1})
	scores = MulScalar(ConvertDType(scores, dtypes.Float32), 1/math.Sqrt(float64(dh)))
	if mask != nil {
		// Masked scores get a large negative bias (HF uses the dtype's minimum): exp() of it is 0.
		bias := Where(mask, Scalar(g, dtypes.Float32, 0), Scalar(g, dtypes.Float32, -1e9))
		switch bias.Rank() {
		case 2:
			bias = InsertAxes(bias, 0, 0)
		case 3:
			bias = InsertAxes(bias, 1)
		}
		scores = Add(scores, bias)
	}
	probs := Softmax(scores, -1)
	if ctx != nil {
		probs = layers.DropoutStatic(ctx, probs, cfg.Dropout)
	}
	// [B,H,T,S]·[B,H,S,Dh] → [B,H,T,Dh].
	return DotGeneral(ConvertDType(probs, v.DType()), []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1})
}

// AttnOut merges the heads of y [B,H,T,Dh] back into [B,T,D] and applies attn.c_proj (and residual
// dropout). ctx is the block's scope.
func AttnOut(ctx *context.Context, cfg Config, y *Node) *Node {
	dims := y.Shape().Dimensions
	b, h, t, dh := dims[0], dims[1], dims[2], dims[3]
	y = Reshape(TransposeAllAxes(y, 0, 2, 1, 3), b, t, h*dh)
	y = conv1D(ctx.In("attn").In("c_proj"), cfg, y, cfg.NEmbd, cfg.NEmbd, residualStd(cfg))
	return layers.DropoutStatic(ctx, y, cfg.Dropout)
}

// MLP is c_fc (D→4D), tanh-GELU, c_proj (4D→D), residual dropout. ctx is the block's scope.
func MLP(ctx *context.Context, cfg Config, x *Node) *Node {
	d := cfg.NEmbd
	x = conv1D(ctx.In("mlp").In("c_fc"), cfg, x, d, 4*d, cfg.InitStd)
	x = geluTanh(x)
	x = conv1D(ctx.In("mlp").In("c_proj"), cfg, x, 4*d, d, residualStd(cfg))
	return layers.DropoutStatic(ctx, x, cfg.Dropout)
}

// geluTanh is GPT-2's "gelu_new": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func geluTanh(x *Node) *Node {
	inner := MulScalar(Add(x, MulScalar(Mul(x, Square(x)), 0.044715)), math.Sqrt(2/math.Pi))
	return Mul(MulScalar(x, 0.5), AddScalar(Tanh(inner), 1))
}

// LMHead maps hidden states x [B,T,D] (after ln_f) to logits [B,T,V] with the tied head: x·wteᵀ.
// ctx is the model's root scope.
func LMHead(ctx *context.Context, cfg Config, x *Node) *Node {
	wte := tokenEmbeddings(ctx, cfg, x.Graph())
	if cfg.DType != dtypes.Float32 && cfg.DType != dtypes.InvalidDType {
		x, wte = ConvertDType(x, cfg.DType), ConvertDType(wte, cfg.DType)
	}
	logits := DotGeneral(x, []int{x.Rank() - 1}, nil, wte, []int{1}, nil)
	return ConvertDType(logits, dtypes.Float32)
}

// toRank prepends size-1 axes to a vector so it broadcasts against a rank-r tensor (GoMLX broadcasts
// only between equal ranks).
func toRank(v *Node, r int) *Node {
	if v.Rank() >= r {
		return v
	}
	return InsertAxes(v, make([]int, r-v.Rank())...)
}
