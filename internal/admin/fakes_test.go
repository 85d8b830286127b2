package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// The real types satisfy the interfaces this package defines.
var (
	_ RuleStore = (*store.Rules)(nil)
	_ Sessions  = (*store.Sessions)(nil)
	_ AuditLog  = (*store.AuditStream)(nil)
)

const pw = "Passw0rd!"

var (
	userAlice = identity.User{ID: "id-alice", Username: "alice", DN: "uid=alice,ou=people,dc=example,dc=org", DisplayName: "Alice Anderson",
		Groups: []identity.Group{{DN: "cn=admins,ou=groups,dc=example,dc=org", Name: "admins", Direct: true},
			{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering"}}}
	userBob = identity.User{ID: "id-bob", Username: "bob", DN: "uid=bob,ou=people,dc=example,dc=org", DisplayName: "Bob Brown",
		Groups: []identity.Group{{DN: "cn=developers,ou=groups,dc=example,dc=org", Name: "developers", Direct: true},
			{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering"},
			{DN: "cn=AWS-111122223333-ReadOnly,ou=groups,dc=example,dc=org", Name: "AWS-111122223333-ReadOnly"}}}
)

// fakeDir knows alice and bob.
type fakeDir struct {
	mu  sync.Mutex
	err error
}

func (d *fakeDir) users() map[string]identity.User {
	return map[string]identity.User{"alice": userAlice, "bob": userBob}
}

func (d *fakeDir) Authenticate(_ context.Context, username, password string) (identity.User, error) {
	u, ok := d.users()[username]
	if !ok || password != pw {
		return identity.User{}, identity.ErrInvalidCredentials
	}
	return u, nil
}

func (d *fakeDir) Lookup(_ context.Context, username string) (identity.User, error) {
	d.mu.Lock()
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return identity.User{}, err
	}
	u, ok := d.users()[strings.ToLower(username)]
	if !ok {
		return identity.User{}, fmt.Errorf("fake: %w", identity.ErrUserNotFound)
	}
	return u, nil
}

// fakeSessions serves both web.Sessions and admin.Sessions.
type fakeSessions struct {
	mu    sync.Mutex
	byKey map[string]store.Session
	err   error
}

func hexKey(token string) string { h := sha256.Sum256([]byte(token)); return hex.EncodeToString(h[:]) }

func (f *fakeSessions) Create(_ context.Context, u identity.User, m store.SessionMeta) (string, store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	s := store.Session{Key: hexKey(tok), User: u, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour),
		ClientIP: m.ClientIP, UserAgent: m.UserAgent}
	f.byKey[s.Key] = s
	return tok, s, nil
}

func (f *fakeSessions) Get(_ context.Context, token string) (store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.byKey[hexKey(token)]
	if !ok {
		return store.Session{}, store.ErrNotFound
	}
	return s, nil
}

func (f *fakeSessions) Delete(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.byKey, hexKey(token))
	return nil
}

func (f *fakeSessions) ListAll(_ context.Context, _ uint64, _ int64) ([]store.Session, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, 0, f.err
	}
	var out []store.Session
	for _, s := range f.byKey {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b store.Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, 0, nil
}

func (f *fakeSessions) ListUser(_ context.Context, id string) ([]store.Session, error) {
	all, _, err := f.ListAll(context.Background(), 0, 0)
	return slices.DeleteFunc(all, func(s store.Session) bool { return s.User.ID != id }), err
}

func (f *fakeSessions) DeleteByKey(_ context.Context, k string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byKey[k]; !ok {
		return store.ErrNotFound
	}
	delete(f.byKey, k)
	return nil
}

func (f *fakeSessions) RevokeUser(_ context.Context, id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, s := range f.byKey {
		if s.User.ID == id {
			delete(f.byKey, k)
			n++
		}
	}
	return n, nil
}

func (f *fakeSessions) count(username string) int {
	all, _, _ := f.ListAll(context.Background(), 0, 0)
	n := 0
	for _, s := range all {
		if s.User.Username == username {
			n++
		}
	}
	return n
}

// fakeRules keeps versions in memory, with the compare-and-set of store.Rules.
type fakeRules struct {
	mu       sync.Mutex
	versions []store.RuleVersion
	docs     [][]byte
	err      error
}

func (r *fakeRules) Current(context.Context) (store.RuleVersion, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return store.RuleVersion{}, nil, r.err
	}
	if len(r.versions) == 0 {
		return store.RuleVersion{}, nil, nil
	}
	return r.versions[len(r.versions)-1], r.docs[len(r.docs)-1], nil
}

func (r *fakeRules) save(expected int64, doc []byte, m store.ChangeMeta, from int64) (store.RuleVersion, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return store.RuleVersion{}, r.err
	}
	if int64(len(r.versions)) != expected {
		return store.RuleVersion{}, store.ErrConflict
	}
	if n := len(r.docs); n > 0 && bytes.Equal(r.docs[n-1], doc) {
		return r.versions[n-1], nil
	}
	v := store.RuleVersion{Version: expected + 1, Author: m.Author, ClientIP: m.ClientIP, RequestID: m.RequestID,
		Comment: m.Comment, Time: time.Now(), Diff: "--- v\n+++ v\n@@ -1 +1 @@\n-old\n+new\n", RestoredFrom: from}
	r.versions, r.docs = append(r.versions, v), append(r.docs, doc)
	return v, nil
}

func (r *fakeRules) Save(_ context.Context, expected int64, doc []byte, m store.ChangeMeta) (store.RuleVersion, error) {
	return r.save(expected, doc, m, 0)
}

func (r *fakeRules) Get(_ context.Context, v int64) (store.RuleVersion, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v < 1 || v > int64(len(r.versions)) {
		return store.RuleVersion{}, nil, store.ErrNotFound
	}
	return r.versions[v-1], r.docs[v-1], nil
}

func (r *fakeRules) History(_ context.Context, before int64, limit int) ([]store.RuleVersion, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.RuleVersion
	for i := len(r.versions) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || r.versions[i].Version < before {
			out = append(out, r.versions[i])
		}
	}
	return out, nil
}

func (r *fakeRules) Restore(ctx context.Context, expected, v int64, m store.ChangeMeta) (store.RuleVersion, error) {
	_, doc, err := r.Get(ctx, v)
	if err != nil {
		return store.RuleVersion{}, err
	}
	return r.save(expected, doc, m, v)
}

func (r *fakeRules) version() int64 {
	v, _, _ := r.Current(context.Background())
	return v.Version
}

// fakeAudit records events and answers queries over them.
type fakeAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *fakeAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *fakeAudit) Query(_ context.Context, q store.AuditQuery) ([]audit.Event, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for i := len(a.events) - 1; i >= 0; i-- {
		e := a.events[i]
		if (q.Actor == "" || strings.EqualFold(q.Actor, e.Actor)) && (q.Action == "" || strings.EqualFold(q.Action, e.Action)) &&
			(q.Object == "" || strings.EqualFold(q.Object, e.Object)) {
			out = append(out, e)
		}
	}
	return out, "", nil
}

func (a *fakeAudit) find(action string) []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// env is a web server with the admin UI mounted, on fakes.
type env struct {
	srv      *httptest.Server
	admin    *Admin
	dir      *fakeDir
	sessions *fakeSessions
	rules    *fakeRules
	audit    *fakeAudit
	logs     *bytes.Buffer
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{dir: &fakeDir{}, sessions: &fakeSessions{byKey: map[string]store.Session{}}, rules: &fakeRules{},
		audit: &fakeAudit{}, logs: &bytes.Buffer{}}
	if cfg.Groups == nil {
		cfg.Groups = []string{"admins"}
	}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, nil))
	a, err := New(cfg, Deps{Directory: e.dir, Rules: e.rules, Sessions: e.sessions, Audit: e.audit, AuditLog: e.audit, Logger: logger})
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	e.admin = a
	e.srv = httptest.NewUnstartedServer(nil)
	ws, err := web.New(web.Config{PublicURL: "http://" + e.srv.Listener.Addr().String(), LoginMinDuration: time.Millisecond},
		web.Deps{Directory: e.dir, Sessions: e.sessions, Limiter: allowAll{}, CSRFKey: bytes.Repeat([]byte{9}, 32),
			Audit: e.audit, Logger: logger, Mounts: []web.Mount{a}})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	e.srv.Config.Handler = ws.Handler()
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type allowAll struct{}

func (allowAll) Check(context.Context, string, string) (store.Decision, error) {
	return store.Decision{Allowed: true}, nil
}
func (allowAll) Fail(context.Context, string, string) error { return nil }
func (allowAll) Succeed(context.Context, string) error      { return nil }

// client is a browser-like HTTP client (cookies, no redirects followed).
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string
}

func newClient(t testing.TB, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	code int
	body string
	hdr  http.Header
}

func (c *client) do(req *http.Request) resp {
	c.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(b), res.Header}
}

var (
	csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	csrfMeta  = regexp.MustCompile(`<meta name="warden-csrf" content="([^"]+)">`)
)

func (c *client) get(path string) resp {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	r := c.do(req)
	if m := csrfMeta.FindStringSubmatch(r.body); m != nil {
		c.csrf = m[1]
	} else if m := csrfField.FindStringSubmatch(r.body); m != nil {
		c.csrf = m[1]
	}
	return r
}

// post sends a form with the last CSRF token seen (unless form has one).
func (c *client) post(path string, form url.Values) resp {
	c.t.Helper()
	if _, ok := form["csrf_token"]; !ok && c.csrf != "" {
		form.Set("csrf_token", c.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// api sends a JSON request with the CSRF header; hdr are extra header pairs.
func (c *client) api(method, path string, body any, hdr ...string) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set(web.CSRFHeader, c.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.do(req)
}

func (c *client) login(user, password string) {
	c.t.Helper()
	c.get("/login")
	r := c.post("/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}})
	if r.code != http.StatusSeeOther {
		c.t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	c.get("/") // a token bound to the new session
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("not JSON (%d): %s", r.code, r.body)
	}
	return m
}
