package store_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

// TestCluster starts a real three-master Redis Cluster on loopback and runs
// the behaviour suite against it in cluster mode: this is what shows that
// no operation sends a cross-slot MULTI or multi-key command, and that
// ListAll reaches every master.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three redis-server processes")
	}
	addrs := startCluster(t)
	open := func(t testing.TB) *store.Store {
		return openCfg(t, store.RedisConfig{Mode: store.ModeCluster, Addrs: addrs, KeyPrefix: uniquePrefix()})
	}
	runSuite(t, open, true)

	// The suite's keys really were spread over the masters (else the test
	// above would not have exercised cross-slot pipelines).
	t.Run("keys_spread", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		for i := range 20 {
			_, _, err := s.Create(context.Background(), user("spread-"+itoa(i), "u"), store.SessionMeta{})
			mustf(t, err, "create")
		}
		var used atomic.Int32
		cc := st.Client().(*redis.ClusterClient)
		err := cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
			keys, _, err := c.Scan(ctx, 0, st.Key("*"), 1000).Result()
			if len(keys) > 0 {
				used.Add(1) // callbacks run concurrently
			}
			return err
		})
		mustf(t, err, "scan")
		if used.Load() < 2 {
			t.Fatalf("keys on %d masters, want at least 2", used.Load())
		}
	})
}
