package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// fakeFactor is a web.SecondFactor: nothing is due at sign-in, the user
// has a factor.
type fakeFactor struct{}

func (fakeFactor) AfterPassword(context.Context, identity.User) (string, error) { return "", nil }
func (fakeFactor) Enrolled(context.Context, string) (bool, error)               { return true, nil }
func (fakeFactor) Methods() []string                                            { return identity.SecondFactors }

// stepMount stands in for the MFA pages: GET /mfa shows a form, POST
// /mfa/ok upgrades the session to TOTP and goes to next.
type stepMount struct{ clock func() time.Time }

func (m stepMount) Routes() []web.Route {
	return []web.Route{
		{Method: http.MethodGet, Path: web.FactorPath, Partial: true, Handler: func(c *gin.Context) {
			csrf, err := web.CSRFToken(c)
			if err != nil {
				web.Fail(c, http.StatusInternalServerError, "", err)
				return
			}
			c.String(http.StatusOK, "factor page <input name=\"csrf_token\" value=\"%s\">", csrf)
		}},
		{Method: http.MethodPost, Path: web.FactorPath + "/ok", Partial: true, Handler: func(c *gin.Context) {
			sess, ok := web.CurrentSession(c)
			if !ok {
				web.RedirectToLogin(c)
				return
			}
			a := sess.Authn
			a.Method, a.FactorTime = identity.MethodTOTP, m.clock()
			if _, err := web.UpgradeSession(c, a); err != nil {
				web.Fail(c, http.StatusServiceUnavailable, "", err)
				return
			}
			c.Redirect(http.StatusSeeOther, web.SafeNext(c.PostForm("next")))
		}},
	}
}

// passFactor posts the stand-in factor page.
func passFactor(t *testing.T, b *browser, next string) *httptest.ResponseRecorder {
	t.Helper()
	page := b.get(web.FactorPath)
	return b.post(web.FactorPath+"/ok", url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "next": {next}})
}

func TestConsoleStepUp(t *testing.T) {
	p := &fakeBackend{grants: map[string][]rolemap.Grant{}, acs: "https://signin.aws.amazon.com/saml"}
	admin := grant("prod", "111122223333", "Admin", 3600)
	admin.RequireMFA = true
	keyOnly := grant("prod", "111122223333", "BreakGlass", 3600)
	keyOnly.MFAMethods = []string{identity.MethodWebAuthn}
	p.grants["bob"] = []rolemap.Grant{admin, keyOnly, grant("prod", "111122223333", "ReadOnly", 3600)}
	var e *env
	e = newEnv(t, withBackend(p), withDeps(func(d *web.Deps) {
		d.SecondFactor = fakeFactor{}
		d.Mounts = append(d.Mounts, stepMount{clock: func() time.Time { return e.clock.Now() }})
	}))
	b := signedIn(t, e)
	home := b.get("/")
	if !strings.Contains(home.Body.String(), `title="Asks for your second factor">MFA</span>`) ||
		!strings.Contains(home.Body.String(), `>passkey</span>`) {
		t.Fatal("the portal does not mark the roles that ask for more")
	}
	csrf := csrfFrom(t, home.Body.String())
	// ReadOnly needs nothing more.
	if rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {"arn:aws:iam::111122223333:role/ReadOnly"}}); rec.Code != http.StatusOK {
		t.Fatalf("ReadOnly: %d", rec.Code)
	}
	// Admin: the factor first, then back to the same role as a GET.
	rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {admin.RoleARN}})
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/mfa?") {
		t.Fatalf("Admin with a password-only session: %d %q", rec.Code, loc)
	}
	u, _ := url.Parse(loc)
	next := u.Query().Get("next")
	if !strings.HasPrefix(next, "/aws/console?role=") {
		t.Fatalf("step-up returns to %q", next)
	}
	if n := len(p.Calls()); n != 1 {
		t.Fatalf("%d console responses made, want only ReadOnly's", n)
	}
	var stepped bool
	for _, ev := range e.audit.Events() {
		stepped = stepped || (ev.Action == "aws.console" && ev.Result == "step_up" && ev.Object == admin.RoleARN)
	}
	if !stepped {
		t.Fatal("no aws.console step_up audit event")
	}
	passFactor(t, b, next)
	if rec := b.get(next); rec.Code != http.StatusOK || len(p.Calls()) != 2 {
		t.Fatalf("Admin after TOTP: %d, %d calls", rec.Code, len(p.Calls()))
	}
	// BreakGlass takes a passkey only: TOTP is not enough.
	rec = b.post("/aws/console", url.Values{"csrf_token": {csrfFrom(t, b.get("/").Body.String())}, "role": {keyOnly.RoleARN}})
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Location"), "methods=webauthn") {
		t.Fatalf("BreakGlass with TOTP: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// A console link met at sign-in asks for the factor too: the sign-in
	// answers with the redirect to it (no response made).
	b2 := e.browser(t)
	rec = b2.login("bob", testPassword, "/aws/console?role=prod/Admin")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/mfa?") || len(p.Calls()) != 2 {
		t.Fatalf("sign-in with a console link to a role needing MFA: %d %q, %d calls", rec.Code, rec.Header().Get("Location"), len(p.Calls()))
	}
}

// groupBackend grants bob's roles only while his groups include
// "developers": it shows which look-up the portal used.
type groupBackend struct{ *fakeBackend }

func (p groupBackend) Grants(ctx context.Context, u identity.User) (rolemap.Result, error) {
	for _, g := range u.Groups {
		if g.Name == "developers" {
			return p.fakeBackend.Grants(ctx, u)
		}
	}
	return rolemap.Result{}, nil
}

func newFreshEnv(t *testing.T) (*env, *fakeChecker, *fakeBackend) {
	t.Helper()
	p := &fakeBackend{grants: map[string][]rolemap.Grant{"bob": bobGrants}, acs: "https://signin.aws.amazon.com/saml"}
	uc := &fakeChecker{}
	uc.set(nil, "developers")
	e := newEnv(t, withBackend(groupBackend{p}), withDeps(func(d *web.Deps) {
		d.Users, d.RecheckInterval = uc, time.Minute
	}))
	uc.sessions = e.sessions
	return e, uc, p
}

// The home page shows the roles of the session's last look-up, looked up
// again once it is older than the recheck interval.
func TestHomeRecheck(t *testing.T) {
	e, uc, _ := newFreshEnv(t)
	b := signedIn(t, e)
	if rec := b.get("/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "PowerUser") {
		t.Fatalf("GET / = %d, want the roles", rec.Code)
	}
	uc.set(nil)
	if rec := b.get("/"); !strings.Contains(rec.Body.String(), "PowerUser") || len(uc.calls()) != 0 {
		t.Fatalf("within the interval: %d look-ups, or roles gone", len(uc.calls()))
	}
	e.clock.Advance(61 * time.Second)
	if rec := b.get("/"); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "PowerUser") {
		t.Fatalf("after the interval: %d, roles still listed", rec.Code)
	}
	if got := uc.calls(); fmt.Sprint(got) != "[session]" {
		t.Errorf("look-ups = %v, want one, via session", got)
	}
}

// The console (POST and GET deep links) looks the user up at every
// request; gone means signed out, an outage is 503. A sign-in that goes on
// to a console link uses the sign-in's own look-up.
func TestConsoleFresh(t *testing.T) {
	e, uc, p := newFreshEnv(t)
	b := signedIn(t, e)
	csrf := csrfFrom(t, b.get("/").Body.String())
	role := bobGrants[0].RoleARN
	if rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {role}}); rec.Code != http.StatusOK {
		t.Fatalf("console: %d", rec.Code)
	}
	if got := uc.calls(); fmt.Sprint(got) != "["+ConsolePath+"]" {
		t.Errorf("look-ups = %v, want one for the console", got)
	}

	// Removed from the group, within the interval: the hand-off refuses.
	uc.set(nil)
	if rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {role}}); rec.Code != http.StatusForbidden {
		t.Errorf("console after removal: %d, want 403", rec.Code)
	}
	if rec := b.get("/aws/console?role=" + url.QueryEscape(role)); rec.Code != http.StatusForbidden {
		t.Errorf("deep link after removal: %d, want 403", rec.Code)
	}

	// Directory down: 503 with a request ID, never a refusal.
	uc.set(fmt.Errorf("ldap: %w", identity.ErrDirectoryUnavailable), "developers")
	rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {role}})
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("X-Request-ID") == "" {
		t.Errorf("outage: %d (request ID %q), want 503", rec.Code, rec.Header().Get("X-Request-ID"))
	}

	// Disabled: signed out on the spot, sent to sign in again with the
	// role as a GET.
	uc.set(fmt.Errorf("ldap: %w", identity.ErrAccountDisabled))
	rec = b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {role}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != web.LoginURL(consoleQuery(role, "")) {
		t.Fatalf("console of a disabled user: %d %q", rec.Code, loc)
	}
	if calls := p.Calls(); len(calls) != 1 {
		t.Errorf("Console called %d times, want only the first click", len(calls))
	}

	// A sign-in with a console link as next: no look-up but the sign-in's.
	uc.set(nil, "developers")
	n := len(uc.calls())
	if rec := e.browser(t).login("bob", testPassword, "/aws/console?role=prod/ReadOnly"); rec.Code != http.StatusOK ||
		!strings.Contains(rec.Body.String(), `id="saml-post"`) {
		t.Fatalf("sign-in to a console link: %d", rec.Code)
	}
	if got := uc.calls()[n:]; len(got) != 0 {
		t.Errorf("look-ups after the sign-in's own: %v", got)
	}
}
