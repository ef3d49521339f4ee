package model

// A reader and writer for the safetensors format (https://huggingface.co/docs/safetensors), written from
// the format description:
//
//	[8 bytes: little-endian uint64 N] [N bytes: JSON header] [raw tensor bytes]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets relative
// to the start of the raw bytes; an optional "__metadata__" entry holds string → string pairs. Every value
// is little-endian and row-major. We read F32, F16 and BF16 (all converted to float32) and write F32.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// hostTensor is a row-major float32 tensor in Go memory: what the checkpoint readers produce and the
// writers consume, before it becomes (or after it was) a context variable.
type hostTensor struct {
	Shape []int
	Data  []float32
}

// numElements is the product of the dimensions (1 for a scalar).
func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// safetensorsMaxHeader bounds the JSON header we agree to read: real headers are a few KB per hundred
// tensors, so anything near this is a corrupt length field, not a model.
const safetensorsMaxHeader = 100 << 20

// safetensorsEntry is one tensor's description in the JSON header.
type safetensorsEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// safetensorsElementSize gives the bytes per element of the dtypes we can convert to float32.
var safetensorsElementSize = map[string]int{"F32": 4, "F16": 2, "BF16": 2}

// readSafetensors reads every tensor of a safetensors file as float32, checking the header against the
// file: known dtype, non-negative shape, offsets inside the data and matching shape × dtype size, no two
// tensors sharing bytes. Errors name the file and the tensor.
func readSafetensors(path string) (tensors map[string]hostTensor, metadata map[string]string, err error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	fileSize := info.Size()

	// Header length: 8 bytes, then the JSON header must fit in the file.
	var lengthBytes [8]byte
	if _, err := io.ReadFull(file, lengthBytes[:]); err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: file too short for the 8-byte header length (%d bytes): %w",
			path, fileSize, err)
	}
	headerLen := binary.LittleEndian.Uint64(lengthBytes[:])
	if headerLen > safetensorsMaxHeader || int64(headerLen) > fileSize-8 {
		return nil, nil, fmt.Errorf("safetensors %s: header length %d does not fit in a %d-byte file "+
			"(truncated or not a safetensors file)", path, headerLen, fileSize)
	}
	headerBytes := make([]byte, headerLen)
	if _, err := io.ReadFull(file, headerBytes); err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: reading the %d-byte header: %w", path, headerLen, err)
	}
	dataStart := 8 + int64(headerLen)
	dataSize := fileSize - dataStart

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(headerBytes, &raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: header is not a JSON object: %w", path, err)
	}

	// Validate every entry before reading any data, so a corrupt file fails fast and says where.
	type located struct {
		name  string
		entry safetensorsEntry
	}
	var entries []located
	for name, value := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(value, &metadata); err != nil {
				return nil, nil, fmt.Errorf("safetensors %s: __metadata__ must map strings to strings: %w", path, err)
			}
			continue
		}
		var entry safetensorsEntry
		decoder := json.NewDecoder(bytes.NewReader(value))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&entry); err != nil {
			return nil, nil, fmt.Errorf("safetensors %s: tensor %q: bad header entry: %w", path, name, err)
		}
		elementSize, ok := safetensorsElementSize[entry.DType]
		if !ok {
			return nil, nil, fmt.Errorf("safetensors %s: tensor %q: dtype %q not supported (want F32, F16 or BF16)",
				path, name, entry.DType)
		}
		if len(entry.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets must be [begin, end], got %v",
				path, name, entry.DataOffsets)
		}
		count := int64(1)
		for _, d := range entry.Shape {
			// The 2^40 bound keeps count from overflowing; larger tensors are corrupt headers anyway.
			if d < 0 || (d > 0 && count > (int64(1)<<40)/int64(d)) {
				return nil, nil, fmt.Errorf("safetensors %s: tensor %q: invalid shape %v", path, name, entry.Shape)
			}
			count *= int64(d)
		}
		begin, end := entry.DataOffsets[0], entry.DataOffsets[1]
		if begin < 0 || end < begin || end > dataSize {
			return nil, nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets [%d, %d] outside the %d data bytes "+
				"(truncated file?)", path, name, begin, end, dataSize)
		}
		if want := count * int64(elementSize); end-begin != want {
			return nil, nil, fmt.Errorf("safetensors %s: tensor %q: %d bytes for shape %v of %s, want %d",
				path, name, end-begin, entry.Shape, entry.DType, want)
		}
		entries = append(entries, located{name, entry})
	}

	// No two tensors may share bytes (the format forbids it, and it would mean a corrupt header).
	sort.Slice(entries, func(i, j int) bool { return entries[i].entry.DataOffsets[0] < entries[j].entry.DataOffsets[0] })
	for i := 1; i < len(entries); i++ {
		previous, current := entries[i-1], entries[i]
		if current.entry.DataOffsets[0] < previous.entry.DataOffsets[1] {
			return nil, nil, fmt.Errorf("safetensors %s: tensors %q and %q overlap", path, previous.name, current.name)
		}
	}

	tensors = make(map[string]hostTensor, len(entries))
	for _, located := range entries {
		entry := located.entry
		begin, end := entry.DataOffsets[0], entry.DataOffsets[1]
		buffer := make([]byte, end-begin)
		if _, err := file.ReadAt(buffer, dataStart+begin); err != nil {
			return nil, nil, fmt.Errorf("safetensors %s: tensor %q: reading %d bytes: %w", path, located.name, len(buffer), err)
		}
		tensors[located.name] = hostTensor{
			Shape: append([]int{}, entry.Shape...),
			Data:  decodeFloats(buffer, entry.DType),
		}
	}
	return tensors, metadata, nil
}

// decodeFloats converts little-endian F32, F16 or BF16 bytes to float32.
func decodeFloats(buffer []byte, dtype string) []float32 {
	switch dtype {
	case "F32":
		values := make([]float32, len(buffer)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(buffer[4*i:]))
		}
		return values
	case "F16":
		values := make([]float32, len(buffer)/2)
		for i := range values {
			values[i] = halfToFloat32(binary.LittleEndian.Uint16(buffer[2*i:]))
		}
		return values
	case "BF16":
		// bfloat16 is the top half of a float32: shift it back into place.
		values := make([]float32, len(buffer)/2)
		for i := range values {
			values[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(buffer[2*i:])) << 16)
		}
		return values
	}
	panic("decodeFloats: unchecked dtype " + dtype) // callers validate dtype first
}

// halfToFloat32 widens an IEEE 754 binary16 value: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa
// bits. Every half is exactly representable as a float32.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exponent := uint32(h>>10) & 0x1f
	mantissa := uint32(h) & 0x3ff
	switch {
	case exponent == 0 && mantissa == 0: // ±0
		return math.Float32frombits(sign)
	case exponent == 0: // subnormal: value = mantissa · 2^-24
		value := float32(mantissa) * float32(1.0/(1<<24))
		if sign != 0 {
			value = -value
		}
		return value
	case exponent == 0x1f: // ±Inf or NaN: keep the mantissa bits as the NaN payload
		return math.Float32frombits(sign | 0xff<<23 | mantissa<<13)
	default: // normal: rebias the exponent from 15 to 127 and widen the mantissa from 10 to 23 bits
		return math.Float32frombits(sign | (exponent+127-15)<<23 | mantissa<<13)
	}
}

// writeSafetensors writes float32 tensors as F32 in the order of names, with the given metadata,
// atomically (temporary file + rename). The header is padded with spaces to a multiple of 8 bytes, like
// the reference implementation, so the data starts aligned.
func writeSafetensors(path string, names []string, tensors map[string]hostTensor, metadata map[string]string) error {
	header := make(map[string]any, len(names)+1)
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var offset int64
	for _, name := range names {
		tensor, ok := tensors[name]
		if !ok {
			return fmt.Errorf("safetensors %s: no tensor %q to write", path, name)
		}
		if numElements(tensor.Shape) != len(tensor.Data) {
			return fmt.Errorf("safetensors %s: tensor %q has %d values for shape %v", path, name, len(tensor.Data), tensor.Shape)
		}
		size := int64(4 * len(tensor.Data))
		shape := tensor.Shape
		if shape == nil {
			shape = []int{} // a scalar is "shape": [], never null
		}
		header[name] = safetensorsEntry{DType: "F32", Shape: shape, DataOffsets: []int64{offset, offset + size}}
		offset += size
	}
	headerBytes, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors %s: encoding header: %w", path, err)
	}
	for len(headerBytes)%8 != 0 {
		headerBytes = append(headerBytes, ' ')
	}
	return writeFileAtomic(path, func(w io.Writer) error {
		var lengthBytes [8]byte
		binary.LittleEndian.PutUint64(lengthBytes[:], uint64(len(headerBytes)))
		if _, err := w.Write(lengthBytes[:]); err != nil {
			return err
		}
		if _, err := w.Write(headerBytes); err != nil {
			return err
		}
		buffer := make([]byte, 0, 1<<16)
		for _, name := range names {
			for _, value := range tensors[name].Data {
				buffer = binary.LittleEndian.AppendUint32(buffer, math.Float32bits(value))
				if len(buffer) == cap(buffer) {
					if _, err := w.Write(buffer); err != nil {
						return err
					}
					buffer = buffer[:0]
				}
			}
		}
		_, err := w.Write(buffer)
		return err
	})
}
