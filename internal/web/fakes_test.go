package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// The real types satisfy the interfaces this package defines.
var (
	_ Authenticator = directory.Directory(nil)
	_ Sessions      = (*store.Sessions)(nil)
	_ Limiter       = (*store.Limiter)(nil)
)

const testPassword = "S3cret-Pa55-w0rd!"

// fakeDir is a directory of a few users. Account-state users answer like
// Samba AD: "locked" is locked whatever the password; the others show their
// state only with the right password.
type fakeDir struct {
	mu    sync.Mutex
	calls int
	err   error // when set, every call fails with it
	panic bool
}

var bob = identity.User{
	ID: "6f0c9f7e-4a53-4b4e-9f1d-1c2d3e4f5a6b", Username: "bob", DN: "cn=bob,ou=people,dc=example,dc=org",
	DisplayName: "Bob Brown", Email: "bob@example.org",
	Groups: []identity.Group{
		{DN: "cn=company,ou=groups,dc=example,dc=org", Name: "company", Direct: false},
		{DN: "cn=developers,ou=groups,dc=example,dc=org", Name: "developers", Direct: true},
		{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering", Direct: false},
		{DN: "cn=staff,ou=groups,dc=example,dc=org", Name: "staff", Direct: false},
	},
}

func (d *fakeDir) Authenticate(_ context.Context, username, password string) (identity.User, error) {
	d.mu.Lock()
	d.calls++
	err, p := d.err, d.panic
	d.mu.Unlock()
	if p {
		panic("fake directory exploded: secret-panic-detail")
	}
	if err != nil {
		return identity.User{}, err
	}
	if username == "locked" {
		return identity.User{}, fmt.Errorf("ldap: bind: data 775: %w", identity.ErrAccountLocked)
	}
	if password != testPassword {
		return identity.User{}, fmt.Errorf("ldap: bind: %w", identity.ErrInvalidCredentials)
	}
	switch username {
	case "bob":
		return bob, nil
	case "pwexpired":
		return identity.User{}, identity.ErrPasswordExpired
	case "mustchange":
		return identity.User{}, identity.ErrMustChangePassword
	case "disabled":
		return identity.User{}, identity.ErrAccountDisabled
	case "acctexpired":
		return identity.User{}, identity.ErrAccountExpired
	}
	return identity.User{}, identity.ErrInvalidCredentials
}

func (d *fakeDir) Calls() int { d.mu.Lock(); defer d.mu.Unlock(); return d.calls }

// fakeSessions keeps sessions in a map under the SHA-256 of the token, like
// the real store.
type fakeSessions struct {
	mu        sync.Mutex
	byKey     map[string]store.Session
	created   []store.SessionMeta
	deleted   []string
	err       error // every call fails with it
	createErr error
	lifetime  time.Duration
	now       func() time.Time
}

func newFakeSessions(now func() time.Time) *fakeSessions {
	return &fakeSessions{byKey: map[string]store.Session{}, lifetime: 8 * time.Hour, now: now}
}

func keyOf(token string) string { h := sha256.Sum256([]byte(token)); return hex.EncodeToString(h[:]) }

func (f *fakeSessions) Create(_ context.Context, u identity.User, meta store.SessionMeta) (string, store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", store.Session{}, f.err
	}
	if f.createErr != nil {
		return "", store.Session{}, f.createErr
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	now := f.now()
	s := store.Session{Key: keyOf(token), User: u, CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(f.lifetime), ClientIP: meta.ClientIP, UserAgent: meta.UserAgent,
		Authn: meta.Authn, Pending: meta.Pending}
	if !meta.NotAfter.IsZero() && meta.NotAfter.Before(s.ExpiresAt) {
		s.ExpiresAt = meta.NotAfter
	}
	f.byKey[s.Key] = s
	f.created = append(f.created, meta)
	return token, s, nil
}

func (f *fakeSessions) Get(_ context.Context, token string) (store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.Session{}, f.err
	}
	s, ok := f.byKey[keyOf(token)]
	if !ok {
		return store.Session{}, fmt.Errorf("fake: get: %w", store.ErrNotFound)
	}
	return s, nil
}

func (f *fakeSessions) Delete(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.deleted = append(f.deleted, token)
	delete(f.byKey, keyOf(token))
	return nil
}

func (f *fakeSessions) has(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.byKey[keyOf(token)]
	return ok
}

// fakeLimiter allows everything unless told otherwise, and counts calls.
type fakeLimiter struct {
	mu        sync.Mutex
	decision  store.Decision
	checkErr  error
	checks    int
	fails     []string
	succeeded []string
	pending   map[string]int // failures since the user's last Succeed
}

func newFakeLimiter() *fakeLimiter { return &fakeLimiter{decision: store.Decision{Allowed: true}} }

func (l *fakeLimiter) Check(_ context.Context, username, ip string) (store.Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checks++
	d := l.decision
	// as the store does: the user's counter holds failures since the last
	// reset
	d.Failures = d.Failures || l.pending[username] > 0
	return d, l.checkErr
}

func (l *fakeLimiter) Fail(_ context.Context, username, ip string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, username+"@"+ip)
	if l.pending == nil {
		l.pending = map[string]int{}
	}
	l.pending[username]++
	return nil
}

func (l *fakeLimiter) Succeed(_ context.Context, username string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.succeeded = append(l.succeeded, username)
	delete(l.pending, username)
	return nil
}

// fakeClock stands still unless told; Sleep records what it was asked and
// moves the clock on by that much.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
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

// env is a server with fakes.
type env struct {
	srv      *Server
	h        http.Handler
	dir      *fakeDir
	sessions *fakeSessions
	limiter  *fakeLimiter
	clock    *fakeClock
	audit    *recordingAudit
	logs     *syncBuffer
	reg      *prometheus.Registry
	health   map[string]error
	cfg      Config

	setHealth func(name string, err error)
}

type envOption func(*Config, *Deps)

func withPublicURL(u string) envOption { return func(c *Config, _ *Deps) { c.PublicURL = u } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{dir: &fakeDir{}, limiter: newFakeLimiter(), audit: &recordingAudit{}, logs: &syncBuffer{},
		reg: prometheus.NewRegistry(), health: map[string]error{},
		clock: &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}}
	e.sessions = newFakeSessions(e.clock.Now)
	var hmu sync.Mutex
	check := func(name string) HealthCheck {
		return HealthCheck{Name: name, Check: func(context.Context) error {
			hmu.Lock()
			defer hmu.Unlock()
			return e.health[name]
		}}
	}
	cfg := Config{PublicURL: "http://warden.test", LoginMinDuration: 300 * time.Millisecond}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := Deps{
		Directory: e.dir, Sessions: e.sessions, Limiter: e.limiter,
		CSRFKey: bytes.Repeat([]byte{7}, 32),
		Health:  []HealthCheck{check("redis"), check("directory")},
		Logger:  logger, Registry: e.reg, Clock: e.clock,
		Audit: multiAudit{e.audit, audit.NewSlog(logger, e.clock)},
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv, e.h, e.cfg = srv, srv.Handler(), srv.cfg
	e.setHealth = func(name string, err error) { hmu.Lock(); e.health[name] = err; hmu.Unlock() }
	return e
}

type multiAudit []audit.Logger

func (m multiAudit) Record(ctx context.Context, e audit.Event) {
	for _, l := range m {
		l.Record(ctx, e)
	}
}

// browser is a tiny cookie-keeping client for the handler.
type browser struct {
	t       testing.TB
	h       http.Handler
	cookies map[string]*http.Cookie
	remote  string
}

func (e *env) browser(t testing.TB) *browser {
	return &browser{t: t, h: e.h, cookies: map[string]*http.Cookie{}, remote: "198.51.100.7:50000"}
}

func (b *browser) do(req *http.Request) *httptest.ResponseRecorder {
	b.t.Helper()
	req.RemoteAddr = b.remote
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

// normalize removes what legitimately differs between two answers: CSRF
// tokens and request IDs.
var (
	tokenRe = regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"`)
	ridRe   = regexp.MustCompile(`<code>[0-9a-f]{20}</code>`)
)

func normalize(s string) string {
	return ridRe.ReplaceAllString(tokenRe.ReplaceAllString(s, `value="TOKEN"`), "<code>RID</code>")
}

var _ io.Writer = (*syncBuffer)(nil)
var errBoom = errors.New("boom")
