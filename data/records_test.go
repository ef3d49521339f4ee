package data

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// testRecords are small documents with known scores.
func testRecords() []Record {
	return []Record{
		{Texts: []string{"Hello there. ", "You are nice."}, Scores: []float64{0.0001, 0.0002}, AvgScore: 0.00015, NumSents: 2,
			Meta: map[string]any{"pile_set_name": "Pile-CC"}},
		{Texts: []string{"Shut up, idiot! ", "Bye.\n"}, Scores: []float64{0.93, 0.0004}, AvgScore: 0.4652, NumSents: 2,
			Meta: map[string]any{"pile_set_name": "OpenWebText2"}},
		{Texts: []string{}, Scores: []float64{}, AvgScore: 0, NumSents: 0, Meta: map[string]any{"pile_set_name": "Github"}},
		{Texts: []string{"Ünïcödé 你好 😀 ", "<|endoftext|> is text."}, Scores: []float64{0.00056, 1}, AvgScore: 0.50028, NumSents: 2,
			Meta: map[string]any{"pile_set_name": "Wikipedia (en)"}},
	}
}

func writeJSONL(t testing.TB, path string, lines []string) {
	t.Helper()
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	if strings.HasSuffix(path, ".gz") {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(data)
		zw.Close()
		data = zb.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func recordLines(t testing.TB, recs []Record) []string {
	t.Helper()
	var lines []string
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	return lines
}

// hfSchema is the layout pyarrow gives the HF detoxify-pile parquet files.
var hfSchema = parquet.NewSchema("hf", parquet.Group{
	"texts":     parquet.Optional(parquet.List(parquet.Optional(parquet.String()))),
	"scores":    parquet.Optional(parquet.List(parquet.Optional(parquet.Leaf(parquet.DoubleType)))),
	"avg_score": parquet.Optional(parquet.Leaf(parquet.DoubleType)),
	"num_sents": parquet.Optional(parquet.Int(64)),
	"meta":      parquet.Optional(parquet.Group{"pile_set_name": parquet.Optional(parquet.String())}),
})

// writeHFParquet writes records with the HF layout. nullText makes texts[0] of record k null.
func writeHFParquet(t testing.TB, path string, recs []Record, nullText map[int]bool) {
	t.Helper()
	w := newHFParquetWriter(t, path)
	for k, r := range recs {
		w.write(t, r, nullText[k])
	}
	w.close(t)
}

// hfParquetWriter streams records into a parquet file with the HF layout, building each row
// from its repetition and definition levels. Columns (sorted): avg_score 0,
// meta.pile_set_name 1, num_sents 2, scores.list.element 3, texts.list.element 4.
type hfParquetWriter struct {
	f    *os.File
	w    *parquet.Writer
	rows int
}

func newHFParquetWriter(t testing.TB, path string) *hfParquetWriter {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Row groups of 1000 documents, like the HF files' (and a bounded writer buffer).
	return &hfParquetWriter{f: f, w: parquet.NewWriter(f, hfSchema, parquet.PageBufferSize(4<<10), parquet.MaxRowsPerRowGroup(1000))}
}

func (h *hfParquetWriter) write(t testing.TB, r Record, nullText bool) {
	t.Helper()
	var row parquet.Row
	row = append(row, parquet.ValueOf(r.AvgScore).Level(0, 1, 0))
	if name, ok := r.Meta["pile_set_name"].(string); ok {
		row = append(row, parquet.ValueOf(name).Level(0, 2, 1))
	} else {
		row = append(row, parquet.Value{}.Level(0, 0, 1))
	}
	row = append(row, parquet.ValueOf(int64(r.NumSents)).Level(0, 1, 2))
	// A list is one value per element (repetition level 1 after the first, definition level 3
	// = element present, 2 = element null), or one value at definition level 1 when empty.
	list := func(n, col int, value func(i int) (parquet.Value, int)) {
		if n == 0 {
			row = append(row, parquet.Value{}.Level(0, 1, col))
			return
		}
		for i := range n {
			rep := 1
			if i == 0 {
				rep = 0
			}
			v, def := value(i)
			row = append(row, v.Level(rep, def, col))
		}
	}
	list(len(r.Scores), 3, func(i int) (parquet.Value, int) { return parquet.ValueOf(r.Scores[i]), 3 })
	list(len(r.Texts), 4, func(i int) (parquet.Value, int) {
		if i == 0 && nullText {
			return parquet.Value{}, 2
		}
		return parquet.ValueOf([]byte(r.Texts[i])), 3
	})
	if _, err := h.w.WriteRows([]parquet.Row{row}); err != nil {
		t.Fatalf("writing parquet row %d: %v", h.rows, err)
	}
	h.rows++
}

func (h *hfParquetWriter) close(t testing.TB) {
	t.Helper()
	if err := h.w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t testing.TB, path string, opts ReadOptions) ([]Record, int64, error) {
	t.Helper()
	r, err := OpenRecords(path, opts)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, r.Skipped(), nil
		}
		if err != nil {
			return recs, r.Skipped(), err
		}
		recs = append(recs, rec)
	}
}

// sameRecords compares what the pipeline uses (texts, scores, counts, meta).
func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !reflect.DeepEqual(g.Texts, w.Texts) || !reflect.DeepEqual(g.Scores, w.Scores) || g.NumSents != w.NumSents ||
			g.AvgScore != w.AvgScore || g.Meta["pile_set_name"] != w.Meta["pile_set_name"] {
			t.Errorf("record %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

func TestReadRecordsAllFormats(t *testing.T) {
	dir := t.TempDir()
	want := testRecords()
	for _, name := range []string{"a.jsonl", "a.jsonl.gz", "a.parquet"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if strings.HasSuffix(name, ".parquet") {
				writeHFParquet(t, path, want, nil)
			} else {
				writeJSONL(t, path, recordLines(t, want))
			}
			got, skipped, err := readAll(t, path, ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if skipped != 0 {
				t.Errorf("skipped %d", skipped)
			}
			sameRecords(t, got, want)
		})
	}
}

// A parquet file written from a plain Go struct (required fields, 3-level lists of required
// elements, float32 scores, int32 count, meta as a JSON string) reads the same.
func TestReadParquetOtherLayout(t *testing.T) {
	type row struct {
		Texts    []string  `parquet:"texts,list"`
		Scores   []float32 `parquet:"scores,list"`
		AvgScore float32   `parquet:"avg_score"`
		NumSents int32     `parquet:"num_sents"`
		Meta     string    `parquet:"meta"`
	}
	path := filepath.Join(t.TempDir(), "b.parquet")
	rows := []row{
		{Texts: []string{"One. ", "Two."}, Scores: []float32{0.5, 0.25}, AvgScore: 0.375, NumSents: 2, Meta: `{"pile_set_name": "ArXiv"}`},
		{Texts: []string{}, Scores: []float32{}, NumSents: 0, Meta: "plain"},
	}
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
	got, _, err := readAll(t, path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Legacy 2-level lists (a repeated leaf, no LIST group) and a meta struct with a list.
	type legacy struct {
		Texts    []string  `parquet:"texts"`
		Scores   []float64 `parquet:"scores"`
		AvgScore float64   `parquet:"avg_score"`
		NumSents int64     `parquet:"num_sents"`
		Meta     struct {
			PileSetName string   `parquet:"pile_set_name"`
			Tags        []string `parquet:"tags"`
		} `parquet:"meta"`
	}
	lrow := legacy{Texts: []string{"One. ", "Two."}, Scores: []float64{0.5, 0.25}, AvgScore: 0.375, NumSents: 2}
	lrow.Meta.PileSetName, lrow.Meta.Tags = "ArXiv", []string{"x", "y"}
	lpath := filepath.Join(t.TempDir(), "legacy.parquet")
	if err := parquet.WriteFile(lpath, []legacy{lrow, {}}); err != nil {
		t.Fatal(err)
	}
	lgot, _, err := readAll(t, lpath, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lgot) != 2 || !reflect.DeepEqual(lgot[0].Texts, lrow.Texts) || !reflect.DeepEqual(lgot[0].Scores, lrow.Scores) ||
		lgot[0].Meta["pile_set_name"] != "ArXiv" || !reflect.DeepEqual(lgot[0].Meta["tags"], []any{"x", "y"}) || len(lgot[1].Texts) != 0 {
		t.Errorf("legacy layout read as %+v", lgot)
	}
	want := []Record{
		{Texts: []string{"One. ", "Two."}, Scores: []float64{0.5, 0.25}, AvgScore: 0.375, NumSents: 2, Meta: map[string]any{"pile_set_name": "ArXiv"}},
		{Texts: []string{}, Scores: []float64{}, NumSents: 0},
	}
	sameRecords(t, got, want)
	if got[1].Meta["value"] != "plain" {
		t.Errorf("meta string kept as %v", got[1].Meta)
	}
}

func TestBadRecordsJSONL(t *testing.T) {
	good := recordLines(t, testRecords()[:1])[0]
	cases := []struct {
		name, line, field, msg string
	}{
		{"malformed", `{"texts": ["a"], `, "", "malformed JSON"},
		{"lengths differ", `{"texts": ["a", "b"], "scores": [0.1], "avg_score": 0.1, "num_sents": 2}`, "scores", "1 scores for 2 texts"},
		{"num_sents", `{"texts": ["a"], "scores": [0.1], "avg_score": 0.1, "num_sents": 3}`, "num_sents", "num_sents is 3"},
		{"missing texts", `{"scores": [0.1], "avg_score": 0.1, "num_sents": 1}`, "texts", "missing"},
		{"missing scores", `{"texts": ["a"], "avg_score": 0.1, "num_sents": 1}`, "scores", "missing"},
		{"missing num_sents", `{"texts": ["a"], "scores": [0.1], "avg_score": 0.1}`, "num_sents", "missing"},
		{"score above 1", `{"texts": ["a"], "scores": [1.5], "avg_score": 0.1, "num_sents": 1}`, "scores", "not in [0, 1]"},
		{"negative score", `{"texts": ["a"], "scores": [-0.1], "avg_score": 0.1, "num_sents": 1}`, "scores", "not in [0, 1]"},
		{"NaN score", `{"texts": ["a"], "scores": [NaN], "avg_score": 0.1, "num_sents": 1}`, "", "malformed JSON"},
		{"string score", `{"texts": ["a"], "scores": ["x"], "avg_score": 0.1, "num_sents": 1}`, "scores", "not a number"},
		{"non-UTF-8", "{\"texts\": [\"a\xff\"], \"scores\": [0.1], \"avg_score\": 0.1, \"num_sents\": 1}", "texts", "UTF-8"},
		{"lone surrogate", `{"texts": ["a\ud800"], "scores": [0.1], "avg_score": 0.1, "num_sents": 1}`, "texts", "surrogate"},
		{"texts not a list", `{"texts": "a", "scores": [0.1], "avg_score": 0.1, "num_sents": 1}`, "texts", "wrong type"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".jsonl")
			// good, blank, good, bad: the bad record is on line 4.
			writeJSONL(t, path, []string{good, "", good, c.line, good})
			_, _, err := readAll(t, path, ReadOptions{})
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RecordError", err)
			}
			if re.Source != path || re.Unit != "line" || re.Pos != 4 || re.Field != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %q (%+v), want line 4, field %q, %q", err, re, c.field, c.msg)
			}
			got, skipped, err := readAll(t, path, ReadOptions{Lenient: true})
			if err != nil || skipped != 1 || len(got) != 3 {
				t.Fatalf("lenient: %d records, %d skipped, err %v; want 3, 1, nil", len(got), skipped, err)
			}
		})
	}
}

func TestBadRecordsParquet(t *testing.T) {
	dir := t.TempDir()
	recs := testRecords()
	bad := []struct {
		name     string
		mutate   func(r *Record)
		nullText bool
		field    string
	}{
		{"NaN score", func(r *Record) { r.Scores[1] = math.NaN() }, false, "scores"},
		{"score above 1", func(r *Record) { r.Scores[0] = 2 }, false, "scores"},
		{"num_sents", func(r *Record) { r.NumSents = 5 }, false, "num_sents"},
		{"lengths differ", func(r *Record) { r.Scores = r.Scores[:1] }, false, "scores"},
		{"non-UTF-8", func(r *Record) { r.Texts[1] = "bad \xff byte" }, false, "texts"},
		{"null text", func(r *Record) {}, true, "texts"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			rs := testRecords()
			c.mutate(&rs[1])
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".parquet")
			writeHFParquet(t, path, rs, map[int]bool{1: c.nullText})
			_, _, err := readAll(t, path, ReadOptions{})
			var re *RecordError
			if !errors.As(err, &re) || re.Unit != "row" || re.Pos != 2 || re.Field != c.field || re.Source != path {
				t.Fatalf("err = %v, want row 2, field %q", err, c.field)
			}
			got, skipped, err := readAll(t, path, ReadOptions{Lenient: true})
			if err != nil || skipped != 1 || len(got) != len(recs)-1 {
				t.Fatalf("lenient: %d records, %d skipped, err %v", len(got), skipped, err)
			}
		})
	}
	// A file without a texts column says so at open time.
	path := filepath.Join(dir, "nocol.parquet")
	type row struct {
		Scores []float64 `parquet:"scores,list"`
	}
	if err := parquet.WriteFile(path, []row{{Scores: []float64{0.1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRecords(path, ReadOptions{}); err == nil || !strings.Contains(err.Error(), `field "texts"`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("open without texts: err = %v", err)
	}
}

func TestOpenRecordsErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenRecords(filepath.Join(dir, "x.csv"), ReadOptions{}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("csv: %v", err)
	}
	if _, err := OpenRecords(filepath.Join(dir, "missing.jsonl"), ReadOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	notGz := filepath.Join(dir, "plain.jsonl.gz")
	os.WriteFile(notGz, []byte("{}\n"), 0o644)
	if _, err := OpenRecords(notGz, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("not gzip: %v", err)
	}
	// A truncated gzip stream is an error (not a silent early EOF), even in lenient mode.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(strings.Repeat(recordLines(t, testRecords()[:1])[0]+"\n", 200)))
	zw.Close()
	cut := filepath.Join(dir, "cut.jsonl.gz")
	os.WriteFile(cut, zb.Bytes()[:zb.Len()/2], 0o644)
	if _, _, err := readAll(t, cut, ReadOptions{Lenient: true}); err == nil {
		t.Errorf("truncated gzip read without error")
	}
	// An over-long line is a bad record: an error, or a skip in lenient mode.
	long := filepath.Join(dir, "long.jsonl")
	good := recordLines(t, testRecords()[:1])[0]
	writeJSONL(t, long, []string{good, `{"texts": ["` + strings.Repeat("x", 5000) + `"]}`, good})
	if _, _, err := readAll(t, long, ReadOptions{MaxLineBytes: 1000}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("long line: %v", err)
	}
	if got, skipped, err := readAll(t, long, ReadOptions{MaxLineBytes: 1000, Lenient: true}); err != nil || skipped != 1 || len(got) != 2 {
		t.Errorf("long line lenient: %d, %d, %v", len(got), skipped, err)
	}
}

func FuzzJSONLReader(f *testing.F) {
	for _, l := range recordLines(f, testRecords()) {
		f.Add([]byte(l + "\n"))
	}
	f.Add([]byte(`{"texts": ["a"], "scores": [0.1], "avg_score": 0.1, "num_sents": 1, "meta": "{\"x\": 1}"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lenient := range []bool{false, true} {
			r := NewJSONLReader(bytes.NewReader(b), "fuzz", ReadOptions{Lenient: lenient, MaxLineBytes: 4096})
			for range 10000 {
				rec, err := r.Next()
				if err != nil {
					break
				}
				if ferr := rec.validate(); ferr != nil {
					t.Fatalf("reader returned an invalid record: %v", ferr)
				}
			}
		}
	})
}

func FuzzGzipReader(f *testing.F) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(strings.Join(recordLines(f, testRecords()), "\n")))
	zw.Close()
	f.Add(zb.Bytes())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.jsonl.gz")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		readAll(t, path, ReadOptions{Lenient: true})
	})
}

func FuzzParquetReader(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.parquet")
	writeHFParquet(f, seed, testRecords(), nil)
	b, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.parquet")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		recs, _, _ := readAll(t, path, ReadOptions{Lenient: true})
		for _, rec := range recs {
			if ferr := rec.validate(); ferr != nil {
				t.Fatalf("reader returned an invalid record: %v", ferr)
			}
		}
	})
}

func TestDetoxifyPileRepos(t *testing.T) {
	repos := DetoxifyPileRepos()
	if len(repos) != 39 || repos[0] != "tomekkorbak/detoxify-pile-chunk3-0-50000" ||
		repos[38] != "tomekkorbak/detoxify-pile-chunk3-1900000-1950000" {
		t.Fatalf("repos: %d, first %q, last %q", len(repos), repos[0], repos[len(repos)-1])
	}
	for _, name := range []string{"data/train-00000-of-00002.parquet", "x.jsonl", "x.JSONL.GZ"} {
		if !isRecordFile(name) {
			t.Errorf("%s not recognised", name)
		}
	}
	if isRecordFile("README.md") || isRecordFile(".gitattributes") {
		t.Error("non-data file recognised")
	}
}

func TestJSONLByteOrderMark(t *testing.T) {
	lines := recordLines(t, testRecords()[:2])
	r := NewJSONLReader(strings.NewReader("\uFEFF"+lines[0]+"\r\n"+lines[1]), "bom.jsonl", ReadOptions{})
	for i := range 2 {
		if _, err := r.Next(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last record: %v", err)
	}
}
