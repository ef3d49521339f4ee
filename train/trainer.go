package train

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph ops read like maths.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/prefgpt/prefgpt/model"
)

// OptimizerScope is the context scope of the optimizer state: for a parameter at scope S with name N, its
// AdamW moments are S'/N#m and S'/N#v where S' = OptimizerScope+S; the update counter is
// OptimizerScope/step (int64). None of them is trainable, and none is a model weight.
const OptimizerScope = "/optimizer"

// StepVarName is the name of the update counter in OptimizerScope.
const StepVarName = "step"

// StepResult reports one optimizer update.
type StepResult struct {
	Step     int     // number of updates done, this one included (1 after the first Step)
	Loss     float64 // mean loss over the micro-batches, before the update
	LR       float64 // learning rate used by this update
	GradNorm float64 // global L2 norm of the averaged gradient, before clipping
}

// Trainer runs optimizer updates of a GPT-2 model held in a context.
type Trainer struct {
	backend  backends.Backend
	ctx      *context.Context
	cfg      model.Config
	opts     Options
	stepExec *context.Exec
	evalExec *context.Exec
	stepVar  *context.Variable
}

// NewTrainer prepares training of the model in ctx: model variables without a value are initialised from
// opts.Seed (loaded ones are kept), and the optimizer state is created (or taken from a checkpoint
// attached to ctx).
func NewTrainer(backend backends.Backend, ctx *context.Context, cfg model.Config, opts Options) (*Trainer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := model.Init(backend, ctx, cfg, opts.Seed); err != nil {
		return nil, fmt.Errorf("NewTrainer: %w", err)
	}
	t := &Trainer{backend: backend, ctx: ctx, cfg: cfg, opts: opts}
	var err error
	if err = model.CatchPanic(func() {
		// Optimizer state, created eagerly so that it exists (zeros, or a checkpoint's values) before the
		// first step.
		for _, v := range modelParams(ctx) {
			moment(ctx, v, "m")
			moment(ctx, v, "v")
		}
		t.stepVar = ctx.InAbsPath(OptimizerScope).Checked(false).VariableWithValue(StepVarName, int64(0)).SetTrainable(false)
	}); err != nil {
		return nil, fmt.Errorf("NewTrainer: creating the optimizer state: %w", err)
	}
	if t.stepVar.DType() != dtypes.Int64 {
		return nil, fmt.Errorf("NewTrainer: %s/%s has dtype %s, want int64", OptimizerScope, StepVarName, t.stepVar.DType())
	}
	t.stepExec, err = context.NewExec(backend, ctx, t.stepGraph)
	if err != nil {
		return nil, fmt.Errorf("NewTrainer: %w", err)
	}
	t.stepExec.SetMaxCache(-1) // one graph per input shape; v0.26 errors past 32 otherwise.
	t.evalExec, err = context.NewExec(backend, ctx, t.evalGraph)
	if err != nil {
		return nil, fmt.Errorf("NewTrainer: %w", err)
	}
	t.evalExec.SetMaxCache(-1)
	return t, nil
}

// modelParams are the float variables of the model: everything but the optimizer state and the RNG.
// (Variables loaded from a checkpoint come back marked trainable, so the scope decides, not the flag.)
func modelParams(ctx *context.Context) []*context.Variable {
	var params []*context.Variable
	for v := range ctx.IterVariables() {
		if isModelParam(v) {
			params = append(params, v)
		}
	}
	return params
}

func isModelParam(v *context.Variable) bool {
	return v.DType().IsFloat() && !strings.HasPrefix(v.Scope(), OptimizerScope) &&
		v.Name() != context.RNGStateVariableName
}

// moment returns the AdamW moment ("m" or "v") of parameter p, zeros when new.
func moment(ctx *context.Context, p *context.Variable, which string) *context.Variable {
	scope, name := OptimizerScope+p.Scope(), p.Name()+"#"+which
	if v := ctx.GetVariableByScopeAndName(scope, name); v != nil {
		return v.SetTrainable(false)
	}
	return ctx.InAbsPath(scope).Checked(false).VariableWithValue(name, tensors.FromShape(p.Shape())).SetTrainable(false)
}

// Step runs one optimizer update on opts.Accum micro-batches, each [MicroBatch][T+1] token ids: inputs
// are tokens [:T], targets tokens [1:]. The gradients of the micro-batches are averaged (= one batch of
// Accum·MicroBatch sequences).
func (t *Trainer) Step(micro [][][]int32) (StepResult, error) {
	if len(micro) != t.opts.Accum {
		return StepResult{}, fmt.Errorf("train step: got %d micro-batches, want Accum=%d", len(micro), t.opts.Accum)
	}
	inputs := make([]any, 0, 2*len(micro)+2)
	for i, mb := range micro {
		x, y, err := t.splitBatch(mb, fmt.Sprintf("micro-batch %d", i))
		if err != nil {
			return StepResult{}, fmt.Errorf("train step: %w", err)
		}
		inputs = append(inputs, x, y)
	}
	stepT, err := t.stepVar.Value()
	if err != nil {
		return StepResult{}, fmt.Errorf("train step: reading the step counter: %w", err)
	}
	step := int(tensors.ToScalar[int64](stepT))
	lr := LRAt(step, t.opts.Steps, t.opts)
	// HF AdamW ("adamw_hf"): step size lr·√(1−β2ᵗ)/(1−β1ᵗ) (bias correction, t = step+1), computed here in
	// float64; the decoupled decay multiplies the updated weight by (1 − lr·wd).
	n := float64(step + 1)
	stepSize := lr * math.Sqrt(1-math.Pow(t.opts.Beta2, n)) / (1 - math.Pow(t.opts.Beta1, n))
	inputs = append(inputs, float32(stepSize), float32(1-lr*t.opts.WeightDecay))
	var outs []*tensors.Tensor
	if err := model.CatchPanic(func() { outs, err = t.stepExec.Exec(inputs...) }); err != nil {
		return StepResult{}, fmt.Errorf("train step %d: %w", step, err)
	}
	if err != nil {
		return StepResult{}, fmt.Errorf("train step %d: %w", step, err)
	}
	return StepResult{
		Step:     step + 1,
		Loss:     float64(tensors.ToScalar[float32](outs[0])),
		LR:       lr,
		GradNorm: float64(tensors.ToScalar[float32](outs[1])),
	}, nil
}

// Loss is the mean next-token loss of a batch [B][T+1] without training (no dropout, no update).
func (t *Trainer) Loss(batch [][]int32) (float64, error) {
	x, y, err := t.splitBatch(batch, "batch")
	if err != nil {
		return 0, fmt.Errorf("eval loss: %w", err)
	}
	var out *tensors.Tensor
	if perr := model.CatchPanic(func() { out, err = t.evalExec.Exec1(x, y) }); perr != nil {
		return 0, fmt.Errorf("eval loss: %w", perr)
	}
	if err != nil {
		return 0, fmt.Errorf("eval loss: %w", err)
	}
	return float64(tensors.ToScalar[float32](out)), nil
}

// CurrentStep is the number of updates done so far (restored with a checkpoint).
func (t *Trainer) CurrentStep() int {
	v, err := t.stepVar.Value()
	if err != nil {
		return 0
	}
	return int(tensors.ToScalar[int64](v))
}

// splitBatch checks a batch of rows [B][T+1] and returns inputs [B,T] and next-token targets [B,T].
func (t *Trainer) splitBatch(rows [][]int32, what string) (x, y *tensors.Tensor, err error) {
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("%s is empty", what)
	}
	width := len(rows[0])
	if width < 2 {
		return nil, nil, fmt.Errorf("%s row 0 has %d tokens, need at least 2 (inputs + next-token target)", what, width)
	}
	if width-1 > t.cfg.ContextLen {
		return nil, nil, fmt.Errorf("%s rows have %d tokens: at most context length + 1 = %d", what, width, t.cfg.ContextLen+1)
	}
	seq := width - 1
	xs := make([]int32, 0, len(rows)*seq)
	ys := make([]int32, 0, len(rows)*seq)
	for r, row := range rows {
		if len(row) != width {
			return nil, nil, fmt.Errorf("%s row %d has %d tokens, row 0 has %d", what, r, len(row), width)
		}
		for c, id := range row {
			if id < 0 || int(id) >= t.cfg.VocabSize {
				return nil, nil, fmt.Errorf("%s row %d position %d: token id %d outside the vocabulary [0, %d)", what, r, c, id, t.cfg.VocabSize)
			}
		}
		xs = append(xs, row[:seq]...)
		ys = append(ys, row[1:]...)
	}
	return tensors.FromFlatDataAndDimensions(xs, len(rows), seq), tensors.FromFlatDataAndDimensions(ys, len(rows), seq), nil
}

func (t *Trainer) evalGraph(ctx *context.Context, x, y *Node) *Node {
	return model.LMHeadLoss(ctx, t.cfg, model.Hidden(ctx, t.cfg, x), y, nil)
}

// stepGraph builds one update: inputs are (x, y) per micro-batch, then the AdamW step size and the decay
// factor 1 − lr·wd.
// Outputs the mean loss and the pre-clip gradient norm; the new weights, moments, step counter (and RNG
// state, with dropout) are written back to the context variables.
func (t *Trainer) stepGraph(ctx *context.Context, inputs []*Node) []*Node {
	g := inputs[0].Graph()
	ctx.SetTraining(g, true)
	numMicro := (len(inputs) - 2) / 2
	stepSize, decayFactor := inputs[2*numMicro], inputs[2*numMicro+1]

	var params []*context.Variable
	var paramNodes, gradSum []*Node
	var lossSum *Node
	for i := range numMicro {
		loss := model.LMHeadLoss(ctx, t.cfg, model.Hidden(ctx, t.cfg, inputs[2*i]), inputs[2*i+1], nil)
		if i == 0 {
			// The parameters the loss reads, as graph inputs (before any update).
			for v := range ctx.IterVariables() {
				if isModelParam(v) && v.InUseByGraph(g) {
					params = append(params, v)
					paramNodes = append(paramNodes, v.ValueGraph(g))
				}
			}
			// A fixed order (by name), so that the norm's sum is the same after a checkpoint reload changes
			// the context's variable order: resumed runs stay bit-identical.
			order := make([]int, len(params))
			for k := range order {
				order[k] = k
			}
			sort.Slice(order, func(a, b int) bool {
				return params[order[a]].ScopeAndName() < params[order[b]].ScopeAndName()
			})
			sortedParams, sortedNodes := make([]*context.Variable, len(params)), make([]*Node, len(params))
			for k, o := range order {
				sortedParams[k], sortedNodes[k] = params[o], paramNodes[o]
			}
			params, paramNodes = sortedParams, sortedNodes
			gradSum = make([]*Node, len(params))
		}
		// Each micro-batch's backward pass is built right after its forward, so its activations can be
		// released before the next micro-batch runs.
		grads := Gradient(loss, paramNodes...)
		for j, gr := range grads {
			if gradSum[j] == nil {
				gradSum[j] = gr
			} else {
				gradSum[j] = Add(gradSum[j], gr)
			}
		}
		if lossSum == nil {
			lossSum = loss
		} else {
			lossSum = Add(lossSum, loss)
		}
	}
	// The update below is written to touch each parameter-sized tensor as few times as possible (the
	// pure-Go backend runs one loop per op): scalars are folded together first.
	//
	// Average over micro-batches (the same gradient as one batch of all their sequences): g = gradSum/n.
	inv := 1 / float64(numMicro)
	meanLoss := MulScalar(lossSum, inv)

	// Global L2 norm of g, from the squares of the sums (reused by the second moment below).
	squares := make([]*Node, len(gradSum))
	var sq *Node
	for j, gr := range gradSum {
		squares[j] = Square(gr)
		s := ReduceAllSum(squares[j])
		if sq == nil {
			sq = s
		} else {
			sq = Add(sq, s)
		}
	}
	norm := MulScalar(Sqrt(sq), inv)
	// Clip like torch clip_grad_norm_: scale by min(1, max/(norm+1e-6)). coef turns gradSum into the
	// clipped average gradient.
	coef := Scalar(g, dtypes.Float32, inv)
	if t.opts.ClipNorm > 0 {
		clip := MinScalar(Div(Scalar(g, dtypes.Float32, t.opts.ClipNorm), AddScalar(norm, 1e-6)), 1.0)
		coef = Mul(coef, clip)
	}

	// AdamW (HF transformers.AdamW, the Trainer 4.17 default), with g = coef·gradSum:
	//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
	//   p ← p − stepSize·m/(√v + eps)          (stepSize carries lr and the bias corrections)
	//   p ← p·(1 − lr·wd)                        (decoupled decay of the updated weight, only where
	//                                            DecayMask says so)
	b1, b2 := t.opts.Beta1, t.opts.Beta2
	mCoef := MulScalar(coef, 1-b1)
	vCoef := MulScalar(Square(coef), 1-b2)
	for j, p := range params {
		mVar, vVar := moment(ctx, p, "m"), moment(ctx, p, "v")
		m := Add(MulScalar(mVar.ValueGraph(g), b1), Mul(gradSum[j], mCoef))
		v := Add(MulScalar(vVar.ValueGraph(g), b2), Mul(squares[j], vCoef))
		w := Sub(paramNodes[j], Mul(Div(m, AddScalar(Sqrt(v), t.opts.Eps)), stepSize))
		if t.opts.WeightDecay > 0 && DecayMask(model.HFKey(p.Scope(), p.Name())) {
			w = Mul(w, decayFactor)
		}
		mVar.SetValueGraph(m)
		vVar.SetValueGraph(v)
		p.SetValueGraph(w)
	}
	t.stepVar.SetValueGraph(AddScalar(t.stepVar.ValueGraph(g), 1))
	return []*Node{meanLoss, norm}
}
