package app

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// The second-factor pages in a real browser: headless Chromium with the
// virtual authenticators of the DevTools protocol's WebAuthn domain (the
// real navigator.credentials, the real CTAP2 and attestation encoding),
// against a real wardend on real OpenLDAP and Redis. TOTP codes come from
// Debian's oathtool.
//
// Passkeys need a host name in server.public_url, so these servers run as
// http://localhost:PORT (a secure context, like https).

// mfaClock is wardend's clock in these tests: real time plus an offset the
// test moves forward (a factor given minutes ago, the next TOTP step), so
// that nothing waits for the wall clock.
//
// Keep the offset under 10 minutes in all: Options.Now reaches the session
// store and the MFA pages, but the web layer keeps the system clock (web.New
// gets no Clock), so a pending sign-in, whose end the web layer sets 10
// minutes from its own now, would have ended already by the store's clock.
type mfaClock struct{ off atomic.Int64 }

func (c *mfaClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *mfaClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// mfaServer is one wardend for a browser MFA test.
type mfaServer struct {
	base  string // the public URL, http://localhost:PORT
	addr  string // 127.0.0.1:PORT
	clock *mfaClock
	redis store.RedisConfig
}

// startMFAServer runs wardend on the test OpenLDAP and Redis with the MFA
// policy cfg and the rules (nil: none), on a loopback listener whose public URL names the host
// "localhost" (startApp's 127.0.0.1 would turn passkeys off). Its Redis
// keys are this run's own and are deleted at the end.
func startMFAServer(t *testing.T, cfg mfa.Config, rules []byte) *mfaServer {
	t.Helper()
	o := openLDAPOptions(t)
	// a key space of this run's own (openLDAPOptions' is the test's, and
	// factors would outlive a run)
	o.Redis.KeyPrefix = "warden-apptest-" + strings.TrimPrefix(t.Name(), "TestBrowser") + "-" +
		strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	cleanRedis(t, o.Redis)
	if rules != nil {
		file := filepath.Join(t.TempDir(), "mappings.yaml")
		if err := os.WriteFile(file, rules, 0o600); err != nil {
			t.Fatal(err)
		}
		o.Admin.RulesFile = file
		o.Admin.RulesReadOnly = true
	}
	o.MFA = cfg
	s := &mfaServer{clock: &mfaClock{}, redis: o.Redis}
	o.Now = s.clock.Now

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(s.addr)
	s.base = "http://localhost:" + port
	startAppOn(t, o, ln, s.base)
	return s
}

// cleanRedis deletes the keys under cfg's prefix when the test ends (after
// the server stopped: cleanups run last in, first out).
func cleanRedis(t testing.TB, cfg store.RedisConfig) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Open(ctx, cfg, testLogger(t))
		if err != nil {
			t.Logf("clean Redis: %v", err)
			return
		}
		defer st.Close()
		iter := st.Client().Scan(ctx, 0, cfg.KeyPrefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			st.Client().Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
	})
}

// audited waits until the audit stream holds an event of actor with
// action and result (the server writes it in the background).
func (s *mfaServer) audited(t *testing.T, actor, action, result string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := store.Open(ctx, s.redis, testLogger(t))
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	defer st.Close()
	stream := store.NewAuditStream(st, 0)
	var seen []string
	for {
		evs, _, err := stream.Query(ctx, store.AuditQuery{Actor: actor, Action: action})
		if err != nil {
			t.Fatalf("audit query: %v", err)
		}
		seen = seen[:0]
		for _, e := range evs {
			if e.Result == result {
				return
			}
			seen = append(seen, e.Result)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s event of %s with result %q in the audit log (results seen: %v)", action, actor, result, seen)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// totpCode is the TOTP code of secret at the server's time, computed by
// oathtool (an implementation independent of the one under test).
func (s *mfaServer) totpCode(t *testing.T, secret string) string {
	t.Helper()
	bin := testenv.Binary(t, "oathtool")
	out, err := exec.Command(bin, "--totp=SHA1", "--digits=6", "--time-step-size=30s", "-b",
		"--now", "@"+strconv.FormatInt(s.clock.Now().Unix(), 10), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	code := strings.TrimSpace(string(out))
	if len(code) != 6 {
		t.Fatalf("oathtool printed %q", code)
	}
	return code
}

// mfaBrowser is one headless Chromium tab with the WebAuthn domain on
// (virtual authenticators only, no UI) and AWS sign-in stood in for.
type mfaBrowser struct {
	t   *testing.T
	ctx context.Context
	aws *awsSignin
}

func newMFABrowser(t *testing.T) *mfaBrowser {
	t.Helper()
	chromium := testenv.Binary(t, "chromium")
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900))
	bctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	no := false
	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{EnableUI: &no}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	b := &mfaBrowser{t: t, ctx: bctx, aws: &awsSignin{}}
	if err := b.aws.serve(bctx, t); err != nil {
		t.Fatal(err)
	}
	return b
}

// platformAuthenticator is a passkey provider built into the device:
// CTAP2 over "internal", discoverable credentials, user verification
// (biometrics) that succeeds.
var platformAuthenticator = webauthn.VirtualAuthenticatorOptions{
	Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
	Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
	HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
}

// securityKey is a roaming CTAP2 key on USB without discoverable
// credentials or user verification (touch only).
var securityKey = webauthn.VirtualAuthenticatorOptions{
	Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap20,
	Transport: webauthn.AuthenticatorTransportUsb, AutomaticPresenceSimulation: true,
}

func (b *mfaBrowser) addAuthenticator(o webauthn.VirtualAuthenticatorOptions) webauthn.AuthenticatorID {
	b.t.Helper()
	r, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &o})
	if err != nil {
		b.t.Fatalf("add virtual authenticator: %v", err)
	}
	return r.AuthenticatorID
}

func (b *mfaBrowser) removeAuthenticator(id webauthn.AuthenticatorID) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id}); err != nil {
		b.t.Fatalf("remove virtual authenticator: %v", err)
	}
}

func (b *mfaBrowser) setUserVerified(id webauthn.AuthenticatorID, ok bool) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: id, IsUserVerified: ok}); err != nil {
		b.t.Fatalf("set user verified: %v", err)
	}
}

func (b *mfaBrowser) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	r, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		b.t.Fatalf("get credentials: %v", err)
	}
	return r.Credentials
}

// copiedCredential is what a copy of a credential holds: the fields of
// webauthn.Credential that WebAuthn.addCredential needs. (cdproto sends
// generateCmtgKeyOnNextOperation even when false, and Chromium refuses it
// for an authenticator without the cmtgKey extension.)
type copiedCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
}

type addCredentialCopyParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      copiedCredential         `json:"credential"`
}

// addCredentialCopy is WebAuthn.addCredential with a copiedCredential.
var addCredentialCopy = cdp.Command[addCredentialCopyParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

// addCredential puts a copy of c into the authenticator id.
func (b *mfaBrowser) addCredential(id webauthn.AuthenticatorID, c *webauthn.Credential) {
	b.t.Helper()
	_, err := chromedp.Call(b.ctx, addCredentialCopy, addCredentialCopyParams{AuthenticatorID: id,
		Credential: copiedCredential{CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential,
			RpID: c.RpID, PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount}})
	if err != nil {
		b.t.Fatalf("add a credential: %v", err)
	}
}

// oneCredential is the only credential of the authenticator id.
func (b *mfaBrowser) oneCredential(id webauthn.AuthenticatorID) *webauthn.Credential {
	b.t.Helper()
	cs := b.credentials(id)
	if len(cs) != 1 {
		b.t.Fatalf("the authenticator holds %d credentials, want 1", len(cs))
	}
	return cs[0]
}

// do runs actions with a time limit; on failure it says where the page was
// and what the passkey status line said.
func (b *mfaBrowser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (%s)", step, err, b.where())
	}
}

// where describes the page for failure messages.
func (b *mfaBrowser) where() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " «" + document.title + "»" +
		[...document.querySelectorAll(".passkey-status, .error, h1")].map(e => " [" + e.textContent.trim() + "]").join("")`))
	if err != nil {
		return "page unknown: " + err.Error()
	}
	return "at " + s
}

func (b *mfaBrowser) eval(step, js string, opts ...chromedp.EvaluateOption) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, opts...))
	if err != nil {
		b.t.Fatalf("%s: %v (%s)", step, err, b.where())
	}
	return v
}

func (b *mfaBrowser) text(step, sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: %v (%s)", step, err, b.where())
	}
	return strings.TrimSpace(v)
}

// location is the page's URL without the origin.
func (b *mfaBrowser) location() string {
	b.t.Helper()
	return b.eval("location", `location.pathname + location.search`)
}

// waitStatus waits until the passkey status line says something that
// matches re (a JavaScript regular expression) and returns it. It fails if
// the page navigates away meanwhile (the ceremony was meant to fail).
func (b *mfaBrowser) waitStatus(step, re string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
		const s = document.querySelector(".passkey-status");
		const t = s ? s.textContent : "";
		return new RegExp(`+strconv.Quote(re)+`).test(t) ? t : "";
	})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		b.t.Fatalf("%s: the status line never matched /%s/: %v (%s)", step, re, err, b.where())
	}
	return v
}

type byCSS = chromedp.CSS

// retryStaleNode runs a, again when the node it found went away meanwhile:
// chromedp fetches the document afresh when Chromium says it changed
// (DOM.documentUpdated, around a page load), which makes the node IDs of a
// query just made stale. The error comes before any input is sent.
func retryStaleNode(a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var err error
		for range 5 {
			if _, err = a(ctx, t); err == nil || !strings.Contains(err.Error(), "Could not find node with given id") {
				break
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, err
			case <-time.After(50 * time.Millisecond):
			}
		}
		return chromedp.Void{}, err
	}
}

func clickCSS(sel string) chromedp.Action[chromedp.Void] {
	return retryStaleNode(chromedp.Click(byCSS(sel)))
}

func typeCSS(sel, text string) chromedp.Action[chromedp.Void] {
	return retryStaleNode(chromedp.SendKeys(byCSS(sel), text))
}

// signIn opens base+path while signed out and signs in there with the
// password; the caller waits for the page that follows.
func (b *mfaBrowser) signIn(base, path, user string) {
	b.t.Helper()
	b.do("sign in as "+user,
		chromedp.Navigate(base+path),
		chromedp.WaitVisible(byCSS("#username")),
		typeCSS("#username", user),
		typeCSS("#password", os.Getenv("LDAP_USER_PW")),
		clickCSS(`form[action="/login"] button[type="submit"]`),
	)
}

// signOut signs out (or cancels a pending sign-in) through /logout, and
// checks that the portal then asks for the password.
func (b *mfaBrowser) signOut(base string) {
	b.t.Helper()
	b.do("sign out",
		chromedp.Navigate(base+"/logout"),
		chromedp.WaitVisible(byCSS(`form[action="/logout"] button[type="submit"]`)),
		clickCSS(`form[action="/logout"] button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#username")),
	)
	b.notSignedIn(base)
}

// notSignedIn checks that the browser has no finished sign-in at base: the
// portal sends it to the password or to the second factor.
func (b *mfaBrowser) notSignedIn(base string) {
	b.t.Helper()
	b.do("open the portal", chromedp.Navigate(base+"/"), chromedp.WaitReady(byCSS("body")))
	if loc := b.location(); !strings.HasPrefix(loc, "/login") && !strings.HasPrefix(loc, "/mfa") {
		b.t.Fatalf("the portal opened at %s without a finished sign-in (%s)", loc, b.where())
	}
	if n := b.eval("home page", `String(document.querySelectorAll("dd#username").length)`); n != "0" {
		b.t.Fatalf("the home page shows without a finished sign-in (%s)", b.where())
	}
}

// createPasskey presses "Create passkey" on the set-up page (named name
// when not empty). For the first factor (first) it returns the recovery
// codes the page then shows; otherwise it waits for the security page,
// where the set-up goes on to.
func (b *mfaBrowser) createPasskey(name string, first bool) []string {
	b.t.Helper()
	b.do("passkey set-up page", chromedp.WaitVisible(byCSS("#passkey-create")))
	if name != "" {
		b.do("name the passkey", chromedp.Clear(byCSS("#pkname")), typeCSS("#pkname", name))
	}
	b.do("create the passkey", clickCSS("#passkey-create"))
	if !first {
		b.do("leave the set-up page", chromedp.WaitVisible(byCSS("#security")))
		return nil
	}
	b.do("recovery codes", chromedp.WaitVisible(byCSS(".codes-panel")))
	codes := strings.Fields(b.eval("codes", `[...document.querySelectorAll(".codes-panel .codes code")].map(c => c.textContent).join(" ")`))
	if len(codes) != 10 {
		b.t.Fatalf("%d recovery codes shown, want 10: %q", len(codes), codes)
	}
	if st := b.text("status", ".passkey-status"); !strings.Contains(st, "set up") {
		b.t.Errorf("status after set-up: %q", st)
	}
	return codes
}

// signedInWith opens the security page and returns how the session
// signed in.
func (b *mfaBrowser) signedInWith(base string) string {
	b.t.Helper()
	b.do("security page", chromedp.Navigate(base+"/account/security"), chromedp.WaitVisible(byCSS("#security")))
	return b.text("session method", "#security p.small.muted strong")
}

// factorKinds lists the factors on the security page: "name|kind" each.
func (b *mfaBrowser) factorKinds() []string {
	b.t.Helper()
	s := b.eval("factors", `[...document.querySelectorAll("table.factors tbody tr")].map(tr =>
		tr.cells[0].textContent.trim() + "|" + tr.cells[1].textContent.trim()).join("\n")`)
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// requireMFA is the policy of most tests: everybody gives a second factor.
func requireMFA() mfa.Config { return mfa.Config{Required: mfa.RequiredAll} }

// needMFABrowser skips (fails under CI=true) before anything starts when
// the test servers, Chromium or one of tools (oathtool) are missing, and
// in -short mode.
func needMFABrowser(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"chromium"}, tools...) {
		testenv.Binary(t, tool)
	}
	testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW", "REDIS_ADDR")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
}

// TestBrowserMFAPasskeyPlatform: a user who must use MFA signs in, is
// taken to set-up, creates a passkey with the device's own authenticator
// (user verification on), saves the recovery codes and reaches the portal;
// then signs in again with the passkey and lands where they were going.
func TestBrowserMFAPasskeyPlatform(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t)
	b := newMFABrowser(t)
	s := startMFAServer(t, requireMFA(), nil)
	auth := b.addAuthenticator(platformAuthenticator)

	b.signIn(s.base, "/", "bob")
	b.do("set-up page", chromedp.WaitVisible(byCSS("#choose-webauthn")))
	if loc := b.location(); !strings.HasPrefix(loc, "/mfa/setup") {
		t.Fatalf("after the password: %s, want the set-up page", loc)
	}
	b.portalStaysClosed()
	b.do("choose a passkey", clickCSS("#choose-webauthn"))
	b.createPasskey("", true)
	b.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	if loc := b.location(); loc != "/" {
		t.Errorf("after the codes: %s, want the portal", loc)
	}
	if got := b.text("user", "dd#username"); got != "bob" {
		t.Errorf("portal of %q", got)
	}
	cred := b.oneCredential(auth)
	if !cred.IsResidentCredential || cred.RpID != "localhost" {
		t.Errorf("the passkey: resident %v, rp ID %q; want a discoverable credential for localhost", cred.IsResidentCredential, cred.RpID)
	}
	if got := b.signedInWith(s.base); got != "webauthn" {
		t.Errorf("after set-up the session says %q, want webauthn", got)
	}
	if ks := b.factorKinds(); len(ks) != 1 || ks[0] != "Passkey|Passkey on this device" {
		t.Errorf("factors listed: %q", ks)
	}
	b.signOut(s.base)

	// Back to a page that needs a sign-in: password, then the passkey,
	// then that page.
	b.signIn(s.base, "/account/security", "bob")
	b.do("challenge", chromedp.WaitVisible(byCSS("#passkey-use")))
	if h := b.text("heading", "#mfa-challenge h1"); h != "One more step" {
		t.Errorf("challenge heading %q", h)
	}
	b.portalStaysClosed()

	// The fingerprint is not recognised: the authenticator refuses, the
	// page says so and the button works again.
	b.setUserVerified(auth, false)
	b.do("passkey without the fingerprint", clickCSS("#passkey-use"))
	msg := b.waitStatus("passkey without the fingerprint", `Try again|not|cannot`)
	if !strings.HasPrefix(msg, "Cancelled") {
		t.Errorf("without user verification the page says %q", msg)
	}
	if n := b.oneCredential(auth).SignCount; n != cred.SignCount {
		t.Errorf("the authenticator signed without user verification (counter %v, was %v)", n, cred.SignCount)
	}
	b.portalStaysClosed()
	b.setUserVerified(auth, true)

	b.do("use the passkey", chromedp.WaitEnabled(byCSS("#passkey-use")), clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("#security")))
	if loc := b.location(); loc != "/account/security" {
		t.Errorf("after the passkey: %s, want /account/security", loc)
	}
	if got := b.text("session method", "#security p.small.muted strong"); got != "webauthn" {
		t.Errorf("the session says %q, want webauthn", got)
	}
	if n := b.oneCredential(auth).SignCount; n <= cred.SignCount {
		t.Errorf("sign count %v after an assertion, was %v", n, cred.SignCount)
	}
	s.audited(t, "bob", "mfa.verify", "success")

	// The same device again: excludeCredentials makes the browser refuse.
	b.do("add the same passkey", clickCSS("#add-webauthn"), chromedp.WaitVisible(byCSS("#passkey-create")), clickCSS("#passkey-create"))
	if msg := b.waitStatus("same passkey again", `Try again|already`); !strings.Contains(msg, "already set up") {
		t.Errorf("registering the same authenticator again says %q", msg)
	}
	b.oneCredential(auth)
	b.do("security page", chromedp.Navigate(s.base+"/account/security"), chromedp.WaitVisible(byCSS("#security")))
	if ks := b.factorKinds(); len(ks) != 1 {
		t.Errorf("factors listed after registering the same passkey again: %q", ks)
	}
}

// portalStaysClosed checks, from the page the browser is on (without
// leaving it), that the portal does not open with the browser's cookies:
// a sign-in waiting for its second factor is not a sign-in.
func (b *mfaBrowser) portalStaysClosed() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/", {credentials: "same-origin"}).then(r =>
		r.text().then(t => new URL(r.url).pathname + " " + r.status + (t.includes('id="username">') ? " portal" : "")))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("fetch the portal: %v (%s)", err, b.where())
	}
	if strings.HasPrefix(got, "/ ") || strings.HasSuffix(got, " portal") {
		b.t.Fatalf("the portal answers (%s) without a finished sign-in (%s)", got, b.where())
	}
}

// TestBrowserMFAPasskeySessionEnded: the challenge page outlives its
// sign-in (the pending session ends, or the user signs out in another
// tab); pressing the passkey button then goes back to the sign-in, and
// the next sign-in still lands where the user was going.
func TestBrowserMFAPasskeySessionEnded(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t)
	s := startMFAServer(t, requireMFA(), nil)
	b := newMFABrowser(t)
	b.addAuthenticator(platformAuthenticator)
	b.signIn(s.base, "/", "bob")
	b.do("choose a passkey", chromedp.WaitVisible(byCSS("#choose-webauthn")), clickCSS("#choose-webauthn"))
	b.createPasskey("", true)
	b.signOut(s.base)

	// The session ends on the server (it expired, an admin revoked it).
	b.signIn(s.base, "/account/security", "bob")
	b.do("challenge", chromedp.WaitVisible(byCSS("#passkey-use")))
	s.endSessions(t)
	b.do("passkey after the session ended", clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("#username")))
	if loc := b.location(); !strings.HasPrefix(loc, "/login?next=") || !strings.Contains(loc, "account") {
		t.Errorf("after the session ended the passkey button led to %s, want the sign-in returning to the page", loc)
	}

	// Signed out in another tab: the page's CSRF token is stale.
	b.do("sign in again", typeCSS("#username", "bob"), typeCSS("#password", os.Getenv("LDAP_USER_PW")),
		clickCSS(`form[action="/login"] button[type="submit"]`), chromedp.WaitVisible(byCSS("#passkey-use")))
	out := b.eval("sign out elsewhere", `(async () => {
		const r = await fetch("/logout", {method: "POST", body: new URLSearchParams({csrf_token: document.querySelector(".passkey").dataset.csrf})});
		return new URL(r.url).pathname;
	})()`, chromedp.EvalAwaitPromise)
	if out != "/login" {
		t.Fatalf("sign-out from another tab ended at %s", out)
	}
	b.do("passkey after signing out", clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("#username")))

	b.do("sign in once more", typeCSS("#username", "bob"), typeCSS("#password", os.Getenv("LDAP_USER_PW")),
		clickCSS(`form[action="/login"] button[type="submit"]`), chromedp.WaitVisible(byCSS("#passkey-use")))
	b.do("use the passkey", clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("#security")))
	if loc := b.location(); loc != "/account/security" {
		t.Errorf("the sign-in ended at %s, want /account/security", loc)
	}
}

// endSessions deletes every session of the server from Redis, as expiry
// or a revocation does.
func (s *mfaServer) endSessions(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, s.redis, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.Client().Keys(ctx, s.redis.KeyPrefix+"sess:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no session keys to delete (%v)", err)
	}
	if err := st.Client().Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserMFASecurityKey: a user with an authenticator app adds a
// roaming security key (USB, no discoverable credential, no user
// verification) from the security page, which first asks for the app's
// code again, then signs in with the key.
func TestBrowserMFASecurityKey(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t, "oathtool")
	b := newMFABrowser(t)
	cfg := requireMFA()
	cfg.StepUpMaxAge = 2 * time.Minute // see mfaClock: the test moves its clock twice by more
	s := startMFAServer(t, cfg, nil)

	secret, _ := b.enrollTOTP(s, "bob")
	b.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))

	// Later: the factor given at sign-in is older than step_up_max_age.
	s.clock.Advance(cfg.StepUpMaxAge + time.Minute)
	b.do("security page", chromedp.Navigate(s.base+"/account/security"), chromedp.WaitVisible(byCSS("#add-webauthn")))
	b.do("add a key", clickCSS("#add-webauthn"), chromedp.WaitVisible(byCSS("#mfa-challenge")))
	if loc := b.location(); !strings.HasPrefix(loc, "/mfa?") || !strings.Contains(loc, "fresh=1") {
		t.Fatalf("adding a key with an old factor went to %s, want the fresh second-factor page", loc)
	}
	if h := b.text("heading", "#mfa-challenge h1"); h != "Confirm it is you" {
		t.Errorf("fresh-factor heading %q", h)
	}
	b.do("fresh TOTP code",
		typeCSS("#code", s.totpCode(t, secret)),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#passkey-create")))
	if loc := b.location(); !strings.HasPrefix(loc, "/mfa/setup") || !strings.Contains(loc, "method=webauthn") {
		t.Errorf("after the fresh code: %s, want the passkey set-up", loc)
	}

	// The page waits while the factor given grows old: pressing the
	// button asks for it again first, then comes back here.
	s.clock.Advance(cfg.StepUpMaxAge + time.Minute)
	key := b.addAuthenticator(securityKey)
	b.do("create with an old factor", clickCSS("#passkey-create"), chromedp.WaitVisible(byCSS("#mfa-challenge")))
	if loc := b.location(); !strings.HasPrefix(loc, "/mfa?") || !strings.Contains(loc, "fresh=1") {
		t.Fatalf("creating a key with an old factor went to %s, want the fresh second-factor page", loc)
	}
	if len(b.credentials(key)) != 0 {
		t.Fatal("the key made a credential before the fresh factor")
	}
	b.do("fresh TOTP code again",
		typeCSS("#code", s.totpCode(t, secret)),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#passkey-create")))
	b.createPasskey("USB key", false)
	if loc := b.location(); loc != "/account/security" {
		t.Errorf("after adding the key: %s", loc)
	}
	ks := b.factorKinds()
	if len(ks) != 2 || !strings.Contains(strings.Join(ks, ","), "USB key|Security key") {
		t.Errorf("factors listed: %q", ks)
	}
	cred := b.oneCredential(key)
	if cred.IsResidentCredential {
		t.Error("the security key made a discoverable credential; it has no resident keys")
	}
	b.signOut(s.base)

	b.signIn(s.base, "/", "bob")
	b.do("challenge", chromedp.WaitVisible(byCSS("#passkey-use")), chromedp.WaitVisible(byCSS("#code")))
	b.do("use the key", clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("dd#username")))
	if got := b.signedInWith(s.base); got != "webauthn" {
		t.Errorf("the session says %q, want webauthn", got)
	}
	if n := b.oneCredential(key).SignCount; n <= cred.SignCount {
		t.Errorf("sign count %v after an assertion, was %v", n, cred.SignCount)
	}
}

// enrollTOTP signs user in where set-up is required, sets up an
// authenticator app with the key the page shows and the code oathtool
// computes, and returns the secret and the code it gave; the browser is
// left on the page of recovery codes.
func (b *mfaBrowser) enrollTOTP(s *mfaServer, user string) (secret, code string) {
	b.t.Helper()
	b.signIn(s.base, "/", user)
	b.do("set-up page", chromedp.WaitVisible(byCSS("#choose-totp")))
	b.do("choose an app", clickCSS("#choose-totp"), chromedp.WaitVisible(byCSS("#totp-secret")))
	secret = strings.ReplaceAll(b.text("key", "#totp-secret"), " ", "")
	if len(secret) < 16 {
		b.t.Fatalf("the page shows the key %q", secret)
	}
	if src := b.eval("QR code", `document.querySelector("img.qr").src.slice(0, 22)`); src != "data:image/png;base64," {
		b.t.Errorf("QR code src %q", src)
	}
	if ok := b.eval("QR code loaded", `String(document.querySelector("img.qr").naturalWidth > 0)`); ok != "true" {
		b.t.Error("the QR code image did not load (CSP?)")
	}
	code = s.totpCode(b.t, secret)
	b.do("confirm the code",
		typeCSS("#code", code),
		clickCSS(`#totp-setup-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#recovery-codes")))
	if n := b.eval("codes", `String(document.querySelectorAll("#recovery-codes li").length)`); n != "10" {
		b.t.Errorf("%s recovery codes shown, want 10", n)
	}
	return secret, code
}

// TestBrowserMFATOTP: an authenticator app set up in the browser, then a
// sign-in with a later code; the set-up code cannot be used again.
func TestBrowserMFATOTP(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t, "oathtool")
	b := newMFABrowser(t)
	s := startMFAServer(t, requireMFA(), nil)

	secret, setupCode := b.enrollTOTP(s, "bob")
	b.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	if got := b.signedInWith(s.base); got != "totp" {
		t.Errorf("after set-up the session says %q, want totp", got)
	}
	if ks := b.factorKinds(); len(ks) != 1 || ks[0] != "Authenticator app|Authenticator app" {
		t.Errorf("factors listed: %q", ks)
	}
	b.signOut(s.base)

	b.signIn(s.base, "/", "bob")
	b.do("challenge", chromedp.WaitVisible(byCSS("#code")))
	if n := b.eval("passkey button", `String(document.querySelectorAll("#passkey-use").length)`); n != "0" {
		t.Error("the challenge offers a passkey to a user without one")
	}
	b.do("the set-up code again",
		typeCSS("#code", setupCode),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#mfa-challenge .error")))
	if e := b.text("error", "#mfa-challenge .error"); !strings.Contains(e, "already used") {
		t.Errorf("a replayed code says %q", e)
	}
	b.portalStaysClosed()
	s.clock.Advance(30 * time.Second) // a later time step than the set-up code's
	b.do("a fresh code",
		typeCSS("#code", s.totpCode(t, secret)),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("dd#username")))
	if got := b.signedInWith(s.base); got != "totp" {
		t.Errorf("the session says %q, want totp", got)
	}
	s.audited(t, "bob", "mfa.verify", "replayed")
}

// TestBrowserMFAClonedPasskey: a passkey copied (private key and all) into
// another authenticator, with the counter it had when copied, is refused
// once the original has been used since: the page says so, the sign-in
// does not finish, and the audit log says "cloned".
func TestBrowserMFAClonedPasskey(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t)
	b := newMFABrowser(t)
	s := startMFAServer(t, requireMFA(), nil)
	orig := b.addAuthenticator(platformAuthenticator)

	b.signIn(s.base, "/", "bob")
	b.do("choose a passkey", chromedp.WaitVisible(byCSS("#choose-webauthn")), clickCSS("#choose-webauthn"))
	codes := b.createPasskey("", true)
	b.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	b.signOut(s.base)

	copied := b.oneCredential(orig) // the thief's copy
	if len(copied.PrivateKey) == 0 {
		t.Fatal("the virtual authenticator did not export the private key")
	}
	// The owner signs in once more: the server's counter moves past the copy's.
	b.signIn(s.base, "/", "bob")
	b.do("original passkey", chromedp.WaitVisible(byCSS("#passkey-use")), clickCSS("#passkey-use"),
		chromedp.WaitVisible(byCSS("dd#username")))
	if n := b.oneCredential(orig).SignCount; n <= copied.SignCount {
		t.Fatalf("the original's counter %v did not move past the copy's %v", n, copied.SignCount)
	}
	b.signOut(s.base)

	b.removeAuthenticator(orig)
	clone := b.addAuthenticator(platformAuthenticator)
	b.addCredential(clone, copied)
	b.signIn(s.base, "/", "bob")
	b.do("challenge", chromedp.WaitVisible(byCSS("#passkey-use")), clickCSS("#passkey-use"))
	msg := b.waitStatus("cloned passkey", `copied|refused|Try again`)
	if !strings.Contains(msg, "looks copied") || strings.Contains(msg, "Try again") {
		t.Errorf("the page says %q; want the server's refusal, without an invitation to try again", msg)
	}
	if b.eval("button", `String(document.querySelector("#passkey-use").disabled)`) != "false" {
		t.Error("the passkey button stays disabled after the refusal (another key could be tried)")
	}
	if loc := b.location(); !strings.HasPrefix(loc, "/mfa") {
		t.Errorf("after the copy was refused the page is %s", loc)
	}
	if n := b.oneCredential(clone).SignCount; n <= copied.SignCount {
		t.Errorf("the copy did not sign (counter %v); the refusal must come from the server", n)
	}
	b.portalStaysClosed()
	s.audited(t, "bob", "mfa.verify", "cloned")

	// "Use another factor": a recovery code from the same page.
	b.do("recovery code",
		clickCSS("details.recovery summary"),
		typeCSS("#rcode", codes[0]),
		clickCSS(`#recovery-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("dd#username")))
	if got := b.signedInWith(s.base); got != "recovery" {
		t.Errorf("after the recovery code the session says %q", got)
	}
}

// TestBrowserMFAWrongOrigin: the pages reached at an origin the relying
// party does not accept. A passkey made at http://localhost:PORT is of no
// use there, and nothing gets signed in.
func TestBrowserMFAWrongOrigin(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t)
	b := newMFABrowser(t)
	s := startMFAServer(t, requireMFA(), nil)
	auth := b.addAuthenticator(platformAuthenticator)
	b.signIn(s.base, "/", "bob")
	b.do("choose a passkey", chromedp.WaitVisible(byCSS("#choose-webauthn")), clickCSS("#choose-webauthn"))
	b.createPasskey("", true)
	b.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	b.signOut(s.base)
	before := b.oneCredential(auth).SignCount

	// The IP address: the RP ID "localhost" is not this origin's domain,
	// so the browser itself refuses the ceremony; the authenticator is
	// never asked.
	t.Run("IPAddress", func(t *testing.T) {
		ip := "http://" + s.addr
		b.signIn(ip, "/", "bob")
		b.do("challenge", chromedp.WaitVisible(byCSS("#passkey-use")), clickCSS("#passkey-use"))
		msg := b.waitStatus("passkey at the IP address", `cannot be used|not accepted|Try again`)
		t.Logf("at %s the page says: %s", ip, msg)
		if n := b.oneCredential(auth).SignCount; n != before {
			t.Errorf("the authenticator signed (counter %v, was %v)", n, before)
		} else if !strings.Contains(msg, "cannot be used at this address ("+s.addr+")") {
			t.Errorf("the browser's refusal reads %q", msg)
		}
		b.notSignedIn(ip)
		b.portalStaysClosed()
		b.notSignedIn(s.base)
	})

	// Another port of the same host: the RP ID matches, the authenticator
	// signs, but the origin in the signed client data is not the server's
	// and the server refuses the answer.
	t.Run("OtherPort", func(t *testing.T) {
		other := "http://localhost:" + forwardTCP(t, s.addr)
		b.signIn(other, "/", "bob")
		b.do("challenge", chromedp.WaitVisible(byCSS("#passkey-use")), clickCSS("#passkey-use"))
		msg := b.waitStatus("passkey at another origin", `cannot be used|not accepted|Try again`)
		t.Logf("at %s the page says: %s", other, msg)
		if n := b.oneCredential(auth).SignCount; n == before {
			t.Log("the browser refused the ceremony itself")
		} else {
			if !strings.Contains(msg, "not accepted") {
				t.Errorf("the server's refusal reads %q", msg)
			}
			s.audited(t, "bob", "mfa.verify", "rejected")
		}
		b.notSignedIn(other)
		b.portalStaysClosed()
		b.signOut(other) // cookies are per host, not per port: this is s.base's too
	})

	// The passkey still works at the right origin.
	b.signIn(s.base, "/", "bob")
	b.do("passkey at the right origin", chromedp.WaitVisible(byCSS("#passkey-use")), clickCSS("#passkey-use"),
		chromedp.WaitVisible(byCSS("dd#username")))
}

// forwardTCP listens on a free loopback port and forwards every
// connection to addr; it returns the port. Everything is closed when the
// test ends (the browser keeps idle connections open).
func forwardTCP(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
		wg     sync.WaitGroup
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				return
			}
			wg.Go(func() {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil || !track(u) {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); u.Close() }()
				_, _ = io.Copy(c, u)
			})
		}
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// stepUpRules: developers hold ReadOnly with the password alone, and
// Deploy only with a second factor.
var stepUpRules = []byte(`
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: developers
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/ReadOnly
      - arn: arn:aws:iam::111122223333:role/Deploy
        require_mfa: true
`)

// TestBrowserMFAStepUpConsole: a user who need not use MFA, with a
// passkey, signed in with the password alone: ReadOnly opens at once;
// Deploy (require_mfa) asks for the passkey first, then its console
// sign-in follows, saying how the user signed in.
func TestBrowserMFAStepUpConsole(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t)
	b := newMFABrowser(t)
	s := startMFAServer(t, mfa.Config{}, stepUpRules)
	const readOnly, deploy = "arn:aws:iam::111122223333:role/ReadOnly", "arn:aws:iam::111122223333:role/Deploy"

	// A passkey, added from the security page (a password typed just now
	// is enough for a user without a factor).
	b.addAuthenticator(platformAuthenticator)
	b.signIn(s.base, "/account/security", "bob")
	b.do("security page", chromedp.WaitVisible(byCSS("#add-webauthn")), clickCSS("#add-webauthn"))
	b.createPasskey("Laptop", true)
	b.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("#security")))
	b.signOut(s.base)

	b.signIn(s.base, "/", "bob")
	b.waitRoles(s.base)
	if got := b.signedInWith(s.base); got != "password" {
		t.Fatalf("a user who need not use MFA signed in with %q", got)
	}
	b.do("portal again", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(`button.console[value="`+deploy+`"]`)))
	if badge := b.eval("badge", `[...document.querySelectorAll("li.role")].filter(li => li.querySelector(".mfa-badge")).map(li => li.querySelector("button.console").value).join(",")`); badge != deploy {
		t.Errorf("roles with the MFA badge: %q, want %s", badge, deploy)
	}

	b.do("ReadOnly console", clickCSS(`button.console[value="`+readOnly+`"]`), chromedp.WaitVisible(byCSS("#aws-console")))
	if posts := b.aws.Posts(); len(posts) != 1 || !strings.Contains(samlXML(t, posts[0]), "role/ReadOnly,") {
		t.Fatalf("ReadOnly: %d POSTs to AWS (%v)", len(posts), b.aws.URLs())
	} else if x := samlXML(t, posts[0]); !strings.Contains(x, "PasswordProtectedTransport") || !strings.Contains(x, ">password<") {
		t.Errorf("ReadOnly's SAMLResponse does not say password:\n%s", x)
	}

	b.do("portal", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(`button.console[value="`+deploy+`"]`)))
	b.do("Deploy console", clickCSS(`button.console[value="`+deploy+`"]`), chromedp.WaitVisible(byCSS("#passkey-use")))
	loc := b.location()
	if !strings.HasPrefix(loc, "/mfa?") || !strings.Contains(loc, url.QueryEscape("/aws/console?role=")) {
		t.Fatalf("Deploy went to %s, want the second-factor page returning to the console", loc)
	}
	if h := b.text("heading", "#mfa-challenge h1"); h != "Confirm it is you" {
		t.Errorf("step-up heading %q", h)
	}
	if len(b.aws.Posts()) != 1 {
		t.Fatal("Deploy reached AWS before the second factor")
	}
	b.do("use the passkey", clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("#aws-console")))
	posts := b.aws.Posts()
	if len(posts) != 2 {
		t.Fatalf("%d POSTs to AWS (%v)", len(posts), b.aws.URLs())
	}
	x := samlXML(t, posts[1])
	if !strings.Contains(x, "role/Deploy,") || strings.Contains(x, "role/ReadOnly") {
		t.Errorf("the step-up SAMLResponse is not Deploy's:\n%s", x)
	}
	if !strings.Contains(x, "https://refeds.org/profile/mfa") || !strings.Contains(x, ">webauthn<") {
		t.Errorf("the step-up SAMLResponse does not say webauthn / REFEDS MFA:\n%s", x)
	}
	if got := b.signedInWith(s.base); got != "webauthn" {
		t.Errorf("after the step-up the session says %q, want webauthn", got)
	}
}

// waitRoles reloads the portal until the seeded rules are compiled (just
// after start) and it lists roles.
func (b *mfaBrowser) waitRoles(base string) {
	b.t.Helper()
	for range 100 {
		b.do("portal", chromedp.WaitVisible(byCSS("dd#username")))
		if b.eval("roles", `String(document.querySelectorAll("button.console").length)`) != "0" {
			return
		}
		time.Sleep(100 * time.Millisecond)
		b.do("reload", chromedp.Navigate(base+"/"))
	}
	b.t.Fatalf("the portal lists no roles (%s)", b.where())
}

// samlXML decodes the SAMLResponse of a POST to AWS sign-in.
func samlXML(t *testing.T, form url.Values) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil {
		t.Fatalf("SAMLResponse: %v", err)
	}
	return string(raw)
}

// stepUpMethodRules: roles that accept only some second factors.
var stepUpMethodRules = []byte(`
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: developers
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/Operator
        mfa_methods: [totp, webauthn]
      - arn: arn:aws:iam::111122223333:role/BreakGlass
        mfa_methods: [webauthn]
`)

// TestBrowserMFAStepUpMethods: roles that name the factors that count.
// The second-factor page offers only those (no recovery code for
// Operator, only the passkey for BreakGlass), also after a wrong code,
// and the console sign-in that follows says which factor was given.
func TestBrowserMFAStepUpMethods(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t, "oathtool")
	b := newMFABrowser(t)
	s := startMFAServer(t, mfa.Config{}, stepUpMethodRules)
	const operator, breakGlass = "arn:aws:iam::111122223333:role/Operator", "arn:aws:iam::111122223333:role/BreakGlass"

	// An authenticator app (from the security page: the password was just
	// typed), then a passkey (the app's code was just given).
	b.signIn(s.base, "/account/security", "bob")
	b.do("add an app", chromedp.WaitVisible(byCSS("#add-totp")), clickCSS("#add-totp"), chromedp.WaitVisible(byCSS("#totp-secret")))
	secret := strings.ReplaceAll(b.text("key", "#totp-secret"), " ", "")
	b.do("confirm the code",
		typeCSS("#code", s.totpCode(t, secret)),
		clickCSS(`#totp-setup-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#recovery-codes")),
		clickCSS("#codes-continue"),
		chromedp.WaitVisible(byCSS("#add-webauthn")))
	b.addAuthenticator(platformAuthenticator)
	b.do("add a passkey", clickCSS("#add-webauthn"))
	b.createPasskey("", false)
	if ks := b.factorKinds(); len(ks) != 2 {
		t.Fatalf("factors listed: %q", ks)
	}
	b.signOut(s.base)

	b.signIn(s.base, "/", "bob")
	b.waitRoles(s.base)
	s.clock.Advance(30 * time.Second) // a TOTP step of its own

	// Operator: a code or a passkey, not a recovery code.
	b.do("Operator console", clickCSS(`button.console[value="`+operator+`"]`), chromedp.WaitVisible(byCSS("#totp-form")))
	b.offers("Operator", "#passkey-use", "#totp-form")
	codes := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		s.clock.Advance(d)
		codes[s.totpCode(t, secret)] = true
		s.clock.Advance(-d)
	}
	wrong := "000000"
	for i := 1; codes[wrong]; i++ {
		wrong = strings.Repeat(strconv.Itoa(i), 6)
	}
	b.do("a wrong code",
		typeCSS("#code", wrong),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#mfa-challenge .error")))
	b.offers("Operator after a wrong code", "#passkey-use", "#totp-form")
	b.do("the right code",
		typeCSS("#code", s.totpCode(t, secret)),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#aws-console")))
	posts := b.aws.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d POSTs to AWS (%v)", len(posts), b.aws.URLs())
	}
	if x := samlXML(t, posts[0]); !strings.Contains(x, "role/Operator,") || !strings.Contains(x, ">totp<") {
		t.Errorf("Operator's SAMLResponse does not say totp:\n%s", x)
	}

	// BreakGlass: a TOTP sign-in is not enough; only the passkey is offered.
	b.do("portal", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(`button.console[value="`+breakGlass+`"]`)))
	b.do("BreakGlass console", clickCSS(`button.console[value="`+breakGlass+`"]`), chromedp.WaitVisible(byCSS("#passkey-use")))
	b.offers("BreakGlass", "#passkey-use")
	b.do("use the passkey", clickCSS("#passkey-use"), chromedp.WaitVisible(byCSS("#aws-console")))
	posts = b.aws.Posts()
	if len(posts) != 2 {
		t.Fatalf("%d POSTs to AWS (%v)", len(posts), b.aws.URLs())
	}
	if x := samlXML(t, posts[1]); !strings.Contains(x, "role/BreakGlass,") || !strings.Contains(x, ">webauthn<") {
		t.Errorf("BreakGlass's SAMLResponse does not say webauthn:\n%s", x)
	}
}

// offers checks which ways of giving a factor the challenge page shows
// (of #passkey-use, #totp-form and #recovery-form), and that the forms
// post back the factors that count here.
func (b *mfaBrowser) offers(step string, want ...string) {
	b.t.Helper()
	got := b.eval(step, `["#passkey-use", "#totp-form", "#recovery-form"].filter(s => document.querySelector(s)).join(" ")`)
	if got != strings.Join(want, " ") {
		b.t.Errorf("%s: the page offers %q, want %q", step, got, strings.Join(want, " "))
	}
	page := b.eval(step, `new URLSearchParams(location.search).get("methods") || ""`)
	forms := b.eval(step, `[...document.querySelectorAll("#mfa-challenge form[action^='/mfa/']")].map(f =>
		new URL(f.action).pathname + ":" + (new URL(f.action).searchParams.get("methods") || "")).join(" ")`)
	for f := range strings.FieldsSeq(forms) {
		if _, m, _ := strings.Cut(f, ":"); m != page && page != "" {
			b.t.Errorf("%s: the form %s posts the methods %q, the page was asked for %q", step, f, m, page)
		}
	}
}
