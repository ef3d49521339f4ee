package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// refModel is an independent float64 GPT-2 forward pass written from the HF GPT2LMHeadModel maths,
// reading the variable values of a context by their HF keys.
type refModel struct {
	cfg    Config
	params map[string][]float64
}

func newRefModel(t *testing.T, ctx *context.Context, cfg Config) *refModel {
	t.Helper()
	r := &refModel{cfg: cfg, params: map[string][]float64{}}
	for v := range ctx.IterVariables() {
		if v.DType() != dtypes.Float32 {
			continue
		}
		flat := tensors.MustCopyFlatData[float32](v.MustValue())
		f64 := make([]float64, len(flat))
		for i, x := range flat {
			f64[i] = float64(x)
		}
		r.params[HFKey(v.Scope(), v.Name())] = f64
	}
	return r
}

func (r *refModel) p(t *testing.T, key string) []float64 {
	v, ok := r.params[key]
	if !ok {
		t.Fatalf("reference: no parameter %q in the context", key)
	}
	return v
}

func refLayerNorm(x, w, b []float64, eps float64) []float64 {
	n := float64(len(x))
	mean, variance := 0.0, 0.0
	for _, v := range x {
		mean += v
	}
	mean /= n
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	variance /= n
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v-mean)/math.Sqrt(variance+eps)*w[i] + b[i]
	}
	return out
}

// refLinear: y = x·W + b with W [in,out] row-major (HF Conv1D).
func refLinear(x, w, b []float64, out int) []float64 {
	y := make([]float64, out)
	copy(y, b)
	for i, xi := range x {
		for j := range out {
			y[j] += xi * w[i*out+j]
		}
	}
	return y
}

func refGelu(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// logits of one sequence: [T][V].
func (r *refModel) logits(t *testing.T, tokens []int) [][]float64 {
	cfg := r.cfg
	d, nh, dh := cfg.NEmbd, cfg.NHead, cfg.HeadDim()
	wte, wpe := r.p(t, "wte.weight"), r.p(t, "wpe.weight")
	T := len(tokens)
	x := make([][]float64, T)
	for i, tok := range tokens {
		x[i] = make([]float64, d)
		for j := range d {
			x[i][j] = wte[tok*d+j] + wpe[i*d+j]
		}
	}
	for l := range cfg.NLayer {
		pre := "h." + itoa(l) + "."
		q, k, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range T {
			h := refLayerNorm(x[i], r.p(t, pre+"ln_1.weight"), r.p(t, pre+"ln_1.bias"), cfg.LayerNormEps)
			qkv := refLinear(h, r.p(t, pre+"attn.c_attn.weight"), r.p(t, pre+"attn.c_attn.bias"), 3*d)
			q[i], k[i], v[i] = qkv[:d], qkv[d:2*d], qkv[2*d:]
		}
		for i := range T {
			y := make([]float64, d)
			for h := range nh {
				scores := make([]float64, i+1)
				maxScore := math.Inf(-1)
				for s := 0; s <= i; s++ {
					dot := 0.0
					for j := range dh {
						dot += q[i][h*dh+j] * k[s][h*dh+j]
					}
					scores[s] = dot / math.Sqrt(float64(dh))
					maxScore = math.Max(maxScore, scores[s])
				}
				sum := 0.0
				for s := range scores {
					scores[s] = math.Exp(scores[s] - maxScore)
					sum += scores[s]
				}
				for s := range scores {
					for j := range dh {
						y[h*dh+j] += scores[s] / sum * v[s][h*dh+j]
					}
				}
			}
			proj := refLinear(y, r.p(t, pre+"attn.c_proj.weight"), r.p(t, pre+"attn.c_proj.bias"), d)
			for j := range d {
				x[i][j] += proj[j]
			}
			h := refLayerNorm(x[i], r.p(t, pre+"ln_2.weight"), r.p(t, pre+"ln_2.bias"), cfg.LayerNormEps)
			fc := refLinear(h, r.p(t, pre+"mlp.c_fc.weight"), r.p(t, pre+"mlp.c_fc.bias"), 4*d)
			for j := range fc {
				fc[j] = refGelu(fc[j])
			}
			out := refLinear(fc, r.p(t, pre+"mlp.c_proj.weight"), r.p(t, pre+"mlp.c_proj.bias"), d)
			for j := range d {
				x[i][j] += out[j]
			}
		}
	}
	logits := make([][]float64, T)
	for i := range T {
		h := refLayerNorm(x[i], r.p(t, "ln_f.weight"), r.p(t, "ln_f.bias"), cfg.LayerNormEps)
		logits[i] = make([]float64, cfg.VocabSize)
		for tok := range cfg.VocabSize {
			for j := range d {
				logits[i][tok] += h[j] * wte[tok*d+j]
			}
		}
	}
	return logits
}

func refLogSoftmax(logits []float64, target int) float64 {
	m := math.Inf(-1)
	for _, l := range logits {
		m = math.Max(m, l)
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(l - m)
	}
	return logits[target] - m - math.Log(sum)
}

func itoa(i int) string { return string(rune('0' + i)) }

// perturbAll replaces every float variable with random values (biases, LayerNorm weights included), so
// the parity test exercises every parameter, not just the init's zeros and ones.
func perturbAll(t *testing.T, ctx *context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	for v := range ctx.IterVariables() {
		if v.DType() != dtypes.Float32 {
			continue
		}
		n := v.Shape().Size()
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(0.3 * rng.NormFloat64())
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(data, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
}

func parityConfig() Config {
	cfg, _ := Preset("test")
	cfg.VocabSize, cfg.NEmbd, cfg.NHead, cfg.NLayer, cfg.ContextLen = 37, 24, 3, 2, 8
	return cfg
}

func TestForwardMatchesFloat64Reference(t *testing.T) {
	backend := testBackend(t)
	cfg := parityConfig()
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 5); err != nil {
		t.Fatal(err)
	}
	perturbAll(t, ctx, 5)
	tokens := [][]int32{{3, 17, 0, 36, 5, 5, 12}, {1, 2, 3, 4, 5, 6, 7}}
	targets := [][]int32{{17, 0, 36, 5, 5, 12, 9}, {2, 3, 4, 5, 6, 7, 8}}
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, tok, tgt *Node) (*Node, *Node, *Node) {
		logits := Logits(ctx, cfg, tok)
		return logits, CrossEntropy(logits, tgt, nil), TokenLogProbs(logits, tgt)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tokens, targets)
	if err != nil {
		t.Fatal(err)
	}
	gotLogits := tensors.MustCopyFlatData[float32](outs[0])
	gotLoss := float64(tensors.ToScalar[float32](outs[1]))
	gotLogProbs := tensors.MustCopyFlatData[float32](outs[2])

	ref := newRefModel(t, ctx, cfg)
	wantLoss, n := 0.0, 0
	T, V := len(tokens[0]), cfg.VocabSize
	for b := range tokens {
		seq := make([]int, T)
		for i, x := range tokens[b] {
			seq[i] = int(x)
		}
		want := ref.logits(t, seq)
		for i := range T {
			for v := range V {
				got := float64(gotLogits[(b*T+i)*V+v])
				if relErr(got, want[i][v]) > 1e-4 {
					t.Fatalf("logits[%d,%d,%d] = %.6g, reference %.6g", b, i, v, got, want[i][v])
				}
			}
			lp := refLogSoftmax(want[i], int(targets[b][i]))
			if relErr(float64(gotLogProbs[b*T+i]), lp) > 1e-4 {
				t.Fatalf("log P[%d,%d] = %.6g, reference %.6g", b, i, gotLogProbs[b*T+i], lp)
			}
			wantLoss -= lp
			n++
		}
	}
	wantLoss /= float64(n)
	if relErr(gotLoss, wantLoss) > 1e-4 {
		t.Fatalf("loss = %.7g, reference %.7g", gotLoss, wantLoss)
	}
}

// relErr is |a−b| relative to max(|b|, 1) (logits near 0 are compared absolutely).
func relErr(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1) }

// LMHeadLoss (the training loss) must equal CrossEntropy of the logits, in value and in gradient.
func TestLMHeadLossEqualsCrossEntropy(t *testing.T) {
	backend := testBackend(t)
	cfg := parityConfig()
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 9); err != nil {
		t.Fatal(err)
	}
	perturbAll(t, ctx, 9)
	tokens := [][]int32{{3, 17, 0, 36, 5}, {1, 2, 3, 4, 5}}
	targets := [][]int32{{17, 0, 36, 5, 5}, {2, 3, 4, 5, 6}}
	mask := [][]bool{{true, true, false, true, true}, {true, false, true, true, true}}
	run := func(fused bool) []float32 {
		out, err := context.ExecOnceN(backend, ctx, func(ctx *context.Context, tok, tgt, m *Node) []*Node {
			var loss *Node
			if fused {
				loss = LMHeadLoss(ctx, cfg, Hidden(ctx, cfg, tok), tgt, m)
			} else {
				loss = CrossEntropy(Logits(ctx, cfg, tok), tgt, m)
			}
			wte := ctx.GetVariableByScopeAndName("/wte", "weight").ValueGraph(tok.Graph())
			wpe := ctx.GetVariableByScopeAndName("/wpe", "weight").ValueGraph(tok.Graph())
			grads := Gradient(loss, wte, wpe)
			return []*Node{loss, grads[0], grads[1]}
		}, tokens, targets, mask)
		if err != nil {
			t.Fatal(err)
		}
		var flat []float32
		for _, o := range out {
			flat = append(flat, tensors.MustCopyFlatData[float32](o)...)
		}
		return flat
	}
	assertClose(t, "loss and gradients", run(true), run(false), 1e-5)
}

func TestDropoutOnlyWhenTraining(t *testing.T) {
	backend := testBackend(t)
	cfg := parityConfig()
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 4); err != nil {
		t.Fatal(err)
	}
	withDropout := cfg
	withDropout.Dropout = 0.5
	tokens := [][]int32{{1, 2, 3, 4, 5, 6}}
	run := func(c Config, training bool) []float32 {
		out, err := context.ExecOnce(backend, ctx, func(ctx *context.Context, tok *Node) *Node {
			ctx.SetTraining(tok.Graph(), training)
			return Logits(ctx, c, tok)
		}, tokens)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	plain, evalDropout, trainDropout := run(cfg, false), run(withDropout, false), run(withDropout, true)
	assertClose(t, "eval with dropout configured", evalDropout, plain, 0)
	same := true
	for i := range plain {
		same = same && plain[i] == trainDropout[i]
	}
	if same {
		t.Error("dropout 0.5 in training mode changed nothing")
	}
}

func TestCausalMaskOffsets(t *testing.T) {
	backend := testBackend(t)
	// 2 queries that are the last 2 of 4 positions: query 0 is position 2, query 1 is position 3.
	out, err := NewExec(backend, func(g *Graph) *Node { return CausalMask(g, 2, 4) })
	if err != nil {
		t.Fatal(err)
	}
	res, err := out.Exec1()
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[bool](res)
	want := []bool{true, true, true, false, true, true, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("CausalMask(2,4) = %v, want %v", got, want)
		}
	}
}
