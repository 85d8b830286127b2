package oidcop

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// duiFakeBackend is a hand-written device backend: requests by normalized
// user code, decided once, expiring by the injected clock.
type duiFakeBackend struct {
	mu    sync.Mutex
	now   func() time.Time
	reqs  map[string]*duiFakeReq
	calls []string
	authn []identity.Authn // of every approval, in order
	fail  error            // every call fails with it when set
}

type duiFakeReq struct {
	req   DeviceRequest
	state string // "", "approved", "denied"
	user  string
}

func (f *duiFakeBackend) add(code string, req DeviceRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	req.UserCode = code
	f.reqs[code] = &duiFakeReq{req: req}
}

func (f *duiFakeBackend) get(code string) (*duiFakeReq, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	r, ok := f.reqs[code]
	switch {
	case !ok:
		return nil, ErrUnknownCode
	case !f.now().Before(r.req.Expires):
		return nil, ErrExpired
	case r.state != "":
		return nil, ErrAlreadyDecided
	}
	return r, nil
}

func (f *duiFakeBackend) DeviceRequest(_ context.Context, code string) (DeviceRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "lookup "+code)
	r, err := f.get(code)
	if err != nil {
		return DeviceRequest{}, err
	}
	return r.req, nil
}

func (f *duiFakeBackend) ApproveDevice(_ context.Context, code string, u identity.User, authn identity.Authn) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "approve "+code+" "+u.Username)
	f.authn = append(f.authn, authn)
	r, err := f.get(code)
	if err != nil {
		return err
	}
	r.state, r.user = "approved", u.Username
	return nil
}

func (f *duiFakeBackend) DenyDevice(_ context.Context, code string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "deny "+code)
	r, err := f.get(code)
	if err != nil {
		return err
	}
	r.state = "denied"
	return nil
}

func (f *duiFakeBackend) state(code string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reqs[code]
	return r.state, r.user
}

// decisions lists the approve and deny calls made.
func (f *duiFakeBackend) decisions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "lookup ") {
			out = append(out, c)
		}
	}
	return out
}

func (f *duiFakeBackend) lookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, "lookup ") {
			n++
		}
	}
	return n
}

// duiDir signs in bob and alice with the password "pw".
type duiDir struct{}

func (duiDir) Authenticate(_ context.Context, username, password string) (identity.User, error) {
	if (username != "bob" && username != "alice") || password != "pw" {
		return identity.User{}, identity.ErrInvalidCredentials
	}
	return identity.User{ID: "id-" + username, Username: username, DisplayName: username}, nil
}

type duiFixture struct {
	base    string
	backend *duiFakeBackend
	clock   *duiClock
	audit   *duiAudit
}

// The fake backend's clock starts here (on a 10-minute window boundary).
var duiStart = time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)

const (
	duiCode    = "BCDFGHJK"
	duiShown   = "BCDF-GHJK"
	duiLimitS  = 3 // wrong codes per session
	duiLimitIP = 5 // wrong codes per IP
)

// newDUIFixture serves the device pages through the real web server
// (sessions, CSRF, limiter on Redis) on the fake backend, with one pending
// request for duiCode made a minute ago from 203.0.113.9.
func newDUIFixture(t *testing.T) *duiFixture {
	t.Helper()
	f := &duiFixture{clock: &duiClock{t: duiStart}, audit: &duiAudit{}}
	f.backend = &duiFakeBackend{now: f.clock.Now, reqs: map[string]*duiFakeReq{}}
	f.backend.add(duiCode, DeviceRequest{ClientID: "warden-cli", ClientName: "Warden CLI",
		Scopes: []string{"openid", "profile", "groups", "offline_access", "custom:thing"}, ClientIP: "203.0.113.9",
		Created: duiStart.Add(-time.Minute), Expires: duiStart.Add(9 * time.Minute)})
	st := duiOpenStore(t)
	lim, err := store.NewDeviceLimiter(st, store.DeviceLimitConfig{MaxPerSession: duiLimitS, MaxPerIP: duiLimitIP,
		Window: 10 * time.Minute}, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	ui, err := newDeviceUI(f.backend, DeviceUIDeps{Limiter: lim, Audit: f.audit, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 8 * time.Hour, IdleTimeout: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	loginLim, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 50, MaxFailuresPerIP: 500, Window: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{PublicURL: "http://127.0.0.1", LoginMinDuration: time.Millisecond},
		web.Deps{Directory: duiDir{}, Sessions: sessions, Limiter: loginLim, CSRFKey: []byte(strings.Repeat("c", 32)),
			Audit: f.audit, Mounts: []web.Mount{ui}})
	if err != nil {
		t.Fatalf("web: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	f.base = ts.URL
	return f
}

// signedIn returns a browser signed in as user.
func (f *duiFixture) signedIn(t *testing.T, user string) *http.Client {
	t.Helper()
	b := duiBrowser()
	resp := duiSignIn(t, b, f.base, "/login", user, "pw")
	resp.Body.Close()
	return b
}

// csrf returns a CSRF token of b (from the code form).
func (f *duiFixture) csrf(t *testing.T, b *http.Client) string {
	t.Helper()
	resp := duiGet(t, b, f.base, "/device")
	page := duiBody(t, resp)
	return duiFormOf(t, page, "/device").fields.Get("csrf_token")
}

// enter submits code on the form and returns the status and page.
func (f *duiFixture) enter(t *testing.T, b *http.Client, code string) (*http.Response, string) {
	t.Helper()
	resp := duiPost(t, b, f.base, "/device", url.Values{"csrf_token": {f.csrf(t, b)}, "user_code": {code}})
	return resp, duiBody(t, resp)
}

func TestDeviceAnonymousKeepsCode(t *testing.T) {
	f := newDUIFixture(t)
	b := duiBrowser()
	resp := duiGet(t, b, f.base, "/device?user_code=bcdf-ghjk")
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("anonymous GET: %d %q, want 303 to /login", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	if next := u.Query().Get("next"); next != "/device?user_code=bcdf-ghjk" {
		t.Fatalf("next %q does not keep the code", next)
	}
	// Sign in from there: back on the form, pre-filled, nothing approved.
	resp = duiSignIn(t, b, f.base, loc, "bob", "pw")
	page := duiBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after sign-in: %d", resp.StatusCode)
	}
	if got := duiFormOf(t, page, "/device").fields.Get("user_code"); got != duiShown {
		t.Fatalf("pre-filled %q, want %s", got, duiShown)
	}
	if d := f.backend.decisions(); len(d) != 0 || f.backend.lookups() != 0 {
		t.Fatalf("a link alone did something: %v, %d lookups", d, f.backend.lookups())
	}

	// A session that ended before a POST: back to sign in, the code kept.
	anon := duiBrowser()
	lp := duiBody(t, duiFollow(t, anon, duiGet(t, anon, f.base, "/device")))
	token := duiFormOf(t, lp, "/login").fields.Get("csrf_token")
	for _, action := range []string{"/device", "/device/approve", "/device/deny"} {
		resp := duiPost(t, anon, f.base, action, url.Values{"csrf_token": {token}, "user_code": {"bcdfghjk"}})
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("anonymous POST %s: %d, want 303", action, resp.StatusCode)
		}
		u, _ := url.Parse(loc)
		if u.Path != "/login" || u.Query().Get("next") != "/device?user_code="+duiShown {
			t.Fatalf("anonymous POST %s: Location %q", action, loc)
		}
	}
	if d := f.backend.decisions(); len(d) != 0 {
		t.Fatalf("anonymous POSTs decided: %v", d)
	}
}

func TestDevicePrefilledLinkDoesNotApprove(t *testing.T) {
	f := newDUIFixture(t)
	b := f.signedIn(t, "bob")
	for _, q := range []string{"bcdfghjk", "BCDF-GHJK", "bcdf-ghjk", "  BcDf-gHjK "} {
		resp := duiGet(t, b, f.base, "/device?user_code="+url.QueryEscape(q))
		page := duiBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %q: %d", q, resp.StatusCode)
		}
		form := duiFormOf(t, page, "/device")
		if got := form.fields.Get("user_code"); got != duiShown {
			t.Fatalf("GET %q: pre-filled %q, want %s", q, got, duiShown)
		}
		if _, ok := duiForms(page)["/device/approve"]; ok {
			t.Fatalf("GET %q: the pre-filled page offers Approve at once", q)
		}
		duiWant(t, "prefilled", page, `autocomplete="off"`, `inputmode="text"`, `<label for="user_code">`, "Check that this is the code")
	}
	// Garbage is echoed escaped, never looked up.
	resp := duiGet(t, b, f.base, "/device?user_code="+url.QueryEscape(`"><script>x</script>`+strings.Repeat("A", 100)))
	page := duiBody(t, resp)
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "<script>x") {
		t.Fatalf("garbage user_code: %d, page:\n%s", resp.StatusCode, page)
	}
	if d := f.backend.decisions(); len(d) != 0 || f.backend.lookups() != 0 {
		t.Fatalf("GETs did something: %v, %d lookups", d, f.backend.lookups())
	}
	if _, ok := f.backend.state(duiCode); ok != "" {
		t.Fatal("request decided")
	}
}

func TestDeviceApprove(t *testing.T) {
	f := newDUIFixture(t)
	b := f.signedIn(t, "bob")
	resp, page := f.enter(t, b, "bcdfghjk")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enter: %d %s", resp.StatusCode, page)
	}
	duiWant(t, "confirmation", page, "Approve this device?", "Warden CLI", "warden-cli", "203.0.113.9",
		"not your current address", "2 Jan 2030, 02:59:00 UTC", "1 minute ago", "in 9 minutes",
		"Confirm who you are", "See your name", "See the groups you belong to", "Stay signed in",
		"Other access:", "custom:thing", duiShown, "If someone sent you this link or code, deny.")
	if len(f.backend.decisions()) != 0 {
		t.Fatal("the lookup decided")
	}
	approve := duiFormOf(t, page, "/device/approve")
	deny := duiFormOf(t, page, "/device/deny")
	for _, fm := range []duiForm{approve, deny} {
		if fm.fields.Get("csrf_token") == "" || fm.fields.Get("user_code") != duiShown {
			t.Fatalf("form %s: fields %v", fm.action, fm.fields)
		}
	}
	resp = duiPost(t, b, f.base, "/device/approve", approve.fields)
	page = duiBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d %s", resp.StatusCode, page)
	}
	duiWant(t, "approved", page, "You can return to your terminal")
	if st, user := f.backend.state(duiCode); st != "approved" || user != "bob" {
		t.Fatalf("state %q by %q, want approved by bob", st, user)
	}
	// The approval carries how the session signed in (a password here,
	// at sign-in: no second factor is configured).
	f.backend.mu.Lock()
	authn := f.backend.authn
	f.backend.mu.Unlock()
	if len(authn) != 1 || authn[0].Method != identity.MethodPassword || authn[0].Time.IsZero() {
		t.Fatalf("approved with %+v, want the session's password sign-in", authn)
	}
	ev := f.audit.find("device.approve")
	if len(ev) != 1 || ev[0].Actor != "bob" || ev[0].Object != duiShown || ev[0].Result != "success" ||
		ev[0].Detail["client_id"] != "warden-cli" || ev[0].Detail["request_ip"] != "203.0.113.9" || ev[0].ClientIP == "" ||
		ev[0].RequestID == "" || ev[0].Detail["method"] != identity.MethodPassword {
		t.Fatalf("audit %+v", ev)
	}
	// A second approve (double click, replay): refused, not decided twice.
	resp = duiPost(t, b, f.base, "/device/approve", approve.fields)
	page = duiBody(t, resp)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second approve: %d", resp.StatusCode)
	}
	duiWant(t, "second approve", page, "already approved or denied")
	if d := f.backend.decisions(); len(d) != 1 {
		t.Fatalf("decisions %v", d)
	}
}

func TestDeviceDeny(t *testing.T) {
	f := newDUIFixture(t)
	b := f.signedIn(t, "alice")
	_, page := f.enter(t, b, duiShown)
	resp := duiPost(t, b, f.base, "/device/deny", duiFormOf(t, page, "/device/deny").fields)
	page = duiBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("deny: %d %s", resp.StatusCode, page)
	}
	duiWant(t, "denied", page, "Request denied")
	if st, _ := f.backend.state(duiCode); st != "denied" {
		t.Fatalf("state %q", st)
	}
	if ev := f.audit.find("device.deny"); len(ev) != 1 || ev[0].Actor != "alice" || ev[0].Object != duiShown {
		t.Fatalf("audit %+v", ev)
	}
	if ev := f.audit.find("device.approve"); len(ev) != 0 {
		t.Fatalf("approve audited: %+v", ev)
	}
}

// Approve and deny take POST with the session's CSRF token only.
func TestDeviceDecisionNeedsPostAndCSRF(t *testing.T) {
	f := newDUIFixture(t)
	b := f.signedIn(t, "bob")
	other := f.signedIn(t, "alice")
	otherToken := f.csrf(t, other)
	for _, action := range []string{"/device/approve", "/device/deny"} {
		for _, tc := range []struct {
			name   string
			fields url.Values
			header http.Header
		}{
			{"no token", url.Values{"user_code": {duiShown}}, nil},
			{"bad token", url.Values{"user_code": {duiShown}, "csrf_token": {"nope"}}, nil},
			{"another session's token", url.Values{"user_code": {duiShown}, "csrf_token": {otherToken}}, nil},
			{"cross-site", url.Values{"user_code": {duiShown}, "csrf_token": {f.csrf(t, b)}},
				http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}},
		} {
			req, _ := http.NewRequest(http.MethodPost, f.base+action, strings.NewReader(tc.fields.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %d, want 403", action, tc.name, resp.StatusCode)
			}
		}
		for _, m := range []string{http.MethodGet, http.MethodPut} {
			req, _ := http.NewRequest(m, f.base+action+"?user_code="+duiCode, nil)
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 404 or 405", m, action, resp.StatusCode)
			}
		}
	}
	if d := f.backend.decisions(); len(d) != 0 {
		t.Fatalf("decided without CSRF: %v", d)
	}
}

func TestDeviceWrongCodes(t *testing.T) {
	f := newDUIFixture(t)
	f.backend.add("CCCCCCCC", DeviceRequest{ClientID: "c", Created: duiStart.Add(-20 * time.Minute),
		Expires: duiStart.Add(-10 * time.Minute)})
	b := f.signedIn(t, "bob")

	// Malformed: refused without a lookup and without counting.
	for _, bad := range []string{"", "AEIOUAEI", "BCDF-GHJ", "BCDF-GHJKL", "1234-5678", "ÄÖÜ", strings.Repeat("x", 5000)} {
		resp, page := f.enter(t, b, bad)
		if bad == "" || len(bad) > 4000 {
			if resp.StatusCode >= 500 {
				t.Fatalf("%q: %d", bad[:min(len(bad), 8)], resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("malformed %q: %d", bad, resp.StatusCode)
		}
		duiWant(t, "malformed "+bad, page, "That is not a valid code.", `aria-invalid="true"`)
	}
	if n := f.backend.lookups(); n != 0 {
		t.Fatalf("%d lookups of malformed codes", n)
	}

	// Unknown, then expired: the form again with a clear message, counted and audited.
	resp, page := f.enter(t, b, "ZZZZ-ZZZZ")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unknown: %d", resp.StatusCode)
	}
	duiWant(t, "unknown", page, "That code is not valid, or it has expired.", "ZZZZ-ZZZZ")
	_, page = f.enter(t, b, "cccccccc")
	duiWant(t, "expired", page, "That code is not valid, or it has expired.")
	ev := f.audit.find("device.code_wrong")
	if len(ev) != 2 || ev[0].Result != "unknown_code" || ev[0].Object != "ZZZZ-ZZZZ" || ev[1].Result != "expired" ||
		ev[0].Actor != "bob" {
		t.Fatalf("audit %+v", ev)
	}
	// The third wrong code reaches the session's limit; then even the
	// right code is refused with 429 and Retry-After.
	f.enter(t, b, "ZZZZ-ZZZB")
	resp, page = f.enter(t, b, duiShown)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("past the limit: %d", resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 600 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	duiWant(t, "limited", page, "Too many wrong codes", "10 minutes")
	// Approve is limited too (it looks the code up).
	resp = duiPost(t, b, f.base, "/device/approve", url.Values{"csrf_token": {f.csrf(t, b)}, "user_code": {duiShown}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("approve past the limit: %d", resp.StatusCode)
	}
	if len(f.backend.decisions()) != 0 {
		t.Fatal("approved past the limit")
	}
	if ev := f.audit.find("device.code_wrong"); ev[len(ev)-1].Result != "rate_limited" {
		t.Fatalf("last audit %+v", ev[len(ev)-1])
	}

	// Per IP: another session from the same address has 2 left (5 - 3).
	b2 := f.signedIn(t, "alice")
	f.enter(t, b2, "ZZZZ-ZZZC")
	f.enter(t, b2, "ZZZZ-ZZZD")
	if resp, _ := f.enter(t, b2, duiShown); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("another session past the IP limit: %d", resp.StatusCode)
	}

	// The window ends: the right code works again.
	f.clock.Add(10 * time.Minute)
	f.backend.add(duiCode, DeviceRequest{ClientID: "warden-cli", Created: f.clock.Now(), Expires: f.clock.Now().Add(time.Minute)})
	if resp, page := f.enter(t, b, duiShown); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Approve this device?") {
		t.Fatalf("after the window: %d", resp.StatusCode)
	}
}

// A code that expires between the confirmation and the click is refused.
func TestDeviceExpiresBeforeApprove(t *testing.T) {
	f := newDUIFixture(t)
	b := f.signedIn(t, "bob")
	_, page := f.enter(t, b, duiShown)
	approve := duiFormOf(t, page, "/device/approve")
	f.clock.Add(9 * time.Minute)
	resp := duiPost(t, b, f.base, "/device/approve", approve.fields)
	page = duiBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve after expiry: %d", resp.StatusCode)
	}
	duiWant(t, "approve after expiry", page, "That code is not valid, or it has expired.")
	if st, _ := f.backend.state(duiCode); st != "" {
		t.Fatalf("expired request %s", st)
	}
	if ev := f.audit.find("device.code_wrong"); len(ev) != 1 || ev[0].Result != "expired" {
		t.Fatalf("audit %+v", ev)
	}
}

// A backend failure is a 503 page with a request ID: no 500, no detail.
func TestDeviceBackendFailure(t *testing.T) {
	f := newDUIFixture(t)
	b := f.signedIn(t, "bob")
	token := f.csrf(t, b)
	f.backend.fail = errors.New("redis: secret-detail broken")
	for _, action := range []string{"/device", "/device/approve", "/device/deny"} {
		resp := duiPost(t, b, f.base, action, url.Values{"csrf_token": {token}, "user_code": {duiShown}})
		page := duiBody(t, resp)
		if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(page, "secret-detail") ||
			!strings.Contains(page, "Request ID") {
			t.Fatalf("%s: %d\n%s", action, resp.StatusCode, page)
		}
	}
}

func TestDeviceTexts(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "now"}, {time.Second, "1 second"}, {59 * time.Second, "59 seconds"}, {61 * time.Second, "2 minutes"},
		{time.Hour, "1 hour"}, {90 * time.Minute, "2 hours"}} {
		if got := durationText(tc.d); got != tc.want {
			t.Errorf("durationText(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	got := scopeTexts([]string{"openid", "email", "openid", "", "roles", "x"})
	want := []scopeText{{Text: scopeWords["openid"]}, {Text: scopeWords["email"]}, {Text: scopeWords["roles"]}, {Text: "Other access:", Raw: "x"}}
	if len(got) != len(want) {
		t.Fatalf("scopeTexts %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("scope %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got := scopeTexts(nil); len(got) != 1 {
		t.Errorf("no scopes: %v", got)
	}
}
