package store_test

import (
	"context"
	"testing"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestRedis runs the behaviour suite against the redis-server at REDIS_ADDR.
func TestRedis(t *testing.T) {
	testenv.Require(t, "REDIS_ADDR")
	runSuite(t, openReal, true)
}

// TestEmbedded runs the same suite against the dev-mode miniredis. It shows
// that dev mode works; it proves nothing about real Redis.
func TestEmbedded(t *testing.T) {
	open := func(t testing.TB) *store.Store {
		st, stop, err := store.OpenEmbedded(context.Background(), testLogger(t))
		if err != nil {
			t.Fatalf("open embedded: %v", err)
		}
		t.Cleanup(stop)
		return st
	}
	runSuite(t, open, true)
	t.Run("cleanup_stops_it", func(t *testing.T) {
		st, stop, err := store.OpenEmbedded(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		stop()
		stop() // idempotent
		if err := st.Ping(context.Background()); err == nil {
			t.Fatal("store answers after cleanup")
		}
	})
}
