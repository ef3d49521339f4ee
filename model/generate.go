package model

// Batched autoregressive generation with a static-shape KV cache.
//
// Decoding one token costs one small graph: the new token's q, k, v are computed, k and v are written
// into the caches at the current position, and q attends to the cache slots ≤ position. The caches are
// [B, H, M, Dh] per layer (M = MaxLength) and are graph inputs and outputs; simplego has no
// DynamicUpdateSlice, so the write is a Where with a one-hot mask over the M slots, which keeps every
// shape static: one compiled graph serves all positions. The prompt is run once by a prefill graph that
// fills slots 0..P-1.
//
// Sampling happens on the host from the last position's logits, with HF `generate` semantics: min length
// (EOS banned while the sequence, prompt included, is shorter), banned ids, temperature, top-k, top-p
// (nucleus), EOS ending each sequence.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph ops read like maths.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// SampleOptions configure Generate. MaxLength and MinLength count the prompt, as in HF.
type SampleOptions struct {
	Temperature float64 // 0 = greedy (argmax); otherwise logits are divided by it
	TopP        float64 // nucleus sampling: keep the smallest set of tokens with cumulative probability ≥ TopP; 0 or 1 = off
	TopK        int     // keep the TopK most likely tokens; 0 = off
	MaxLength   int     // total length (prompt + continuation) at which generation stops
	MinLength   int     // EOS is banned while the sequence (prompt included) is shorter than this
	BannedIDs   []int   // never generated (HF bad_words_ids of single tokens), e.g. the control tokens
	EOS         int     // ends a sequence (not included in the output); negative = none
	Seed        int64   // the same seed, prompts and batch give the same samples
	NoCache     bool    // recompute the whole forward pass each step (slow; for tests and comparison)
}

// DefaultSampleOptions are the paper's sampling settings: temperature 0.7, top-p 0.9, no top-k,
// max length 128, min length 10, EOS 50256.
func DefaultSampleOptions() SampleOptions {
	return SampleOptions{Temperature: 0.7, TopP: 0.9, TopK: 0, MaxLength: 128, MinLength: 10, EOS: 50256}
}

// Generator samples continuations from the model in ctx, batch prompts at a time. Graphs are compiled
// on first use for each (prompt length, MaxLength) and reused.
type Generator struct {
	backend backends.Backend
	ctx     *context.Context
	cfg     Config
	batch   int

	mu       sync.Mutex
	prefills map[int]*context.Exec // by cache length M: tokens [B,P] → last logits [B,V], caches
	steps    map[int]*context.Exec // by cache length M: token [B,1], position, weightsT, caches → logits, caches
	full     *context.Exec         // NoCache: tokens [B,T] → last logits [B,V]
	weightsT *context.Exec         // the blocks' Conv1D weights, transposed (see transposedWeights)
}

// NewGenerator prepares generation for the model in ctx, which must already hold its weights (Init,
// LoadHF or LoadCheckpoint). batch is the number of sequences decoded together.
func NewGenerator(backend backends.Backend, ctx *context.Context, cfg Config, batch int) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("NewGenerator: %w", err)
	}
	if batch <= 0 {
		return nil, fmt.Errorf("NewGenerator: batch must be > 0, got %d", batch)
	}
	wte := ctx.In("wte")
	if v := wte.GetVariableByScopeAndName(wte.Scope(), "weight"); v == nil || !v.HasValue() {
		return nil, errors.New("NewGenerator: the context has no model weights (Init, LoadHF or LoadCheckpoint first)")
	} else if dims := v.Shape().Dimensions; len(dims) != 2 || dims[0] != cfg.VocabSize || dims[1] != cfg.NEmbd {
		return nil, fmt.Errorf("NewGenerator: wte has shape %v, config %q implies [%d %d]", dims, cfg.Name, cfg.VocabSize, cfg.NEmbd)
	}
	return &Generator{backend: backend, ctx: ctx, cfg: cfg, batch: batch,
		prefills: map[int]*context.Exec{}, steps: map[int]*context.Exec{}}, nil
}

// Batch is the number of sequences decoded together.
func (g *Generator) Batch() int { return g.batch }

// Close releases the compiled graphs.
func (g *Generator) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.prefills {
		e.Finalize()
	}
	for _, e := range g.steps {
		e.Finalize()
	}
	for _, e := range []*context.Exec{g.full, g.weightsT} {
		if e != nil {
			e.Finalize()
		}
	}
	g.prefills, g.steps, g.full, g.weightsT = map[int]*context.Exec{}, map[int]*context.Exec{}, nil, nil
}

// validate checks the options against the model and returns a clear error for the first bad field.
func (opts SampleOptions) validate(cfg Config) error {
	switch {
	case opts.Temperature < 0 || math.IsNaN(opts.Temperature):
		return fmt.Errorf("sample options: temperature must be ≥ 0, got %g", opts.Temperature)
	case opts.TopP < 0 || opts.TopP > 1 || math.IsNaN(opts.TopP):
		return fmt.Errorf("sample options: top_p must be in [0, 1], got %g", opts.TopP)
	case opts.TopK < 0:
		return fmt.Errorf("sample options: top_k must be ≥ 0, got %d", opts.TopK)
	case opts.MaxLength <= 0 || opts.MaxLength > cfg.ContextLen:
		return fmt.Errorf("sample options: max_length must be in [1, %d] (the model's context), got %d", cfg.ContextLen, opts.MaxLength)
	case opts.MinLength < 0:
		return fmt.Errorf("sample options: min_length must be ≥ 0, got %d", opts.MinLength)
	case opts.EOS >= cfg.VocabSize:
		return fmt.Errorf("sample options: eos %d is outside the vocabulary of %d", opts.EOS, cfg.VocabSize)
	}
	for _, id := range opts.BannedIDs {
		if id < 0 || id >= cfg.VocabSize {
			return fmt.Errorf("sample options: banned id %d is outside the vocabulary of %d", id, cfg.VocabSize)
		}
	}
	if len(opts.BannedIDs) >= cfg.VocabSize {
		return fmt.Errorf("sample options: %d banned ids leave nothing to sample from a vocabulary of %d", len(opts.BannedIDs), cfg.VocabSize)
	}
	return nil
}

// Generate continues each prompt (all the same length, at least one token) and returns the new token
// ids of each: prompt excluded, stopped at (and excluding) EOS or when prompt+continuation reaches
// MaxLength.
func (g *Generator) Generate(prompts [][]int, opts SampleOptions) ([][]int, error) {
	if err := opts.validate(g.cfg); err != nil {
		return nil, fmt.Errorf("Generate: %w", err)
	}
	if len(prompts) == 0 {
		return nil, nil
	}
	promptLen := len(prompts[0])
	if promptLen == 0 {
		return nil, errors.New("Generate: prompts must have at least one token (e.g. EOS as BOS)")
	}
	for i, prompt := range prompts {
		if len(prompt) != promptLen {
			return nil, fmt.Errorf("Generate: prompt %d has %d tokens, prompt 0 has %d (all must have the same length)", i, len(prompt), promptLen)
		}
		for _, id := range prompt {
			if id < 0 || id >= g.cfg.VocabSize {
				return nil, fmt.Errorf("Generate: prompt %d has token %d, outside the vocabulary of %d", i, id, g.cfg.VocabSize)
			}
		}
	}
	results := make([][]int, len(prompts))
	if promptLen >= opts.MaxLength {
		for i := range results {
			results[i] = []int{}
		}
		return results, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	sampler := newSampler(g.cfg.VocabSize, opts)
	var weightsT []*tensors.Tensor
	if !opts.NoCache {
		// Taken from the variables at every call: the weights may have changed (training) since the last.
		var err error
		if weightsT, err = g.transposedWeights(); err != nil {
			return nil, fmt.Errorf("Generate: %w", err)
		}
		defer finalizeAll(weightsT)
	}
	for start := 0; start < len(prompts); start += g.batch {
		end := min(start+g.batch, len(prompts))
		chunk, err := g.generateBatch(prompts[start:end], opts, sampler, weightsT)
		if err != nil {
			return nil, fmt.Errorf("Generate: prompts %d..%d: %w", start, end-1, err)
		}
		copy(results[start:end], chunk)
	}
	return results, nil
}

// generateBatch decodes up to g.batch prompts; missing rows are padded with copies of the first prompt
// and their output dropped.
func (g *Generator) generateBatch(prompts [][]int, opts SampleOptions, sampler *sampler, weightsT []*tensors.Tensor) ([][]int, error) {
	batch, promptLen := g.batch, len(prompts[0])
	tokens := make([][]int32, batch) // the whole sequences so far (the NoCache path feeds them all)
	finished := make([]bool, batch)
	for row := range batch {
		source := prompts[0]
		if row < len(prompts) {
			source = prompts[row]
		} else {
			finished[row] = true // padding row
		}
		tokens[row] = make([]int32, promptLen, opts.MaxLength)
		for t, id := range source {
			tokens[row][t] = int32(id)
		}
	}
	results := make([][]int, len(prompts))
	for i := range results {
		results[i] = []int{}
	}

	var caches []*tensors.Tensor
	defer func() { finalizeAll(caches) }()
	var logits []float32
	var err error
	if opts.NoCache {
		logits, err = g.runFull(tokens)
	} else {
		logits, caches, err = g.runPrefill(tokens, opts.MaxLength)
	}
	if err != nil {
		return nil, err
	}

	vocab := g.cfg.VocabSize
	next := make([][]int32, batch)
	for length := promptLen; length < opts.MaxLength; length++ {
		// Pick the next token of every unfinished row from the logits of the last position.
		picks := sampler.pickBatch(logits, vocab, length, finished)
		for row := range batch {
			token := int32(0)
			if !finished[row] {
				token = int32(picks[row])
				if picks[row] == opts.EOS {
					finished[row] = true
				} else {
					results[row] = append(results[row], picks[row])
				}
			} else if opts.EOS >= 0 {
				token = int32(opts.EOS) // finished rows are fed EOS (HF pads with pad = EOS)
			}
			tokens[row] = append(tokens[row], token)
			next[row] = []int32{token}
		}
		if !slices.Contains(finished, false) || length+1 >= opts.MaxLength {
			break
		}
		if opts.NoCache {
			logits, err = g.runFull(tokens)
		} else {
			logits, caches, err = g.runStep(next, length, weightsT, caches)
		}
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

func finalizeAll(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

// runPrefill runs the prompt through the model, returning the last position's logits [B·V] and the
// per-layer caches (K₀…K_{L-1}, V₀…V_{L-1}, each [B,H,M,Dh]) with slots 0..P-1 filled.
func (g *Generator) runPrefill(tokens [][]int32, cacheLen int) ([]float32, []*tensors.Tensor, error) {
	exec, ok := g.prefills[cacheLen]
	if !ok {
		var err error
		exec, err = context.NewExec(g.backend, g.ctx, func(ctx *context.Context, tokens *Node) []*Node {
			return prefillGraph(ctx, g.cfg, tokens, cacheLen)
		})
		if err != nil {
			return nil, nil, err
		}
		exec.SetMaxCache(-1) // one graph per prompt length
		g.prefills[cacheLen] = exec
	}
	var outputs []*tensors.Tensor
	var err error
	if perr := CatchPanic(func() { outputs, err = exec.Exec(tokens) }); perr != nil {
		err = perr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("prefill: %w", err)
	}
	logits, err := tensors.CopyFlatData[float32](outputs[0])
	outputs[0].MustFinalizeAll()
	return logits, outputs[1:], err
}

// runStep decodes one token per row at position, consuming (donating) the caches and returning the
// updated ones.
func (g *Generator) runStep(next [][]int32, position int, weightsT, caches []*tensors.Tensor) ([]float32, []*tensors.Tensor, error) {
	cacheLen := caches[0].Shape().Dimensions[2]
	exec, ok := g.steps[cacheLen]
	if !ok {
		var err error
		numWeights := len(weightsT)
		exec, err = context.NewExec(g.backend, g.ctx, func(ctx *context.Context, inputs []*Node) []*Node {
			return decodeStepGraph(ctx, g.cfg, inputs[0], inputs[1], inputs[2:2+numWeights], inputs[2+numWeights:])
		})
		if err != nil {
			return nil, nil, err
		}
		g.steps[cacheLen] = exec
	}
	args := make([]any, 0, 2+len(weightsT)+len(caches))
	args = append(args, next, int32(position))
	for _, w := range weightsT {
		args = append(args, w)
	}
	for _, cache := range caches {
		// The old caches are not needed after this step: let the backend reuse their memory.
		donated, err := DonateTensorBuffer(cache, g.backend, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("decode step: %w", err)
		}
		args = append(args, donated)
	}
	var outputs []*tensors.Tensor
	var err error
	if perr := CatchPanic(func() { outputs, err = exec.Exec(args...) }); perr != nil {
		err = perr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("decode step at position %d: %w", position, err)
	}
	logits, err := tensors.CopyFlatData[float32](outputs[0])
	outputs[0].MustFinalizeAll()
	return logits, outputs[1:], err
}

// runFull recomputes the whole forward pass on the sequences so far (NoCache).
func (g *Generator) runFull(tokens [][]int32) ([]float32, error) {
	if g.full == nil {
		var err error
		g.full, err = context.NewExec(g.backend, g.ctx, func(ctx *context.Context, tokens *Node) *Node {
			return lastLogitsGraph(ctx, g.cfg, tokens)
		})
		if err != nil {
			return nil, err
		}
		g.full.SetMaxCache(-1) // one graph per length
	}
	var outputs []*tensors.Tensor
	var err error
	if perr := CatchPanic(func() { outputs, err = g.full.Exec(tokens) }); perr != nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("full forward: %w", err)
	}
	defer outputs[0].MustFinalizeAll()
	return tensors.CopyFlatData[float32](outputs[0])
}

// lastLogitsGraph is the full model on tokens [B,T], returning only the last position's logits [B,V]
// (the LM head is applied to that position alone).
func lastLogitsGraph(ctx *context.Context, cfg Config, tokens *Node) *Node {
	hidden := Hidden(ctx, cfg, tokens)
	t := tokens.Shape().Dimensions[1]
	last := SliceAxis(hidden, 1, AxisRange(t-1, t))
	return decodeLogits(ctx, cfg, last) // the same LM head as the cached path: the comparison isolates the cache
}

// prefillGraph runs the prompt tokens [B,P] through the model with causal attention and returns the
// last position's logits [B,V] followed by the L key caches and the L value caches, [B,H,M,Dh] each,
// holding the prompt's keys/values in slots 0..P-1 and zeros after.
func prefillGraph(ctx *context.Context, cfg Config, tokens *Node, cacheLen int) []*Node {
	g := tokens.Graph()
	dims := tokens.Shape().Dimensions
	batch, promptLen := dims[0], dims[1]
	if promptLen > cacheLen {
		panic(fmt.Errorf("prompt length %d exceeds the cache length %d", promptLen, cacheLen))
	}
	x := Embed(ctx, cfg, tokens, Iota(g, shapeOf(dtypes.Int32, promptLen), 0))
	mask := CausalMask(g, promptLen, promptLen)
	keys := make([]*Node, cfg.NLayer)
	values := make([]*Node, cfg.NLayer)
	for i := range cfg.NLayer {
		layer := Layer(ctx, i)
		q, k, v := QKV(layer, cfg, LayerNorm(layer.In("ln_1"), x, cfg.LayerNormEps))
		x = Add(x, AttnOut(layer, cfg, Attend(q, k, v, mask)))
		x = Add(x, MLP(layer, cfg, LayerNorm(layer.In("ln_2"), x, cfg.LayerNormEps)))
		// Pad the prompt's keys/values [B,H,P,Dh] with zeros to the cache length M.
		keys[i], values[i] = k, v
		if promptLen < cacheLen {
			zeros := Zeros(g, shapeOf(k.DType(), batch, cfg.NHead, cacheLen-promptLen, cfg.HeadDim()))
			keys[i] = Concatenate([]*Node{k, zeros}, 2)
			values[i] = Concatenate([]*Node{v, zeros}, 2)
		}
	}
	x = LayerNorm(ctx.In("ln_f"), x, cfg.LayerNormEps)
	last := SliceAxis(x, 1, AxisRange(promptLen-1, promptLen))
	logits := decodeLogits(ctx, cfg, last)
	return append(append([]*Node{logits}, keys...), values...)
}

// blockMatrices are the Conv1D layers of a transformer block, in the order the decode step takes their
// transposed weights.
var blockMatrices = [][2]string{{"attn", "c_attn"}, {"attn", "c_proj"}, {"mlp", "c_fc"}, {"mlp", "c_proj"}}

// transposedWeights returns every block's Conv1D weights transposed to [out, in] (layer by layer, in
// blockMatrices order). HF stores them [in, out]; simplego multiplies a few rows by a weight only after
// laying it out as [out, in], so with the stored layout every decode step would transpose every weight
// (for GPT-2 small at batch 1 that is half of the step's time). Transposing once per Generate call
// avoids it.
func (g *Generator) transposedWeights() ([]*tensors.Tensor, error) {
	if g.weightsT == nil {
		var err error
		g.weightsT, err = context.NewExec(g.backend, g.ctx, func(ctx *context.Context, graph *Graph) []*Node {
			var transposed []*Node
			for i := range g.cfg.NLayer {
				for _, m := range blockMatrices {
					layer := Layer(ctx, i).In(m[0]).In(m[1])
					v := layer.GetVariableByScopeAndName(layer.Scope(), "weight")
					if v == nil {
						panic(fmt.Errorf("variable %s/weight is missing", layer.Scope()))
					}
					transposed = append(transposed, Transpose(v.ValueGraph(graph), 0, 1))
				}
			}
			return transposed
		})
		if err != nil {
			return nil, err
		}
	}
	var outputs []*tensors.Tensor
	var err error
	if perr := CatchPanic(func() { outputs, err = g.weightsT.Exec() }); perr != nil {
		err = perr
	}
	if err != nil {
		return nil, fmt.Errorf("transposing the weights for decoding: %w", err)
	}
	return outputs, nil
}

// linearT is HF's Conv1D (y = x·W + b) with the weight given transposed, wT = Wᵀ [out, in]; ctx is the
// layer's scope (for the bias). Like the forward pass, the product runs in cfg.DType.
func linearT(ctx *context.Context, cfg Config, x, wT *Node) *Node {
	bias := variable(ctx, "bias", zerosInit, wT.Shape().Dimensions[0]).ValueGraph(x.Graph())
	if cfg.DType != dtypes.Float32 && cfg.DType != dtypes.InvalidDType {
		x, wT = ConvertDType(x, cfg.DType), ConvertDType(wT, cfg.DType)
	}
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, wT, []int{1}, nil)
	return Add(ConvertDType(y, dtypes.Float32), toRank(bias, y.Rank()))
}

// decodeStepGraph runs one new token per row: tokens [B,1] at position (int32 scalar, the same for every
// row), weightsT from transposedWeights, caches = L key caches then L value caches [B,H,M,Dh]. Returns
// the logits [B,V] followed by the updated caches.
//
// The block is GPT2Block (see Block) written out with the transposed weights; inference only, so no
// dropout. The tests compare it with Logits at every position.
func decodeStepGraph(ctx *context.Context, cfg Config, tokens, position *Node, weightsT, caches []*Node) []*Node {
	g := tokens.Graph()
	numLayers := cfg.NLayer
	if len(caches) != 2*numLayers {
		panic(fmt.Errorf("decode step: %d caches, want 2×%d layers", len(caches), numLayers))
	}
	cacheDims := caches[0].Shape().Dimensions // [B,H,M,Dh]
	cacheLen := cacheDims[2]
	position = ConvertDType(position, dtypes.Int32)
	x := Embed(ctx, cfg, tokens, Reshape(position, 1)) // [B,1,D]

	// Slot j of the cache holds position j: the new key/value goes to slot == position, and the query
	// may attend to every slot ≤ position (the rest are zeros or stale and must not be seen).
	slots := Iota(g, shapeOf(dtypes.Int32, cacheLen), 0)
	isCurrent := BroadcastToDims(Reshape(Equal(slots, position), 1, 1, cacheLen, 1), cacheDims...)
	visible := Reshape(LessOrEqual(slots, position), 1, cacheLen) // [T=1, S=M]

	if len(weightsT) != len(blockMatrices)*numLayers {
		panic(fmt.Errorf("decode step: %d transposed weights, want %d per layer × %d layers", len(weightsT), len(blockMatrices), numLayers))
	}
	batch, heads, headDim, d := cacheDims[0], cfg.NHead, cfg.HeadDim(), cfg.NEmbd
	outputs := make([]*Node, 1+2*numLayers)
	for i := range numLayers {
		layer := Layer(ctx, i)
		w := weightsT[len(blockMatrices)*i:]
		// Attention: fused q, k, v [B,1,3D] → [3,B,H,1,Dh] (as QKV does), the new k, v written into slot
		// `position` of the caches, then the query attends to slots ≤ position.
		h := LayerNorm(layer.In("ln_1"), x, cfg.LayerNormEps)
		qkv := linearT(layer.In("attn").In("c_attn"), cfg, h, w[0])
		qkv = TransposeAllAxes(Reshape(qkv, batch, 1, 3, heads, headDim), 2, 0, 3, 1, 4)
		head := func(j int) *Node { return Reshape(SliceAxis(qkv, 0, AxisRange(j, j+1)), batch, heads, 1, headDim) }
		q, k, v := head(0), head(1), head(2)
		keys := Where(isCurrent, BroadcastToDims(k, cacheDims...), caches[i])
		values := Where(isCurrent, BroadcastToDims(v, cacheDims...), caches[numLayers+i])
		y := Attend(q, keys, values, visible)                            // [B,H,1,Dh]
		y = Reshape(TransposeAllAxes(y, 0, 2, 1, 3), batch, 1, d)        // merge the heads
		x = Add(x, linearT(layer.In("attn").In("c_proj"), cfg, y, w[1])) // residual
		// MLP: c_fc, tanh-GELU, c_proj, residual.
		h = LayerNorm(layer.In("ln_2"), x, cfg.LayerNormEps)
		h = geluTanh(linearT(layer.In("mlp").In("c_fc"), cfg, h, w[2]))
		x = Add(x, linearT(layer.In("mlp").In("c_proj"), cfg, h, w[3]))
		outputs[1+i], outputs[1+numLayers+i] = keys, values
	}
	x = LayerNorm(ctx.In("ln_f"), x, cfg.LayerNormEps)
	outputs[0] = decodeLogits(ctx, cfg, x)
	return outputs
}

// simplegoSmallMatmul is the per-example problem size (lhs rows × rhs rows) above which simplego's
// DotGeneral re-packs both operands into 32×32 cache blocks before multiplying (16·32², see
// backends/simplego/dotgeneral.go); below it reads them in place.
const simplegoSmallMatmul = 16 * 32 * 32

// decodeLogits is the tied LM head for the last position only: x [B,1,D] → logits [B,V].
//
// With few rows the LM head is B×V dot products of length D, and simplego's block re-packing copies all
// of wte (strided) at every token, which costs more than the products. Cutting the vocabulary into C
// equal groups used as a batch axis, [C, V/C, D] (a plain reshape of wte), keeps each group under the
// threshold so wte is read in place, and the groups run in parallel. Same maths, same result up to
// rounding; for larger batches (or no suitable C) the plain LM head is used.
func decodeLogits(ctx *context.Context, cfg Config, x *Node) *Node {
	batch, vocab, d := x.Shape().Dimensions[0], cfg.VocabSize, cfg.NEmbd
	groups := 0
	if cfg.DType == dtypes.Float32 && batch*vocab > simplegoSmallMatmul {
		for c := 2; c <= 64; c++ {
			if vocab%c == 0 && batch*(vocab/c) <= simplegoSmallMatmul {
				groups = c
				break
			}
		}
	}
	if groups == 0 {
		return Squeeze(LMHead(ctx, cfg, x), 1) // [B,1,V] → [B,V]
	}
	wte := Reshape(tokenEmbeddings(ctx, cfg, x.Graph()), groups, vocab/groups, d)
	rows := BroadcastToDims(Reshape(x, 1, batch, d), groups, batch, d)
	// [C,B,D]·[C,V/C,D] over D, batched over C → [C,B,V/C] → [B,C,V/C] → [B,V].
	logits := DotGeneral(rows, []int{2}, []int{0}, wte, []int{2}, []int{0})
	return Reshape(TransposeAllAxes(logits, 1, 0, 2), batch, vocab)
}

// samplerWorkers is how many goroutines process the rows of a step (the host has few cores, and the
// graph is not running meanwhile).
const samplerWorkers = 2

// sampler turns a row of logits into a token id with the HF logits processors and warpers, in HF's
// order: min length, banned ids, then temperature, top-k, top-p.
type sampler struct {
	opts   SampleOptions
	rng    *rand.Rand
	banned []int
	// Scratch per worker goroutine, reused across rows and steps.
	scratch [samplerWorkers]pickScratch
}

func newSampler(vocab int, opts SampleOptions) *sampler {
	// PCG seeded from the user's seed; the second word is an arbitrary odd constant.
	return &sampler{opts: opts, rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15)),
		banned: slices.Clone(opts.BannedIDs)}
}

// pickBatch picks a token for each unfinished row of logits [B·V]. length is the current sequence
// length (prompt included). The random numbers are drawn in row order before the rows are processed
// in parallel, so results do not depend on scheduling.
func (s *sampler) pickBatch(logits []float32, vocab, length int, finished []bool) []int {
	batch := len(finished)
	uniforms := make([]float64, batch)
	for row := range batch {
		if !finished[row] && s.opts.Temperature > 0 {
			uniforms[row] = s.rng.Float64()
		}
	}
	picks := make([]int, batch)
	var wg sync.WaitGroup
	for w := range samplerWorkers {
		if len(s.scratch[w].scores) != vocab {
			s.scratch[w].scores = make([]float64, vocab)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for row := w; row < batch; row += samplerWorkers {
				if !finished[row] {
					picks[row] = s.pick(logits[row*vocab:(row+1)*vocab], length, uniforms[row], &s.scratch[w])
				}
			}
		}()
	}
	wg.Wait()
	return picks
}

// pickScratch is one worker's reusable memory: the row's scores and the top-p buffers.
type pickScratch struct {
	scores []float64
	topP   topPScratch
}

// pick processes one row of logits into a token (scratch.scores has the vocabulary's length).
func (s *sampler) pick(logits []float32, length int, uniform float64, scratch *pickScratch) int {
	opts := s.opts
	scores := scratch.scores
	for i, l := range logits {
		scores[i] = float64(l)
	}
	negInf := math.Inf(-1)
	// HF MinLengthLogitsProcessor: no EOS while the sequence (prompt included) is shorter than MinLength.
	if opts.EOS >= 0 && length < opts.MinLength {
		scores[opts.EOS] = negInf
	}
	// HF NoBadWordsLogitsProcessor with single-token bad words.
	for _, id := range s.banned {
		scores[id] = negInf
	}
	if opts.Temperature == 0 {
		return argmax(scores)
	}
	for i := range scores {
		scores[i] /= opts.Temperature
	}
	if opts.TopK > 0 && opts.TopK < len(scores) {
		applyTopK(scores, opts.TopK)
	}
	probs := softmaxInPlace(scores) // scores now hold probabilities
	if opts.TopP > 0 && opts.TopP < 1 {
		applyTopP(probs, opts.TopP, &scratch.topP)
	}
	return sampleFrom(probs, uniform)
}

// argmax returns the first index of the largest value.
func argmax(values []float64) int {
	best := 0
	for i, v := range values {
		if v > values[best] {
			best = i
		}
	}
	return best
}

// applyTopK sets every score below the k-th largest to -Inf (HF TopKLogitsWarper: ties with the k-th
// score are kept).
func applyTopK(scores []float64, k int) {
	sorted := slices.Clone(scores)
	slices.Sort(sorted)
	threshold := sorted[len(sorted)-k]
	for i, s := range scores {
		if s < threshold {
			scores[i] = math.Inf(-1)
		}
	}
}

// softmaxInPlace turns scores into probabilities (-Inf → 0), subtracting the max for stability.
func softmaxInPlace(scores []float64) []float64 {
	maxScore := math.Inf(-1)
	for _, s := range scores {
		maxScore = max(maxScore, s)
	}
	var sum float64
	for i, s := range scores {
		scores[i] = math.Exp(s - maxScore)
		sum += scores[i]
	}
	for i := range scores {
		scores[i] /= sum
	}
	return scores
}

// topPScratch holds applyTopP's index buffers so a worker reuses them across rows and steps.
type topPScratch struct {
	undecided, above, equal, below, kept []int32
	keptProbs                            []float64
}

// applyTopP zeroes every probability outside the nucleus and renormalises. The nucleus is the smallest
// set of most likely tokens whose cumulative probability reaches topP (HF TopPLogitsWarper: a token is
// removed when the mass of the tokens more likely than it is already ≥ topP), always at least one token;
// equal probabilities are taken in id order. scratch may be nil.
//
// Sorting all V probabilities of every row at every step is slow when the distribution is flat (the
// nucleus is then most of the vocabulary), so the cut is found by a weighted quickselect instead:
// partition the undecided tokens around a pivot probability; if the tokens above the pivot (plus those
// already kept) reach topP the cut lies among them, otherwise keep them all and continue below. Expected
// O(V) per row.
func applyTopP(probs []float64, topP float64, scratch *topPScratch) {
	if scratch == nil {
		scratch = &topPScratch{}
	}
	// Tokens below (1 − topP)/V can be skipped at once: together they weigh less than 1 − topP, so the
	// tokens above the bound already reach topP and the nucleus lies among them.
	bound := (1 - topP) / float64(len(probs))
	undecided := scratch.undecided[:0]
	for i, p := range probs {
		if p > 0 && p >= bound {
			undecided = append(undecided, int32(i))
		}
	}
	kept := scratch.kept[:0]
	mass := 0.0 // of the kept tokens
	above, equal, below := scratch.above[:0], scratch.equal[:0], scratch.below[:0]
	for len(undecided) > 0 && (len(kept) == 0 || mass < topP) {
		// Median of three as the pivot: deterministic and robust to sorted input.
		a, b, c := probs[undecided[0]], probs[undecided[len(undecided)/2]], probs[undecided[len(undecided)-1]]
		pivot := max(min(a, b), min(max(a, b), c))
		above, equal, below = above[:0], equal[:0], below[:0]
		massAbove := 0.0
		for _, id := range undecided {
			switch p := probs[id]; {
			case p > pivot:
				above = append(above, id)
				massAbove += p
			case p == pivot:
				equal = append(equal, id)
			default:
				below = append(below, id)
			}
		}
		if len(above) > 0 && mass+massAbove >= topP {
			// The cut is among the tokens above the pivot: continue with them only.
			undecided = append(undecided[:0], above...)
			continue
		}
		kept = append(kept, above...)
		mass += massAbove
		// Tokens equal to the pivot, in id order (the partitions keep ids ascending), one by one.
		for _, id := range equal {
			if len(kept) > 0 && mass >= topP {
				break
			}
			kept = append(kept, id)
			mass += probs[id]
		}
		undecided = append(undecided[:0], below...)
	}
	keptProbs := scratch.keptProbs[:0]
	for _, id := range kept {
		keptProbs = append(keptProbs, probs[id])
	}
	clear(probs)
	for j, id := range kept {
		probs[id] = keptProbs[j] / mass
	}
	scratch.undecided, scratch.above, scratch.equal, scratch.below = undecided, above, equal, below
	scratch.kept, scratch.keptProbs = kept, keptProbs
}

// sampleFrom draws the token whose cumulative-probability interval contains uniform ∈ [0,1).
func sampleFrom(probs []float64, uniform float64) int {
	cumulative := 0.0
	last := -1
	for i, p := range probs {
		if p <= 0 {
			continue
		}
		cumulative += p
		last = i
		if uniform < cumulative {
			return i
		}
	}
	return last // rounding left uniform just above the total: the last token with mass
}
