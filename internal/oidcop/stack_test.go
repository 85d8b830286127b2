package oidcop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
	"github.com/wardenidp/warden/internal/web"
)

// Clients registered in the test stack.
const (
	webClientID     = "webapp"
	webClientSecret = "webapp-secret-0123456789"
	webRedirect     = "http://127.0.0.1:9/cb"
	spaClientID     = "spa" // public, code flow
	spaRedirect     = "https://app.example.com/cb"
	noRefreshID     = "norefresh"
)

// rulesYAML grants bob's groups roles and tags everyone's username and
// email (AWS tag shape of section C).
const rulesYAML = `
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: dev
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/Developer
        max_session_seconds: 3600
  - id: eng
    group: engineering
    roles:
      - arn: arn:aws:iam::111122223333:role/ReadOnly
tags:
  attributes:
    - attribute: username
      key: WardenUser
      transitive: true
    - attribute: email
      key: Email
`

// clock is the provider's clock: the wall clock plus an offset tests move.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// stack is the real thing: web.Server with the OP mounted, on a real
// redis-server and a real OpenLDAP.
type stack struct {
	base   string
	userPW string
	p      *oidcop.Provider
	dir    *ldap.Directory
	st     *store.Store
	clock  *clock
	audit  *memAudit
}

type memAudit struct {
	mu     chan struct{}
	events []audit.Event
}

func newMemAudit() *memAudit { a := &memAudit{mu: make(chan struct{}, 1)}; return a }
func (a *memAudit) Record(_ context.Context, e audit.Event) {
	a.mu <- struct{}{}
	a.events = append(a.events, e)
	<-a.mu
}
func (a *memAudit) has(action, result string) bool {
	a.mu <- struct{}{}
	defer func() { <-a.mu }()
	for _, e := range a.events {
		if e.Action == action && (result == "" || e.Result == result) {
			return true
		}
	}
	return false
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("OIDCOP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newStack(t testing.TB, mod func(*oidcop.Config), webMods ...func(*web.Deps)) *stack {
	return newStackOn(t, "", mod, webMods...)
}

// newStackOn is newStack on the Redis at redisAddr ("" = REDIS_ADDR).
func newStackOn(t testing.TB, redisAddr string, mod func(*oidcop.Config), webMods ...func(*web.Deps)) *stack {
	t.Helper()
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW", "REDIS_ADDR")
	logger := testLogger(t)
	if redisAddr == "" {
		redisAddr = env["REDIS_ADDR"]
	}
	rc := store.RedisConfig{Addrs: []string{redisAddr}, DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	rc.SetDefaults()
	rc.KeyPrefix = fmt.Sprintf("warden-oidctest-%d:", time.Now().UnixNano())
	st, err := store.Open(context.Background(), rc, logger)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := st.Client().Scan(ctx, 0, rc.KeyPrefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			st.Client().Del(ctx, iter.Val())
		}
		_ = st.Close()
	})
	dc := ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"]}
	dc.ApplyPreset()
	dc.SetDefaults()
	dir, err := ldap.New(dc, ldap.WithLogger(logger))
	if err != nil {
		t.Fatalf("ldap: %v", err)
	}
	t.Cleanup(func() { _ = dir.Close() })
	var sc store.SessionConfig
	sc.SetDefaults()
	sessions, err := store.NewSessions(st, sc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lc store.LimitConfig
	lc.SetDefaults()
	limiter, err := store.NewLimiter(st, lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kc keys.Config
	kc.SetDefaults()
	ring, err := keys.Open(t.TempDir(), kc, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rolemap.ParseYAML([]byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rolemap.Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	holder := &rolemap.Holder{}
	holder.Store(eng)
	subKey, err := st.SharedSecret(context.Background(), "oidc-sub", 32)
	if err != nil {
		t.Fatal(err)
	}
	csrfKey, err := st.SharedSecret(context.Background(), "csrf", 32)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	s := &stack{base: "http://" + hs.Listener.Addr().String(), userPW: env["LDAP_USER_PW"], dir: dir, st: st,
		clock: &clock{}, audit: newMemAudit()}
	cfg := oidcop.Config{Clients: []oidcop.ClientConfig{
		{ID: webClientID, Name: "Web App", Secret: webClientSecret, RedirectURIs: []string{webRedirect},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/bye"}},
		{ID: spaClientID, Public: true, RedirectURIs: []string{spaRedirect}},
		{ID: noRefreshID, Secret: webClientSecret, RedirectURIs: []string{webRedirect}, GrantTypes: []string{"authorization_code"}},
	}}
	if mod != nil {
		mod(&cfg)
	}
	s.p, err = oidcop.New(cfg, oidcop.Deps{Keys: ring, Store: st, Directory: dir, Rules: holder, Audit: s.audit,
		Logger: logger, Clock: s.clock.Now, PublicURL: s.base, SubjectKey: subKey})
	if err != nil {
		t.Fatal(err)
	}
	wd := web.Deps{Directory: dir, Sessions: sessions, Limiter: limiter,
		CSRFKey: csrfKey, Audit: s.audit, Logger: logger, Mounts: []web.Mount{s.p}}
	for _, m := range webMods {
		m(&wd)
	}
	ws, err := web.New(web.Config{PublicURL: s.base}, wd)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = ws.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	return s
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    testing.TB
	s    *stack
	c    *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (s *stack) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, s: s, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	code int
	loc  string
	body string
	hdr  http.Header
}

func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if m := csrfField.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp{code: res.StatusCode, loc: res.Header.Get("Location"), body: string(body), hdr: res.Header}
}

func (b *browser) get(u string) resp {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.s.base + u
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) resp {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.s.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) login(user string, next string) resp {
	b.t.Helper()
	b.get("/login")
	r := b.post("/login", url.Values{"username": {user}, "password": {b.s.userPW}, "next": {next}, "csrf_token": {b.csrf}})
	if r.code != http.StatusSeeOther {
		b.t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	return r
}

// authorize runs the browser part of the code flow from the authorization
// URL to the client's redirect URI, and returns that final URL.
func (b *browser) authorize(authURL string) *url.URL {
	b.t.Helper()
	u := authURL
	for i := 0; i < 6; i++ {
		r := b.get(u)
		if r.code != http.StatusFound && r.code != http.StatusSeeOther {
			b.t.Fatalf("GET %s: %d %s", u, r.code, r.body)
		}
		next, err := url.Parse(r.loc)
		if err != nil {
			b.t.Fatal(err)
		}
		if next.Host == "" {
			u = b.s.base + r.loc
			continue
		}
		if strings.HasPrefix(r.loc, b.s.base) {
			u = r.loc
			continue
		}
		return next
	}
	b.t.Fatalf("too many redirects from %s", authURL)
	return nil
}

// form posts to an OAuth endpoint (no cookies); basic = client id:secret.
func (s *stack) form(t testing.TB, path string, form url.Values, basic ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(body) > 0 && json.Unmarshal(body, &m) != nil {
		t.Fatalf("%s: not JSON (%d): %s", path, res.StatusCode, body)
	}
	return res.StatusCode, m
}

// userinfo calls /oauth/userinfo with a bearer token.
func (s *stack) userinfo(t testing.TB, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/oauth/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return res.StatusCode, m
}

// jwtPayload decodes a JWT's payload with json.Number for numbers.
func jwtPayload(t testing.TB, jwt string) (map[string]any, []byte) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m, raw
}
