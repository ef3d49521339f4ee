package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// AppendJSONL appends rows to a JSON-lines file, creating it and its folder if needed.
// Each row is written with one Write call so a crash leaves at most one partial last line.
func AppendJSONL[T any](path string, rows ...T) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	var buf bytes.Buffer
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			f.Close()
			return fmt.Errorf("appending to %s: encoding row: %w", path, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	return f.Close()
}

// ReadJSONL reads every row of a JSON-lines file. Blank lines are skipped; a bad line
// is an error naming the file and line. A missing file is an error wrapping os.ErrNotExist.
func ReadJSONL[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	var rows []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var r T
		if err := json.Unmarshal(b, &r); err != nil {
			return rows, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("%s:%d: %w", path, line+1, err)
	}
	return rows, nil
}

// TruncateJSONLAfterStep rewrites a JSONL file keeping only rows whose step is <= step,
// so a resumed run does not log the steps it repeats twice. keep reports a row's step.
func TruncateJSONLAfterStep[T any](path string, step int, stepOf func(T) int) error {
	rows, err := ReadJSONL[T](path)
	if os.IsNotExist(unwrapAll(err)) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept []T
	for _, r := range rows {
		if stepOf(r) <= step {
			kept = append(kept, r)
		}
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if len(kept) > 0 {
		if err := AppendJSONL(tmp, kept...); err != nil {
			return err
		}
	} else if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	return nil
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}

// WriteJSON writes v as indented JSON atomically (temp file + rename).
func WriteJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadJSON reads a JSON file into v, naming the file in any error.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
