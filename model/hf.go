package model

// Hugging Face GPT-2 checkpoints in and out: config.json ⇄ Config, model.safetensors / pytorch_model.bin
// ⇄ context variables (scopes mirror the state-dict keys, see HFKey/ScopeOf), and the Hub download.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/go-huggingface/hub"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// File names of an HF model directory.
const (
	HFConfigFile      = "config.json"
	HFSafetensorsFile = "model.safetensors"
	HFPytorchFile     = "pytorch_model.bin"
)

// hfConfig is the subset of HF GPT2Config (config.json) that we read or write. Pointers tell "absent"
// from zero where HF has a default.
type hfConfig struct {
	Architectures           []string `json:"architectures,omitempty"`
	ModelType               string   `json:"model_type,omitempty"`
	ActivationFunction      string   `json:"activation_function,omitempty"`
	VocabSize               int      `json:"vocab_size"`
	NPositions              int      `json:"n_positions,omitempty"`
	NCtx                    int      `json:"n_ctx,omitempty"`
	NEmbd                   int      `json:"n_embd"`
	NLayer                  int      `json:"n_layer"`
	NHead                   int      `json:"n_head"`
	NInner                  *int     `json:"n_inner"`
	LayerNormEpsilon        *float64 `json:"layer_norm_epsilon,omitempty"`
	InitializerRange        *float64 `json:"initializer_range,omitempty"`
	ResidPdrop              *float64 `json:"resid_pdrop,omitempty"`
	EmbdPdrop               *float64 `json:"embd_pdrop,omitempty"`
	AttnPdrop               *float64 `json:"attn_pdrop,omitempty"`
	ScaleAttnWeights        *bool    `json:"scale_attn_weights,omitempty"`
	ScaleAttnByInverseLayer *bool    `json:"scale_attn_by_inverse_layer_idx,omitempty"`
	ReorderAndUpcastAttn    *bool    `json:"reorder_and_upcast_attn,omitempty"`
	TieWordEmbeddings       *bool    `json:"tie_word_embeddings,omitempty"`
	AddCrossAttention       *bool    `json:"add_cross_attention,omitempty"`
	BosTokenID              *int     `json:"bos_token_id,omitempty"`
	EosTokenID              *int     `json:"eos_token_id,omitempty"`
	UseCache                *bool    `json:"use_cache,omitempty"`
	TorchDType              string   `json:"torch_dtype,omitempty"`
	SummaryType             string   `json:"summary_type,omitempty"`
	SummaryUseProj          *bool    `json:"summary_use_proj,omitempty"`
	SummaryActivation       *string  `json:"summary_activation"`
	SummaryProjToLabels     *bool    `json:"summary_proj_to_labels,omitempty"`
	SummaryFirstDropout     *float64 `json:"summary_first_dropout,omitempty"`
}

// hfSupportedArchitectures are the HF classes whose weights are exactly our model (the LM head tied to
// wte, nothing else on top).
var hfSupportedArchitectures = []string{"GPT2LMHeadModel", "GPT2Model"}

// readHFConfig parses config.json into a Config, refusing variants our forward pass does not compute.
func readHFConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("HF config: %w", err)
	}
	var hf hfConfig
	if err := json.Unmarshal(raw, &hf); err != nil {
		return Config{}, fmt.Errorf("HF config %s: %w", path, err)
	}
	fail := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("HF config %s: %s", path, fmt.Sprintf(format, args...))
	}
	if hf.ModelType != "" && hf.ModelType != "gpt2" {
		return fail("model_type %q is not supported (only gpt2)", hf.ModelType)
	}
	for _, architecture := range hf.Architectures {
		if !slices.Contains(hfSupportedArchitectures, architecture) {
			return fail("architecture %q is not supported (want one of %s)", architecture,
				strings.Join(hfSupportedArchitectures, ", "))
		}
	}
	// HF's "gelu_new" and "gelu_pytorch_tanh" are both the tanh approximation our MLP computes.
	switch hf.ActivationFunction {
	case "", "gelu_new", "gelu_pytorch_tanh":
	default:
		return fail("activation_function %q is not supported (want gelu_new)", hf.ActivationFunction)
	}
	if hf.NInner != nil && *hf.NInner != 4*hf.NEmbd {
		return fail("n_inner %d is not supported (the MLP is 4·n_embd = %d wide)", *hf.NInner, 4*hf.NEmbd)
	}
	if hf.ScaleAttnWeights != nil && !*hf.ScaleAttnWeights {
		return fail("scale_attn_weights false is not supported")
	}
	if hf.ScaleAttnByInverseLayer != nil && *hf.ScaleAttnByInverseLayer {
		return fail("scale_attn_by_inverse_layer_idx true is not supported")
	}
	if hf.TieWordEmbeddings != nil && !*hf.TieWordEmbeddings {
		return fail("tie_word_embeddings false is not supported (the LM head is tied to wte)")
	}
	if hf.AddCrossAttention != nil && *hf.AddCrossAttention {
		return fail("add_cross_attention true is not supported")
	}
	cfg := Config{
		Name:      filepath.Base(filepath.Dir(path)),
		VocabSize: hf.VocabSize, ContextLen: hf.NPositions, NEmbd: hf.NEmbd, NLayer: hf.NLayer, NHead: hf.NHead,
		// HF GPT2Config defaults for absent fields.
		LayerNormEps: 1e-5, InitStd: 0.02, Dropout: 0.1, DType: dtypes.Float32,
	}
	if cfg.ContextLen == 0 {
		cfg.ContextLen = hf.NCtx // very old configs name it n_ctx only
	}
	if hf.LayerNormEpsilon != nil {
		cfg.LayerNormEps = *hf.LayerNormEpsilon
	}
	if hf.InitializerRange != nil {
		cfg.InitStd = *hf.InitializerRange
	}
	if hf.ResidPdrop != nil {
		cfg.Dropout = *hf.ResidPdrop
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("HF config %s: %w", path, err)
	}
	return cfg, nil
}

// hfConfigFor is the config.json HF transformers needs to load our weights as GPT2LMHeadModel.
func hfConfigFor(cfg Config) hfConfig {
	yes, no := true, false
	summaryDropout := 0.1
	hf := hfConfig{
		Architectures: []string{"GPT2LMHeadModel"}, ModelType: "gpt2", ActivationFunction: "gelu_new",
		VocabSize: cfg.VocabSize, NPositions: cfg.ContextLen, NCtx: cfg.ContextLen,
		NEmbd: cfg.NEmbd, NLayer: cfg.NLayer, NHead: cfg.NHead,
		LayerNormEpsilon: &cfg.LayerNormEps, InitializerRange: &cfg.InitStd,
		ResidPdrop: &cfg.Dropout, EmbdPdrop: &cfg.Dropout, AttnPdrop: &cfg.Dropout,
		ScaleAttnWeights: &yes, ScaleAttnByInverseLayer: &no, ReorderAndUpcastAttn: &no,
		TieWordEmbeddings: &yes, UseCache: &yes, TorchDType: "float32",
		SummaryType: "cls_index", SummaryUseProj: &yes, SummaryProjToLabels: &yes, SummaryFirstDropout: &summaryDropout,
	}
	// GPT-2's <|endoftext|> is 50256; a smaller (remapped) vocabulary has no such row, so leave it out.
	if cfg.VocabSize > 50256 {
		eos := 50256
		hf.BosTokenID, hf.EosTokenID = &eos, &eos
	}
	return hf
}

// hfExpectedShapes lists the state-dict keys (without "transformer.") of a GPT-2 with this config and
// their shapes, in HF's order.
func hfExpectedShapes(cfg Config) (keys []string, shapes map[string][]int) {
	d, v := cfg.NEmbd, cfg.VocabSize
	shapes = map[string][]int{}
	add := func(key string, shape ...int) {
		keys = append(keys, key)
		shapes[key] = shape
	}
	add("wte.weight", v, d)
	add("wpe.weight", cfg.ContextLen, d)
	for i := range cfg.NLayer {
		prefix := "h." + strconv.Itoa(i) + "."
		add(prefix+"ln_1.weight", d)
		add(prefix+"ln_1.bias", d)
		add(prefix+"attn.c_attn.weight", d, 3*d)
		add(prefix+"attn.c_attn.bias", 3*d)
		add(prefix+"attn.c_proj.weight", d, d)
		add(prefix+"attn.c_proj.bias", d)
		add(prefix+"ln_2.weight", d)
		add(prefix+"ln_2.bias", d)
		add(prefix+"mlp.c_fc.weight", d, 4*d)
		add(prefix+"mlp.c_fc.bias", 4*d)
		add(prefix+"mlp.c_proj.weight", 4*d, d)
		add(prefix+"mlp.c_proj.bias", d)
	}
	add("ln_f.weight", d)
	add("ln_f.bias", d)
	return keys, shapes
}

// hfIgnoredKey reports keys that are not weights: the causal-mask buffers older transformers saved.
func hfIgnoredKey(key string) bool {
	return strings.HasSuffix(key, ".attn.bias") || strings.HasSuffix(key, ".attn.masked_bias")
}

// LoadHF loads an HF GPT-2 checkpoint into ctx: path is a directory with config.json and
// model.safetensors (preferred) or pytorch_model.bin, or one of those weight files. Keys may carry the
// "transformer." prefix or not; causal-mask buffers are ignored, and so is lm_head.weight when it is
// tied to (or equal to) wte. Every weight must be present with the shape config.json implies.
// Existing variables are overwritten. Returns the config read from config.json.
func LoadHF(ctx *context.Context, path string) (Config, error) {
	dir, weightsPath := path, ""
	if info, err := os.Stat(path); err != nil {
		return Config{}, fmt.Errorf("LoadHF: %w", err)
	} else if !info.IsDir() {
		dir, weightsPath = filepath.Dir(path), path
	}
	cfg, err := readHFConfig(filepath.Join(dir, HFConfigFile))
	if err != nil {
		return Config{}, fmt.Errorf("LoadHF: %w", err)
	}
	if weightsPath == "" {
		for _, name := range []string{HFSafetensorsFile, HFPytorchFile} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				weightsPath = filepath.Join(dir, name)
				break
			}
		}
		if weightsPath == "" {
			return Config{}, fmt.Errorf("LoadHF: %s has neither %s nor %s", dir, HFSafetensorsFile, HFPytorchFile)
		}
	}

	var weights map[string]hostTensor
	if strings.HasSuffix(weightsPath, ".safetensors") {
		weights, err = hfWeightsFromSafetensors(weightsPath)
	} else {
		weights, err = hfWeightsFromTorch(weightsPath)
	}
	if err != nil {
		return Config{}, fmt.Errorf("LoadHF: %w", err)
	}

	keys, shapes := hfExpectedShapes(cfg)
	for _, key := range keys {
		weight, ok := weights[key]
		if !ok {
			return Config{}, fmt.Errorf("LoadHF %s: weight %q is missing", weightsPath, key)
		}
		if !slices.Equal(weight.Shape, shapes[key]) {
			return Config{}, fmt.Errorf("LoadHF %s: weight %q has shape %v, config.json implies %v",
				weightsPath, key, weight.Shape, shapes[key])
		}
	}
	for key := range weights {
		if _, expected := shapes[key]; !expected {
			return Config{}, fmt.Errorf("LoadHF %s: unexpected weight %q (not part of a GPT-2 with %d layers)",
				weightsPath, key, cfg.NLayer)
		}
	}
	for _, key := range keys {
		scope, name := ScopeOf(key)
		weight := weights[key]
		if err := setVariable(ctx, scope, name, tensors.FromFlatDataAndDimensions(weight.Data, weight.Shape...)); err != nil {
			return Config{}, fmt.Errorf("LoadHF %s: %w", weightsPath, err)
		}
		delete(weights, key) // let the host copy go as soon as the variable holds it
	}
	return cfg, nil
}

// hfNormalizeKeys drops the "transformer." prefix, the ignored buffers and a tied lm_head.weight
// (isTied decides, given the lm_head key), leaving only model weights.
func hfNormalizeKeys[T any](file string, entries map[string]T, isTied func(lmHeadKey, wteKey string) (bool, error)) (map[string]T, error) {
	out := make(map[string]T, len(entries))
	var lmHeadKey string
	for key, value := range entries {
		if key == "lm_head.weight" {
			lmHeadKey = key
			continue
		}
		short := strings.TrimPrefix(key, "transformer.")
		if hfIgnoredKey(short) {
			continue
		}
		if _, duplicate := out[short]; duplicate {
			return nil, fmt.Errorf("%s: weight %q appears both with and without the transformer. prefix", file, short)
		}
		out[short] = value
	}
	if lmHeadKey != "" {
		wteKey := "wte.weight"
		if _, ok := entries["transformer.wte.weight"]; ok {
			wteKey = "transformer.wte.weight"
		}
		tied, err := isTied(lmHeadKey, wteKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if !tied {
			return nil, fmt.Errorf("%s: lm_head.weight differs from wte.weight: untied LM heads are not supported", file)
		}
	}
	return out, nil
}

func hfWeightsFromSafetensors(path string) (map[string]hostTensor, error) {
	all, _, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	return hfNormalizeKeys(path, all, func(lmHeadKey, wteKey string) (bool, error) {
		lmHead, wte := all[lmHeadKey], all[wteKey]
		return slices.Equal(lmHead.Shape, wte.Shape) && slices.Equal(lmHead.Data, wte.Data), nil
	})
}

func hfWeightsFromTorch(path string) (map[string]hostTensor, error) {
	stateDict, closer, err := readTorchStateDict(path)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	views, err := hfNormalizeKeys(path, stateDict.tensors, func(lmHeadKey, wteKey string) (bool, error) {
		lmHead, wte := stateDict.tensors[lmHeadKey], stateDict.tensors[wteKey]
		if wte == nil {
			return false, fmt.Errorf("lm_head.weight without wte.weight")
		}
		if lmHead.sameView(wte) { // the usual case: torch pickled one shared storage
			return true, nil
		}
		a, err := lmHead.toHost(lmHeadKey)
		if err != nil {
			return false, err
		}
		b, err := wte.toHost(wteKey)
		if err != nil {
			return false, err
		}
		return slices.Equal(a.Shape, b.Shape) && slices.Equal(a.Data, b.Data), nil
	})
	if err != nil {
		return nil, err
	}
	weights := make(map[string]hostTensor, len(views))
	for key, view := range views {
		if weights[key], err = view.toHost(key); err != nil {
			return nil, fmt.Errorf("pytorch checkpoint %s: %w", path, err)
		}
	}
	return weights, nil
}

// scopeContext descends from ctx into the scope path (e.g. [h 0 attn c_attn]).
func scopeContext(ctx *context.Context, scope []string) *context.Context {
	for _, part := range scope {
		ctx = ctx.In(part)
	}
	return ctx
}

// setVariable gives variable `name` in scope the value: an existing variable must have the same shape;
// a missing one is created.
func setVariable(ctx *context.Context, scope []string, name string, value *tensors.Tensor) error {
	scoped := scopeContext(ctx, scope)
	key := HFKey(scoped.Scope(), name)
	if v := scoped.InspectVariableIfLoaded(scoped.Scope(), name); v != nil {
		if !v.Shape().Equal(value.Shape()) {
			return fmt.Errorf("variable %q already exists with shape %s, the checkpoint has %s", key, v.Shape(), value.Shape())
		}
		return v.SetValue(value)
	}
	v := scoped.Checked(false).VariableWithValue(name, value)
	if !v.Shape().Equal(value.Shape()) { // a loader (GoMLX checkpoint) supplied a different value
		return fmt.Errorf("variable %q already exists with shape %s, the checkpoint has %s", key, v.Shape(), value.Shape())
	}
	if current, err := v.Value(); err != nil || current != value {
		return v.SetValue(value)
	}
	return nil
}

// variableAsHost copies a model variable to the host as float32.
func variableAsHost(ctx *context.Context, key string) (hostTensor, error) {
	scope, name := ScopeOf(key)
	scoped := scopeContext(ctx, scope)
	v := scoped.GetVariableByScopeAndName(scoped.Scope(), name) // may pull it from an attached checkpoint
	if v == nil || !v.HasValue() {
		return hostTensor{}, fmt.Errorf("variable %q has no value (initialise or load the model first)", key)
	}
	value, err := v.Value()
	if err != nil {
		return hostTensor{}, fmt.Errorf("variable %q: %w", key, err)
	}
	if value.DType() != dtypes.Float32 {
		return hostTensor{}, fmt.Errorf("variable %q is %s, want float32", key, value.DType())
	}
	data, err := tensors.CopyFlatData[float32](value)
	if err != nil {
		return hostTensor{}, fmt.Errorf("variable %q: %w", key, err)
	}
	return hostTensor{Shape: value.Shape().Dimensions, Data: data}, nil
}

// SaveHF writes the model in ctx as an HF GPT2LMHeadModel directory: model.safetensors (F32, keys with
// the "transformer." prefix and no lm_head.weight, since it is tied, metadata {"format": "pt"}, as
// save_pretrained writes them) and config.json. Each file is written atomically.
func SaveHF(ctx *context.Context, cfg Config, dir string) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("SaveHF: %w", err)
	}
	keys, shapes := hfExpectedShapes(cfg)
	weights := make(map[string]hostTensor, len(keys))
	names := make([]string, len(keys))
	for i, key := range keys {
		weight, err := variableAsHost(ctx, key)
		if err != nil {
			return fmt.Errorf("SaveHF: %w", err)
		}
		if !slices.Equal(weight.Shape, shapes[key]) {
			return fmt.Errorf("SaveHF: variable %q has shape %v, config %q implies %v", key, weight.Shape, cfg.Name, shapes[key])
		}
		names[i] = "transformer." + key
		weights[names[i]] = weight
	}
	if err := writeSafetensors(filepath.Join(dir, HFSafetensorsFile), names, weights,
		map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("SaveHF: %w", err)
	}
	configJSON, err := json.MarshalIndent(hfConfigFor(cfg), "", "  ")
	if err != nil {
		return fmt.Errorf("SaveHF: encoding config.json: %w", err)
	}
	configJSON = append(configJSON, '\n')
	if err := writeFileAtomic(filepath.Join(dir, HFConfigFile), func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(configJSON))
		return err
	}); err != nil {
		return fmt.Errorf("SaveHF: %w", err)
	}
	return nil
}

// DownloadHF fetches config.json and the weights (model.safetensors when the repository has it, else
// pytorch_model.bin) of a Hub repository such as "tomekkorbak/hungry_saha" into cacheDir ("" = the
// HF default cache) and returns the local directory to give to LoadHF. It needs network access;
// HF_TOKEN is used for gated repositories. Tests never call it.
func DownloadHF(repoID, cacheDir string) (dir string, err error) {
	if repoID == "" {
		return "", errors.New("DownloadHF: empty repository id")
	}
	// The hub package reports some failures by panicking; turn them into errors.
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("DownloadHF %s: %v", repoID, recovered)
		}
	}()
	repo := hub.New(repoID).WithAuth(os.Getenv("HF_TOKEN"))
	if cacheDir != "" {
		repo = repo.WithCacheDir(cacheDir)
	}
	if err := repo.DownloadInfo(false); err != nil {
		return "", fmt.Errorf("DownloadHF %s: listing the repository (network access needed): %w", repoID, err)
	}
	weights := HFSafetensorsFile
	if !repo.HasFile(HFSafetensorsFile) {
		if !repo.HasFile(HFPytorchFile) {
			return "", fmt.Errorf("DownloadHF %s: repository has neither %s nor %s", repoID, HFSafetensorsFile, HFPytorchFile)
		}
		weights = HFPytorchFile
	}
	paths, err := repo.DownloadFiles(HFConfigFile, weights)
	if err != nil {
		return "", fmt.Errorf("DownloadHF %s: %w", repoID, err)
	}
	return filepath.Dir(paths[0]), nil
}
