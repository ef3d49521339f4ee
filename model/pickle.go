package model

// A reader for PyTorch `pytorch_model.bin` state dicts (the zip format torch.save has used since 1.6).
//
// The zip holds `<archive>/data.pkl`, a pickle of the state dict, and one raw little-endian file per
// storage, `<archive>/data/<key>`. In the pickle each tensor is
// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])` and
// each storage is a "persistent id" tuple ('storage', torch.FloatStorage, key, location, numel).
//
// A pickle is a program for a stack machine whose GLOBAL opcode can name any Python callable; here no
// Python runs at all, and FindClass below only hands out the few harmless stand-ins a state dict needs.
// Any other global is refused with an error naming it.

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// torchStorageKind is what a `torch.XxxStorage` global resolves to: the element type of the storage.
type torchStorageKind struct {
	name        string // e.g. "FloatStorage"
	elementSize int
	isFloat     bool // F32, F16 or BF16, which we can convert to float32
}

// torchStorageKinds are the storage classes a state dict may name. Integer and bool storages appear in
// buffers (e.g. the causal mask `attn.bias` of older transformers); they are accepted so such files
// load, but their tensors cannot become float weights.
var torchStorageKinds = map[string]torchStorageKind{
	"FloatStorage":    {"FloatStorage", 4, true},
	"HalfStorage":     {"HalfStorage", 2, true},
	"BFloat16Storage": {"BFloat16Storage", 2, true},
	"DoubleStorage":   {"DoubleStorage", 8, false},
	"LongStorage":     {"LongStorage", 8, false},
	"IntStorage":      {"IntStorage", 4, false},
	"ShortStorage":    {"ShortStorage", 2, false},
	"CharStorage":     {"CharStorage", 1, false},
	"ByteStorage":     {"ByteStorage", 1, false},
	"BoolStorage":     {"BoolStorage", 1, false},
}

// torchStorage is a storage referenced by the pickle; its bytes stay in the zip until a tensor that
// we need is converted.
type torchStorage struct {
	kind     torchStorageKind
	key      string
	numel    int
	zipEntry *zip.File
}

// torchTensor is a view into a storage, as `_rebuild_tensor_v2` describes it.
type torchTensor struct {
	storage *torchStorage
	offset  int   // in elements
	size    []int // shape
	stride  []int // in elements
}

// rebuildTensorV2 stands in for torch._utils._rebuild_tensor_v2: it only records the view.
type rebuildTensorV2 struct{}

func (rebuildTensorV2) Call(args ...any) (any, error) {
	// (storage, storage_offset, size, stride, requires_grad, backward_hooks) and, since torch 2.0,
	// an optional trailing metadata argument.
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want 6 or 7", len(args))
	}
	storage, ok := args[0].(*torchStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: first argument is %T, not a storage", args[0])
	}
	offset, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset is %T, not an int", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in rank", size, stride)
	}
	return &torchTensor{storage: storage, offset: offset, size: size, stride: stride}, nil
}

// rebuildParameter stands in for torch._utils._rebuild_parameter(data, requires_grad, hooks[, state]):
// a Parameter is its data as far as weights go.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	if _, ok := args[0].(*torchTensor); !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is %T, not a tensor", args[0])
	}
	return args[0], nil
}

// intTuple converts a pickled tuple of ints.
func intTuple(value any) ([]int, error) {
	tuple, ok := value.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("got %T, want a tuple of ints", value)
	}
	ints := make([]int, tuple.Len())
	for i := range ints {
		if ints[i], ok = tuple.Get(i).(int); !ok {
			return nil, fmt.Errorf("element %d is %T, want int", i, tuple.Get(i))
		}
	}
	return ints, nil
}

// findTorchGlobal is the allow-list for the pickle's GLOBAL opcodes. (collections.OrderedDict is
// resolved by gopickle itself to a plain ordered map before this is asked.)
func findTorchGlobal(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensorV2{}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	}
	if module == "torch" {
		if kind, ok := torchStorageKinds[name]; ok {
			return kind, nil
		}
	}
	return nil, fmt.Errorf("pickle global %s.%s is not allowed in a state dict (refusing to load it)", module, name)
}

// torchStateDict is a parsed pytorch_model.bin: tensor views by key, in file order.
type torchStateDict struct {
	keys    []string
	tensors map[string]*torchTensor
}

// readTorchStateDict opens a zip-format torch.save file and unpickles its state dict, without reading
// any storage bytes yet. The returned closer must be called after the tensors are converted.
func readTorchStateDict(filePath string) (stateDict *torchStateDict, closer io.Closer, err error) {
	archive, err := zip.OpenReader(filePath)
	if err != nil {
		if errors.Is(err, zip.ErrFormat) {
			return nil, nil, fmt.Errorf("pytorch checkpoint %s: not a zip archive (truncated, corrupt, or the "+
				"legacy pre-1.6 torch.save format, which is not supported: use model.safetensors): %w", filePath, err)
		}
		return nil, nil, fmt.Errorf("pytorch checkpoint %s: %w", filePath, err)
	}
	defer func() {
		if err != nil {
			archive.Close()
		}
	}()
	object, err := unpickleTorchZip(&archive.Reader, filePath)
	if err != nil {
		return nil, nil, err
	}
	stateDict, err = stateDictFromPickle(object, filePath)
	if err != nil {
		return nil, nil, err
	}
	return stateDict, archive, nil
}

// unpickleTorchZip finds <archive>/data.pkl and unpickles it with the allow-listed globals, binding
// persistent ids to the zip entries of the storages.
func unpickleTorchZip(archive *zip.Reader, filePath string) (result any, err error) {
	var dataPickle *zip.File
	entries := make(map[string]*zip.File, len(archive.File))
	for _, entry := range archive.File {
		entries[entry.Name] = entry
		if path.Base(entry.Name) == "data.pkl" && strings.Count(entry.Name, "/") <= 1 {
			dataPickle = entry
		}
	}
	if dataPickle == nil {
		return nil, fmt.Errorf("pytorch checkpoint %s: no data.pkl in the zip (not a torch.save file)", filePath)
	}
	if _, isTorchScript := entries[path.Join(path.Dir(dataPickle.Name), "constants.pkl")]; isTorchScript {
		return nil, fmt.Errorf("pytorch checkpoint %s: TorchScript archives are not supported", filePath)
	}
	archiveRoot := path.Dir(dataPickle.Name)
	reader, err := dataPickle.Open()
	if err != nil {
		return nil, fmt.Errorf("pytorch checkpoint %s: opening data.pkl: %w", filePath, err)
	}
	defer reader.Close()

	unpickler := pickle.NewUnpickler(reader)
	unpickler.FindClass = findTorchGlobal
	storages := map[string]*torchStorage{}
	unpickler.PersistentLoad = func(id any) (any, error) {
		// ('storage', storage_type, key, location, numel)
		tuple, ok := id.(*types.Tuple)
		if !ok || tuple.Len() != 5 {
			return nil, fmt.Errorf("persistent id %v is not a ('storage', type, key, location, numel) tuple", id)
		}
		if tag, _ := tuple.Get(0).(string); tag != "storage" {
			return nil, fmt.Errorf("persistent id tag %v, want 'storage'", tuple.Get(0))
		}
		kind, okKind := tuple.Get(1).(torchStorageKind)
		key, okKey := tuple.Get(2).(string)
		numel, okNumel := tuple.Get(4).(int)
		if !okKind || !okKey || !okNumel || numel < 0 {
			return nil, fmt.Errorf("persistent id %v has unexpected field types", id)
		}
		if storage, seen := storages[key]; seen {
			return storage, nil
		}
		entryName := archiveRoot + "/data/" + key
		entry, ok := entries[entryName]
		if !ok {
			return nil, fmt.Errorf("storage %q: zip entry %s missing", key, entryName)
		}
		if want := uint64(numel) * uint64(kind.elementSize); entry.UncompressedSize64 != want {
			return nil, fmt.Errorf("storage %q: zip entry has %d bytes, want %d (%d × %s)",
				key, entry.UncompressedSize64, want, numel, kind.name)
		}
		storage := &torchStorage{kind: kind, key: key, numel: numel, zipEntry: entry}
		storages[key] = storage
		return storage, nil
	}
	// gopickle trusts its input in places (slice bounds, type assertions); a corrupt pickle must give an
	// error, not crash the program.
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("pytorch checkpoint %s: corrupt data.pkl: %v", filePath, recovered)
		}
	}()
	result, err = unpickler.Load()
	if err != nil {
		return nil, fmt.Errorf("pytorch checkpoint %s: unpickling data.pkl: %w", filePath, err)
	}
	return result, nil
}

// stateDictFromPickle checks the unpickled object is a (ordered) dict of string → tensor.
func stateDictFromPickle(object any, filePath string) (*torchStateDict, error) {
	stateDict := &torchStateDict{tensors: map[string]*torchTensor{}}
	add := func(key, value any) error {
		name, ok := key.(string)
		if !ok {
			return fmt.Errorf("pytorch checkpoint %s: state dict key %v is %T, not a string", filePath, key, key)
		}
		tensor, ok := value.(*torchTensor)
		if !ok {
			return fmt.Errorf("pytorch checkpoint %s: state dict entry %q is %T, not a tensor", filePath, name, value)
		}
		stateDict.keys = append(stateDict.keys, name)
		stateDict.tensors[name] = tensor
		return nil
	}
	switch dict := object.(type) {
	case *types.OrderedDict:
		for element := dict.List.Front(); element != nil; element = element.Next() {
			entry := element.Value.(*types.OrderedDictEntry)
			if err := add(entry.Key, entry.Value); err != nil {
				return nil, err
			}
		}
	case *types.Dict:
		for _, entry := range *dict {
			if err := add(entry.Key, entry.Value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("pytorch checkpoint %s: top-level object is %T, not a state dict", filePath, object)
	}
	return stateDict, nil
}

// sameView reports whether two tensors are the same view of the same storage (tied weights: torch
// pickles a shared storage once and both keys point at it).
func (t *torchTensor) sameView(other *torchTensor) bool {
	if t.storage != other.storage || t.offset != other.offset || len(t.size) != len(other.size) {
		return false
	}
	for i := range t.size {
		if t.size[i] != other.size[i] || t.stride[i] != other.stride[i] {
			return false
		}
	}
	return true
}

// toHost reads the tensor's elements (following its strides) as float32.
func (t *torchTensor) toHost(name string) (hostTensor, error) {
	kind := t.storage.kind
	if !kind.isFloat {
		return hostTensor{}, fmt.Errorf("tensor %q is stored as %s, want a float storage", name, kind.name)
	}
	// The furthest element the view touches must lie inside the storage.
	count := 1
	last := t.offset
	for i, d := range t.size {
		if d < 0 || t.stride[i] < 0 {
			return hostTensor{}, fmt.Errorf("tensor %q: negative size %v or stride %v", name, t.size, t.stride)
		}
		if d == 0 {
			count = 0
		}
		count *= d
		if d > 0 {
			last += (d - 1) * t.stride[i]
		}
	}
	if count > 0 && (t.offset < 0 || last >= t.storage.numel) {
		return hostTensor{}, fmt.Errorf("tensor %q: view (offset %d, size %v, stride %v) exceeds its storage of %d elements",
			name, t.offset, t.size, t.stride, t.storage.numel)
	}
	reader, err := t.storage.zipEntry.Open()
	if err != nil {
		return hostTensor{}, fmt.Errorf("tensor %q: opening storage %s: %w", name, t.storage.key, err)
	}
	defer reader.Close()
	raw := make([]byte, t.storage.numel*kind.elementSize)
	if _, err := io.ReadFull(reader, raw); err != nil {
		return hostTensor{}, fmt.Errorf("tensor %q: reading storage %s: %w", name, t.storage.key, err)
	}
	dtype := map[string]string{"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16"}[kind.name]
	all := decodeFloats(raw, dtype)

	// Gather in row-major order: walk a multi-index over size, adding strides.
	data := make([]float32, count)
	index := make([]int, len(t.size))
	for flat := range count {
		position := t.offset
		for axis, i := range index {
			position += i * t.stride[axis]
		}
		data[flat] = all[position]
		for axis := len(index) - 1; axis >= 0; axis-- {
			index[axis]++
			if index[axis] < t.size[axis] {
				break
			}
			index[axis] = 0
		}
	}
	return hostTensor{Shape: append([]int{}, t.size...), Data: data}, nil
}
