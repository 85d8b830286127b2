package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// fakeChecker answers Check with what it is told; gone users' sessions are
// deleted from the fake store, as access.Access would revoke them.
type fakeChecker struct {
	mu       sync.Mutex
	err      error
	groups   []identity.Group
	vias     []string
	sessions *fakeSessions
}

func (f *fakeChecker) Check(_ context.Context, u identity.User, req access.Request) (identity.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vias = append(f.vias, req.Via)
	if f.err != nil {
		if identity.IsGone(f.err) {
			f.sessions.mu.Lock()
			for k, s := range f.sessions.byKey {
				if s.User.ID == u.ID {
					delete(f.sessions.byKey, k)
				}
			}
			f.sessions.mu.Unlock()
		}
		return identity.User{}, f.err
	}
	u.Groups = f.groups
	return u, nil
}

func (f *fakeChecker) set(err error, groups ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.groups = err, nil
	for _, g := range groups {
		f.groups = append(f.groups, identity.Group{Name: g})
	}
}

func (f *fakeChecker) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.vias...)
}

// Rechecked makes the fake session store keep re-checks, like the real one.
func (f *fakeSessions) Rechecked(_ context.Context, token string, sess store.Session, u identity.User) (store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byKey[keyOf(token)]; !ok {
		return store.Session{}, fmt.Errorf("fake: %w", store.ErrNotFound)
	}
	sess.User, sess.CheckedAt = u, f.now()
	f.byKey[keyOf(token)] = sess
	return sess, nil
}

func newRecheckEnv(t *testing.T) (*env, *fakeChecker) {
	t.Helper()
	uc := &fakeChecker{}
	uc.set(nil, "developers")
	show := func(c *gin.Context) {
		sess, ok := CurrentSession(c)
		if !ok {
			RedirectToLogin(c)
			return
		}
		c.String(http.StatusOK, "fresh user=%s groups=%d", sess.User.Username, len(sess.User.Groups))
	}
	m := &testMount{fsys: fstest.MapFS{}, routes: []Route{
		{Method: http.MethodGet, Path: "/sub/fresh", Handler: show, Fresh: true},
		{Method: http.MethodPost, Path: "/sub/fresh", Handler: show, Fresh: true},
	}}
	e := newEnv(t, func(_ *Config, d *Deps) {
		d.Users, d.RecheckInterval, d.Mounts = uc, time.Minute, []Mount{m}
	})
	uc.sessions = e.sessions
	return e, uc
}

func signedIn(t testing.TB, e *env) *browser {
	t.Helper()
	b := e.browser(t)
	if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	return b
}

// A browser session is looked up again once its last look-up is older
// than the recheck interval; the home page shows the groups of that
// look-up.
func TestRecheckInterval(t *testing.T) {
	e, uc := newRecheckEnv(t)
	b := signedIn(t, e)
	if rec := b.get("/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), ">developers<") {
		t.Fatalf("GET / = %d, want the groups", rec.Code)
	}
	if got := uc.calls(); len(got) != 0 {
		t.Fatalf("look-ups within the interval: %v", got)
	}
	// Removed from the group: seen once the interval has passed.
	uc.set(nil)
	e.clock.Advance(59 * time.Second)
	if rec := b.get("/"); !strings.Contains(rec.Body.String(), ">developers<") || len(uc.calls()) != 0 {
		t.Fatalf("before the interval: %d calls", len(uc.calls()))
	}
	e.clock.Advance(2 * time.Second)
	rec := b.get("/")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), ">developers<") {
		t.Fatalf("after the interval: %d, group still listed", rec.Code)
	}
	if got := uc.calls(); fmt.Sprint(got) != "[session]" {
		t.Errorf("look-ups = %v, want one, via session", got)
	}
	// Stored: the next request within the interval does not look up again.
	b.get("/")
	if got := uc.calls(); len(got) != 1 {
		t.Errorf("look-ups after a stored re-check = %v", got)
	}

	// A directory outage at a re-check serves the last look-up, logged.
	uc.set(fmt.Errorf("ldap: %w", identity.ErrDirectoryUnavailable))
	e.clock.Advance(2 * time.Minute)
	if rec := b.get("/"); rec.Code != http.StatusOK {
		t.Errorf("outage at re-check: %d, want the page", rec.Code)
	}
	if !strings.Contains(e.logs.String(), "session re-check failed") {
		t.Error("outage at re-check not logged")
	}

	// Deleted: the session ends at its next request.
	uc.set(fmt.Errorf("ldap: %w", identity.ErrUserNotFound))
	rec = b.get("/")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("deleted user: %d %q, want the sign-in page", rec.Code, rec.Header().Get("Location"))
	}
	if _, ok := b.cookies[e.srv.sessionCookieName()]; ok {
		t.Error("session cookie kept")
	}
}

// Fresh mount routes (GET and a CSRF-checked POST) look the user up at
// every request, whatever the interval; gone means signed out, an outage
// is 503. (internal/portal tests the console, a Fresh route, the same way.)
func TestFreshHandOffs(t *testing.T) {
	e, uc := newRecheckEnv(t)
	b := signedIn(t, e)
	csrf := csrfFrom(t, b.get("/").Body.String())
	if rec := b.post("/sub/fresh", url.Values{"csrf_token": {csrf}}); rec.Code != http.StatusOK || rec.Body.String() != "fresh user=bob groups=1" {
		t.Fatalf("fresh POST: %d %q", rec.Code, rec.Body.String())
	}
	if rec := b.get("/sub/fresh"); rec.Code != http.StatusOK || rec.Body.String() != "fresh user=bob groups=1" {
		t.Fatalf("fresh mount route: %d %q", rec.Code, rec.Body.String())
	}
	if got := uc.calls(); fmt.Sprint(got) != "[/sub/fresh /sub/fresh]" {
		t.Errorf("look-ups = %v, want one per request, via the route", got)
	}

	// Removed from the group, within the interval: seen at once.
	uc.set(nil)
	if rec := b.get("/sub/fresh"); rec.Body.String() != "fresh user=bob groups=0" {
		t.Errorf("after removal: %q", rec.Body.String())
	}

	// Directory down: 503 with a request ID, never a refusal.
	uc.set(fmt.Errorf("ldap: %w", identity.ErrDirectoryUnavailable), "developers")
	for _, rec := range []*httptest.ResponseRecorder{
		b.post("/sub/fresh", url.Values{"csrf_token": {csrf}}),
		b.get("/sub/fresh"),
	} {
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("X-Request-ID") == "" {
			t.Errorf("outage: %d (request ID %q), want 503", rec.Code, rec.Header().Get("X-Request-ID"))
		}
	}

	// Disabled: signed out on the spot.
	uc.set(fmt.Errorf("ldap: %w", identity.ErrAccountDisabled))
	rec := b.post("/sub/fresh", url.Values{"csrf_token": {csrf}})
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("fresh POST of a disabled user: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	uc.set(nil, "developers")
	if rec := b.get("/sub/fresh"); rec.Code != http.StatusSeeOther {
		t.Errorf("fresh route after the session ended: %d, want the sign-in page", rec.Code)
	}
}
