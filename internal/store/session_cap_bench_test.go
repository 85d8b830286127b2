package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

// The cost of the limit per user (session.max_per_user) on a sign-in,
// against the redis-server at REDIS_ADDR, parallel:
//
//	go test -run '^$' -bench 'SessionsCreate(Under|At)Limit' ./internal/store
//
// UnderLimit: every sign-in is a user's first, so the count that comes
// back with the creation is all the limit costs. AtLimit: one user at the
// default limit (50), so every sign-in reads the user's newest sessions and
// ends the oldest (two more round trips).

func BenchmarkSessionsCreateUnderLimit(b *testing.B) {
	st := openReal(b)
	s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 10 * time.Minute}, nil, nil)
	mustf(b, err, "sessions")
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := benchUser()
			u.ID = fmt.Sprintf("fresh-%d", n.Add(1))
			if _, _, err := s.Create(ctx, u, store.SessionMeta{ClientIP: "192.0.2.1", UserAgent: "bench"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSessionsCreateAtLimit(b *testing.B) {
	st := openReal(b)
	s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 10 * time.Minute}, nil, nil)
	mustf(b, err, "sessions")
	ctx := context.Background()
	u := benchUser()
	for range store.DefaultMaxSessionsPerUser {
		_, _, err := s.Create(ctx, u, store.SessionMeta{ClientIP: "192.0.2.1", UserAgent: "bench"})
		mustf(b, err, "fill")
	}
	var ended atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _, n, err := s.CreateAndEvict(ctx, u, store.SessionMeta{ClientIP: "192.0.2.1", UserAgent: "bench"})
			if err != nil {
				b.Error(err)
				return
			}
			ended.Add(int64(n))
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(ended.Load())/float64(b.N), "ended/op")
}
