package model

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func TestPresets(t *testing.T) {
	gpt2, err := Preset("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if gpt2.VocabSize != 50259 || gpt2.ContextLen != 1024 || gpt2.NEmbd != 768 || gpt2.NLayer != 12 || gpt2.NHead != 12 {
		t.Errorf("gpt2 preset = %+v, want 50259/1024/768/12/12", gpt2)
	}
	if gpt2.LayerNormEps != 1e-5 || gpt2.InitStd != 0.02 || gpt2.HeadDim() != 64 || gpt2.DType != dtypes.Float32 {
		t.Errorf("gpt2 preset constants = %+v", gpt2)
	}
	for _, name := range PresetNames() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s invalid: %v", name, err)
		}
	}
	if !slices.Equal(PresetNames(), []string{"gpt2", "test", "tiny"}) {
		t.Errorf("PresetNames = %v", PresetNames())
	}
	_, err = Preset("gpt3")
	if err == nil || !strings.Contains(err.Error(), "gpt2, test, tiny") {
		t.Errorf("unknown preset error = %v, want the valid names listed", err)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	base, _ := Preset("test")
	cases := map[string]func(c *Config){
		"vocab_size":         func(c *Config) { c.VocabSize = 0 },
		"n_head":             func(c *Config) { c.NHead = 3 }, // 16 % 3 != 0
		"layer_norm_epsilon": func(c *Config) { c.LayerNormEps = 0 },
		"resid_pdrop":        func(c *Config) { c.Dropout = 1 },
		"dtype":              func(c *Config) { c.DType = dtypes.Float16 },
	}
	for field, mutate := range cases {
		c := base
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("breaking %s: Validate() = %v, want an error naming it", field, err)
		}
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	c, _ := Preset("tiny")
	c.VocabSize, c.DType, c.Dropout = 12345, dtypes.BFloat16, 0.1
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"vocab_size":12345`, fmt.Sprintf(`"n_positions":%d`, c.ContextLen), fmt.Sprintf(`"n_embd":%d`, c.NEmbd),
		`"torch_dtype":"bfloat16"`, `"layer_norm_epsilon":0.00001`, `"resid_pdrop":0.1`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != c {
		t.Errorf("round trip: %+v, want %+v", back, c)
	}
	// An HF config.json (extra fields, no torch_dtype) reads as float32.
	var hf Config
	if err := json.Unmarshal([]byte(`{"vocab_size":50257,"n_positions":1024,"n_embd":768,"n_layer":12,"n_head":12,"layer_norm_epsilon":1e-05,"initializer_range":0.02,"activation_function":"gelu_new"}`), &hf); err != nil {
		t.Fatal(err)
	}
	if hf.VocabSize != 50257 || hf.DType != dtypes.Float32 || hf.Validate() != nil {
		t.Errorf("HF config read as %+v (validate: %v)", hf, hf.Validate())
	}
	if err := json.Unmarshal([]byte(`{"torch_dtype":"float8"}`), &hf); err == nil {
		t.Error("unsupported torch_dtype accepted")
	}
}

func TestHFKeyAndScopeOf(t *testing.T) {
	if got := HFKey("/h/0/attn/c_attn", "weight"); got != "h.0.attn.c_attn.weight" {
		t.Errorf("HFKey = %q", got)
	}
	if got := HFKey("/wte", "weight"); got != "wte.weight" {
		t.Errorf("HFKey = %q", got)
	}
	scope, name := ScopeOf("transformer.h.11.mlp.c_proj.bias")
	if !slices.Equal(scope, []string{"h", "11", "mlp", "c_proj"}) || name != "bias" {
		t.Errorf("ScopeOf = %v %q", scope, name)
	}
	// Round trip through a context scope.
	ctx := Layer(context.New(), 3).In("ln_2")
	if got := HFKey(ctx.Scope(), "bias"); got != "h.3.ln_2.bias" {
		t.Errorf("HFKey(Layer(3).ln_2) = %q", got)
	}
}

func TestBackendChoice(t *testing.T) {
	_, err := NewBackend("cuda-magic")
	if err == nil || !strings.Contains(err.Error(), "go") || !strings.Contains(err.Error(), "xla") {
		t.Errorf("unknown backend: err = %v, want one listing the valid names", err)
	}
	t.Setenv("GOMLX_BACKEND", "nope")
	if _, err := NewBackend(""); err == nil || !strings.Contains(err.Error(), "GOMLX_BACKEND") {
		t.Errorf("bad $GOMLX_BACKEND: err = %v, want one naming the variable", err)
	}
	t.Setenv("GOMLX_BACKEND", "")
	if len(xlaPlugins()) > 0 {
		t.Skip("a PJRT plugin is installed here: the no-plugin cases cannot be tested")
	}
	if !slices.Contains(BackendNames(), "xla") {
		t.Skip("built without XLA")
	}
	done := make(chan error, 1)
	go func() { _, err := NewBackend("xla"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "PJRT") {
			t.Errorf("explicit xla without plugin: err = %v, want a clear PJRT error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("NewBackend(\"xla\") without a plugin hangs")
	}
	b, err := NewBackend("")
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != "go" {
		t.Errorf("auto backend without plugin = %s, want go", b.String())
	}
	b, err = NewBackend("go:dotgeneral_small")
	if err != nil || b.String() != "go" {
		t.Errorf("go with a config: %v, %v", b, err)
	}
}
