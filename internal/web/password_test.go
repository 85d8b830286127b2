package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

const newTestPassword = "N3w-S3cret-Pa55!"

// changerDir is fakeDir with the PasswordChanger capability. pwexpired and
// mustchange (password testPassword) may change their password; once they
// have, they sign in with the new one. New passwords shorter than 8 bytes
// are refused as too short; "weak-but-long" is refused without a reason,
// as Active Directory does.
type changerDir struct {
	*fakeDir
	mu        sync.Mutex
	cannot    bool              // CanChangePassword answers false
	changeErr error             // ChangePassword fails with it
	changed   map[string]string // user -> new password
	changes   int               // ChangePassword calls
	lagging   bool              // after a change, Authenticate still refuses (a replica behind)
}

func (d *changerDir) CanChangePassword(reason error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.cannot
}

func (d *changerDir) ChangePassword(_ context.Context, username, oldPassword, newPassword string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.changes++
	if d.changeErr != nil {
		return d.changeErr
	}
	if (username != "pwexpired" && username != "mustchange") || oldPassword != testPassword || d.changed[username] != "" {
		return fmt.Errorf("fake: change: %w", identity.ErrInvalidCredentials)
	}
	switch {
	case len(newPassword) < 8:
		return fmt.Errorf("fake: change: %w", &identity.PasswordPolicyError{Reason: identity.PolicyTooShort, Detail: "secret-server-detail"})
	case newPassword == "weak-but-long":
		return fmt.Errorf("fake: change: %w", &identity.PasswordPolicyError{})
	}
	if d.changed == nil {
		d.changed = map[string]string{}
	}
	d.changed[username] = newPassword
	return nil
}

func (d *changerDir) Authenticate(ctx context.Context, username, password string) (identity.User, error) {
	d.mu.Lock()
	nw, lagging := d.changed[username], d.lagging
	d.mu.Unlock()
	if nw == "" || lagging {
		return d.fakeDir.Authenticate(ctx, username, password)
	}
	if password != nw {
		return identity.User{}, identity.ErrInvalidCredentials
	}
	u := bob
	u.Username, u.ID, u.DisplayName = username, "id-"+username, "Changed "+username
	return u, nil
}

func (d *changerDir) Changes() int { d.mu.Lock(); defer d.mu.Unlock(); return d.changes }

// withChanger replaces the env's directory with a changerDir around it.
func withChanger(cd *changerDir) envOption {
	return func(_ *Config, deps *Deps) {
		cd.fakeDir = deps.Directory.(*fakeDir)
		deps.Directory = cd
	}
}

// pwFactor is a SecondFactor whose every sign-in waits for a factor.
type pwFactor struct{}

func (pwFactor) AfterPassword(context.Context, identity.User) (string, error) {
	return store.PendingFactor, nil
}
func (pwFactor) Enrolled(context.Context, string) (bool, error) { return true, nil }
func (pwFactor) Methods() []string                              { return identity.SecondFactors }

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hiddenFields returns the hidden inputs of a page.
func hiddenFields(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], m[2])
	}
	return v
}

// changeForm signs in as user with testPassword and returns the change
// form's hidden fields.
func changeForm(t *testing.T, b *browser, user, next string) url.Values {
	t.Helper()
	return changeFormWith(t, b, user, testPassword, next)
}

// changeFormWith is changeForm with the password pw.
func changeFormWith(t *testing.T, b *browser, user, pw, next string) url.Values {
	t.Helper()
	rec := b.login(user, pw, next)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `action="/login/password"`) {
		t.Fatalf("sign-in as %s: %d, no change form\n%s", user, rec.Code, rec.Body)
	}
	return hiddenFields(rec.Body.String())
}

// postChange posts the change form with the hidden fields and the three
// passwords.
func postChange(b *browser, hidden url.Values, current, nw, confirm string) *httptest.ResponseRecorder {
	f := url.Values{}
	for k, v := range hidden {
		f[k] = v
	}
	f.Set("password", current)
	f.Set("new_password", nw)
	f.Set("confirm_password", confirm)
	return b.post("/login/password", f)
}

// noPasswords fails when a page echoes a password.
func noPasswords(t *testing.T, body string, pws ...string) {
	t.Helper()
	for _, pw := range pws {
		if pw != "" && strings.Contains(body, pw) {
			t.Errorf("the page echoes the password %q", pw)
		}
	}
}

func TestPasswordChangeFlow(t *testing.T) {
	tests := []struct {
		user, heading, reason, outcome string
	}{
		{"pwexpired", "Your password has expired", reasonExpired, outcomePasswordExpired},
		{"mustchange", "Change your password first", reasonMustChange, outcomeMustChange},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			cd := &changerDir{}
			e := newEnv(t, withChanger(cd))
			b := e.browser(t)
			rec := b.login(tc.user, testPassword, "/after?x=1")
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, tc.heading) || !strings.Contains(body, `action="/login/password"`) {
				t.Fatalf("sign-in: %d\n%s", rec.Code, body)
			}
			noPasswords(t, body, testPassword)
			h := hiddenFields(body)
			if h.Get("username") != tc.user || h.Get("next") != "/after?x=1" || h.Get("reason") != tc.reason || h.Get("csrf_token") == "" {
				t.Errorf("hidden fields %v", h)
			}
			if !strings.Contains(body, `value="`+tc.user+`" autocomplete="username" readonly`) {
				t.Error("the username is not shown read-only")
			}

			rec = postChange(b, h, testPassword, newTestPassword, newTestPassword)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/after?x=1" {
				t.Fatalf("change: %d %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			ck := b.cookies["warden_session"]
			if ck == nil {
				t.Fatal("no session cookie after the change")
			}
			sess, err := e.sessions.Get(t.Context(), ck.Value)
			if err != nil || sess.User.Username != tc.user {
				t.Fatalf("session %+v %v", sess, err)
			}
			var actions []string
			for _, ev := range e.audit.Events() {
				actions = append(actions, ev.Action+":"+ev.Result)
			}
			if want := []string{"login:" + tc.outcome, "password.change:success", "login:success"}; strings.Join(actions, " ") != strings.Join(want, " ") {
				t.Errorf("audit %v, want %v", actions, want)
			}
			if len(e.limiter.fails) != 1 || len(e.limiter.succeeded) != 1 {
				t.Errorf("limiter: fails %v (the refused sign-in), succeeded %v", e.limiter.fails, e.limiter.succeeded)
			}
			if strings.Contains(e.logs.String(), newTestPassword) || strings.Contains(e.logs.String(), testPassword) {
				t.Error("a password is in the log")
			}
			// The old password no longer signs in; the new one does.
			if rec := e.browser(t).login(tc.user, testPassword, "/"); !strings.Contains(rec.Body.String(), genericFailure) {
				t.Errorf("old password after the change: %d", rec.Code)
			}
			if rec := e.browser(t).login(tc.user, newTestPassword, "/"); rec.Code != http.StatusSeeOther {
				t.Errorf("new password: %d", rec.Code)
			}
		})
	}
}

// TestPasswordChangeSecondFactor: the sign-in after the change is the
// ordinary one, so a second factor is asked for as after any sign-in.
func TestPasswordChangeSecondFactor(t *testing.T) {
	cd := &changerDir{}
	e := newEnv(t, withChanger(cd), func(_ *Config, d *Deps) { d.SecondFactor = pwFactor{} })
	b := e.browser(t)
	rec := postChange(b, changeForm(t, b, "mustchange", "/next"), testPassword, newTestPassword, newTestPassword)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != factorURL("/next", nil, false) {
		t.Fatalf("got %d %q, want the second-factor page", rec.Code, rec.Header().Get("Location"))
	}
	sess, err := e.sessions.Get(t.Context(), b.cookies["warden_session"].Value)
	if err != nil || sess.Pending == "" {
		t.Errorf("session %+v %v: want one pending its second factor", sess, err)
	}
}

func TestPasswordChangeFormErrors(t *testing.T) {
	tests := []struct {
		name, current, nw, confirm, text string
	}{
		{"mismatch", testPassword, newTestPassword, newTestPassword + "x", textNewMismatch},
		{"same as current", testPassword, testPassword, testPassword, textNewSame},
		{"new missing", testPassword, "", "", textNewMissing},
		{"confirm missing", testPassword, newTestPassword, "", textNewMissing},
		{"control character", testPassword, "new\tpassword", "new\tpassword", textNewUnusable},
		{"too long", testPassword, strings.Repeat("p", maxPasswordBytes+1), strings.Repeat("p", maxPasswordBytes+1), textNewUnusable},
		{"not UTF-8", testPassword, "pass\xffword", "pass\xffword", textNewUnusable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd := &changerDir{}
			e := newEnv(t, withChanger(cd))
			b := e.browser(t)
			h := changeForm(t, b, "pwexpired", "/next")
			checks := e.limiter.checks
			rec := postChange(b, h, tc.current, tc.nw, tc.confirm)
			body := rec.Body.String()
			if rec.Code != http.StatusBadRequest || !strings.Contains(body, tc.text) || !strings.Contains(body, `action="/login/password"`) {
				t.Fatalf("got %d\n%s", rec.Code, body)
			}
			if cd.Changes() != 0 || e.limiter.checks != checks {
				t.Error("a form error reached the limiter or the directory")
			}
			if g := hiddenFields(body); g.Get("username") != "pwexpired" || g.Get("next") != "/next" || g.Get("reason") != reasonExpired {
				t.Errorf("the form lost its fields: %v", g)
			}
			noPasswords(t, body, tc.current, tc.nw, tc.confirm)
			if _, ok := b.cookies["warden_session"]; ok {
				t.Error("a session cookie was set")
			}
		})
	}
}

// TestPasswordChangeWrongCurrent: a wrong current password and an unknown
// user (a forged POST) read alike, count as failed sign-ins and are padded.
func TestPasswordChangeWrongCurrent(t *testing.T) {
	var ref string
	for i, user := range []string{"pwexpired", "nosuchuser", "bob"} {
		t.Run(user, func(t *testing.T) {
			cd := &changerDir{}
			e := newEnv(t, withChanger(cd))
			b := e.browser(t)
			h := changeForm(t, b, "pwexpired", "/next")
			h.Set("username", user) // the hidden field is the client's to forge
			sleeps := len(e.clock.Sleeps())
			rec := postChange(b, h, "wrong-"+testPassword, newTestPassword, newTestPassword)
			body := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.Contains(body, textWrongCurrent) {
				t.Fatalf("got %d\n%s", rec.Code, body)
			}
			norm := normalize(strings.ReplaceAll(body, `value="`+user+`"`, `value="USER"`))
			if i == 0 {
				ref = norm
			} else if norm != ref {
				t.Errorf("answer differs from a wrong password:\n--- got\n%s\n--- want\n%s", norm, ref)
			}
			if len(e.limiter.fails) != 2 { // the refused sign-in, then this
				t.Errorf("limiter.Fail calls %v, want 2", e.limiter.fails)
			}
			if s := e.clock.Sleeps(); len(s) != sleeps+1 {
				t.Errorf("sleeps %v: a refusal must be padded", s)
			}
			noPasswords(t, body, testPassword, newTestPassword)
			evs := e.audit.Events()
			if last := evs[len(evs)-1]; last.Action != "password.change" || last.Result != outcomeInvalidCredentials {
				t.Errorf("audit %+v", last)
			}
		})
	}
}

func TestPasswordChangeDirectoryAnswers(t *testing.T) {
	tests := []struct {
		name      string
		nw        string
		changeErr error
		code      int
		want      string
		outcome   string
	}{
		{"too short", "Ab1!x", nil, http.StatusBadRequest, "rules: it is too short.", "policy"},
		{"refused without reason (AD)", "weak-but-long", nil, http.StatusBadRequest, "rules: it may be too short, too simple, or one you used before", "policy"},
		{"in history", newTestPassword, fmt.Errorf("x: %w", &identity.PasswordPolicyError{Reason: identity.PolicyInHistory}), http.StatusBadRequest, "it was used before", "policy"},
		{"too young", newTestPassword, fmt.Errorf("x: %w", &identity.PasswordPolicyError{Reason: identity.PolicyTooYoung}), http.StatusBadRequest, "changed too recently", "policy"},
		{"quality", newTestPassword, fmt.Errorf("x: %w", &identity.PasswordPolicyError{Reason: identity.PolicyQuality}), http.StatusBadRequest, "not complex enough", "policy"},
		{"unsupported", newTestPassword, fmt.Errorf("x: %w", identity.ErrPasswordChangeUnsupported), http.StatusForbidden, "IT helpdesk", "unsupported"},
		{"disabled", newTestPassword, fmt.Errorf("x: %w", identity.ErrAccountDisabled), http.StatusForbidden, "Your account is disabled", outcomeDisabled},
		{"locked reads like a wrong password", newTestPassword, fmt.Errorf("x: %w", identity.ErrAccountLocked), http.StatusOK, textWrongCurrent, outcomeLocked},
		{"outage", newTestPassword, fmt.Errorf("ldap: dial 10.0.0.1: %w", identity.ErrDirectoryUnavailable), http.StatusServiceUnavailable, "Service unavailable", outcomeDirectoryUnavailable},
		{"error outside the contract", newTestPassword, errBoom, http.StatusServiceUnavailable, "Service unavailable", outcomeDirectoryUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd := &changerDir{}
			e := newEnv(t, withChanger(cd))
			b := e.browser(t)
			h := changeForm(t, b, "pwexpired", "/next")
			cd.changeErr = tc.changeErr
			rec := postChange(b, h, testPassword, tc.nw, tc.nw)
			body := rec.Body.String()
			if rec.Code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d, want %d with %q\n%s", rec.Code, tc.code, tc.want, body)
			}
			for _, secret := range []string{"secret-server-detail", "10.0.0.1", "boom"} {
				if strings.Contains(body, secret) {
					t.Errorf("the page shows private detail %q", secret)
				}
			}
			if rid := rec.Header().Get("X-Request-ID"); tc.code == http.StatusServiceUnavailable && !strings.Contains(body, rid) {
				t.Error("no request ID on the 503 page")
			}
			noPasswords(t, body, testPassword, tc.nw)
			evs := e.audit.Events()
			if last := evs[len(evs)-1]; last.Action != "password.change" || last.Result != tc.outcome {
				t.Errorf("audit %+v, want %s", last, tc.outcome)
			}
			if _, ok := b.cookies["warden_session"]; ok {
				t.Error("a session cookie was set")
			}
		})
	}
}

func TestPasswordChangeCSRF(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(b *browser, f url.Values) []string
	}{
		{"missing token", func(_ *browser, f url.Values) []string { f.Del("csrf_token"); return nil }},
		{"no cookie", func(b *browser, _ url.Values) []string { delete(b.cookies, csrfCookieBase); return nil }},
		{"cross-site", func(*browser, url.Values) []string { return []string{"Sec-Fetch-Site", "cross-site"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := &changerDir{}
			e := newEnv(t, withChanger(cd))
			b := e.browser(t)
			h := changeForm(t, b, "mustchange", "/")
			f := url.Values{"password": {testPassword}, "new_password": {newTestPassword}, "confirm_password": {newTestPassword}}
			for k, v := range h {
				f[k] = v
			}
			hdr := tc.mutate(b, f)
			checks := e.limiter.checks
			rec := b.post("/login/password", f, hdr...)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Your form expired") {
				t.Fatalf("got %d\n%s", rec.Code, rec.Body)
			}
			if cd.Changes() != 0 || e.limiter.checks != checks {
				t.Error("a forged request reached the limiter or the directory")
			}
		})
	}
}

func TestPasswordChangeRateLimited(t *testing.T) {
	cd := &changerDir{}
	e := newEnv(t, withChanger(cd))
	b := e.browser(t)
	h := changeForm(t, b, "pwexpired", "/")
	e.limiter.decision = store.Decision{Allowed: false, RetryAfter: 10e9}
	rec := postChange(b, h, testPassword, newTestPassword, newTestPassword)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "10" {
		t.Fatalf("got %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if cd.Changes() != 0 {
		t.Error("the directory was asked despite the limit")
	}
}

// TestPasswordChangeSignInLag: the change worked but the sign-in with the
// new password is refused (a replica that has not seen it): the sign-in
// page says the password was changed.
func TestPasswordChangeSignInLag(t *testing.T) {
	cd := &changerDir{lagging: true}
	e := newEnv(t, withChanger(cd))
	b := e.browser(t)
	rec := postChange(b, changeForm(t, b, "pwexpired", "/next"), testPassword, newTestPassword, newTestPassword)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, textChangedSignInNow) || strings.Contains(body, genericFailure) ||
		!strings.Contains(body, `action="/login"`) || hiddenFields(body).Get("next") != "/next" {
		t.Fatalf("got %d\n%s", rec.Code, body)
	}
}

// TestPasswordChangeWithoutCapability: a directory that cannot change
// passwords (no capability, or not for this state) keeps the page that
// sends the user elsewhere, and there is no change route.
func TestPasswordChangeWithoutCapability(t *testing.T) {
	t.Run("no capability", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser(t)
		rec := b.login("pwexpired", testPassword, "/")
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "IT helpdesk") {
			t.Fatalf("got %d\n%s", rec.Code, rec.Body)
		}
		page := b.get("/login")
		rec = b.post("/login/password", url.Values{"csrf_token": {csrfFrom(t, page.Body.String())}, "username": {"pwexpired"},
			"password": {testPassword}, "new_password": {newTestPassword}, "confirm_password": {newTestPassword}})
		if rec.Code != http.StatusNotFound {
			t.Errorf("POST /login/password without the capability: %d", rec.Code)
		}
	})
	t.Run("not for this state", func(t *testing.T) {
		cd := &changerDir{cannot: true}
		e := newEnv(t, withChanger(cd))
		rec := e.browser(t).login("mustchange", testPassword, "/")
		if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), `action="/login/password"`) {
			t.Fatalf("got %d\n%s", rec.Code, rec.Body)
		}
	})
	t.Run("other states never get the form", func(t *testing.T) {
		cd := &changerDir{}
		e := newEnv(t, withChanger(cd))
		for _, u := range []string{"disabled", "acctexpired", "locked", "bob"} {
			rec := e.browser(t).login(u, "wrong", "/")
			if strings.Contains(rec.Body.String(), `action="/login/password"`) {
				t.Errorf("%s with a wrong password got the change form", u)
			}
		}
		// An expired user with a wrong password: the directory says 52e,
		// not 532, so nothing tells that the account exists.
		rec := e.browser(t).login("pwexpired", "wrong", "/")
		if !strings.Contains(rec.Body.String(), genericFailure) {
			t.Errorf("pwexpired, wrong password: %d\n%s", rec.Code, rec.Body)
		}
	})
}

func TestPasswordChangeBodyTooLarge(t *testing.T) {
	cd := &changerDir{}
	e := newEnv(t, withChanger(cd))
	b := e.browser(t)
	h := changeForm(t, b, "pwexpired", "/")
	big := strings.Repeat("x", maxBody)
	rec := postChange(b, h, testPassword, big, big)
	if rec.Code != http.StatusRequestEntityTooLarge || cd.Changes() != 0 {
		t.Fatalf("got %d, %d changes", rec.Code, cd.Changes())
	}
}
