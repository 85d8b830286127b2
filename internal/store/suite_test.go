package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// The behaviour suite: every backend (real redis-server standalone, a real
// Redis Cluster, the embedded miniredis) runs all of it. open returns a
// Store with a key prefix of its own.
type opener func(t testing.TB) *store.Store

func runSuite(t *testing.T, open opener, realTTL bool) {
	t.Run("sessions", func(t *testing.T) { sessionSuite(t, open) })
	t.Run("session_index", func(t *testing.T) { sessionIndexSuite(t, open, realTTL) })
	t.Run("session_cap", func(t *testing.T) { sessionCapSuite(t, open) })
	t.Run("session_upgrade", func(t *testing.T) { sessionUpgradeSuite(t, open) })
	t.Run("limiter", func(t *testing.T) { limiterSuite(t, open, realTTL) })
	t.Run("shared_secret", func(t *testing.T) { secretSuite(t, open) })
}

var sessCfg = store.SessionConfig{AbsoluteLifetime: 2 * time.Hour, IdleTimeout: time.Hour}

func newSessions(t testing.TB, st *store.Store, clk *fakeClock) *store.Sessions {
	t.Helper()
	s, err := store.NewSessions(st, sessCfg, clk.Now, nil)
	mustf(t, err, "new sessions")
	return s
}

func wantNotFound(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: got %v, want ErrNotFound", what, err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("%s: ErrNotFound must not be ErrUnavailable: %v", what, err)
	}
}

func sessionSuite(t *testing.T, open opener) {
	ctx := context.Background()
	alice := identity.User{ID: "11111111-aaaa", Username: "alice", DisplayName: "Alice Anderson",
		Groups: []identity.Group{{DN: "cn=admins,dc=example,dc=org", Name: "admins", Direct: true}}}
	bob := user("22222222-bbbb", "bob")

	t.Run("create_get_delete", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		token, sess, err := s.Create(ctx, alice, store.SessionMeta{ClientIP: "192.0.2.7", UserAgent: "test-agent"})
		mustf(t, err, "create")

		// Token: 32 random bytes, unpadded base64url.
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(raw) != 32 || len(token) != 43 {
			t.Fatalf("token %q: want 43 chars of base64url for 32 bytes (err %v)", token, err)
		}
		// Redis key: prefix + "sess:" + hex of the first 16 bytes of
		// SHA-256(token), computed here independently; the token itself
		// appears nowhere in Redis.
		sum := sha256.Sum256([]byte(token))
		wantKey := hex.EncodeToString(sum[:16])
		if sess.Key != wantKey {
			t.Fatalf("session key %s, want %s", sess.Key, wantKey)
		}
		val, err := st.Client().Get(ctx, st.Key("sess:"+wantKey)).Bytes()
		mustf(t, err, "read session key")
		if bytes.Contains(val, []byte(token)) {
			t.Fatal("stored session contains the token")
		}
		for _, k := range allKeys(t, st) {
			if strings.Contains(k, token) {
				t.Fatalf("key %q contains the token", k)
			}
		}
		stored, err := store.DecodeStoredSession(val, wantKey)
		mustf(t, err, "decode stored session")
		if stored.User.Username != "alice" || stored.ClientIP != "192.0.2.7" || stored.UserAgent != "test-agent" ||
			!stored.ExpiresAt.Equal(clk.Now().Add(2*time.Hour)) {
			t.Fatalf("stored session %+v", stored)
		}
		// TTL: min(idle, absolute) = 1h; the user index lives as long as the
		// absolute lifetime.
		ttl := st.Client().PTTL(ctx, st.Key("sess:"+wantKey)).Val()
		if ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("session TTL %v, want about 1h", ttl)
		}
		ittl := st.Client().PTTL(ctx, userIndexKey(st, alice.ID)).Val()
		if ittl <= 119*time.Minute || ittl > 2*time.Hour {
			t.Fatalf("index TTL %v, want about 2h", ittl)
		}

		got, err := s.Get(ctx, token)
		mustf(t, err, "get")
		if got.User.ID != alice.ID || len(got.User.Groups) != 1 || got.User.Groups[0].Name != "admins" || got.Key != wantKey {
			t.Fatalf("get: %+v", got)
		}

		mustf(t, s.Delete(ctx, token), "delete")
		_, err = s.Get(ctx, token)
		wantNotFound(t, err, "get after delete")
		if n := st.Client().ZCard(ctx, userIndexKey(st, alice.ID)).Val(); n != 0 {
			t.Fatalf("index still has %d members after delete", n)
		}
		mustf(t, s.Delete(ctx, token), "second delete must be a no-op")
	})

	t.Run("token_shape_rejected_without_redis", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		token, _, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		hook := &countingHook{}
		st.Client().AddHook(hook)
		bad := map[string]string{
			"empty":            "",
			"short":            token[:42],
			"long":             token + "A",
			"padded":           token + "=",
			"std_alphabet":     "+" + token[1:],
			"slash":            "/" + token[1:],
			"space":            " " + token[1:],
			"nul":              "\x00" + token[1:],
			"non_ascii":        "é" + token[2:],
			"noncanonical_end": "",
			"hex_key":          strings.Repeat("a", 64),
		}
		for name, tok := range bad {
			if name == "noncanonical_end" {
				// The last of 43 base64 chars carries 2 unused bits; a
				// different char with the same 6 bits' top 4 is not canonical.
				b := []byte(token)
				b[42] = canonicalTwin(b[42])
				tok = string(b)
			}
			_, err := s.Get(ctx, tok)
			wantNotFound(t, err, "get "+name)
		}
		if n := hook.count(); n != 0 {
			t.Fatalf("malformed tokens sent %d commands to Redis, want 0", n)
		}
		// The valid token still works, and does reach Redis.
		_, err = s.Get(ctx, token)
		mustf(t, err, "get valid")
		if hook.count() == 0 {
			t.Fatal("hook saw no command: the check above proves nothing")
		}
	})

	t.Run("absolute_lifetime", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		token, sess, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		key := st.Key("sess:" + sess.Key)
		// Used every 50 minutes, it never idles out, but ends at 2h.
		for _, step := range []time.Duration{50 * time.Minute, 50 * time.Minute, 19 * time.Minute} {
			clk.Add(step)
			_, err := s.Get(ctx, token)
			mustf(t, err, "get at %v", clk.Now().Sub(sess.CreatedAt))
		}
		// After the refresh at 100m, the TTL is capped by the absolute end:
		// at most 20m (refreshed at 100m; no write at 119m? it is > 1m old,
		// so it was refreshed at 119m: at most 1m left).
		if ttl := st.Client().PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
			t.Fatalf("TTL near the absolute end = %v, want (0, 1m]", ttl)
		}
		clk.Add(time.Minute) // exactly 2h
		_, err = s.Get(ctx, token)
		wantNotFound(t, err, "get at the absolute end")
		if n := st.Client().Exists(ctx, key).Val(); n != 0 {
			t.Fatal("ended session still in Redis")
		}
		if inUserIndex(t, st, alice.ID, sess.Key) {
			t.Fatal("ended session still in the user index")
		}
	})

	t.Run("idle_timeout_and_refresh", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		// A long absolute lifetime, so that only the idle timeout can end it.
		s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 12 * time.Hour, IdleTimeout: time.Hour}, clk.Now, nil)
		mustf(t, err, "new sessions")
		var token string
		var sess store.Session
		token, sess, err = s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		t0 := clk.Now()

		// Within a minute of the last recorded use: no write-back.
		clk.Add(30 * time.Second)
		got, err := s.Get(ctx, token)
		mustf(t, err, "get at 30s")
		if !got.LastSeen.Equal(t0) || !storedLastSeen(t, st, sess.Key).Equal(t0) {
			t.Fatalf("LastSeen moved within the refresh interval: %v", got.LastSeen)
		}
		// Past a minute: LastSeen (and TTL) written back.
		clk.Add(31 * time.Second)
		got, err = s.Get(ctx, token)
		mustf(t, err, "get at 61s")
		if !got.LastSeen.Equal(clk.Now()) || !storedLastSeen(t, st, sess.Key).Equal(clk.Now()) {
			t.Fatalf("LastSeen not refreshed: %v", got.LastSeen)
		}
		// 59 minutes unused: still alive. Then a full hour unused: ended.
		clk.Add(59 * time.Minute)
		_, err = s.Get(ctx, token)
		mustf(t, err, "get after 59m idle")
		clk.Add(time.Hour)
		_, err = s.Get(ctx, token)
		wantNotFound(t, err, "get after 1h idle")
	})

	t.Run("revoke_user", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		var aliceTokens []string
		for range 3 {
			tok, _, err := s.Create(ctx, alice, store.SessionMeta{})
			mustf(t, err, "create")
			aliceTokens = append(aliceTokens, tok)
		}
		bobToken, _, err := s.Create(ctx, bob, store.SessionMeta{})
		mustf(t, err, "create bob")
		n, err := s.RevokeUser(ctx, alice.ID)
		mustf(t, err, "revoke")
		if n != 3 {
			t.Fatalf("revoked %d, want 3", n)
		}
		for _, tok := range aliceTokens {
			_, err := s.Get(ctx, tok)
			wantNotFound(t, err, "alice after revoke")
		}
		_, err = s.Get(ctx, bobToken)
		mustf(t, err, "bob after revoking alice")
		if n, err := s.RevokeUser(ctx, alice.ID); err != nil || n != 0 {
			t.Fatalf("second revoke: %d, %v", n, err)
		}
	})

	t.Run("list_user_prunes", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		_, s1, err := s.Create(ctx, alice, store.SessionMeta{UserAgent: "first"})
		mustf(t, err, "create")
		clk.Add(time.Second)
		_, s2, err := s.Create(ctx, alice, store.SessionMeta{UserAgent: "second"})
		mustf(t, err, "create")
		clk.Add(time.Second)
		_, s3, err := s.Create(ctx, alice, store.SessionMeta{UserAgent: "third"})
		mustf(t, err, "create")
		// s2 vanishes as if its TTL had run out.
		mustf(t, st.Client().Del(ctx, st.Key("sess:"+s2.Key)).Err(), "del")
		list, err := s.ListUser(ctx, alice.ID)
		mustf(t, err, "list")
		if len(list) != 2 || list[0].Key != s1.Key || list[1].Key != s3.Key {
			t.Fatalf("list: %+v", keysOf(list))
		}
		idx := userIndexKey(st, alice.ID)
		if inUserIndex(t, st, alice.ID, s2.Key) {
			t.Fatal("dead session not pruned from the index")
		}
		// Sessions ended by the clock are pruned too (all idle now).
		clk.Add(time.Hour)
		list, err = s.ListUser(ctx, alice.ID)
		mustf(t, err, "list")
		if len(list) != 0 || st.Client().ZCard(ctx, idx).Val() != 0 {
			t.Fatalf("idle sessions listed: %v", keysOf(list))
		}
	})

	t.Run("delete_by_key", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		tok, sess, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		mustf(t, s.DeleteByKey(ctx, sess.Key), "delete by key")
		_, err = s.Get(ctx, tok)
		wantNotFound(t, err, "get after admin revoke")
		wantNotFound(t, s.DeleteByKey(ctx, sess.Key), "delete by key twice")
		wantNotFound(t, s.DeleteByKey(ctx, "not-a-key"), "delete by malformed key")
		wantNotFound(t, s.DeleteByKey(ctx, strings.ToUpper(sess.Key)), "delete by upper-case key")
	})

	t.Run("list_all", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		want := map[string]bool{}
		for i := range 25 {
			u := user(fmt.Sprintf("user-%d", i%5), fmt.Sprintf("u%d", i%5))
			_, sess, err := s.Create(ctx, u, store.SessionMeta{})
			mustf(t, err, "create")
			want[sess.Key] = true
		}
		got := map[string]bool{}
		cursor, pages := uint64(0), 0
		for {
			page, next, err := s.ListAll(ctx, cursor, 7)
			mustf(t, err, "list all")
			for _, p := range page {
				if got[p.Key] {
					t.Fatalf("session %s listed twice", p.Key)
				}
				got[p.Key] = true
			}
			pages++
			if cursor = next; cursor == 0 || pages > 5 { // ceil(25/7) pages of the index
				break
			}
		}
		if len(got) != len(want) {
			t.Fatalf("listed %d sessions, want %d", len(got), len(want))
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("session %s not listed", k)
			}
		}
	})

	t.Run("create_rejects", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		if _, _, err := s.Create(ctx, identity.User{Username: "noid"}, store.SessionMeta{}); err == nil {
			t.Fatal("created a session for a user without ID")
		}
		// A random source that repeats itself: SET NX refuses the second.
		// (The clock moves: a byte-identical value would read as go-redis
		// retrying our own write, which Create accepts.)
		clk := newClock()
		rep, err := store.NewSessions(st, sessCfg, clk.Now, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
		mustf(t, err, "new sessions")
		_, _, err = rep.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "first create")
		clk.Add(time.Second)
		if _, _, err := rep.Create(ctx, alice, store.SessionMeta{}); err == nil {
			t.Fatal("second session with the same token was accepted")
		}
		// Exhausted random source.
		if _, _, err := rep.Create(ctx, alice, store.SessionMeta{}); err == nil {
			t.Fatal("created a session without randomness")
		}
	})
}

// canonicalTwin returns a base64url character that differs from c only in
// the two lowest of its six bits, which the 43rd character of a 32-byte
// token does not use: decoders that are not strict accept it.
func canonicalTwin(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

func storedLastSeen(t testing.TB, st *store.Store, key string) time.Time {
	t.Helper()
	val, err := st.Client().Get(context.Background(), st.Key("sess:"+key)).Bytes()
	mustf(t, err, "read session")
	s, err := store.DecodeStoredSession(val, key)
	mustf(t, err, "decode")
	return s.LastSeen
}

func keysOf(ss []store.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Key[:8]+"/"+s.UserAgent)
	}
	return out
}

func limiterSuite(t *testing.T, open opener, realTTL bool) {
	ctx := context.Background()
	cfg := store.LimitConfig{MaxFailuresPerUser: 3, MaxFailuresPerIP: 1000, Window: 15 * time.Minute}

	t.Run("unknown_equals_known", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		l, err := store.NewLimiter(st, cfg, clk.Now)
		mustf(t, err, "new limiter")
		// alice exists in every seed directory; nobody-xyz in none. The
		// limiter never asks, so both must read exactly alike.
		for i := range 5 {
			da, err := l.Check(ctx, "alice", "192.0.2.1")
			mustf(t, err, "check alice")
			dn, err := l.Check(ctx, "nobody-xyz", "192.0.2.2")
			mustf(t, err, "check nobody")
			if da.Allowed != dn.Allowed || (da.RetryAfter > 0) != (dn.RetryAfter > 0) {
				t.Fatalf("step %d: alice %+v, unknown %+v", i, da, dn)
			}
			if want := i < 3; da.Allowed != want {
				t.Fatalf("step %d: allowed %v, want %v", i, da.Allowed, want)
			}
			mustf(t, l.Fail(ctx, "alice", "192.0.2.1"), "fail")
			mustf(t, l.Fail(ctx, "nobody-xyz", "192.0.2.2"), "fail")
		}
		ua := st.Client().Get(ctx, userKeyOf(st, "alice", clk.Now(), cfg.Window)).Val()
		un := st.Client().Get(ctx, userKeyOf(st, "nobody-xyz", clk.Now(), cfg.Window)).Val()
		if ua != "5" || un != "5" {
			t.Fatalf("counters alice=%q unknown=%q, want 5 and 5", ua, un)
		}
		// No username appears in any key.
		for _, k := range allKeys(t, st) {
			if strings.Contains(k, "alice") || strings.Contains(k, "nobody") {
				t.Fatalf("key %q holds a raw username", k)
			}
		}
	})

	t.Run("retry_after_and_window", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		l, err := store.NewLimiter(st, cfg, clk.Now)
		mustf(t, err, "new limiter")
		// 5 minutes into a 15-minute window.
		clk.Add(5*time.Minute - time.Duration(clk.Now().UnixNano()%int64(cfg.Window)))
		for range 3 {
			mustf(t, l.Fail(ctx, "bob", "192.0.2.1"), "fail")
		}
		d, err := l.Check(ctx, "bob", "192.0.2.1")
		mustf(t, err, "check")
		if d.Allowed || d.RetryAfter <= 9*time.Minute || d.RetryAfter > 10*time.Minute {
			t.Fatalf("decision %+v, want denied with RetryAfter about 10m", d)
		}
		if pttl := st.Client().PTTL(ctx, userKeyOf(st, "bob", clk.Now(), cfg.Window)).Val(); d.RetryAfter-pttl > time.Second || pttl-d.RetryAfter > time.Second {
			t.Fatalf("RetryAfter %v differs from the key's PTTL %v", d.RetryAfter, pttl)
		}
		// A client waits Retry-After in whole seconds (rounded up). The
		// injected clock does not move while real milliseconds pass, so the
		// PTTL is a little short of the clock's window end: hence the ceiling.
		clk.Add((d.RetryAfter + time.Second - 1).Truncate(time.Second))
		d, err = l.Check(ctx, "bob", "192.0.2.1")
		mustf(t, err, "check")
		if !d.Allowed {
			t.Fatalf("still denied in the next window: %+v", d)
		}
	})

	t.Run("normalized_usernames_share_a_counter", func(t *testing.T) {
		st := open(t)
		l, err := store.NewLimiter(st, cfg, newClock().Now)
		mustf(t, err, "new limiter")
		mustf(t, l.Fail(ctx, "Jürgen", "192.0.2.1"), "fail")         // NFC
		mustf(t, l.Fail(ctx, " JU\u0308RGEN ", "192.0.2.2"), "fail") // NFD, upper case, spaces
		mustf(t, l.Fail(ctx, "jürgen", "192.0.2.3"), "fail")
		d, err := l.Check(ctx, "JÜRGEN", "192.0.2.4")
		mustf(t, err, "check")
		if d.Allowed {
			t.Fatal("spellings of one name counted apart")
		}
		d, err = l.Check(ctx, "jurgen", "192.0.2.4")
		mustf(t, err, "check")
		if !d.Allowed {
			t.Fatal("a different name shares the counter")
		}
	})

	t.Run("per_ip", func(t *testing.T) {
		st := open(t)
		ipCfg := store.LimitConfig{MaxFailuresPerUser: 100, MaxFailuresPerIP: 4, Window: time.Hour}
		l, err := store.NewLimiter(st, ipCfg, newClock().Now)
		mustf(t, err, "new limiter")
		for i := range 4 {
			mustf(t, l.Fail(ctx, fmt.Sprintf("spray%d", i), "198.51.100.9"), "fail")
		}
		cases := []struct {
			ip      string
			allowed bool
		}{
			{"198.51.100.9", false},
			{"::ffff:198.51.100.9", false}, // IPv4-mapped: the same client
			{"198.51.100.10", true},
		}
		for _, c := range cases {
			d, err := l.Check(ctx, "fresh-user", c.ip)
			mustf(t, err, "check")
			if d.Allowed != c.allowed {
				t.Fatalf("%s: allowed %v, want %v", c.ip, d.Allowed, c.allowed)
			}
		}
		// IPv6: one /64 is one client.
		for i := range 4 {
			mustf(t, l.Fail(ctx, "v6user", fmt.Sprintf("2001:db8:1:2::%x", i+1)), "fail")
		}
		for ip, allowed := range map[string]bool{"2001:db8:1:2:ffff::1": false, "2001:db8:1:3::1": true} {
			d, err := l.Check(ctx, "other", ip)
			mustf(t, err, "check")
			if d.Allowed != allowed {
				t.Fatalf("%s: allowed %v, want %v", ip, d.Allowed, allowed)
			}
		}
	})

	t.Run("succeed_resets_user_only", func(t *testing.T) {
		st := open(t)
		c := store.LimitConfig{MaxFailuresPerUser: 2, MaxFailuresPerIP: 3, Window: time.Hour}
		l, err := store.NewLimiter(st, c, newClock().Now)
		mustf(t, err, "new limiter")
		mustf(t, l.Fail(ctx, "carol", "192.0.2.50"), "fail")
		mustf(t, l.Fail(ctx, "carol", "192.0.2.50"), "fail")
		if d, _ := l.Check(ctx, "carol", "192.0.2.51"); d.Allowed {
			t.Fatal("carol not limited")
		}
		mustf(t, l.Succeed(ctx, "Carol"), "succeed")
		if d, _ := l.Check(ctx, "carol", "192.0.2.51"); !d.Allowed {
			t.Fatal("carol still limited after success")
		}
		mustf(t, l.Fail(ctx, "dave", "192.0.2.50"), "fail")
		if d, _ := l.Check(ctx, "erin", "192.0.2.50"); d.Allowed {
			t.Fatal("IP counter was reset by a user's success")
		}
	})

	t.Run("real_ttl_window_reset", func(t *testing.T) {
		if !realTTL {
			t.Skip("backend does not expire keys in real time")
		}
		st := open(t)
		c := store.LimitConfig{MaxFailuresPerUser: 2, MaxFailuresPerIP: 100, Window: time.Second}
		l, err := store.NewLimiter(st, c, time.Now)
		mustf(t, err, "new limiter")
		// Start early in a window, so both failures fall in the same one.
		// On a loaded machine the two failures and the check may still
		// straddle a window boundary (the check then rightly allows): that
		// attempt tells nothing and is made again with another user, not
		// counted as a failure.
		var key, who string
		var d store.Decision
		for attempt := 0; ; attempt++ {
			time.Sleep(time.Second - time.Duration(time.Now().UnixNano()%int64(time.Second)) + 10*time.Millisecond)
			who = fmt.Sprintf("frank%d", attempt)
			w0 := time.Now().UnixNano() / int64(c.Window)
			mustf(t, l.Fail(ctx, who, "192.0.2.60"), "fail")
			mustf(t, l.Fail(ctx, who, "192.0.2.60"), "fail")
			key = userKeyOf(st, who, time.Now(), c.Window)
			var err error
			d, err = l.Check(ctx, who, "192.0.2.60")
			mustf(t, err, "check")
			if w1 := time.Now().UnixNano() / int64(c.Window); w1 == w0 || attempt == 4 {
				break
			}
			t.Logf("attempt %d straddled a window boundary; again", attempt)
		}
		if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
			t.Fatalf("decision %+v, want denied with RetryAfter in (0, 1s]", d)
		}
		time.Sleep(d.RetryAfter + 50*time.Millisecond)
		d, err = l.Check(ctx, who, "192.0.2.60")
		mustf(t, err, "check")
		if !d.Allowed {
			t.Fatalf("still denied after the window: %+v", d)
		}
		if n := st.Client().Exists(ctx, key).Val(); n != 0 {
			t.Fatal("counter key outlived its window")
		}
	})
}

// userKeyOf recomputes a user counter key independently of the limiter.
func userKeyOf(st *store.Store, username string, now time.Time, window time.Duration) string {
	sum := sha256.Sum256([]byte(store.NormalizeUsername(username)))
	return st.Key(fmt.Sprintf("limit:user:%x:%d", sum, now.UnixNano()/int64(window)))
}

func secretSuite(t *testing.T, open opener) {
	ctx := context.Background()
	st := open(t)
	// Several replicas race to create the secret: all must get one value.
	const n = 8
	var wg sync.WaitGroup
	got := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = st.SharedSecret(ctx, "csrf", 32)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		mustf(t, errs[i], "goroutine %d", i)
		if len(got[i]) != 32 || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("goroutine %d got a different secret", i)
		}
	}
	if bytes.Equal(got[0], make([]byte, 32)) {
		t.Fatal("secret is all zeros")
	}
	again, err := st.SharedSecret(ctx, "csrf", 32)
	mustf(t, err, "again")
	if !bytes.Equal(again, got[0]) {
		t.Fatal("secret changed")
	}
	stored, err := st.Client().Get(ctx, st.Key("secret:csrf")).Bytes()
	mustf(t, err, "read")
	// go-redis reports "no expiry" as a raw -1.
	if !bytes.Equal(stored, got[0]) || st.Client().PTTL(ctx, st.Key("secret:csrf")).Val() != -1 {
		t.Fatal("secret not stored as is, or expires")
	}
	other, err := st.SharedSecret(ctx, "other", 32)
	mustf(t, err, "other")
	if bytes.Equal(other, got[0]) {
		t.Fatal("two names share a secret")
	}
	for _, bad := range []struct {
		name string
		size int
	}{{"", 32}, {"Has Space", 32}, {"../x", 32}, {"ok", 8}, {"ok", 4096}} {
		if _, err := st.SharedSecret(ctx, bad.name, bad.size); err == nil {
			t.Fatalf("SharedSecret(%q, %d) accepted", bad.name, bad.size)
		}
	}
	if _, err := st.SharedSecret(ctx, "csrf", 64); err == nil {
		t.Fatal("size mismatch with the stored secret accepted")
	}
}
