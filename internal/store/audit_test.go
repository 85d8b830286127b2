package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

func actions(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Action
	}
	return out
}

func query(t testing.TB, a *store.AuditStream, q store.AuditQuery) ([]audit.Event, string) {
	t.Helper()
	evs, cursor, err := a.Query(context.Background(), q)
	mustf(t, err, "query %+v", q)
	return evs, cursor
}

// sleepPastMillisecond makes sure the next event's stream ID is in a later
// millisecond than anything stored so far.
func sleepPastMillisecond() { time.Sleep(3 * time.Millisecond) }

func auditSuite(t *testing.T, b rulesBackend) {
	ctx := context.Background()

	t.Run("record_query_filter", func(t *testing.T) {
		st := b.open(t)
		a := store.NewAuditStream(st, 0)
		when := time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
		evs := []audit.Event{
			{Time: when, Actor: "alice", Action: "login", Result: "success", ClientIP: "192.0.2.1", RequestID: "r1"},
			{Actor: "Bob", Action: "rule.update", Object: "grant-1", Result: "success",
				Detail: map[string]string{"version": "7"}, Before: `{"group":"a"}`, After: `{"group":"b"}`},
			{Actor: "alice", Action: "session.revoke", Object: "GRANT-1", Result: "success"},
			{Actor: "carol", Action: "login", Result: "invalid_credentials"},
		}
		for _, e := range evs {
			a.Record(ctx, e)
		}
		all, cursor := query(t, a, store.AuditQuery{})
		if cursor != "" || !slices.Equal(actions(all), []string{"login", "session.revoke", "rule.update", "login"}) {
			t.Fatalf("all: %v cursor %q", actions(all), cursor)
		}
		if !all[3].Time.Equal(when) || all[3].ClientIP != "192.0.2.1" || all[3].RequestID != "r1" {
			t.Fatalf("first event read back as %+v", all[3])
		}
		if all[2].Time.IsZero() || time.Since(all[2].Time) > time.Minute {
			t.Fatalf("zero time not set to now: %v", all[2].Time)
		}
		if all[2].Detail["version"] != "7" || all[2].Before != `{"group":"a"}` || all[2].After != `{"group":"b"}` {
			t.Fatalf("second event read back as %+v", all[2])
		}
		for _, tc := range []struct {
			name string
			q    store.AuditQuery
			want []string
		}{
			{"actor", store.AuditQuery{Actor: "ALICE"}, []string{"session.revoke", "login"}},
			{"actor_exact", store.AuditQuery{Actor: "ali"}, []string{}},
			{"actor_case", store.AuditQuery{Actor: "bob"}, []string{"rule.update"}},
			{"object", store.AuditQuery{Object: "grant-1"}, []string{"session.revoke", "rule.update"}},
			{"action", store.AuditQuery{Action: "Login"}, []string{"login", "login"}},
			{"combined", store.AuditQuery{Actor: "alice", Object: "grant-1"}, []string{"session.revoke"}},
			{"limit", store.AuditQuery{Limit: 1}, []string{"login"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, _ := query(t, a, tc.q)
				if g := actions(got); !slices.Equal(g, tc.want) {
					t.Fatalf("got %v, want %v", g, tc.want)
				}
			})
		}
	})

	t.Run("paging", func(t *testing.T) {
		a := store.NewAuditStream(b.open(t), 0)
		for i := range 25 {
			a.Record(ctx, audit.Event{Actor: "alice", Action: fmt.Sprintf("a%02d", i), Result: "success"})
			a.Record(ctx, audit.Event{Actor: "bob", Action: "noise", Result: "success"})
		}
		var got []string
		q := store.AuditQuery{Actor: "alice", Limit: 10}
		for page := 0; ; page++ {
			evs, cursor := query(t, a, q)
			got = append(got, actions(evs)...)
			if cursor == "" {
				break
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
			q.Cursor = cursor
		}
		var want []string
		for i := 24; i >= 0; i-- {
			want = append(want, fmt.Sprintf("a%02d", i))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages gave %v\nwant %v", got, want)
		}
	})

	t.Run("time_range", func(t *testing.T) {
		a := store.NewAuditStream(b.open(t), 0)
		a.Record(ctx, audit.Event{Actor: "x", Action: "early"})
		sleepPastMillisecond()
		t1 := time.Now()
		sleepPastMillisecond()
		a.Record(ctx, audit.Event{Actor: "x", Action: "mid1"})
		a.Record(ctx, audit.Event{Actor: "x", Action: "mid2"})
		sleepPastMillisecond()
		t2 := time.Now()
		sleepPastMillisecond()
		a.Record(ctx, audit.Event{Actor: "x", Action: "late"})
		for _, tc := range []struct {
			name string
			q    store.AuditQuery
			want []string
		}{
			{"since", store.AuditQuery{Since: t1}, []string{"late", "mid2", "mid1"}},
			{"until", store.AuditQuery{Until: t1}, []string{"early"}},
			{"between", store.AuditQuery{Since: t1, Until: t2}, []string{"mid2", "mid1"}},
			{"between_paged", store.AuditQuery{Since: t1, Until: t2, Limit: 1}, []string{"mid2"}},
			{"before_all", store.AuditQuery{Until: time.Unix(0, 0)}, []string{}},
			{"after_all", store.AuditQuery{Since: time.Now().Add(time.Hour)}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, _ := query(t, a, tc.q)
				if g := actions(got); !slices.Equal(g, tc.want) {
					t.Fatalf("got %v, want %v", g, tc.want)
				}
			})
		}
		// The cursor continues within the range.
		first, cursor := query(t, a, store.AuditQuery{Since: t1, Until: t2, Limit: 1})
		rest, cursor2 := query(t, a, store.AuditQuery{Since: t1, Until: t2, Limit: 1, Cursor: cursor})
		if actions(first)[0] != "mid2" || !slices.Equal(actions(rest), []string{"mid1"}) {
			t.Fatalf("paged range: %v then %v (%q)", actions(first), actions(rest), cursor2)
		}
	})

	t.Run("bad_queries", func(t *testing.T) {
		a := store.NewAuditStream(b.open(t), 0)
		now := time.Now()
		for name, q := range map[string]store.AuditQuery{
			"until_before_since": {Since: now, Until: now.Add(-time.Second)},
			"cursor_garbage":     {Cursor: "garbage"},
			"cursor_injection":   {Cursor: "+"},
			"cursor_huge":        {Cursor: strings.Repeat("9", 30) + "-0"},
			"cursor_over_uint64": {Cursor: "18446744073709551616-0"},
			"cursor_seq_over":    {Cursor: "1-18446744073709551616"},
		} {
			_, _, err := a.Query(ctx, q)
			if !errors.Is(err, store.ErrBadQuery) || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s: got %v, want ErrBadQuery", name, err)
			}
		}
		// Odd but well-formed cursors are answered, not failed.
		a.Record(ctx, audit.Event{Actor: "x", Action: "one"})
		for _, c := range []string{"0-0", "0-1", "18446744073709551615-18446744073709551615"} {
			evs, _, err := a.Query(ctx, store.AuditQuery{Cursor: c})
			mustf(t, err, "cursor %s", c)
			if want := c[0] == '1'; (len(evs) == 1) != want {
				t.Errorf("cursor %s: %d events", c, len(evs))
			}
		}
	})

	t.Run("max_len", func(t *testing.T) {
		st := b.open(t)
		a := store.NewAuditStream(st, 100)
		for i := range 1000 {
			a.Record(ctx, audit.Event{Actor: "x", Action: fmt.Sprint(i)})
		}
		n := st.Client().XLen(ctx, st.Key("audit")).Val()
		// MAXLEN ~ trims whole macro nodes (100 entries each by default).
		if n < 100 || n > 300 {
			t.Fatalf("stream has %d entries, want about 100", n)
		}
		got, _ := query(t, a, store.AuditQuery{Limit: 1})
		if actions(got)[0] != "999" {
			t.Fatalf("newest is %v", actions(got))
		}
	})

	t.Run("cancelled_request_still_recorded", func(t *testing.T) {
		a := store.NewAuditStream(b.open(t), 0)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		a.Record(cctx, audit.Event{Actor: "alice", Action: "logout"})
		got, _ := query(t, a, store.AuditQuery{})
		if !slices.Equal(actions(got), []string{"logout"}) {
			t.Fatalf("got %v", actions(got))
		}
	})

	t.Run("large_change_clipped", func(t *testing.T) {
		a := store.NewAuditStream(b.open(t), 0)
		big := strings.Repeat("y", 200<<10)
		a.Record(ctx, audit.Event{Actor: "alice", Action: "rules.import", Before: "small", After: big})
		got, _ := query(t, a, store.AuditQuery{})
		after := got[0].After
		if got[0].Before != "small" || len(after) > 65<<10 || !strings.HasSuffix(after, fmt.Sprintf("[truncated, %d bytes]", len(big))) {
			t.Fatalf("after: %d bytes ending %q", len(after), after[max(0, len(after)-40):])
		}
	})

	t.Run("undecodable_entry_skipped", func(t *testing.T) {
		st := b.open(t)
		a := store.NewAuditStream(st, 0)
		a.Record(ctx, audit.Event{Actor: "alice", Action: "one"})
		mustf(t, st.Client().XAdd(ctx, &redis.XAddArgs{Stream: st.Key("audit"), Values: []string{"e", "{not json"}}).Err(), "xadd")
		mustf(t, st.Client().XAdd(ctx, &redis.XAddArgs{Stream: st.Key("audit"), Values: []string{"other", "x"}}).Err(), "xadd")
		a.Record(ctx, audit.Event{Actor: "alice", Action: "two"})
		got, _ := query(t, a, store.AuditQuery{})
		if !slices.Equal(actions(got), []string{"two", "one"}) {
			t.Fatalf("got %v", actions(got))
		}
	})
}

// TestAuditBackground: in background mode every event recorded before a
// Query is in its answer (Query waits for the queue), order is kept per
// recording goroutine, and after stop Record writes synchronously again.
// Real Redis.
func TestAuditBackground(t *testing.T) {
	st := openReal(t)
	ctx := context.Background()
	a := store.NewAuditStream(st, 0)
	stop := a.Background()
	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				a.Record(ctx, audit.Event{Actor: fmt.Sprintf("w%d", w), Action: fmt.Sprintf("a%03d", i), Result: "success"})
			}
		})
	}
	wg.Wait()
	for w := range writers {
		evs, _ := query(t, a, store.AuditQuery{Actor: fmt.Sprintf("w%d", w), Limit: 1000})
		if len(evs) != each {
			t.Fatalf("writer %d: %d events, want %d", w, len(evs), each)
		}
		for i, e := range evs { // newest first
			if want := fmt.Sprintf("a%03d", each-1-i); e.Action != want {
				t.Fatalf("writer %d: event %d is %s, want %s", w, i, e.Action, want)
			}
		}
	}
	a.Record(ctx, audit.Event{Actor: "last", Action: "queued", Result: "success"})
	stop()
	stop() // idempotent
	a.Record(ctx, audit.Event{Actor: "last", Action: "sync", Result: "success"})
	evs, _ := query(t, a, store.AuditQuery{Actor: "last"})
	if got := actions(evs); !slices.Equal(got, []string{"sync", "queued"}) {
		t.Fatalf("after stop: %v", got)
	}
}
