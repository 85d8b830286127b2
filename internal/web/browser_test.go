package web

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/testenv"
)

// TestBrowserSignInAndOut drives a real Chromium through the pages: the
// CSP, the cookies, the CSRF layers and the redirects all as a browser sees
// them.
func TestBrowserSignInAndOut(t *testing.T) {
	chromium := testenv.Binary(t, "chromium")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	hs := httptest.NewUnstartedServer(nil)
	base := "http://" + hs.Listener.Addr().String()
	e := newEnv(t, withPublicURL(base))
	hs.Config.Handler = e.h
	hs.Start()
	defer hs.Close()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844), // a phone
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	// The first call starts the browser and must not carry a timeout (it
	// would stop the browser); later steps each get one.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	shot := func() {
		sctx, scancel := context.WithTimeout(bctx, 10*time.Second)
		defer scancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot failed: %v", err)
			return
		}
		f, err := os.CreateTemp("", "warden-browser-*.png")
		if err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		defer f.Close()
		_, _ = f.Write(png)
		t.Logf("screenshot saved to %s", f.Name())
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot()
			t.Fatalf("%s: %v", step, err)
		}
	}
	get := func(step string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			shot()
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	check := func(cond bool, format string, args ...any) {
		t.Helper()
		if !cond {
			shot()
			t.Fatalf(format, args...)
		}
	}
	type css = chromedp.CSS

	do("open / (redirected to sign-in)",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#username")),
	)
	loc := get("location", chromedp.Location())
	check(strings.HasSuffix(loc, "/login?next=/"), "location %q", loc)
	focused := get("focus", chromedp.Evaluate[string](`document.activeElement.id`))
	check(focused == "username", "focused element %q, want username (autofocus)", focused)
	font := get("style", chromedp.Evaluate[string](`getComputedStyle(document.body).fontFamily`))
	check(strings.Contains(font, "system-ui"), "stylesheet not applied (CSP or path): font %q", font)

	do("wrong password",
		chromedp.SendKeys(css("#username"), "bob"),
		chromedp.SendKeys(css("#password"), "not-the-password"),
		chromedp.Click(css(`button[type="submit"]`)),
		chromedp.WaitVisible(css(".error")),
	)
	errText := get("error text", chromedp.Text(css(".error")))
	check(strings.Contains(errText, genericFailure), "error text %q", errText)

	do("sign in",
		chromedp.Clear(css("#username")),
		chromedp.SendKeys(css("#username"), "bob"),
		chromedp.SendKeys(css("#password"), testPassword),
		chromedp.Click(css(`button[type="submit"]`)),
		chromedp.WaitVisible(css("#groups")),
	)
	loc = get("location", chromedp.Location())
	check(loc == base+"/", "after sign-in at %q", loc)
	who := get("username", chromedp.Text(css("#username")))
	check(who == "bob", "username %q", who)
	groups := get("groups", chromedp.Text(css("#groups")))
	for _, g := range []string{"developers", "engineering", "staff", "company", "nested"} {
		check(strings.Contains(strings.ToLower(groups), g), "groups %q lack %q", groups, g)
	}
	cookieJS := get("cookies", chromedp.Evaluate[string](`document.cookie`))
	check(!strings.Contains(cookieJS, "warden_session") && !strings.Contains(cookieJS, "warden_csrf"),
		"HttpOnly cookies visible to script: %q", cookieJS)

	do("sign out",
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css(".notice")),
	)
	notice := get("notice", chromedp.Text(css(".notice")))
	check(strings.Contains(notice, "You have been signed out."), "notice %q", notice)
	do("home after sign-out", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#username")))
	loc = get("location", chromedp.Location())
	check(strings.HasSuffix(loc, "/login?next=/"), "after sign-out / went to %q", loc)
	if evs := e.audit.Events(); len(evs) != 3 || evs[1].Result != "success" || evs[2].Action != "logout" {
		t.Errorf("audit %+v", evs)
	}
}
