package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// fakeFactor is a SecondFactor: pending says what a sign-in still needs,
// enrolled whether the user has a factor.
type fakeFactor struct {
	mu       sync.Mutex
	pending  string
	enrolled bool
	err      error
}

func (f *fakeFactor) AfterPassword(context.Context, identity.User) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending, f.err
}

func (f *fakeFactor) Enrolled(context.Context, string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolled, f.err
}

func (f *fakeFactor) Methods() []string { return identity.SecondFactors }

// stepMount stands in for the MFA pages: /mfa is Partial and shows what
// it sees; POST /mfa/ok upgrades the session to TOTP and goes to next;
// /needs asks for a fresh factor, /device-like asks only if enrolled.
type stepMount struct{ clock func() time.Time }

func (m stepMount) Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: FactorPath, Partial: true, Handler: func(c *gin.Context) {
			sess, ok := CurrentSession(c)
			if !ok {
				RedirectToLogin(c)
				return
			}
			csrf, err := CSRFToken(c)
			if err != nil {
				Fail(c, http.StatusInternalServerError, "", err)
				return
			}
			c.String(http.StatusOK, "factor page for %s pending=%q next=%s <input name=\"csrf_token\" value=\"%s\">",
				sess.User.Username, sess.Pending, c.Query("next"), csrf)
		}},
		{Method: http.MethodPost, Path: FactorPath + "/ok", Partial: true, Handler: func(c *gin.Context) {
			sess, ok := CurrentSession(c)
			if !ok {
				RedirectToLogin(c)
				return
			}
			a := sess.Authn
			a.Method, a.FactorTime = identity.MethodTOTP, m.clock()
			if _, err := UpgradeSession(c, a); err != nil {
				Fail(c, http.StatusServiceUnavailable, "", err)
				return
			}
			c.Redirect(http.StatusSeeOther, SafeNext(c.PostForm("next")))
		}},
		{Method: http.MethodGet, Path: "/needs-fresh", Handler: func(c *gin.Context) {
			if RequireFactor(c, FactorNeed{MaxAge: 5 * time.Minute}, "/needs-fresh") {
				c.String(http.StatusOK, "fresh enough")
			}
		}},
		{Method: http.MethodGet, Path: "/if-enrolled", Handler: func(c *gin.Context) {
			if RequireFactor(c, FactorNeed{MFA: true, IfEnrolled: true}, "/if-enrolled") {
				c.String(http.StatusOK, "approved")
			}
		}},
	}
}

func withFactor(f SecondFactor, clock func() time.Time) envOption {
	return func(_ *Config, d *Deps) {
		d.SecondFactor = f
		d.Mounts = append(d.Mounts, stepMount{clock: clock})
	}
}

// passFactor posts the stand-in factor page with the CSRF token of the
// sign-in form.
func passFactor(t *testing.T, b *browser, next string) *httptest.ResponseRecorder {
	t.Helper()
	page := b.get(FactorPath)
	return b.post(FactorPath+"/ok", url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "next": {next}})
}

func TestPendingSignIn(t *testing.T) {
	f := &fakeFactor{pending: store.PendingFactor}
	var e *env
	e = newEnv(t, withFactor(f, func() time.Time { return e.clock.Now() }))
	b := e.browser(t)
	rec := b.login("bob", testPassword, "/")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/mfa?next=%2F" {
		t.Fatalf("sign-in: %d to %q, want 303 to the factor page", rec.Code, rec.Header().Get("Location"))
	}
	created := e.sessions.created[len(e.sessions.created)-1]
	if created.Pending != store.PendingFactor || created.Authn.Method != identity.MethodPassword || created.NotAfter.IsZero() {
		t.Fatalf("session meta %+v: want pending, password, a short end", created)
	}
	// The pending session is no session for the portal ...
	if rec := b.get("/"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/mfa?") {
		t.Fatalf("GET / while pending: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// ... nor for a mounted route that needs a signed-in user ...
	if rec := b.get("/needs-fresh"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/mfa?") {
		t.Fatalf("GET /needs-fresh while pending: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// ... but the factor page (Partial) sees it.
	if rec := b.get("/mfa?next=/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `pending="factor"`) {
		t.Fatalf("factor page: %d %s", rec.Code, rec.Body.String())
	}
	// The sign-in can be abandoned.
	if rec := b.get("/logout"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Cancel sign-in") {
		t.Fatalf("GET /logout while pending: %d", rec.Code)
	}
	// The factor, then the portal; the cookie changed and the old session is gone.
	old := b.cookies[e.srv.sessionCookieName()].Value
	if rec := passFactor(t, b, "/"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Fatalf("factor: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	now := b.cookies[e.srv.sessionCookieName()].Value
	if now == old || e.sessions.has(old) || !e.sessions.has(now) {
		t.Fatal("the session was not replaced after the second factor")
	}
	if rec := b.get("/"); rec.Code != http.StatusOK {
		t.Fatalf("GET / after the factor: %d", rec.Code)
	}
	sess, _ := e.sessions.Get(context.Background(), now)
	if sess.Pending != "" || sess.Authn.Method != identity.MethodTOTP || sess.Authn.Time.IsZero() {
		t.Fatalf("upgraded session %+v", sess.Authn)
	}
	if sess.ExpiresAt.Sub(e.clock.Now()) < time.Hour {
		t.Fatalf("the finished sign-in kept the pending session's short end (%v)", sess.ExpiresAt)
	}
}

func TestSignInWithoutFactorNeed(t *testing.T) {
	var e *env
	e = newEnv(t, withFactor(&fakeFactor{}, func() time.Time { return e.clock.Now() }))
	b := e.browser(t)
	if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Fatalf("sign-in: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := b.get("/"); rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d", rec.Code)
	}
}

func TestSignInFactorStoreDown(t *testing.T) {
	var e *env
	e = newEnv(t, withFactor(&fakeFactor{err: store.Unavailable("fake", errBoom)}, func() time.Time { return e.clock.Now() }))
	b := e.browser(t)
	if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("sign-in with the factor store down: %d, want 503", rec.Code)
	}
}

func TestRequireFactorFreshness(t *testing.T) {
	var e *env
	e = newEnv(t, withFactor(&fakeFactor{enrolled: true}, func() time.Time { return e.clock.Now() }))
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	rec := b.get("/needs-fresh")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/mfa?fresh=1&next=%2Fneeds-fresh" {
		t.Fatalf("password-only session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	passFactor(t, b, "/needs-fresh")
	if rec := b.get("/needs-fresh"); rec.Code != http.StatusOK {
		t.Fatalf("just after the factor: %d", rec.Code)
	}
	e.clock.Advance(6 * time.Minute)
	if rec := b.get("/needs-fresh"); rec.Code != http.StatusSeeOther {
		t.Fatalf("6 minutes later: %d, want a fresh factor asked", rec.Code)
	}
}

func TestRequireFactorIfEnrolled(t *testing.T) {
	f := &fakeFactor{}
	var e *env
	e = newEnv(t, withFactor(f, func() time.Time { return e.clock.Now() }))
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	if rec := b.get("/if-enrolled"); rec.Code != http.StatusOK {
		t.Fatalf("user without factors: %d, want through", rec.Code)
	}
	f.mu.Lock()
	f.enrolled = true
	f.mu.Unlock()
	if rec := b.get("/if-enrolled"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/mfa?") {
		t.Fatalf("user with a factor, password-only session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	f.mu.Lock()
	f.err = store.Unavailable("fake", errBoom)
	f.mu.Unlock()
	if rec := b.get("/if-enrolled"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("factor store down: %d, want 503", rec.Code)
	}
}

func TestFactorNeedSatisfied(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pw := identity.PasswordOnly(now.Add(-time.Hour))
	totp := identity.Authn{Method: identity.MethodTOTP, Time: now.Add(-time.Hour), FactorTime: now.Add(-10 * time.Minute)}
	key := identity.Authn{Method: identity.MethodWebAuthn, Time: now, FactorTime: now}
	for _, tc := range []struct {
		name    string
		need    FactorNeed
		a       identity.Authn
		allowed []string
		want    bool
	}{
		{"nothing asked", FactorNeed{}, pw, nil, true},
		{"mfa, password", FactorNeed{MFA: true}, pw, nil, false},
		{"mfa, totp", FactorNeed{MFA: true}, totp, nil, true},
		{"mfa, totp not allowed here", FactorNeed{MFA: true}, totp, []string{identity.MethodWebAuthn}, false},
		{"webauthn only, totp", FactorNeed{Methods: []string{identity.MethodWebAuthn}}, totp, nil, false},
		{"webauthn only, key", FactorNeed{Methods: []string{identity.MethodWebAuthn}}, key, nil, true},
		{"fresh 5m, totp 10m ago", FactorNeed{MaxAge: 5 * time.Minute}, totp, nil, false},
		{"fresh 15m, totp 10m ago", FactorNeed{MaxAge: 15 * time.Minute}, totp, nil, true},
		{"fresh, password", FactorNeed{MaxAge: time.Hour}, pw, nil, false},
		{"old session (no method)", FactorNeed{MFA: true}, identity.Authn{}, nil, false},
	} {
		if got := tc.need.Satisfied(tc.a, tc.allowed, now); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// pagerMount is stepMount that also answers the password POST itself.
type pagerMount struct{ stepMount }

func (pagerMount) FactorPage(c *gin.Context, next string) {
	sess, ok := CurrentSession(c)
	if !ok {
		c.String(http.StatusInternalServerError, "no session in FactorPage")
		return
	}
	csrf, err := CSRFToken(c)
	if err != nil {
		c.String(http.StatusInternalServerError, err.Error())
		return
	}
	c.String(http.StatusOK, "code page for %s pending=%q next=%s <input name=\"csrf_token\" value=\"%s\">",
		sess.User.Username, sess.Pending, next, csrf)
}

func TestPendingSignInAnsweredWithFactorPage(t *testing.T) {
	var e *env
	clock := func() time.Time { return e.clock.Now() }
	e = newEnv(t, func(_ *Config, d *Deps) {
		d.SecondFactor = &fakeFactor{pending: store.PendingFactor}
		d.Mounts = append(d.Mounts, pagerMount{stepMount{clock: clock}})
	})
	b := e.browser(t)
	rec := b.login("bob", testPassword, "/x")
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `code page for bob pending="factor" next=/x`) ||
		rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("password POST: %d %q", rec.Code, body)
	}
	// The page's CSRF token is bound to the new (pending) session.
	rec = b.post(FactorPath+"/ok", url.Values{"csrf_token": {csrfFrom(t, body)}, "next": {"/"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Fatalf("factor with the page's token: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// Enrolment (no factor yet) is still a redirect to the set-up.
	e2 := newEnv(t, func(_ *Config, d *Deps) {
		d.SecondFactor = &fakeFactor{pending: store.PendingEnroll}
		d.Mounts = append(d.Mounts, pagerMount{stepMount{clock: clock}})
	})
	if rec := e2.browser(t).login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("enrolment: %d, want a redirect", rec.Code)
	}
}
