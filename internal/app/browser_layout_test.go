package app

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/testenv"
)

// Every page at a phone's width and at a desktop's: headless Chromium
// against a real wardend (real OpenLDAP and Redis, the example rules,
// everybody on a second factor) visits the sign-in, second-factor, portal,
// device, elevation, admin and error pages as the user who sees each (bob
// a developer, alice an admin, nobody signed in), at 390×844 (a phone,
// mobile emulation) and at 1280×900, and fails for every page wider than
// the window: document.documentElement.scrollWidth > window.innerWidth,
// naming the page, the size and the elements that stick out. A table or a
// <pre> may scroll inside the page; the page itself may not.
//
// With WARDEN_SCREENSHOTS=<dir> (make screenshots: docs/img) it saves the
// pictures the README and docs/ show, cropped to the page.

// layoutSize is a window the pages are checked at.
type layoutSize struct {
	name   string
	w, h   int64
	mobile bool
}

var (
	layoutPhone   = layoutSize{"390×844", 390, 844, true}
	layoutDesktop = layoutSize{"1280×900", 1280, 900, false}
	layoutSizes   = []layoutSize{layoutPhone, layoutDesktop}
)

// layoutShot is a screenshot to take of a page: a file in the
// screenshots directory, at a size.
type layoutShot struct {
	file string
	size layoutSize
	maxH float64 // the picture's height at most, in CSS pixels
}

// shot is a picture at 1280×900, down to the end of the page or 1400 px;
// phoneShot the first screen at 390×844.
func shot(file string) layoutShot      { return layoutShot{file, layoutDesktop, 1400} }
func phoneShot(file string) layoutShot { return layoutShot{file, layoutPhone, float64(layoutPhone.h)} }

// layoutRun is the state of one TestBrowserLayout.
type layoutRun struct {
	t     *testing.T
	shots string   // WARDEN_SCREENSHOTS, or ""
	pages []string // the pages checked, for the log
}

// layoutJS measures the page and, when it is wider than W (the window's
// width), names the outermost elements that stick out (not those inside an
// element that scrolls or clips them). Under mobile emulation a page wider
// than the phone widens the layout viewport (innerWidth) to fit, zoomed
// out, as a phone's browser does: hence W, and the check of innerWidth.
const layoutJS = `((W) => {
	const de = document.documentElement, iw = W, out = [];
	if (de.scrollWidth > iw) {
		// clipped: an ancestor that scrolls or clips holds el (one that
		// holds an absolutely positioned el's containing block, and none
		// a fixed one)
		const clipped = el => {
			const pos = getComputedStyle(el).position;
			if (pos === "fixed") return false;
			for (let p = pos === "absolute" ? el.offsetParent : el.parentElement; p && p !== document.body; p = p.parentElement) {
				if (getComputedStyle(p).overflowX !== "visible") return true;
			}
			return false;
		};
		const shown = new Set();
		for (const el of document.body.querySelectorAll("*")) {
			const r = el.getBoundingClientRect();
			if (r.right <= iw + 0.5 || clipped(el) || shown.has(el.parentElement)) continue;
			shown.add(el);
			if (out.length >= 6) continue;
			const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
				(el.classList.length ? "." + [...el.classList].join(".") : "");
			const text = (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
			out.push(name + " (right edge " + Math.round(r.right) + " px" + (text ? ", «" + text + "»" : "") + ")");
		}
	}
	return JSON.stringify({sw: de.scrollWidth, iw: window.innerWidth, url: location.pathname + location.search, wide: out});
})`

type layoutMeasure struct {
	SW   int      `json:"sw"`
	IW   int      `json:"iw"`
	URL  string   `json:"url"`
	Wide []string `json:"wide"`
}

// resize sets the window of b to size.
func resize(b *mfaBrowser, size layoutSize, scale float64) {
	b.t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(scale)}
	if size.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	b.do("window "+size.name, chromedp.EmulateViewport(size.w, size.h, opts...))
}

// check measures the page b shows at every size (the window is left at
// the desktop size) and takes the screenshots asked for.
func (r *layoutRun) check(b *mfaBrowser, name string, shots ...layoutShot) {
	r.t.Helper()
	r.pages = append(r.pages, name)
	for _, size := range layoutSizes {
		resize(b, size, 1)
		var m layoutMeasure
		if err := json.Unmarshal([]byte(b.eval("measure "+name, layoutJS+"("+strconv.FormatInt(size.w, 10)+")")), &m); err != nil {
			r.t.Fatalf("%s at %s: %v", name, size.name, err)
		}
		if m.SW > m.IW || m.IW != int(size.w) {
			r.t.Errorf("%s (%s) at %s: the page is %d px wide (window.innerWidth %d) in a window of %d px; sticking out: %s",
				name, m.URL, size.name, m.SW, m.IW, size.w, strings.Join(m.Wide, "; "))
		}
		for _, s := range shots {
			if s.size == size {
				r.screenshot(b, s)
			}
		}
	}
}

// unbroken fails when an element that matches sel is broken across lines
// at any size (an audit action: "rules.pattern.create" read whole).
func (r *layoutRun) unbroken(b *mfaBrowser, name, sel string) {
	r.t.Helper()
	js := `(() => {
		const all = [...document.querySelectorAll(` + strconv.Quote(sel) + `)];
		return JSON.stringify({n: all.length, broken: all.filter(e => e.getClientRects().length > 1).map(e => e.textContent)});
	})()`
	for _, size := range layoutSizes {
		resize(b, size, 1)
		var got struct {
			N      int      `json:"n"`
			Broken []string `json:"broken"`
		}
		if err := json.Unmarshal([]byte(b.eval(name+": "+sel, js)), &got); err != nil {
			r.t.Fatal(err)
		}
		if got.N == 0 {
			r.t.Errorf("%s at %s: nothing matches %s", name, size.name, sel)
		}
		if len(got.Broken) > 0 {
			r.t.Errorf("%s at %s: %d of %d %s broken across lines: %q", name, size.name, len(got.Broken), got.N, sel, got.Broken)
		}
	}
}

// screenshot saves the page as a PNG in the screenshots directory, when
// there is one: as wide as the window, down to the end of the page's card
// (not the empty window below it, nor the footer's request ID) or s.maxH;
// a phone's picture at twice the pixels.
func (r *layoutRun) screenshot(b *mfaBrowser, s layoutShot) {
	r.t.Helper()
	if r.shots == "" {
		return
	}
	scale := 1.0
	if s.size.mobile {
		scale = 2
		resize(b, s.size, scale)
		defer resize(b, s.size, 1)
	}
	// No focus ring, no caret: the same picture every run.
	h, err := strconv.ParseFloat(b.eval("page height "+s.file, `(() => {
		if (document.activeElement) document.activeElement.blur();
		const m = document.querySelector("main");
		return String(Math.ceil(m.getBoundingClientRect().bottom + window.scrollY + 16));
	})()`), 64)
	if err != nil {
		r.t.Fatalf("screenshot %s: %v", s.file, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	yes := true
	shot, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format: page.CaptureScreenshotFormatPng, FromSurface: &yes, CaptureBeyondViewport: &yes,
		Clip: &page.Viewport{Width: float64(s.size.w), Height: math.Min(h, s.maxH), Scale: 1}})
	if err != nil {
		r.t.Fatalf("screenshot %s: %v", s.file, err)
	}
	if err := os.MkdirAll(r.shots, 0o755); err != nil {
		r.t.Fatal(err)
	}
	file := filepath.Join(r.shots, s.file)
	if err := os.WriteFile(file, shot.Data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("screenshot %s: %d bytes", file, len(shot.Data))
}

// open goes to base+path in b and waits until sel is visible.
func (r *layoutRun) open(b *mfaBrowser, base, path, sel string) {
	r.t.Helper()
	b.do("open "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(byCSS(sel)))
}

// startLayoutServer runs wardend on the test OpenLDAP and Redis with the
// example rules seeded (and editable) and a second factor required of
// everybody, on http://localhost:PORT (passkeys are offered, as in
// production).
func startLayoutServer(t *testing.T) *mfaServer {
	t.Helper()
	o := openLDAPOptions(t)
	o.Redis.KeyPrefix = "warden-apptest-layout-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	cleanRedis(t, o.Redis)
	file := filepath.Join(t.TempDir(), "mappings.yaml")
	if err := os.WriteFile(file, devconfig.ExampleRules, 0o600); err != nil {
		t.Fatal(err)
	}
	o.Admin = admin.Config{Groups: []string{"admins"}, RulesFile: file}
	o.MFA = requireMFA()
	o.AccessKeys.STSEndpoint = testenv.Moto(t) // the Access keys panel's STS
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

// layoutBrowser starts one headless Chromium; tab opens a browser context
// of its own in it (its own cookies: one per user).
func layoutBrowser(t *testing.T) func() *mfaBrowser {
	t.Helper()
	b := newMFABrowser(t) // the first tab; its WebAuthn domain is unused
	return func() *mfaBrowser {
		ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// the first run on ctx itself: the tab lives as long as the
		// context of its first run
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		return &mfaBrowser{t: t, ctx: ctx}
	}
}

// deviceCode starts a device authorization as the CLI does and returns
// the user code.
func deviceCode(t *testing.T, base string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).PostForm(base+"/oauth/device_authorization",
		url.Values{"client_id": {"warden-cli"}, "scope": {"openid offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var da struct {
		UserCode string `json:"user_code"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &da); err != nil || da.UserCode == "" {
		t.Fatalf("device authorization: %d %s (%v)", resp.StatusCode, body, err)
	}
	return da.UserCode
}

// TestBrowserLayout checks every page's width (see the top of the file).
func TestBrowserLayout(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	needMFABrowser(t, "oathtool")
	start := time.Now()
	s := startLayoutServer(t)
	tab := layoutBrowser(t)
	r := &layoutRun{t: t, shots: os.Getenv("WARDEN_SCREENSHOTS")}
	base := s.base

	// Nobody signed in: the sign-in page, an error page, sign-out.
	anon := tab()
	r.open(anon, base, "/", "#username")
	r.check(anon, "sign-in")
	r.open(anon, base, "/no-such-page", "main h1")
	r.check(anon, "error page (404, signed out)")
	r.open(anon, base, "/logout", "main h1")
	r.check(anon, "sign-out (not signed in)")

	// bob, a developer: sets up an authenticator app at his first sign-in.
	bob := tab()
	bob.signIn(base, "/", "bob")
	bob.do("set-up page", chromedp.WaitVisible(byCSS("#choose-totp")))
	r.check(bob, "second factor: choose")
	bob.do("choose an app", clickCSS("#choose-totp"), chromedp.WaitVisible(byCSS("#totp-secret")))
	r.check(bob, "second factor: authenticator app set-up")
	secret := strings.ReplaceAll(bob.text("key", "#totp-secret"), " ", "")
	bob.do("confirm the code", typeCSS("#code", s.totpCode(t, secret)),
		clickCSS(`#totp-setup-form button[type="submit"]`), chromedp.WaitVisible(byCSS("#recovery-codes")))
	r.check(bob, "second factor: recovery codes")
	bob.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	bob.waitRoles(base)
	r.check(bob, "portal", shot("portal.png"), phoneShot("portal-phone.png"))
	r.open(bob, base, "/aws/keys?role="+url.QueryEscape("arn:aws:iam::111122223333:role/ReadOnly"), "#get-keys")
	r.check(bob, "access keys: the form")
	bob.do("get keys", chromedp.SetValue(byCSS("#duration"), "900"), clickCSS("#get-keys"), chromedp.WaitVisible(byCSS("#keys-made")))
	r.check(bob, "access keys: the keys", layoutShot{"portal-access-keys.png", layoutDesktop, 760}) // the first forms: under 200 KB
	r.open(bob, base, "/account/security", "#security")
	r.check(bob, "security (second factors)")
	r.open(bob, base, "/mfa?fresh=1&next=%2F", "#mfa-challenge")
	r.check(bob, "second factor: confirm", shot("second-factor.png"))

	// The device page: a CLI's code, entered and approved.
	code := deviceCode(t, base)
	r.open(bob, base, "/device", "#user_code")
	r.check(bob, "device: enter the code")
	bob.do("enter the code", typeCSS("#user_code", code), clickCSS(`form[action="/device"] button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#approve")))
	r.check(bob, "device: approve?", shot("device.png"), phoneShot("device-phone.png"))
	bob.do("approve", clickCSS("#approve"), chromedp.WaitVisible(byCSS(".device p.notice")))
	r.check(bob, "device: approved")

	// An elevation: bob asks for prod AdministratorAccess (his factor is fresh).
	req := `li.eligible-role a.request`
	r.open(bob, base, "/", req)
	bob.do("Request", clickCSS(req), chromedp.WaitVisible(byCSS("#request-form")))
	r.check(bob, "elevation: request form")
	bob.do("fill in the form", retryStaleNode(chromedp.Clear(byCSS("#duration"))), typeCSS("#duration", "45m"),
		typeCSS("#reason", "INC-4711 payments queue stuck, need to restart the consumers"))
	bob.do("submit", clickCSS("#submit"), chromedp.WaitVisible(byCSS("#elevation #notice")))
	elevURL := bob.location()
	elevID := strings.TrimPrefix(strings.SplitN(elevURL, "?", 2)[0], "/elevations/")
	r.check(bob, "elevation: the request (requester)")
	r.open(bob, base, "/elevations", "#elevations")
	r.check(bob, "elevation: your requests")
	r.open(bob, base, "/admin", "main h1")
	r.check(bob, "error page (403, signed in)")
	if bob.eval("header", `String(document.querySelector("header .who") !== null && document.querySelector("header .who").textContent)`) != "bob" {
		t.Errorf("the 403 page lacks bob's header (%s)", bob.where())
	}
	r.open(bob, base, "/no-such-page", "main h1")
	r.check(bob, "error page (404, signed in)")

	// alice, an admin, with an authenticator app of her own.
	alice := tab()
	alice.signIn(base, "/", "alice")
	alice.do("set-up page", chromedp.WaitVisible(byCSS("#choose-totp")), clickCSS("#choose-totp"), chromedp.WaitVisible(byCSS("#totp-secret")))
	aliceSecret := strings.ReplaceAll(alice.text("key", "#totp-secret"), " ", "")
	alice.do("confirm the code", typeCSS("#code", s.totpCode(t, aliceSecret)),
		clickCSS(`#totp-setup-form button[type="submit"]`), chromedp.WaitVisible(byCSS("#codes-continue")),
		clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))

	r.open(alice, base, "/elevations/"+elevID, "#decide")
	r.check(alice, "elevation: the request (approver)", shot("elevation.png"))
	r.open(alice, base, "/elevations", "#to-decide")
	r.check(alice, "elevation: to decide")
	r.open(alice, base, "/admin/elevations", "#admin-elevations")
	r.check(alice, "admin: elevations")

	for _, p := range []struct{ name, path, sel string }{
		{"admin: overview", "/admin", "#count-accounts"},
		{"admin: accounts", "/admin/accounts", "#accounts"},
		{"admin: new account", "/admin/accounts/new", "#f-id"},
		{"admin: account", "/admin/accounts/777788889999/edit", "#delete"},
		{"admin: rules", "/admin/rules", "#grants"},
		{"admin: new grant rule", "/admin/rules/grants/new", "#f-roles"},
		{"admin: grant rule", "/admin/rules/grants/admins-administrator/edit", "#delete"},
		{"admin: new pattern rule", "/admin/rules/patterns/new", "#f-pattern"},
		{"admin: pattern rule", "/admin/rules/patterns/adfs-convention/edit", "#delete"},
		{"admin: pattern tester", "/admin/tester?group=AWS-111122223333-BillingReadOnlyAccessForFinanceTeam", "#tester-result"},
		{"admin: who gets what", "/admin/whogets?username=bob", "#grants-result"},
		{"admin: who gets a role", "/admin/whogets?role=arn:aws:iam::111122223333:role/AdministratorAccess", "#role-result"},
		{"admin: workloads", "/admin/workloads", "#new-workload"},
		{"admin: new workload", "/admin/workloads/new", "#f-keys"},
		{"admin: sessions", "/admin/sessions", "#sessions"},
		{"admin: import", "/admin/import", "#f-yaml"},
		{"admin: connection", "/admin/connection", "#f-user"},
		{"admin: AWS setup", "/admin/aws-setup", "#downloads"},
	} {
		r.open(alice, base, p.path, p.sel)
		var shots []layoutShot
		switch p.path {
		case "/admin":
			shots = []layoutShot{shot("admin-overview.png")}
		case "/admin/rules":
			shots = []layoutShot{shot("admin-rules.png"), phoneShot("admin-rules-phone.png")}
		case "/admin/aws-setup":
			shots = []layoutShot{{"admin-aws-setup.png", layoutDesktop, 1000}} // the first account
		case "/admin/workloads/new":
			shots = []layoutShot{shot("admin-workload-new.png")}
		}
		if strings.HasPrefix(p.path, "/admin/tester") {
			shots = []layoutShot{shot("admin-tester.png")}
		}
		r.check(alice, p.name, shots...)
	}
	r.open(alice, base, "/admin/connection", "#f-user")
	alice.do("test the connection", typeCSS("#f-user", "bob"), clickCSS("#test-connection"), chromedp.WaitVisible(byCSS("#result")))
	r.check(alice, "admin: connection tested")
	r.open(alice, base, "/admin/sessions", "#sessions")
	mfaPage := alice.eval("bob's second factors", `document.querySelector('#sessions a[href*="/mfa?name=bob"]').getAttribute("href")`)
	r.open(alice, base, mfaPage, "#admin-mfa")
	r.check(alice, "admin: second factors of a user")

	// A change (a new rules version with its diff) and two conflicts: the
	// form and a restore, each loaded before someone else saved.
	r.open(alice, base, "/admin/rules/grants/developers/edit", "#save")
	saveElsewhere := func(desc string) {
		t.Helper()
		js := `(async () => {
			const edit = await fetch("/admin/rules/grants/developers/edit", {credentials: "same-origin"});
			const doc = new DOMParser().parseFromString(await edit.text(), "text/html");
			const body = new URLSearchParams(new FormData(doc.querySelector('form[action="/admin/rules/grants/developers"]')));
			body.set("description", ` + strconv.Quote(desc) + `);
			const r = await fetch("/admin/rules/grants/developers", {method: "POST", body, credentials: "same-origin", redirect: "manual"});
			return String(r.status);
		})()`
		if got := alice.eval("save elsewhere", js, chromedp.EvalAwaitPromise); got != "0" {
			t.Fatalf("saving the developers rule from another page: %s, want a redirect (0)", got)
		}
	}
	saveElsewhere("Developers read production and build in staging; changed from another tab.")
	alice.do("save the stale form", typeCSS("#f-comment", "a change made on a stale page"), clickCSS("#save"),
		chromedp.WaitVisible(byCSS("#conflict")))
	r.check(alice, "admin: grant rule, not saved (conflict)")
	r.open(alice, base, "/admin/history", "#history")
	r.check(alice, "admin: history")
	r.open(alice, base, "/admin/history/2", "#diff")
	r.check(alice, "admin: version 2 (diff)")
	r.open(alice, base, "/admin/history/1", "#restore")
	r.check(alice, "admin: version 1 (the seed, restorable)")
	saveElsewhere("Developers read production and build in staging.")
	alice.eval("no confirm dialog", `window.confirm = () => true, "ok"`)
	alice.do("restore on a stale page", clickCSS("#restore"), chromedp.WaitVisible(byCSS("#conflict")))
	r.check(alice, "admin: restore, not saved (conflict)")
	r.open(alice, base, "/admin/audit", "#audit")
	r.check(alice, "admin: audit log")
	r.unbroken(alice, "admin: audit log", "#audit td.action code")
	r.open(alice, base, "/no-such-page", "main h1")
	r.check(alice, "error page (404, admin)")
	r.open(alice, base, "/logout", `form[action="/logout"]`)
	r.check(alice, "sign-out")

	t.Logf("%d pages at %d sizes in %s", len(r.pages), len(layoutSizes), time.Since(start).Round(time.Millisecond))
}

// TestHeadAsGET: on a real wardend (dev mode: its own directory and Redis)
// a HEAD answers as the GET of the same URL, without a body, on the routes
// of every kind of Mount: the SAML IdP's metadata (405 before), the OpenID
// provider's discovery and keys, the device page and the admin UI behind
// the sign-in, and the server's own sign-in page.
func TestHeadAsGET(t *testing.T) {
	o := Options{Dev: &DevOptions{LDIF: devconfig.DevDirectoryLDIF, Rules: devconfig.ExampleRules}, Banner: io.Discard,
		Logger: testLogger(t), Admin: admin.Config{Groups: []string{"admins"}}}
	base := startApp(t, o)
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	var disco struct {
		JWKS string `json:"jwks_uri"`
	}
	if _, body := do(http.MethodGet, "/.well-known/openid-configuration"); json.Unmarshal(body, &disco) != nil || !strings.HasPrefix(disco.JWKS, base+"/") {
		t.Fatalf("discovery: %s", body)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/saml/metadata", http.StatusOK},
		{"/.well-known/openid-configuration", http.StatusOK},
		{strings.TrimPrefix(disco.JWKS, base), http.StatusOK},
		{"/login", http.StatusOK},
		{"/device", http.StatusSeeOther},
		{"/admin/rules", http.StatusSeeOther},
	} {
		get, body := do(http.MethodGet, tc.path)
		head, hbody := do(http.MethodHead, tc.path)
		if get.StatusCode != tc.status || head.StatusCode != tc.status {
			t.Errorf("%s: GET %d, HEAD %d, want %d", tc.path, get.StatusCode, head.StatusCode, tc.status)
		}
		if len(hbody) != 0 {
			t.Errorf("HEAD %s has a body of %d bytes", tc.path, len(hbody))
		}
		for _, h := range []string{"Content-Type", "Location", "Cache-Control", "Content-Security-Policy"} {
			if head.Header.Get(h) != get.Header.Get(h) {
				t.Errorf("%s: %s: HEAD %q, GET %q", tc.path, h, head.Header.Get(h), get.Header.Get(h))
			}
		}
		if cl := head.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Errorf("HEAD %s: Content-Length %q, the GET's body has %d bytes", tc.path, cl, len(body))
		}
	}
}
