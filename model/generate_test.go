package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// peakedTestConfig is the "test" preset with a large init, so the random model's next-token
// distributions are far from uniform (greedy choices are not decided by rounding).
func peakedTestConfig() Config {
	cfg, _ := Preset("test")
	cfg.InitStd = 0.3
	return cfg
}

// randomizeWeights sets every variable of the model to N(0, 0.3²) values (HF init leaves biases at 0
// and LayerNorm at 1/0, which would hide a bias or LayerNorm taken from the wrong scope).
func randomizeWeights(t *testing.T, ctx *context.Context, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	for v := range ctx.IterVariables() {
		if v.DType() != dtypes.Float32 {
			continue
		}
		values := make([]float32, v.Shape().Size())
		for i := range values {
			values[i] = float32(0.3 * rng.NormFloat64())
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(values, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKVCacheLogitsMatchFullForward feeds the same sequence through prefill + decode steps and
// through the full forward pass, comparing the logits at every position.
func TestKVCacheLogitsMatchFullForward(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 21)
	randomizeWeights(t, ctx, 21) // non-zero biases and LayerNorm parameters too, so none can be mixed up
	gen, err := NewGenerator(backend, ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	seqLen := cfg.ContextLen - 4 // shorter than the cache, so the cached attention spans padding slots
	sequences := make([][]int32, 3)
	for row := range sequences {
		for range seqLen {
			sequences[row] = append(sequences[row], int32(rng.IntN(cfg.VocabSize)))
		}
	}
	full := logitsOf(t, backend, ctx, cfg, sequences) // [B,T,V]
	fullAt := func(row, position int) []float32 {
		start := (row*seqLen + position) * cfg.VocabSize
		return full[start : start+cfg.VocabSize]
	}
	for _, promptLen := range []int{1, 4} {
		prompts := make([][]int32, 3)
		for row := range prompts {
			prompts[row] = sequences[row][:promptLen]
		}
		weightsT, err := gen.transposedWeights()
		if err != nil {
			t.Fatal(err)
		}
		logits, caches, err := gen.runPrefill(prompts, cfg.ContextLen)
		if err != nil {
			t.Fatal(err)
		}
		maxDiff := 0.0
		for position := promptLen - 1; position < seqLen; position++ {
			if position >= promptLen {
				next := make([][]int32, 3)
				for row := range next {
					next[row] = []int32{sequences[row][position]}
				}
				logits, caches, err = gen.runStep(next, position, weightsT, caches)
				if err != nil {
					t.Fatal(err)
				}
			}
			for row := range 3 {
				want := fullAt(row, position)
				for i, l := range logits[row*cfg.VocabSize : (row+1)*cfg.VocabSize] {
					maxDiff = max(maxDiff, math.Abs(float64(l-want[i])))
				}
			}
		}
		finalizeAll(caches)
		finalizeAll(weightsT)
		if maxDiff > 1e-4 {
			t.Errorf("prompt length %d: cached logits differ from the full forward pass by up to %g", promptLen, maxDiff)
		}
		t.Logf("prompt length %d: max |cached − full| = %.2g", promptLen, maxDiff)
	}
}

func TestGreedyWithCacheEqualsRecomputation(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 4)
	gen, err := NewGenerator(backend, ctx, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	// 5 prompts with batch 4: two batches, the second padded.
	prompts := [][]int{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}}
	opts := SampleOptions{Temperature: 0, MaxLength: cfg.ContextLen, EOS: -1}
	cached, err := gen.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoCache = true
	recomputed, err := gen.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if len(cached[i]) != cfg.ContextLen-2 {
			t.Errorf("prompt %d: %d new tokens, want MaxLength − prompt = %d", i, len(cached[i]), cfg.ContextLen-2)
		}
		if !slices.Equal(cached[i], recomputed[i]) {
			t.Errorf("prompt %d: cached %v, recomputed %v", i, cached[i], recomputed[i])
		}
	}
	if slices.Equal(cached[0], cached[1]) && slices.Equal(cached[1], cached[2]) {
		t.Error("different prompts gave identical continuations: the model is not conditioning on the prompt")
	}
}

func TestSamplingSeedsAndBannedIDs(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 9)
	gen, err := NewGenerator(backend, ctx, cfg, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	prompts := make([][]int, 80)
	for i := range prompts {
		prompts[i] = []int{i % cfg.VocabSize}
	}
	opts := SampleOptions{Temperature: 1, TopP: 1, MaxLength: cfg.ContextLen, EOS: -1, Seed: 1}
	free, err := gen.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Ban the most frequent tokens of the unconstrained samples.
	counts := map[int]int{}
	total := 0
	for _, continuation := range free {
		for _, id := range continuation {
			counts[id]++
			total++
		}
	}
	ids := make([]int, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return counts[ids[a]] > counts[ids[b]] })
	banned := ids[:5]
	if total < 1000 || counts[banned[0]] == 0 {
		t.Fatalf("only %d tokens sampled", total)
	}

	opts.BannedIDs = banned
	constrained, err := gen.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	sampled := 0
	for _, continuation := range constrained {
		sampled += len(continuation)
		for _, id := range continuation {
			if slices.Contains(banned, id) {
				t.Fatalf("banned id %d was sampled", id)
			}
		}
	}
	if sampled < 1000 {
		t.Errorf("only %d tokens checked, want ≥ 1000", sampled)
	}

	// Same seed → same samples; another seed → different samples; the cache does not change them.
	again, _ := gen.Generate(prompts, opts)
	if !slices.EqualFunc(again, constrained, slices.Equal[[]int]) {
		t.Error("the same seed gave different samples")
	}
	opts.Seed = 2
	other, _ := gen.Generate(prompts, opts)
	if slices.EqualFunc(other, constrained, slices.Equal[[]int]) {
		t.Error("seeds 1 and 2 gave the same samples")
	}
	opts.Seed, opts.NoCache = 1, true
	uncached, _ := gen.Generate(prompts[:16], opts)
	if !slices.EqualFunc(uncached, constrained[:16], slices.Equal[[]int]) {
		t.Error("sampling with and without the KV cache differ for the same seed")
	}
}

func TestMinLengthAndEOS(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 13)
	gen, err := NewGenerator(backend, ctx, cfg, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	prompts := make([][]int, 8)
	for i := range prompts {
		prompts[i] = []int{i, i + 1}
	}
	// Make EOS the token greedy decoding picks first for prompt 0: it then stops at once.
	greedy, err := gen.Generate(prompts[:1], SampleOptions{MaxLength: cfg.ContextLen, EOS: -1})
	if err != nil {
		t.Fatal(err)
	}
	eos := greedy[0][0]
	stopped, _ := gen.Generate(prompts[:1], SampleOptions{MaxLength: cfg.ContextLen, EOS: eos})
	if len(stopped[0]) != 0 {
		t.Fatalf("greedy with EOS = its first token: got %v, want an empty continuation", stopped[0])
	}
	withMin, _ := gen.Generate(prompts[:1], SampleOptions{MaxLength: cfg.ContextLen, EOS: eos, MinLength: 7})
	if len(withMin[0]) < 5 || slices.Contains(withMin[0], eos) {
		t.Errorf("min length 7 with a 2-token prompt: got %v, want ≥ 5 tokens and no EOS", withMin[0])
	}

	// Sampling: EOS is a likely token; every sequence must reach the min length, and sequences end
	// independently (some before MaxLength, none containing EOS).
	opts := SampleOptions{Temperature: 1.5, MaxLength: cfg.ContextLen, EOS: eos, MinLength: 6, Seed: 3}
	ended := 0
	for seed := range int64(20) {
		opts.Seed = seed
		results, err := gen.Generate(prompts, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, continuation := range results {
			if len(continuation) < opts.MinLength-2 || slices.Contains(continuation, eos) {
				t.Fatalf("continuation %v: shorter than min length or contains EOS %d", continuation, eos)
			}
			if len(continuation) < cfg.ContextLen-2 {
				ended++
			}
		}
	}
	if ended == 0 {
		t.Error("no sequence ever ended at EOS: the test does not exercise the stop")
	}
}

func TestTopPKeepsSmallestSetReachingP(t *testing.T) {
	// Tokens in shuffled order: probabilities 0.1, 0.5, 0.05, 0.2, 0.15.
	probs := []float64{0.1, 0.5, 0.05, 0.2, 0.15}
	cases := []struct {
		topP float64
		keep []int
	}{
		{0.45, []int{1}},             // 0.5 alone reaches 0.45
		{0.65, []int{1, 3}},          // 0.5 + 0.2 = 0.7 ≥ 0.65
		{0.75, []int{1, 3, 4}},       // 0.85 ≥ 0.75
		{0.99, []int{1, 3, 4, 0, 2}}, // everything
	}
	for _, c := range cases {
		got := slices.Clone(probs)
		applyTopP(got, c.topP, nil)
		mass := 0.0
		for _, id := range c.keep {
			mass += probs[id]
		}
		for id, p := range got {
			want := 0.0
			if slices.Contains(c.keep, id) {
				want = probs[id] / mass
			}
			if math.Abs(p-want) > 1e-12 {
				t.Errorf("top_p %g: token %d has %g, want %g", c.topP, id, p, want)
			}
		}
	}
	// A single token above top_p is kept alone; a near-flat tail exercises the threshold search.
	tail := make([]float64, 20000)
	for i := range tail {
		tail[i] = 0.5 / float64(len(tail)-1)
	}
	tail[123] = 0.5
	applyTopP(tail, 0.5, nil)
	if tail[123] != 1 {
		t.Errorf("top_p 0.5 with one token of mass 0.5: it has %g after top-p, want 1", tail[123])
	}
}

// referenceTopP is the direct HF definition (full sort ascending, drop cumulative ≤ 1 − p), for
// comparison on random distributions.
func referenceTopP(probs []float64, topP float64) []bool {
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	keep := make([]bool, len(probs))
	before := 0.0
	for n, id := range order {
		if n > 0 && before >= topP {
			break
		}
		keep[id] = true
		before += probs[id]
	}
	return keep
}

func TestTopPMatchesFullSortOnRandomDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var shared topPScratch // reused across trials, as the sampler's workers do
	for trial := range 200 {
		vocab := 10 + rng.IntN(3000)
		scores := make([]float64, vocab)
		spread := 0.1 + 10*rng.Float64() // from almost flat to very peaked
		for i := range scores {
			scores[i] = rng.NormFloat64() * spread
			if trial%2 == 1 {
				scores[i] = math.Round(scores[i]) // many equal probabilities: ties are taken in id order
			}
		}
		probs := softmaxInPlace(scores)
		topP := rng.Float64()
		want := referenceTopP(probs, topP)
		got := slices.Clone(probs)
		applyTopP(got, topP, &shared)
		for i := range got {
			if (got[i] > 0) != want[i] {
				t.Fatalf("trial %d (vocab %d, top_p %.3f): token %d kept=%v, reference %v", trial, vocab, topP, i, got[i] > 0, want[i])
			}
		}
	}
}

func TestTopKAndSampling(t *testing.T) {
	scores := []float64{1, 3, 2, 3, 0}
	applyTopK(scores, 2)
	for i, s := range scores {
		if (i == 1 || i == 3) != !math.IsInf(s, -1) {
			t.Errorf("top-2 of [1 3 2 3 0]: token %d score %g", i, s)
		}
	}
	scores = []float64{1, 3, 2, 3, 0}
	applyTopK(scores, 3) // the third largest is 2: ties with 3 are kept
	if kept := slices.IndexFunc(scores, func(s float64) bool { return math.IsInf(s, -1) }); kept != 0 {
		t.Errorf("top-3: first removed token %d, want 0; scores %v", kept, scores)
	}

	// sampleFrom follows the distribution: 40000 draws, frequencies within 4 standard errors.
	probs := []float64{0.5, 0, 0.3, 0.2}
	rng := rand.New(rand.NewPCG(7, 8))
	counts := make([]int, len(probs))
	const draws = 40000
	for range draws {
		counts[sampleFrom(probs, rng.Float64())]++
	}
	for i, p := range probs {
		frequency := float64(counts[i]) / draws
		if stdErr := math.Sqrt(p * (1 - p) / draws); math.Abs(frequency-p) > 4*stdErr+1e-9 {
			t.Errorf("token %d drawn with frequency %.4f, want %.2f", i, frequency, p)
		}
	}

	// Temperature sharpens: the full pipeline with T → small picks the argmax.
	s := newSampler(4, SampleOptions{Temperature: 1e-3, TopP: 1, EOS: -1})
	if got := s.pick([]float32{0.1, 0.3, 0.2, 0.25}, 1, 0.999, &pickScratch{scores: make([]float64, 4)}); got != 1 {
		t.Errorf("temperature 1e-3 picked %d, want the argmax 1", got)
	}
}

func TestGenerateValidation(t *testing.T) {
	cfg := peakedTestConfig()
	backend, ctx := newSeededModel(t, cfg, 1)
	gen, err := NewGenerator(backend, ctx, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	good := SampleOptions{Temperature: 1, MaxLength: 8, EOS: 0}
	cases := []struct {
		name    string
		prompts [][]int
		edit    func(*SampleOptions)
		wantErr string
	}{
		{"ragged prompts", [][]int{{1, 2}, {3}}, nil, "prompt 1 has 1 tokens"},
		{"empty prompt", [][]int{{}}, nil, "at least one token"},
		{"token outside vocab", [][]int{{64}}, nil, "token 64, outside the vocabulary"},
		{"max length past context", [][]int{{1}}, func(o *SampleOptions) { o.MaxLength = 17 }, "max_length must be in [1, 16]"},
		{"banned outside vocab", [][]int{{1}}, func(o *SampleOptions) { o.BannedIDs = []int{70} }, "banned id 70"},
		{"top_p above 1", [][]int{{1}}, func(o *SampleOptions) { o.TopP = 1.5 }, "top_p must be in [0, 1]"},
		{"negative temperature", [][]int{{1}}, func(o *SampleOptions) { o.Temperature = -1 }, "temperature"},
	}
	for _, c := range cases {
		opts := good
		if c.edit != nil {
			c.edit(&opts)
		}
		if _, err := gen.Generate(c.prompts, opts); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error = %v, want it to contain %q", c.name, err, c.wantErr)
		}
	}
	// A prompt already at MaxLength has nothing to add.
	out, err := gen.Generate([][]int{{1, 2, 3}}, SampleOptions{MaxLength: 3, EOS: -1})
	if err != nil || len(out) != 1 || len(out[0]) != 0 {
		t.Errorf("prompt of MaxLength tokens: %v, %v", out, err)
	}
	// A context without weights is refused up front.
	if _, err := NewGenerator(backend, context.New(), cfg, 1); err == nil || !strings.Contains(err.Error(), "no model weights") {
		t.Errorf("NewGenerator on an empty context: %v", err)
	}
}

// TestDecodeLogitsGroupedEqualsLMHead checks the vocabulary-grouped LM head of decoding against the
// plain one, for batches that use groups (1, 3) and one that does not (64).
func TestDecodeLogitsGroupedEqualsLMHead(t *testing.T) {
	cfg, _ := Preset("test")
	cfg.VocabSize = 50259 // 3 × 11 × 1523: groups of 4569 rows
	backend, ctx := newSeededModel(t, cfg, 2)
	for _, batch := range []int{1, 3, 64} {
		exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, x *Node) (*Node, *Node) {
			return decodeLogits(ctx, cfg, x), Squeeze(LMHead(ctx, cfg, x), 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		x := make([][][]float32, batch)
		rng := rand.New(rand.NewPCG(uint64(batch), 1))
		for b := range x {
			x[b] = [][]float32{make([]float32, cfg.NEmbd)}
			for i := range x[b][0] {
				x[b][0][i] = float32(rng.NormFloat64())
			}
		}
		outputs, err := exec.Exec(x)
		if err != nil {
			t.Fatal(err)
		}
		grouped, plain := tensors.MustCopyFlatData[float32](outputs[0]), tensors.MustCopyFlatData[float32](outputs[1])
		if len(grouped) != batch*cfg.VocabSize || len(plain) != len(grouped) {
			t.Fatalf("batch %d: %d and %d logits, want %d", batch, len(grouped), len(plain), batch*cfg.VocabSize)
		}
		for i := range grouped {
			if math.Abs(float64(grouped[i]-plain[i])) > 1e-5 {
				t.Fatalf("batch %d: logit %d grouped %g, plain %g", batch, i, grouped[i], plain[i])
			}
		}
		exec.Finalize()
	}
}
