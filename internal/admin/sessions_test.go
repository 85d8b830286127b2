package admin

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store/storetest"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// countingSessions is the real *store.Sessions, counting the list calls.
type countingSessions struct {
	*store.Sessions
	listAll, listUser atomic.Int32
}

func (c *countingSessions) ListAll(ctx context.Context, cursor uint64, count int64) ([]store.Session, uint64, error) {
	c.listAll.Add(1)
	return c.Sessions.ListAll(ctx, cursor, count)
}

func (c *countingSessions) ListUser(ctx context.Context, id string) ([]store.Session, error) {
	c.listUser.Add(1)
	return c.Sessions.ListUser(ctx, id)
}

func (c *countingSessions) reset() { c.listAll.Store(0); c.listUser.Store(0) }

// realSessionsEnv is the admin UI with the real session store (on the real
// Redis when REDIS_ADDR is set, else the embedded one) and the fake
// directory.
func realSessionsEnv(t *testing.T) (*env, *countingSessions) {
	t.Helper()
	st := storetest.Open(t, "wadm")
	ss, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 8 * time.Hour, IdleTimeout: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingSessions{Sessions: ss}
	e := &env{dir: &fakeDir{}, rules: &fakeRules{}, audit: &fakeAudit{}, logs: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, nil))
	a, err := New(Config{Groups: []string{"admins"}}, Deps{Directory: e.dir, Rules: e.rules, Sessions: cs,
		Audit: e.audit, AuditLog: e.audit, Logger: logger})
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	e.admin = a
	e.srv = httptest.NewUnstartedServer(nil)
	ws, err := web.New(web.Config{PublicURL: "http://" + e.srv.Listener.Addr().String(), LoginMinDuration: time.Millisecond},
		web.Deps{Directory: e.dir, Sessions: cs, Limiter: allowAll{}, CSRFKey: bytes.Repeat([]byte{9}, 32),
			Audit: e.audit, Logger: logger, Mounts: []web.Mount{a}})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	e.srv.Config.Handler = ws.Handler()
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e, cs
}

func TestSessionsFilterAndPaging(t *testing.T) {
	e, cs := realSessionsEnv(t)
	ctx := context.Background()
	for range 2 {
		newClient(t, e.srv.URL).login("bob", pw)
	}
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	// 1,200 more sessions (more than one ListAll page of 1000), one of them
	// of a user the directory no longer knows.
	for i := range 1200 {
		u := identity.User{ID: fmt.Sprintf("id-user%d", i), Username: fmt.Sprintf("user%d", i)}
		if i == 777 {
			u = identity.User{ID: "id-gone", Username: "Gone"}
		}
		if _, _, err := cs.Create(ctx, u, store.SessionMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(page string) int { return strings.Count(page, `action="/admin/sessions/`) }

	// The directory names bob: one ListUser, no ListAll.
	cs.reset()
	res := a.get("/admin/sessions?user=BOB")
	if res.code != http.StatusOK || rows(res.body) != 2 || strings.Contains(res.body, "alice</a>") {
		t.Fatalf("bob's sessions: %d, %d rows", res.code, rows(res.body))
	}
	if cs.listUser.Load() != 1 || cs.listAll.Load() != 0 {
		t.Fatalf("filter by a known user: %d ListUser, %d ListAll calls; want 1 and 0", cs.listUser.Load(), cs.listAll.Load())
	}
	api := a.api("GET", "/admin/api/sessions?user=bob", nil)
	if n := len(api.json(t)["sessions"].([]any)); api.code != 200 || n != 2 {
		t.Fatalf("api bob: %d, %d sessions", api.code, n)
	}

	// Not in the directory, blocked, or the directory down: walk ListAll.
	for name, derr := range map[string]error{
		"not_found": nil,
		"locked":    fmt.Errorf("fake: %w", identity.ErrAccountLocked),
		"down":      fmt.Errorf("fake: %w", identity.ErrDirectoryUnavailable),
	} {
		t.Run(name, func(t *testing.T) {
			e.dir.mu.Lock()
			e.dir.err = derr
			e.dir.mu.Unlock()
			defer func() { e.dir.mu.Lock(); e.dir.err = nil; e.dir.mu.Unlock() }()
			who, want := "bob", 2
			if derr == nil {
				who, want = "gone", 1
			}
			cs.reset()
			res := a.get("/admin/sessions?user=" + who)
			if res.code != http.StatusOK || rows(res.body) != want {
				t.Fatalf("%s: %d, %d rows, want %d", who, res.code, rows(res.body), want)
			}
			if cs.listAll.Load() != 2 { // 1,203 sessions, 1000 a page
				t.Fatalf("%d ListAll calls, want 2", cs.listAll.Load())
			}
		})
	}

	// Unfiltered: pages of 200 through the API cover every session once.
	seen := map[string]int{}
	cursor, pages := "0", 0
	for {
		res := a.api("GET", "/admin/api/sessions?cursor="+cursor, nil)
		if res.code != http.StatusOK {
			t.Fatalf("page %d: %d", pages, res.code)
		}
		body := res.json(t)
		for _, s := range body["sessions"].([]any) {
			seen[s.(map[string]any)["key"].(string)]++
		}
		pages++
		if cursor = body["next_cursor"].(string); cursor == "0" || pages > 10 {
			break
		}
	}
	if len(seen) != 1203 || pages != 7 {
		t.Fatalf("listed %d sessions in %d pages, want 1203 in 7", len(seen), pages)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("session %s listed %d times", k[:8], n)
		}
	}
	// The page carries the cursor for the next page.
	if page := a.get("/admin/sessions").body; rows(page) != 200 || !strings.Contains(page, "cursor=") {
		t.Fatalf("first page: %d rows, next link %v", rows(page), strings.Contains(page, "cursor="))
	}
	// A cursor from the address bar that means nothing: an empty page, not an error.
	if res := a.get("/admin/sessions?cursor=" + strconv.FormatUint(1<<63, 10)); res.code != http.StatusOK || rows(res.body) != 0 {
		t.Fatalf("odd cursor: %d, %d rows", res.code, rows(res.body))
	}
}
