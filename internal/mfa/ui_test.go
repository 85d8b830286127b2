package mfa_test

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// The MFA pages, end to end: the real web server, the real session store
// and factor store on the test Redis, TOTP codes from oathtool, a
// directory of three users.

const (
	uiPassword = "correct horse battery"
	uiOrigin   = "http://localhost:8080"
)

var (
	uiAdmin = identity.User{ID: "id-alice", Username: "alice", Groups: []identity.Group{{DN: "cn=admins,dc=t", Name: "admins"}}}
	uiBob   = identity.User{ID: "id-bob", Username: "bob", Groups: []identity.Group{{DN: "cn=devs,dc=t", Name: "devs"}}}
	uiCarol = identity.User{ID: "id-carol", Username: "carol", Groups: []identity.Group{{DN: "cn=admins,dc=t", Name: "admins"}}}
)

type uiDir struct{}

func (uiDir) Authenticate(_ context.Context, username, password string) (identity.User, error) {
	if password != uiPassword {
		return identity.User{}, identity.ErrInvalidCredentials
	}
	for _, u := range []identity.User{uiAdmin, uiBob, uiCarol} {
		if u.Username == username {
			return u, nil
		}
	}
	return identity.User{}, identity.ErrInvalidCredentials
}

type webClock struct{ c *clock }

func (w webClock) Now() time.Time                     { return w.c.Now() }
func (webClock) Sleep(context.Context, time.Duration) {}

type recAudit struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (a *recAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	a.evs = append(a.evs, e)
	a.mu.Unlock()
}
func (a *recAudit) has(action, result string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.evs {
		if e.Action == action && e.Result == result {
			return true
		}
	}
	return false
}

type uiEnv struct {
	h       http.Handler
	clk     *clock
	factors *mfa.Factors
	audit   *recAudit
	logs    *bytes.Buffer
	st      *store.Store
}

func newUIEnv(t *testing.T, cfg mfa.Config) *uiEnv {
	t.Helper()
	st := openRedis(t)
	testenvBinaryOathtool(t)
	clk := &clock{now: t0}
	f := newFactors(t, st, clk, testKey(3))
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	policy := mfa.NewPolicy(cfg, f)
	limiter, err := store.NewNamedLimiter(st, "mfa", cfg.Limits, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 12 * time.Hour, IdleTimeout: time.Hour}, clk.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	loginLimiter, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 50, MaxFailuresPerIP: 500, Window: time.Minute}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recAudit{}
	logs := &bytes.Buffer{}
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&logMu, logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	admins := identity.NewGroupMatcher([]string{"admins"})
	passkey, err := f.WebAuthn(mfa.WebAuthnConfig{RPID: "localhost", RPName: "Warden", Origins: []string{uiOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := mfa.NewUI(mfa.UIDeps{Policy: policy, Factors: f, Passkey: passkey, Limiter: limiter, Audit: audit.Multi(rec, audit.NewSlog(logger, nil)),
		Logger: logger, Clock: clk.Now, IsAdmin: admins.Match})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{PublicURL: uiOrigin, LoginMinDuration: time.Millisecond}, web.Deps{
		Directory: uiDir{}, Sessions: sessions, Limiter: loginLimiter, CSRFKey: bytes.Repeat([]byte{9}, 32),
		Logger: logger, Clock: webClock{clk}, Audit: audit.Multi(rec, audit.NewSlog(logger, nil)),
		Mounts: []web.Mount{ui}, SecondFactor: policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &uiEnv{h: srv.Handler(), clk: clk, factors: f, audit: rec, logs: logs, st: st}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func testenvBinaryOathtool(t *testing.T) { oathCode(t, "JBSWY3DPEHPK3PXP", t0) }

// uiBrowser keeps cookies.
type uiBrowser struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]string
	ip      string
}

func (e *uiEnv) browser(t *testing.T) *uiBrowser {
	return &uiBrowser{t: t, h: e.h, cookies: map[string]string{}, ip: "203.0.113.9:4000"}
}

func (b *uiBrowser) do(req *http.Request) *httptest.ResponseRecorder {
	b.t.Helper()
	req.RemoteAddr = b.ip
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return rec
}

func (b *uiBrowser) get(path string) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

func (b *uiBrowser) post(path string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	csrfRe   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	secretRe = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)
	enrollRe = regexp.MustCompile(`name="enrollment" value="([^"]+)"`)
	codeRe   = regexp.MustCompile(`<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>`)
)

func find(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s not in page:\n%s", re, body)
	}
	return m[1]
}

// csrf returns a CSRF token bound to the browser's current session.
func (b *uiBrowser) csrf(page string) string {
	b.t.Helper()
	return find(b.t, csrfRe, b.get(page).Body.String())
}

func (b *uiBrowser) login(user string) *httptest.ResponseRecorder {
	b.t.Helper()
	tok := find(b.t, csrfRe, b.get("/login").Body.String())
	return b.post("/login", url.Values{"csrf_token": {tok}, "username": {user}, "password": {uiPassword}, "next": {"/"}})
}

func wantRedirect(t *testing.T, rec *httptest.ResponseRecorder, prefix string) string {
	t.Helper()
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("got %d to %q, want 303 to %s…\n%s", rec.Code, loc, prefix, rec.Body.String())
	}
	return loc
}

// enrollTOTPUI walks the set-up pages and returns the secret and the
// recovery codes shown.
func (e *uiEnv) enrollTOTPUI(t *testing.T, b *uiBrowser) (string, []string) {
	t.Helper()
	page := b.get("/mfa/setup?method=totp&next=/")
	if page.Code != http.StatusOK {
		t.Fatalf("setup page: %d %s", page.Code, page.Body.String())
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:") {
		t.Errorf("the QR code page's CSP does not allow the data: image: %s", csp)
	}
	body := page.Body.String()
	secret := strings.ReplaceAll(find(t, secretRe, body), " ", "")
	eid := find(t, enrollRe, body)
	tok := find(t, csrfRe, body)
	// A wrong code shows the same secret again.
	good := oathCode(t, secret, e.clk.Now())
	bad := fmt.Sprintf("%06d", (atoi(good)+500000)%1000000)
	rec := b.post("/mfa/setup/totp", url.Values{"csrf_token": {tok}, "enrollment": {eid}, "code": {bad}, "name": {"phone"}, "next": {"/"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "not right") ||
		strings.ReplaceAll(find(t, secretRe, rec.Body.String()), " ", "") != secret {
		t.Fatalf("wrong first code: %d", rec.Code)
	}
	rec = b.post("/mfa/setup/totp", url.Values{"csrf_token": {tok}, "enrollment": {eid}, "code": {good}, "name": {"phone"}, "next": {"/"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("confirm: %d %s", rec.Code, rec.Body.String())
	}
	var codes []string
	for _, m := range codeRe.FindAllStringSubmatch(rec.Body.String(), -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(codes))
	}
	return secret, codes
}

// wantFactorPage checks that the password POST was answered with the code
// page itself (a user with a factor), which names its own URL for the
// address bar.
func wantFactorPage(t *testing.T, rec *httptest.ResponseRecorder, url string) {
	t.Helper()
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `id="mfa-challenge" data-url="`+url+`"`) ||
		rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("sign-in answer: %d, want the code page naming %s\n%s", rec.Code, url, body)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

func TestUIEnrollThenSignIn(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredGroups, Groups: []string{"admins"}})
	b := e.browser(t)
	wantRedirect(t, b.login("alice"), "/mfa?next=%2F")
	// No factor yet: the challenge sends to set-up; nothing else is reachable.
	wantRedirect(t, b.get("/mfa?next=/"), "/mfa/setup?next=%2F")
	wantRedirect(t, b.get("/"), "/mfa?")
	wantRedirect(t, b.get("/account/security"), "/mfa?")
	secret, codes := e.enrollTOTPUI(t, b)
	if r := b.get("/"); r.Code != http.StatusOK {
		t.Fatalf("portal after set-up: %d", r.Code)
	}
	if !e.audit.has("mfa.enroll", "success") || !e.audit.has("mfa.recovery.regenerate", "success") {
		t.Error("enrolment not audited")
	}

	// The next sign-in asks for the code; the code of the step just used
	// is refused (one use), the next step's is accepted.
	b2 := e.browser(t)
	wantFactorPage(t, b2.login("alice"), "/mfa?next=%2F")
	page := b2.get("/mfa?next=/")
	if !strings.Contains(page.Body.String(), `id="totp-form"`) || !strings.Contains(page.Body.String(), `id="recovery-form"`) {
		t.Fatalf("challenge page lacks the TOTP or recovery form:\n%s", page.Body.String())
	}
	tok := find(t, csrfRe, page.Body.String())
	used := oathCode(t, secret, e.clk.Now())
	rec := b2.post("/mfa/totp", url.Values{"csrf_token": {tok}, "code": {used}, "next": {"/"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "already used") {
		t.Fatalf("replayed code: %d", rec.Code)
	}
	e.clk.Set(e.clk.Now().Add(mfa.Period))
	wantRedirect(t, b2.post("/mfa/totp", url.Values{"csrf_token": {tok}, "code": {oathCode(t, secret, e.clk.Now())}, "next": {"/"}}), "/")
	if r := b2.get("/"); r.Code != http.StatusOK {
		t.Fatalf("portal after TOTP: %d", r.Code)
	}
	// A code two steps off is refused.
	b3 := e.browser(t)
	b3.login("alice")
	tok = b3.csrf("/mfa?next=/")
	rec = b3.post("/mfa/totp", url.Values{"csrf_token": {tok}, "code": {oathCode(t, secret, e.clk.Now().Add(2*mfa.Period))}, "next": {"/"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "not right") {
		t.Fatalf("code two steps ahead: %d", rec.Code)
	}
	// A recovery code works once.
	wantRedirect(t, b3.post("/mfa/recovery", url.Values{"csrf_token": {tok}, "code": {codes[0]}, "next": {"/"}}), "/")
	b4 := e.browser(t)
	b4.login("alice")
	rec = b4.post("/mfa/recovery", url.Values{"csrf_token": {b4.csrf("/mfa?next=/")}, "code": {codes[0]}, "next": {"/"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "not right") {
		t.Fatalf("recovery code reused: %d", rec.Code)
	}
	// Secrets and codes never reach the log.
	for _, s := range []string{secret, used, codes[0], codes[1]} {
		if strings.Contains(e.logs.String(), s) {
			t.Fatalf("the log holds a secret or code %q", s)
		}
	}
}

func TestUIWrongCodesLimited(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredAll})
	b := e.browser(t)
	b.login("bob")
	secret, _ := e.enrollTOTPUI(t, b)
	good := oathCode(t, secret, e.clk.Now().Add(mfa.Period))
	b2 := e.browser(t)
	b2.login("bob")
	tok := b2.csrf("/mfa?next=/")
	bad := fmt.Sprintf("%06d", (atoi(good)+1)%1000000)
	for i := range 5 {
		if rec := b2.post("/mfa/totp", url.Values{"csrf_token": {tok}, "code": {bad}, "next": {"/"}}); rec.Code != http.StatusOK {
			t.Fatalf("wrong code %d: %d", i, rec.Code)
		}
	}
	e.clk.Set(e.clk.Now().Add(mfa.Period))
	rec := b2.post("/mfa/totp", url.Values{"csrf_token": {tok}, "code": {good}, "next": {"/"}})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("after 5 wrong codes: %d (Retry-After %q), want 429", rec.Code, rec.Header().Get("Retry-After"))
	}
	if !strings.Contains(rec.Body.String(), "Request ID") {
		t.Error("the 429 page has no request ID")
	}
	if !e.audit.has("mfa.verify", "rate_limited") {
		t.Error("rate limit not audited")
	}
}

func TestUISecurityPage(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredGroups, Groups: []string{"admins"}})
	b := e.browser(t)
	b.login("alice")
	secret, _ := e.enrollTOTPUI(t, b)
	page := b.get("/account/security")
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "<td>phone</td>") {
		t.Fatalf("security page: %d", page.Code)
	}
	id := find(t, regexp.MustCompile(`<tr data-id="([^"]+)">`), page.Body.String())
	tok := find(t, csrfRe, page.Body.String())
	// Removing the only factor of a user who must use MFA is refused.
	rec := b.post("/account/security/remove", url.Values{"csrf_token": {tok}, "id": {id}})
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "keep at least one") {
		t.Fatalf("remove last factor: %d", rec.Code)
	}
	wantRedirect(t, b.post("/account/security/rename", url.Values{"csrf_token": {tok}, "id": {id}, "name": {"work phone"}}), "/account/security?done=renamed")
	if rec := b.post("/account/security/rename", url.Values{"csrf_token": {tok}, "id": {id}, "name": {strings.Repeat("x", 65)}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("long name: %d", rec.Code)
	}
	if rec := b.post("/account/security/rename", url.Values{"csrf_token": {tok}, "id": {"nope"}, "name": {"x"}}); rec.Code != http.StatusNotFound {
		t.Fatalf("unknown factor: %d", rec.Code)
	}
	// Ten minutes on, a change asks for the factor again, then works.
	e.clk.Set(e.clk.Now().Add(10 * time.Minute))
	loc := wantRedirect(t, b.post("/account/security/recovery", url.Values{"csrf_token": {tok}}), "/mfa?fresh=1")
	tok = b.csrf(loc)
	wantRedirect(t, b.post("/mfa/totp?fresh=1", url.Values{"csrf_token": {tok}, "code": {oathCode(t, secret, e.clk.Now())}, "next": {"/account/security"}}), "/account/security")
	tok = b.csrf("/account/security")
	rec = b.post("/account/security/recovery", url.Values{"csrf_token": {tok}})
	if rec.Code != http.StatusOK || len(codeRe.FindAllString(rec.Body.String(), -1)) != 10 {
		t.Fatalf("regenerate: %d", rec.Code)
	}
	// bob (not required) may remove his only factor.
	bb := e.browser(t)
	bb.login("bob")
	bb.get("/")
	_, _ = e.enrollTOTPUI(t, bb)
	page = bb.get("/account/security")
	id = find(t, regexp.MustCompile(`<tr data-id="([^"]+)">`), page.Body.String())
	wantRedirect(t, bb.post("/account/security/remove", url.Values{"csrf_token": {find(t, csrfRe, page.Body.String())}, "id": {id}}), "/account/security?done=removed")
}

func TestUIAdminReset(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredGroups, Groups: []string{"admins"}})
	// bob enrolls (voluntarily).
	bb := e.browser(t)
	bb.login("bob")
	_, _ = e.enrollTOTPUI(t, bb)
	// bob is no admin.
	if rec := bb.get("/admin/users/id-bob/mfa"); rec.Code != http.StatusForbidden {
		t.Fatalf("non-admin: %d", rec.Code)
	}
	// alice (admin) enrolls, then resets bob's factors with a fresh factor.
	b := e.browser(t)
	b.login("alice")
	secret, _ := e.enrollTOTPUI(t, b)
	page := b.get("/admin/users/id-bob/mfa?name=bob")
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "<td>phone</td>") {
		t.Fatalf("admin view: %d", page.Code)
	}
	tok := find(t, csrfRe, page.Body.String())
	e.clk.Set(e.clk.Now().Add(10 * time.Minute))
	loc := wantRedirect(t, b.post("/admin/users/id-bob/mfa/reset", url.Values{"csrf_token": {tok}}), "/mfa?fresh=1")
	tok = b.csrf(loc)
	wantRedirect(t, b.post("/mfa/totp?fresh=1", url.Values{"csrf_token": {tok}, "code": {oathCode(t, secret, e.clk.Now())}, "next": {"/admin/users/id-bob/mfa"}}), "/admin/users/id-bob/mfa")
	tok = b.csrf("/admin/users/id-bob/mfa")
	wantRedirect(t, b.post("/admin/users/id-bob/mfa/reset", url.Values{"csrf_token": {tok}}), "/admin/users/id-bob/mfa?done=reset")
	n, err := e.factors.Count(context.Background(), "id-bob")
	if err != nil || n != (mfa.Counts{}) {
		t.Fatalf("bob's factors after reset: %+v %v", n, err)
	}
	if !e.audit.has("mfa.reset", "success") {
		t.Error("reset not audited")
	}
	if rec := b.get("/admin/users/a%7Bb/mfa"); rec.Code != http.StatusBadRequest {
		t.Errorf("bad user ID: %d", rec.Code)
	}

	// The JSON API: list, and reset after the admin's fresh factor.
	bb.login("bob") // bob enrolls again
	_, _ = e.enrollTOTPUI(t, bb)
	rec := b.get("/admin/api/users/id-bob/mfa")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"method":"totp"`) {
		t.Fatalf("API list: %d %s", rec.Code, rec.Body.String())
	}
	if rec := bb.get("/admin/api/users/id-bob/mfa"); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"request_id"`) {
		t.Fatalf("API list by a non-admin: %d %s", rec.Code, rec.Body.String())
	}
	if rec := e.browser(t).get("/admin/api/users/id-bob/mfa"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("API list without a session: %d", rec.Code)
	}
	del := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodDelete, "/admin/api/users/id-bob/mfa", nil)
		req.Header.Set("X-Warden-CSRF", b.csrf("/admin/users/id-bob/mfa"))
		return b.do(req)
	}
	e.clk.Set(e.clk.Now().Add(10 * time.Minute))
	if rec := del(); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), `"redirect":"/mfa?fresh=1`) {
		t.Fatalf("API reset without a fresh factor: %d %s", rec.Code, rec.Body.String())
	}
	tok = b.csrf("/mfa?fresh=1&next=/")
	wantRedirect(t, b.post("/mfa/totp?fresh=1", url.Values{"csrf_token": {tok}, "code": {oathCode(t, secret, e.clk.Now())}, "next": {"/"}}), "/")
	if rec := del(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"removed":{"totp":1`) {
		t.Fatalf("API reset: %d %s", rec.Code, rec.Body.String())
	}
}

func TestUIGracePeriod(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredAll, EnrollGrace: 72 * time.Hour})
	b := e.browser(t)
	b.login("carol")
	page := b.get("/mfa/setup?next=/")
	if !strings.Contains(page.Body.String(), `id="later"`) || !strings.Contains(page.Body.String(), "3 days left") {
		t.Fatalf("no Later button within the grace period:\n%s", page.Body.String())
	}
	wantRedirect(t, b.post("/mfa/setup/later", url.Values{"csrf_token": {find(t, csrfRe, page.Body.String())}, "next": {"/"}}), "/")
	if r := b.get("/account/security"); r.Code != http.StatusOK {
		t.Fatalf("after Later: %d", r.Code)
	}
	// Counted per user from the first time: four days on, no more Later.
	e.clk.Set(e.clk.Now().Add(96 * time.Hour))
	b2 := e.browser(t)
	b2.login("carol")
	page = b2.get("/mfa/setup?next=/")
	if strings.Contains(page.Body.String(), `id="later"`) {
		t.Fatal("Later offered after the grace period")
	}
	if rec := b2.post("/mfa/setup/later", url.Values{"csrf_token": {b2.csrf("/mfa/setup?method=totp")}, "next": {"/"}}); rec.Code != http.StatusForbidden {
		t.Fatalf("Later after the grace period: %d", rec.Code)
	}
}

func TestUIBadInput(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredAll})
	b := e.browser(t)
	b.login("bob")
	tok := b.csrf("/mfa/setup?method=totp&next=/")
	// An enrolment that does not exist (or expired): 400, nothing stored.
	if rec := b.post("/mfa/setup/totp", url.Values{"csrf_token": {tok}, "enrollment": {"nope"}, "code": {"123456"}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("unknown enrolment: %d", rec.Code)
	}
	if rec := b.get("/mfa/setup?method=sms"); rec.Code != http.StatusBadRequest {
		t.Fatalf("unknown method: %d", rec.Code)
	}
	n, _ := e.factors.Count(context.Background(), "id-bob")
	if n != (mfa.Counts{}) {
		t.Fatalf("something was stored: %+v", n)
	}
	// No session: the sign-in page.
	anon := e.browser(t)
	wantRedirect(t, anon.get("/mfa?next=/"), "/login?next=")
	wantRedirect(t, anon.get("/account/security"), "/login?next=")
}

// postJSON sends body as JSON with the CSRF header of the browser's session.
func (b *uiBrowser) postJSON(path, csrf string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Warden-CSRF", csrf)
	return b.do(req)
}

type begun struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

func (b *uiBrowser) begin(t *testing.T, path, csrf string) begun {
	t.Helper()
	rec := b.postJSON(path, csrf, nil)
	var out begun
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Ceremony == "" {
		t.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
	return out
}

func finishBody(t *testing.T, ceremony string, cred []byte, name string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"ceremony": ceremony, "credential": json.RawMessage(cred), "next": "/", "name": name})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUIPasskey(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredAll})
	b := e.browser(t)
	wantRedirect(t, b.login("bob"), "/mfa?")
	csrf := b.csrf("/mfa/setup?method=totp&next=/") // any page of this session
	key := newSoftAuthn(t, uiOrigin)

	// Bad answers to a registration: 4xx, nothing stored.
	bg := b.begin(t, "/mfa/setup/webauthn/begin", csrf)
	for name, body := range map[string][]byte{
		"malformed JSON":   []byte(`{"ceremony": "` + bg.Ceremony + `", "credential": {`),
		"no credential":    []byte(`{"ceremony": "` + bg.Ceremony + `"}`),
		"garbage response": finishBody(t, bg.Ceremony, []byte(`{"id":"x","rawId":"x","type":"public-key","response":{}}`), "k"),
	} {
		if rec := b.postJSON("/mfa/setup/webauthn/finish", csrf, body); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"request_id"`) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body.String())
		}
	}
	huge := finishBody(t, bg.Ceremony, []byte(`{"id":"`+strings.Repeat("A", 200<<10)+`"}`), "k")
	if rec := b.postJSON("/mfa/setup/webauthn/finish", csrf, huge); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge attestation: %d", rec.Code)
	}
	// An expired ceremony.
	old := b.begin(t, "/mfa/setup/webauthn/begin", csrf)
	oldCred := key.create(t, old.Options)
	e.clk.Set(e.clk.Now().Add(6 * time.Minute))
	if rec := b.postJSON("/mfa/setup/webauthn/finish", csrf, finishBody(t, old.Ceremony, oldCred, "k")); rec.Code != http.StatusBadRequest {
		t.Errorf("expired ceremony: %d %s", rec.Code, rec.Body.String())
	}
	if n, _ := e.factors.Count(context.Background(), "id-bob"); n != (mfa.Counts{}) {
		t.Fatalf("stored after refusals: %+v", n)
	}
	// The real thing: registration finishes the sign-in, with recovery codes.
	bg = b.begin(t, "/mfa/setup/webauthn/begin", csrf)
	cred := key.create(t, bg.Options)
	rec := b.postJSON("/mfa/setup/webauthn/finish", csrf, finishBody(t, bg.Ceremony, cred, "YubiKey"))
	var done struct {
		Redirect string   `json:"redirect"`
		Codes    []string `json:"codes"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &done) != nil || done.Redirect != "/" || len(done.Codes) != 10 {
		t.Fatalf("registration: %d %s", rec.Code, rec.Body.String())
	}
	// The same answer again: refused (the ceremony is used up).
	if rec := b.postJSON("/mfa/setup/webauthn/finish", b.csrf("/account/security"), finishBody(t, bg.Ceremony, cred, "again")); rec.Code == http.StatusOK {
		t.Errorf("replayed registration accepted")
	}

	// Next sign-in: the passkey.
	b2 := e.browser(t)
	wantFactorPage(t, b2.login("bob"), "/mfa?next=%2F")
	page := b2.get("/mfa?next=/")
	if !strings.Contains(page.Body.String(), `id="passkey-use"`) {
		t.Fatalf("no passkey button:\n%s", page.Body.String())
	}
	csrf2 := find(t, csrfRe, page.Body.String())
	bg = b2.begin(t, "/mfa/webauthn/begin", csrf2)
	assertion := key.get(t, bg.Options)
	rec = b2.postJSON("/mfa/webauthn/finish", csrf2, finishBody(t, bg.Ceremony, assertion, ""))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"redirect":"/"`) {
		t.Fatalf("passkey sign-in: %d %s", rec.Code, rec.Body.String())
	}
	if r := b2.get("/account/security"); !strings.Contains(r.Body.String(), "signed in with: <strong>webauthn</strong>") || !strings.Contains(r.Body.String(), "<td>YubiKey</td>") {
		t.Fatalf("security page after the passkey:\n%s", r.Body.String())
	}
	// The same assertion again (a replayed challenge): refused.
	b3 := e.browser(t)
	b3.login("bob")
	csrf3 := b3.csrf("/mfa?next=/")
	if rec := b3.postJSON("/mfa/webauthn/finish", csrf3, finishBody(t, bg.Ceremony, assertion, "")); rec.Code != http.StatusBadRequest {
		t.Errorf("replayed assertion: %d %s", rec.Code, rec.Body.String())
	}
	// A cloned key (the counter does not go up): refused and audited.
	clone := key.clone()
	clone.Counter = 0
	bg = b3.begin(t, "/mfa/webauthn/begin", csrf3)
	if rec := b3.postJSON("/mfa/webauthn/finish", csrf3, finishBody(t, bg.Ceremony, clone.get(t, bg.Options), "")); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "looks copied") {
		t.Errorf("cloned key: %d %s", rec.Code, rec.Body.String())
	}
	if !e.audit.has("mfa.verify", "cloned") {
		t.Error("cloned key not audited")
	}
	// A passkey-only role would not take TOTP: the TOTP form is refused.
	if rec := b3.post("/mfa/totp?methods=webauthn", url.Values{"csrf_token": {csrf3}, "code": {"123456"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("TOTP where only a passkey counts: %d", rec.Code)
	}
}

// TestUIChallengeFormsKeepMethods: the forms of the challenge page post
// back the methods (and fresh) the page was asked for, so that a wrong code
// re-renders the page for the same role, not for any factor (html/template
// once escaped the whole query as one component: "methods%3dwebauthn…").
func TestUIChallengeFormsKeepMethods(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredAll})
	b := e.browser(t)
	wantRedirect(t, b.login("bob"), "/mfa?")
	e.enrollTOTPUI(t, b)

	b2 := e.browser(t)
	wantFactorPage(t, b2.login("bob"), "/mfa?next=%2F")
	page := b2.get("/mfa?methods=webauthn,totp&fresh=1&next=/")
	body := page.Body.String()
	actionRe := regexp.MustCompile(`action="(/mfa/totp[^"]*)"`)
	action := strings.ReplaceAll(find(t, actionRe, body), "&amp;", "&")
	if action != "/mfa/totp?fresh=1&methods=webauthn%2Ctotp" {
		t.Fatalf("the TOTP form posts to %q", action)
	}
	if strings.Contains(body, `id="recovery-form"`) {
		t.Fatal("a recovery code is offered where only webauthn and totp count")
	}
	rec := b2.post(action, url.Values{"csrf_token": {find(t, csrfRe, body)}, "code": {"000000"}, "next": {"/"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "not right") {
		t.Fatalf("wrong code: %d", rec.Code)
	}
	if strings.Contains(rec.Body.String(), `id="recovery-form"`) {
		t.Error("after a wrong code the page offers a recovery code where only webauthn and totp count")
	}
	if again := strings.ReplaceAll(find(t, actionRe, rec.Body.String()), "&amp;", "&"); again != action {
		t.Errorf("after a wrong code the TOTP form posts to %q, want %q", again, action)
	}
}

// TestUIChallengeSatisfiedGoesOn: the challenge page, reached again by a
// session that gave a factor that counts there (a sign-in that began at
// the page itself: /mfa?next=/mfa?next=…), goes straight on; fresh=1 and
// methods the session's factor is not among still ask.
func TestUIChallengeSatisfiedGoesOn(t *testing.T) {
	e := newUIEnv(t, mfa.Config{Required: mfa.RequiredAll})
	b := e.browser(t)
	wantRedirect(t, b.login("bob"), "/mfa?")
	e.enrollTOTPUI(t, b) // the session now says totp
	wantRedirect(t, b.get("/mfa?next=/account/security"), "/account/security")
	wantRedirect(t, b.get("/mfa?methods=totp,webauthn&next=/x"), "/x")
	for _, page := range []string{"/mfa?fresh=1&next=/account/security", "/mfa?methods=webauthn&next=/x"} {
		if r := b.get(page); r.Code != http.StatusOK || !strings.Contains(r.Body.String(), "Confirm it is you") {
			t.Errorf("GET %s: %d, want the challenge page", page, r.Code)
		}
	}
}
