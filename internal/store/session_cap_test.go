package store_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// userIndexKey is the index of the sessions of userID: a sorted set scored
// by creation (Unix ms).
func userIndexKey(st *store.Store, userID string) string {
	return st.Key("user:{" + userID + "}:sessions")
}

// legacyUserIndexKey is the plain set older Wardens kept per user.
func legacyUserIndexKey(st *store.Store, userID string) string {
	return st.Key("user:{" + userID + "}:sess")
}

func inUserIndex(t testing.TB, st *store.Store, userID, key string) bool {
	t.Helper()
	err := st.Client().ZScore(context.Background(), userIndexKey(st, userID), key).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("zscore: %v", err)
	}
	return err == nil
}

func cappedSessions(t testing.TB, st *store.Store, clk *fakeClock, max int) *store.Sessions {
	t.Helper()
	cfg := sessCfg
	cfg.MaxPerUser = max
	s, err := store.NewSessions(st, cfg, clk.Now, nil)
	mustf(t, err, "new sessions (max %d)", max)
	return s
}

// sessionCapSuite checks the limit of live sessions per user
// (SessionConfig.MaxPerUser). Part of the behaviour suite (runSuite).
func sessionCapSuite(t *testing.T, open opener) {
	ctx := context.Background()
	alice, bob := user("11111111-aaaa", "alice"), user("22222222-bbbb", "bob")

	type signIn struct {
		token string
		sess  store.Session
	}
	// create signs user in n times, a second apart, and returns the
	// sign-ins and how many sessions each one ended.
	create := func(t *testing.T, s *store.Sessions, clk *fakeClock, u identity.User, n int) ([]signIn, []int) {
		t.Helper()
		var out []signIn
		var evicted []int
		for range n {
			tok, sess, ev, err := s.CreateAndEvict(ctx, u, store.SessionMeta{})
			mustf(t, err, "create")
			out = append(out, signIn{tok, sess})
			evicted = append(evicted, ev)
			clk.Add(time.Second)
		}
		return out, evicted
	}
	valid := func(t *testing.T, s *store.Sessions, in signIn) bool {
		t.Helper()
		_, err := s.Get(ctx, in.token)
		if err == nil {
			return true
		}
		wantNotFound(t, err, "get")
		return false
	}
	// gone checks that an ended session left Redis and every index.
	gone := func(t *testing.T, st *store.Store, in signIn) {
		t.Helper()
		if n := st.Client().Exists(ctx, st.Key("sess:"+in.sess.Key)).Val(); n != 0 {
			t.Fatalf("ended session %s still in Redis", in.sess.Key[:8])
		}
		if inUserIndex(t, st, in.sess.User.ID, in.sess.Key) {
			t.Fatalf("ended session %s still in the user index", in.sess.Key[:8])
		}
		if err := st.Client().ZScore(ctx, store.IndexShardKey(st, in.sess.Key), in.sess.Key).Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("ended session %s still in the index of all sessions (%v)", in.sess.Key[:8], err)
		}
	}

	t.Run("oldest_end_first", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := cappedSessions(t, st, clk, 3)
		ins, evicted := create(t, s, clk, alice, 5)
		if want := []int{0, 0, 0, 1, 1}; !slices.Equal(evicted, want) {
			t.Fatalf("ended per sign-in %v, want %v", evicted, want)
		}
		for i, in := range ins {
			if got, want := valid(t, s, in), i >= 2; got != want {
				t.Fatalf("sign-in %d: valid %v, want %v", i, got, want)
			}
		}
		for _, in := range ins[:2] {
			gone(t, st, in)
		}
		list, err := s.ListUser(ctx, alice.ID)
		mustf(t, err, "list")
		if len(list) != 3 || list[0].Key != ins[2].sess.Key || list[2].Key != ins[4].sess.Key {
			t.Fatalf("alice's sessions %v", keysOf(list))
		}
		if n := st.Client().ZCard(ctx, userIndexKey(st, alice.ID)).Val(); n != 3 {
			t.Fatalf("user index has %d members, want 3", n)
		}
		// Another user is not touched, and has a limit of their own.
		bobs, evicted := create(t, s, clk, bob, 3)
		if slices.Max(evicted) != 0 || !valid(t, s, bobs[0]) || !valid(t, s, ins[2]) {
			t.Fatalf("bob's sign-ins ended %v", evicted)
		}
	})

	t.Run("ended_sessions_do_not_count", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := cappedSessions(t, st, clk, 3)
		ins, _ := create(t, s, clk, alice, 4) // the first ends: 1, 2, 3 live
		// 2 idles out by the clock (its key is still in Redis: its TTL is
		// real time); 3 vanishes as if by its TTL. 1 is in use.
		clk.Add(40 * time.Minute)
		if !valid(t, s, ins[1]) {
			t.Fatal("session 1 ended early")
		}
		clk.Add(30 * time.Minute)
		mustf(t, st.Client().Del(ctx, st.Key("sess:"+ins[3].sess.Key)).Err(), "del")
		if st.Client().Exists(ctx, st.Key("sess:"+ins[2].sess.Key)).Val() != 1 {
			t.Fatal("test setup: session 2's key should still exist")
		}
		// Live: 1 only. Two more sign-ins fit without ending anything.
		more, evicted := create(t, s, clk, alice, 2)
		if slices.Max(evicted) != 0 {
			t.Fatalf("ended %v, want nothing (only one live session before)", evicted)
		}
		for _, in := range append([]signIn{ins[1]}, more...) {
			if !valid(t, s, in) {
				t.Fatalf("session %s ended", in.sess.Key[:8])
			}
		}
		// The third one is past the limit: 1, the oldest live, ends; the
		// ended ones are gone from the index, not counted.
		last, evicted := create(t, s, clk, alice, 1)
		if evicted[0] != 1 || valid(t, s, ins[1]) || !valid(t, s, more[0]) || !valid(t, s, last[0]) {
			t.Fatalf("ended %d; want 1, session 1 among them", evicted[0])
		}
		for _, in := range []signIn{ins[1], ins[2], ins[3]} {
			gone(t, st, in)
		}
		// Index entries whose key never existed do not count either.
		pipe := st.Client().Pipeline()
		for i := range 20 {
			k := hex.EncodeToString([]byte(fmt.Sprintf("%032d", i)))
			pipe.ZAdd(ctx, userIndexKey(st, alice.ID), redis.Z{Score: float64(clk.Now().Add(-time.Minute).UnixMilli()), Member: k})
		}
		pipe.ZAdd(ctx, userIndexKey(st, alice.ID), redis.Z{Score: 1, Member: "not-a-session-key"})
		_, err := pipe.Exec(ctx)
		mustf(t, err, "dangling members")
		again, evicted := create(t, s, clk, alice, 1)
		if evicted[0] != 1 || valid(t, s, more[0]) || !valid(t, s, more[1]) || !valid(t, s, again[0]) {
			t.Fatalf("with dangling members: ended %d, want 1 (the oldest live)", evicted[0])
		}
		if n := st.Client().ZCard(ctx, userIndexKey(st, alice.ID)).Val(); n != 3 {
			t.Fatalf("user index has %d members after pruning, want 3", n)
		}
	})

	t.Run("far_over_the_limit", func(t *testing.T) {
		// A user who holds many sessions (a lower limit, or sessions from
		// before the limit): one sign-in brings them down to the limit,
		// reading only the newest.
		st := open(t)
		clk := newClock()
		wide := cappedSessions(t, st, clk, 100)
		ins, _ := create(t, wide, clk, alice, 40)
		s := cappedSessions(t, st, clk, 3)
		hook := &readHook{}
		st.Client().AddHook(hook)
		last, evicted := create(t, s, clk, alice, 1)
		if evicted[0] != 38 {
			t.Fatalf("ended %d, want 38", evicted[0])
		}
		// The 2 to keep and a few more (evictReadSlack), not all 40.
		if n := hook.count(); n > 10 {
			t.Fatalf("read %d sessions to end 38", n)
		}
		for i, in := range ins {
			if got, want := valid(t, s, in), i >= 38; got != want {
				t.Fatalf("session %d: valid %v, want %v", i, got, want)
			}
		}
		if !valid(t, s, last[0]) {
			t.Fatal("the new session ended")
		}
	})

	t.Run("limit_of_one", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := cappedSessions(t, st, clk, 1)
		ins, evicted := create(t, s, clk, alice, 3)
		if !slices.Equal(evicted, []int{0, 1, 1}) || valid(t, s, ins[0]) || valid(t, s, ins[1]) || !valid(t, s, ins[2]) {
			t.Fatalf("ended %v", evicted)
		}
	})

	t.Run("default_is_50", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := newSessions(t, st, clk) // MaxPerUser 0: the default
		ins, evicted := create(t, s, clk, alice, 51)
		if slices.Max(evicted[:50]) != 0 || evicted[50] != 1 || valid(t, s, ins[0]) || !valid(t, s, ins[1]) {
			t.Fatalf("ended %v", evicted)
		}
		// Create (without the count) keeps the limit too.
		tok, _, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		if valid(t, s, ins[1]) || !valid(t, s, signIn{token: tok}) {
			t.Fatal("Create did not end the oldest session")
		}
	})

	t.Run("replace_does_not_count", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		s := cappedSessions(t, st, clk, 2)
		ins, _ := create(t, s, clk, alice, 2)
		tok, sess, evicted, err := s.ReplaceAndEvict(ctx, ins[1].sess, alice, store.SessionMeta{})
		mustf(t, err, "replace")
		if evicted != 0 || !valid(t, s, ins[0]) || !valid(t, s, signIn{tok, sess}) || valid(t, s, ins[1]) {
			t.Fatalf("replace ended %d", evicted)
		}
		if inUserIndex(t, st, alice.ID, ins[1].sess.Key) {
			t.Fatal("the replaced session is still in the user index")
		}
	})

	t.Run("legacy_index", func(t *testing.T) {
		// Sessions listed in the plain set of older Wardens: found by
		// ListUser and RevokeUser, moved into the sorted set by the next
		// sign-in (as the oldest), and counted.
		st := open(t)
		clk := newClock()
		s := cappedSessions(t, st, clk, 3)
		ins, _ := create(t, s, clk, alice, 3)
		old := map[string]bool{ins[0].sess.Key: true, ins[1].sess.Key: true}
		pipe := st.Client().Pipeline()
		for k := range old {
			pipe.ZRem(ctx, userIndexKey(st, alice.ID), k)
			pipe.SAdd(ctx, legacyUserIndexKey(st, alice.ID), k)
		}
		_, err := pipe.Exec(ctx)
		mustf(t, err, "make legacy")
		list, err := s.ListUser(ctx, alice.ID)
		mustf(t, err, "list")
		if len(list) != 3 {
			t.Fatalf("ListUser with a legacy index: %v", keysOf(list))
		}
		more, evicted := create(t, s, clk, alice, 1)
		if evicted[0] != 1 || !valid(t, s, ins[2]) || !valid(t, s, more[0]) {
			t.Fatalf("ended %d, want 1 of the legacy ones", evicted[0])
		}
		if valid(t, s, ins[0]) == valid(t, s, ins[1]) {
			t.Fatal("want exactly one of the two legacy sessions ended")
		}
		if n := st.Client().Exists(ctx, legacyUserIndexKey(st, alice.ID)).Val(); n != 0 {
			t.Fatal("legacy index not emptied into the sorted set")
		}
		// RevokeUser finds what an older Warden adds to the legacy set.
		tok, sess, err := s.Create(ctx, alice, store.SessionMeta{})
		mustf(t, err, "create")
		mustf(t, st.Client().ZRem(ctx, userIndexKey(st, alice.ID), sess.Key).Err(), "zrem")
		mustf(t, st.Client().SAdd(ctx, legacyUserIndexKey(st, alice.ID), sess.Key).Err(), "sadd")
		n, err := s.RevokeUser(ctx, alice.ID)
		mustf(t, err, "revoke")
		if n != 3 || valid(t, s, signIn{token: tok}) {
			t.Fatalf("revoked %d, want 3", n)
		}
	})

	t.Run("concurrent_sign_ins", func(t *testing.T) {
		st := open(t)
		clk := newClock()
		const max, workers, each = 3, 8, 4
		s := cappedSessions(t, st, clk, max)
		create(t, s, clk, alice, max) // at the limit before the burst
		var mu sync.Mutex
		var tokens []string
		ended := 0
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					tok, _, ev, err := s.CreateAndEvict(ctx, alice, store.SessionMeta{})
					if err != nil {
						t.Errorf("create: %v", err)
						return
					}
					mu.Lock()
					tokens, ended = append(tokens, tok), ended+ev
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		list, err := s.ListUser(ctx, alice.ID)
		mustf(t, err, "list")
		live := 0
		for _, tok := range tokens {
			if valid(t, s, signIn{token: tok}) {
				live++
			}
		}
		// Every sign-in ended what it saw past the limit, and the last saw
		// all: exactly the limit remain, all of them from the burst (the
		// newest), and each ended session was counted once.
		_, cluster := st.Client().(*redis.ClusterClient)
		if len(list) != live || live < max || live > max+workers || (!cluster && live != max) {
			t.Fatalf("%d live sessions after %d concurrent sign-ins (%d listed), limit %d", live, workers*each, len(list), max)
		}
		if total := max + workers*each; ended != total-live {
			t.Fatalf("sign-ins say they ended %d sessions; %d of %d remain", ended, live, total)
		}
	})
}

// readHook counts the session keys read (GET, MGET).
type readHook struct {
	mu sync.Mutex
	n  int
}

func (h *readHook) add(cmd redis.Cmder) {
	name := cmd.Name()
	if name != "get" && name != "mget" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range cmd.Args()[1:] {
		if k, _ := a.(string); strings.Contains(k, ":sess:") {
			h.n++
		}
	}
}

func (h *readHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *readHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *readHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.add(c)
		}
		return next(ctx, cmds)
	}
}

func (h *readHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
