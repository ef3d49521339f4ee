package data

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tiktoken "github.com/tiktoken-go/tokenizer"
	"google.golang.org/protobuf/encoding/protowire"
)

// The tests build a tiny ONNX model in Go, with the same interface as an exported Detoxify model
// (input_ids, attention_mask → logits [batch, classes]), and a tiny RoBERTa-style tokenizer, then check
// the scorer against the same maths computed by hand.

// --- a minimal protobuf writer for the ONNX messages the tiny model needs ---

type pb []byte

func (b pb) bytes(num protowire.Number, v []byte) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
func (b pb) str(num protowire.Number, s string) pb { return b.bytes(num, []byte(s)) }
func (b pb) varint(num protowire.Number, v int64) pb {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// ONNX enum values (onnx.proto3).
const (
	onnxFloat = 1 // TensorProto.FLOAT
	onnxInt64 = 7 // TensorProto.INT64
	attrInt   = 2 // AttributeProto.INT
	attrInts  = 7 // AttributeProto.INTS
)

// onnxTensor is a TensorProto with raw little-endian data.
func onnxTensor(name string, dtype int64, dims []int64, raw []byte) pb {
	var t pb
	for _, d := range dims {
		t = t.varint(1, d) // dims
	}
	t = t.varint(2, dtype).str(8, name).bytes(9, raw) // data_type, name, raw_data
	return t
}

func floatTensor(name string, dims []int64, vals []float32) pb {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return onnxTensor(name, onnxFloat, dims, raw)
}

func int64Tensor1(name string, dims []int64, vals []int64) pb {
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return onnxTensor(name, onnxInt64, dims, raw)
}

// onnxNode is a NodeProto; attrs are already-encoded AttributeProtos.
func onnxNode(op string, inputs, outputs []string, attrs ...pb) pb {
	var n pb
	for _, in := range inputs {
		n = n.str(1, in)
	}
	for _, out := range outputs {
		n = n.str(2, out)
	}
	n = n.str(3, op+"_"+outputs[0]).str(4, op)
	for _, a := range attrs {
		n = n.bytes(5, a)
	}
	return n
}

func intAttr(name string, v int64) pb { return pb{}.str(1, name).varint(3, v).varint(20, attrInt) }
func intsAttr(name string, vs ...int64) pb {
	a := pb{}.str(1, name)
	for _, v := range vs {
		a = a.varint(8, v)
	}
	return a.varint(20, attrInts)
}

// valueInfo is a ValueInfoProto of a tensor whose dimensions are named (dynamic) or fixed.
func valueInfo(name string, dtype int64, dims ...any) pb {
	var shape pb
	for _, d := range dims {
		var dim pb
		switch d := d.(type) {
		case string:
			dim = dim.str(2, d) // dim_param
		case int:
			dim = dim.varint(1, int64(d)) // dim_value
		}
		shape = shape.bytes(1, dim)
	}
	tensorType := pb{}.varint(1, dtype).bytes(2, shape)
	return pb{}.str(1, name).bytes(2, pb{}.bytes(1, tensorType))
}

// tinyModel holds the weights of the test classifier:
//
//	x_t    = E[id_t] + P[pos_t]        pos_t = cumsum(mask)_t · mask_t (1, 2, … for tokens, 0 for padding)
//	pooled = Σ_t mask_t·erf(x_t) / Σ_t mask_t
//	logits = pooled·W + b
type tinyModel struct {
	V, D, C, MaxPos int
	E, P, W, B      []float32
}

func newTinyModel(vocab int) tinyModel {
	m := tinyModel{V: vocab, D: 4, C: 3, MaxPos: 64}
	// Deterministic, varied weights.
	fill := func(n int, scale, phase float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(scale * math.Sin(1.3*float64(i)+phase))
		}
		return out
	}
	m.E = fill(m.V*m.D, 0.8, 0.1)
	m.P = fill(m.MaxPos*m.D, 0.3, 0.7)
	m.W = fill(m.D*m.C, 1.5, 0.3)
	m.B = []float32{-0.5, 0.2, 0.1}
	return m
}

// onnx serialises the model as an ONNX ModelProto (opset 17).
func (m tinyModel) onnx() []byte {
	var g pb
	for _, n := range []pb{
		onnxNode("Gather", []string{"E", "input_ids"}, []string{"emb"}),
		onnxNode("CumSum", []string{"attention_mask", "axis1"}, []string{"cs"}),
		onnxNode("Mul", []string{"cs", "attention_mask"}, []string{"pos"}),
		onnxNode("Gather", []string{"P", "pos"}, []string{"pemb"}),
		onnxNode("Add", []string{"emb", "pemb"}, []string{"x"}),
		onnxNode("Erf", []string{"x"}, []string{"h"}),
		onnxNode("Cast", []string{"attention_mask"}, []string{"maskf"}, intAttr("to", onnxFloat)),
		onnxNode("Unsqueeze", []string{"maskf", "axes2"}, []string{"mask3"}),
		onnxNode("Mul", []string{"h", "mask3"}, []string{"hm"}),
		onnxNode("ReduceMean", []string{"hm"}, []string{"num"}, intsAttr("axes", 1), intAttr("keepdims", 0)),
		onnxNode("ReduceMean", []string{"mask3"}, []string{"den"}, intsAttr("axes", 1), intAttr("keepdims", 0)),
		onnxNode("Div", []string{"num", "den"}, []string{"pooled"}),
		onnxNode("MatMul", []string{"pooled", "W"}, []string{"z"}),
		onnxNode("Add", []string{"z", "b"}, []string{"logits"}),
	} {
		g = g.bytes(1, n)
	}
	g = g.str(2, "tiny-detoxify")
	for _, init := range []pb{
		floatTensor("E", []int64{int64(m.V), int64(m.D)}, m.E),
		floatTensor("P", []int64{int64(m.MaxPos), int64(m.D)}, m.P),
		floatTensor("W", []int64{int64(m.D), int64(m.C)}, m.W),
		floatTensor("b", []int64{int64(m.C)}, m.B),
		int64Tensor1("axis1", nil, []int64{1}),
		int64Tensor1("axes2", []int64{1}, []int64{2}),
	} {
		g = g.bytes(5, init)
	}
	g = g.bytes(11, valueInfo("input_ids", onnxInt64, "batch", "sequence"))
	g = g.bytes(11, valueInfo("attention_mask", onnxInt64, "batch", "sequence"))
	g = g.bytes(12, valueInfo("logits", onnxFloat, "batch", m.C))

	opset := pb{}.str(1, "").varint(2, 17)
	return pb{}.varint(1, 8).str(2, "prefgpt-test").bytes(7, g).bytes(8, opset) // ir_version 8
}

// reference computes the logits of one unpadded id sequence in float64, straight from the formula.
func (m tinyModel) reference(ids []int) []float64 {
	pooled := make([]float64, m.D)
	for t, id := range ids {
		pos := t + 1
		for d := 0; d < m.D; d++ {
			pooled[d] += math.Erf(float64(m.E[id*m.D+d]) + float64(m.P[pos*m.D+d]))
		}
	}
	logits := make([]float64, m.C)
	for c := 0; c < m.C; c++ {
		z := float64(m.B[c])
		for d := 0; d < m.D; d++ {
			z += pooled[d] / float64(len(ids)) * float64(m.W[d*m.C+c])
		}
		logits[c] = z
	}
	return logits
}

// --- a tiny RoBERTa-style tokenizer directory ---

// writeTinyTokenizer writes vocab.json (specials, the 256 byte symbols, a few merged tokens) and
// merges.txt, and returns the vocabulary.
func writeTinyTokenizer(t testing.TB, dir string, config string) map[string]int {
	t.Helper()
	vocab := map[string]int{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
	tok := &robertaTokenizer{}
	// Reuse the loader's byte alphabet: build it on a throw-away tokenizer.
	next := rune(256)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			tok.byteRune[b] = rune(b)
		} else {
			tok.byteRune[b] = next
			next++
		}
		vocab[string(tok.byteRune[b])] = len(vocab)
	}
	// "l l" ranks before "h e", and "e l" comes last: BPE must follow the ranks, not text order.
	merges := []string{"l l", "h e", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "e l"}
	for _, m := range merges {
		vocab[strings.ReplaceAll(m, " ", "")] = len(vocab)
	}
	raw, _ := json.Marshal(vocab)
	if err := os.WriteFile(filepath.Join(dir, "vocab.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return vocab
}

func TestRobertaTokenizer(t *testing.T) {
	dir := t.TempDir()
	v := writeTinyTokenizer(t, dir, "")
	tok, err := loadRobertaTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		text string
		want []int
	}{
		{"hello world", []int{0, v["hello"], v["Ġworld"], 2}},
		// Pieces: "hello" "," " world" "!"; the space becomes Ġ and merges with "w".
		{"hello, world!", []int{0, v["hello"], v[","], v["Ġworld"], v["!"], 2}},
		// "el" is listed but ranked after "ll" and "he": "hel lo" never forms.
		{"yellow", []int{0, v["y"], v["e"], v["ll"], v["o"], v["w"], 2}},
		// Two spaces: the first stays alone (\s+(?!\S)), the second joins the word.
		{"a  b", []int{0, v["a"], v["Ġ"], v["Ġ"], v["b"], 2}},
		// Non-ASCII: one symbol per UTF-8 byte (é = C3 A9 → "Ã" "©").
		{"é", []int{0, v["Ã"], v["©"], 2}},
		{"", []int{0, 2}},
	}
	for _, c := range cases {
		got := tok.encode(c.text)
		if !equalInts(got, c.want) {
			t.Errorf("encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}

	// model_max_length truncates like HF: <s>, the first max-2 tokens, </s>.
	dir2 := t.TempDir()
	writeTinyTokenizer(t, dir2, `{"model_max_length": 5}`)
	short, err := loadRobertaTokenizer(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := short.encode("hello world hello world"), []int{0, v["hello"], v["Ġworld"], v["Ġ"], 2}; !equalInts(got, want) {
		t.Errorf("truncated encode = %v, want %v", got, want)
	}
}

func TestRobertaTokenizerBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadRobertaTokenizer(dir); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("missing files: err = %v, want one naming vocab.json", err)
	}
	writeTinyTokenizer(t, dir, "")
	if err := os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\nh e\nbad-line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRobertaTokenizer(dir); err == nil || !strings.Contains(err.Error(), "merges.txt:3") {
		t.Errorf("bad merges line: err = %v, want one naming merges.txt:3", err)
	}
}

// newTinyONNXScorer writes the tiny model and tokenizer to a temp dir and loads them.
func newTinyONNXScorer(t testing.TB) (*ONNXScorer, tinyModel, *robertaTokenizer) {
	t.Helper()
	dir := t.TempDir()
	vocab := writeTinyTokenizer(t, dir, "")
	m := newTinyModel(len(vocab))
	modelPath := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(modelPath, m.onnx(), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewONNXScorer(modelPath, dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := loadRobertaTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, m, tok
}

func TestONNXScorerMatchesReference(t *testing.T) {
	s, m, tok := newTinyONNXScorer(t)
	texts := []string{
		"hello world",
		"hello, world! hello again, world.",
		"a",
		"yellow fellow said hello to the world",
		"",
		strings.Repeat("hello world ", 12),
	}
	s.BatchSize = 4 // two batches, the second padded with filler rows
	scores, err := s.Score(texts)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := s.Logits(texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		ref := m.reference(tok.encode(text))
		for c := range ref {
			if math.Abs(float64(logits[i][c])-ref[c]) > 1e-4 {
				t.Errorf("%q: logit %d = %.6f, reference %.6f", text, c, logits[i][c], ref[c])
			}
		}
		// Toxicity is σ(logit 0), computed in Go.
		want := 1 / (1 + math.Exp(-ref[0]))
		if math.Abs(scores[i]-want) > 1e-5 {
			t.Errorf("%q: score %.6f, want σ(%.4f) = %.6f", text, scores[i], ref[0], want)
		}
	}

	// Scores do not depend on the batch a text lands in (padding is masked out).
	for _, batch := range []int{1, 3, 16} {
		s.BatchSize = batch
		again, err := s.Score(texts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range texts {
			if math.Abs(again[i]-scores[i]) > 1e-5 {
				t.Errorf("batch %d: %q scored %.6f, batch 4 gave %.6f", batch, texts[i], again[i], scores[i])
			}
		}
	}
	var _ Scorer = s
}

func TestONNXScorerRejectsOtherInputs(t *testing.T) {
	dir := t.TempDir()
	writeTinyTokenizer(t, dir, "")
	// A model whose input is called "ids" instead of "input_ids".
	g := pb{}.bytes(1, onnxNode("Identity", []string{"ids"}, []string{"out"})).
		bytes(11, valueInfo("ids", onnxInt64, "batch", "sequence")).
		bytes(12, valueInfo("out", onnxInt64, "batch", "sequence"))
	model := pb{}.varint(1, 8).bytes(7, g).bytes(8, pb{}.str(1, "").varint(2, 17))
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewONNXScorer(path, dir); err == nil || !strings.Contains(err.Error(), "input_ids") {
		t.Errorf("err = %v, want one naming the expected inputs", err)
	}
	if _, err := NewONNXScorer(filepath.Join(dir, "missing.onnx"), dir); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing model: err = %v, want one naming the file", err)
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

// TestRobertaBPEMatchesGPT2 checks the BPE against an independent implementation on real text.
// RoBERTa's byte-level BPE is GPT-2's (same merges, different ids), so a vocab.json + merges.txt
// rebuilt from GPT-2's ranks (tiktoken-go r50k_base, token id = rank, merge i = rank 256+i) must make
// the RoBERTa tokenizer reproduce the GPT-2 tokenizer's ids on the demo corpus.
func TestRobertaBPEMatchesGPT2(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds GPT-2's 50k merges")
	}
	codec, err := tiktoken.Get(tiktoken.R50kBase)
	if err != nil {
		t.Fatal(err)
	}
	var alphabet robertaTokenizer
	next := rune(256)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			alphabet.byteRune[b] = rune(b)
		} else {
			alphabet.byteRune[b] = next
			next++
		}
	}
	symbolsOf := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			b.WriteRune(alphabet.byteRune[s[i]])
		}
		return b.String()
	}
	// Each token of rank r ≥ 256 is the merge of the two tokens that BPE with the merges of lower rank
	// leaves of its bytes.
	dir := t.TempDir()
	vocab := map[string]int{}
	partial := &robertaTokenizer{vocab: vocab, ranks: map[[2]string]int{}, byteRune: alphabet.byteRune, cache: map[string][]int{}}
	var merges []string
	for id := 0; id < EOS; id++ {
		s, err := codec.Decode([]uint{uint(id)})
		if err != nil {
			t.Fatal(err)
		}
		if id >= 256 {
			parts := partial.symbolsAfterBPE(s)
			if len(parts) != 2 {
				t.Fatalf("token %d (%q): BPE with lower merges leaves %d parts, want 2", id, s, len(parts))
			}
			partial.ranks[[2]string{parts[0], parts[1]}] = len(merges)
			merges = append(merges, parts[0]+" "+parts[1])
		}
		vocab[symbolsOf(s)] = id
	}
	for i, special := range []string{"<s>", "<pad>", "</s>", "<unk>"} {
		vocab[special] = EOS + 10 + i
	}
	raw, _ := json.Marshal(vocab)
	if err := os.WriteFile(filepath.Join(dir, "vocab.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "merges.txt"), []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rob, err := loadRobertaTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	rob.maxLen = 1 << 20
	gpt2, err := NewTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenDemo()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	texts := []string{"Ünïcödé — “quotes” 🙂 naïve café 日本語", "  spaces\n\n\ttabs  ", "123,456.78 and 3.14159", "don't they'll I'm"}
	for n := 0; n < 1500; n++ {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, rec.Texts...)
	}
	for _, text := range texts {
		got := rob.encode(text)
		got = got[1 : len(got)-1] // drop <s> and </s>
		if want := gpt2.Encode(text); !equalInts(got, want) {
			t.Fatalf("%q:\nRoBERTa BPE %v\nGPT-2       %v", text, got, want)
		}
	}
	t.Logf("%d sentences tokenized identically", len(texts))
}

// BenchmarkONNXScorerTiny measures the scorer's own cost (tokenizing, batching, running a compiled graph)
// on the tiny model; the real Detoxify model's cost is dominated by RoBERTa's matmuls.
func BenchmarkONNXScorerTiny(b *testing.B) {
	s, _, _ := newTinyONNXScorer(b)
	texts := []string{"hello world", "hello, world! hello again, world.", "yellow fellow said hello", "a"}
	texts = append(texts, texts...)
	if _, err := s.Score(texts); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Score(texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
}
