package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// writeJSONSession writes a session as Wardens before the compact format
// did, and returns its token and the session: json.Marshal(Session) under
// prefix+"sess:"+hex(SHA-256(token)) with the TTL Create gave, that key in
// the user's index (scored by creation, TTL the absolute lifetime) and in
// its shard of the index of all sessions (scored by the absolute end), and
// the name entry.
func writeJSONSession(t testing.TB, st *store.Store, cfg store.SessionConfig, u identity.User, meta store.SessionMeta, now time.Time) (string, store.Session) {
	t.Helper()
	ctx := context.Background()
	raw := make([]byte, 32)
	_, err := rand.Read(raw)
	mustf(t, err, "random")
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	key := hex.EncodeToString(sum[:])
	sess := store.Session{Key: key, User: u, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(cfg.AbsoluteLifetime),
		CheckedAt: now, ClientIP: meta.ClientIP, UserAgent: meta.UserAgent, Authn: meta.Authn, Pending: meta.Pending}
	val, err := json.Marshal(sess)
	mustf(t, err, "encode")
	pipe := st.Client().Pipeline()
	pipe.Set(ctx, st.Key("uname:"+store.NormalizeUsername(u.Username)), u.ID, store.UserNameTTL)
	pipe.SetArgs(ctx, st.Key("sess:"+key), val, redis.SetArgs{Mode: "NX", TTL: min(cfg.IdleTimeout, cfg.AbsoluteLifetime)})
	pipe.ZAdd(ctx, userIndexKey(st, u.ID), redis.Z{Score: float64(now.UnixMilli()), Member: key})
	pipe.PExpire(ctx, userIndexKey(st, u.ID), cfg.AbsoluteLifetime)
	pipe.ZAdd(ctx, store.IndexShardKey(st, key), redis.Z{Score: float64(sess.ExpiresAt.UnixMilli()), Member: key})
	_, err = pipe.Exec(ctx)
	mustf(t, err, "write")
	return token, sess
}

// sessionUpgradeSuite: sessions stored by a Warden before the compact
// format (JSON under the 64-digit key) live on beside new ones: found by
// their token, listed, counted toward the limit, re-checked, replaced and
// ended like them. Part of the behaviour suite (runSuite).
func sessionUpgradeSuite(t *testing.T, open opener) {
	ctx := context.Background()
	alice := identity.User{ID: "0b7c1a52-3f0e-4c8e-9d1e-6c0f6f1a2b3c", Username: "alice", DN: "uid=alice,ou=people,dc=example,dc=org",
		Groups: []identity.Group{{DN: "cn=admins,ou=groups,dc=example,dc=org", Name: "admins", Direct: true}}}
	meta := store.SessionMeta{ClientIP: "192.0.2.7", UserAgent: "old-browser",
		Authn: identity.Authn{Method: identity.MethodTOTP, Time: newClock().Now(), FactorTime: newClock().Now()}}

	t.Run("get_refresh_list_delete", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		oldTok, old := writeJSONSession(t, st, sessCfg, alice, meta, clk.Now())
		clk.Add(time.Second)
		newTok, cur, err := s.Create(ctx, alice, store.SessionMeta{UserAgent: "new-browser"})
		mustf(t, err, "create")
		if len(old.Key) != 64 || len(cur.Key) != 32 || old.Key[:32] == cur.Key {
			t.Fatalf("keys %q and %q", old.Key, cur.Key)
		}

		got, err := s.Get(ctx, oldTok)
		mustf(t, err, "get the old session")
		if got.Key != old.Key || got.UserAgent != "old-browser" || got.User.Groups[0].DN != alice.Groups[0].DN ||
			got.Authn.Method != meta.Authn.Method || !got.Authn.FactorTime.Equal(meta.Authn.FactorTime) ||
			!got.CreatedAt.Equal(old.CreatedAt) {
			t.Fatalf("old session read as %+v", got)
		}
		// The refresh rewrites it, compact, under its own key.
		clk.Add(2 * time.Minute)
		got, err = s.Get(ctx, oldTok)
		mustf(t, err, "get after the refresh interval")
		val, err := st.Client().Get(ctx, st.Key("sess:"+old.Key)).Bytes()
		mustf(t, err, "read the old key")
		if val[0] == '{' || !got.LastSeen.Equal(clk.Now()) {
			t.Fatalf("refreshed old session: %q, LastSeen %v", val[:1], got.LastSeen)
		}
		if again, err := s.Get(ctx, oldTok); err != nil || again.Key != old.Key || again.UserAgent != "old-browser" {
			t.Fatalf("rewritten old session: %+v %v", again, err)
		}

		list, err := s.ListUser(ctx, alice.ID)
		mustf(t, err, "list user")
		if len(list) != 2 || list[0].Key != old.Key || list[1].Key != cur.Key {
			t.Fatalf("list user: %v", keysOf(list))
		}
		page, _, err := s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if len(page) != 2 || page[0].Key != old.Key || page[1].Key != cur.Key {
			t.Fatalf("list all: %v", keysOf(page))
		}

		mustf(t, s.Delete(ctx, oldTok), "sign out of the old session")
		_, err = s.Get(ctx, oldTok)
		wantNotFound(t, err, "old session after sign-out")
		if inUserIndex(t, st, alice.ID, old.Key) {
			t.Fatal("signed-out old session still in the user index")
		}
		_, err = s.Get(ctx, newTok)
		mustf(t, err, "the new session after the old one's sign-out")
	})

	t.Run("revoke_by_key_and_user", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		tok1, old1 := writeJSONSession(t, st, sessCfg, alice, meta, clk.Now())
		tok2, _ := writeJSONSession(t, st, sessCfg, alice, meta, clk.Now())
		newTok, _, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		mustf(t, s.DeleteByKey(ctx, old1.Key), "admin revoke of an old session")
		_, err = s.Get(ctx, tok1)
		wantNotFound(t, err, "old session after admin revoke")
		n, err := s.RevokeUser(ctx, alice.ID)
		if err != nil || n != 2 {
			t.Fatalf("revoke user: %d %v, want 2", n, err)
		}
		for _, tok := range []string{tok2, newTok} {
			_, err = s.Get(ctx, tok)
			wantNotFound(t, err, "after revoking the user")
		}
	})

	t.Run("recheck_and_replace", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		oldTok, old := writeJSONSession(t, st, sessCfg, alice, meta, clk.Now())
		fresh := alice
		fresh.Groups = append(slices.Clone(alice.Groups), identity.Group{DN: "cn=new,ou=groups,dc=example,dc=org", Name: "new"})
		clk.Add(time.Minute)
		got, err := s.Rechecked(ctx, oldTok, old, fresh)
		mustf(t, err, "recheck the old session")
		if again, err := s.Get(ctx, oldTok); err != nil || len(again.User.Groups) != 2 || !again.CheckedAt.Equal(got.CheckedAt) {
			t.Fatalf("old session after the recheck: %+v %v", again, err)
		}
		newTok, cur, err := s.Replace(ctx, got, alice, store.SessionMeta{})
		mustf(t, err, "replace the old session")
		_, err = s.Get(ctx, oldTok)
		wantNotFound(t, err, "replaced old session")
		list, err := s.ListUser(ctx, alice.ID)
		if err != nil || len(list) != 1 || list[0].Key != cur.Key {
			t.Fatalf("after the replace: %v %v", keysOf(list), err)
		}
		_, err = s.Get(ctx, newTok)
		mustf(t, err, "the new session")
	})

	t.Run("old_sessions_count_toward_the_limit", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := cappedSessions(t, st, clk, 2)
		var oldToks []string
		for range 2 {
			tok, _ := writeJSONSession(t, st, sessCfg, alice, meta, clk.Now())
			oldToks = append(oldToks, tok)
			clk.Add(time.Second)
		}
		_, _, ended, err := s.CreateAndEvict(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create past the limit")
		if ended != 1 {
			t.Fatalf("ended %d, want the oldest of the two old sessions", ended)
		}
		_, err = s.Get(ctx, oldToks[0])
		wantNotFound(t, err, "the oldest old session")
		_, err = s.Get(ctx, oldToks[1])
		mustf(t, err, "the newer old session")
	})
}
