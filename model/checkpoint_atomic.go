package model

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomic writes a file so that a reader (or a crash) sees either the old complete file or the
// new complete one, never a mix: write a temporary file in the same directory, flush it to disk, rename
// it over the target (rename is atomic within a directory on POSIX), then sync the directory so the
// rename itself survives a power loss.
func writeFileAtomic(path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating directory for %s: %w", path, err)
	}
	temporary, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = temporary.Close()
			_ = os.Remove(temporary.Name())
		}
	}()
	buffered := bufio.NewWriterSize(temporary, 1<<20)
	if err := write(buffered); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := buffered.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := temporary.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := temporary.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err := os.Chmod(temporary.Name(), 0o644); err != nil {
		return fmt.Errorf("setting permissions of %s: %w", path, err)
	}
	if err := os.Rename(temporary.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir flushes a directory's entries (renames, removals) to disk. Some file systems refuse to fsync
// a directory; that only weakens durability after a power loss, so it is not an error.
func syncDir(dir string) error {
	handle, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer handle.Close()
	_ = handle.Sync()
	return nil
}
