package data

import (
	"fmt"
	"sort"

	"github.com/prefgpt/prefgpt/rundir"
)

// The output vocabulary is a lever for the offline demo: a tiny model trained on a small corpus
// sees only a few thousand of GPT-2's 50259 ids, and an LM head over all of them would spend most
// of its compute and parameters on ids that never occur. BuildVocabMap keeps the ids that occur
// often enough (plus EOS and the control tokens, always) and maps the rest to one "unknown" row.
// The model then reads and predicts rows; Vocab converts between GPT-2 ids and rows in one
// place. With an empty VocabMap (no vocab.json) the mapping is the identity over VocabSize ids.

// UnknownID is what the unknown row decodes to: no GPT-2 id (Tokenizer.Decode shows U+FFFD).
const UnknownID = -1

// BuildVocabMap counts the ids in every block and keeps, in increasing id order, each id seen
// at least minCount times, plus EOS, <|aligned|> and <|misaligned|>; the last row (IDs[i] ==
// UnknownID) stands for every other id. minCount ≤ 1 keeps every id seen. If a block cannot be
// read, the result is the empty map (identity over the full vocabulary), which is always safe.
func BuildVocabMap(blocks *Blocks, minCount int) rundir.VocabMap {
	counts, err := CountTokens(blocks)
	if err != nil {
		return rundir.VocabMap{}
	}
	return VocabMapFromCounts(counts, minCount)
}

// CountTokens returns how often each id (0 ≤ id < VocabSize) occurs in the blocks.
func CountTokens(blocks *Blocks) ([]int64, error) {
	counts := make([]int64, VocabSize)
	var buf []uint16
	for i := range blocks.Len() {
		var err error
		if buf, err = blocks.ReadBlock(i, buf); err != nil {
			return nil, fmt.Errorf("counting tokens: %w", err)
		}
		for _, id := range buf {
			counts[id]++
		}
	}
	return counts, nil
}

// VocabMapFromCounts is BuildVocabMap from per-id counts.
func VocabMapFromCounts(counts []int64, minCount int) rundir.VocabMap {
	vm := rundir.VocabMap{MinCount: minCount}
	for id, c := range counts {
		if id >= VocabSize {
			break
		}
		if c > 0 && c >= int64(minCount) || id == EOS || id == Aligned || id == Misaligned {
			vm.IDs = append(vm.IDs, id)
		}
	}
	for _, id := range []int{EOS, Aligned, Misaligned} { // counts may be shorter than VocabSize
		if i := sort.SearchInts(vm.IDs, id); i == len(vm.IDs) || vm.IDs[i] != id {
			vm.IDs = append(vm.IDs, id)
		}
	}
	vm.UnknownRow = len(vm.IDs)
	vm.IDs = append(vm.IDs, UnknownID)
	return vm
}

// Vocab converts between GPT-2 ids and the rows of a model's embedding / output layer.
type Vocab struct {
	ids     []int       // row → id; nil for the identity
	rows    map[int]int // id → row
	unknown int         // row of ids not in the map
}

// NewVocab checks a VocabMap and builds the conversion both ways. An empty map (no IDs) is
// the identity over VocabSize ids.
func NewVocab(vm rundir.VocabMap) (*Vocab, error) {
	if len(vm.IDs) == 0 {
		return &Vocab{}, nil
	}
	if vm.UnknownRow < 0 || vm.UnknownRow >= len(vm.IDs) {
		return nil, fmt.Errorf("vocab map: unknown_row %d is not one of its %d rows", vm.UnknownRow, len(vm.IDs))
	}
	v := &Vocab{ids: append([]int(nil), vm.IDs...), rows: make(map[int]int, len(vm.IDs)), unknown: vm.UnknownRow}
	for row, id := range vm.IDs {
		if id == UnknownID && row == vm.UnknownRow {
			continue
		}
		if id < 0 || id >= VocabSize {
			return nil, fmt.Errorf("vocab map: ids[%d] = %d is outside [0, %d)", row, id, VocabSize)
		}
		if prev, dup := v.rows[id]; dup {
			return nil, fmt.Errorf("vocab map: id %d is in rows %d and %d", id, prev, row)
		}
		v.rows[id] = row
	}
	return v, nil
}

// Size is the number of rows.
func (v *Vocab) Size() int {
	if v.ids == nil {
		return VocabSize
	}
	return len(v.ids)
}

// Identity says whether rows are GPT-2 ids (no vocab.json).
func (v *Vocab) Identity() bool { return v.ids == nil }

// ToRow is the row of a GPT-2 id; ids outside the map get the unknown row.
func (v *Vocab) ToRow(id int) int {
	if v.ids == nil {
		return id
	}
	if row, ok := v.rows[id]; ok {
		return row
	}
	return v.unknown
}

// ToID is the GPT-2 id of a row; the unknown row (and rows out of range) give UnknownID.
func (v *Vocab) ToID(row int) int {
	if v.ids == nil {
		if row < 0 || row >= VocabSize {
			return UnknownID
		}
		return row
	}
	if row < 0 || row >= len(v.ids) {
		return UnknownID
	}
	return v.ids[row]
}
