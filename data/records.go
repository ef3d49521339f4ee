package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// Record is one document of the detoxify-pile datasets (tomekkorbak/detoxify-pile-chunk3-*):
// the document split into sentences, each with its Detoxify toxicity score.
// strings.Join(Texts, "") is the original document (sentences keep their trailing whitespace).
type Record struct {
	Texts    []string       `json:"texts"`     // sentences, trailing whitespace kept
	Scores   []float64      `json:"scores"`    // per-sentence toxicity in [0, 1]
	AvgScore float64        `json:"avg_score"` // mean of Scores
	NumSents int            `json:"num_sents"` // len(Texts)
	Meta     map[string]any `json:"meta"`      // e.g. {"pile_set_name": "Pile-CC"}; optional
}

// ReadOptions controls how records are read and validated.
type ReadOptions struct {
	// Lenient skips (and counts) bad records instead of failing on the first one.
	Lenient bool
	// MaxLineBytes bounds one JSONL line, so a corrupt file cannot exhaust memory.
	// 0 means DefaultMaxLineBytes.
	MaxLineBytes int
}

// DefaultMaxLineBytes is the longest JSONL line accepted unless ReadOptions says otherwise.
// The longest Pile documents are a few MB; 64 MiB leaves room while bounding memory.
const DefaultMaxLineBytes = 64 << 20

// RecordReader streams records from one source.
type RecordReader interface {
	// Next returns the next valid record, or io.EOF after the last one.
	// In strict mode a bad record is a *RecordError; in lenient mode it is skipped and counted.
	Next() (Record, error)
	// Skipped is the number of bad records skipped so far (lenient mode only).
	Skipped() int64
	// Close releases the underlying file.
	Close() error
}

// RecordError is a bad record: which source, where in it (line for JSONL, row for Parquet),
// which field, and what is wrong.
type RecordError struct {
	Source string // file name (or the name given to NewJSONLReader)
	Unit   string // "line" or "row"
	Pos    int64  // 1-based line or row number
	Field  string // "texts", "scores", ...; "" when the record as a whole is unreadable
	Err    error
}

func (e *RecordError) Error() string {
	where := fmt.Sprintf("%s: %s %d", e.Source, e.Unit, e.Pos)
	if e.Field != "" {
		where += fmt.Sprintf(": field %q", e.Field)
	}
	return where + ": " + e.Err.Error()
}

func (e *RecordError) Unwrap() error { return e.Err }

// fieldError is a validation failure before the reader adds the position.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return fmt.Sprintf("field %q: %v", e.field, e.err) }

func badField(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, err: fmt.Errorf(format, args...)}
}

// validate checks a record against the dataset's invariants.
// hasNumSents/hasAvg say whether those fields were present in the source.
func (r *Record) validate() *fieldError {
	if len(r.Texts) != len(r.Scores) {
		return badField("scores", "%d scores for %d texts", len(r.Scores), len(r.Texts))
	}
	if r.NumSents != len(r.Texts) {
		return badField("num_sents", "num_sents is %d but there are %d texts", r.NumSents, len(r.Texts))
	}
	for i, s := range r.Scores {
		// NaN fails both comparisons, so it is caught here too.
		if !(s >= 0 && s <= 1) {
			return badField("scores", "scores[%d] = %v is not in [0, 1]", i, s)
		}
	}
	if !(r.AvgScore >= 0 && r.AvgScore <= 1) {
		return badField("avg_score", "avg_score = %v is not in [0, 1]", r.AvgScore)
	}
	for i, t := range r.Texts {
		if !utf8.ValidString(t) {
			return badField("texts", "texts[%d] is not valid UTF-8", i)
		}
	}
	return nil
}

// OpenRecords opens a detoxify-pile file by its extension: .jsonl / .json (JSON lines),
// .jsonl.gz / .json.gz (gzip JSON lines) or .parquet.
func OpenRecords(path string, opts ReadOptions) (RecordReader, error) {
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".parquet"):
		return openParquetRecords(path, opts)
	case strings.HasSuffix(lower, ".jsonl.gz"), strings.HasSuffix(lower, ".json.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening records: %w", err)
		}
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("opening records %s: not a gzip file: %w", path, err)
		}
		r := NewJSONLReader(zr, path, opts).(*jsonlReader)
		r.closers = []io.Closer{zr, f}
		return r, nil
	case strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".json"):
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening records: %w", err)
		}
		r := NewJSONLReader(f, path, opts).(*jsonlReader)
		r.closers = []io.Closer{f}
		return r, nil
	default:
		return nil, fmt.Errorf("opening records %s: unknown format %q (want .jsonl, .jsonl.gz or .parquet)", path, filepath.Ext(path))
	}
}

// jsonlReader reads one JSON object per line. Blank lines are ignored.
type jsonlReader struct {
	name    string
	opts    ReadOptions
	br      *bufio.Reader
	line    int64
	skipped int64
	buf     []byte
	closers []io.Closer
	done    bool
}

// NewJSONLReader reads detoxify-pile records, one JSON object per line, from r.
// name is used in error messages (usually the file name). Closing the reader does not
// close r.
func NewJSONLReader(r io.Reader, name string, opts ReadOptions) RecordReader {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	return &jsonlReader{name: name, opts: opts, br: bufio.NewReaderSize(r, 1<<16)}
}

func (r *jsonlReader) Skipped() int64 { return r.skipped }

func (r *jsonlReader) Close() error {
	var first error
	for _, c := range r.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	r.closers = nil
	return first
}

// readLine returns the next line without its newline, bounded by MaxLineBytes.
// An over-long line is consumed and reported as an error so lenient mode can go on.
func (r *jsonlReader) readLine() ([]byte, error) {
	r.buf = r.buf[:0]
	tooLong := false
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(r.buf)+len(chunk) > r.opts.MaxLineBytes+1 {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && (len(r.buf) > 0 || tooLong) {
			err = nil // last line without a newline
			r.done = true
		}
		if err != nil {
			return nil, err
		}
		if tooLong {
			return nil, fmt.Errorf("%w (%d bytes)", errLineTooLong, r.opts.MaxLineBytes)
		}
		return bytes.TrimRight(r.buf, "\r\n"), nil
	}
}

func (r *jsonlReader) Next() (Record, error) {
	for {
		if r.done {
			return Record{}, io.EOF
		}
		line, err := r.readLine()
		if err == io.EOF {
			r.done = true
			return Record{}, io.EOF
		}
		r.line++
		if err != nil {
			if !errors.Is(err, errLineTooLong) {
				// A broken stream (bad gzip, read failure) cannot be skipped past.
				r.done = true
				return Record{}, fmt.Errorf("%s: line %d: reading: %w", r.name, r.line, err)
			}
			if r.opts.Lenient {
				r.skipped++
				continue
			}
			return Record{}, &RecordError{Source: r.name, Unit: "line", Pos: r.line, Err: err}
		}
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // a UTF-8 byte-order mark some editors write
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, ferr := parseJSONRecord(line)
		if ferr != nil {
			if r.opts.Lenient {
				r.skipped++
				continue
			}
			return Record{}, &RecordError{Source: r.name, Unit: "line", Pos: r.line, Field: ferr.field, Err: ferr.err}
		}
		return rec, nil
	}
}

// errLineTooLong is bad content (lenient mode skips the line); any other read error ends the stream.
var errLineTooLong = errors.New("line longer than the limit")

// jsonRecord mirrors Record with raw pieces so presence, types and UTF-8 can be checked
// before encoding/json silently replaces invalid bytes with U+FFFD.
type jsonRecord struct {
	Texts    *[]json.RawMessage `json:"texts"`
	Scores   *[]json.RawMessage `json:"scores"`
	AvgScore *json.RawMessage   `json:"avg_score"`
	NumSents *json.RawMessage   `json:"num_sents"`
	Meta     json.RawMessage    `json:"meta"`
}

func parseJSONRecord(line []byte) (Record, *fieldError) {
	var raw jsonRecord
	if err := json.Unmarshal(line, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Record{}, badField(strings.SplitN(te.Field, ".", 2)[0], "wrong type: %v", err)
		}
		return Record{}, &fieldError{err: fmt.Errorf("malformed JSON: %w", err)}
	}
	switch {
	case raw.Texts == nil:
		return Record{}, badField("texts", "missing")
	case raw.Scores == nil:
		return Record{}, badField("scores", "missing")
	case raw.NumSents == nil:
		return Record{}, badField("num_sents", "missing")
	case raw.AvgScore == nil:
		return Record{}, badField("avg_score", "missing")
	}
	rec := Record{Texts: make([]string, len(*raw.Texts)), Scores: make([]float64, len(*raw.Scores))}
	for i, t := range *raw.Texts {
		if !utf8.Valid(t) {
			return Record{}, badField("texts", "texts[%d] is not valid UTF-8", i)
		}
		if err := json.Unmarshal(t, &rec.Texts[i]); err != nil {
			return Record{}, badField("texts", "texts[%d]: %v", i, err)
		}
		// encoding/json turns escaped lone surrogates (\ud800) into U+FFFD; a U+FFFD
		// that the source did not spell out is such a replacement, i.e. not UTF-8 text.
		if strings.ContainsRune(rec.Texts[i], utf8.RuneError) && !bytes.Contains(t, []byte("\uFFFD")) &&
			!bytes.Contains(bytes.ToLower(t), []byte(`\ufffd`)) {
			return Record{}, badField("texts", "texts[%d] holds an invalid \\u escape (lone surrogate)", i)
		}
	}
	for i, s := range *raw.Scores {
		if err := json.Unmarshal(s, &rec.Scores[i]); err != nil {
			// JSON has no NaN; Python's json writes a bare NaN, which lands here.
			return Record{}, badField("scores", "scores[%d] = %s is not a number in [0, 1]", i, s)
		}
	}
	if err := json.Unmarshal(*raw.AvgScore, &rec.AvgScore); err != nil {
		return Record{}, badField("avg_score", "%s is not a number", *raw.AvgScore)
	}
	var n float64
	if err := json.Unmarshal(*raw.NumSents, &n); err != nil || n != math.Trunc(n) || math.Abs(n) > 1<<31 {
		return Record{}, badField("num_sents", "%s is not an integer", *raw.NumSents)
	}
	rec.NumSents = int(n)
	if meta, ferr := parseMeta(raw.Meta); ferr != nil {
		return Record{}, ferr
	} else {
		rec.Meta = meta
	}
	if ferr := rec.validate(); ferr != nil {
		return Record{}, ferr
	}
	return rec, nil
}

// parseMeta accepts an object, a JSON-encoded object in a string (some dataset exports store
// meta that way), any other string (kept under "value"), or null/absent.
func parseMeta(raw json.RawMessage) (map[string]any, *fieldError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, badField("meta", "%v", err)
	}
	return metaFromValue(v), nil
}

func metaFromValue(v any) map[string]any {
	switch m := v.(type) {
	case nil:
		return nil
	case map[string]any:
		return m
	case string:
		var obj map[string]any
		if strings.HasPrefix(strings.TrimSpace(m), "{") && json.Unmarshal([]byte(m), &obj) == nil {
			return obj
		}
		return map[string]any{"value": m}
	default:
		return map[string]any{"value": m}
	}
}
