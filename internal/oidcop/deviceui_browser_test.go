package oidcop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/testenv"
)

// duiChrome starts a headless Chromium (a phone-sized window) and returns
// its context. WARDEN_SHOTS=DIR keeps screenshots of each step there.
func duiChrome(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.Binary(t, "chromium")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(412, 915),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// duiDriver runs steps in a browser context, with a screenshot on failure
// (and of named steps when WARDEN_SHOTS is set).
type duiDriver struct {
	t    *testing.T
	ctx  context.Context
	name string
}

func (d duiDriver) shot(step string) {
	dir := os.Getenv("WARDEN_SHOTS")
	if dir == "" {
		dir = os.TempDir()
	}
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		d.t.Logf("screenshot %s: %v", step, err)
		return
	}
	p := filepath.Join(dir, "device-"+d.name+"-"+step+".png")
	if err := os.WriteFile(p, png, 0o644); err == nil {
		d.t.Logf("screenshot %s", p)
	}
}

func (d duiDriver) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		d.shot("failed-" + step)
		d.t.Fatalf("%s: %v", step, err)
	}
	if os.Getenv("WARDEN_SHOTS") != "" {
		d.shot(step)
	}
}

func (d duiDriver) get(step string, a chromedp.Action[string]) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		d.shot("failed-" + step)
		d.t.Fatalf("%s: %v", step, err)
	}
	return v
}

// TestDeviceBrowser drives Chromium through the pages on the fake backend:
// the link opens sign-in, comes back pre-filled, the script shows the code
// as XXXX-XXXX while typing, the confirmation page, Approve.
func TestDeviceBrowser(t *testing.T) {
	ctx := duiChrome(t)
	f := newDUIFixture(t)
	d := duiDriver{t: t, ctx: ctx, name: "fake"}
	type css = chromedp.CSS

	d.do("login", chromedp.Navigate(f.base+"/device?user_code=bcdfghjk"), chromedp.WaitVisible(css("#username")))
	d.do("signin", chromedp.SendKeys(css("#username"), "bob"), chromedp.SendKeys(css("#password"), "pw"),
		chromedp.Submit(css("#password")), chromedp.WaitVisible(css("#user_code")))
	if v := d.get("prefilled", chromedp.Value(css("#user_code"))); v != duiShown {
		t.Fatalf("pre-filled %q", v)
	}
	if dec := f.backend.decisions(); len(dec) != 0 || f.backend.lookups() != 0 {
		t.Fatalf("the link did something: %v", dec)
	}
	// The narrow card and the monospace code field come from device.css.
	if w := d.get("width", chromedp.Evaluate[string](`String(document.querySelector("main").getBoundingClientRect().width <= 480)`)); w != "true" {
		t.Fatalf("card not narrow (device.css not applied?)")
	}
	d.get("clear", chromedp.Evaluate[string](`document.getElementById("user_code").value = ""`))
	d.do("type", chromedp.SendKeys(css("#user_code"), "bcdf ghjk"))
	if v := d.get("formatted", chromedp.Value(css("#user_code"))); v != duiShown {
		t.Fatalf("typed code shown as %q, want %s (device.js)", v, duiShown)
	}
	d.do("confirm", chromedp.Submit(css("#user_code")), chromedp.WaitVisible(css("#approve")))
	text := d.get("confirm-text", chromedp.Text(css("main")))
	for _, w := range []string{"Warden CLI", "203.0.113.9", "See your name", duiShown} {
		if !strings.Contains(text, w) {
			t.Fatalf("confirmation lacks %q: %s", w, text)
		}
	}
	d.do("approve", chromedp.Click(css("#approve")), chromedp.WaitVisible(css("p.notice")))
	if text := d.get("done", chromedp.Text(css("main"))); !strings.Contains(text, "You can return to your terminal") {
		t.Fatalf("done page: %s", text)
	}
	if st, user := f.backend.state(duiCode); st != "approved" || user != "bob" {
		t.Fatalf("state %q by %q", st, user)
	}
}
