package model

import (
	"archive/zip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// torchFixture is one state-dict entry for writeTorchZip: the tensor's view into a storage.
type torchFixture struct {
	key        string
	storageKey string // entries with the same storageKey share a storage (tied weights)
	storage    string // "FloatStorage", "HalfStorage", "LongStorage", ...
	offset     int
	size       []int
	stride     []int
}

// pickleWriter emits pickle opcodes (protocol 2, the one torch.save uses by default) in the sequence
// torch's pickler produces for a state dict; the opcode bytes are those of Python's pickletools table.
type pickleWriter struct{ buffer []byte }

func (p *pickleWriter) op(code byte) { p.buffer = append(p.buffer, code) }
func (p *pickleWriter) global(module, name string) {
	p.buffer = append(p.buffer, "c"+module+"\n"+name+"\n"...)
}
func (p *pickleWriter) str(s string) {
	p.op('X') // BINUNICODE: uint32 length + UTF-8
	p.buffer = binary.LittleEndian.AppendUint32(p.buffer, uint32(len(s)))
	p.buffer = append(p.buffer, s...)
}
func (p *pickleWriter) int(i int) {
	p.op('J') // BININT: int32
	p.buffer = binary.LittleEndian.AppendUint32(p.buffer, uint32(int32(i)))
}
func (p *pickleWriter) intTuple(values []int) {
	p.op('(') // MARK
	for _, v := range values {
		p.int(v)
	}
	p.op('t') // TUPLE
}

// writeTorchZip writes a zip-format torch.save of a state dict with the given float values per storage
// key, optionally adding a global the reader must refuse.
func writeTorchZip(t *testing.T, entries []torchFixture, storages map[string][]byte, extraGlobal string) string {
	t.Helper()
	p := &pickleWriter{}
	p.op(0x80) // PROTO 2
	p.op(2)
	p.global("collections", "OrderedDict")
	p.op(')') // EMPTY_TUPLE
	p.op('R') // REDUCE → OrderedDict()
	p.op('(') // MARK for SETITEMS
	for _, e := range entries {
		p.str(e.key)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op('(') // MARK for the argument tuple
		// persistent id ('storage', torch.<Kind>, key, 'cpu', numel)
		p.op('(')
		p.str("storage")
		p.global("torch", e.storage)
		p.str(e.storageKey)
		p.str("cpu")
		elementSize := torchStorageKinds[e.storage].elementSize
		p.int(len(storages[e.storageKey]) / elementSize)
		p.op('t')
		p.op('Q') // BINPERSID
		p.int(e.offset)
		p.intTuple(e.size)
		p.intTuple(e.stride)
		p.op(0x89) // NEWFALSE: requires_grad
		p.global("collections", "OrderedDict")
		p.op(')')
		p.op('R') // backward hooks: OrderedDict()
		p.op('t')
		p.op('R') // REDUCE → tensor
	}
	p.op('u') // SETITEMS
	if extraGlobal != "" {
		module, name, _ := strings.Cut(extraGlobal, ":")
		p.op('0') // POP the dict, then push something that needs the global
		p.global(module, name)
	}
	p.op('.') // STOP

	path := filepath.Join(t.TempDir(), "pytorch_model.bin")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	archive := zip.NewWriter(file)
	add := func(name string, data []byte) {
		w, err := archive.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("archive/data.pkl", p.buffer)
	for key, data := range storages {
		add("archive/data/"+key, data)
	}
	add("archive/version", []byte("3\n"))
	if err := archive.Close(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func float32Bytes(values ...float32) []byte {
	var b []byte
	for _, v := range values {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestTorchStateDictViewsAndTies(t *testing.T) {
	// Storage "0": 0..11. "w" is its [3,4] row-major view, "wt" a transposed [4,3] view of the same
	// storage (stride (1,4)), "tail" a [2] view at offset 10; "h" is a half storage.
	values := make([]float32, 12)
	for i := range values {
		values[i] = float32(i)
	}
	half := binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, 0x3c00), 0xc000) // 1, -2
	path := writeTorchZip(t, []torchFixture{
		{key: "w", storageKey: "0", storage: "FloatStorage", size: []int{3, 4}, stride: []int{4, 1}},
		{key: "tied", storageKey: "0", storage: "FloatStorage", size: []int{3, 4}, stride: []int{4, 1}},
		{key: "wt", storageKey: "0", storage: "FloatStorage", size: []int{4, 3}, stride: []int{1, 4}},
		{key: "tail", storageKey: "0", storage: "FloatStorage", offset: 10, size: []int{2}, stride: []int{1}},
		{key: "h", storageKey: "1", storage: "HalfStorage", size: []int{2}, stride: []int{1}},
		{key: "mask", storageKey: "2", storage: "BoolStorage", size: []int{2}, stride: []int{1}},
	}, map[string][]byte{"0": float32Bytes(values...), "1": half, "2": {1, 0}}, "")

	stateDict, closer, err := readTorchStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if got := strings.Join(stateDict.keys, ","); got != "w,tied,wt,tail,h,mask" {
		t.Errorf("keys in file order = %s", got)
	}
	check := func(key string, wantShape []int, want []float32) {
		t.Helper()
		host, err := stateDict.tensors[key].toHost(key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if len(host.Shape) != len(wantShape) || numElements(host.Shape) != numElements(wantShape) {
			t.Errorf("%s: shape %v, want %v", key, host.Shape, wantShape)
		}
		for i := range want {
			if host.Data[i] != want[i] {
				t.Errorf("%s: data %v, want %v", key, host.Data, want)
				return
			}
		}
	}
	check("w", []int{3, 4}, values)
	check("wt", []int{4, 3}, []float32{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11})
	check("tail", []int{2}, []float32{10, 11})
	check("h", []int{2}, []float32{1, -2})
	if !stateDict.tensors["w"].sameView(stateDict.tensors["tied"]) {
		t.Error("w and tied share storage and view, sameView = false")
	}
	if stateDict.tensors["w"].sameView(stateDict.tensors["wt"]) {
		t.Error("w and its transpose reported as the same view")
	}
	if _, err := stateDict.tensors["mask"].toHost("mask"); err == nil || !strings.Contains(err.Error(), "BoolStorage") {
		t.Errorf("bool tensor as weights: error = %v", err)
	}
}

func TestTorchStateDictRefusesOtherGlobals(t *testing.T) {
	for _, global := range []string{"os:system", "builtins:eval", "torch:load", "numpy.core.multiarray:_reconstruct"} {
		path := writeTorchZip(t, []torchFixture{
			{key: "w", storageKey: "0", storage: "FloatStorage", size: []int{1}, stride: []int{1}},
		}, map[string][]byte{"0": float32Bytes(1)}, global)
		_, _, err := readTorchStateDict(path)
		want := strings.Replace(global, ":", ".", 1)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("global %s: error = %v, want a refusal naming it", global, err)
		}
	}
}

func TestTorchStateDictCorrupt(t *testing.T) {
	good := writeTorchZip(t, []torchFixture{
		{key: "w", storageKey: "0", storage: "FloatStorage", size: []int{2, 2}, stride: []int{2, 1}},
	}, map[string][]byte{"0": float32Bytes(1, 2, 3, 4)}, "")
	full, _ := os.ReadFile(good)
	dir := t.TempDir()
	// Truncations anywhere give an error, not a panic.
	for _, length := range []int{0, 10, len(full) / 2, len(full) - 10} {
		path := filepath.Join(dir, "trunc"+strconv.Itoa(length)+".bin")
		_ = os.WriteFile(path, full[:length], 0o644)
		stateDict, closer, err := readTorchStateDict(path)
		if err == nil {
			_, err = stateDict.tensors["w"].toHost("w")
			closer.Close()
		}
		if err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", length, len(full))
		}
	}
	// A storage smaller than its numel says, and a view past the end of its storage.
	short := writeTorchZip(t, []torchFixture{
		{key: "w", storageKey: "0", storage: "FloatStorage", size: []int{2}, stride: []int{1}},
	}, map[string][]byte{"0": float32Bytes(1, 2)[:6]}, "")
	if _, _, err := readTorchStateDict(short); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("short storage: error = %v", err)
	}
	outside := writeTorchZip(t, []torchFixture{
		{key: "w", storageKey: "0", storage: "FloatStorage", offset: 1, size: []int{2}, stride: []int{1}},
	}, map[string][]byte{"0": float32Bytes(1, 2)}, "")
	stateDict, closer, err := readTorchStateDict(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if _, err := stateDict.tensors["w"].toHost("w"); err == nil || !strings.Contains(err.Error(), "exceeds its storage") {
		t.Errorf("view past storage: error = %v", err)
	}
	// Garbage in data.pkl.
	garbage := writeRawZip(t, map[string][]byte{"archive/data.pkl": {0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f}})
	if _, _, err := readTorchStateDict(garbage); err == nil {
		t.Error("garbage pickle: no error")
	}
	noPickle := writeRawZip(t, map[string][]byte{"archive/other": {1}})
	if _, _, err := readTorchStateDict(noPickle); err == nil || !strings.Contains(err.Error(), "no data.pkl") {
		t.Errorf("zip without data.pkl: error = %v", err)
	}
}

func writeRawZip(t *testing.T, files map[string][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.bin")
	file, _ := os.Create(path)
	archive := zip.NewWriter(file)
	for name, data := range files {
		w, _ := archive.Create(name)
		_, _ = w.Write(data)
	}
	_ = archive.Close()
	_ = file.Close()
	return path
}

// TestTorchFilesFromRealTorch reads files written by torch.save itself (the fixtures gopickle ships in
// the module cache: torch.tensor([1.2, -3.4, 5.6, -7.8]) saved with pickle protocols 2–5). Skipped when
// the module cache is not where `go env GOMODCACHE` would put it.
func TestTorchFilesFromRealTorch(t *testing.T) {
	modCache := os.Getenv("GOMODCACHE")
	if modCache == "" {
		home, _ := os.UserHomeDir()
		modCache = filepath.Join(home, "go", "pkg", "mod")
	}
	dir := filepath.Join(modCache, "github.com", "nlpodyssey", "gopickle@v0.2.0", "pytorch", "testdata")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("gopickle fixtures not found: %v", err)
	}
	want := []float64{1.2, -3.4, 5.6, -7.8}
	tolerance := map[string]float64{"float32": 1e-7, "float16": 2e-3, "bfloat16": 2e-2}
	for dtype, tol := range tolerance {
		for proto := 2; proto <= 5; proto++ {
			path := filepath.Join(dir, "tensor_"+dtype+"_proto"+strconv.Itoa(proto)+"_zip.pt")
			archive, err := zip.OpenReader(path)
			if err != nil {
				t.Fatal(err)
			}
			object, err := unpickleTorchZip(&archive.Reader, path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			tensor, ok := object.(*torchTensor)
			if !ok {
				t.Fatalf("%s: got %T, want a tensor", path, object)
			}
			host, err := tensor.toHost("x")
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for i, w := range want {
				if math.Abs(float64(host.Data[i])-w) > tol*math.Abs(w) {
					t.Errorf("%s: [%d] = %v, want %v", path, i, host.Data[i], w)
				}
			}
			archive.Close()
		}
	}
	// An int64 tensor loads as a view but cannot become float weights.
	path := filepath.Join(dir, "tensor_int64_proto2_zip.pt")
	archive, _ := zip.OpenReader(path)
	defer archive.Close()
	object, err := unpickleTorchZip(&archive.Reader, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := object.(*torchTensor).toHost("x"); err == nil || !strings.Contains(err.Error(), "LongStorage") {
		t.Errorf("int64 tensor as weights: error = %v", err)
	}
}
