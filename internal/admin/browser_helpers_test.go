package admin

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// adminBrowser is a headless Chromium for the admin browser tests: each
// step has its own deadline, and a failing step leaves a screenshot in
// the artifacts directory, named with prefix.
type adminBrowser struct {
	t               testing.TB
	chromium, shots string
	prefix          string
	ctx             context.Context
	cancel          func()
}

func newAdminBrowser(t testing.TB, chromium, shots, prefix string) *adminBrowser {
	b := &adminBrowser{t: t, chromium: chromium, shots: shots, prefix: prefix}
	b.restart()
	t.Cleanup(func() { b.cancel() })
	return b
}

// restart stops the browser and starts a fresh one (an empty profile:
// no cookies).
func (b *adminBrowser) restart() {
	if b.cancel != nil {
		b.cancel()
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(b.chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(b.t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	b.ctx, b.cancel = bctx, func() { cancelCtx(); cancelAlloc() }
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		b.t.Fatalf("start chromium: %v", err)
	}
}

func (b *adminBrowser) shot(name string) {
	sctx, scancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer scancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot failed: %v", err)
		return
	}
	p := filepath.Join(b.shots, b.prefix+strings.NewReplacer(" ", "-", "/", "-", `"`, "").Replace(name)+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot of the failure saved to %s", p)
}

func (b *adminBrowser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot(step)
		b.t.Fatalf("%s: %v", step, err)
	}
}

func (b *adminBrowser) get(step string, a chromedp.Action[string]) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.shot(step)
		b.t.Fatalf("%s: %v", step, err)
	}
	return v
}

func (b *adminBrowser) check(step string, cond bool, format string, args ...any) {
	b.t.Helper()
	if !cond {
		b.shot(step)
		b.t.Fatalf(step+": "+format, args...)
	}
}
