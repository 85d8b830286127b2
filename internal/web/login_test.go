package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

func TestLoginSuccess(t *testing.T) {
	tests := []struct {
		name       string
		publicURL  string
		cookieName string
		secure     bool
	}{
		{"http", "http://warden.test", "warden_session", false},
		{"https", "https://sso.example.com", "__Host-warden_session", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withPublicURL(tc.publicURL))
			b := e.browser(t)
			rec := b.login("bob", testPassword, "/after?x=1")
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/after?x=1" {
				t.Fatalf("got %d Location %q, want 303 /after?x=1\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			var sc *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == tc.cookieName {
					sc = c
				}
			}
			if sc == nil {
				t.Fatalf("no %s cookie in %v", tc.cookieName, rec.Header().Values("Set-Cookie"))
			}
			if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure != tc.secure || sc.Path != "/" || sc.Domain != "" {
				t.Errorf("cookie flags: %+v", sc)
			}
			if sc.MaxAge <= 0 || time.Duration(sc.MaxAge)*time.Second > e.sessions.lifetime {
				t.Errorf("cookie Max-Age %d, want within the absolute lifetime %s", sc.MaxAge, e.sessions.lifetime)
			}
			if !e.sessions.has(sc.Value) {
				t.Error("cookie value is not the created session's token")
			}
			if got := e.sessions.created; len(got) != 1 || got[0].ClientIP != "198.51.100.7" {
				t.Errorf("session meta %+v", got)
			}
			if got := e.limiter.succeeded; len(got) != 0 {
				t.Errorf("limiter.Succeed calls %v without earlier failures", got)
			}
			if len(e.clock.Sleeps()) != 0 {
				t.Errorf("a successful sign-in must not be padded: %v", e.clock.Sleeps())
			}
			evs := e.audit.Events()
			if len(evs) != 1 || evs[0].Action != "login" || evs[0].Result != "success" || evs[0].Actor != "bob" || evs[0].Object != keyOf(sc.Value) {
				t.Errorf("audit %+v", evs)
			}
			// The home page shows the user.
			home := b.get("/")
			body := home.Body.String()
			for _, want := range []string{"Bob Brown", "bob@example.org", bob.ID, "developers", "nested"} {
				if !strings.Contains(body, want) {
					t.Errorf("home page lacks %q", want)
				}
			}
			if home.Code != http.StatusOK || home.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("home: %d, Cache-Control %q", home.Code, home.Header().Get("Cache-Control"))
			}
		})
	}
}

func TestLoginRejectionsReadAlike(t *testing.T) {
	long := strings.Repeat("a", maxUsernameBytes+1)
	tests := []struct {
		name, user, pass string
		dirCalled        bool
		outcome          string
	}{
		{"wrong password", "bob", "wrong", true, outcomeInvalidCredentials},
		{"unknown user", "nosuchuser", "wrong", true, outcomeInvalidCredentials},
		{"unknown user, any password", "nosuchuser", testPassword, true, outcomeInvalidCredentials},
		{"locked (AD says 775 for any password)", "locked", "wrong", true, outcomeLocked},
		{"locked, right password", "locked", testPassword, true, outcomeLocked},
		{"account-state user, wrong password", "disabled", "wrong", true, outcomeInvalidCredentials},
		{"username too long", long, testPassword, false, outcomeInvalidCredentials},
		{"password too long", "bob", strings.Repeat("p", maxPasswordBytes+1), false, outcomeInvalidCredentials},
		{"empty password", "bob", "", false, outcomeInvalidCredentials},
		{"NUL in username", "bob\x00", testPassword, false, outcomeInvalidCredentials},
	}
	// The reference answer: a wrong password for bob. The typed username is
	// shown again, so compare pages for the same typed name where possible.
	var refBody string
	var refCode int
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser(t)
			rec := b.login(tc.user, tc.pass, "/next")
			body := normalize(strings.Replace(rec.Body.String(), `value="`+displayedUsername(tc.user)+`"`, `value="USER"`, 1))
			if i == 0 {
				refBody, refCode = body, rec.Code
				if !strings.Contains(body, genericFailure) {
					t.Fatalf("no generic failure text:\n%s", body)
				}
			} else if rec.Code != refCode || body != refBody {
				t.Errorf("answer differs from a wrong password: %d vs %d\n--- got\n%s\n--- want\n%s", rec.Code, refCode, body, refBody)
			}
			if strings.Contains(rec.Body.String(), tc.pass) && tc.pass != "" {
				t.Error("the password is echoed in the page")
			}
			if called := e.dir.Calls() > 0; called != tc.dirCalled {
				t.Errorf("directory called = %v, want %v", called, tc.dirCalled)
			}
			// Padded, with a timer, to LoginMinDuration from the request start.
			if s := e.clock.Sleeps(); len(s) != 1 || s[0] != e.cfg.LoginMinDuration {
				t.Errorf("sleeps %v, want [%s]", s, e.cfg.LoginMinDuration)
			}
			if tc.dirCalled && len(e.limiter.fails) != 1 {
				t.Errorf("limiter.Fail calls %v, want 1", e.limiter.fails)
			}
			if !tc.dirCalled && e.limiter.checks != 0 {
				t.Errorf("unacceptable input reached the limiter")
			}
			if _, ok := b.cookies["warden_session"]; ok {
				t.Error("a session cookie was set")
			}
			if evs := e.audit.Events(); len(evs) != 1 || evs[0].Result != tc.outcome {
				t.Errorf("audit %+v, want result %s", evs, tc.outcome)
			}
		})
	}
}

func TestLoginPaddingCountsElapsedTime(t *testing.T) {
	e := newEnv(t)
	e.dir.err = nil
	b := e.browser(t)
	page := b.get("/login")
	// The directory takes 120 ms: only the rest is padded.
	slow := &slowDir{fakeDir: e.dir, clock: e.clock, d: 120 * time.Millisecond}
	e.srv.dir = slow
	rec := b.post("/login", url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "username": {"bob"}, "password": {"x"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("code %d", rec.Code)
	}
	if s := e.clock.Sleeps(); len(s) != 1 || s[0] != 180*time.Millisecond {
		t.Errorf("sleeps %v, want [180ms]", s)
	}
}

type slowDir struct {
	*fakeDir
	clock *fakeClock
	d     time.Duration
}

func (s *slowDir) Authenticate(ctx context.Context, u, p string) (identity.User, error) {
	s.clock.Advance(s.d)
	return s.fakeDir.Authenticate(ctx, u, p)
}

func TestAccountStatePages(t *testing.T) {
	tests := []struct {
		user, heading, outcome string
	}{
		{"pwexpired", "Your password has expired", outcomePasswordExpired},
		{"mustchange", "Change your password first", outcomeMustChange},
		{"disabled", "Your account is disabled", outcomeDisabled},
		{"acctexpired", "Your account has expired", outcomeAccountExpired},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			e := newEnv(t)
			rec := e.browser(t).login(tc.user, testPassword, "/")
			body := rec.Body.String()
			if rec.Code != http.StatusForbidden || !strings.Contains(body, tc.heading) || strings.Contains(body, genericFailure) {
				t.Errorf("got %d\n%s", rec.Code, body)
			}
			if !strings.Contains(body, "IT helpdesk") {
				t.Error("no advice on what to do")
			}
			if evs := e.audit.Events(); len(evs) != 1 || evs[0].Result != tc.outcome {
				t.Errorf("audit %+v", evs)
			}
		})
	}
}

func TestLoginDependencyFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(e *env)
		outcome string
	}{
		{"directory unavailable", func(e *env) {
			e.dir.err = fmt.Errorf("ldap: dial ldap://10.0.0.1: %w", identity.ErrDirectoryUnavailable)
		}, outcomeDirectoryUnavailable},
		{"directory error outside the contract", func(e *env) { e.dir.err = errBoom }, outcomeDirectoryUnavailable},
		{"limiter store unavailable", func(e *env) {
			e.limiter.checkErr = fmt.Errorf("redis: %w", store.ErrUnavailable)
		}, outcomeStoreUnavailable},
		{"session store unavailable", func(e *env) {
			e.sessions.createErr = fmt.Errorf("redis: %w", store.ErrUnavailable)
		}, outcomeStoreUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.setup(e)
			rec := e.browser(t).login("bob", testPassword, "/")
			body := rec.Body.String()
			rid := rec.Header().Get("X-Request-ID")
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("code %d, want 503\n%s", rec.Code, body)
			}
			if rid == "" || !strings.Contains(body, rid) {
				t.Errorf("request ID %q not in the page", rid)
			}
			if strings.Contains(body, genericFailure) || strings.Contains(body, "10.0.0.1") || strings.Contains(body, "boom") {
				t.Errorf("page says too much:\n%s", body)
			}
			if !strings.Contains(e.logs.String(), `"request_id":"`+rid+`"`) {
				t.Error("the request ID is not in the log")
			}
			if evs := e.audit.Events(); len(evs) != 1 || evs[0].Result != tc.outcome {
				t.Errorf("audit %+v, want %s", evs, tc.outcome)
			}
			if len(e.clock.Sleeps()) != 0 {
				t.Error("an outage is not a rejection and is not padded")
			}
		})
	}
}

func TestLoginRateLimited(t *testing.T) {
	e := newEnv(t)
	e.limiter.decision = store.Decision{Allowed: false, RetryAfter: 29*time.Second + 200*time.Millisecond}
	rec := e.browser(t).login("bob", testPassword, "/")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("got %d Retry-After %q, want 429 30", rec.Code, rec.Header().Get("Retry-After"))
	}
	if e.dir.Calls() != 0 {
		t.Error("the directory was asked despite the limit")
	}
	if !strings.Contains(rec.Body.String(), rec.Header().Get("X-Request-ID")) {
		t.Error("no request ID on the 429 page")
	}
}

func TestCSRF(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b *browser, form url.Values) []string // returns extra headers
	}{
		{"missing token", func(b *browser, f url.Values) []string { f.Del("csrf_token"); return nil }},
		{"wrong token", func(b *browser, f url.Values) []string {
			f.Set("csrf_token", strings.Repeat("A", 43))
			return nil
		}},
		{"no cookie", func(b *browser, f url.Values) []string { delete(b.cookies, csrfCookieBase); return nil }},
		{"other browser's cookie", func(b *browser, f url.Values) []string {
			b.cookies[csrfCookieBase].Value = strings.Repeat("B", 43)
			return nil
		}},
		{"cross-site (Sec-Fetch-Site)", func(b *browser, f url.Values) []string {
			return []string{"Sec-Fetch-Site", "cross-site"}
		}},
		{"cross-origin (Origin)", func(b *browser, f url.Values) []string {
			return []string{"Origin", "https://evil.example"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser(t)
			page := b.get("/login")
			form := url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "username": {"bob"}, "password": {testPassword}}
			hdr := tc.mutate(b, form)
			rec := b.post("/login", form, hdr...)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Your form expired, please try again") {
				t.Fatalf("got %d\n%s", rec.Code, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), rec.Header().Get("X-Request-ID")) {
				t.Error("no request ID on the page")
			}
			if e.dir.Calls() != 0 || e.limiter.checks != 0 {
				t.Error("a forged request reached the limiter or the directory")
			}
			if evs := e.audit.Events(); len(evs) != 1 || evs[0].Action != "csrf.reject" {
				t.Errorf("audit %+v", evs)
			}
			if got := metricValue(t, e, `warden_login_total{outcome="csrf"}`); got != "1" {
				t.Errorf("warden_login_total csrf = %q", got)
			}
		})
	}
	t.Run("same-origin browser passes", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser(t)
		page := b.get("/login")
		rec := b.post("/login", url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "username": {"bob"},
			"password": {testPassword}}, "Sec-Fetch-Site", "same-origin", "Origin", "http://warden.test")
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("got %d\n%s", rec.Code, rec.Body)
		}
	})
}

func TestSessionFixation(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	// An attacker planted a session cookie (a token of their own session).
	planted, _, err := e.sessions.Create(t.Context(), identity.User{Username: "mallory"}, store.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	b.cookies["warden_session"] = &http.Cookie{Name: "warden_session", Value: planted}
	rec := b.login("bob", testPassword, "/")
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("code %d", rec.Code)
	}
	got := b.cookies["warden_session"].Value
	if got == planted {
		t.Fatal("the pre-existing session token was reused")
	}
	if e.sessions.has(planted) {
		t.Error("the previous session still exists")
	}
	if s, err := e.sessions.Get(t.Context(), got); err != nil || s.User.Username != "bob" {
		t.Errorf("new session %+v %v", s, err)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	token := b.cookies["warden_session"].Value

	// GET shows a confirmation form and signs nobody out.
	rec := b.get("/logout")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `action="/logout"`) || !e.sessions.has(token) {
		t.Fatalf("GET /logout: %d, session kept %v", rec.Code, e.sessions.has(token))
	}
	confirmToken := csrfFrom(t, rec.Body.String())

	// A POST with a token bound to no session (a login-form token) fails.
	login := b.get("/login")
	rec = b.post("/logout", url.Values{"csrf_token": {csrfFrom(t, login.Body.String())}})
	if rec.Code != http.StatusForbidden || !e.sessions.has(token) {
		t.Fatalf("POST /logout with a login token: %d", rec.Code)
	}
	// Without a token at all.
	rec = b.post("/logout", url.Values{})
	if rec.Code != http.StatusForbidden || !e.sessions.has(token) {
		t.Fatalf("POST /logout without token: %d", rec.Code)
	}

	rec = b.post("/logout", url.Values{"csrf_token": {confirmToken}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?signed_out=1" {
		t.Fatalf("POST /logout: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if e.sessions.has(token) {
		t.Error("session not deleted")
	}
	if _, ok := b.cookies["warden_session"]; ok {
		t.Error("cookie not cleared")
	}
	if evs := e.audit.Events(); evs[len(evs)-1].Action != "logout" || evs[len(evs)-1].Actor != "bob" {
		t.Errorf("audit %+v", evs)
	}
	if rec := b.get("/login?signed_out=1"); !strings.Contains(rec.Body.String(), "You have been signed out.") {
		t.Error("no signed-out notice")
	}
	// Home now goes to the sign-in page.
	if rec := b.get("/"); rec.Code != http.StatusSeeOther {
		t.Errorf("home after logout: %d", rec.Code)
	}
}

func TestHomeSessionStates(t *testing.T) {
	tests := []struct {
		name        string
		cookie      string
		storeErr    error
		code        int
		location    string
		cookieClear bool
	}{
		{"no cookie", "", nil, http.StatusSeeOther, "/login?next=/", false},
		{"ended session", "bm90LWEtc2Vzc2lvbg", nil, http.StatusSeeOther, "/login?next=/", true},
		{"store unavailable", "bm90LWEtc2Vzc2lvbg", fmt.Errorf("x: %w", store.ErrUnavailable), http.StatusServiceUnavailable, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.sessions.err = tc.storeErr
			b := e.browser(t)
			if tc.cookie != "" {
				b.cookies["warden_session"] = &http.Cookie{Name: "warden_session", Value: tc.cookie}
			}
			rec := b.get("/")
			if rec.Code != tc.code || rec.Header().Get("Location") != tc.location {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tc.code, tc.location)
			}
			cleared := strings.Contains(strings.Join(rec.Header().Values("Set-Cookie"), "\n"), "warden_session=; Path=/; Max-Age=0")
			if cleared != tc.cookieClear {
				t.Errorf("cookie cleared = %v, want %v: %v", cleared, tc.cookieClear, rec.Header().Values("Set-Cookie"))
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	page := b.get("/login")
	big := url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "username": {"bob"},
		"password": {strings.Repeat("x", maxBody)}}
	// Declared length over the limit.
	rec := b.post("/login", big)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared: got %d", rec.Code)
	}
	// Unknown length (chunked): the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, "/login", strings.NewReader(big.Encode()))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = b.do(req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "Request too large") {
		t.Fatalf("chunked: got %d\n%s", rec.Code, rec.Body)
	}
	if e.dir.Calls() != 0 {
		t.Error("directory called")
	}
}
