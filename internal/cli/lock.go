package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Lock takes the exclusive file lock CacheDir/name.lock (flock(2) on Unix,
// LockFileEx on Windows), waiting until it is free or ctx ends. Processes
// and goroutines of one process both exclude each other: every call opens
// its own file descriptor. unlock releases it.
func (a *App) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := ensureDir(a.CacheDir); err != nil {
		return nil, err
	}
	fl := flock.New(filepath.Join(a.CacheDir, name+".lock"), flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: %w", name, ctx.Err())
	}
	return func() { _ = fl.Unlock() }, nil
}
