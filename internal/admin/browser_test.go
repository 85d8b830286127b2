package admin

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/testenv"
)

// artifactsDir is where failure screenshots go: $TEST_ARTIFACTS, or a
// temporary directory of the test.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

// TestBrowserAdmin drives a real Chromium against the real stack: alice
// (admin) adds an account and a pattern rule, checks bob in "who gets
// what" and finds her change in the audit log; bob gets 403.
func TestBrowserAdmin(t *testing.T) {
	chromium := testenv.Binary(t, "chromium")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	s := realStack(t)
	base := s.base
	shots := artifactsDir(t)

	br := newAdminBrowser(t, chromium, shots, "admin-")
	do, get, check := br.do, br.get, br.check
	type css = chromedp.CSS

	signIn := func(user string) {
		do("sign in "+user,
			chromedp.Navigate(base+"/admin"),
			chromedp.WaitVisible(css("#username")),
			chromedp.SendKeys(css("#username"), user),
			chromedp.SendKeys(css("#password"), s.userPW),
			chromedp.Click(css(`button[type="submit"]`)),
			chromedp.WaitNotPresent(css("#password")),
			chromedp.WaitVisible(css("main h1")),
		)
	}

	signIn("alice")
	loc := get("location", chromedp.Location())
	check("back at /admin", loc == base+"/admin", "after sign-in at %q", loc)
	do("overview", chromedp.WaitVisible(css("#count-accounts")))
	font := get("style", chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".adminnav a[aria-current]")).color`))
	check("stylesheet", font == "rgb(255, 255, 255)", "admin nav not styled (CSP or path): %q", font)

	// An account: first with a mistake, shown next to the field.
	do("new account form",
		chromedp.Click(css(`.adminnav a[href="/admin/accounts"]`)),
		chromedp.WaitVisible(css("#new-account")),
		chromedp.Click(css("#new-account")),
		chromedp.WaitVisible(css("#f-id")),
		chromedp.SendKeys(css("#f-id"), "1234"),
		chromedp.SendKeys(css("#f-name"), "prod"),
		chromedp.SendKeys(css("#f-saml-provider"), "warden"),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#f-id-err")),
	)
	msg := get("inline error", chromedp.Text(css("#f-id-err")))
	check("inline error", strings.Contains(msg, "12"), "id error %q", msg)
	do("fix the account",
		chromedp.Clear(css("#f-id")),
		chromedp.SendKeys(css("#f-id"), "111122223333"),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#accounts")),
	)
	accounts := get("accounts", chromedp.Text(css("#accounts")))
	check("account listed", strings.Contains(accounts, "111122223333") && strings.Contains(accounts, "prod"), "accounts %q", accounts)

	// A pattern rule.
	do("new pattern rule",
		chromedp.Click(css(`.adminnav a[href="/admin/rules"]`)),
		chromedp.WaitVisible(css("#new-pattern")),
		chromedp.Click(css("#new-pattern")),
		chromedp.WaitVisible(css("#f-pattern")),
		chromedp.SendKeys(css("#f-id"), "teams"),
		chromedp.SendKeys(css("#f-pattern"), `^(?P<team>developers|admins)$`),
		chromedp.SendKeys(css("#f-role-arn"), "arn:aws:iam::111122223333:role/${team}"),
		chromedp.SendKeys(css("#f-max-session-seconds"), "7200"),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#patterns")),
	)
	notice := get("notice", chromedp.Text(css("#notice")))
	check("saved notice", strings.Contains(notice, "version 2"), "notice %q", notice)

	// Who gets what for bob, from the real directory.
	do("who gets what",
		chromedp.Click(css(`.adminnav a[href="/admin/whogets"]`)),
		chromedp.WaitVisible(css("#f-username")),
		chromedp.SendKeys(css("#f-username"), "bob"),
		chromedp.Click(css("#lookup")),
		chromedp.WaitVisible(css("#grants-result")),
	)
	grants := get("grants", chromedp.Text(css("#grants-result")))
	check("bob's role", strings.Contains(grants, "arn:aws:iam::111122223333:role/developers") && strings.Contains(grants, "teams") &&
		strings.Contains(grants, "7200 s"), "grants %q", grants)
	groups := get("groups", chromedp.Text(css("#user-groups")))
	groups = strings.ToLower(groups)
	check("bob's groups", strings.Contains(groups, "developers") && strings.Contains(groups, "company") && strings.Contains(groups, "nested"),
		"groups %q", groups)

	// The change in the audit log.
	do("audit log",
		chromedp.Click(css(`.adminnav a[href="/admin/audit"]`)),
		chromedp.WaitVisible(css("#f-action")),
		// The filter form is a GET; load its result directly: clicking
		// submit and then waiting for #audit can match the unfiltered
		// page's table just before the navigation replaces it.
		chromedp.Navigate(base+"/admin/audit?action=rules.pattern.create"),
		chromedp.WaitVisible(css("#audit")),
	)
	au := get("audit", chromedp.Text(css("#audit")))
	check("audit entry", strings.Contains(au, "alice") && strings.Contains(au, "teams") && strings.Contains(au, "success"), "audit %q", au)

	// Bob: 403 on the admin pages, no Admin link.
	br.restart()
	signIn("bob")
	for _, p := range []string{"/admin", "/admin/rules", "/admin/whogets", "/admin/sessions", "/admin/audit", "/admin/api/rules"} {
		do("bob opens "+p, chromedp.Navigate(base+p), chromedp.WaitReady(css("body")))
		body := get("bob "+p, chromedp.Text(css("body")))
		check("bob "+p, strings.Contains(body, "Only members of the admin groups"), "page %q", body)
	}
	status := get("status", chromedp.Evaluate[string](`fetch("/admin/api/rules").then(r => String(r.status))`,
		chromedp.EvalAwaitPromise))
	check("bob api status", status == "403", "status %q", status)
	do("bob home", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#username")))
	links := get("links", chromedp.Evaluate[string](`document.querySelectorAll('a[href="/admin"]').length.toString()`))
	check("no admin link", links == "0", "bob sees %s admin links", links)
}
