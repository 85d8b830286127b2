package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

func TestDeviceLimitConfig(t *testing.T) {
	var c store.DeviceLimitConfig
	c.SetDefaults()
	if c.MaxPerSession != 5 || c.MaxPerIP != 20 || c.Window != 10*time.Minute {
		t.Fatalf("defaults %+v", c)
	}
	mustf(t, c.Validate(), "defaults invalid")
	bad := store.DeviceLimitConfig{MaxPerSession: -1, MaxPerIP: 0, Window: time.Millisecond}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"max_wrong_per_session", "max_wrong_per_ip", "window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	st, stop, err := store.OpenEmbedded(context.Background(), testLogger(t))
	mustf(t, err, "open embedded")
	defer stop()
	if _, err := store.NewDeviceLimiter(st, bad, nil); err == nil {
		t.Fatal("NewDeviceLimiter took a bad config")
	}
}

func TestDeviceLimiter(t *testing.T) {
	samlBackends(t, func(t *testing.T, st *store.Store, real bool) {
		ctx := context.Background()
		clk := newClock()
		// Align the clock on a window start, so the window arithmetic is exact.
		clk.t = clk.t.Truncate(time.Minute)
		l, err := store.NewDeviceLimiter(st, store.DeviceLimitConfig{MaxPerSession: 3, MaxPerIP: 5, Window: time.Minute}, clk.Now)
		mustf(t, err, "new")
		sessA, sessB, sessC := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
		check := func(sess, ip string, want bool) store.Decision {
			t.Helper()
			d, err := l.Check(ctx, sess, ip)
			mustf(t, err, "check")
			if d.Allowed != want {
				t.Fatalf("Check(%s…, %s) allowed=%v, want %v", sess[:1], ip, d.Allowed, want)
			}
			if !want && (d.RetryAfter <= 0 || d.RetryAfter > time.Minute) {
				t.Fatalf("RetryAfter %v not in (0, 1m]", d.RetryAfter)
			}
			return d
		}
		fail := func(sess, ip string) {
			t.Helper()
			mustf(t, l.Fail(ctx, sess, ip), "fail")
		}

		// Per session: 3 wrong codes, then refused from any IP.
		for range 3 {
			check(sessA, "192.0.2.1", true)
			fail(sessA, "192.0.2.1")
		}
		check(sessA, "192.0.2.1", false)
		check(sessA, "198.51.100.7", false)
		// Another session at the same IP still may (IP count 3 of 5).
		check(sessB, "192.0.2.1", true)
		fail(sessB, "192.0.2.1")
		fail(sessB, "192.0.2.1")
		// Per IP: 5 reached; a fresh session at that IP is refused, elsewhere allowed.
		check(sessC, "192.0.2.1", false)
		check(sessC, "192.0.2.2", true)
		// IPv6: one /64 shares a counter.
		for range 5 {
			fail(sessC+"x", "2001:db8::1")
		}
		check(strings.Repeat("d", 64), "2001:db8::ffff", false)
		check(strings.Repeat("d", 64), "2001:db8:0:1::1", true)

		// The window's end frees everyone.
		clk.Add(time.Minute)
		check(sessA, "192.0.2.1", true)
		check(sessC, "192.0.2.1", true)

		// Keys expire with the window and hold no typed code.
		keys, err := st.Client().Keys(ctx, st.Key("limit:device:*")).Result()
		mustf(t, err, "keys")
		if len(keys) == 0 {
			t.Fatal("no counter keys")
		}
		for _, k := range keys {
			ttl, err := st.Client().PTTL(ctx, k).Result()
			mustf(t, err, "pttl")
			if ttl <= 0 || ttl > time.Minute {
				t.Errorf("key %s ttl %v, want (0, 1m]", k, ttl)
			}
		}

		// Bad session keys are errors, not counters.
		for _, bad := range []string{"", strings.Repeat("x", 129)} {
			if _, err := l.Check(ctx, bad, "192.0.2.1"); err == nil {
				t.Errorf("Check took a session key of %d bytes", len(bad))
			}
			if err := l.Fail(ctx, bad, "192.0.2.1"); err == nil {
				t.Errorf("Fail took a session key of %d bytes", len(bad))
			}
		}
	})
}

// A Redis that does not answer is ErrUnavailable, never "allowed".
func TestDeviceLimiterOutage(t *testing.T) {
	srv := startRedis(t, freePort(t, false))
	st, err := store.Open(context.Background(), outageConfig(srv.addr()), testLogger(t))
	mustf(t, err, "open")
	defer st.Close()
	l, err := store.NewDeviceLimiter(st, store.DeviceLimitConfig{MaxPerSession: 1, MaxPerIP: 1, Window: time.Minute}, nil)
	mustf(t, err, "new")
	srv.stop()
	ctx := context.Background()
	sess := strings.Repeat("a", 64)
	wantUnavailable(t, "check", func() error {
		_, err := l.Check(ctx, sess, "192.0.2.1")
		return err
	})
	wantUnavailable(t, "fail", func() error { return l.Fail(ctx, sess, "192.0.2.1") })
}
