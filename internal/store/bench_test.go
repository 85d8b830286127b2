package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// Benchmarks against the redis-server at REDIS_ADDR, parallel (GOMAXPROCS
// goroutines; use -cpu to vary):
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/store

func benchUser() identity.User {
	return identity.User{ID: "0b7c1a52-3f0e-4c8e-9d1e-6c0f6f1a2b3c", Username: "bob", DisplayName: "Bob Brown",
		Email: "bob@example.org", DN: "uid=bob,ou=people,dc=example,dc=org",
		Groups: []identity.Group{
			{DN: "cn=company,ou=groups,dc=example,dc=org", Name: "company"},
			{DN: "cn=developers,ou=groups,dc=example,dc=org", Name: "developers", Direct: true},
			{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering"},
			{DN: "cn=staff,ou=groups,dc=example,dc=org", Name: "staff"},
		}}
}

func BenchmarkSessionsCreate(b *testing.B) {
	st := openReal(b)
	s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 10 * time.Minute}, nil, nil)
	mustf(b, err, "sessions")
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := benchUser()
			u.ID = fmt.Sprintf("bench-%d", n.Add(1)%1000) // 1000 users, many sessions each
			if _, _, err := s.Create(ctx, u, store.SessionMeta{ClientIP: "192.0.2.1", UserAgent: "bench"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSessionsGet(b *testing.B) {
	st := openReal(b)
	s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 10 * time.Minute}, nil, nil)
	mustf(b, err, "sessions")
	ctx := context.Background()
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i], _, err = s.Create(ctx, benchUser(), store.SessionMeta{})
		mustf(b, err, "create")
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, tokens[n.Add(1)%int64(len(tokens))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLimiterCheckFail is the limiter's share of one failed sign-in.
func BenchmarkLimiterCheckFail(b *testing.B) {
	st := openReal(b)
	l, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 5, MaxFailuresPerIP: 50, Window: time.Minute}, nil)
	mustf(b, err, "limiter")
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			user, ip := fmt.Sprintf("user%d", i%5000), fmt.Sprintf("10.0.%d.%d", i/256%256, i%256)
			if _, err := l.Check(ctx, user, ip); err != nil {
				b.Error(err)
				return
			}
			if err := l.Fail(ctx, user, ip); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
