package data

import (
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/onnx-gomlx/onnx"
)

// ONNXScorer runs Detoxify (a RoBERTa sequence classifier) exported to ONNX, through onnx-gomlx:
// the real scorer of the paper, for users who exported it with tools/onnx-export.
//
// Like Detoxify's predict: tokenize with RoBERTa's BPE (<s> … </s>, truncated to 512 tokens), pad a
// batch with <pad> and an attention mask of 0, run the model to logits, and take σ(logit) of column 0
// ("toxicity"). onnx-gomlx has no Sigmoid op, and Detoxify applies it outside the model anyway, so the
// sigmoid is computed here in Go.
type ONNXScorer struct {
	tok       *robertaTokenizer
	model     *onnx.Model
	exec      *context.Exec
	idsDType  dtypes.DType // dtype of the model's input_ids (int64 for a torch export)
	maskDType dtypes.DType
	output    string
	column    int // logit column of "toxicity"

	// BatchSize is how many texts run through the model at once (default 8).
	BatchSize int

	mu sync.Mutex // Exec is not meant for concurrent calls with new shapes
}

// ONNX input and output names that tools/onnx-export/export_detoxify.py gives the model.
const (
	onnxInputIDs       = "input_ids"
	onnxAttentionMask  = "attention_mask"
	onnxToxicityColumn = 0 // Detoxify's class order starts with "toxicity" in every model
)

// NewONNXScorer loads a Detoxify model exported to ONNX and the RoBERTa tokenizer files (vocab.json,
// merges.txt) saved next to it, and runs it on GoMLX's pure-Go backend, which needs nothing installed.
// See NewONNXScorerWithBackend to use another backend (e.g. XLA on a GPU).
func NewONNXScorer(modelPath, tokenizerDir string) (*ONNXScorer, error) {
	// ops_sequential avoids the pure-Go backend's occasional worker-pool deadlock.
	backend, err := simplego.New("ops_sequential")
	if err != nil {
		return nil, fmt.Errorf("ONNX scorer: creating the pure-Go backend: %w", err)
	}
	return NewONNXScorerWithBackend(backend, modelPath, tokenizerDir)
}

// NewONNXScorerWithBackend is NewONNXScorer on the given GoMLX backend.
func NewONNXScorerWithBackend(backend backends.Backend, modelPath, tokenizerDir string) (*ONNXScorer, error) {
	tok, err := loadRobertaTokenizer(tokenizerDir)
	if err != nil {
		return nil, fmt.Errorf("ONNX scorer: %w", err)
	}
	model, err := onnx.ReadFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("ONNX scorer: reading %s: %w", modelPath, err)
	}
	s := &ONNXScorer{tok: tok, model: model, column: onnxToxicityColumn, BatchSize: 8}

	// The model must take exactly input_ids and attention_mask, as [batch, sequence] integers.
	names, shapes := model.Inputs()
	if len(names) != 2 {
		return nil, fmt.Errorf("ONNX scorer: %s takes inputs %q; want exactly %q and %q (export it with tools/onnx-export)",
			modelPath, names, onnxInputIDs, onnxAttentionMask)
	}
	for i, name := range names {
		if shapes[i].Rank() != 2 || !shapes[i].DType.IsInt() {
			return nil, fmt.Errorf("ONNX scorer: %s input %q is %s; want a [batch, sequence] integer tensor", modelPath, name, shapes[i])
		}
		switch name {
		case onnxInputIDs:
			s.idsDType = shapes[i].DType
		case onnxAttentionMask:
			s.maskDType = shapes[i].DType
		default:
			return nil, fmt.Errorf("ONNX scorer: %s has input %q; want exactly %q and %q", modelPath, name, onnxInputIDs, onnxAttentionMask)
		}
	}
	outNames, _ := model.Outputs()
	if len(outNames) == 0 {
		return nil, fmt.Errorf("ONNX scorer: %s has no outputs", modelPath)
	}
	s.output = outNames[0] // "logits"

	ctx := context.New()
	if err := model.VariablesToContext(ctx); err != nil {
		return nil, fmt.Errorf("ONNX scorer: loading the weights of %s: %w", modelPath, err)
	}
	s.exec, err = context.NewExec(backend, ctx.Reuse(), func(ctx *context.Context, ids, mask *graph.Node) *graph.Node {
		return model.CallGraph(ctx, ids.Graph(), map[string]*graph.Node{onnxInputIDs: ids, onnxAttentionMask: mask}, s.output)[0]
	})
	if err != nil {
		return nil, fmt.Errorf("ONNX scorer: %w", err)
	}
	// One compiled graph per (batch, padded length) bucket: lift the default cap of 32.
	s.exec.SetMaxCache(-1)
	return s, nil
}

// Name implements Scorer.
func (s *ONNXScorer) Name() string { return "detoxify-onnx" }

// Score implements Scorer: the toxicity probability of every text.
func (s *ONNXScorer) Score(texts []string) ([]float64, error) {
	logits, err := s.Logits(texts)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(texts))
	for i, row := range logits {
		if s.column >= len(row) {
			return nil, fmt.Errorf("ONNX scorer: the model gives %d logits per text; want column %d (toxicity)", len(row), s.column)
		}
		out[i] = sigmoid(float64(row[s.column]))
	}
	return out, nil
}

// Logits returns the model's raw output row for every text (before the sigmoid).
func (s *ONNXScorer) Logits(texts []string) ([][]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([][]int, len(texts))
	for i, text := range texts {
		ids[i] = s.tok.encode(text)
	}
	// Batch texts of similar length together so little compute goes into padding.
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(ids[order[a]]) < len(ids[order[b]]) })

	batch := max(1, s.BatchSize)
	out := make([][]float32, len(texts))
	for start := 0; start < len(order); start += batch {
		members := order[start:min(start+batch, len(order))]
		rows, err := s.runBatch(ids, members, batch)
		if err != nil {
			return nil, err
		}
		for k, idx := range members {
			out[idx] = rows[k]
		}
	}
	return out, nil
}

// runBatch pads the given texts into one [batch, T] input (T rounded up to a multiple of 16 and the
// batch filled with empty rows, so few distinct shapes get compiled) and runs the model.
func (s *ONNXScorer) runBatch(ids [][]int, members []int, batch int) (rows [][]float32, err error) {
	longest := 0
	for _, idx := range members {
		longest = max(longest, len(ids[idx]))
	}
	T := (longest + 15) / 16 * 16
	flatIDs := make([]int64, batch*T)
	flatMask := make([]int64, batch*T)
	for r := 0; r < batch; r++ {
		var seq []int
		if r < len(members) {
			seq = ids[members[r]]
		} else {
			seq = []int{s.tok.bos, s.tok.eos} // filler row, discarded
		}
		for t := 0; t < T; t++ {
			if t < len(seq) {
				flatIDs[r*T+t] = int64(seq[t])
				flatMask[r*T+t] = 1
			} else {
				flatIDs[r*T+t] = int64(s.tok.pad)
			}
		}
	}
	idsT, err := int64Tensor(flatIDs, s.idsDType, batch, T)
	if err != nil {
		return nil, err
	}
	maskT, err := int64Tensor(flatMask, s.maskDType, batch, T)
	if err != nil {
		return nil, err
	}
	// onnx-gomlx reports unsupported ops and shape errors by panicking while it builds the graph.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ONNX scorer: running the model: %v", r)
		}
	}()
	outputs, err := s.exec.Exec(idsT, maskT)
	if err != nil {
		return nil, fmt.Errorf("ONNX scorer: running the model: %w", err)
	}
	logits := outputs[0]
	if logits.Rank() != 2 || logits.Shape().Dimensions[0] != batch {
		return nil, fmt.Errorf("ONNX scorer: model output %q has shape %s; want [batch=%d, classes]", s.output, logits.Shape(), batch)
	}
	values, err := float32Rows(logits)
	if err != nil {
		return nil, err
	}
	return values[:len(members)], nil
}

// int64Tensor builds a [rows, cols] tensor of the model's integer input dtype.
func int64Tensor(flat []int64, dtype dtypes.DType, rows, cols int) (*tensors.Tensor, error) {
	switch dtype {
	case dtypes.Int64:
		t := tensors.FromFlatDataAndDimensions(flat, rows, cols)
		return t, nil
	case dtypes.Int32:
		conv := make([]int32, len(flat))
		for i, v := range flat {
			conv[i] = int32(v)
		}
		return tensors.FromFlatDataAndDimensions(conv, rows, cols), nil
	default:
		return nil, fmt.Errorf("ONNX scorer: unsupported input dtype %s (want int64 or int32)", dtype)
	}
}

// float32Rows reads a [rows, cols] float tensor into Go slices.
func float32Rows(t *tensors.Tensor) ([][]float32, error) {
	rows, cols := t.Shape().Dimensions[0], t.Shape().Dimensions[1]
	out := make([][]float32, rows)
	var flat []float32
	switch t.DType() {
	case dtypes.Float32:
		flat = tensors.MustCopyFlatData[float32](t)
	case dtypes.Float64:
		for _, v := range tensors.MustCopyFlatData[float64](t) {
			flat = append(flat, float32(v))
		}
	default:
		return nil, fmt.Errorf("ONNX scorer: model output dtype %s; want float32 or float64", t.DType())
	}
	for r := range out {
		out[r] = flat[r*cols : (r+1)*cols]
	}
	return out, nil
}

// sigmoid is 1/(1+e^−x), written to stay accurate for large |x|.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}
