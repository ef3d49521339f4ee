package recipes

import "testing"

func TestDataOrderVisitsEveryBlockOncePerEpoch(t *testing.T) {
	const n, perStep = 37, 5
	o := newDataOrder(n, perStep, 42)
	// Collect the stream across several epochs; each consecutive window of n must be a permutation.
	var stream []int
	for s := 0; len(stream) < 4*n; s++ {
		stream = append(stream, o.blocksForStep(s)...)
	}
	for e := 0; e < 4; e++ {
		seen := make(map[int]bool)
		for _, b := range stream[e*n : (e+1)*n] {
			if b < 0 || b >= n || seen[b] {
				t.Fatalf("epoch %d: block %d out of range or repeated", e, b)
			}
			seen[b] = true
		}
	}
	// Different epochs use different orders (with 37 blocks a repeat would be a broken seed).
	same := true
	for i := 0; i < n; i++ {
		if stream[i] != stream[n+i] {
			same = false
		}
	}
	if same {
		t.Error("epochs 0 and 1 have the same order")
	}
}

func TestDataOrderIsAFunctionOfSeedAndStep(t *testing.T) {
	a := newDataOrder(100, 8, 7)
	b := newDataOrder(100, 8, 7)
	// b jumps straight to step 31 (as a resumed run would), a walks there.
	for s := 0; s < 31; s++ {
		a.blocksForStep(s)
	}
	got, want := b.blocksForStep(31), a.blocksForStep(31)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step 31 differs after a jump: %v vs %v", got, want)
		}
	}
	c := newDataOrder(100, 8, 8)
	if equalInts(c.blocksForStep(0), newDataOrder(100, 8, 7).blocksForStep(0)) {
		t.Error("seeds 7 and 8 give the same first step")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
