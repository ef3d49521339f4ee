package data

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/prefgpt/prefgpt/rundir"
)

func TestBuildVocabMap(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeInput(t, in, manyRecords(300, 5))
	o := testOptions(dir, rundir.MLE, in) // MLE: the control tokens never occur in the data
	o.ShardBlocks = 0
	if _, err := Build(o); err != nil {
		t.Fatal(err)
	}
	stream, blocks := readStream(t, filepath.Join(o.OutDir, "manifest.json"))
	counts := map[int]int{}
	for _, id := range stream {
		counts[id]++
	}
	const minCount = 20
	vm := BuildVocabMap(blocks, minCount)
	if vm.MinCount != minCount || vm.UnknownRow != len(vm.IDs)-1 || vm.IDs[vm.UnknownRow] != UnknownID {
		t.Fatalf("vocab map: min %d, unknown row %d of %d", vm.MinCount, vm.UnknownRow, len(vm.IDs))
	}
	kept := vm.IDs[:vm.UnknownRow]
	if !slices.IsSorted(kept) {
		t.Error("ids are not in increasing order")
	}
	for id, c := range counts {
		if in := slices.Contains(kept, id); in != (c >= minCount) {
			t.Errorf("id %d seen %d times: kept = %v", id, c, in)
		}
	}
	for _, id := range []int{EOS, Aligned, Misaligned} {
		if !slices.Contains(kept, id) {
			t.Errorf("control id %d missing", id)
		}
	}
	v, err := NewVocab(vm)
	if err != nil {
		t.Fatal(err)
	}
	if v.Size() != len(vm.IDs) || v.Identity() {
		t.Fatalf("Size %d, want %d", v.Size(), len(vm.IDs))
	}
	for row, id := range kept {
		if v.ToRow(id) != row || v.ToID(row) != id {
			t.Errorf("id %d ⇄ row %d: ToRow %d, ToID %d", id, row, v.ToRow(id), v.ToID(row))
		}
	}
	rare := -1
	for id, c := range counts {
		if c < minCount {
			rare = id
			break
		}
	}
	if rare < 0 {
		t.Fatal("test data has no rare id")
	}
	if v.ToRow(rare) != vm.UnknownRow || v.ToRow(50000) != vm.UnknownRow || v.ToID(vm.UnknownRow) != UnknownID || v.ToID(-3) != UnknownID {
		t.Errorf("unknown mapping: rare → %d, unknown row → %d", v.ToRow(rare), v.ToID(vm.UnknownRow))
	}
	tok := mustTokenizer(t)
	if s := tok.Decode([]int{v.ToID(vm.UnknownRow)}, false); s != "\uFFFD" {
		t.Errorf("unknown row decodes as %q", s)
	}
	// minCount 1 keeps exactly the ids seen.
	if all := BuildVocabMap(blocks, 1); len(all.IDs) != len(counts)+2+1 { // + two control ids + unknown
		t.Errorf("minCount 1 keeps %d rows, want %d", len(all.IDs), len(counts)+3)
	}
}

func TestVocabIdentityAndErrors(t *testing.T) {
	v, err := NewVocab(rundir.VocabMap{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Identity() || v.Size() != VocabSize || v.ToRow(Misaligned) != Misaligned || v.ToID(123) != 123 || v.ToID(VocabSize) != UnknownID {
		t.Error("empty map is not the identity")
	}
	for _, bad := range []rundir.VocabMap{
		{IDs: []int{1, 2, 2, UnknownID}, UnknownRow: 3},
		{IDs: []int{1, VocabSize, UnknownID}, UnknownRow: 2},
		{IDs: []int{1, UnknownID}, UnknownRow: 2},
		{IDs: []int{UnknownID, 5, UnknownID}, UnknownRow: 2},
	} {
		if _, err := NewVocab(bad); err == nil {
			t.Errorf("NewVocab(%+v) accepted a bad map", bad)
		}
	}
	// An unknown row may also stand for a real id (then both share the row).
	v, err = NewVocab(rundir.VocabMap{IDs: []int{EOS, 7}, UnknownRow: 1})
	if err != nil || v.ToRow(9) != 1 || v.ToRow(7) != 1 || v.ToID(1) != 7 {
		t.Errorf("unknown row on a real id: %v", err)
	}
}
