package recipes

import "math/rand/v2"

// dataOrder decides which blocks make up each step, as a pure function of (seed, step), so that a run
// resumed from a checkpoint at step s sees exactly the blocks an uninterrupted run would have seen.
//
// The blocks are visited epoch by epoch; epoch e visits all of them in the order of a permutation drawn
// from (seed, e). Step s takes the sequences s·perStep … (s+1)·perStep−1 of that endless stream, where
// perStep = micro-batch × accumulation.
type dataOrder struct {
	numBlocks int
	perStep   int
	seed      int64
	cacheE    int   // epoch whose permutation is cached
	cache     []int // permutation of epoch cacheE
}

func newDataOrder(numBlocks, perStep int, seed int64) *dataOrder {
	return &dataOrder{numBlocks: numBlocks, perStep: perStep, seed: seed, cacheE: -1}
}

// permutation of the blocks for one epoch, from a PCG seeded with (seed, epoch).
func (o *dataOrder) permutation(epoch int) []int {
	if epoch != o.cacheE {
		rng := rand.New(rand.NewPCG(uint64(o.seed), uint64(epoch)))
		o.cache = rng.Perm(o.numBlocks)
		o.cacheE = epoch
	}
	return o.cache
}

// blocksForStep returns the block indices of step `step` (0-based), perStep of them.
func (o *dataOrder) blocksForStep(step int) []int {
	out := make([]int, o.perStep)
	for j := range out {
		global := int64(step)*int64(o.perStep) + int64(j)
		epoch := int(global / int64(o.numBlocks))
		out[j] = o.permutation(epoch)[global%int64(o.numBlocks)]
	}
	return out
}

// epochOf reports the (fractional) epoch reached after `steps` steps.
func (o *dataOrder) epochOf(steps int) float64 {
	return float64(steps) * float64(o.perStep) / float64(o.numBlocks)
}
