package model

import (
	"fmt"
	"reflect"
	"slices"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// GoMLX v0.26 gradient defects, fixed by replacing entries of graph.VJPRegistration:
//
//   - DotGeneral: the stock VJP multiplies broadcast operands and reduces, materialising a
//     [batch, M, N, K] tensor (gigabytes for an LM head). Here each operand's gradient is one DotGeneral
//     of the output gradient with the other operand, plus (at most) one transpose — the textbook
//     dA = dC·Bᵀ, dB = Aᵀ·dC generalised to batch/contracting/cross axes. Fixed upstream after v0.26.
//   - Dot (rank-2 × rank-2): same problem, same fix.
//   - Slice: the stock VJP pads with Pad, which the pure-Go backend lacks; here the gradient is the
//     output gradient concatenated with zero blocks (stride 1; strided slices keep the stock VJP).
//
// The replacements are installed when the package is loaded (and by InstallDotGeneralGradient, which is
// idempotent); the stock ones are kept for the tests.

var (
	stockDotGeneralVJP = VJPRegistration[NodeTypeDotGeneral]
	stockDotVJP        = VJPRegistration[NodeTypeDot]
	stockSliceVJP      = VJPRegistration[NodeTypeSlice]
	installOnce        sync.Once
)

func init() { InstallDotGeneralGradient() }

// InstallDotGeneralGradient replaces v0.26's DotGeneral (and Dot, Slice) gradients with ones that never
// materialise broadcast products and that the pure-Go backend can run. Idempotent.
func InstallDotGeneralGradient() {
	installOnce.Do(func() {
		VJPRegistration[NodeTypeDotGeneral] = func(node *Node, v []*Node, _ shapes.Shape) []*Node {
			return dotGeneralGrad(node, v[0])
		}
		VJPRegistration[NodeTypeDot] = func(node *Node, v []*Node, out shapes.Shape) []*Node {
			a, b := node.Inputs()[0], node.Inputs()[1]
			if a.Rank() != 2 || b.Rank() != 2 {
				return stockDotVJP(node, v, out)
			}
			// C[i,k] = Σj A[i,j]·B[j,k]: dA = dC·Bᵀ (contract k), dB = Aᵀ·dC (contract i).
			return []*Node{
				DotGeneral(v[0], []int{1}, nil, b, []int{1}, nil),
				DotGeneral(a, []int{0}, nil, v[0], []int{0}, nil),
			}
		}
		VJPRegistration[NodeTypeSlice] = func(node *Node, v []*Node, out shapes.Shape) []*Node {
			if grad := sliceGrad(node, v[0]); grad != nil {
				return []*Node{grad}
			}
			return stockSliceVJP(node, v, out)
		}
	})
}

// dotGeneralAxes are the static parameters of a DotGeneral node. They are unexported in v0.26
// (graph.nodeInputsDotGeneral), so they are read by reflection.
type dotGeneralAxes struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

func readIntSlice(v reflect.Value, field string) []int {
	f := v.FieldByName(field)
	if !f.IsValid() {
		panic(fmt.Errorf("model: GoMLX node parameters have no field %q (GoMLX version changed?)", field))
	}
	out := make([]int, f.Len())
	for i := range out {
		out[i] = int(f.Index(i).Int())
	}
	return out
}

// nodeParams returns the reflect.Value of a node's (unexported) inputs struct.
func nodeParams(node *Node) reflect.Value {
	inputs := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !inputs.IsValid() || inputs.IsNil() {
		panic(fmt.Errorf("model: cannot read the parameters of node %s (GoMLX version changed?)", node.Type()))
	}
	return inputs.Elem().Elem() // interface → pointer → struct
}

func readDotGeneralAxes(node *Node) dotGeneralAxes {
	p := nodeParams(node)
	return dotGeneralAxes{
		lhsContracting: readIntSlice(p, "lhsContractingAxes"),
		lhsBatch:       readIntSlice(p, "lhsBatchAxes"),
		rhsContracting: readIntSlice(p, "rhsContractingAxes"),
		rhsBatch:       readIntSlice(p, "rhsBatchAxes"),
	}
}

// crossAxes are the axes of an operand that are neither batch nor contracting (they survive into the
// output), in increasing order.
func crossAxes(rank int, contracting, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// dotGeneralGrad returns [d lhs, d rhs] for C = DotGeneral(lhs, rhs) given dC. The output C has axes
// [batch..., lhsCross..., rhsCross...].
func dotGeneralGrad(node, dC *Node) []*Node {
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	ax := readDotGeneralAxes(node)
	lhsCross := crossAxes(lhs.Rank(), ax.lhsContracting, ax.lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), ax.rhsContracting, ax.rhsBatch)
	nBatch := len(ax.lhsBatch)
	// Axes of dC: batch at [0, nBatch), lhs crosses next, rhs crosses last.
	dcBatch := iota(0, nBatch)
	dcLhsCross := iota(nBatch, len(lhsCross))
	dcRhsCross := iota(nBatch+len(lhsCross), len(rhsCross))

	// d lhs[batch, lhsCross, contracting] = Σ_rhsCross dC[batch, lhsCross, rhsCross] · rhs[batch, rhsCross, contracting].
	dLhs := operandGrad(lhs.Shape(), ax.lhsBatch, lhsCross, ax.lhsContracting,
		dC, dcBatch, dcRhsCross, rhs, ax.rhsBatch, rhsCross, ax.rhsContracting)
	// d rhs[batch, rhsCross, contracting] = Σ_lhsCross dC[batch, lhsCross, rhsCross] · lhs[batch, lhsCross, contracting].
	dRhs := operandGrad(rhs.Shape(), ax.rhsBatch, rhsCross, ax.rhsContracting,
		dC, dcBatch, dcLhsCross, lhs, ax.lhsBatch, lhsCross, ax.lhsContracting)
	return []*Node{dLhs, dRhs}
}

// operandGrad computes the gradient of one operand ("this", with the given shape and axes) as a single
// DotGeneral between dC and the other operand, contracting dC's axes that came from the other operand's
// crosses (otherCrossInDC) with the other operand's cross axes, batched on the batch axes. The remaining
// axes of the other operand are its contracting axes, which pair one-to-one with this operand's
// contracting axes. Of the two operand orders it picks one that needs no transpose when there is one.
func operandGrad(thisShape shapes.Shape, thisBatch, thisCross, thisContracting []int,
	dC *Node, dcBatch, otherCrossInDC []int,
	other *Node, otherBatch, otherCross, otherContracting []int) *Node {
	rank := thisShape.Rank()
	nb, nCross := len(thisBatch), len(thisCross)
	// The other operand's contracting axes survive in increasing axis order; position of each in the result.
	sortedOtherContracting := slices.Sorted(slices.Values(otherContracting))
	posOf := func(axis int) int { return slices.Index(sortedOtherContracting, axis) }

	// Order A: DotGeneral(dC, other) → [batch, thisCross..., otherContracting(sorted)...].
	permA := make([]int, rank)
	// Order B: DotGeneral(other, dC) → [batch, otherContracting(sorted)..., thisCross...].
	permB := make([]int, rank)
	for i, a := range thisBatch {
		permA[a], permB[a] = i, i
	}
	for i, a := range thisCross {
		permA[a] = nb + i
		permB[a] = nb + len(thisContracting) + i
	}
	for i, a := range thisContracting {
		p := posOf(otherContracting[i])
		permA[a] = nb + nCross + p
		permB[a] = nb + p
	}

	var grad *Node
	perm := permA
	if isIdentity(permB) && !isIdentity(permA) {
		grad = DotGeneral(other, otherCross, otherBatch, dC, otherCrossInDC, dcBatch)
		perm = permB
	} else {
		grad = DotGeneral(dC, otherCrossInDC, dcBatch, other, otherCross, otherBatch)
	}
	if !isIdentity(perm) {
		// Output axis `a` of the gradient is axis perm[a] of the DotGeneral result.
		grad = TransposeAllAxes(grad, perm...)
	}
	if grad.DType() != thisShape.DType {
		grad = ConvertDType(grad, thisShape.DType)
	}
	return grad
}

func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

func isIdentity(perm []int) bool {
	for i, p := range perm {
		if i != p {
			return false
		}
	}
	return true
}

// sliceGrad is the gradient of a stride-1 Slice: dC placed back where it came from, by concatenating zero
// blocks before and after it on every sliced axis. Returns nil for strided slices.
func sliceGrad(node, dC *Node) *Node {
	x := node.Inputs()[0]
	p := nodeParams(node)
	starts, limits, strides := readIntSlice(p, "starts"), readIntSlice(p, "limits"), readIntSlice(p, "strides")
	for _, s := range strides {
		if s > 1 {
			return nil
		}
	}
	g := x.Graph()
	grad := dC
	for axis, dim := range x.Shape().Dimensions {
		before, after := starts[axis], dim-limits[axis]
		if before == 0 && after == 0 {
			continue
		}
		parts := make([]*Node, 0, 3)
		zerosOf := func(n int) *Node {
			dims := slices.Clone(grad.Shape().Dimensions)
			dims[axis] = n
			return Zeros(g, shapes.Make(grad.DType(), dims...))
		}
		if before > 0 {
			parts = append(parts, zerosOf(before))
		}
		parts = append(parts, grad)
		if after > 0 {
			parts = append(parts, zerosOf(after))
		}
		grad = Concatenate(parts, axis)
	}
	return grad
}
