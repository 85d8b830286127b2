package store_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

// outageTimeout: the dial, read and write timeouts of outageConfig. How
// long an operation takes to fail with them (about one to three of these,
// with retries' backoff) is measured by BenchmarkOutage, not asserted by
// the tests: a wall-clock budget fails on a loaded machine.
const outageTimeout = 300 * time.Millisecond

func outageConfig(addr string) store.RedisConfig {
	return store.RedisConfig{
		Addrs: []string{addr}, KeyPrefix: uniquePrefix(),
		DialTimeout: outageTimeout, ReadTimeout: outageTimeout, WriteTimeout: outageTimeout,
	}
}

// wantUnavailable runs op and checks that it fails with ErrUnavailable
// (never ErrNotFound, which would read as "signed out"); the time it took
// is logged, not asserted (BenchmarkOutage measures it).
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
	t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
}

// TestOutage starts its own redis-server, kills it, checks that every
// operation fails with ErrUnavailable (how fast: BenchmarkOutage), restarts it on the same
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
	t.Logf("burst of 64 Gets failed in %v", time.Since(start).Round(time.Millisecond))

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

// silentServer listens on loopback, accepts connections, holds them open
// and never says anything; all is closed at the end of the test.
func silentServer(t testing.TB) string {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(func() {
		_ = silent.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return silent.Addr().String()
}

// TestOpenFailures: Open on a refused port and on a server that accepts
// but never answers both fail with ErrUnavailable (how fast:
// BenchmarkOutage/Open_*).
func TestOpenFailures(t *testing.T) {
	ctx := context.Background()
	refused := freePort(t, false)
	for name, addr := range map[string]string{
		"refused": net.JoinHostPort("127.0.0.1", itoa(refused)),
		"silent":  silentServer(t),
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

// BenchmarkOutage: how long an operation takes to fail with ErrUnavailable
// when Redis is gone, with the 300 ms timeouts of outageConfig: a session
// Get and an audit Record (which swallows the error) against a killed
// redis-server, and Open against a refused port and against a server that
// accepts but never answers. TestOutage, TestAuditOutage and
// TestOpenFailures check that these fail, and how; the time is measured
// here (docs/benchmarks.md, "Timing of failures").
//
//	go test -run '^$' -bench Outage -benchtime 5x ./internal/store/
func BenchmarkOutage(b *testing.B) {
	ctx := context.Background()
	srv := startRedis(b, freePort(b, false))
	// not openCfg: its clean-up would delete keys on the killed server
	st, err := store.Open(ctx, outageConfig(srv.addr()), nil)
	mustf(b, err, "open")
	b.Cleanup(func() { _ = st.Close() })
	sessions := newSessions(b, st, newClock())
	token, _, err := sessions.Create(ctx, user("u-1", "alice"), store.SessionMeta{})
	mustf(b, err, "create")
	stream := store.NewAuditStream(st, 0)
	srv.kill()

	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := sessions.Get(ctx, token); !errors.Is(err, store.ErrUnavailable) {
				b.Fatalf("Get: %v, want ErrUnavailable", err)
			}
		}
	})
	b.Run("AuditRecord", func(b *testing.B) {
		for b.Loop() {
			stream.Record(ctx, audit.Event{Actor: "alice", Action: "rule.update", Object: "grant-7", Result: "success"})
		}
	})
	for name, addr := range map[string]string{
		"Open_refused": net.JoinHostPort("127.0.0.1", itoa(freePort(b, false))),
		"Open_silent":  silentServer(b),
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				st, err := store.Open(ctx, outageConfig(addr), nil)
				if err == nil {
					_ = st.Close()
				}
				if !errors.Is(err, store.ErrUnavailable) {
					b.Fatalf("Open: %v, want ErrUnavailable", err)
				}
			}
		})
	}
}
