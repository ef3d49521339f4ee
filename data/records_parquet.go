package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// Parquet files of the HF detoxify-pile datasets (written by pyarrow) look like
//
//	optional group texts (LIST) { repeated group list { optional binary element (STRING); } }
//	optional group scores (LIST) { repeated group list { optional double element; } }
//	optional double avg_score; optional int64 num_sents;
//	optional group meta { optional binary pile_set_name (STRING); }   (or meta as a string)
//
// Rather than binding a Go struct to one exact schema, the reader decodes rows column by
// column from their repetition/definition levels, so 2- or 3-level lists, required or
// optional fields, float or double scores, int32 or int64 counts and meta as a struct or a
// string all read the same way.

// parquetRowsPerRead is how many rows are decoded at a time: small, so memory stays bounded
// by a few documents plus the column pages parquet-go holds.
const parquetRowsPerRead = 16

// parquetColumn says where a field's values are in a row and how to read their levels.
type parquetColumn struct {
	index   int    // leaf column index
	name    string // "texts" (the field), or "meta.pile_set_name" (a meta leaf)
	maxDef  int    // definition level of a present, non-null value
	listDef int    // for lists: definition level from which a value is an element slot
	list    bool   // the leaf is repeated (a list)
}

type parquetReader struct {
	path    string
	opts    ReadOptions
	file    *os.File
	rows    *parquet.Reader
	buf     []parquet.Row
	pending []parquet.Row
	row     int64 // rows returned or skipped so far
	skipped int64
	done    bool

	texts, scores, avgScore, numSents parquetColumn
	meta                              []parquetColumn
	metaIsString                      bool // meta is one leaf column holding a string
}

func openParquetRecords(path string, opts ReadOptions) (_ RecordReader, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening records: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening records: %w", err)
	}
	pf, err := openParquetFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("opening records %s: not a readable parquet file: %w", path, err)
	}
	r := &parquetReader{path: path, opts: opts, file: f}
	if err := r.mapColumns(pf.Schema()); err != nil {
		return nil, fmt.Errorf("opening records %s: %w", path, err)
	}
	r.rows = parquet.NewReader(pf)
	r.buf = make([]parquet.Row, parquetRowsPerRead)
	return r, nil
}

// openParquetFile wraps parquet.OpenFile: a corrupt footer can make the library panic, and
// parquet-go v0.32.0 allocates whatever footer length the file claims (up to 4 GiB), so the
// length is checked against the file size first.
func openParquetFile(f io.ReaderAt, size int64) (pf *parquet.File, err error) {
	if size < 12 {
		return nil, fmt.Errorf("%d bytes is too short for a parquet file", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("reading footer: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return nil, fmt.Errorf("no PAR1 magic at the end (encrypted or not parquet)")
	}
	if footer := int64(binary.LittleEndian.Uint32(tail[:4])); footer+12 > size {
		return nil, fmt.Errorf("footer of %d bytes does not fit in a %d-byte file", footer, size)
	}
	defer func() {
		if p := recover(); p != nil {
			pf, err = nil, fmt.Errorf("corrupt file: %v", p)
		}
	}()
	return parquet.OpenFile(f, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
}

// mapColumns finds the leaf column of each field and the levels that decode it.
func (r *parquetReader) mapColumns(schema *parquet.Schema) error {
	leaves := map[string][][]string{} // top-level field → leaf paths under it
	for _, p := range schema.Columns() {
		if len(p) > 0 {
			leaves[p[0]] = append(leaves[p[0]], p)
		}
	}
	one := func(field string, wantList bool) (parquetColumn, error) {
		paths := leaves[field]
		if len(paths) != 1 {
			if len(paths) == 0 {
				return parquetColumn{}, fmt.Errorf("field %q: no such column (columns: %v)", field, schema.Columns())
			}
			return parquetColumn{}, fmt.Errorf("field %q: %d leaf columns, want one", field, len(paths))
		}
		c, err := columnLevels(schema, paths[0])
		if err != nil {
			return c, fmt.Errorf("field %q: %w", field, err)
		}
		c.name = field // errors name the record field, not the leaf path (texts.list.element)
		if c.list != wantList {
			kind := map[bool]string{true: "a list", false: "a single value"}
			return c, fmt.Errorf("field %q: want %s, the file has %s", field, kind[wantList], kind[c.list])
		}
		return c, nil
	}
	var err error
	if r.texts, err = one("texts", true); err != nil {
		return err
	}
	if r.scores, err = one("scores", true); err != nil {
		return err
	}
	if r.avgScore, err = one("avg_score", false); err != nil {
		return err
	}
	if r.numSents, err = one("num_sents", false); err != nil {
		return err
	}
	for _, p := range leaves["meta"] {
		// meta is informational: a leaf this reader cannot decode (a nested list) is left out.
		if c, err := columnLevels(schema, p); err == nil {
			r.meta = append(r.meta, c)
		}
	}
	r.metaIsString = len(r.meta) == 1 && len(leaves["meta"][0]) == 1
	return nil
}

// columnLevels walks the schema along path and computes the definition levels of its leaf.
func columnLevels(schema *parquet.Schema, path []string) (parquetColumn, error) {
	leaf, ok := schema.Lookup(path...)
	if !ok {
		return parquetColumn{}, fmt.Errorf("column %v not found", path)
	}
	c := parquetColumn{index: leaf.ColumnIndex, name: strings.Join(path, "."), maxDef: leaf.MaxDefinitionLevel}
	var node parquet.Node = schema
	def := 0
	for _, name := range path {
		var next parquet.Node
		for _, f := range node.Fields() {
			if f.Name() == name {
				next = f
				break
			}
		}
		if next == nil {
			return c, fmt.Errorf("column %v not found", path)
		}
		node = next
		if node.Optional() || node.Repeated() {
			def++
		}
		if node.Repeated() {
			if c.list {
				return c, fmt.Errorf("column %v: nested lists are not supported", path)
			}
			c.list, c.listDef = true, def
		}
	}
	return c, nil
}

func (r *parquetReader) Skipped() int64 { return r.skipped }

func (r *parquetReader) Close() error {
	var err error
	if r.rows != nil {
		err = r.rows.Close()
		r.rows = nil
	}
	if r.file != nil {
		if cerr := r.file.Close(); err == nil {
			err = cerr
		}
		r.file = nil
	}
	return err
}

func (r *parquetReader) Next() (Record, error) {
	for {
		if len(r.pending) == 0 {
			if r.done {
				return Record{}, io.EOF
			}
			if err := r.fill(); err != nil {
				r.done = true
				return Record{}, fmt.Errorf("%s: row %d: reading: %w", r.path, r.row+1, err)
			}
			if len(r.pending) == 0 {
				r.done = true
				return Record{}, io.EOF
			}
		}
		row := r.pending[0]
		r.pending = r.pending[1:]
		r.row++
		rec, ferr := r.decode(row)
		if ferr != nil {
			if r.opts.Lenient {
				r.skipped++
				continue
			}
			return Record{}, &RecordError{Source: r.path, Unit: "row", Pos: r.row, Field: ferr.field, Err: ferr.err}
		}
		return rec, nil
	}
}

// fill reads the next few rows; corrupt pages can make parquet-go panic, which becomes an error.
func (r *parquetReader) fill() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt file: %v", p)
		}
	}()
	n, err := r.rows.ReadRows(r.buf)
	r.pending = r.buf[:n]
	if errors.Is(err, io.EOF) {
		if n == 0 {
			r.done = true
		}
		return nil
	}
	return err
}

// decode turns one row into a Record and validates it.
func (r *parquetReader) decode(row parquet.Row) (Record, *fieldError) {
	// A row holds its values column by column, in column order.
	byColumn := map[int][]parquet.Value{}
	for _, v := range row {
		byColumn[v.Column()] = append(byColumn[v.Column()], v)
	}
	var rec Record
	var ferr *fieldError
	if rec.Texts, ferr = listOf(byColumn[r.texts.index], r.texts, parquetString); ferr != nil {
		return rec, ferr
	}
	if rec.Scores, ferr = listOf(byColumn[r.scores.index], r.scores, parquetFloat); ferr != nil {
		return rec, ferr
	}
	if rec.AvgScore, ferr = scalarOf(byColumn[r.avgScore.index], r.avgScore, parquetFloat); ferr != nil {
		return rec, ferr
	}
	n, ferr := scalarOf(byColumn[r.numSents.index], r.numSents, parquetFloat)
	if ferr != nil {
		return rec, ferr
	}
	if n != float64(int(n)) {
		return rec, badField("num_sents", "%v is not an integer", n)
	}
	rec.NumSents = int(n)
	rec.Meta = r.decodeMeta(byColumn)
	if ferr := rec.validate(); ferr != nil {
		return rec, ferr
	}
	return rec, nil
}

// decodeMeta reads meta best-effort: it is informational, so odd values never fail a record.
func (r *parquetReader) decodeMeta(byColumn map[int][]parquet.Value) map[string]any {
	if r.metaIsString {
		vals := byColumn[r.meta[0].index]
		if len(vals) == 1 && !vals[0].IsNull() {
			return metaFromValue(parquetAny(vals[0]))
		}
		return nil
	}
	var meta map[string]any
	for _, c := range r.meta {
		var got []any
		for _, v := range byColumn[c.index] {
			if !v.IsNull() && v.DefinitionLevel() == c.maxDef {
				got = append(got, parquetAny(v))
			}
		}
		if len(got) == 0 {
			continue
		}
		if meta == nil {
			meta = map[string]any{}
		}
		key := strings.TrimPrefix(c.name, "meta.")
		if c.list {
			meta[key] = got
		} else {
			meta[key] = got[0]
		}
	}
	return meta
}

// parquetString reads a byte-array value as UTF-8 text.
func parquetString(v parquet.Value) (string, error) {
	if v.Kind() != parquet.ByteArray {
		return "", fmt.Errorf("is %v, want a string", v.Kind())
	}
	b := v.ByteArray()
	if !utf8.Valid(b) {
		return "", errors.New("is not valid UTF-8")
	}
	return string(b), nil
}

// parquetFloat reads any numeric value as float64.
func parquetFloat(v parquet.Value) (float64, error) {
	switch v.Kind() {
	case parquet.Double:
		return v.Double(), nil
	case parquet.Float:
		return float64(v.Float()), nil
	case parquet.Int32:
		return float64(v.Int32()), nil
	case parquet.Int64:
		return float64(v.Int64()), nil
	}
	return 0, fmt.Errorf("is %v, want a number", v.Kind())
}

func parquetAny(v parquet.Value) any {
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return strings.ToValidUTF8(string(v.ByteArray()), "\uFFFD")
	case parquet.Boolean:
		return v.Boolean()
	}
	if f, err := parquetFloat(v); err == nil {
		return f
	}
	return v.String()
}

// listOf decodes a list column's values in one row.
func listOf[T any](vals []parquet.Value, c parquetColumn, read func(parquet.Value) (T, error)) ([]T, *fieldError) {
	field := c.name
	if len(vals) == 0 {
		return nil, badField(field, "missing")
	}
	if len(vals) == 1 && vals[0].DefinitionLevel() < c.listDef {
		// No element slot: the list is empty, or null if not even its outer group is defined.
		if vals[0].DefinitionLevel() == 0 && c.listDef > 1 {
			return nil, badField(field, "is null")
		}
		return []T{}, nil
	}
	out := make([]T, len(vals))
	for i, v := range vals {
		if v.IsNull() || v.DefinitionLevel() < c.maxDef {
			return nil, badField(field, "%s[%d] is null", field, i)
		}
		x, err := read(v)
		if err != nil {
			return nil, badField(field, "%s[%d] %v", field, i, err)
		}
		out[i] = x
	}
	return out, nil
}

// scalarOf decodes a single-value column's value in one row.
func scalarOf[T any](vals []parquet.Value, c parquetColumn, read func(parquet.Value) (T, error)) (T, *fieldError) {
	var zero T
	if len(vals) != 1 || vals[0].IsNull() || vals[0].DefinitionLevel() < c.maxDef {
		return zero, badField(c.name, "missing (null)")
	}
	x, err := read(vals[0])
	if err != nil {
		return zero, badField(c.name, "%v", err)
	}
	return x, nil
}
