package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

var (
	sharedBackendOnce sync.Once
	sharedBackend     backends.Backend
	sharedBackendErr  error
)

// sharedTestBackend is one pure-Go backend for all these tests: a tensor made on one backend instance
// cannot be used on another, and models are compared across contexts.
func sharedTestBackend(t testing.TB) backends.Backend {
	t.Helper()
	sharedBackendOnce.Do(func() { sharedBackend, sharedBackendErr = NewBackend("go") })
	if sharedBackendErr != nil {
		t.Fatal(sharedBackendErr)
	}
	return sharedBackend
}

// newSeededModel returns the shared backend and a context holding a freshly initialised model.
func newSeededModel(t testing.TB, cfg Config, seed int64) (backends.Backend, *context.Context) {
	t.Helper()
	backend := sharedTestBackend(t)
	ctx := context.New()
	if err := Init(backend, ctx, cfg, seed); err != nil {
		t.Fatal(err)
	}
	return backend, ctx
}

// logitsOf runs the full forward pass on the host tokens and returns the flat float32 logits.
func logitsOf(t testing.TB, backend backends.Backend, ctx *context.Context, cfg Config, tokens [][]int32) []float32 {
	t.Helper()
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, tokens *Node) *Node {
		return Logits(ctx, cfg, tokens)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	outputs, err := exec.Exec(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](outputs[0])
}

func bitIdentical(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

var testTokens = [][]int32{{1, 5, 9, 2, 7}, {3, 3, 0, 63, 12}}

func TestSaveHFLoadHFRoundTrip(t *testing.T) {
	cfg, _ := Preset("test")
	backend, ctx := newSeededModel(t, cfg, 7)
	want := logitsOf(t, backend, ctx, cfg, testTokens)

	dir := filepath.Join(t.TempDir(), "hf")
	if err := SaveHF(ctx, cfg, dir); err != nil {
		t.Fatal(err)
	}

	// The safetensors file looks like save_pretrained's: "transformer." keys, no tied lm_head, F32.
	tensorsInFile, metadata, err := readSafetensors(filepath.Join(dir, HFSafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if metadata["format"] != "pt" {
		t.Errorf("metadata %v, want format=pt", metadata)
	}
	keys, shapes := hfExpectedShapes(cfg)
	if len(tensorsInFile) != len(keys) {
		t.Errorf("%d tensors in file, want %d", len(tensorsInFile), len(keys))
	}
	for _, key := range keys {
		tensor, ok := tensorsInFile["transformer."+key]
		if !ok || !slices.Equal(tensor.Shape, shapes[key]) {
			t.Errorf("transformer.%s: present %v shape %v, want %v", key, ok, tensor.Shape, shapes[key])
		}
	}

	// config.json carries what transformers needs to build GPT2LMHeadModel.
	var configJSON map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, HFConfigFile))
	if err := json.Unmarshal(raw, &configJSON); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]any{"model_type": "gpt2", "activation_function": "gelu_new",
		"n_embd": 16.0, "n_layer": 2.0, "n_head": 2.0, "n_positions": 16.0, "vocab_size": 64.0,
		"layer_norm_epsilon": 1e-5, "tie_word_embeddings": true} {
		if configJSON[field] != want {
			t.Errorf("config.json %s = %v, want %v", field, configJSON[field], want)
		}
	}
	if architectures, _ := configJSON["architectures"].([]any); len(architectures) != 1 || architectures[0] != "GPT2LMHeadModel" {
		t.Errorf("config.json architectures = %v", configJSON["architectures"])
	}

	// Loading into a fresh context gives the same config and bit-identical logits.
	fresh := context.New()
	loaded, err := LoadHF(fresh, dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.VocabSize != cfg.VocabSize || loaded.NEmbd != cfg.NEmbd || loaded.NLayer != cfg.NLayer ||
		loaded.NHead != cfg.NHead || loaded.ContextLen != cfg.ContextLen || loaded.LayerNormEps != cfg.LayerNormEps {
		t.Errorf("loaded config %+v, saved %+v", loaded, cfg)
	}
	if got := logitsOf(t, backend, fresh, loaded, testTokens); !bitIdentical(got, want) {
		t.Error("logits after SaveHF → LoadHF differ from the original model")
	}

	// Loading over an initialised model of another seed overwrites every weight.
	_, other := newSeededModel(t, cfg, 8)
	if bitIdentical(logitsOf(t, backend, other, cfg, testTokens), want) {
		t.Fatal("models of seeds 7 and 8 give the same logits: the comparison below proves nothing")
	}
	if _, err := LoadHF(other, filepath.Join(dir, HFSafetensorsFile)); err != nil {
		t.Fatal(err)
	}
	if got := logitsOf(t, backend, other, cfg, testTokens); !bitIdentical(got, want) {
		t.Error("LoadHF over an existing model left some weights unchanged")
	}
}

// TestLoadHFFromPytorchBin writes the model the way an older transformers + torch.save would: keys
// with "transformer.", lm_head.weight sharing wte's storage, and the bool causal-mask buffers.
func TestLoadHFFromPytorchBin(t *testing.T) {
	cfg, _ := Preset("test")
	backend, ctx := newSeededModel(t, cfg, 3)
	want := logitsOf(t, backend, ctx, cfg, testTokens)

	keys, _ := hfExpectedShapes(cfg)
	var entries []torchFixture
	var lmHead torchFixture
	storages := map[string][]byte{}
	for i, key := range keys {
		weight, err := variableAsHost(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		storageKey := string(rune('a' + i))
		storages[storageKey] = float32Bytes(weight.Data...)
		stride := make([]int, len(weight.Shape))
		step := 1
		for axis := len(stride) - 1; axis >= 0; axis-- {
			stride[axis] = step
			step *= weight.Shape[axis]
		}
		fixture := torchFixture{key: "transformer." + key, storageKey: storageKey, storage: "FloatStorage",
			size: weight.Shape, stride: stride}
		entries = append(entries, fixture)
		if key == "wte.weight" {
			lmHead = fixture
			lmHead.key = "lm_head.weight" // the same storage and view: torch pickles tied weights once
		}
	}
	entries = append(entries, lmHead)
	storages["mask"] = make([]byte, cfg.ContextLen*cfg.ContextLen)
	for layer := range cfg.NLayer {
		entries = append(entries, torchFixture{key: "transformer.h." + string(rune('0'+layer)) + ".attn.bias",
			storageKey: "mask", storage: "BoolStorage", size: []int{1, 1, cfg.ContextLen, cfg.ContextLen},
			stride: []int{cfg.ContextLen * cfg.ContextLen, cfg.ContextLen * cfg.ContextLen, cfg.ContextLen, 1}})
	}
	path := writeTorchZip(t, entries, storages, "")
	dir := filepath.Dir(path)
	configJSON, _ := json.Marshal(hfConfigFor(cfg))
	if err := os.WriteFile(filepath.Join(dir, HFConfigFile), configJSON, 0o644); err != nil {
		t.Fatal(err)
	}

	fresh := context.New()
	loaded, err := LoadHF(fresh, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := logitsOf(t, backend, fresh, loaded, testTokens); !bitIdentical(got, want) {
		t.Error("logits after loading pytorch_model.bin differ from the original model")
	}
}

func TestLoadHFErrors(t *testing.T) {
	cfg, _ := Preset("test")
	_, ctx := newSeededModel(t, cfg, 1)
	good := filepath.Join(t.TempDir(), "good")
	if err := SaveHF(ctx, cfg, good); err != nil {
		t.Fatal(err)
	}
	weights, _, _ := readSafetensors(filepath.Join(good, HFSafetensorsFile))
	configBytes, _ := os.ReadFile(filepath.Join(good, HFConfigFile))

	// variant writes a model directory with edited weights and/or config fields.
	variant := func(editWeights func(map[string]hostTensor), editConfig func(map[string]any)) string {
		dir := t.TempDir()
		w := map[string]hostTensor{}
		for k, v := range weights {
			w[k] = v
		}
		if editWeights != nil {
			editWeights(w)
		}
		names := make([]string, 0, len(w))
		for k := range w {
			names = append(names, k)
		}
		slices.Sort(names)
		if err := writeSafetensors(filepath.Join(dir, HFSafetensorsFile), names, w, nil); err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		_ = json.Unmarshal(configBytes, &c)
		if editConfig != nil {
			editConfig(c)
		}
		b, _ := json.Marshal(c)
		_ = os.WriteFile(filepath.Join(dir, HFConfigFile), b, 0o644)
		return dir
	}
	cases := []struct {
		name    string
		dir     string
		wantErr string
	}{
		{"missing weight", variant(func(w map[string]hostTensor) { delete(w, "transformer.h.1.mlp.c_fc.bias") }, nil),
			`weight "h.1.mlp.c_fc.bias" is missing`},
		{"wrong shape", variant(func(w map[string]hostTensor) {
			w["transformer.ln_f.bias"] = hostTensor{Shape: []int{8}, Data: make([]float32, 8)}
		}, nil), `weight "ln_f.bias" has shape [8], config.json implies [16]`},
		{"untied lm_head", variant(func(w map[string]hostTensor) {
			wte := w["transformer.wte.weight"]
			w["lm_head.weight"] = hostTensor{Shape: wte.Shape, Data: make([]float32, len(wte.Data))}
		}, nil), "untied LM heads are not supported"},
		{"unexpected weight", variant(func(w map[string]hostTensor) {
			w["transformer.h.2.ln_1.bias"] = hostTensor{Shape: []int{16}, Data: make([]float32, 16)}
		}, nil), `unexpected weight "h.2.ln_1.bias"`},
		{"relu", variant(nil, func(c map[string]any) { c["activation_function"] = "relu" }),
			`activation_function "relu" is not supported`},
		{"architecture", variant(nil, func(c map[string]any) { c["architectures"] = []string{"GPT2ForSequenceClassification"} }),
			`architecture "GPT2ForSequenceClassification" is not supported`},
		{"model type", variant(nil, func(c map[string]any) { c["model_type"] = "llama" }), `model_type "llama"`},
		{"bad head count", variant(nil, func(c map[string]any) { c["n_head"] = 3 }), "divisible by n_head"},
		{"no weights", func() string {
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, HFConfigFile), configBytes, 0o644)
			return dir
		}(), "has neither model.safetensors nor pytorch_model.bin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadHF(context.New(), c.dir)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, c.wantErr)
			}
		})
	}

	// Tied lm_head.weight equal to wte and keys without "transformer." are accepted.
	accepted := variant(func(w map[string]hostTensor) {
		w["lm_head.weight"] = w["transformer.wte.weight"]
		w["wpe.weight"] = w["transformer.wpe.weight"]
		delete(w, "transformer.wpe.weight")
	}, nil)
	if _, err := LoadHF(context.New(), accepted); err != nil {
		t.Errorf("tied lm_head and unprefixed keys: %v", err)
	}
}

// gpt2ConfigJSON is the config.json of the original "gpt2" Hub repository.
const gpt2ConfigJSON = `{
  "activation_function": "gelu_new",
  "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1,
  "bos_token_id": 50256,
  "embd_pdrop": 0.1,
  "eos_token_id": 50256,
  "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05,
  "model_type": "gpt2",
  "n_ctx": 1024,
  "n_embd": 768,
  "n_head": 12,
  "n_layer": 12,
  "n_positions": 1024,
  "resid_pdrop": 0.1,
  "summary_activation": null,
  "summary_first_dropout": 0.1,
  "summary_proj_to_labels": true,
  "summary_type": "cls_index",
  "summary_use_proj": true,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
  "vocab_size": 50257
}`

func TestReadHFConfigOfGPT2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gpt2", HFConfigFile)
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(gpt2ConfigJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := readHFConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	preset, _ := Preset("gpt2")
	if cfg.NEmbd != preset.NEmbd || cfg.NLayer != preset.NLayer || cfg.NHead != preset.NHead ||
		cfg.ContextLen != preset.ContextLen || cfg.LayerNormEps != preset.LayerNormEps || cfg.InitStd != preset.InitStd {
		t.Errorf("gpt2 config.json read as %+v, preset is %+v", cfg, preset)
	}
	if cfg.VocabSize != 50257 || cfg.Dropout != 0.1 || cfg.Name != "gpt2" {
		t.Errorf("vocab %d dropout %g name %q, want 50257, 0.1, gpt2", cfg.VocabSize, cfg.Dropout, cfg.Name)
	}
	// What we write reads back as the same config.
	written, _ := json.Marshal(hfConfigFor(cfg))
	_ = os.WriteFile(path, written, 0o644)
	again, err := readHFConfig(path)
	if err != nil || again != cfg {
		t.Errorf("hfConfigFor → readHFConfig gave %+v (%v), want %+v", again, err, cfg)
	}
}
