package store_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

const (
	outageTimeout = 300 * time.Millisecond
	// opBudget: an operation may dial, write and read once each within the
	// timeouts; allow one second more for retries' backoff and -race.
	opBudget = 3*outageTimeout + time.Second
)

func outageConfig(addr string) store.RedisConfig {
	return store.RedisConfig{
		Addrs: []string{addr}, KeyPrefix: uniquePrefix(),
		DialTimeout: outageTimeout, ReadTimeout: outageTimeout, WriteTimeout: outageTimeout,
	}
}

// wantUnavailable runs op and checks that it fails with ErrUnavailable
// (never ErrNotFound, which would read as "signed out") within opBudget.
func wantUnavailable(t *testing.T, name string, op func() error) {
	t.Helper()
	start := time.Now()
	err := op()
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("%s: got %v, want ErrUnavailable", name, err)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: an outage must not read as ErrNotFound: %v", name, err)
	}
	if took > opBudget {
		t.Errorf("%s took %v, want under %v", name, took, opBudget)
	}
	t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
}

// TestOutage starts its own redis-server, kills it, checks that every
// operation fails promptly with ErrUnavailable, restarts it on the same
// port and checks that the same Store works again without being rebuilt.
func TestOutage(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t, freePort(t, false))
	st := openCfg(t, outageConfig(srv.addr()))
	clk := newClock()
	sessions := newSessions(t, st, clk)
	limiter, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 5, MaxFailuresPerIP: 50, Window: time.Minute}, clk.Now)
	mustf(t, err, "limiter")

	token, _, err := sessions.Create(ctx, user("u-1", "alice"), store.SessionMeta{})
	mustf(t, err, "create")
	_, err = sessions.Get(ctx, token)
	mustf(t, err, "get")

	srv.kill()

	wantUnavailable(t, "Get", func() error { _, err := sessions.Get(ctx, token); return err })
	wantUnavailable(t, "Create", func() error { _, _, err := sessions.Create(ctx, user("u-1", "alice"), store.SessionMeta{}); return err })
	wantUnavailable(t, "Delete", func() error { return sessions.Delete(ctx, token) })
	wantUnavailable(t, "ListUser", func() error { _, err := sessions.ListUser(ctx, "u-1"); return err })
	wantUnavailable(t, "RevokeUser", func() error { _, err := sessions.RevokeUser(ctx, "u-1"); return err })
	wantUnavailable(t, "Check", func() error { _, err := limiter.Check(ctx, "alice", "192.0.2.1"); return err })
	wantUnavailable(t, "Fail", func() error { return limiter.Fail(ctx, "alice", "192.0.2.1") })
	wantUnavailable(t, "Succeed", func() error { return limiter.Succeed(ctx, "alice") })
	wantUnavailable(t, "SharedSecret", func() error { _, err := st.SharedSecret(ctx, "csrf", 32); return err })
	wantUnavailable(t, "Ping", func() error { return st.Ping(ctx) })

	// A burst of concurrent requests during the outage: enough dial
	// failures to trip go-redis's pool into fast-fail mode, which the
	// recovery below must get out of.
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := sessions.Get(ctx, token); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("burst Get: %v", err)
			}
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 2*opBudget {
		t.Errorf("burst of 64 Gets took %v", took)
	}

	srv.start() // same port, empty (no persistence)

	deadline := time.Now().Add(15 * time.Second)
	for st.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not recover within 15s of the restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("recovered %v after restart", time.Since(deadline.Add(-15*time.Second)).Round(time.Millisecond))
	// The old session was lost with the server's memory: not found, not
	// unavailable.
	_, err = sessions.Get(ctx, token)
	wantNotFound(t, err, "old session after restart")
	token2, _, err := sessions.Create(ctx, user("u-1", "alice"), store.SessionMeta{})
	mustf(t, err, "create after restart")
	_, err = sessions.Get(ctx, token2)
	mustf(t, err, "get after restart")
	_, err = limiter.Check(ctx, "alice", "192.0.2.1")
	mustf(t, err, "check after restart")
	mustf(t, limiter.Fail(ctx, "alice", "192.0.2.1"), "fail after restart")
}

// TestOpenFailures: Open on a refused port and on a server that accepts
// but never answers both fail promptly with ErrUnavailable.
func TestOpenFailures(t *testing.T) {
	ctx := context.Background()
	refused := freePort(t, false)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for name, addr := range map[string]string{
		"refused": net.JoinHostPort("127.0.0.1", itoa(refused)),
		"silent":  silent.Addr().String(),
	} {
		t.Run(name, func(t *testing.T) {
			wantUnavailable(t, "Open", func() error {
				st, err := store.Open(ctx, outageConfig(addr), testLogger(t))
				if err == nil {
					_ = st.Close()
				}
				return err
			})
		})
	}
	t.Run("invalid_config", func(t *testing.T) {
		_, err := store.Open(ctx, store.RedisConfig{Mode: "ring"}, nil)
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("got %v, want a config error", err)
		}
	})
}
