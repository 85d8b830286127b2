package app

import (
	"context"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Time-boxed elevation in a real browser: headless Chromium against a real
// wardend on the real OpenLDAP and Redis. bob (developers) asks for a role
// he is only eligible for, from the portal's Request button, through a
// fresh second factor (TOTP codes from oathtool); alice (admins, the
// approver group) decides in a browser of her own; bob's Console click then
// reaches the AWS sign-in stand-in with a response capped to the window.
// Time moves only by the server's injected clock (mfaClock).
//
// With WARDEN_SCREENSHOTS=<dir> the tests save the pages docs/elevation.md
// shows, as PNGs of a 1100 px wide window.

const (
	elevBrowserAdminARN    = "arn:aws:iam::111122223333:role/Admin"
	elevBrowserOperatorARN = "arn:aws:iam::111122223333:role/Operator"
	elevBrowserStagingARN  = "arn:aws:iam::444455556666:role/Admin"
)

// elevBrowserRules: developers (bob) hold ReadOnly standing; they may
// request Admin in prod and in staging for up to an hour with a ticket as
// the reason, approved by admins (alice), and prod Operator for up to 30
// minutes without an approver (self-service).
var elevBrowserRules = []byte(`
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
  - id: "444455556666"
    name: staging
    saml_provider: warden
grants:
  - id: developers
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/ReadOnly
      - arn: arn:aws:iam::111122223333:role/Admin
        access: eligible
        max_duration: 1h
        approvers: admins
        reason_pattern: '^INC-[0-9]+'
      - arn: arn:aws:iam::444455556666:role/Admin
        access: eligible
        max_duration: 1h
        approvers: admins
        reason_pattern: '^INC-[0-9]+'
      - arn: arn:aws:iam::111122223333:role/Operator
        access: eligible
        max_duration: 30m
`)

// elevBrowserStepUp is mfa.step_up_max_age in these tests: short, so that
// moving the clock past it stays well within the 10 minutes mfaClock
// allows.
const elevBrowserStepUp = 2 * time.Minute

// startElevationServer runs wardend with every user on a second factor,
// the step-up age above and elevBrowserRules, and returns it with bob's
// browser: signed in with an authenticator app set up just now, on the
// portal with its roles listed. It returns bob's TOTP secret too.
func startElevationServer(t *testing.T, tools ...string) (*mfaServer, *mfaBrowser, string) {
	t.Helper()
	needMFABrowser(t, append([]string{"oathtool"}, tools...)...)
	cfg := requireMFA()
	cfg.StepUpMaxAge = elevBrowserStepUp
	s := startMFAServer(t, cfg, elevBrowserRules)
	bob := newElevationBrowser(t)
	secret, _ := bob.enrollTOTP(s, "bob")
	bob.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	bob.waitRoles(s.base)
	return s, bob, secret
}

// newElevationBrowser is an mfaBrowser (a Chromium of its own: its own
// cookies) with a 1100×800 viewport, the size of the screenshots.
func newElevationBrowser(t *testing.T) *mfaBrowser {
	t.Helper()
	b := newMFABrowser(t)
	b.do("viewport", chromedp.EmulateViewport(1100, 800))
	return b
}

// elevRequestForm goes from the portal's Request button of the role labelled
// label ("Request Admin in prod") through the second factor, which the
// test made stale by moving the clock, to the request form.
func (b *mfaBrowser) elevRequestForm(s *mfaServer, secret, label string) {
	b.t.Helper()
	sel := `li.eligible-role a.request[aria-label="` + label + `"]`
	b.do("portal", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(sel)))
	s.clock.Advance(elevBrowserStepUp + time.Minute) // the factor of the sign-in is too old now
	b.do("Request", clickCSS(sel), chromedp.WaitVisible(byCSS("#mfa-challenge")))
	loc := b.location()
	if !strings.HasPrefix(loc, "/mfa?") || !strings.Contains(loc, "fresh=1") || !strings.Contains(loc, "elevations%2Fnew") {
		b.t.Fatalf("Request with a stale factor went to %s, want the fresh second-factor page returning to the form", loc)
	}
	if h := b.text("heading", "#mfa-challenge h1"); h != "Confirm it is you" {
		b.t.Errorf("step-up heading %q", h)
	}
	b.do("fresh TOTP code",
		typeCSS("#code", s.totpCode(b.t, secret)),
		clickCSS(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(byCSS("#request-form")))
	if loc := b.location(); !strings.HasPrefix(loc, "/elevations/new?") {
		b.t.Errorf("after the code: %s, want the request form", loc)
	}
}

// elevChecked lists the role checkboxes of the request form that are ticked.
func (b *mfaBrowser) elevChecked() string {
	b.t.Helper()
	return b.eval("ticked roles", `[...document.querySelectorAll('#request-form input[name="role"]:checked')].map(i => i.value).join(" ")`)
}

var elevationPageRE = regexp.MustCompile(`^/elevations/([0-9a-f]{32})\?done=(\w+)$`)

// elevPage waits for the page of one request after an action and
// returns its ID, checking that the action (done) is the one the page
// reports.
func (b *mfaBrowser) elevPage(step, done string) string {
	b.t.Helper()
	b.do(step, chromedp.WaitVisible(byCSS("#elevation #notice")))
	loc := b.location()
	m := elevationPageRE.FindStringSubmatch(loc)
	if m == nil || m[2] != done {
		b.t.Fatalf("%s: at %s, want /elevations/<id>?done=%s (%s)", step, loc, done, b.where())
	}
	return m[1]
}

// elevState is the State of the request page, as the server wrote it (CSS
// capitalises it on screen).
func (b *mfaBrowser) elevState() string {
	b.t.Helper()
	return b.eval("state", `document.querySelector("#state .state").textContent.trim()`)
}

// elevHas reports whether the page has an element that matches sel.
func (b *mfaBrowser) elevHas(sel string) bool {
	b.t.Helper()
	return b.eval("has "+sel, `String(document.querySelector(`+strconv.Quote(sel)+`) !== null)`) == "true"
}

// elevPost POSTs fields, with the page's CSRF token, to path from the page
// (a forged form: same origin, the session cookie) and returns the status;
// a redirect is not followed (0, an opaque redirect).
func (b *mfaBrowser) elevPost(path string, fields map[string]string) int {
	b.t.Helper()
	js := `(async () => {
		const body = new URLSearchParams(` + elevJSObject(fields) + `);
		body.set("csrf_token", document.querySelector('input[name="csrf_token"]').value);
		const r = await fetch(` + strconv.Quote(path) + `, {method: "POST", body, credentials: "same-origin", redirect: "manual"});
		return String(r.status);
	})()`
	n, err := strconv.Atoi(b.eval("POST "+path, js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

func elevJSObject(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, strconv.Quote(k)+": "+strconv.Quote(v))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// elevScreenshot saves the page as dir/name (a PNG) when WARDEN_SCREENSHOTS
// names a directory: the whole page, 1100 px wide, at most 1600 px high.
func (b *mfaBrowser) elevScreenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("WARDEN_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// No focus ring or caret: the same picture every run.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement && document.activeElement.blur(), true`)); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	m, err := chromedp.Call(ctx, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil || m.CSSContentSize == nil || m.CSSLayoutViewport == nil {
		b.t.Fatalf("screenshot %s: layout metrics: %v", name, err)
	}
	h := math.Min(math.Max(m.CSSContentSize.Height, float64(m.CSSLayoutViewport.ClientHeight)), 1600)
	yes := true
	r, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format: page.CaptureScreenshotFormatPng, FromSurface: &yes, CaptureBeyondViewport: &yes,
		Clip: &page.Viewport{Width: float64(m.CSSLayoutViewport.ClientWidth), Height: h, Scale: 1}})
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, r.Data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s: %d bytes", file, len(r.Data))
}

// TestBrowserElevationApproved: bob requests prod Admin from the portal
// (his factor is stale, so he gives it again), for 30 minutes with a
// ticket; he cannot approve it himself; alice, an approver, sees it with
// its reason and client IP on /elevations and approves it with a comment;
// bob's portal then has a Console button for it, and the response that
// reaches AWS lasts no longer than the window and names the request and
// the reason in session tags.
func TestBrowserElevationApproved(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	s, bob, secret := startElevationServer(t, "xmlsec1")

	// The portal: Admin is requestable, not a console role.
	if bob.elevHas(`button.console[value="` + elevBrowserAdminARN + `"]`) {
		t.Fatal("the portal has a Console button for prod Admin before any elevation")
	}
	row := bob.eval("Admin row", `document.querySelector('li.eligible-role a.request[aria-label="Request Admin in prod"]').closest("li").textContent.replace(/\s+/g, " ").trim()`)
	for _, want := range []string{"Admin", "up to 1 h", "approved by admins", "reason required", "Request"} {
		if !strings.Contains(row, want) {
			t.Errorf("the portal's row of prod Admin %q lacks %q", row, want)
		}
	}
	bob.elevScreenshot("elevation-portal.png")

	bob.elevRequestForm(s, secret, "Request Admin in prod")
	if got := bob.elevChecked(); got != elevBrowserAdminARN {
		t.Errorf("the form ticks %q, want prod Admin alone", got)
	}
	offered := bob.eval("roles offered", `[...document.querySelectorAll('#request-form input[name="role"]')].map(i => i.value).join(" ")`)
	if want := strings.Join([]string{elevBrowserAdminARN, elevBrowserOperatorARN, elevBrowserStagingARN}, " "); offered != want {
		t.Errorf("the form offers %q, want the 3 eligible roles %q (prod, then staging)", offered, want)
	}
	bob.do("fill in the form",
		retryStaleNode(chromedp.Clear(byCSS("#duration"))),
		typeCSS("#duration", "30m"),
		typeCSS("#reason", "INC-42 disk full"))
	bob.elevScreenshot("elevation-request.png")
	bob.do("submit", clickCSS("#submit"))
	id := bob.elevPage("request", "requested")
	if st := bob.elevState(); st != "pending" {
		t.Fatalf("the new request is %q, want pending", st)
	}
	if n := bob.text("notice", "#notice"); !strings.Contains(n, "An approver decides it") {
		t.Errorf("notice after the request: %q", n)
	}
	if bob.elevHas("#decide") {
		t.Error("bob's own request page offers him the decision")
	}
	s.audited(t, "bob", "elevation.request", "success")

	// bob may not approve his own request: no button for it, and a forged
	// POST with his CSRF token (his factor is fresh) is refused and
	// changes nothing.
	bob.do("bob's list", chromedp.Navigate(s.base+"/elevations"), chromedp.WaitVisible(byCSS(`#mine-pending tr[data-id="`+id+`"]`)))
	if n := bob.eval("approve buttons", `String(document.querySelectorAll("button.approve, #to-decide").length)`); n != "0" || !bob.elevHas("#nothing-to-decide") {
		t.Errorf("bob's /elevations offers a decision (%s approve buttons or lists)", n)
	}
	if code := bob.elevPost("/elevations/"+id+"/approve", map[string]string{"comment": "approving my own"}); code != 403 {
		t.Errorf("bob's forged approval of his own request: %d, want 403", code)
	}
	s.audited(t, "bob", "elevation.decide", "self_approval")
	bob.do("bob's request", chromedp.Navigate(s.base+"/elevations/"+id), chromedp.WaitVisible(byCSS("#details")))
	if st := bob.elevState(); st != "pending" || bob.elevHas("#decider") || bob.elevHas("#comment") {
		t.Errorf("after the forged approval the request is %q (decider shown: %v)", st, bob.elevHas("#decider"))
	}

	// alice, in a browser of her own, with her own authenticator app.
	alice := newElevationBrowser(t)
	alice.enrollTOTP(s, "alice")
	alice.do("continue", clickCSS("#codes-continue"), chromedp.WaitVisible(byCSS("dd#username")))
	rowSel := `#to-decide tr[data-id="` + id + `"]`
	alice.do("alice's list", chromedp.Navigate(s.base+"/elevations"), chromedp.WaitVisible(byCSS(rowSel)))
	cells := strings.Split(alice.eval("the request's row", `[...document.querySelector(`+strconv.Quote(rowSel)+`).cells].map(c => c.textContent.replace(/\s+/g, " ").trim()).join("|")`), "|")
	if len(cells) != 8 {
		t.Fatalf("the row has %d cells: %q", len(cells), cells)
	}
	for i, want := range map[int]string{0: "bob", 1: "prod 111122223333 / Admin", 2: "30m", 3: "INC-42 disk full", 5: "127.0.0.1"} {
		if cells[i] != want {
			t.Errorf("alice's row, column %d: %q, want %q (row %q)", i, cells[i], want, cells)
		}
	}
	if n := alice.eval("rows", `String(document.querySelectorAll("#to-decide tbody tr").length)`); n != "1" {
		t.Errorf("alice has %s requests to decide, want 1", n)
	}
	alice.elevScreenshot("elevation-approve.png")
	alice.do("approve",
		typeCSS("#comment-"+id, "Go ahead; ping #ops when done"),
		clickCSS(rowSel+" button.approve"))
	if got := alice.elevPage("approve", "approved"); got != id {
		t.Fatalf("the approval went to request %s, want %s", got, id)
	}
	if st := alice.elevState(); st != "active" {
		t.Errorf("after the approval the request is %q, want active", st)
	}
	if d := alice.text("decider", "#decider"); !strings.HasPrefix(d, "alice") {
		t.Errorf("decided by %q", d)
	}
	if c := alice.text("comment", "#comment"); c != "Go ahead; ping #ops when done" {
		t.Errorf("comment %q", c)
	}
	s.audited(t, "alice", "elevation.approved", "success")

	// bob's portal: prod Admin with a Console button, elevated until the
	// end of the window.
	console := `button.console[value="` + elevBrowserAdminARN + `"]`
	bob.do("portal while elevated", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(console)))
	until := bob.eval("elevated", `(document.querySelector(`+strconv.Quote(console)+`).closest("li").querySelector(".elevated") || {textContent: ""}).textContent.trim()`)
	if !regexp.MustCompile(`^elevated until \d\d:\d\d UTC$`).MatchString(until) {
		t.Errorf("prod Admin's row says %q, want \"elevated until HH:MM UTC\"", until)
	}
	bob.elevScreenshot("elevation-active.png")
	bob.do("Admin console", clickCSS(console), chromedp.WaitVisible(byCSS("#aws-console")))
	posts := bob.aws.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d POSTs to AWS (%v)", len(posts), bob.aws.URLs())
	}
	raw := samlXML(t, posts[0])
	var r samlResponse
	if err := xml.Unmarshal([]byte(raw), &r); err != nil || len(r.Assertions) != 1 {
		t.Fatalf("the SAMLResponse (%v):\n%s", err, raw)
	}
	const attr = "https://aws.amazon.com/SAML/Attributes/"
	secs, err := strconv.Atoi(strings.Join(r.attr(attr+"SessionDuration"), ""))
	if err != nil || secs > 1800 || secs <= 1700 {
		t.Errorf("SessionDuration %v (%v), want the time left in the 30-minute window: in (1700, 1800]", r.attr(attr+"SessionDuration"), err)
	}
	if got := r.attr(attr + "Role"); len(got) != 1 || !strings.HasPrefix(got[0], elevBrowserAdminARN+",") {
		t.Errorf("Role %q, want prod Admin alone", got)
	}
	if got := r.attr(attr + "PrincipalTag:WardenElevation"); len(got) != 1 || got[0] != id {
		t.Errorf("PrincipalTag:WardenElevation %q, want %s", got, id)
	}
	if got := r.attr(attr + "PrincipalTag:WardenReason"); len(got) != 1 || got[0] != "INC-42 disk full" {
		t.Errorf("PrincipalTag:WardenReason %q", got)
	}
	verifyAssertion(t, newBrowser(t, s.base), []byte(raw))
	s.audited(t, "bob", "saml.response", "success")

	// The admins' page lists it as active, with End now.
	adminRow := `#admin-active tr[data-id="` + id + `"]`
	alice.do("admin page", chromedp.Navigate(s.base+"/admin/elevations"), chromedp.WaitVisible(byCSS(adminRow)))
	if got := alice.eval("admin row", `document.querySelector(`+strconv.Quote(adminRow)+`).textContent.replace(/\s+/g, " ").trim()`); !strings.Contains(got, "bob") ||
		!strings.Contains(got, "INC-42 disk full") || !strings.Contains(got, "End now") {
		t.Errorf("the admin page's row: %q", got)
	}
	alice.elevScreenshot("elevation-admin.png")
}

// TestBrowserElevationSelfService: prod Operator names no approver: after
// the fresh second factor the request is approved at once and the portal
// has a Console button for it; bob ends it from /elevations, and the
// portal has none any more (nor does a forged console POST reach AWS).
func TestBrowserElevationSelfService(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	s, bob, secret := startElevationServer(t)
	console := `button.console[value="` + elevBrowserOperatorARN + `"]`
	if bob.elevHas(console) {
		t.Fatal("the portal has a Console button for prod Operator before any elevation")
	}
	row := bob.eval("Operator row", `document.querySelector('li.eligible-role a.request[aria-label="Request Operator in prod"]').closest("li").textContent.replace(/\s+/g, " ").trim()`)
	if !strings.Contains(row, "self-service") || strings.Contains(row, "reason required") {
		t.Errorf("the portal's row of prod Operator: %q", row)
	}

	bob.elevRequestForm(s, secret, "Request Operator in prod")
	if got := bob.elevChecked(); got != elevBrowserOperatorARN {
		t.Errorf("the form ticks %q, want prod Operator alone", got)
	}
	if d := bob.eval("duration", `document.querySelector("#duration").value`); d != "30m" {
		t.Errorf("the form suggests %q, want Operator's maximum, 30m", d)
	}
	bob.do("submit", clickCSS("#submit"))
	id := bob.elevPage("request", "requested")
	if st := bob.elevState(); st != "active" {
		t.Fatalf("the self-service request is %q, want active at once", st)
	}
	if n := bob.text("notice", "#notice"); !strings.Contains(n, "Approved at once") {
		t.Errorf("notice after the request: %q", n)
	}
	s.audited(t, "bob", "elevation.approved", "success")

	bob.do("portal while elevated", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(console)))
	if !strings.HasPrefix(bob.eval("elevated", `document.querySelector(`+strconv.Quote(console)+`).closest("li").textContent`), "Operator") {
		t.Errorf("the Console button of %s is not in Operator's row", elevBrowserOperatorARN)
	}

	// Ended from /elevations.
	end := `#mine-active tr[data-id="` + id + `"] button.end`
	bob.do("bob's list", chromedp.Navigate(s.base+"/elevations"), chromedp.WaitVisible(byCSS(end)))
	bob.do("End now", clickCSS(end))
	if got := bob.elevPage("end", "ended"); got != id {
		t.Fatalf("ended request %s, want %s", got, id)
	}
	if st := bob.elevState(); st != "ended" {
		t.Errorf("after End now the request is %q, want ended", st)
	}
	if by := bob.text("ended by", "#ended-by"); !strings.HasPrefix(by, "bob") {
		t.Errorf("ended by %q", by)
	}
	s.audited(t, "bob", "elevation.end", "success")

	bob.do("portal after the end", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(byCSS(`li.eligible-role a.request[aria-label="Request Operator in prod"]`)))
	if bob.elevHas(console) {
		t.Error("the portal still has a Console button for prod Operator after the end")
	}
	if n := bob.eval("elevated", `String(document.querySelectorAll(".elevated").length)`); n != "0" {
		t.Errorf("the portal still says elevated (%s times)", n)
	}
	if code := bob.elevPost("/aws/console", map[string]string{"role": elevBrowserOperatorARN}); code != 403 {
		t.Errorf("a console POST for Operator after the end: %d, want 403", code)
	}
	if posts := bob.aws.Posts(); len(posts) != 0 {
		t.Errorf("%d POSTs reached AWS", len(posts))
	}
}
