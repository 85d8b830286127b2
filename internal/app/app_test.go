package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
	"github.com/wardenidp/warden/internal/web"
)

// startApp runs wardend with o on a loopback listener and returns its base
// URL; the server stops when the test ends.
func startApp(t testing.TB, o Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startAppOn(t, o, ln, "http://"+ln.Addr().String())
}

// startAppOn runs wardend with o on ln, with base as its public URL
// (e.g. http://localhost:PORT, a host name for passkeys), and returns base.
func startAppOn(t testing.TB, o Options, ln net.Listener, base string) string {
	t.Helper()
	o.Listener = ln
	o.Server.Listen = ln.Addr().String()
	o.Server.PublicURL = base
	o.Server.SetDefaults()
	o.Session.SetDefaults()
	o.LoginLimits.SetDefaults()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Banner == nil {
		o.Banner = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	o.Started = func(net.Addr) { close(started) }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("wardend did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("wardend did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wardend stopped with %v", err)
		}
	})
	return base
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// signIn walks the real pages: the form, the POST, the home page.
func (b *browser) signIn(user, password string) (int, string) {
	b.t.Helper()
	code, body, _ := b.get("/login")
	if code != http.StatusOK {
		b.t.Fatalf("GET /login: %d", code)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatal("no csrf_token in the login form")
	}
	code, body, hdr := b.post("/login", url.Values{"username": {user}, "password": {password}, "csrf_token": {m[1]}, "next": {"/"}})
	if code == http.StatusSeeOther {
		if loc := hdr.Get("Location"); loc != "/" {
			b.t.Fatalf("redirect to %q, want /", loc)
		}
		code, body, _ = b.get("/")
	}
	return code, body
}

func (b *browser) signOut() {
	b.t.Helper()
	_, body, _ := b.get("/")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatal("no csrf_token on the home page")
	}
	code, _, hdr := b.post("/logout", url.Values{"csrf_token": {m[1]}})
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/login") {
		b.t.Fatalf("POST /logout: %d to %q", code, hdr.Get("Location"))
	}
	if code, _, hdr := b.get("/"); code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/login") {
		b.t.Fatalf("after sign-out, GET / = %d to %q; want a redirect to /login", code, hdr.Get("Location"))
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openLDAPOptions(t testing.TB) Options {
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW", "REDIS_ADDR")
	o := Options{Logger: testLogger(t), Admin: admin.Config{Groups: []string{"admins"}}}
	o.Directory = ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"]}
	o.Directory.Attributes.Extra = []string{"department"} // the example rules tag it
	o.Directory.ApplyPreset()
	o.Directory.SetDefaults()
	o.Redis = store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	o.Redis.SetDefaults()
	// a prefix of our own: other tests share the Redis
	o.Redis.KeyPrefix = "warden-apptest-" + strings.ReplaceAll(t.Name(), "/", "-") + ":"
	return o
}

// TestSignInOpenLDAP is the whole of step 1 against real servers: real
// OpenLDAP, real redis-server, the real pages.
func TestSignInOpenLDAP(t *testing.T) {
	o := openLDAPOptions(t)
	pw := os.Getenv("LDAP_USER_PW")
	base := startApp(t, o)
	b := newBrowser(t, base)

	code, body := b.signIn("bob", pw)
	if code != http.StatusOK {
		t.Fatalf("sign-in as bob: %d\n%s", code, body)
	}
	for _, want := range []string{"Bob Brown", "bob@example.org", "developers", "engineering", "staff", "company"} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	b.signOut()

	// a wrong password and an unknown user read alike
	nb := newBrowser(t, base)
	c1, wrong := nb.signIn("bob", "not-"+pw)
	c2, unknown := nb.signIn("nobody-here", pw)
	if c1 != c2 || !strings.Contains(wrong, "Wrong username or password") {
		t.Fatalf("wrong password %d, unknown user %d:\n%s", c1, c2, wrong)
	}
	strip := regexp.MustCompile(`value="[^"]*"|[0-9a-f]{16,}`)
	if strip.ReplaceAllString(wrong, "") != strip.ReplaceAllString(unknown, "") {
		t.Error("the pages for a wrong password and an unknown user differ")
	}

	// an account state gets its own page
	if _, body := newBrowser(t, base).signIn("mustchange", pw); !strings.Contains(strings.ToLower(body), "change") {
		t.Errorf("mustchange: page does not say the password must be changed:\n%s", body)
	}

	code, body, _ = b.get("/readyz")
	if code != http.StatusOK {
		t.Errorf("/readyz %d: %s", code, body)
	}
	code, body, _ = b.get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, "warden_ldap_operation_duration_seconds") || !strings.Contains(body, "warden_ldap_pool_connections") {
		t.Errorf("/metrics lacks the LDAP metrics (%d)", code)
	}
}

// TestSignInActiveDirectory signs in through a real Samba AD DC over LDAPS.
func TestSignInActiveDirectory(t *testing.T) {
	env := testenv.Require(t, "AD_LDAPS_URL", "AD_BASE_DN", "AD_BIND_UPN", "AD_BIND_PW", "AD_USER_PW", "AD_CA_CERT", "REDIS_ADDR")
	o := openLDAPOptions(t)
	o.Directory = ldap.Config{Type: ldap.TypeActiveDirectory, URLs: []string{env["AD_LDAPS_URL"]}, BaseDN: env["AD_BASE_DN"],
		BindDN: env["AD_BIND_UPN"], BindPassword: env["AD_BIND_PW"], CAFile: env["AD_CA_CERT"]}
	o.Directory.Attributes.Extra = []string{"department"} // the example rules tag it
	o.Directory.ApplyPreset()
	o.Directory.SetDefaults()
	base := startApp(t, o)
	b := newBrowser(t, base)
	code, body := b.signIn("bob", env["AD_USER_PW"])
	if code != http.StatusOK {
		t.Fatalf("sign-in as bob: %d\n%s", code, body)
	}
	for _, want := range []string{"developers", "engineering", "staff", "company"} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	if _, body := newBrowser(t, base).signIn("pwexpired", env["AD_USER_PW"]); !strings.Contains(strings.ToLower(body), "expired") {
		t.Errorf("pwexpired: page does not say the password expired:\n%s", body)
	}
	b.signOut()
}

// TestRedisOutageIs503 stops answering Redis mid-flight: sign-in must say 503
// with a request ID, never "wrong password" and never 500.
func TestRedisOutageIs503(t *testing.T) {
	o := openLDAPOptions(t)
	// a Redis of our own that we can take away
	rs := testenv.Binary(t, "redis-server")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	proc := startProcess(t, rs, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	waitTCP(t, addr)
	o.Redis = store.RedisConfig{Addrs: []string{addr}}
	o.Redis.SetDefaults()
	base := startApp(t, o)
	b := newBrowser(t, base)
	_, loginPage, _ := b.get("/login")
	m := csrfRE.FindStringSubmatch(loginPage)
	if m == nil {
		t.Fatal("no csrf token")
	}
	proc.Kill()
	proc.Wait()
	code, body, hdr := b.post("/login", url.Values{"username": {"bob"}, "password": {os.Getenv("LDAP_USER_PW")}, "csrf_token": {m[1]}})
	if code != http.StatusServiceUnavailable {
		t.Fatalf("POST /login with Redis down: %d, want 503\n%s", code, body)
	}
	if id := hdr.Get("X-Request-ID"); id == "" || !strings.Contains(body, id) {
		t.Errorf("the 503 page does not show the request ID %q", id)
	}
	if code, _, _ := b.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down: %d, want 503", code)
	}
}

// TestDevMode starts wardend as `wardend -dev` does. It proves the wiring of
// dev mode, nothing about LDAP or Redis (the real-server tests do that).
func TestDevMode(t *testing.T) {
	var banner strings.Builder
	o := Options{Dev: &DevOptions{LDIF: devconfig.DevDirectoryLDIF, Rules: devconfig.ExampleRules}, Banner: &banner, Logger: testLogger(t), Admin: admin.Config{Groups: []string{"admins"}}}
	base := startApp(t, o)
	for _, want := range []string{base, "alice", "warden-dev"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, banner.String())
		}
	}
	b := newBrowser(t, base)
	code, body := b.signIn("bob", "warden-dev")
	if code != http.StatusOK || !strings.Contains(body, "company") {
		t.Fatalf("dev sign-in as bob: %d\n%s", code, body)
	}
	// the portal lists the example rules' roles, and signs in to one
	b.waitRoles()
	if code, body, _ := b.get("/aws/console?role=prod/ReadOnly"); code != http.StatusOK || !strings.Contains(body, `name="SAMLResponse"`) {
		t.Errorf("dev: /aws/console as bob: %d", code)
	}
	if code, _, _ := b.get("/admin"); code != http.StatusForbidden {
		t.Errorf("bob (not an admin) GET /admin: %d, want 403", code)
	}
	b.signOut()

	// alice is in admins; the example rules were seeded
	a := newBrowser(t, base)
	if code, _ := a.signIn("alice", "warden-dev"); code != http.StatusOK {
		t.Fatalf("dev sign-in as alice: %d", code)
	}
	code, body, _ = a.get("/admin/rules")
	if code != http.StatusOK || !strings.Contains(body, "developers") {
		t.Errorf("alice GET /admin/rules: %d; the seeded example rules should name developers", code)
	}
	code, body, _ = a.get("/admin/whogets?username=bob")
	if code != http.StatusOK || !strings.Contains(body, "arn:aws:iam::") {
		t.Errorf("who gets what for bob: %d, no role ARN in the page", code)
	}
}

func TestDevModeRefusesNonLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:8080", "[::]:8080"} {
		o := Options{Dev: &DevOptions{}, Server: web.Config{Listen: listen}}
		if err := checkDevListen(o); err == nil {
			t.Errorf("%s: dev mode must refuse", listen)
		}
	}
	for _, listen := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		if err := checkDevListen(Options{Dev: &DevOptions{}, Server: web.Config{Listen: listen}}); err != nil {
			t.Errorf("%s: %v", listen, err)
		}
	}
	if err := checkDevListen(Options{Dev: &DevOptions{AllowNonLoopback: true}, Server: web.Config{Listen: "0.0.0.0:1"}}); err != nil {
		t.Error("allow_non_loopback must allow it")
	}
}

func waitTCP(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", addr)
}
