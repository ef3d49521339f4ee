package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func randomTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// gradsWith computes d/d(lhs,rhs) of Σ DotGeneral(lhs, rhs)·weights (weights random, so every output
// element's gradient matters) using the given DotGeneral VJP.
func gradsWith(t *testing.T, vjp VJP, lhs, rhs, weights *tensors.Tensor,
	lhsContract, lhsBatch, rhsContract, rhsBatch []int) (dLhs, dRhs []float32) {
	t.Helper()
	saved := VJPRegistration[NodeTypeDotGeneral]
	VJPRegistration[NodeTypeDotGeneral] = vjp
	defer func() { VJPRegistration[NodeTypeDotGeneral] = saved }()
	exec, err := NewExec(testBackend(t), func(l, r, w *Node) (*Node, *Node) {
		out := DotGeneral(l, lhsContract, lhsBatch, r, rhsContract, rhsBatch)
		loss := ReduceAllSum(Mul(out, w))
		grads := Gradient(loss, l, r)
		return grads[0], grads[1]
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(lhs, rhs, weights)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
}

// outputShape of a DotGeneral, computed by building it (the test does not re-derive the layout rule).
func dotGeneralOutputShape(t *testing.T, lhs, rhs shapes.Shape, lc, lb, rc, rb []int) shapes.Shape {
	g := NewGraph(simplego.GetBackend(), "shape")
	defer g.Finalize()
	return DotGeneral(Parameter(g, "l", lhs), lc, lb, Parameter(g, "r", rhs), rc, rb).Shape()
}

func TestDotGeneralGradientMatchesStock(t *testing.T) {
	cases := []struct {
		name             string
		lhsDims, rhsDims []int
		lc, lb, rc, rb   []int
	}{
		{"matmul [M,K]x[K,N]", []int{5, 7}, []int{7, 3}, []int{1}, nil, []int{0}, nil},
		{"LM head [B,T,D]x[V,D]", []int{2, 3, 4}, []int{6, 4}, []int{2}, nil, []int{1}, nil},
		{"Conv1D [B,T,D]x[D,O]", []int{2, 3, 4}, []int{4, 5}, []int{2}, nil, []int{0}, nil},
		{"attention scores, batch axes 0,1", []int{2, 3, 4, 5}, []int{2, 3, 6, 5}, []int{3}, []int{0, 1}, []int{3}, []int{0, 1}},
		{"attention values", []int{2, 3, 4, 6}, []int{2, 3, 6, 5}, []int{3}, []int{0, 1}, []int{2}, []int{0, 1}},
		{"two contracting axes in different orders", []int{3, 4, 5}, []int{5, 2, 3}, []int{0, 2}, nil, []int{2, 0}, nil},
		{"batch axes not leading, swapped order", []int{4, 2, 3}, []int{3, 5, 2}, []int{2}, []int{1}, []int{0}, []int{2}},
		{"batch, two contracting, several crosses", []int{2, 3, 4, 5, 6}, []int{6, 7, 4, 2}, []int{2, 4}, []int{0}, []int{2, 0}, []int{3}},
		{"no cross axes (dot product per batch)", []int{3, 4}, []int{3, 4}, []int{1}, []int{0}, []int{1}, []int{0}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lhs, rhs := randomTensor(rng, c.lhsDims...), randomTensor(rng, c.rhsDims...)
			outShape := dotGeneralOutputShape(t, lhs.Shape(), rhs.Shape(), c.lc, c.lb, c.rc, c.rb)
			weights := randomTensor(rng, outShape.Dimensions...)
			wantL, wantR := gradsWith(t, stockDotGeneralVJP, lhs, rhs, weights, c.lc, c.lb, c.rc, c.rb)
			gotL, gotR := gradsWith(t, VJPRegistration[NodeTypeDotGeneral], lhs, rhs, weights, c.lc, c.lb, c.rc, c.rb)
			assertClose(t, "d lhs", gotL, wantL, 1e-4)
			assertClose(t, "d rhs", gotR, wantR, 1e-4)
		})
	}
}

func TestDotGeneralGradientIsInstalled(t *testing.T) {
	InstallDotGeneralGradient() // idempotent
	g := NewGraph(simplego.GetBackend(), "check")
	defer g.Finalize()
	// The replacement builds no node bigger than its operands and output: check the largest node of the
	// gradient graph of an LM-head-shaped product, where the stock VJP builds [N, V, D].
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, 8, 16))
	w := Parameter(g, "w", shapes.Make(dtypes.Float32, 32, 16))
	loss := ReduceAllSum(DotGeneral(x, []int{1}, nil, w, []int{1}, nil))
	grads := Gradient(loss, x, w)
	largest := 0
	var visit func(n *Node)
	seen := map[*Node]bool{}
	visit = func(n *Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		largest = max(largest, n.Shape().Size())
		for _, in := range n.Inputs() {
			visit(in)
		}
	}
	visit(grads[0])
	visit(grads[1])
	if largest > 32*16 {
		t.Errorf("gradient graph has a node of %d elements, more than its largest operand [32,16]: the broadcast VJP is in use", largest)
	}
}

func TestSliceGradient(t *testing.T) {
	backend := testBackend(t)
	// d/dx Σ (x[1:3, 2:5]·w) is w in the sliced window and 0 elsewhere.
	rng := rand.New(rand.NewPCG(3, 4))
	x, w := randomTensor(rng, 4, 6), randomTensor(rng, 2, 3)
	exec, err := NewExec(backend, func(x, w *Node) *Node {
		s := Slice(x, AxisRange(1, 3), AxisRange(2, 5))
		return Gradient(ReduceAllSum(Mul(s, w)), x)[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec1(x, w)
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out)
	wf := tensors.MustCopyFlatData[float32](w)
	for r := range 4 {
		for c := range 6 {
			want := float32(0)
			if r >= 1 && r < 3 && c >= 2 && c < 5 {
				want = wf[(r-1)*3+(c-2)]
			}
			if got[r*6+c] != want {
				t.Fatalf("grad[%d,%d] = %g, want %g", r, c, got[r*6+c], want)
			}
		}
	}
}

var (
	coreBackend     backends.Backend
	coreBackendErr  error
	coreBackendOnce sync.Once
)

// testBackend is one pure-Go backend for all tests of the package (tensors cannot cross backends).
func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	coreBackendOnce.Do(func() { coreBackend, coreBackendErr = NewBackend("go") })
	if coreBackendErr != nil {
		t.Fatal(coreBackendErr)
	}
	return coreBackend
}

func assertClose(t *testing.T, what string, got, want []float32, relTol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	for i := range got {
		if diff := math.Abs(float64(got[i] - want[i])); diff > relTol*max(scale, 1) {
			t.Fatalf("%s[%d] = %g, want %g (diff %g)", what, i, got[i], want[i], diff)
		}
	}
}

func TestDotGradientMatchesStock(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, b, w := randomTensor(rng, 4, 6), randomTensor(rng, 6, 3), randomTensor(rng, 4, 3)
	grads := func(vjp VJP) []float32 {
		saved := VJPRegistration[NodeTypeDot]
		VJPRegistration[NodeTypeDot] = vjp
		defer func() { VJPRegistration[NodeTypeDot] = saved }()
		exec, err := NewExec(testBackend(t), func(a, b, w *Node) (*Node, *Node) {
			out := Dot(a, b)
			if out.Type() != NodeTypeDot {
				t.Fatalf("graph.Dot built a %s node", out.Type())
			}
			g := Gradient(ReduceAllSum(Mul(out, w)), a, b)
			return g[0], g[1]
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := exec.Exec(a, b, w)
		if err != nil {
			t.Fatal(err)
		}
		return append(tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])...)
	}
	assertClose(t, "d(a,b)", grads(VJPRegistration[NodeTypeDot]), grads(stockDotVJP), 1e-5)
}
