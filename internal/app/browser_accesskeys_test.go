package app

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/testenv"
)

// TestBrowserAccessKeys: in Chromium, bob opens Access keys from a role on
// the portal, picks 15 minutes and gets keys from wardend (which called
// moto's STS): five forms, each with a Copy button that copy.js added,
// and nothing about the keys in the page's URL (TestBrowserLayout checks
// the panel at a phone's width and takes the docs' picture of it).
func TestBrowserAccessKeys(t *testing.T) {
	t.Parallel() // its own Chromium, wardend, moto and Redis keys
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	b := newMFABrowser(t)
	o := portalOptions(t)
	o.AccessKeys.STSEndpoint = testenv.Moto(t)
	base := startApp(t, o)
	nb := newBrowser(t, base) // wait until the seeded rules are compiled
	nb.signIn("bob", os.Getenv("LDAP_USER_PW"))
	nb.waitRoles()

	type css = chromedp.CSS
	b.do("sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "bob"),
		chromedp.SendKeys(css("#password"), os.Getenv("LDAP_USER_PW")),
		chromedp.Click(css(`button[type="submit"]`)),
		chromedp.WaitVisible(css("#role-search")),
	)
	b.do("Access keys", chromedp.Click(css(`a.keys[href*="role%2FReadOnly"]`)), chromedp.WaitVisible(css("#get-keys")))
	b.do("15 minutes", chromedp.SetValue(css("#duration"), "900"), chromedp.Click(css("#get-keys")),
		chromedp.WaitVisible(css("#keys-made")))
	forms := b.eval("forms", `[...document.querySelectorAll("section.keyform")].map(s => s.id + ":" + (s.querySelector("button.copy") ? "copy" : "none")).join(",")`)
	if forms != "form-bash:copy,form-fish:copy,form-powershell:copy,form-credentials:copy,form-credential_process:copy" {
		t.Errorf("forms and their copy buttons: %q", forms)
	}
	bash := b.eval("bash form", `document.querySelector("#form-bash pre").textContent`)
	if !strings.HasPrefix(bash, "export AWS_ACCESS_KEY_ID='") || !strings.Contains(bash, "export AWS_SESSION_TOKEN='") {
		t.Errorf("bash form:\n%s", bash)
	}
	if loc := b.eval("location", `location.href`); loc != base+"/aws/keys" {
		t.Errorf("the keys page is at %q", loc)
	}
}
