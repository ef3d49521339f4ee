package model

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func valuesOf(t *testing.T, ctx *context.Context, key string) []float32 {
	t.Helper()
	scope, name := ScopeOf(key)
	v := ctx.GetVariableByScopeAndName("/"+strings.Join(scope, "/"), name)
	if v == nil {
		t.Fatalf("no variable %s", key)
	}
	return tensors.MustCopyFlatData[float32](v.MustValue())
}

func meanStd(x []float32) (mean, std float64) {
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)))
}

func TestInitMatchesHFGPT2(t *testing.T) {
	backend := testBackend(t)
	cfg, _ := Preset("tiny")
	cfg.VocabSize = 2000
	cfg.NLayer = 4
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 42); err != nil {
		t.Fatal(err)
	}
	residual := 0.02 / math.Sqrt(2*4)
	for key, wantStd := range map[string]float64{
		"wte.weight": 0.02, "wpe.weight": 0.02, "h.0.attn.c_attn.weight": 0.02, "h.3.mlp.c_fc.weight": 0.02,
		"h.0.attn.c_proj.weight": residual, "h.2.mlp.c_proj.weight": residual,
	} {
		mean, std := meanStd(valuesOf(t, ctx, key))
		if math.Abs(mean) > 0.1*wantStd || math.Abs(std-wantStd) > 0.05*wantStd {
			t.Errorf("%s: mean %.4g std %.4g, want N(0, %.4g)", key, mean, std, wantStd)
		}
	}
	for key, want := range map[string]float32{"h.1.ln_1.weight": 1, "ln_f.weight": 1, "ln_f.bias": 0,
		"h.1.attn.c_attn.bias": 0, "h.3.mlp.c_proj.bias": 0} {
		for i, v := range valuesOf(t, ctx, key) {
			if v != want {
				t.Fatalf("%s[%d] = %g, want %g", key, i, v, want)
			}
		}
	}
	// No separate LM head: the head is tied to wte.
	for v := range ctx.IterVariables() {
		if strings.Contains(v.Scope(), "lm_head") {
			t.Errorf("unexpected variable %s/%s", v.Scope(), v.Name())
		}
	}

	// Same seed, same weights; another seed, other weights.
	again, other := context.New(), context.New()
	if err := Init(backend, again, cfg, 42); err != nil {
		t.Fatal(err)
	}
	if err := Init(backend, other, cfg, 43); err != nil {
		t.Fatal(err)
	}
	a, b, c := valuesOf(t, ctx, "h.2.attn.c_attn.weight"), valuesOf(t, again, "h.2.attn.c_attn.weight"), valuesOf(t, other, "h.2.attn.c_attn.weight")
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 twice differs at %d: %g vs %g", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same > len(a)/100 {
		t.Errorf("seeds 42 and 43 give %d equal values of %d", same, len(a))
	}
}

func TestInitKeepsLoadedValues(t *testing.T) {
	backend := testBackend(t)
	cfg, _ := Preset("test")
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 1); err != nil {
		t.Fatal(err)
	}
	before := valuesOf(t, ctx, "h.0.mlp.c_fc.weight")
	if err := Init(backend, ctx, cfg, 2); err != nil {
		t.Fatal(err)
	}
	after := valuesOf(t, ctx, "h.0.mlp.c_fc.weight")
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("Init overwrote an initialised variable at %d", i)
		}
	}
}

func TestLossMaskAndStability(t *testing.T) {
	backend := testBackend(t)
	// Logits with huge values must not overflow; the mask must pick positions.
	logits := [][][]float32{{{1000, 0, -1000}, {0, 0, 0}}, {{5, 5, 5}, {-3, 2, 1}}}
	targets := [][]int32{{0, 2}, {1, 1}}
	mask := [][]bool{{true, false}, {false, true}}
	exec, err := NewExec(backend, func(l, tgt, m *Node) (*Node, *Node, *Node) {
		return CrossEntropy(l, tgt, m), CrossEntropy(l, tgt, nil), TokenLogProbs(l, tgt)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(logits, targets, mask)
	if err != nil {
		t.Fatal(err)
	}
	lp := func(row []float32, tgt int) float64 {
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		return float64(row[tgt]) - m - math.Log(s)
	}
	want := []float64{lp(logits[0][0], 0), lp(logits[0][1], 2), lp(logits[1][0], 1), lp(logits[1][1], 1)}
	got := tensors.MustCopyFlatData[float32](outs[2])
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Errorf("TokenLogProbs[%d] = %g, want %g", i, got[i], want[i])
		}
	}
	masked := tensors.ToScalar[float32](outs[0])
	if wantMasked := -(want[0] + want[3]) / 2; math.Abs(float64(masked)-wantMasked) > 1e-5 {
		t.Errorf("masked CE = %g, want %g", masked, wantMasked)
	}
	all := tensors.ToScalar[float32](outs[1])
	if wantAll := -(want[0] + want[1] + want[2] + want[3]) / 4; math.Abs(float64(all)-wantAll) > 1e-5 {
		t.Errorf("CE = %g, want %g", all, wantAll)
	}
}

func TestBFloat16Compute(t *testing.T) {
	backend := testBackend(t)
	cfg := parityConfig()
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 3); err != nil {
		t.Fatal(err)
	}
	bf := cfg
	bf.DType = dtypes.BFloat16
	tokens := [][]int32{{1, 2, 3, 4, 5}}
	run := func(c Config) []float32 {
		out, err := context.ExecOnce(backend, ctx, func(ctx *context.Context, tok *Node) *Node { return Logits(ctx, c, tok) }, tokens)
		if err != nil {
			t.Fatal(err)
		}
		if out.DType() != dtypes.Float32 {
			t.Fatalf("logits dtype %s, want float32", out.DType())
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	f32, b16 := run(cfg), run(bf)
	maxDiff, scale := 0.0, 0.0
	for i := range f32 {
		maxDiff = math.Max(maxDiff, math.Abs(float64(f32[i]-b16[i])))
		scale = math.Max(scale, math.Abs(float64(f32[i])))
	}
	// bf16 has 8 bits of mantissa: close to float32, but not identical.
	if maxDiff == 0 || maxDiff > 0.05*math.Max(scale, 1) {
		t.Errorf("bf16 logits differ from f32 by %g (scale %g)", maxDiff, scale)
	}
}
