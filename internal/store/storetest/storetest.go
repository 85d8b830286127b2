// Package storetest opens a store.Store for tests of other packages: the
// real Redis at REDIS_ADDR (under a key prefix of its own) when it is set,
// else the embedded one — except under CI=true, where a missing REDIS_ADDR
// fails the test. It is for tests whose subject is not Redis itself (the
// store package's own suite runs against real Redis, Cluster and Sentinel).
package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// Open returns a store that is closed when the test ends; name goes into
// the key prefix.
func Open(t testing.TB, name string) *store.Store {
	t.Helper()
	ctx := context.Background()
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		st, err := store.Open(ctx, store.RedisConfig{Addrs: []string{addr}, Password: os.Getenv("REDIS_PASSWORD"),
			KeyPrefix: fmt.Sprintf("%s:%d:", name, rand.Uint64())}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	if os.Getenv("CI") == "true" {
		testenv.Require(t, "REDIS_ADDR")
	}
	st, stop, err := store.OpenEmbedded(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return st
}
