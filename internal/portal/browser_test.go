package portal

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/testenv"
)

// acsRecorder stands in for the AWS sign-in endpoint: it keeps every form
// POSTed to it and answers with a small page.
type acsRecorder struct {
	mu    sync.Mutex
	posts []url.Values
	srv   *httptest.Server
}

func newACSRecorder(t testing.TB) *acsRecorder {
	r := &acsRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.ParseForm() != nil {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.posts = append(r.posts, req.PostForm)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>ACS</title><h1 id="acs">received</h1>`)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *acsRecorder) Posts() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.posts...)
}

// chrome is a headless Chromium for one test, with step helpers that fail
// the test (after a screenshot) on error.
type chrome struct {
	t   *testing.T
	ctx context.Context
}

func newChrome(t *testing.T) *chrome {
	t.Helper()
	chromium := testenv.Binary(t, "chromium")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &chrome{t: t, ctx: bctx}
}

func (b *chrome) shot(name string) {
	sctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot failed: %v", err)
		return
	}
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "warden-"+name+"-*.png")
	if err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(png)
	b.t.Logf("screenshot saved to %s", f.Name())
}

func (b *chrome) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed")
		b.t.Fatalf("%s: %v", step, err)
	}
}

func (b *chrome) str(step string, a chromedp.Action[string]) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.shot("failed")
		b.t.Fatalf("%s: %v", step, err)
	}
	return v
}

func (b *chrome) check(cond bool, format string, args ...any) {
	b.t.Helper()
	if !cond {
		b.shot("failed")
		b.t.Fatalf(format, args...)
	}
}

// key presses one key: a character or a kb constant (kb.ArrowDown).
func key(k string) chromedp.Action[chromedp.Void] { return chromedp.KeyEvent(k) }

// TestBrowserPortal: sign in, the portal lists the roles by account, the
// search filters as you type, the keyboard moves, and a Console click ends
// in the auto-submitted SAML POST at the ACS (a recorder here) with the
// response for exactly that role. A deep link with a destination (typed in,
// as a bookmark is) carries the RelayState.
func TestBrowserPortal(t *testing.T) {
	b := newChrome(t)
	acs := newACSRecorder(t)
	p := &fakeBackend{grants: map[string][]rolemap.Grant{"bob": bobGrants}, acs: acs.srv.URL + "/saml"}
	hs := httptest.NewUnstartedServer(nil)
	base := "http://" + hs.Listener.Addr().String()
	e := newEnv(t, withPublicURL(base), withBackend(p))
	hs.Config.Handler = e.h
	hs.Start()
	defer hs.Close()
	type css = chromedp.CSS

	b.do("sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "bob"),
		chromedp.SendKeys(css("#password"), testPassword),
		chromedp.Click(css(`button[type="submit"]`)),
		chromedp.WaitVisible(css("#role-search")), // visible: portal.js ran
	)
	accts := b.str("accounts", chromedp.Evaluate[string](`[...document.querySelectorAll(".account .acctname")].map(e => e.textContent).join(",")`))
	b.check(accts == "Analytics,prod,staging", "accounts %q", accts)
	roles := b.str("roles", chromedp.Evaluate[string](`[...document.querySelectorAll("li.role:not([hidden]) .rolename")].map(e => e.textContent).join(",")`))
	b.check(roles == "/team/Reader,ReadOnly,ViewOnly,PowerUser", "roles %q", roles)
	b.shot("portal")

	visible := `[...document.querySelectorAll("li.role")].filter(e => e.offsetParent !== null).map(e => e.querySelector("button.console").value).join(",")`
	b.do("/ focuses the search", chromedp.Click(css("h1")), key("/"))
	focused := b.str("focus", chromedp.Evaluate[string](`document.activeElement.id`))
	b.check(focused == "role-search", "after /, focus on %q", focused)

	// CDP delivers the "/" as a separate char event that the page's
	// preventDefault on keydown cannot stop (a real keypress is stopped):
	// clear what it typed.
	b.str("clear", chromedp.Evaluate[string](`document.getElementById("role-search").value = ""`))
	b.do("type stag", chromedp.SendKeys(css("#role-search"), "stag"))
	got := b.str("filtered", chromedp.Evaluate[string](visible))
	b.check(got == "arn:aws:iam::444455556666:role/PowerUser", "search stag shows %q", got)
	hiddenAccts := b.str("accounts hidden", chromedp.Evaluate[string](`[...document.querySelectorAll("section.account")].filter(e => e.hidden).length.toString()`))
	b.check(hiddenAccts == "2", "%s accounts hidden, want 2", hiddenAccts)

	b.do("search by account ID", key(kb.Escape), chromedp.SendKeys(css("#role-search"), "1111222"))
	got = b.str("filtered", chromedp.Evaluate[string](visible))
	b.check(got == "arn:aws:iam::111122223333:role/ReadOnly,arn:aws:iam::111122223333:role/ViewOnly", "search by ID shows %q", got)

	b.do("no match", chromedp.SendKeys(css("#role-search"), "zzz"), chromedp.WaitVisible(css("#no-match")))
	b.do("Escape clears", key(kb.Escape))
	got = b.str("all", chromedp.Evaluate[string](`document.querySelectorAll("li.role:not([hidden])").length.toString()`))
	b.check(got == "4", "after Escape %s roles shown", got)

	b.do("search prod read, arrows", chromedp.SendKeys(css("#role-search"), "prod read"), key(kb.ArrowDown))
	focused = b.str("focus", chromedp.Evaluate[string](`document.activeElement.value || document.activeElement.id`))
	b.check(focused == "arn:aws:iam::111122223333:role/ReadOnly", "ArrowDown focused %q", focused)
	b.do("arrow up returns to search", key(kb.ArrowUp))
	focused = b.str("focus", chromedp.Evaluate[string](`document.activeElement.id`))
	b.check(focused == "role-search", "ArrowUp focused %q", focused)

	// One match: Enter opens it; the SAML form posts itself to the ACS.
	b.do("Enter opens the only match", key(kb.Enter), chromedp.WaitVisible(css("#acs")))
	loc := b.str("location", chromedp.Location())
	b.check(strings.HasPrefix(loc, acs.srv.URL), "ended at %q, want the ACS", loc)
	posts := acs.Posts()
	b.check(len(posts) == 1, "%d POSTs at the ACS", len(posts))
	raw, err := base64.StdEncoding.DecodeString(posts[0].Get("SAMLResponse"))
	b.check(err == nil && strings.Contains(string(raw), `role="arn:aws:iam::111122223333:role/ReadOnly"`), "SAMLResponse %q %v", raw, err)
	b.check(posts[0].Get("RelayState") == "", "RelayState %q without a destination", posts[0].Get("RelayState"))

	// Clicking a Console button.
	b.do("click Console of staging/PowerUser",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#role-search")),
		chromedp.Click(css(`button.console[value="arn:aws:iam::444455556666:role/PowerUser"]`)),
		chromedp.WaitVisible(css("#acs")),
	)
	posts = acs.Posts()
	b.check(len(posts) == 2, "%d POSTs at the ACS", len(posts))
	raw, _ = base64.StdEncoding.DecodeString(posts[1].Get("SAMLResponse"))
	b.check(strings.Contains(string(raw), "role/PowerUser"), "SAMLResponse %q", raw)

	// A deep link with a destination, opened as a bookmark is.
	dest := "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards:"
	b.do("deep link", chromedp.Navigate(base+"/aws/console?role=prod/ViewOnly&destination="+url.QueryEscape(dest)),
		chromedp.WaitVisible(css("#acs")))
	posts = acs.Posts()
	b.check(len(posts) == 3 && posts[2].Get("RelayState") == dest, "deep link POST %v", posts[len(posts)-1])
	raw, _ = base64.StdEncoding.DecodeString(posts[2].Get("SAMLResponse"))
	b.check(strings.Contains(string(raw), "role/ViewOnly"), "SAMLResponse %q", raw)

	// A role bob does not hold: the 403 page, nothing posted.
	b.do("not held", chromedp.Navigate(base+"/aws/console?role=prod/AdministratorAccess"), chromedp.WaitVisible(css("main h1")))
	h1 := b.str("403 heading", chromedp.Text(css("main h1")))
	b.check(h1 == "Not your role", "heading %q", h1)
	b.check(len(acs.Posts()) == 3, "a POST for a role not held")

	var denied int
	for _, ev := range e.audit.Events() {
		if ev.Action == "aws.console" && ev.Result == "denied" {
			denied++
		}
	}
	b.check(denied == 1, "%d denied events", denied)
}
