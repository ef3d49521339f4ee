package data

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// detoxifyEnv names a directory written by tools/onnx-export/export_detoxify.py.
const detoxifyEnv = "PREFGPT_DETOXIFY_ONNX"

type detoxifyGolden struct {
	Model   string   `json:"model"`
	Classes []string `json:"classes"`
	Cases   []struct {
		Text     string    `json:"text"`
		InputIDs []int     `json:"input_ids"`
		Logits   []float64 `json:"logits"`
		Toxicity float64   `json:"toxicity"`
	} `json:"cases"`
}

// TestDetoxifyONNXExport checks the Go tokenizer and ONNX scorer against Detoxify's own outputs,
// recorded when the model was exported. It needs the export, so it is skipped unless
// PREFGPT_DETOXIFY_ONNX points to it (see tools/onnx-export/README.md).
func TestDetoxifyONNXExport(t *testing.T) {
	dir := os.Getenv(detoxifyEnv)
	if dir == "" {
		t.Skipf("%s is not set: export Detoxify with tools/onnx-export/export_detoxify.py and set it to the output directory to run this check", detoxifyEnv)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden detoxifyGolden
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	if len(golden.Classes) == 0 || golden.Classes[0] != "toxicity" {
		t.Fatalf("golden.json classes %q: the scorer reads toxicity from column 0", golden.Classes)
	}

	// The tokenizer must reproduce HF's ids exactly.
	tok, err := loadRobertaTokenizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(golden.Cases))
	for i, c := range golden.Cases {
		texts[i] = c.Text
		if got := tok.encode(c.Text); !equalInts(got, c.InputIDs) {
			t.Errorf("token ids of %q:\n got %v\nwant %v", clip(c.Text, 40), got, c.InputIDs)
		}
	}

	s, err := NewONNXScorer(filepath.Join(dir, "model.onnx"), dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	logits, err := s.Logits(texts)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("scored %d texts in %v (%.2f texts/s, first call includes graph compilation)",
		len(texts), elapsed.Round(time.Millisecond), float64(len(texts))/elapsed.Seconds())
	for i, c := range golden.Cases {
		for k, want := range c.Logits {
			if math.Abs(float64(logits[i][k])-want) > 0.02 {
				t.Errorf("%q logit %d (%s) = %.4f, Detoxify %.4f", clip(c.Text, 40), k, golden.Classes[k], logits[i][k], want)
			}
		}
		got := sigmoid(float64(logits[i][0]))
		// Compare on the logit scale too: tiny probabilities (1e-4) must still agree in magnitude.
		if math.Abs(got-c.Toxicity) > 2e-3 {
			t.Errorf("%q toxicity = %.6f, Detoxify %.6f", clip(c.Text, 40), got, c.Toxicity)
		}
	}
}
