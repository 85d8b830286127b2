package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// evictedEvents returns the session.evicted events recorded.
func evictedEvents(e *env) []audit.Event {
	var out []audit.Event
	for _, ev := range e.audit.Events() {
		if ev.Action == "session.evicted" {
			out = append(out, ev)
		}
	}
	return out
}

// TestSignInPastMaxPerUser: with the real session store (redis-server) and
// session.max_per_user 2, a third sign-in of bob ends his oldest session,
// and records one session.evicted event that names bob, how many and why,
// and no session key or token.
func TestSignInPastMaxPerUser(t *testing.T) {
	redisEnv := testenv.Require(t, "REDIS_ADDR")
	ctx := context.Background()
	prefix := "wtest:" + rand.Text() + ":"
	st, err := store.Open(ctx, store.RedisConfig{Addrs: []string{redisEnv["REDIS_ADDR"]}, KeyPrefix: prefix},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		keys, _ := st.Client().Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = st.Client().Del(ctx, keys...).Err()
		}
		_ = st.Close()
	})
	var e *env
	sessions, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 8 * time.Hour, IdleTimeout: time.Hour, MaxPerUser: 2},
		func() time.Time { return e.clock.Now() }, nil)
	if err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, func(_ *Config, d *Deps) { d.Sessions = sessions })

	var browsers []*browser
	var tokens []string
	for i := range 3 {
		b := e.browser(t)
		if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d", i, rec.Code)
		}
		browsers = append(browsers, b)
		tokens = append(tokens, b.cookies["warden_session"].Value)
		if n := len(evictedEvents(e)); n != max(0, i-1) {
			t.Fatalf("after sign-in %d: %d session.evicted events", i, n)
		}
		e.clock.Advance(time.Second)
	}
	for i, b := range browsers {
		rec := b.get("/")
		if signedIn := rec.Code == http.StatusOK; signedIn != (i > 0) {
			t.Errorf("browser %d: GET / = %d %s", i, rec.Code, rec.Header().Get("Location"))
		}
	}
	evs := evictedEvents(e)
	ev := evs[0]
	if ev.Actor != "bob" || ev.Object != "bob" || ev.Result != "success" || ev.ClientIP != "198.51.100.7" || ev.RequestID == "" ||
		ev.Detail["cause"] != "max_per_user" || ev.Detail["sessions"] != "1" || ev.Detail["user_id"] != bob.ID || len(ev.Detail) != 3 {
		t.Fatalf("event %+v", ev)
	}
	raw, _ := json.Marshal(ev)
	for _, tok := range tokens {
		if strings.Contains(string(raw), tok) || strings.Contains(string(raw), keyOf(tok)) {
			t.Fatalf("session.evicted names a session: %s", raw)
		}
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, "session.evicted") && strings.Contains(line, keyOf(tokens[0])) {
			t.Fatalf("the log line of the eviction names the ended session: %s", line)
		}
	}
}

// evictingSessions is fakeSessions with the SessionEvicter capability:
// every creation says it ended n sessions.
type evictingSessions struct {
	*fakeSessions
	n int
}

func (f evictingSessions) CreateAndEvict(ctx context.Context, u identity.User, meta store.SessionMeta) (string, store.Session, int, error) {
	tok, sess, err := f.Create(ctx, u, meta)
	return tok, sess, f.n, err
}

func (f evictingSessions) ReplaceAndEvict(ctx context.Context, old store.Session, u identity.User, meta store.SessionMeta) (string, store.Session, int, error) {
	tok, sess, err := f.Create(ctx, u, meta)
	if err == nil {
		f.mu.Lock()
		delete(f.byKey, old.Key)
		f.mu.Unlock()
	}
	return tok, sess, f.n, err
}

// TestUpgradeSessionAuditsEviction: the session that replaces a pending
// one after the second factor is a creation too; what it ends is audited.
func TestUpgradeSessionAuditsEviction(t *testing.T) {
	f := &fakeFactor{pending: store.PendingFactor}
	var e *env
	e = newEnv(t, withFactor(f, func() time.Time { return e.clock.Now() }), func(_ *Config, d *Deps) {
		d.Sessions = evictingSessions{fakeSessions: d.Sessions.(*fakeSessions), n: 2}
	})
	b := e.browser(t)
	if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	if evs := evictedEvents(e); len(evs) != 1 || evs[0].Detail["sessions"] != "2" {
		t.Fatalf("after the password: %+v", evs)
	}
	if rec := passFactor(t, b, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("factor: %d %s", rec.Code, rec.Body)
	}
	evs := evictedEvents(e)
	if len(evs) != 2 || evs[1].Actor != "bob" || evs[1].Detail["sessions"] != "2" || evs[1].Detail["cause"] != "max_per_user" {
		t.Fatalf("after the factor: %+v", evs)
	}
}
