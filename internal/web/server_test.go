package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

// metricValue scrapes /metrics from loopback (allowed by default) and
// returns the value of one series.
func metricValue(t testing.TB, e *env, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics from loopback: %d", rec.Code)
	}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	b.login("bob", "wrong", "/")
	for series, want := range map[string]string{
		`warden_login_total{outcome="success"}`:                               "1",
		`warden_login_total{outcome="invalid_credentials"}`:                   "1",
		`warden_login_total{outcome="directory_unavailable"}`:                 "0",
		`warden_http_requests_total{code="303",method="POST",route="/login"}`: "1",
		`warden_http_requests_total{code="200",method="GET",route="/login"}`:  "2",
		`warden_login_duration_seconds_count{outcome="success"}`:              "1",
		`warden_http_request_duration_seconds_count{route="/login"}`:          "4",
		`warden_csrf_rejected_total{route="/login"}`:                          "",
	} {
		if got := metricValue(t, e, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		hsts      bool
	}{{"http://warden.test", false}, {"https://sso.example.com", true}} {
		t.Run(tc.publicURL, func(t *testing.T) {
			e := newEnv(t, withPublicURL(tc.publicURL))
			for _, path := range []string{"/login", "/nope", "/healthz"} {
				rec := e.browser(t).get(path)
				h := rec.Header()
				csp := h.Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "script-src 'self'"} {
					if !strings.Contains(csp, want) {
						t.Errorf("%s: CSP %q lacks %q", path, csp, want)
					}
				}
				if strings.Contains(csp, "unsafe-inline") {
					t.Errorf("CSP allows inline: %q", csp)
				}
				for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
					"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
					if h.Get(k) != want {
						t.Errorf("%s: %s = %q, want %q", path, k, h.Get(k), want)
					}
				}
				if got := h.Get("Strict-Transport-Security") != ""; got != tc.hsts {
					t.Errorf("%s: HSTS present = %v, want %v", path, got, tc.hsts)
				}
			}
		})
	}
}

func TestNoInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	pages := []string{b.get("/login").Body.String()}
	b.login("bob", testPassword, "/")
	pages = append(pages, b.get("/").Body.String(), b.get("/logout").Body.String(), b.get("/nope").Body.String())
	bad := regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for i, p := range pages {
		if m := bad.FindString(p); m != "" {
			t.Errorf("page %d has %q", i, m)
		}
	}
	// The login form's accessibility and autofill attributes.
	login := pages[0]
	for _, want := range []string{`<label for="username">`, `<label for="password">`, `autocomplete="username"`,
		`autocomplete="current-password"`, "autofocus"} {
		if !strings.Contains(login, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	css, err := e.srv.assets.url("warden.css")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.get("/login").Body.String(), css) {
		t.Errorf("login page does not link %s", css)
	}
	rec := b.get(css)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") ||
		rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.Contains(rec.Body.String(), "system-ui") {
		t.Errorf("hashed css: %d %v", rec.Code, rec.Header())
	}
	req := httptest.NewRequest(http.MethodGet, css, nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	if r := b.do(req); r.Code != http.StatusNotModified {
		t.Errorf("conditional GET: %d", r.Code)
	}
	if rec := b.get("/static/logo.svg"); rec.Code != 200 || rec.Header().Get("Content-Type") != "image/svg+xml" || rec.Header().Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("plain name: %d %v", rec.Code, rec.Header())
	}
	for _, p := range []string{"/static/nope.css", "/static/../embed.go", "/static/%2e%2e/embed.go"} {
		if rec := b.get(p); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/secret-next?token=query-secret")
	session := b.cookies["warden_session"].Value
	csrfCookie := b.cookies[csrfCookieBase].Value
	b.get("/?q=query-secret-2")
	b.login("bob", testPassword+"-wrong", "/")
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"http request"`) || !strings.Contains(logs, `"msg":"audit"`) {
		t.Fatalf("no access or audit log lines:\n%s", logs)
	}
	for _, secret := range []string{testPassword, session, keyOf(session)[:0] + session, csrfCookie, "query-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
	// Every access log line has the request ID and the client IP.
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if id, _ := m["request_id"].(string); id == "" {
			t.Errorf("log line without request_id: %s", line)
		}
		if m["msg"] == "http request" && m["client_ip"] != "198.51.100.7" {
			t.Errorf("access line lacks client_ip: %s", line)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	e := newEnv(t)
	e.dir.panic = true
	rec := e.browser(t).login("bob", testPassword, "/")
	body := rec.Body.String()
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("code %d", rec.Code)
	}
	if strings.Contains(body, "secret-panic-detail") || strings.Contains(body, "goroutine") || strings.Contains(body, ".go:") {
		t.Errorf("panic detail leaked:\n%s", body)
	}
	rid := rec.Header().Get("X-Request-ID")
	if !strings.Contains(body, rid) {
		t.Error("no request ID in the page")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "panic in handler") || !strings.Contains(logs, rid) {
		t.Error("panic not logged with the request ID")
	}
	if got := metricValue(t, e, `warden_http_requests_total{code="500",method="POST",route="/login"}`); got != "1" {
		t.Errorf("500 not counted: %q", got)
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	if rec := b.get("/healthz"); rec.Code != 200 {
		t.Errorf("healthz %d", rec.Code)
	}
	if rec := b.get("/readyz"); rec.Code != 200 {
		t.Errorf("readyz %d %s", rec.Code, rec.Body)
	}
	e.setHealth("redis", errors.New("dial tcp 10.9.8.7:6379: connection refused"))
	rec := b.get("/readyz")
	var got struct {
		Status    string            `json:"status"`
		Failing   []string          `json:"failing"`
		Checks    map[string]string `json:"checks"`
		RequestID string            `json:"request_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 503 || len(got.Failing) != 1 || got.Failing[0] != "redis" || got.Checks["directory"] != "ok" || got.RequestID == "" {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "10.9.8.7") {
		t.Error("internal detail in /readyz")
	}
	if rec := b.get("/healthz"); rec.Code != 200 {
		t.Errorf("healthz must not depend on redis: %d", rec.Code)
	}
}

func TestErrorPages(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		method, path, accept string
		code                 int
		json                 bool
	}{
		{"GET", "/nope", "text/html", 404, false},
		{"GET", "/nope", "application/json", 404, true},
		{"GET", "/api/nope", "", 404, true},
		{"GET", "/admin/api/x", "text/html", 404, true},
		{"DELETE", "/login", "", 405, false},
		{"PUT", "/logout", "application/json", 405, true},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Header.Set("Accept", tc.accept)
			rec := e.browser(t).do(req)
			rid := rec.Header().Get("X-Request-ID")
			if rec.Code != tc.code {
				t.Fatalf("code %d", rec.Code)
			}
			if tc.json {
				var m map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["request_id"] != rid || m["error"] == "" {
					t.Errorf("JSON error %s (%v)", rec.Body, err)
				}
				return
			}
			if !strings.Contains(rec.Body.String(), "<code>"+rid+"</code>") || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Errorf("HTML error page:\n%s", rec.Body)
			}
		})
	}
}

// No path makes the router redirect to another host (gin's trailing-slash
// redirect works on the decoded path).
func TestNoOpenRedirectFromRouter(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"//evil.com/", "/%2F%2Fevil.com/", "/%5Cevil.com/", "//evil.com/login/", "/login/", "/\\evil.com/"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = &url.URL{Path: mustUnescape(p), RawPath: p}
		req.RequestURI = p
		rec := e.browser(t).do(req)
		if loc := rec.Header().Get("Location"); loc != "" || rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, Location %q; want a plain 404", p, rec.Code, loc)
		}
	}
}

func mustUnescape(p string) string {
	s, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return s
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.TrustedProxies = []string{"10.0.0.0/8"} })
	tests := []struct {
		name, remote, header string
		keep                 bool
	}{
		{"from trusted proxy", "10.1.2.3:4000", "abc-123.X_y", true},
		{"from untrusted peer", "198.51.100.7:4000", "abc-123", false},
		{"unsafe from proxy", "10.1.2.3:4000", "a b\nc", false},
		{"too long from proxy", "10.1.2.3:4000", strings.Repeat("a", 65), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			req.Header.Set("X-Request-ID", tc.header)
			b := e.browser(t)
			b.remote = tc.remote
			got := b.do(req).Header().Get("X-Request-ID")
			if (got == tc.header) != tc.keep || !safeRequestID(got) {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	s := &Server{}
	for _, p := range []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"} {
		pr, err := parseProxy(p)
		if err != nil {
			t.Fatal(err)
		}
		s.proxies = append(s.proxies, pr)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct, no header", "198.51.100.7", nil, "198.51.100.7"},
		{"direct, header ignored", "198.51.100.7", []string{"1.2.3.4"}, "198.51.100.7"},
		{"proxy, one hop", "10.0.0.5", []string{"203.0.113.9"}, "203.0.113.9"},
		{"proxy chain, spoofed left part ignored", "10.0.0.5", []string{"6.6.6.6, 203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"multiple headers", "10.0.0.5", []string{"6.6.6.6", "203.0.113.9,192.0.2.1"}, "203.0.113.9"},
		{"all trusted", "10.0.0.5", []string{"10.2.2.2"}, "10.2.2.2"},
		{"garbage stops the walk", "10.0.0.5", []string{"203.0.113.9, bogus, 10.3.3.3"}, "10.3.3.3"},
		{"proxy, no header", "10.0.0.5", nil, "10.0.0.5"},
		{"ipv6 and mapped", "2001:db8::1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peer := netip.MustParseAddr(tc.peer)
			if got := s.clientIP(peer, s.trusted(peer), tc.xff); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if got := peerAddr("[::ffff:198.51.100.7]:443"); got.String() != "198.51.100.7" {
		t.Errorf("peerAddr mapped: %s", got)
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/ok?x=1", "/ok?x=1"},
		{"/", "/"},
		{"/a/b#frag", "/a/b#frag"},
		{"/%2F%2Fevil.com", "/"}, // decodes to //evil.com (see safeNext)
		{"/%5Cevil.com", "/"},
		{"/a%2Fb", "/a%2Fb"},
		{"", "/"},
		{"//evil.com", "/"},
		{"///evil.com", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"/a\\b", "/"},
		{"https://evil.com", "/"},
		{"http:/evil.com", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.com", "/"},
		{"/\tevil", "/"},
		{"/ evil", "/"},
		{"/\x00", "/"},
		{"/\r\nSet-Cookie:x=1", "/"},
		{"/caf\xc3\xa9", "/"},
		{"/" + strings.Repeat("a", 2048), "/"},
	}
	for _, tc := range tests {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ok?x=1", "//evil.com", "/\\evil.com", "https://evil.com", "/%2F%2Fevil.com",
		"javascript:alert(1)", "/a/../../b", "/@evil.com", "/:80", "/?next=//x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://warden.example/login")
	f.Fuzz(func(t *testing.T, in string) {
		out := safeNext(in)
		if out != "/" && out != in {
			t.Fatalf("safeNext(%q) = %q: neither the input nor /", in, out)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("safeNext(%q) = %q does not parse: %v", in, out, err)
		}
		if r := base.ResolveReference(u); r.Host != "warden.example" || r.Scheme != "https" {
			t.Fatalf("safeNext(%q) = %q resolves to %s", in, out, r)
		}
		if strings.HasPrefix(out, "//") || strings.Contains(out, "\\") || strings.ContainsAny(out, "\r\n\t ") {
			t.Fatalf("safeNext(%q) = %q", in, out)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := func() Config { c := Config{PublicURL: "https://sso.example.com"}; c.SetDefaults(); return c }
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"defaults are valid", func(c *Config) {}, nil},
		{"public_url missing", func(c *Config) { c.PublicURL = "" }, []string{"public_url: required"}},
		{"public_url relative", func(c *Config) { c.PublicURL = "sso.example.com" }, []string{"public_url: must be an absolute http(s) URL"}},
		{"public_url ftp", func(c *Config) { c.PublicURL = "ftp://x" }, []string{"public_url: must be an absolute http(s) URL"}},
		{"public_url path", func(c *Config) { c.PublicURL = "https://x/sso" }, []string{"public_url: must not have a path"}},
		{"proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "bogus", "10.0.0.0/99"} },
			[]string{"trusted_proxies[2]: not a CIDR", "trusted_proxies[3]: not a CIDR"}},
		{"cert without key", func(c *Config) { c.TLS.CertFile = certFile }, []string{"tls.key_file: required with tls.cert_file"}},
		{"key without cert, missing file", func(c *Config) { c.TLS.KeyFile = filepath.Join(dir, "nope") },
			[]string{"tls.cert_file: required with tls.key_file", "tls.key_file: cannot read"}},
		{"tls with http url", func(c *Config) {
			c.TLS.CertFile, c.TLS.KeyFile, c.PublicURL = certFile, certFile, "http://x"
		}, []string{"public_url: must be https when tls is set"}},
		{"listen", func(c *Config) { c.Listen = "8080" }, []string{"listen: must be host:port"}},
		{"cookie name", func(c *Config) { c.CookieName = "a b" }, []string{"cookie_name: only letters"}},
		{"cookie prefix", func(c *Config) { c.CookieName = "__Host-x" }, []string{"cookie_name: must not carry"}},
		{"durations", func(c *Config) { c.ReadTimeout = -1; c.LoginMinDuration = time.Minute },
			[]string{"read_timeout: must be positive", "login_min_duration: must be between"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var n int
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				n = len(j.Unwrap())
			}
			if n != len(tc.want) {
				t.Errorf("%d errors, want %d: %v", n, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	var c Config
	c.SetDefaults()
	if c.Listen != DefaultListen || c.CookieName != DefaultCookieName || c.LoginMinDuration != DefaultLoginMinDuration {
		t.Errorf("defaults: %+v", c)
	}
}

func TestNewRejectsBadDeps(t *testing.T) {
	e := newEnv(t)
	base := Deps{Directory: e.dir, Sessions: e.sessions, Limiter: e.limiter, CSRFKey: make([]byte, 32)}
	cfg := Config{PublicURL: "http://x"}
	for name, mutate := range map[string]func(d *Deps){
		"no directory": func(d *Deps) { d.Directory = nil },
		"short key":    func(d *Deps) { d.CSRFKey = make([]byte, 16) },
		"bad health":   func(d *Deps) { d.Health = []HealthCheck{{Name: "x"}} },
	} {
		d := base
		mutate(&d)
		if _, err := New(cfg, d); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(Config{}, base); err == nil || !strings.Contains(err.Error(), "public_url") {
		t.Errorf("config not validated: %v", err)
	}
	var _ = identity.User{}
	_ = fmt.Sprint
}
