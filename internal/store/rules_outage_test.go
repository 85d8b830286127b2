package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// dialCounter counts the connections a client opens (or tries to).
type dialCounter struct{ n atomic.Int64 }

func (d *dialCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.n.Add(1)
		return next(ctx, network, addr)
	}
}
func (d *dialCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (d *dialCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRulesWatchOutage: while Redis is down Watch backs off (a few dials a
// second at first, fewer later, never a busy loop) and logs the outage
// once; when Redis is back, it sees the next change.
func TestRulesWatchOutage(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t, freePort(t, false))
	var logs syncBuffer
	st, err := store.Open(ctx, outageConfig(srv.addr()), slog.New(slog.NewTextHandler(&logs, nil)))
	mustf(t, err, "open")
	t.Cleanup(func() { _ = st.Close() })
	dials := &dialCounter{}
	st.Client().AddHook(dials)
	r := store.NewRules(st, nil)
	w := startWatch(t, r)
	if v, _ := w.next(t, watchWait); v != 0 {
		t.Fatalf("first call v%d", v)
	}

	srv.kill()
	before := dials.n.Load()
	const down = 4 * time.Second
	time.Sleep(down)
	n := dials.n.Load() - before
	t.Logf("%d dial attempts in %v of outage", n, down)
	// Each check may dial (1 + 2 dialer retries) × (1 + 2 command
	// retries) times; the backoff 0.25, 0.5, 1, 2 s allows about five
	// checks in 4 s. A busy loop would dial thousands of times.
	if n > 60 {
		t.Fatalf("%d dials in %v: Watch does not back off", n, down)
	}
	if c := strings.Count(logs.String(), "rules watch: redis unavailable"); c != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", c, logs.String())
	}
	w.none(t, 0)

	srv.start()
	_, err = r.Save(ctx, 0, []byte("after: outage\n"), store.ChangeMeta{Author: "alice"})
	mustf(t, err, "save after restart")
	// A hang guard, not a figure: the backoff is at most 5 s; a loaded
	// machine may take many times that.
	if v, took := w.next(t, time.Until(testenv.HangGuard(t))); v != 1 {
		t.Fatalf("after the outage Watch saw v%d, want v1", v)
	} else {
		t.Logf("v1 seen %v after the save", took)
	}
	if !strings.Contains(logs.String(), "rules watch: redis available again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestAuditOutage: with Redis down, Record returns without failing its
// caller (how fast: BenchmarkOutage/AuditRecord), warns in the store's log without the
// event's content, and audit.Multi still writes the event to the slog
// audit log.
func TestAuditOutage(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t, freePort(t, false))
	var storeLog, auditLog syncBuffer
	st, err := store.Open(ctx, outageConfig(srv.addr()), slog.New(slog.NewTextHandler(&storeLog, nil)))
	mustf(t, err, "open")
	t.Cleanup(func() { _ = st.Close() })
	stream := store.NewAuditStream(st, 0)
	logger := audit.Multi(audit.NewSlog(slog.New(slog.NewJSONHandler(&auditLog, nil)), nil), stream)

	srv.kill()
	start := time.Now()
	logger.Record(ctx, audit.Event{Actor: "alice", Action: "rule.update", Object: "grant-7", Result: "success",
		RequestID: "req-42", After: "secret-looking-content"})
	t.Logf("Record returned after %v with Redis down", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(auditLog.String(), `"object":"grant-7"`) {
		t.Fatalf("event not in the slog audit log: %s", auditLog.String())
	}
	sl := storeLog.String()
	if !strings.Contains(sl, "audit stream: event not stored") || !strings.Contains(sl, "req-42") {
		t.Fatalf("no warning in the store log: %s", sl)
	}
	if strings.Contains(sl, "secret-looking-content") {
		t.Fatalf("the warning carries the event's content: %s", sl)
	}
	wantUnavailable(t, "query", func() error {
		_, _, err := stream.Query(ctx, store.AuditQuery{})
		return err
	})

	srv.start()
	logger.Record(ctx, audit.Event{Actor: "alice", Action: "after"})
	got, _, err := stream.Query(ctx, store.AuditQuery{})
	mustf(t, err, "query after restart")
	if len(got) != 1 || got[0].Action != "after" {
		t.Fatalf("after restart: %+v", got)
	}
}
