// Package model is GPT-2 (as HF GPT2LMHeadModel) written with GoMLX graph ops: configuration and presets,
// backend choice, the forward graph and its building blocks, the loss, initialisation and vocabulary
// expansion. Variables live in a *context.Context under scopes that mirror HF state-dict keys
// (see HFKey/ScopeOf), so checkpoints and HF weights map one-to-one.
package model

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Config is the single source of truth for the shape of a GPT-2 model. JSON tags follow HF config.json
// where the field exists there.
type Config struct {
	Name         string  `json:"name,omitempty"`
	VocabSize    int     `json:"vocab_size"`
	ContextLen   int     `json:"n_positions"`
	NEmbd        int     `json:"n_embd"`
	NLayer       int     `json:"n_layer"`
	NHead        int     `json:"n_head"`
	LayerNormEps float64 `json:"layer_norm_epsilon"`
	InitStd      float64 `json:"initializer_range"`
	Dropout      float64 `json:"resid_pdrop"`
	// DType is the compute dtype of the matrix multiplications (Float32 or BFloat16). Variables are always
	// stored in float32 and LayerNorm, softmax and the loss always run in float32 (like mixed precision).
	DType dtypes.DType `json:"-"`
}

// configJSON adds the compute dtype as a string ("float32", "bfloat16") under HF's "torch_dtype" name.
type configJSON struct {
	configAlias
	TorchDType string `json:"torch_dtype,omitempty"`
}

type configAlias Config

// MarshalJSON writes the config with the dtype as a string.
func (c Config) MarshalJSON() ([]byte, error) {
	dt := c.DType
	if dt == dtypes.InvalidDType {
		dt = dtypes.Float32
	}
	return json.Marshal(configJSON{configAlias: configAlias(c), TorchDType: dtypeName(dt)})
}

// UnmarshalJSON reads a config written by MarshalJSON (or an HF config.json: unknown fields are ignored).
func (c *Config) UnmarshalJSON(b []byte) error {
	var cj configJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		return err
	}
	*c = Config(cj.configAlias)
	c.DType = dtypes.Float32
	if cj.TorchDType != "" {
		dt, err := parseDType(cj.TorchDType)
		if err != nil {
			return err
		}
		c.DType = dt
	}
	return nil
}

func dtypeName(dt dtypes.DType) string {
	switch dt {
	case dtypes.Float32:
		return "float32"
	case dtypes.BFloat16:
		return "bfloat16"
	}
	return strings.ToLower(dt.String())
}

func parseDType(s string) (dtypes.DType, error) {
	switch strings.ToLower(s) {
	case "float32", "f32", "fp32":
		return dtypes.Float32, nil
	case "bfloat16", "bf16":
		return dtypes.BFloat16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("unsupported dtype %q: valid are float32, bfloat16", s)
}

// ParseDType converts "float32"/"bf16"/... into a dtype accepted in Config.DType.
func ParseDType(s string) (dtypes.DType, error) { return parseDType(s) }

// HeadDim is the size of one attention head.
func (c Config) HeadDim() int { return c.NEmbd / c.NHead }

// Validate reports the first field that makes the config unusable, by its JSON name.
func (c Config) Validate() error {
	positive := []struct {
		name  string
		value int
	}{{"vocab_size", c.VocabSize}, {"n_positions", c.ContextLen}, {"n_embd", c.NEmbd},
		{"n_layer", c.NLayer}, {"n_head", c.NHead}}
	for _, p := range positive {
		if p.value <= 0 {
			return fmt.Errorf("model config %q: %s must be > 0, got %d", c.Name, p.name, p.value)
		}
	}
	if c.NEmbd%c.NHead != 0 {
		return fmt.Errorf("model config %q: n_embd (%d) must be divisible by n_head (%d)", c.Name, c.NEmbd, c.NHead)
	}
	if c.LayerNormEps <= 0 {
		return fmt.Errorf("model config %q: layer_norm_epsilon must be > 0, got %g", c.Name, c.LayerNormEps)
	}
	if c.InitStd <= 0 {
		return fmt.Errorf("model config %q: initializer_range must be > 0, got %g", c.Name, c.InitStd)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("model config %q: resid_pdrop must be in [0, 1), got %g", c.Name, c.Dropout)
	}
	if c.DType != dtypes.Float32 && c.DType != dtypes.BFloat16 {
		return fmt.Errorf("model config %q: dtype must be float32 or bfloat16, got %s", c.Name, c.DType)
	}
	return nil
}

// presets are the named configurations. VocabSize of "tiny" is a default that the recipes override with
// the size of the data's output vocabulary.
var presets = map[string]Config{
	// GPT-2 small (124M) with the vocabulary expanded by <|aligned|> and <|misaligned|>, as in the paper.
	"gpt2": {Name: "gpt2", VocabSize: 50259, ContextLen: 1024, NEmbd: 768, NLayer: 12, NHead: 12},
	// The offline demo. A training step of 16×64 tokens with a ~12k-row output vocabulary is ~5 GFLOP,
	// most of it the LM head (3 matmuls of tokens × n_embd × vocab), plus a softmax over [tokens, vocab]:
	// ~1.6 CPU-seconds with the pure-Go backend (matmuls at ~5 GFLOP/s per core), so under a second of
	// wall time on 2 idle cores. n_embd 128 would double it, each extra pair of layers adds ~20%.
	"tiny": {Name: "tiny", VocabSize: 50259, ContextLen: 128, NEmbd: 64, NLayer: 2, NHead: 4},
	// For tests: seconds to train a few dozen steps.
	"test": {Name: "test", VocabSize: 64, ContextLen: 16, NEmbd: 16, NLayer: 2, NHead: 2},
}

// Preset returns a copy of a named configuration ("gpt2", "tiny", "test").
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown model preset %q: valid presets are %s", name, strings.Join(PresetNames(), ", "))
	}
	// Shared GPT-2 constants: LayerNorm eps 1e-5, init N(0, 0.02), no dropout by default
	// (HF's GPT2Config default is 0.1; set Config.Dropout to use it), float32 compute.
	c.LayerNormEps = 1e-5
	c.InitStd = 0.02
	c.DType = dtypes.Float32
	return c, nil
}

// PresetNames lists the preset names in sorted order.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
