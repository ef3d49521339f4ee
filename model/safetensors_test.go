package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRawSafetensors writes a file with an arbitrary header (as given) and data bytes, so tests can
// produce files our writer never would (other dtypes, bad offsets).
func writeRawSafetensors(t *testing.T, header map[string]any, data []byte) string {
	t.Helper()
	headerBytes, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var file []byte
	file = binary.LittleEndian.AppendUint64(file, uint64(len(headerBytes)))
	file = append(file, headerBytes...)
	file = append(file, data...)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	tensors := map[string]hostTensor{
		"a.weight": {Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 4, 5, -6e-8}},
		"b.bias":   {Shape: []int{3}, Data: []float32{float32(math.Inf(1)), 0, -1}},
		"scalar":   {Shape: []int{}, Data: []float32{42}},
	}
	names := []string{"b.bias", "a.weight", "scalar"}
	if err := writeSafetensors(path, names, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	got, metadata, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if metadata["format"] != "pt" {
		t.Errorf("metadata = %v, want format=pt", metadata)
	}
	if len(got) != len(tensors) {
		t.Fatalf("read %d tensors, want %d", len(got), len(tensors))
	}
	for name, want := range tensors {
		g := got[name]
		if len(g.Shape) != len(want.Shape) || numElements(g.Shape) != numElements(want.Shape) {
			t.Errorf("%s: shape %v, want %v", name, g.Shape, want.Shape)
		}
		for i := range want.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(want.Data[i]) {
				t.Errorf("%s[%d] = %v, want %v", name, i, g.Data[i], want.Data[i])
			}
		}
	}

	// The header is padded so the data starts 8-byte aligned, and no temporary file is left behind.
	raw, _ := os.ReadFile(path)
	if headerLen := binary.LittleEndian.Uint64(raw); headerLen%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", headerLen)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory has %d entries after an atomic write, want 1", len(entries))
	}
}

func TestSafetensorsHalfAndBFloat16(t *testing.T) {
	// Half: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 (max) = 0x7bff, smallest subnormal 2^-24 = 0x0001, 0.5 = 0x3800.
	halfBits := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x3800, 0x7c00}
	halfWant := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), 0.5, float32(math.Inf(1))}
	// bfloat16 keeps the top 16 bits of a float32: 3.140625 = 0x4049, -1 = 0xbf80.
	bfBits := []uint16{0x4049, 0xbf80}
	bfWant := []float32{3.140625, -1}
	var data []byte
	for _, h := range halfBits {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	for _, b := range bfBits {
		data = binary.LittleEndian.AppendUint16(data, b)
	}
	path := writeRawSafetensors(t, map[string]any{
		"half": map[string]any{"dtype": "F16", "shape": []int{2, 3}, "data_offsets": []int{0, 12}},
		"bf":   map[string]any{"dtype": "BF16", "shape": []int{2}, "data_offsets": []int{12, 16}},
	}, data)
	got, _, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range halfWant {
		if got["half"].Data[i] != want {
			t.Errorf("half[%d] = %v, want %v", i, got["half"].Data[i], want)
		}
	}
	for i, want := range bfWant {
		if got["bf"].Data[i] != want {
			t.Errorf("bf[%d] = %v, want %v", i, got["bf"].Data[i], want)
		}
	}
}

func TestSafetensorsErrors(t *testing.T) {
	eight := make([]byte, 8)
	cases := []struct {
		name    string
		header  map[string]any
		data    []byte
		wantErr string
	}{
		{"unsupported dtype", map[string]any{"x": map[string]any{"dtype": "I64", "shape": []int{1}, "data_offsets": []int{0, 8}}},
			eight, `tensor "x": dtype "I64" not supported`},
		{"offsets past the end", map[string]any{"x": map[string]any{"dtype": "F32", "shape": []int{4}, "data_offsets": []int{0, 16}}},
			eight, `tensor "x": data_offsets [0, 16] outside the 8 data bytes`},
		{"size does not match shape", map[string]any{"x": map[string]any{"dtype": "F32", "shape": []int{3}, "data_offsets": []int{0, 8}}},
			eight, `tensor "x": 8 bytes for shape [3] of F32, want 12`},
		{"negative dimension", map[string]any{"x": map[string]any{"dtype": "F32", "shape": []int{-2}, "data_offsets": []int{0, 8}}},
			eight, `tensor "x": invalid shape [-2]`},
		{"overlap", map[string]any{
			"x": map[string]any{"dtype": "F32", "shape": []int{2}, "data_offsets": []int{0, 8}},
			"y": map[string]any{"dtype": "F32", "shape": []int{1}, "data_offsets": []int{4, 8}}},
			eight, `overlap`},
		{"unknown field", map[string]any{"x": map[string]any{"dtype": "F32", "shape": []int{2}, "data_offsets": []int{0, 8}, "junk": 1}},
			eight, `tensor "x": bad header entry`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeRawSafetensors(t, c.header, c.data)
			_, _, err := readSafetensors(path)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %v, want one naming %s and containing %q", err, path, c.wantErr)
			}
		})
	}
}

func TestSafetensorsTruncatedAndCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	tensors := map[string]hostTensor{"w": {Shape: []int{16}, Data: make([]float32, 16)}}
	if err := writeSafetensors(path, []string{"w"}, tensors, nil); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	// Every truncation must give an error (never a panic or a silently short tensor).
	for _, length := range []int{0, 3, 8, 20, len(full) - 4, len(full) - 1} {
		if err := os.WriteFile(path, full[:length], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readSafetensors(path); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", length, len(full))
		}
	}
	// A header length field of garbage.
	corrupt := append([]byte{}, full...)
	binary.LittleEndian.PutUint64(corrupt, 1<<62)
	_ = os.WriteFile(path, corrupt, 0o644)
	if _, _, err := readSafetensors(path); err == nil || !strings.Contains(err.Error(), "header length") {
		t.Errorf("garbage header length: error = %v", err)
	}
	// A header that is not JSON.
	corrupt = append([]byte{}, full...)
	corrupt[8] = 'X'
	_ = os.WriteFile(path, corrupt, 0o644)
	if _, _, err := readSafetensors(path); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("non-JSON header: error = %v", err)
	}
}

func TestHalfToFloat32AllValues(t *testing.T) {
	// Check the conversion against the definition for every finite half: (-1)^s · 2^(e-15) · (1 + m/1024)
	// for normals and (-1)^s · 2^-14 · m/1024 for subnormals.
	for bits := 0; bits < 1<<16; bits++ {
		h := uint16(bits)
		sign, exponent, mantissa := float64(1), int(h>>10)&0x1f, float64(h&0x3ff)
		if h>>15 == 1 {
			sign = -1
		}
		got := float64(halfToFloat32(h))
		var want float64
		switch exponent {
		case 0x1f:
			if mantissa == 0 && !math.IsInf(got, int(sign)) {
				t.Fatalf("half %#04x: got %v, want ±Inf", h, got)
			}
			if mantissa != 0 && !math.IsNaN(got) {
				t.Fatalf("half %#04x: got %v, want NaN", h, got)
			}
			continue
		case 0:
			want = sign * math.Ldexp(mantissa/1024, -14)
		default:
			want = sign * math.Ldexp(1+mantissa/1024, exponent-15)
		}
		if got != want {
			t.Fatalf("half %#04x: got %v, want %v", h, got, want)
		}
	}
}
