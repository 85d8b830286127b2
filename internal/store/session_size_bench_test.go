package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// chromeUA is what a desktop Chrome sends (the most common browser).
const chromeUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// sizeMeta is a signed-in browser as the web layer records it: an IPv4
// client, a desktop browser, a password and a TOTP code.
func sizeMeta(now time.Time) store.SessionMeta {
	return store.SessionMeta{ClientIP: "203.0.113.45", UserAgent: chromeUA,
		Authn: identity.Authn{Method: identity.MethodTOTP, Time: now.Add(-20 * time.Second).UTC(), FactorTime: now.UTC()}}
}

// BenchmarkSessionBytes measures what Redis holds per session, indexes
// included: every key the sessions write (the session, its entries in the
// user's index and in the index of all sessions, the user's index and
// name entry themselves, shared by the user's sessions), in a
// redis-server of its own (redis-server on PATH, default key prefix
// "warden:"), for users like benchUser (four groups) signed in from
// Chrome with a TOTP code.
//
//	go test -run '^$' -bench SessionBytes -benchtime 1x ./internal/store
//
// format=compact is what Create writes; format=json writes, with the same
// users, times and random keys, exactly what Wardens before the compact
// format wrote (the JSON value under the 64-digit key, the same members in
// both indexes).
//
// Metrics: bytes/session is the growth of the keyspace's memory (MEMORY
// STATS: dataset.bytes, the keys' and values' allocations as the allocator
// sized them, plus the main and expiry hash tables) over the sessions
// written, divided by their number: what a deployment pays per session.
// memusage/session is MEMORY USAGE (SAMPLES 0) summed over the keys, per
// session (it leaves out the expiry table and allocator rounding);
// value_B is the mean length of a stored session value. Each case is
// written once before it is measured: the first keys a server holds cost
// it some one-time allocations.
//
// The cases: 1000 sessions of 10 users (100 each: the user's keys are
// shared); 1000 sessions of 1000 users (one each: nothing is shared);
// 20000 sessions of 10000 users (two each), where each shard of the index
// of all sessions holds more than the 128 entries Redis keeps compact
// (zset-max-listpack-entries) and becomes a skiplist.
func BenchmarkSessionBytes(b *testing.B) {
	for _, c := range []struct{ sessions, users int }{{1000, 10}, {1000, 1000}, {20000, 10000}} {
		for _, format := range []string{"json", "compact"} {
			name := fmt.Sprintf("%d_sessions_%d_users/format=%s", c.sessions, c.users, format)
			b.Run(name, func(b *testing.B) {
				sessionBytes(b, c.sessions, c.users, format == "json")
			})
		}
	}
}

func sessionBytes(b *testing.B, sessions, users int, legacy bool) {
	srv := startRedis(b, freePort(b, false))
	st := openCfg(b, store.RedisConfig{Addrs: []string{srv.addr()}, KeyPrefix: "warden:"})
	ctx := context.Background()
	cfg := store.SessionConfig{AbsoluteLifetime: 12 * time.Hour, IdleTimeout: time.Hour,
		MaxPerUser: max(sessions/users, 1)}
	s, err := store.NewSessions(st, cfg, nil, nil)
	mustf(b, err, "sessions")
	fill := func() {
		mustf(b, st.Client().FlushAll(ctx).Err(), "flush")
		for i := range sessions {
			u := benchUser()
			u.ID = fmt.Sprintf("0b7c1a52-3f0e-4c8e-9d1e-%012d", i%users)
			u.Username = fmt.Sprintf("user%d", i%users)
			now := time.Now()
			if legacy {
				writeJSONSession(b, st, cfg, u, sizeMeta(now), now)
			} else if _, _, err := s.Create(ctx, u, sizeMeta(now)); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill() // warm-up
	var perSession, usage, value float64
	for b.Loop() {
		mustf(b, st.Client().FlushAll(ctx).Err(), "flush")
		before := keyspaceMemory(b, st)
		fill()
		after := keyspaceMemory(b, st)
		perSession = float64(after-before) / float64(sessions)
		u, v := memoryUsage(b, st)
		usage, value = float64(u)/float64(sessions), float64(v)/float64(sessions)
	}
	b.ReportMetric(perSession, "bytes/session")
	b.ReportMetric(usage, "memusage/session")
	b.ReportMetric(value, "value_B")
}

// keyspaceMemory is what the keys of the server take (MEMORY STATS): the
// dataset (keys, values, their allocations) and the main and expiry hash
// tables, without what does not grow with the keys (client buffers, Lua,
// the server's own start-up allocations).
func keyspaceMemory(b *testing.B, st *store.Store) int64 {
	stats, err := st.Client().Do(context.Background(), "MEMORY", "STATS").Result()
	mustf(b, err, "memory stats")
	m, ok := stats.(map[any]any)
	if !ok {
		b.Fatalf("memory stats: %T", stats)
	}
	num := func(v any) int64 {
		switch v := v.(type) {
		case int64:
			return v
		case float64:
			return int64(v)
		}
		b.Fatalf("memory stats: %T", v)
		return 0
	}
	n := num(m["dataset.bytes"])
	if db, ok := m["db.0"].(map[any]any); ok {
		n += num(db["overhead.hashtable.main"]) + num(db["overhead.hashtable.expires"])
	}
	return n
}

// memoryUsage sums MEMORY USAGE over every key of st, and the lengths of
// the session values.
func memoryUsage(b *testing.B, st *store.Store) (usage, values int64) {
	ctx := context.Background()
	keys := allKeys(b, st)
	pipe := st.Client().Pipeline()
	usages := make([]*redis.IntCmd, len(keys))
	lens := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		usages[i] = pipe.MemoryUsage(ctx, k, 0)
		if strings.HasPrefix(k, st.Key("sess:")) {
			lens[i] = pipe.StrLen(ctx, k)
		}
	}
	_, err := pipe.Exec(ctx)
	mustf(b, err, "memory usage")
	for i := range keys {
		usage += usages[i].Val()
		if lens[i] != nil {
			values += lens[i].Val()
		}
	}
	return usage, values
}
