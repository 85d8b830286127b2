package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// The portal is tested through a real web.Server with fakes of the
// directory, the session store and the limiter: the pages, the session,
// CSRF and second-factor handling are the server's, as in production.

const testPassword = "S3cret-Pa55-w0rd!"

var errBoom = errors.New("boom")

var bob = identity.User{
	ID: "6f0c9f7e-4a53-4b4e-9f1d-1c2d3e4f5a6b", Username: "bob", DN: "cn=bob,ou=people,dc=example,dc=org",
	DisplayName: "Bob Brown", Email: "bob@example.org",
	Groups: []identity.Group{
		{DN: "cn=developers,ou=groups,dc=example,dc=org", Name: "developers", Direct: true},
		{DN: "cn=staff,ou=groups,dc=example,dc=org", Name: "staff", Direct: false},
	},
}

// fakeDir knows bob, with testPassword.
type fakeDir struct{}

func (fakeDir) Authenticate(_ context.Context, username, password string) (identity.User, error) {
	if username == "bob" && password == testPassword {
		return bob, nil
	}
	return identity.User{}, fmt.Errorf("fake: bind: %w", identity.ErrInvalidCredentials)
}

// fakeSessions keeps sessions in a map under the SHA-256 of the token, like
// the real store, and keeps re-checks (store.Sessions.Rechecked).
type fakeSessions struct {
	mu    sync.Mutex
	byKey map[string]store.Session
	now   func() time.Time
}

func keyOf(token string) string { h := sha256.Sum256([]byte(token)); return hex.EncodeToString(h[:]) }

func (f *fakeSessions) Create(_ context.Context, u identity.User, meta store.SessionMeta) (string, store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	now := f.now()
	s := store.Session{Key: keyOf(token), User: u, CreatedAt: now, LastSeen: now, CheckedAt: now,
		ExpiresAt: now.Add(8 * time.Hour), ClientIP: meta.ClientIP, Authn: meta.Authn, Pending: meta.Pending}
	if !meta.NotAfter.IsZero() && meta.NotAfter.Before(s.ExpiresAt) {
		s.ExpiresAt = meta.NotAfter
	}
	f.byKey[s.Key] = s
	return token, s, nil
}

func (f *fakeSessions) Get(_ context.Context, token string) (store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.byKey[keyOf(token)]
	if !ok {
		return store.Session{}, fmt.Errorf("fake: get: %w", store.ErrNotFound)
	}
	return s, nil
}

func (f *fakeSessions) Delete(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byKey, keyOf(token))
	return nil
}

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

// allowAll is a limiter that never limits.
type allowAll struct{}

func (allowAll) Check(context.Context, string, string) (store.Decision, error) {
	return store.Decision{Allowed: true}, nil
}
func (allowAll) Fail(context.Context, string, string) error { return nil }
func (allowAll) Succeed(context.Context, string) error      { return nil }

// fakeClock stands still unless told; Sleep moves it on.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) { c.Advance(max(d, 0)) }

// recordingAudit keeps events.
type recordingAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *recordingAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *recordingAudit) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// fakeBackend hands out a fixed grant list per username and records Console
// calls. Console refuses destinations outside https://console.aws.amazon.com/
// (the real check is samlidp.ValidRelayState, adapted in internal/app).
type fakeBackend struct {
	mu         sync.Mutex
	grants     map[string][]rolemap.Grant
	grantsErr  error
	consoleErr error
	acs        string
	calls      []consoleCall
}

type consoleCall struct {
	User  string
	Grant rolemap.Grant
	Dest  string
}

func (p *fakeBackend) Grants(_ context.Context, u identity.User) (rolemap.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.grantsErr != nil {
		return rolemap.Result{}, p.grantsErr
	}
	return rolemap.Result{Grants: append([]rolemap.Grant(nil), p.grants[u.Username]...)}, nil
}

func (p *fakeBackend) Console(_ context.Context, u identity.User, _ identity.Authn, g rolemap.Grant, dest string) (ConsolePost, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, consoleCall{u.Username, g, dest})
	if p.consoleErr != nil {
		return ConsolePost{}, p.consoleErr
	}
	if dest != "" && !strings.HasPrefix(dest, "https://console.aws.amazon.com/") {
		return ConsolePost{}, fmt.Errorf("fake: relay state: %w", ErrBadDestination)
	}
	resp := base64.StdEncoding.EncodeToString([]byte("<Response role=\"" + g.RoleARN + "\" user=\"" + u.Username + "\"/>"))
	return ConsolePost{URL: p.acs, SAMLResponse: resp, RelayState: dest}, nil
}

func (p *fakeBackend) Calls() []consoleCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]consoleCall(nil), p.calls...)
}

func (p *fakeBackend) set(f func(p *fakeBackend)) { p.mu.Lock(); f(p); p.mu.Unlock() }

func grant(acctName, acctID, role string, secs int) rolemap.Grant {
	return rolemap.Grant{RoleARN: "arn:aws:iam::" + acctID + ":role/" + role,
		ProviderARN: "arn:aws:iam::" + acctID + ":saml-provider/warden", AccountID: acctID,
		AccountName: acctName, Partition: "aws", RoleName: role, SessionSeconds: secs}
}

// bobGrants are in rolemap's order (account ID, then ARN), not the portal's.
var bobGrants = []rolemap.Grant{
	grant("prod", "111122223333", "ReadOnly", 3600),
	grant("prod", "111122223333", "ViewOnly", 0),
	grant("staging", "444455556666", "PowerUser", 28800),
	grant("Analytics", "999988887777", "team/Reader", 0), // a role with a path
}

func init() {
	// the path variant: name Reader, path /team/
	bobGrants[3].RoleARN = "arn:aws:iam::999988887777:role/team/Reader"
	bobGrants[3].RoleName = "Reader"
}

// env is a web.Server with fakes, and the portal on it (unless noPortal).
type env struct {
	srv      *web.Server
	h        http.Handler
	ui       *UI
	sessions *fakeSessions
	clock    *fakeClock
	audit    *recordingAudit
	logs     *syncBuffer
	cookie   string // the session cookie's name
}

// envOptions change what newEnv builds.
type envOptions struct {
	publicURL string
	backend   Backend // nil: no portal
	keys      KeyMinter
	deps      func(d *web.Deps)
}

type envOption func(*envOptions)

func withPublicURL(u string) envOption { return func(o *envOptions) { o.publicURL = u } }
func withBackend(b Backend) envOption  { return func(o *envOptions) { o.backend = b } }
func withKeys(k KeyMinter) envOption   { return func(o *envOptions) { o.keys = k } }
func withDeps(f func(d *web.Deps)) envOption {
	return func(o *envOptions) {
		prev := o.deps
		o.deps = func(d *web.Deps) {
			if prev != nil {
				prev(d)
			}
			f(d)
		}
	}
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	o := envOptions{publicURL: "http://warden.test"}
	for _, f := range opts {
		f(&o)
	}
	e := &env{audit: &recordingAudit{}, logs: &syncBuffer{}, cookie: "warden_session",
		clock: &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}}
	e.sessions = &fakeSessions{byKey: map[string]store.Session{}, now: e.clock.Now}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := web.Deps{
		Directory: fakeDir{}, Sessions: e.sessions, Limiter: allowAll{},
		CSRFKey: bytes.Repeat([]byte{7}, 32), Logger: logger, Registry: prometheus.NewRegistry(),
		Clock: e.clock, Audit: e.audit,
	}
	if o.backend != nil {
		ui, err := New(Deps{Backend: o.backend, PublicURL: o.publicURL, Audit: e.audit, Logger: logger, Keys: o.keys})
		if err != nil {
			t.Fatalf("portal.New: %v", err)
		}
		e.ui = ui
		deps.Mounts = append(deps.Mounts, ui)
	}
	if o.deps != nil {
		o.deps(&deps)
	}
	srv, err := web.New(web.Config{PublicURL: o.publicURL, LoginMinDuration: time.Millisecond}, deps)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	e.srv, e.h = srv, srv.Handler()
	if strings.HasPrefix(o.publicURL, "https:") {
		e.cookie = "__Host-warden_session"
	}
	return e
}

func newPortalEnv(t testing.TB) (*env, *fakeBackend) {
	t.Helper()
	p := &fakeBackend{grants: map[string][]rolemap.Grant{"bob": bobGrants}, acs: "https://signin.aws.amazon.com/saml"}
	return newEnv(t, withBackend(p)), p
}

// browser is a tiny cookie-keeping client for the handler.
type browser struct {
	t       testing.TB
	h       http.Handler
	cookies map[string]*http.Cookie
}

func (e *env) browser(t testing.TB) *browser {
	return &browser{t: t, h: e.h, cookies: map[string]*http.Cookie{}}
}

func (b *browser) do(req *http.Request) *httptest.ResponseRecorder {
	b.t.Helper()
	req.RemoteAddr = "198.51.100.7:50000"
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return rec
}

func (b *browser) get(path string) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (b *browser) post(path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	b.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

func csrfFrom(t testing.TB, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", body)
	}
	return m[1]
}

// login fetches the form and posts it.
func (b *browser) login(username, password, next string) *httptest.ResponseRecorder {
	b.t.Helper()
	page := b.get("/login")
	if page.Code != http.StatusOK {
		b.t.Fatalf("GET /login: %d", page.Code)
	}
	return b.post("/login", url.Values{"csrf_token": {csrfFrom(b.t, page.Body.String())},
		"username": {username}, "password": {password}, "next": {next}})
}

func signedIn(t testing.TB, e *env) *browser {
	t.Helper()
	b := e.browser(t)
	if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	return b
}

// fakeChecker is a web.UserChecker: it answers with what it is told and
// records the route (Via) of every look-up; a gone user's sessions are
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
