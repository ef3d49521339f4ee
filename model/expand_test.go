package model

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func TestExpandVocab(t *testing.T) {
	backend := testBackend(t)
	cfg, _ := Preset("test")
	cfg.VocabSize = 200
	ctx := context.New()
	if err := Init(backend, ctx, cfg, 7); err != nil {
		t.Fatal(err)
	}
	old := valuesOf(t, ctx, "wte.weight")
	grown, err := ExpandVocab(ctx, cfg, 202, 11)
	if err != nil {
		t.Fatal(err)
	}
	if grown.VocabSize != 202 {
		t.Fatalf("VocabSize = %d, want 202", grown.VocabSize)
	}
	got := valuesOf(t, ctx, "wte.weight")
	d := cfg.NEmbd
	if len(got) != 202*d {
		t.Fatalf("wte has %d values, want %d", len(got), 202*d)
	}
	for i := range old {
		if got[i] != old[i] {
			t.Fatalf("old row value %d changed", i)
		}
	}
	// New rows: mean of the old rows + 0.01·N(0,1): the deviation from the mean is small and not zero.
	for row := 200; row < 202; row++ {
		sumSq := 0.0
		for j := range d {
			mean := 0.0
			for r := range 200 {
				mean += float64(old[r*d+j])
			}
			mean /= 200
			dev := float64(got[row*d+j]) - mean
			sumSq += dev * dev
		}
		rms := math.Sqrt(sumSq / float64(d))
		if rms < 0.004 || rms > 0.02 {
			t.Errorf("row %d deviates from the mean by rms %g, want ≈0.01", row, rms)
		}
	}
	// Seeded: the same seed gives the same rows.
	ctx2 := context.New()
	if err := Init(backend, ctx2, cfg, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := ExpandVocab(ctx2, cfg, 202, 11); err != nil {
		t.Fatal(err)
	}
	again := valuesOf(t, ctx2, "wte.weight")
	for i := range got {
		if got[i] != again[i] {
			t.Fatalf("same seed, different value at %d", i)
		}
	}
	// The tied head follows: logits have 202 columns and the model runs.
	out, err := context.ExecOnce(backend, ctx, func(ctx *context.Context, tok *Node) *Node {
		return Logits(ctx, grown, tok)
	}, [][]int32{{1, 201, 200}})
	if err != nil {
		t.Fatal(err)
	}
	if dims := out.Shape().Dimensions; dims[2] != 202 {
		t.Errorf("logits shape %v, want [1 3 202]", dims)
	}
	// Errors: shrinking, or a config that does not match the variable.
	if _, err := ExpandVocab(ctx, grown, 100, 1); err == nil {
		t.Error("shrinking accepted")
	}
	if _, err := ExpandVocab(ctx, cfg, 300, 1); err == nil {
		t.Error("config/variable mismatch accepted")
	}
	if _, err := ExpandVocab(context.New(), cfg, 300, 1); err == nil {
		t.Error("missing wte accepted")
	}
}
