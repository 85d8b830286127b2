package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

// BenchmarkSessionsListAll lists 10,000 live sessions in a Redis that also
// holds 50,000 unrelated keys (rules, audit, OIDC and the like):
//
//	first_page_200: the admin sessions page (one ListAll of 200);
//	all_pages_1000: every session, 1000 per call, until the cursor is 0
//	  (what the admin filter by username did for every search);
//	list_user: one user's 5 sessions (what the filter does now).
//
//	go test -run '^$' -bench SessionsListAll ./internal/store
func BenchmarkSessionsListAll(b *testing.B) {
	const sessions, unrelated = 10_000, 50_000
	st := openReal(b)
	ctx := context.Background()
	s, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 8 * time.Hour, IdleTimeout: time.Hour}, nil, nil)
	mustf(b, err, "sessions")
	for i := range sessions {
		u := benchUser()
		u.ID = fmt.Sprintf("bench-%d", i%2000)
		_, _, err := s.Create(ctx, u, store.SessionMeta{ClientIP: "192.0.2.1", UserAgent: "bench"})
		mustf(b, err, "create")
	}
	for i := 0; i < unrelated; i += 1000 {
		pipe := st.Client().Pipeline()
		for j := i; j < i+1000; j++ {
			pipe.Set(ctx, st.Key(fmt.Sprintf("other:{%d}:k", j)), "x", 0)
		}
		_, err := pipe.Exec(ctx)
		mustf(b, err, "unrelated keys")
	}
	b.Run("first_page_200", func(b *testing.B) {
		b.ReportAllocs()
		got := 0
		for b.Loop() {
			page, _, err := s.ListAll(ctx, 0, 200)
			if err != nil {
				b.Fatal(err)
			}
			got = len(page)
		}
		b.ReportMetric(float64(got), "sessions/page")
	})
	b.Run("all_pages_1000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, cursor := 0, uint64(0)
			for {
				page, next, err := s.ListAll(ctx, cursor, 1000)
				if err != nil {
					b.Fatal(err)
				}
				n += len(page)
				if cursor = next; cursor == 0 {
					break
				}
			}
			if n != sessions {
				b.Fatalf("listed %d sessions, want %d", n, sessions)
			}
		}
	})
	b.Run("list_user", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ss, err := s.ListUser(ctx, "bench-42")
			if err != nil || len(ss) != sessions/2000 {
				b.Fatalf("list user: %d sessions, %v", len(ss), err)
			}
		}
	})
}
