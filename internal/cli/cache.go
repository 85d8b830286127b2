package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ensureDir creates dir (and parents) with mode 0700 and tightens an
// existing dir to 0700, so that tokens are readable by the user only.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("cache: no directory (set WARDEN_CACHE_DIR)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory and a rename, so that a reader sees the old
// content or the new, never a part. The directory is created 0700.
func WriteFileAtomic(path string, data []byte) error {
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := writeFileReplace(path, data); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// writeJSON is WriteFileAtomic of v as JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// readJSON reads path into v. A missing file is (false, nil); a file that
// does not parse is treated as missing too (a cache is never authoritative).
func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache: %w", err)
	}
	if json.Unmarshal(b, v) != nil {
		return false, nil
	}
	return true, nil
}
