package model

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Initialisation as HF GPT-2 (_init_weights): weights N(0, 0.02), the residual projections
// N(0, 0.02/√(2·n_layer)), biases 0, LayerNorm γ=1 β=0. Random values come from the context's RNG, so
// they are reproducible from Init's seed.

func shapeOf(dt dtypes.DType, dims ...int) shapes.Shape { return shapes.Make(dt, dims...) }

// variable returns the float32 variable `name` in ctx's scope, creating it (to be initialised by init)
// when it does not exist. Existing variables (loaded from a checkpoint or HF) are reused as they are.
func variable(ctx *context.Context, name string, init context.VariableInitializer, dims ...int) *context.Variable {
	return ctx.Reuse().Checked(false).WithInitializer(init).VariableWithShape(name, shapeOf(dtypes.Float32, dims...))
}

// normalInit draws N(0, std²) in float32 (RandomNormal yields zeros for bf16), converting afterwards.
func normalInit(ctx *context.Context, std float64) context.VariableInitializer {
	return func(g *Graph, shape shapes.Shape) *Node {
		values := MulScalar(ctx.RandomNormal(g, shapeOf(dtypes.Float32, shape.Dimensions...)), std)
		return ConvertDType(values, shape.DType)
	}
}

func zerosInit(g *Graph, shape shapes.Shape) *Node { return Zeros(g, shape) }
func onesInit(g *Graph, shape shapes.Shape) *Node  { return Ones(g, shape) }

// DeclareVariables creates (without values) every variable of the model in ctx, each with its
// initialiser, in a fixed order. Variables that already exist are left alone.
func DeclareVariables(backend backends.Backend, ctx *context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Building the forward graph of a [1,1] input declares exactly the variables the model uses; the graph
	// is discarded, nothing is compiled or run.
	return CatchPanic(func() {
		g := NewGraph(backend, "declare_variables")
		defer g.Finalize()
		tokens := Parameter(g, "tokens", shapeOf(dtypes.Int32, 1, 1))
		Logits(ctx, cfg, tokens)
	})
}

// Init declares the model's variables in ctx and initialises those without a value, reproducibly from
// seed (the context's RNG is reset from it, only when something needs initialising). Variables that
// already have values (loaded from a checkpoint or HF weights) are kept.
func Init(backend backends.Backend, ctx *context.Context, cfg Config, seed int64) error {
	if err := DeclareVariables(backend, ctx, cfg); err != nil {
		return fmt.Errorf("model.Init: declaring variables of %q: %w", cfg.Name, err)
	}
	needsInit := false
	for v := range ctx.IterVariables() {
		needsInit = needsInit || !v.HasValue()
	}
	if !needsInit {
		// Everything was loaded (e.g. from a checkpoint): leave the RNG state as it was, so that a resumed
		// run continues exactly.
		return nil
	}
	if err := ctx.SetRNGStateFromSeed(seed); err != nil {
		return fmt.Errorf("model.Init: seeding the RNG: %w", err)
	}
	if err := ctx.InitializeVariables(backend, nil); err != nil {
		return fmt.Errorf("model.Init: initialising variables of %q: %w", cfg.Name, err)
	}
	return nil
}

// CatchPanic runs fn and turns a panic (GoMLX graph building reports errors by panicking) into an error.
func CatchPanic(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	fn()
	return nil
}
