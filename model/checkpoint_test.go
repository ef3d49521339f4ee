package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
)

// setStep stands in for the trainer's state: an int64 counter outside the model scopes.
func setStep(ctx *context.Context, step int64) {
	v := ctx.InAbsPath("/optimizer").Checked(false).VariableWithValue("step", int64(0))
	if err := v.SetValue(tensors.FromScalar(step)); err != nil {
		panic(err)
	}
}

func stepOf(t *testing.T, ctx *context.Context) int64 {
	t.Helper()
	v := ctx.GetVariableByScopeAndName("/optimizer", "step")
	if v == nil {
		t.Fatal("no /optimizer/step variable")
	}
	return tensors.ToScalar[int64](v.MustValue())
}

func TestCheckpointRoundTripAndKeep(t *testing.T) {
	cfg, _ := Preset("test")
	backend, ctx := newSeededModel(t, cfg, 11)
	dir := filepath.Join(t.TempDir(), "checkpoints")

	if found, err := LoadCheckpoint(context.New(), dir); found || err != nil {
		t.Fatalf("empty dir: found=%v err=%v, want false, nil", found, err)
	}

	// Three saves with different weights; keep 2.
	var logitsAtSave [][]float32
	for step := int64(1); step <= 3; step++ {
		_, next := newSeededModel(t, cfg, 100+step)
		if _, err := copyModelWeights(t, next, ctx, cfg); err != nil {
			t.Fatal(err)
		}
		setStep(ctx, step)
		logitsAtSave = append(logitsAtSave, logitsOf(t, backend, ctx, cfg, testTokens))
		if err := SaveCheckpoint(ctx, dir, 2); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := listCheckpoints(dir)
	if len(names) != 2 {
		t.Fatalf("%d checkpoints kept, want 2: %v", len(names), names)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("dir has %d entries, want 2 checkpoints × (.json, .bin): %v", len(entries), entries)
	}
	if bitIdentical(logitsAtSave[1], logitsAtSave[2]) {
		t.Fatal("the saved models do not differ: the test proves nothing")
	}

	fresh := context.New()
	found, err := LoadCheckpoint(fresh, dir)
	if !found || err != nil {
		t.Fatalf("LoadCheckpoint: found=%v err=%v", found, err)
	}
	if got := logitsOf(t, backend, fresh, cfg, testTokens); !bitIdentical(got, logitsAtSave[2]) {
		t.Error("logits after SaveCheckpoint → LoadCheckpoint differ from the newest saved model")
	}
	if step := stepOf(t, fresh); step != 3 {
		t.Errorf("step after load = %d, want 3", step)
	}
	if fresh.Loader() != nil {
		t.Error("LoadCheckpoint left a loader attached to the context")
	}
	if ctx.InspectVariableIfLoaded(context.RootScope, "global_step") != nil {
		t.Error("SaveCheckpoint left GoMLX's /global_step variable in the context")
	}

	// Loading over a context that already holds another model replaces every value.
	_, other := newSeededModel(t, cfg, 99)
	if _, err := LoadCheckpoint(other, dir); err != nil {
		t.Fatal(err)
	}
	if got := logitsOf(t, backend, other, cfg, testTokens); !bitIdentical(got, logitsAtSave[2]) {
		t.Error("LoadCheckpoint over an existing model left some weights unchanged")
	}
}

// copyModelWeights copies every model weight of src into dst (a way to change all weights).
func copyModelWeights(t *testing.T, src, dst *context.Context, cfg Config) (Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := SaveHF(src, cfg, dir); err != nil {
		return Config{}, err
	}
	return LoadHF(dst, dir)
}

// TestCheckpointCrashLeavesPreviousLoadable simulates the states a crash mid-save can leave: a staging
// directory with partial files, and a data file renamed into place whose index never was.
func TestCheckpointCrashLeavesPreviousLoadable(t *testing.T) {
	cfg, _ := Preset("test")
	backend, ctx := newSeededModel(t, cfg, 5)
	want := logitsOf(t, backend, ctx, cfg, testTokens)
	dir := t.TempDir()
	if err := SaveCheckpoint(ctx, dir, 3); err != nil {
		t.Fatal(err)
	}
	names, _ := listCheckpoints(dir)

	staging := filepath.Join(dir, checkpointStagingDir+"crashed")
	_ = os.MkdirAll(staging, 0o755)
	_ = os.WriteFile(filepath.Join(staging, "checkpoint-n0000000-x.bin"), []byte("partial"), 0o644)
	_ = os.WriteFile(filepath.Join(staging, "checkpoint-n0000000-x.json"), []byte(`{"Varia`), 0o644)
	orphan := filepath.Join(dir, "checkpoint-n0000009-orphan.bin")
	_ = os.WriteFile(orphan, []byte("half of a save"), 0o644)

	fresh := context.New()
	if found, err := LoadCheckpoint(fresh, dir); !found || err != nil {
		t.Fatalf("after a crashed save: found=%v err=%v", found, err)
	}
	if got := logitsOf(t, backend, fresh, cfg, testTokens); !bitIdentical(got, want) {
		t.Error("after a crashed save the previous checkpoint no longer loads as saved")
	}

	// The next save cleans the debris and does not reuse the crashed number's slot.
	if err := SaveCheckpoint(ctx, dir, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Error("stale staging directory not removed")
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Error("orphan data file not removed")
	}
	after, _ := listCheckpoints(dir)
	if len(after) != 2 || after[0] != names[0] {
		t.Errorf("checkpoints after the next save: %v (before: %v)", after, names)
	}
}

func TestCheckpointCorruptFilesGiveClearErrors(t *testing.T) {
	cfg, _ := Preset("test")
	_, ctx := newSeededModel(t, cfg, 2)
	setStep(ctx, 1)
	dir := t.TempDir()
	if err := SaveCheckpoint(ctx, dir, 0); err != nil {
		t.Fatal(err)
	}
	if err := SaveCheckpoint(ctx, dir, 0); err != nil {
		t.Fatal(err)
	}
	names, _ := listCheckpoints(dir)
	newest := filepath.Join(dir, names[len(names)-1])
	jsonBytes, _ := os.ReadFile(newest + checkpoints.JsonNameSuffix)
	binBytes, _ := os.ReadFile(newest + checkpoints.BinDataSuffix)

	flipped := append([]byte{}, binBytes...)
	flipped[len(flipped)/2] ^= 0xff
	cases := []struct {
		name        string
		json, bin   []byte
		wantInError string
	}{
		{"truncated json", jsonBytes[:len(jsonBytes)/2], binBytes, ".json is corrupt"},
		{"truncated bin", jsonBytes, binBytes[:len(binBytes)-100], ".bin is corrupt or truncated"},
		{"bin cut inside the header", jsonBytes, binBytes[:10], "does not fit"},
		{"flipped byte in bin", jsonBytes, flipped, ".bin is corrupt"},
		{"bad shape in json", []byte(strings.Replace(string(jsonBytes), `"Dimensions": [`, `"Dimensions": [-3, `, 1)), binBytes,
			"invalid shape"},
		{"empty json", []byte{}, binBytes, ".json is corrupt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_ = os.WriteFile(newest+checkpoints.JsonNameSuffix, c.json, 0o644)
			_ = os.WriteFile(newest+checkpoints.BinDataSuffix, c.bin, 0o644)
			found, err := LoadCheckpoint(context.New(), dir)
			if found || err == nil || !strings.Contains(err.Error(), c.wantInError) ||
				!strings.Contains(err.Error(), "fall back to "+names[0]) {
				t.Errorf("found=%v error=%v, want one containing %q and the fallback hint", found, err, c.wantInError)
			}
		})
	}
}
