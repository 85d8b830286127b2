package oidcop

// The whole device authorization grant (RFC 8628) against the real server:
// golang.org/x/oauth2's DeviceAuth and DeviceAccessToken as the device, the
// real /device pages driven by an HTTP client with a cookie jar (and by
// Chromium) as the user, real Redis, and the real OpenLDAP (LDAP_* env) or,
// when it is not configured outside CI, the embedded directory.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/wardenidp/warden/internal/directory/embedded"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
	"github.com/wardenidp/warden/internal/web"
)

// dfeClock is the real time plus an offset that tests move forward (the
// poll interval needs real time to pass; expiry is reached by the offset).
type dfeClock struct{ off atomic.Int64 }

func (c *dfeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *dfeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// dfeLog collects every log line, to check that no device code is logged.
type dfeLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *dfeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *dfeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type deviceE2E struct {
	p      *Provider
	base   string
	pw     string // the users' password
	dir    string // "openldap" or "embedded"
	clock  *dfeClock
	audit  *duiAudit
	logs   *dfeLog
	oauth  oauth2.Config
	client *http.Client // the device's HTTP client
}

// dfeDirectory is the real OpenLDAP when LDAP_URL is set (required under
// CI), else the embedded directory on config/dev-directory.ldif.
func dfeDirectory(t *testing.T) (*ldap.Directory, string, string) {
	t.Helper()
	var cfg ldap.Config
	var pw, kind string
	if os.Getenv("LDAP_URL") != "" || os.Getenv("CI") == "true" {
		env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW")
		cfg = ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
			BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"], DialTimeout: 2 * time.Second, Timeout: 5 * time.Second}
		pw, kind = env["LDAP_USER_PW"], "openldap"
	} else {
		srv, err := embedded.Start(context.Background(), "../../config/dev-directory.ldif", nil)
		if err != nil {
			t.Fatalf("embedded directory: %v", err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		cfg, pw, kind = srv.Config(), "warden-dev", "embedded"
	}
	cfg.ApplyPreset()
	cfg.SetDefaults()
	d, err := ldap.New(cfg)
	if err != nil {
		t.Fatalf("ldap.New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, pw, kind
}

// newDeviceE2E starts the provider and the device pages in the real web
// server, with a poll interval of 1 s and device codes valid for 1 minute.
// web adds to the web server's deps (a second factor, more mounts).
func newDeviceE2E(t *testing.T, webDeps ...func(*web.Deps)) *deviceE2E {
	t.Helper()
	env := testenv.Require(t, "REDIS_ADDR")
	if testing.Short() {
		t.Skip("device flow end to end skipped in -short mode")
	}
	ctx := context.Background()
	e := &deviceE2E{clock: &dfeClock{}, audit: &duiAudit{}, logs: &dfeLog{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir, pw, kind := dfeDirectory(t)
	e.pw, e.dir = pw, kind
	t.Logf("directory: %s", kind)
	st, err := store.Open(ctx, store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD"),
		KeyPrefix: "wdevflow:" + strconv.FormatUint(rand.Uint64(), 36) + ":"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ring, err := keys.Open(t.TempDir(), keys.Config{}, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}

	hs := httptest.NewUnstartedServer(nil)
	e.base = "http://" + hs.Listener.Addr().String()
	prov, err := New(Config{DevicePollInterval: time.Second, DeviceCodeLifetime: time.Minute},
		Deps{Keys: ring, Store: st, Directory: dir, Audit: e.audit, Logger: log, Clock: e.clock.Now,
			PublicURL: e.base, SubjectKey: bytes.Repeat([]byte("s"), 32)})
	if err != nil {
		t.Fatalf("oidcop.New: %v", err)
	}
	ui, err := prov.DeviceUI(st, store.DeviceLimitConfig{})
	if err != nil {
		t.Fatalf("DeviceUI: %v", err)
	}
	sessions, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 8 * time.Hour, IdleTimeout: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	loginLim, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 50, MaxFailuresPerIP: 500, Window: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wd := web.Deps{Directory: dir, Sessions: sessions, Limiter: loginLim, CSRFKey: bytes.Repeat([]byte("c"), 32),
		Audit: e.audit, Logger: log, Mounts: []web.Mount{prov, ui}}
	for _, f := range webDeps {
		f(&wd)
	}
	srv, err := web.New(web.Config{PublicURL: e.base, LoginMinDuration: time.Millisecond}, wd)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	e.p = prov
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	e.client = &http.Client{Timeout: 30 * time.Second}
	e.oauth = oauth2.Config{ClientID: CLIClientID, Scopes: []string{"openid", "profile", "groups", "offline_access"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: e.base + "/oauth/device_authorization", TokenURL: e.base + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams}}
	return e
}

func (e *deviceE2E) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), oauth2.HTTPClient, e.client), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var dfeUserCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// start asks for a device authorization and checks the answer's shape.
func (e *deviceE2E) start(t *testing.T) *oauth2.DeviceAuthResponse {
	t.Helper()
	da, err := e.oauth.DeviceAuth(e.ctx(t))
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if !dfeUserCodeRE.MatchString(da.UserCode) {
		t.Fatalf("user code %q is not XXXX-XXXX of the base-20 alphabet", da.UserCode)
	}
	if da.VerificationURI != e.base+"/device" {
		t.Fatalf("verification_uri %q", da.VerificationURI)
	}
	u, err := url.Parse(da.VerificationURIComplete)
	if err != nil || u.Path != "/device" || u.Query().Get("user_code") != da.UserCode {
		t.Fatalf("verification_uri_complete %q", da.VerificationURIComplete)
	}
	if da.Interval != 1 || da.DeviceCode == "" {
		t.Fatalf("interval %d, device code %d bytes", da.Interval, len(da.DeviceCode))
	}
	return da
}

// poll makes one token request with the device code and returns the error
// code ("" on success).
func (e *deviceE2E) poll(t *testing.T, da *oauth2.DeviceAuthResponse) string {
	t.Helper()
	resp, err := e.client.PostForm(e.oauth.Endpoint.TokenURL, url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode},
		"client_id": {CLIClientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %d, %v", resp.StatusCode, err)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, body.Error)
	}
	if body.Error == "" && (resp.StatusCode != http.StatusOK || body.AccessToken == "") {
		t.Fatalf("token endpoint: %d without an error or a token", resp.StatusCode)
	}
	return body.Error
}

// user signs a browser in as user through verification_uri_complete and
// returns it with the pre-filled code form's page.
func (e *deviceE2E) user(t *testing.T, da *oauth2.DeviceAuthResponse, user string) (*http.Client, string) {
	t.Helper()
	b := duiBrowser()
	resp := duiGet(t, b, "", da.VerificationURIComplete)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("verification_uri_complete, anonymous: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = duiSignIn(t, b, e.base, resp.Header.Get("Location"), user, e.pw)
	page := duiBody(t, resp)
	if got := duiFormOf(t, page, "/device").fields.Get("user_code"); resp.StatusCode != http.StatusOK || got != da.UserCode {
		t.Fatalf("after sign-in: %d, code %q", resp.StatusCode, got)
	}
	return b, page
}

// confirm submits the pre-filled form and returns the confirmation page.
func (e *deviceE2E) confirm(t *testing.T, b *http.Client, formPage string) string {
	t.Helper()
	resp := duiPost(t, b, e.base, "/device", duiFormOf(t, formPage, "/device").fields)
	page := duiBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirmation: %d\n%s", resp.StatusCode, page)
	}
	duiWant(t, "confirmation", page, "Approve this device?", "Warden CLI", "127.0.0.1", "Confirm who you are", "See your name",
		"See the groups you belong to")
	return page
}

func (e *deviceE2E) noDeviceCodeLogged(t *testing.T, codes ...string) {
	t.Helper()
	logs := e.logs.String()
	e.audit.mu.Lock()
	events, _ := json.Marshal(e.audit.events)
	e.audit.mu.Unlock()
	for _, c := range codes {
		if strings.Contains(logs, c) || strings.Contains(string(events), c) {
			t.Fatal("a device code reached the log or the audit")
		}
	}
}

func TestDeviceFlowApprove(t *testing.T) {
	e := newDeviceE2E(t)
	da := e.start(t)
	if got := e.poll(t, da); got != "authorization_pending" {
		t.Fatalf("before approval: %q, want authorization_pending", got)
	}
	b, page := e.user(t, da, "bob")
	// Signed in and on the pre-filled form: still nothing approved.
	time.Sleep(1100 * time.Millisecond)
	if got := e.poll(t, da); got != "authorization_pending" {
		t.Fatalf("pre-filled form only: %q, want authorization_pending", got)
	}
	page = e.confirm(t, b, page)
	time.Sleep(1100 * time.Millisecond)
	if got := e.poll(t, da); got != "authorization_pending" {
		t.Fatalf("confirmation page only: %q, want authorization_pending", got)
	}
	resp := duiPost(t, b, e.base, "/device/approve", duiFormOf(t, page, "/device/approve").fields)
	duiWant(t, "approved", duiBody(t, resp), "You can return to your terminal")

	tok, err := e.oauth.DeviceAccessToken(e.ctx(t), da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token: access %t, refresh %t, id_token %v", tok.AccessToken != "", tok.RefreshToken != "", tok.Extra("id_token"))
	}
	// The token is bob's: userinfo through the access token.
	req, _ := http.NewRequest(http.MethodGet, e.base+"/oauth/userinfo", nil)
	tok.SetAuthHeader(req)
	uresp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	_ = json.NewDecoder(uresp.Body).Decode(&info)
	uresp.Body.Close()
	if uresp.StatusCode != http.StatusOK || info["preferred_username"] != "bob" || info["sub"] == "bob" || info["sub"] == "" {
		t.Fatalf("userinfo: %d %v", uresp.StatusCode, info)
	}
	// The device code is spent.
	time.Sleep(1100 * time.Millisecond)
	if got := e.poll(t, da); got == "" || got == "authorization_pending" {
		t.Fatalf("device code used twice: %q", got)
	}
	if ev := e.audit.find("device.approve"); len(ev) != 1 || ev[0].Actor != "bob" || ev[0].Object != da.UserCode {
		t.Fatalf("audit %+v", ev)
	}
	e.noDeviceCodeLogged(t, da.DeviceCode)
}

func TestDeviceFlowDeny(t *testing.T) {
	e := newDeviceE2E(t)
	da := e.start(t)
	b, page := e.user(t, da, "bob")
	page = e.confirm(t, b, page)
	resp := duiPost(t, b, e.base, "/device/deny", duiFormOf(t, page, "/device/deny").fields)
	duiWant(t, "denied", duiBody(t, resp), "Request denied")
	_, err := e.oauth.DeviceAccessToken(e.ctx(t), da)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "access_denied" {
		t.Fatalf("after deny: %v, want access_denied", err)
	}
	// An approve after the deny is refused: the request was decided.
	resp = duiPost(t, b, e.base, "/device/approve", duiFormOf(t, page, "/device/approve").fields)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("approve after deny: %d", resp.StatusCode)
	}
	if ev := e.audit.find("device.deny"); len(ev) != 1 || ev[0].Actor != "bob" {
		t.Fatalf("audit %+v", ev)
	}
	e.noDeviceCodeLogged(t, da.DeviceCode)
}

// Polling faster than the interval is slow_down (RFC 8628 §3.5).
func TestDeviceFlowSlowDown(t *testing.T) {
	e := newDeviceE2E(t)
	da := e.start(t)
	time.Sleep(1100 * time.Millisecond)
	if got := e.poll(t, da); got != "authorization_pending" {
		t.Fatalf("first poll after the interval: %q", got)
	}
	if got := e.poll(t, da); got != "slow_down" {
		t.Fatalf("immediate second poll: %q, want slow_down", got)
	}
}

// A device code past its lifetime is expired_token, and its user code is
// refused by the page.
func TestDeviceFlowExpired(t *testing.T) {
	e := newDeviceE2E(t)
	da := e.start(t)
	b, page := e.user(t, da, "bob")
	e.clock.Advance(61 * time.Second)
	resp := duiPost(t, b, e.base, "/device", duiFormOf(t, page, "/device").fields)
	duiWant(t, "expired code", duiBody(t, resp), "That code is not valid, or it has expired.")
	time.Sleep(1100 * time.Millisecond)
	if got := e.poll(t, da); got != "expired_token" {
		t.Fatalf("after expiry: %q, want expired_token", got)
	}
	if ev := e.audit.find("device.code_wrong"); len(ev) != 1 || ev[0].Result != "expired" {
		t.Fatalf("audit %+v", ev)
	}
}

// TestDeviceFlowBrowser is the approval through Chromium.
func TestDeviceFlowBrowser(t *testing.T) {
	e := newDeviceE2E(t)
	ctx := duiChrome(t)
	d := duiDriver{t: t, ctx: ctx, name: "e2e"}
	type css = chromedp.CSS
	da := e.start(t)
	d.do("login", chromedp.Navigate(da.VerificationURIComplete), chromedp.WaitVisible(css("#username")))
	d.do("signin", chromedp.SendKeys(css("#username"), "bob"), chromedp.SendKeys(css("#password"), e.pw),
		chromedp.Submit(css("#password")), chromedp.WaitVisible(css("#user_code")))
	if v := d.get("prefilled", chromedp.Value(css("#user_code"))); v != da.UserCode {
		t.Fatalf("pre-filled %q, want %s", v, da.UserCode)
	}
	d.do("confirm", chromedp.Submit(css("#user_code")), chromedp.WaitVisible(css("#approve")))
	d.do("approve", chromedp.Click(css("#approve")), chromedp.WaitVisible(css("p.notice")))
	tok, err := e.oauth.DeviceAccessToken(e.ctx(t), da)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
}
