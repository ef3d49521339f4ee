package data

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prefgpt/prefgpt/rundir"
)

// Blocks gives random access to the token blocks that Build wrote.
type Blocks struct {
	manifest rundir.Manifest
	path     string
	files    []*os.File
	names    []string
	starts   []int64 // first global block index of each shard (plus the total at the end)
}

// OpenBlocks opens the shards listed in a manifest.json written by Build. Every shard's size
// must match the manifest (blocks × context length × 2 bytes): a truncated or stale shard is
// an error that names the file.
func OpenBlocks(manifestPath string) (*Blocks, error) {
	var m rundir.Manifest
	if err := rundir.Require(manifestPath, "data"); err != nil {
		return nil, err
	}
	if err := rundir.ReadJSON(manifestPath, &m); err != nil {
		return nil, fmt.Errorf("opening blocks: %w", err)
	}
	if m.ContextLen <= 0 {
		return nil, fmt.Errorf("opening blocks: %s: context_len %d is not positive", manifestPath, m.ContextLen)
	}
	b := &Blocks{manifest: m, path: manifestPath, starts: []int64{0}}
	dir := filepath.Dir(manifestPath)
	var total int64
	for _, s := range m.Shards {
		path := filepath.Join(dir, s.File)
		f, err := os.Open(path)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("opening blocks of %s: %w", manifestPath, err)
		}
		b.files = append(b.files, f)
		b.names = append(b.names, path)
		st, err := f.Stat()
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("opening blocks: %w", err)
		}
		if want := s.Blocks * int64(m.ContextLen) * 2; s.Blocks < 0 || st.Size() != want {
			b.Close()
			return nil, fmt.Errorf("opening blocks: %s is %d bytes but %s lists %d blocks of %d uint16 tokens (%d bytes): truncated or from another build; rerun the data stage",
				path, st.Size(), manifestPath, s.Blocks, m.ContextLen, want)
		}
		total += s.Blocks
		b.starts = append(b.starts, total)
	}
	if total != m.Blocks {
		b.Close()
		return nil, fmt.Errorf("opening blocks: %s: shards hold %d blocks but the manifest says %d", manifestPath, total, m.Blocks)
	}
	return b, nil
}

// Len is the number of blocks.
func (b *Blocks) Len() int { return int(b.starts[len(b.starts)-1]) }

// ContextLen is the number of tokens in each block.
func (b *Blocks) ContextLen() int { return b.manifest.ContextLen }

// Manifest is the manifest the blocks were opened from.
func (b *Blocks) Manifest() rundir.Manifest { return b.manifest }

// Block reads block i (0 ≤ i < Len()). Shards are read with ReadAt, so Block is safe for
// concurrent use.
func (b *Blocks) Block(i int) ([]uint16, error) {
	return b.ReadBlock(i, nil)
}

// ReadBlock is Block reading into dst (reused when it has room).
func (b *Blocks) ReadBlock(i int, dst []uint16) ([]uint16, error) {
	if i < 0 || i >= b.Len() {
		return nil, fmt.Errorf("block %d out of range [0, %d)", i, b.Len())
	}
	// Find the shard holding block i (few shards: a linear scan is fine).
	s := 0
	for int64(i) >= b.starts[s+1] {
		s++
	}
	n := b.manifest.ContextLen
	raw := make([]byte, 2*n)
	off := (int64(i) - b.starts[s]) * int64(2*n)
	if _, err := b.files[s].ReadAt(raw, off); err != nil {
		return nil, fmt.Errorf("reading block %d from %s: %w", i, b.names[s], err)
	}
	if cap(dst) < n {
		dst = make([]uint16, n)
	}
	dst = dst[:n]
	for k := range dst {
		dst[k] = binary.LittleEndian.Uint16(raw[2*k:])
		if dst[k] >= VocabSize {
			return nil, fmt.Errorf("block %d of %s: token %d at position %d is outside the vocabulary (corrupt shard?)", i, b.names[s], dst[k], k)
		}
	}
	return dst, nil
}

// Close releases the shard files.
func (b *Blocks) Close() error {
	var first error
	for _, f := range b.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	b.files = nil
	return first
}
