package store_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// samlBackends runs fn against real Redis (REDIS_ADDR) and the embedded one.
func samlBackends(t *testing.T, fn func(t *testing.T, st *store.Store, real bool)) {
	t.Run("redis", func(t *testing.T) {
		testenv.Require(t, "REDIS_ADDR")
		fn(t, openReal(t), true)
	})
	t.Run("embedded", func(t *testing.T) {
		st, stop, err := store.OpenEmbedded(context.Background(), testLogger(t))
		mustf(t, err, "open embedded")
		t.Cleanup(stop)
		fn(t, st, false)
	})
}

func TestSAMLReplay(t *testing.T) {
	samlBackends(t, func(t *testing.T, st *store.Store, real bool) {
		ctx := context.Background()
		r := store.NewSAMLReplay(st)
		first, err := r.Seen(ctx, "abc", time.Minute)
		mustf(t, err, "seen")
		if !first {
			t.Fatal("first use reported as a replay")
		}
		again, err := r.Seen(ctx, "abc", time.Minute)
		mustf(t, err, "seen again")
		if again {
			t.Fatal("replay reported as first use")
		}
		if first, _ := r.Seen(ctx, "abd", time.Minute); !first {
			t.Fatal("another id reported as a replay")
		}
		ttl, err := st.Client().TTL(ctx, st.Key("saml:req:abc")).Result()
		mustf(t, err, "ttl")
		if ttl <= 0 || ttl > time.Minute {
			t.Fatalf("ttl %v, want (0, 1m]", ttl)
		}
		for _, bad := range []string{"", strings.Repeat("x", 257)} {
			if _, err := r.Seen(ctx, bad, time.Minute); err == nil {
				t.Errorf("id of %d bytes accepted", len(bad))
			}
		}
		if _, err := r.Seen(ctx, "x", time.Millisecond); err == nil {
			t.Error("sub-second ttl accepted")
		}

		// Many concurrent uses of one id: exactly one is first.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, err := r.Seen(ctx, "race", time.Minute)
				if err != nil {
					t.Error(err)
				}
				if first {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d first uses of one id, want 1", wins.Load())
		}
		if real {
			if first, _ := r.Seen(ctx, "short", time.Second); !first {
				t.Fatal("short: not first")
			}
			time.Sleep(1100 * time.Millisecond)
			if first, _ := r.Seen(ctx, "short", time.Second); !first {
				t.Fatal("an id is remembered past its ttl")
			}
		}
	})
}

func TestSAMLPending(t *testing.T) {
	samlBackends(t, func(t *testing.T, st *store.Store, real bool) {
		ctx := context.Background()
		p := store.NewSAMLPending(st, nil)
		id, err := p.Put(ctx, []byte("request"), 0)
		mustf(t, err, "put")
		if len(id) != 43 {
			t.Fatalf("id %q: want 43 characters", id)
		}
		ttl, err := st.Client().TTL(ctx, st.Key("saml:pending:"+id)).Result()
		mustf(t, err, "ttl")
		if ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("ttl %v, want 10 minutes", ttl)
		}
		got, err := p.Take(ctx, id)
		mustf(t, err, "take")
		if string(got) != "request" {
			t.Fatalf("took %q", got)
		}
		if _, err := p.Take(ctx, id); err == nil {
			t.Fatal("taken twice")
		} else {
			wantNotFound(t, err, "second take")
		}
		for _, bad := range []string{"", "nope", strings.Repeat("A", 43), "../../x", strings.Repeat("A", 44)} {
			_, err := p.Take(ctx, bad)
			wantNotFound(t, err, "take "+bad)
		}
		if _, err := p.Put(ctx, nil, 0); err == nil {
			t.Error("empty data accepted")
		}
		if _, err := p.Put(ctx, make([]byte, store.MaxSAMLPending+1), 0); err == nil {
			t.Error("oversize data accepted")
		}
		// Concurrent takes of one id: exactly one gets it.
		id, err = p.Put(ctx, []byte("once"), time.Minute)
		mustf(t, err, "put")
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.Take(ctx, id); err == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d takes succeeded, want 1", wins.Load())
		}
		if real {
			id, err := p.Put(ctx, []byte("brief"), time.Second)
			mustf(t, err, "put")
			time.Sleep(1100 * time.Millisecond)
			_, err = p.Take(ctx, id)
			wantNotFound(t, err, "take after ttl")
		}
	})
}

// A Redis that does not answer is ErrUnavailable for both stores, never a
// "first use" or "not found".
func TestSAMLStoresOutage(t *testing.T) {
	srv := startRedis(t, freePort(t, false))
	st, err := store.Open(context.Background(), outageConfig(srv.addr()), testLogger(t))
	mustf(t, err, "open")
	defer st.Close()
	srv.stop()
	ctx := context.Background()
	wantUnavailable(t, "replay", func() error {
		_, err := store.NewSAMLReplay(st).Seen(ctx, "x", time.Minute)
		return err
	})
	wantUnavailable(t, "pending put", func() error {
		_, err := store.NewSAMLPending(st, nil).Put(ctx, []byte("x"), time.Minute)
		return err
	})
	wantUnavailable(t, "pending take", func() error {
		_, err := store.NewSAMLPending(st, nil).Take(ctx, strings.Repeat("A", 43))
		return err
	})
}
