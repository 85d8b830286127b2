package app

// The bad-input sweep: every HTTP route of a running wardend (the web route
// table and every Mount: admin, SAML IdP, OpenID provider, device pages),
// anonymous and signed in as alice (an admin, with a valid CSRF token), gets
// wrong methods, oversized bodies and query strings, invalid UTF-8 and NUL
// bytes in every parameter its handler reads, wrong and missing content
// types, broken JSON, repeated parameters, hostile path parameters and
// garbage cookies (anonymous requests that stop at the sign-in gate get
// each bad value in all parameters at once: sweepRoute says why). Every
// answer must be below 500 (there is no outage here), carry a request ID,
// and show no stack trace, panic or internal error text; no log line may
// hold a password, a cookie value, an OAuth token or a SAMLResponse.
//
// It runs on the real OpenLDAP and Redis when LDAP_URL and REDIS_ADDR are
// set, otherwise in dev mode (the sweep proves HTTP handling, not LDAP).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/web"
)

// syncBuffer is a log sink shared by the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sweepParams are the parameters each group of routes reads (found by
// reading the handlers: c.Query, c.PostForm, r.Form.Get, zitadel's OAuth
// request structs). Every route gets its group's list; a route the table
// does not know fails the sweep, so a new route cannot escape it.
var sweepParams = []struct {
	prefix string
	params []string
}{
	{"/oauth/", []string{"client_id", "client_secret", "redirect_uri", "response_type", "response_mode", "scope", "state",
		"nonce", "code", "code_challenge", "code_challenge_method", "code_verifier", "grant_type", "refresh_token",
		"device_code", "token", "token_type_hint", "subject_token", "subject_token_type", "actor_token", "actor_token_type",
		"requested_token_type", "audience", "resource", "id_token_hint", "post_logout_redirect_uri", "logout_hint",
		"ui_locales", "prompt", "max_age", "login_hint", "request", "request_uri", "client_assertion",
		"client_assertion_type", "access_token", "id"}},
	{"/.well-known/", []string{"client_id", "scope"}},
	{"/device", []string{"user_code", "csrf_token"}},
	{"/saml/", []string{"SAMLRequest", "RelayState", "SigAlg", "Signature", "id"}},
	{"/admin", []string{"before", "cursor", "limit", "comment", "user", "version", "format", "done", "q", "v",
		"group", "groups", "username", "yaml", "id", "name", "partition", "saml_provider", "roles", "description",
		"pattern", "role_arn", "max_session_seconds", "state", "access", "max_duration", "approvers", "require_reason",
		"reason_pattern", "require_mfa", "mfa_methods", "csrf_token"}},
	{"/elevations", []string{"role", "duration", "reason", "start", "comment", "done", "csrf_token"}},
	{"/api/elevations", []string{"roles", "seconds", "duration", "reason", "start_at", "comment", "access_token"}},
	{"/aws/console", []string{"role", "destination", "csrf_token"}},
	{"/aws/keys", []string{"role", "duration", "csrf_token"}},
	{"/mfa", []string{"next", "methods", "fresh", "method", "code", "enrollment", "name", "csrf_token"}},
	{"/account/security", []string{"id", "name", "done", "low", "next", "csrf_token"}},
	{"/login/password", []string{"username", "password", "new_password", "confirm_password", "reason", "next", "csrf_token"}},
	{"/login", []string{"username", "password", "next", "signed_out", "csrf_token"}},
	{"/logout", []string{"csrf_token", "next"}},
	{"/static/", []string{"v"}},
	{"/healthz", nil}, {"/readyz", nil}, {"/metrics", []string{"name[]"}},
	{"/", []string{"next"}},
}

func paramsOf(path string) ([]string, bool) {
	for _, g := range sweepParams {
		if path == g.prefix || strings.HasPrefix(path, g.prefix) && g.prefix != "/" {
			return g.params, true
		}
	}
	return nil, false
}

// sweepIdentity is who sends a request: no cookies, or alice's session with
// her CSRF cookie and token (and, on /oauth/, her access token).
type sweepIdentity struct {
	name    string
	cookies []*http.Cookie
	csrf    string
	bearer  string
	// values of OAuth parameters that make the rest of a request valid
	// (refresh_token, subject_token, token)
	oauth map[string]string
}

type sweeper struct {
	t        *testing.T
	base     string
	client   *http.Client
	requests atomic.Int64
	gated    atomic.Int64  // routes whose anonymous requests stop at the sign-in gate
	sem      chan struct{} // bounds the requests in flight
	wg       sync.WaitGroup
	mu       sync.Mutex
	// findings, deduplicated by route and kind, each with one example
	findings map[string]string
}

// do sends r in the background; wait waits for every request sent.
func (s *sweeper) do(r sweepReq) {
	s.wg.Add(1)
	s.sem <- struct{}{}
	go func() {
		defer func() { <-s.sem; s.wg.Done() }()
		s.send(r)
	}()
}

func (s *sweeper) wait() { s.wg.Wait() }

type sweepReq struct {
	method, path string // path as sent (already escaped)
	rawQuery     string
	body         []byte
	contentType  string
	id           *sweepIdentity
	cookies      []*http.Cookie // replaces the identity's cookies when set
	noCSRF       bool
	route        string // "METHOD /pattern" for the report
	what         string // the kind of bad input
}

// What must never be in a response: Go stack traces and panics, internal
// error texts of our dependencies, file paths. leakMarks match as written
// (a "#" stands for one or more digits), leakFoldMarks in any case. Plain
// substring searches: a regular expression over every answer was most of
// the sweep's time under the race detector.
var (
	leakMarks     = []string{"goroutine #", "panic:", "runtime error", ".go:#"}
	leakFoldMarks = []string{"redis: ", "ldap: ", "dial tcp", "connection refused", "i/o timeout", "/home/",
		"/usr/local/go", "/root/", "/work/", "json: cannot unmarshal", "json: unknown field", "reflect:",
		"invalid memory address", "nil pointer", "template: ", "gin-gonic", "zitadel", "crewjam", "strconv.",
		"errortype=", "parent=", "schema: "}
)

// leak returns the first mark of leakMarks or leakFoldMarks in body, or "".
func leak(body string) string {
	for _, m := range leakMarks {
		lit, digits := strings.CutSuffix(m, "#")
		for rest := body; ; {
			i := strings.Index(rest, lit)
			if i < 0 {
				break
			}
			rest = rest[i+len(lit):]
			if !digits {
				return lit
			}
			if rest != "" && rest[0] >= '0' && rest[0] <= '9' {
				return lit + rest[:1]
			}
		}
	}
	lower := strings.ToLower(body)
	for _, m := range leakFoldMarks {
		if strings.Contains(lower, m) {
			return m
		}
	}
	return ""
}

// send sends r and checks the answer; it returns the status and Location
// (0 when there was no answer).
func (s *sweeper) send(r sweepReq) (int, string) {
	u := s.base + r.path
	if r.rawQuery != "" {
		u += "?" + r.rawQuery
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, u, body)
	if err != nil {
		s.find(r, "request", fmt.Sprintf("cannot build %s %s: %v", r.method, u, err))
		return 0, ""
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	cookies := r.cookies
	if cookies == nil && r.id != nil {
		cookies = r.id.cookies
	}
	var parts []string
	for _, c := range cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) > 0 {
		req.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	if r.id != nil && r.id.csrf != "" && !r.noCSRF {
		req.Header.Set(web.CSRFHeader, r.id.csrf)
	}
	if r.id != nil && r.id.bearer != "" && strings.HasPrefix(r.path, "/oauth/") {
		req.Header.Set("Authorization", "Bearer "+r.id.bearer)
	}
	s.requests.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		s.find(r, "transport", fmt.Sprintf("%s %.200s: %v", r.method, u, err))
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	ex := fmt.Sprintf("%s %.160s (%s, as %s) -> %d", r.method, u, r.what, r.idName(), resp.StatusCode)
	if resp.StatusCode >= 500 {
		s.find(r, fmt.Sprintf("status %d", resp.StatusCode), ex+": "+snippet(b))
	}
	if resp.Header.Get("X-Request-ID") == "" {
		s.find(r, "no request id", ex)
	}
	ct := resp.Header.Get("Content-Type")
	textual := ct == "" || strings.Contains(ct, "html") || strings.Contains(ct, "json") || strings.HasPrefix(ct, "text/plain")
	if textual && !(r.path == "/metrics" && resp.StatusCode == http.StatusOK) {
		if m := leak(html.UnescapeString(string(b))); m != "" {
			s.find(r, "leak "+m, ex+": "+snippet(b))
		}
	}
	return resp.StatusCode, resp.Header.Get("Location")
}

func (r sweepReq) idName() string {
	if r.id == nil {
		return "anonymous"
	}
	return r.id.name
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (s *sweeper) find(r sweepReq, kind, example string) {
	key := r.route + " | " + r.what + " | " + kind
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.findings[key]; !seen {
		s.findings[key] = example
	}
}

// bad values for a parameter: invalid UTF-8, NUL bytes, control characters,
// a long value (last: sweepRoute counts on the order).
var badValues = []struct{ name, v string }{
	{"invalid UTF-8", "\xff\xfe\xfd\xc3("},
	{"NUL", "a\x00b"},
	{"CRLF", "x\r\nSet-Cookie: y=z"},
	{"long value", strings.Repeat("A", 10<<10)},
}

// badPathValues replace a path parameter (as sent, escaped).
var badPathValues = []struct{ name, v string }{
	{"dot-dot", ".."},
	{"escaped dot-dot", "%2e%2e"},
	{"escaped traversal", "..%2f..%2fetc%2fpasswd"},
	{"NUL", "%00"},
	{"embedded NUL", "a%00b"},
	{"invalid UTF-8", "%ff%fe"},
	{"very long", strings.Repeat("a", 8<<10)},
	{"negative number", "-1"},
	{"huge number", "99999999999999999999999999"},
}

var pathParamRE = regexp.MustCompile(`[:*][A-Za-z_]+`)

func fillPath(pattern, v string) string { return pathParamRE.ReplaceAllString(pattern, v) }

func encodeParams(ps [][2]string) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p[0]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p[1]))
	}
	return b.String()
}

const formCT = "application/x-www-form-urlencoded"

func hasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
}

// params sends ps the way the route reads them: the query string of a GET,
// HEAD or OPTIONS, a urlencoded body (and the same query) otherwise.
func (s *sweeper) params(rt web.RouteInfo, path string, id *sweepIdentity, ps [][2]string, what string) {
	s.do(paramsReq(rt, path, id, ps, what))
}

func paramsReq(rt web.RouteInfo, path string, id *sweepIdentity, ps [][2]string, what string) sweepReq {
	r := sweepReq{method: rt.Method, path: path, id: id, route: rt.Method + " " + rt.Path, what: what}
	enc := encodeParams(ps)
	r.rawQuery = enc
	if hasBody(rt.Method) {
		r.body = []byte(enc)
		r.contentType = formCT
	}
	return r
}

// gated reports whether an answer to harmless values is the sign-in gate's
// (401, 403, or a redirect to /login): the route's own handler did not run.
func gated(status int, location string) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden ||
		status >= 300 && status < 400 && strings.HasPrefix(location, "/login")
}

// TestBadInputSweep is the sweep; it fails with one line per distinct
// finding (route, kind of bad input, kind of failure) and an example.
func TestBadInputSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("the sweep sends tens of thousands of requests")
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var o Options
	pw := "warden-dev"
	if os.Getenv("LDAP_URL") != "" && os.Getenv("REDIS_ADDR") != "" {
		o = openLDAPOptions(t)
		pw = os.Getenv("LDAP_USER_PW")
		// the example rules, writable (the sweep tries to change them), in
		// a key space of this run's own
		file := filepath.Join(t.TempDir(), "mappings.yaml")
		if err := os.WriteFile(file, devconfig.ExampleRules, 0o600); err != nil {
			t.Fatal(err)
		}
		o.Admin.RulesFile = file
		o.Redis.KeyPrefix += fmt.Sprintf("%d:", time.Now().UnixNano())
	} else {
		o = Options{Dev: &DevOptions{LDIF: devconfig.DevDirectoryLDIF, Rules: devconfig.ExampleRules},
			Admin: admin.Config{Groups: []string{"admins"}}}
	}
	o.Logger = logger
	// No padding of failed sign-ins: the sweep sends hundreds, and the
	// padding (a timer) proves nothing about the answers.
	o.Server.LoginMinDuration = time.Nanosecond
	// zitadel logs through slog's default logger: catch that too
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	var routes []web.RouteInfo
	o.Routes = func(rs []web.RouteInfo) { routes = rs }
	base := startApp(t, o)
	if len(routes) == 0 {
		t.Fatal("no route table from the app")
	}

	// alice (admin) and bob, signed in through the real pages
	alice := newBrowser(t, base)
	signInAs := func(b *browser, user string) {
		if code, body := b.signIn(user, pw); code != http.StatusOK {
			t.Fatalf("sign-in as %s: %d\n%s", user, code, body)
		}
	}
	signInAs(alice, "alice")
	bob := newBrowser(t, base)
	signInAs(bob, "bob")
	bobHome := bob.waitRoles()
	_ = bobHome
	// a SAMLResponse made for bob: it must never reach the log
	var samlResponses []string
	if code, body, _ := bob.get("/aws/console?role=prod/ReadOnly"); code == http.StatusOK {
		if m := regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`).FindStringSubmatch(body); m != nil {
			samlResponses = append(samlResponses, html.UnescapeString(m[1]))
		}
	}
	if len(samlResponses) == 0 {
		t.Fatal("no SAMLResponse for bob's prod/ReadOnly")
	}
	// alice's tokens, through the device flow: secrets that must never be logged
	tokens := deviceTokens(t, base, alice)

	u, _ := url.Parse(base)
	cookiesOf := func(b *browser) (sess, csrf *http.Cookie) {
		for _, c := range b.c.Jar.Cookies(u) {
			if c.Name == "warden_csrf" {
				csrf = c
			} else {
				sess = c
			}
		}
		if sess == nil || csrf == nil {
			t.Fatalf("cookies: session %v, csrf %v", sess, csrf)
		}
		return sess, csrf
	}
	bobSess, bobCSRF := cookiesOf(bob)
	secrets := map[string]string{"password": pw, "bob session cookie": bobSess.Value, "bob csrf cookie": bobCSRF.Value}
	for i, r := range samlResponses {
		secrets[fmt.Sprintf("SAMLResponse %d", i)] = r
	}
	for k, v := range tokens {
		secrets[k] = v
	}

	// aliceID re-reads alice's cookies and CSRF token, signing her in again
	// when the sweep signed her out (POST /logout with a valid token does).
	var aliceCookies [][2]string
	aliceID := func() *sweepIdentity {
		code, body, _ := alice.get("/")
		if code != http.StatusOK {
			signInAs(alice, "alice")
			code, body, _ = alice.get("/")
		}
		m := csrfRE.FindStringSubmatch(body)
		if code != http.StatusOK || m == nil {
			t.Fatalf("alice's home page: %d, csrf %v", code, m != nil)
		}
		sess, csrf := cookiesOf(alice)
		aliceCookies = append(aliceCookies, [2]string{sess.Value, csrf.Value})
		return &sweepIdentity{name: "alice", cookies: []*http.Cookie{sess, csrf}, csrf: html.UnescapeString(m[1]), bearer: tokens["access token"],
			oauth: map[string]string{"refresh_token": tokens["refresh token"], "subject_token": tokens["access token"],
				"token": tokens["access token"], "id_token_hint": tokens["id token"]}}
	}

	s := &sweeper{t: t, base: base, findings: map[string]string{}, sem: make(chan struct{}, 8), client: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}

	// every path with its methods
	methods := map[string]map[string]bool{}
	var unknown []string
	for _, rt := range routes {
		if methods[rt.Path] == nil {
			methods[rt.Path] = map[string]bool{}
		}
		methods[rt.Path][rt.Method] = true
		if _, ok := paramsOf(rt.Path); !ok {
			unknown = append(unknown, rt.Method+" "+rt.Path)
		}
	}
	if len(unknown) > 0 {
		t.Fatalf("routes the sweep does not know the parameters of (add them to sweepParams): %v", unknown)
	}

	for _, rt := range routes {
		if rt.Path == "/logout" && rt.Method == http.MethodPost {
			continue // swept last: a valid token signs alice out
		}
		sweepRoute(s, rt, methods[rt.Path], []*sweepIdentity{nil, aliceID()}, bobSess, bobCSRF)
		s.wait()
	}
	for _, rt := range routes {
		if rt.Path == "/logout" && rt.Method == http.MethodPost {
			sweepRoute(s, rt, methods[rt.Path], []*sweepIdentity{nil, aliceID()}, bobSess, bobCSRF)
		}
	}
	s.wait()

	for i, c := range aliceCookies {
		secrets[fmt.Sprintf("alice session cookie #%d", i)] = c[0]
		secrets[fmt.Sprintf("alice csrf cookie #%d", i)] = c[1]
	}
	secrets["garbage cookie marker"] = garbageMarker

	keys := make([]string, 0, len(s.findings))
	for k := range s.findings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("%s\n    e.g. %s", k, s.findings[k])
	}

	// the log: no secret, no panic, no stack trace
	lines := strings.Split(logs.String(), "\n")
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := secrets[k]
		if len(v) < 8 {
			continue
		}
		forms := []string{v, url.QueryEscape(v), jsonEscaped(v)}
		for _, l := range lines {
			if strings.Contains(l, forms[0]) || strings.Contains(l, forms[1]) || strings.Contains(l, forms[2]) {
				t.Errorf("a log line holds the %s: %.300s", k, l)
				break
			}
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "goroutine ") || strings.Contains(l, "panic") || strings.Contains(l, `"level":"ERROR"`) {
			t.Errorf("log line: %.400s", l)
		}
	}
	t.Logf("sweep: %d routes (%d paths, %d gated for anonymous requests), %d requests, %d log lines, %d distinct findings",
		len(routes), len(methods), s.gated.Load(), s.requests.Load(), len(lines), len(s.findings))
}

// TestLeakMarks: the sweep's leak check finds each kind of mark, and
// nothing in a clean page.
func TestLeakMarks(t *testing.T) {
	for body, want := range map[string]string{
		"<p>ok</p> goroutine 17 [running]:":   "goroutine 1",
		"x panic: boom":                       "panic:",
		"at /x/handler.go:42 in":              ".go:4",
		"Dial TCP 127.0.0.1:6379":             "dial tcp",
		`{"error": "REDIS: connection pool"}`: "redis: ",
		"ErrorType=server_error":              "errortype=",
		"goroutine x, file.go: and .go:x":     "",
		"<h1>Bad request</h1>":                "",
	} {
		if got := leak(body); got != want {
			t.Errorf("leak(%q) = %q, want %q", body, got, want)
		}
	}
}

func jsonEscaped(v string) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

const garbageMarker = "GarbageCookieValue0123456789"

// sweepRoute sends every kind of bad input to one route, as each identity.
//
// Alice (an admin, with a valid CSRF token and OAuth tokens) gets every
// kind, each bad value in each parameter in turn: she reaches every
// handler. An anonymous request reaches the handler only where the route
// lets it: where harmless values get the sign-in gate's answer (gated),
// the request stopped in code that reads the parameters all alike (the
// session, CSRF and admin checks, the redirect to /login with the URL), so
// it gets each bad value in every parameter at once instead of one
// parameter at a time, and the garbage cookies only as a pair: alice's
// garbage-cookie requests take the same gate. Everything else (methods,
// bodies, content types, JSON, path parameters, foreign cookies) goes to
// both.
func sweepRoute(s *sweeper, rt web.RouteInfo, pathMethods map[string]bool, ids []*sweepIdentity, bobSess, bobCSRF *http.Cookie) {
	params, _ := paramsOf(rt.Path)
	name := rt.Method + " " + rt.Path
	path := fillPath(rt.Path, "x")
	for _, id := range ids {
		// the base values: harmless, and for alice her CSRF token
		base := func() [][2]string {
			var ps [][2]string
			for _, p := range params {
				v := "x"
				switch {
				case p == "csrf_token" && id != nil:
					v = id.csrf
				case p == "client_id":
					v = "warden-cli"
				case id != nil && id.oauth[p] != "":
					v = id.oauth[p]
				}
				ps = append(ps, [2]string{p, v})
			}
			return ps
		}
		r := func(what string) sweepReq {
			return sweepReq{method: rt.Method, path: path, id: id, route: name, what: what}
		}

		// the harmless base values first, waiting for the answer: it tells
		// whether an anonymous request reaches the handler
		perParam := true
		if status, loc := s.send(paramsReq(rt, path, id, base(), "base values")); id == nil && gated(status, loc) {
			perParam = false
			s.gated.Add(1)
		}
		s.do(r("no parameters"))

		// wrong methods (once per path, by the first route of the path)
		if first := firstMethod(pathMethods); rt.Method == first {
			for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW"} {
				if !pathMethods[m] {
					q := r("wrong method " + m)
					q.method = m
					s.do(q)
				}
			}
		}

		if perParam {
			// every parameter in turn, with every bad value
			for i, p := range params {
				for _, bv := range badValues {
					ps := base()
					ps[i][1] = bv.v
					s.params(rt, path, id, ps, bv.name+" in "+p)
				}
				// repeated parameter
				ps := append(base(), [2]string{p, "y"}, [2]string{p, "\xff"})
				s.params(rt, path, id, ps, "repeated "+p)
			}
		}
		// every parameter bad at once (behind the gate: every bad value
		// but the long one, which goes into one parameter: 10 KiB in each
		// would pass the header limit of net/http, not reach the gate)
		all := badValues[:2]
		if !perParam {
			all = badValues[:3]
		}
		for _, bv := range all {
			var ps [][2]string
			for _, p := range params {
				ps = append(ps, [2]string{p, bv.v})
			}
			s.params(rt, path, id, ps, bv.name+" in every parameter")
		}
		if !perParam && len(params) > 0 {
			ps := base()
			ps[0][1] = badValues[3].v
			s.params(rt, path, id, ps, badValues[3].name+" in "+params[0])
			ps = base()
			for _, p := range params {
				ps = append(ps, [2]string{p, "y"}, [2]string{p, "\xff"})
			}
			s.params(rt, path, id, ps, "every parameter repeated")
		}
		// bad parameter names
		s.params(rt, path, id, append(base(), [2]string{"\xff\x00", "x"}), "invalid UTF-8 parameter name")
		q := r("malformed query escapes")
		q.rawQuery = "a=%zz&%=&&=&b=%00%ff;c=1"
		s.do(q)

		// oversized query string (64 KiB)
		q = r("64 KiB query")
		q.rawQuery = "q=" + strings.Repeat("a", 64<<10)
		s.do(q)

		// path parameters
		if strings.ContainsAny(rt.Path, ":*") {
			for _, pv := range badPathValues {
				q := r("path parameter " + pv.name)
				q.path = fillPath(rt.Path, pv.v)
				if hasBody(rt.Method) {
					q.body, q.contentType = []byte(encodeParams(base())), formCT
				}
				s.do(q)
			}
		}

		if hasBody(rt.Method) {
			sweepBodies(s, r, base, id)
		}

		// garbage cookies: session and CSRF
		sessName := "warden_session"
		if id != nil {
			for _, c := range id.cookies {
				if c.Name != "warden_csrf" {
					sessName = c.Name
				}
			}
		}
		which := []string{"session", "csrf", "both"}
		if !perParam {
			which = which[2:]
		}
		for _, g := range garbageCookies {
			for _, w := range which {
				var cs []*http.Cookie
				if w != "csrf" {
					cs = append(cs, &http.Cookie{Name: sessName, Value: g.v})
				}
				if w != "session" {
					cs = append(cs, &http.Cookie{Name: "warden_csrf", Value: g.v})
				}
				q := r(fmt.Sprintf("%s %s cookie", g.name, w))
				q.cookies = cs
				if hasBody(rt.Method) {
					q.body, q.contentType = []byte(encodeParams(base())), formCT
				}
				s.do(q)
			}
		}
		// another user's cookies with this identity's CSRF token, and mixes
		for _, mix := range []struct {
			name string
			cs   func() []*http.Cookie
		}{
			{"bob's session and CSRF cookies", func() []*http.Cookie { return []*http.Cookie{bobSess, bobCSRF} }},
			{"bob's session cookie, own CSRF cookie", func() []*http.Cookie {
				cs := []*http.Cookie{bobSess}
				if id != nil {
					cs = append(cs, id.cookies[1:]...)
				}
				return cs
			}},
			{"own session cookie, bob's CSRF cookie", func() []*http.Cookie {
				cs := []*http.Cookie{bobCSRF}
				if id != nil {
					cs = append(cs, id.cookies[0])
				}
				return cs
			}},
			{"duplicate session cookies", func() []*http.Cookie {
				return []*http.Cookie{{Name: sessName, Value: "x"}, bobSess, {Name: sessName, Value: "\xff"}}
			}},
		} {
			q := r(mix.name)
			q.cookies = mix.cs()
			if hasBody(rt.Method) {
				q.body, q.contentType = []byte(encodeParams(base())), formCT
			}
			s.do(q)
		}
	}
}

var garbageCookies = []struct{ name, v string }{
	{"empty", ""},
	{"one byte", "x"},
	{"marker", garbageMarker},
	{"non-base64", "!!!@@@###$$$%%%^^^"},
	{"wrong length base64", "AAAA"},
	{"long", strings.Repeat("A", 4000)},
	{"quoted", `"abc"`},
}

// bigBody is the 1 MiB of the oversized bodies (read only).
var bigBody = bytes.Repeat([]byte("a"), 1<<20)

// sweepBodies sends the bodies of a route that takes one: oversized, of
// wrong and missing content types, broken JSON and forms, and for a signed-in
// identity one without its CSRF token.
func sweepBodies(s *sweeper, r func(string) sweepReq, base func() [][2]string, id *sweepIdentity) {
	// oversized bodies (1 MiB), form and JSON
	q := r("1 MiB form body")
	q.body, q.contentType = append([]byte("x="), bigBody...), formCT
	s.do(q)
	q = r("1 MiB JSON body")
	q.body, q.contentType = append(append([]byte(`{"x":"`), bigBody...), `"}`...), "application/json"
	s.do(q)
	q = r("1 MiB multipart body")
	q.body, q.contentType = multipartBody(bigBody), "multipart/form-data; boundary=sweepBoundary"
	s.do(q)

	// wrong and missing content types
	form := []byte(encodeParams(base()))
	for _, ct := range []string{"", "text/plain", "application/json", "application/xml", "multipart/form-data",
		"multipart/form-data; boundary=nope", formCT + "; charset=utf-16", "!!!/???"} {
		q := r(fmt.Sprintf("content type %q", ct))
		q.body, q.contentType = form, ct
		s.do(q)
	}
	// broken and hostile JSON
	for _, j := range []struct{ name, body string }{
		{"truncated JSON", `{"rules": {"accounts": [{"id": "12345`},
		{"garbage JSON", "\x00\xff{]]}"},
		{"JSON null", "null"},
		{"JSON array", "[]"},
		{"JSON string", `"x"`},
		{"JSON wrong types", `{"version": "x", "rules": 5, "username": 7, "groups": "g", "comment": {}, "id": [], "group": 1, "roles": {}}`},
		{"JSON invalid UTF-8", "{\"username\": \"\xff\xfe\", \"groups\": [\"\xff\"], \"id\": \"\xff\", \"comment\": \"a\x00b\"}"},
		{"JSON NUL escapes", `{"username": "a\u0000b", "groups": ["\u0000"], "id": "\u0000", "group": "\u0000", "name": "\u0000"}`},
		{"JSON deep nesting", strings.Repeat("[", 100000) + strings.Repeat("]", 100000)},
		{"JSON huge number", `{"version": 1e999999, "limit": 99999999999999999999999}`},
		{"JSON duplicate keys", `{"version": 1, "version": -1, "username": "a", "username": "b"}`},
		{"JSON trailing data", `{"username": "alice"} {"x": 1}`},
	} {
		q := r(j.name)
		q.body, q.contentType = []byte(j.body), "application/json"
		s.do(q)
	}
	// garbage form bodies
	for _, f := range []struct{ name, body string }{
		{"malformed form escapes", "a=%zz&%=&&=&b=%00%ff"},
		{"form of semicolons", "a=1;b=2;csrf_token=x"},
		{"many form fields", strings.Repeat("a=b&", 20000)},
	} {
		q := r(f.name)
		q.body, q.contentType = []byte(f.body), formCT
		s.do(q)
	}
	// a CSRF token missing
	if id != nil {
		q := r("no CSRF token")
		q.noCSRF = true
		q.body, q.contentType = []byte("x=1"), formCT
		s.do(q)
	}
}

func firstMethod(ms map[string]bool) string {
	var all []string
	for m := range ms {
		all = append(all, m)
	}
	sort.Strings(all)
	return all[0]
}

func multipartBody(big []byte) []byte {
	var b bytes.Buffer
	b.WriteString("--sweepBoundary\r\nContent-Disposition: form-data; name=\"x\"; filename=\"x.yaml\"\r\nContent-Type: application/octet-stream\r\n\r\n")
	b.Write(big)
	b.WriteString("\r\n--sweepBoundary--\r\n")
	return b.Bytes()
}

// deviceTokens runs the device flow for the signed-in browser b (warden-cli,
// /device approved through the pages) and returns its access, refresh and
// ID tokens.
func deviceTokens(t *testing.T, base string, b *browser) map[string]string {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	post := func(path string, form url.Values) map[string]any {
		resp, err := c.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s: %d, %v", path, resp.StatusCode, err)
		}
		return out
	}
	da := post("/oauth/device_authorization", url.Values{"client_id": {"warden-cli"}, "scope": {"openid offline_access"}})
	userCode, _ := da["user_code"].(string)
	deviceCode, _ := da["device_code"].(string)
	if userCode == "" || deviceCode == "" {
		t.Fatalf("device authorization: %v", da)
	}
	_, body, _ := b.get("/device")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf_token on /device")
	}
	tok := html.UnescapeString(m[1])
	if code, body, _ := b.post("/device/approve", url.Values{"user_code": {userCode}, "csrf_token": {tok}}); code != http.StatusOK {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := post("/oauth/token", url.Values{"client_id": {"warden-cli"}, "device_code": {deviceCode},
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}})
		if at, _ := out["access_token"].(string); at != "" {
			rt, _ := out["refresh_token"].(string)
			it, _ := out["id_token"].(string)
			if rt == "" || it == "" {
				t.Fatalf("token response lacks refresh or ID token: %v", out)
			}
			return map[string]string{"access token": at, "refresh token": rt, "id token": it, "device code": deviceCode}
		}
		if e, _ := out["error"].(string); e != "authorization_pending" && e != "slow_down" {
			t.Fatalf("device token: %v", out)
		}
		if time.Now().After(deadline) {
			t.Fatal("no token within 30s")
		}
		time.Sleep(time.Second)
	}
}
