package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJSONLRoundTripAndBadLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "m.jsonl")
	rows := []MetricRow{{Step: 1, TokensSeen: 64, Loss: 3.5}, {Step: 2, TokensSeen: 128, Loss: 3.25}}
	if err := AppendJSONL(path, rows...); err != nil {
		t.Fatal(err)
	}
	if err := AppendJSONL(path, MetricRow{Step: 3, TokensSeen: 192, Loss: 3}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONL[MetricRow](path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Step != 3 || got[1].Loss != 3.25 || got[0].TokensSeen != 64 {
		t.Fatalf("round trip: got %+v", got)
	}
	// A corrupt line is reported with file and line number.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n{\"step\": oops}\n")
	f.Close()
	_, err = ReadJSONL[MetricRow](path)
	if err == nil || !strings.Contains(err.Error(), "m.jsonl:5") {
		t.Fatalf("want error naming m.jsonl:5, got %v", err)
	}
}

func TestTruncateAfterStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	for s := 1; s <= 5; s++ {
		if err := AppendJSONL(path, MetricRow{Step: s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := TruncateJSONLAfterStep(path, 3, func(r MetricRow) int { return r.Step }); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONL[MetricRow](path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Step != 3 {
		t.Fatalf("after truncate: %+v", got)
	}
	// A missing file is not an error: nothing to truncate.
	if err := TruncateJSONLAfterStep(filepath.Join(t.TempDir(), "none.jsonl"), 3, func(r MetricRow) int { return r.Step }); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRequireAndLayout(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Open of a missing directory must fail")
	}
	d, err := Create(filepath.Join(t.TempDir(), "run"))
	if err != nil {
		t.Fatal(err)
	}
	err = Require(d.Manifest(Conditional), "data")
	if err == nil || !strings.Contains(err.Error(), `"data" stage`) {
		t.Fatalf("Require should name the stage: %v", err)
	}
	if err := WriteJSON(d.Eval("conditional"), EvalSummary{Model: "conditional", Step: 7}); err != nil {
		t.Fatal(err)
	}
	var e EvalSummary
	if err := ReadJSON(d.Eval("conditional"), &e); err != nil || e.Step != 7 {
		t.Fatalf("ReadJSON: %v %+v", err, e)
	}
	models, err := d.Models()
	if err != nil || len(models) != 1 || models[0] != "conditional" {
		t.Fatalf("Models: %v %v", models, err)
	}
	if got := filepath.Base(d.Samples("m", 42)); got != "step-0000042.jsonl" {
		t.Fatalf("Samples name: %s", got)
	}
}
