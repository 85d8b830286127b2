package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// sessionIndexSuite checks the index of all sessions (16 shards, and the
// legacy prefix+"sessions") and ListAll's paging over them. Part of the behaviour suite (runSuite).
func sessionIndexSuite(t *testing.T, open opener, realTTL bool) {
	ctx := context.Background()
	alice, bob := user("11111111-aaaa", "alice"), user("22222222-bbbb", "bob")
	legacy := func(st *store.Store) string { return st.Key("sessions") }
	index := store.IndexShardKey
	inIndex := func(t *testing.T, st *store.Store, key string) bool {
		t.Helper()
		err := st.Client().ZScore(ctx, index(st, key), key).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("zscore: %v", err)
		}
		return err == nil
	}
	card := func(t *testing.T, st *store.Store) int64 {
		t.Helper()
		var sum int64
		for _, k := range append(store.IndexShardKeys(st), legacy(st)) {
			n, err := st.Client().ZCard(ctx, k).Result()
			mustf(t, err, "zcard")
			sum += n
		}
		return sum
	}

	t.Run("index_holds_created", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		var want []store.Session
		for i := range 3 {
			_, sess, err := s.Create(ctx, []identity.User{alice, bob}[i%2], store.SessionMeta{})
			mustf(t, err, "create")
			want = append(want, sess)
			clk.Add(time.Second)
		}
		for _, w := range want {
			score, err := st.Client().ZScore(ctx, index(st, w.Key), w.Key).Result()
			mustf(t, err, "zscore %s", w.Key)
			if int64(score) != w.ExpiresAt.UnixMilli() {
				t.Fatalf("score %v, want the absolute end %d", score, w.ExpiresAt.UnixMilli())
			}
		}
		if n := card(t, st); n != 3 {
			t.Fatalf("index has %d members, want 3", n)
		}
		// No TTL on the index: it is pruned, not expired.
		for _, w := range want {
			if ttl := st.Client().PTTL(ctx, index(st, w.Key)).Val(); ttl != -1 {
				t.Fatalf("index TTL %v, want none", ttl)
			}
		}
		page, next, err := s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if next != 0 || len(page) != 3 {
			t.Fatalf("list all: %d sessions, next %d", len(page), next)
		}
		for i, p := range page { // oldest first
			if p.Key != want[i].Key || p.User.ID != want[i].User.ID {
				t.Fatalf("page[%d] = %s (%s), want %s", i, p.Key, p.User.ID, want[i].Key)
			}
		}
	})

	t.Run("index_loses_deleted_and_revoked", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		create := func(u identity.User) (string, store.Session) {
			tok, sess, err := s.Create(ctx, u, store.SessionMeta{})
			mustf(t, err, "create")
			return tok, sess
		}
		tokSignOut, signOut := create(alice)
		_, byAdmin := create(alice)
		_, bob1 := create(bob)
		_, bob2 := create(bob)
		tokIdle, idle := create(alice)
		tokKept, kept := create(alice)

		mustf(t, s.Delete(ctx, tokSignOut), "delete")
		mustf(t, s.DeleteByKey(ctx, byAdmin.Key), "delete by key")
		n, err := s.RevokeUser(ctx, bob.ID)
		mustf(t, err, "revoke")
		if n != 2 {
			t.Fatalf("revoked %d, want 2", n)
		}
		// A Get that finds its session ended by the clock deletes it, index
		// entry included. kept is used at 50m, so only idle ends at 61m.
		clk.Add(50 * time.Minute)
		_, err = s.Get(ctx, tokKept)
		mustf(t, err, "get kept")
		clk.Add(11 * time.Minute)
		_, err = s.Get(ctx, tokIdle)
		wantNotFound(t, err, "get idle session")
		for _, gone := range []store.Session{signOut, byAdmin, bob1, bob2, idle} {
			if inIndex(t, st, gone.Key) {
				t.Fatalf("ended session %s still in the index", gone.Key[:8])
			}
		}
		if !inIndex(t, st, kept.Key) || card(t, st) != 1 {
			t.Fatalf("index has %d members, want only the kept session", card(t, st))
		}
	})

	t.Run("skips_and_prunes_idle_by_clock", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		var toks []string
		var keys []string
		for range 4 {
			tok, sess, err := s.Create(ctx, alice, store.SessionMeta{})
			mustf(t, err, "create")
			toks, keys = append(toks, tok), append(keys, sess.Key)
		}
		clk.Add(50 * time.Minute)
		_, err := s.Get(ctx, toks[2]) // refreshes LastSeen
		mustf(t, err, "get")
		clk.Add(11 * time.Minute) // the others idle for 61m
		page, next, err := s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if len(page) != 1 || page[0].Key != keys[2] || next != 0 {
			t.Fatalf("listed %v (next %d), want only the used session", keysOf(page), next)
		}
		// The ended ones left the index and their keys are gone.
		if card(t, st) != 1 {
			t.Fatalf("index has %d members after the prune, want 1", card(t, st))
		}
		for i, k := range keys {
			if i == 2 {
				continue
			}
			if st.Client().Exists(ctx, st.Key("sess:"+k)).Val() != 0 {
				t.Fatalf("session %d key left in Redis", i)
			}
		}
		// Past the absolute end: ZREMRANGEBYSCORE empties the index.
		clk.Add(2 * time.Hour)
		page, _, err = s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if len(page) != 0 || card(t, st) != 0 {
			t.Fatalf("after the absolute end: listed %d, index %d", len(page), card(t, st))
		}
	})

	t.Run("skips_and_prunes_idle_by_ttl", func(t *testing.T) {
		if !realTTL {
			t.Skip("backend does not expire keys in real time")
		}
		st := open(t)
		// Real clock, a 2s idle timeout (refresh interval 500ms); the
		// embedded Redis advances its clock every 250ms.
		cfg := store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 2 * time.Second}
		s, err := store.NewSessions(st, cfg, time.Now, nil)
		mustf(t, err, "new sessions")
		var toks []string
		var keys []string
		for range 3 {
			tok, sess, err := s.Create(ctx, bob, store.SessionMeta{})
			mustf(t, err, "create")
			toks, keys = append(toks, tok), append(keys, sess.Key)
		}
		time.Sleep(1300 * time.Millisecond)
		_, err = s.Get(ctx, toks[0]) // written back: TTL 2s from now
		mustf(t, err, "get")
		time.Sleep(1300 * time.Millisecond) // the others' keys expired by TTL
		page, _, err := s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if len(page) != 1 || page[0].Key != keys[0] {
			t.Fatalf("listed %v, want only the used session", keysOf(page))
		}
		// Members younger than 10s whose key is missing stay (in Cluster a
		// Create's SET may land after its ZADD); a clock past that grace
		// prunes them.
		if !inIndex(t, st, keys[1]) {
			t.Fatal("a just-created member was pruned within the grace period")
		}
		later, err := store.NewSessions(st, cfg, func() time.Time { return time.Now().Add(11 * time.Second) }, nil)
		mustf(t, err, "new sessions")
		_, _, err = later.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if inIndex(t, st, keys[1]) || inIndex(t, st, keys[2]) {
			t.Fatal("members of TTL-expired sessions not pruned")
		}
	})

	t.Run("pages_cover_each_once_among_other_keys", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		want := map[string]bool{}
		for i := range 60 {
			_, sess, err := s.Create(ctx, user(fmt.Sprintf("user-%d", i%7), "u"), store.SessionMeta{})
			mustf(t, err, "create")
			want[sess.Key] = true
			if i%3 == 2 {
				clk.Add(time.Millisecond) // ties of three sessions per ms, and a run of them
			}
			if i == 30 {
				clk.Add(time.Second)
			}
		}
		// Unrelated keys of every kind in the same keyspace and prefix,
		// and a member that is not a session key (never written by us).
		pipe := st.Client().Pipeline()
		for i := range 3000 {
			pipe.Set(ctx, st.Key(fmt.Sprintf("other:{%d}", i)), "x", 0)
		}
		pipe.HSet(ctx, st.Key("oidc:h"), "f", "v")
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: st.Key("audit:s"), Values: []any{"k", "v"}})
		pipe.ZAdd(ctx, legacy(st), redis.Z{Score: float64(clk.Now().Add(time.Hour).UnixMilli()), Member: "junk"})
		pipe.ZAdd(ctx, store.IndexShardKeys(st)[3], redis.Z{Score: float64(clk.Now().Add(time.Hour).UnixMilli()), Member: "junk3"})
		_, err := pipe.Exec(ctx)
		mustf(t, err, "unrelated keys")

		for _, count := range []int64{1, 2, 3, 7, 59, 60, 61, 1000} {
			got := map[string]int{}
			cursor, calls := uint64(0), 0
			for {
				page, next, err := s.ListAll(ctx, cursor, count)
				mustf(t, err, "list all (count %d)", count)
				for _, p := range page {
					got[p.Key]++
				}
				calls++
				if cursor = next; cursor == 0 {
					break
				}
				if calls > 200 {
					t.Fatalf("count %d: no end after %d calls", count, calls)
				}
			}
			for k, n := range got {
				if !want[k] || n != 1 {
					t.Fatalf("count %d: session %s listed %d times (known: %v)", count, k[:8], n, want[k])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("count %d: listed %d sessions, want %d", count, len(got), len(want))
			}
			// The index is read, not the keyspace: ceil(62/count) calls, or one
			// more when the last page is exactly full.
			if max := 62/count + 1; int64(calls) > max {
				t.Fatalf("count %d: %d calls, want at most %d", count, calls, max)
			}
		}
		for k, m := range map[string]string{legacy(st): "junk", store.IndexShardKeys(st)[3]: "junk3"} {
			if err := st.Client().ZScore(ctx, k, m).Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("a member that is not a session key stayed in %s (%v)", k, err)
			}
		}
	})

	t.Run("pages_stable_while_sessions_end", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 2 * time.Hour, IdleTimeout: 2 * time.Hour}, clk.Now, nil)
		mustf(t, err, "new sessions")
		t0 := clk.Now()
		var keys []string
		for range 30 {
			_, sess, err := s.Create(ctx, alice, store.SessionMeta{})
			mustf(t, err, "create")
			keys = append(keys, sess.Key)
			clk.Add(time.Minute)
		}
		page, cursor, err := s.ListAll(ctx, 0, 5)
		mustf(t, err, "first page")
		if len(page) != 5 || page[0].Key != keys[0] || page[4].Key != keys[4] || cursor == 0 {
			t.Fatalf("first page %v, cursor %d", keysOf(page), cursor)
		}
		// Meanwhile: sessions 0-2 reach their absolute end, 3 and 4 (already
		// listed) and 10 (not yet) are signed out. An offset cursor would
		// now skip five sessions.
		clk.Add(t0.Add(2*time.Hour + 2*time.Minute + 30*time.Second).Sub(clk.Now()))
		for _, i := range []int{3, 4, 10} {
			mustf(t, s.DeleteByKey(ctx, keys[i]), "delete %d", i)
		}
		got := map[string]int{}
		for cursor != 0 {
			page, cursor, err = s.ListAll(ctx, cursor, 5)
			mustf(t, err, "list all")
			for _, p := range page {
				got[p.Key]++
			}
		}
		for i := 5; i < 30; i++ {
			if want := map[bool]int{true: 0, false: 1}[i == 10]; got[keys[i]] != want {
				t.Fatalf("session %d listed %d times, want %d", i, got[keys[i]], want)
			}
		}
		if len(got) != 24 {
			t.Fatalf("listed %d sessions after the first page, want 24", len(got))
		}
	})

	t.Run("odd_cursors_and_counts", func(t *testing.T) {
		st := open(t)
		s := newSessions(t, st, newClock())
		for range 3 {
			_, _, err := s.Create(ctx, alice, store.SessionMeta{})
			mustf(t, err, "create")
		}
		// A cursor from the address bar is not trusted to mean anything,
		// but never fails: far beyond the end, or ended long ago.
		for _, c := range []uint64{math.MaxUint64, 1, 1 << 20, 12345} {
			page, next, err := s.ListAll(ctx, c, 10)
			mustf(t, err, "cursor %d", c)
			if next != 0 || len(page) > 3 {
				t.Fatalf("cursor %d: %d sessions, next %d", c, len(page), next)
			}
		}
		for _, n := range []int64{0, -5, math.MaxInt64} {
			page, next, err := s.ListAll(ctx, 0, n)
			mustf(t, err, "count %d", n)
			if len(page) != 3 || next != 0 {
				t.Fatalf("count %d: %d sessions, next %d", n, len(page), next)
			}
		}
	})

	t.Run("unindexed_session_still_found_by_user", func(t *testing.T) {
		// A session written before the index existed: not in ListAll (as
		// documented), still in ListUser (which the admin filter uses),
		// RevokeUser and Get.
		st := open(t)
		s := newSessions(t, st, newClock())
		tok, sess, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		mustf(t, st.Client().ZRem(ctx, index(st, sess.Key), sess.Key).Err(), "unindex")
		page, _, err := s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if len(page) != 0 {
			t.Fatalf("unindexed session listed: %v", keysOf(page))
		}
		list, err := s.ListUser(ctx, alice.ID)
		mustf(t, err, "list user")
		if len(list) != 1 || list[0].Key != sess.Key {
			t.Fatalf("list user: %v", keysOf(list))
		}
		_, err = s.Get(ctx, tok)
		mustf(t, err, "get")
	})

	t.Run("index_sharded", func(t *testing.T) {
		// No single key is written by every sign-in: 64 sessions land in
		// many shards, each in the shard of its key's first hex digit.
		st := open(t)
		s := newSessions(t, st, newClock())
		shards := map[string]bool{}
		for i := range 64 {
			_, sess, err := s.Create(ctx, user(fmt.Sprintf("shard-%d", i), "u"), store.SessionMeta{})
			mustf(t, err, "create")
			if !inIndex(t, st, sess.Key) {
				t.Fatalf("session %s not in its shard", sess.Key[:8])
			}
			shards[index(st, sess.Key)] = true
		}
		if len(shards) < 8 {
			t.Fatalf("64 sessions in %d shards, want them spread", len(shards))
		}
		if n := st.Client().Exists(ctx, legacy(st)).Val(); n != 0 {
			t.Fatal("Create wrote the legacy index")
		}
	})

	t.Run("legacy_index_listed_and_pruned", func(t *testing.T) {
		// A session indexed by an older Warden (in prefix+"sessions") is
		// listed, once, and pruned from there when it ends.
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk)
		_, old, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		clk.Add(time.Second)
		_, cur, err := s.Create(ctx, bob, store.SessionMeta{})
		mustf(t, err, "create")
		score := float64(old.ExpiresAt.UnixMilli())
		mustf(t, st.Client().ZRem(ctx, index(st, old.Key), old.Key).Err(), "unindex")
		mustf(t, st.Client().ZAdd(ctx, legacy(st), redis.Z{Score: score, Member: old.Key}).Err(), "legacy index")
		for _, count := range []int64{1, 10} {
			var got []string
			cursor := uint64(0)
			for {
				page, next, err := s.ListAll(ctx, cursor, count)
				mustf(t, err, "list all")
				for _, p := range page {
					got = append(got, p.Key)
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
			if len(got) != 2 || got[0] != old.Key || got[1] != cur.Key {
				t.Fatalf("count %d: listed %v, want the legacy session then the new one", count, got)
			}
		}
		mustf(t, s.DeleteByKey(ctx, old.Key), "delete")
		clk.Add(11 * time.Second) // past the grace for missing keys
		page, _, err := s.ListAll(ctx, 0, 10)
		mustf(t, err, "list all")
		if len(page) != 1 || page[0].Key != cur.Key {
			t.Fatalf("after the delete: %v", keysOf(page))
		}
		if n := st.Client().ZCard(ctx, legacy(st)).Val(); n != 0 {
			t.Fatalf("legacy index kept %d members of ended sessions", n)
		}
	})
}
