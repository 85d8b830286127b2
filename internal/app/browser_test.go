package app

import (
	"context"
	"encoding/base64"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/testenv"
)

// awsSignin stands in for AWS sign-in inside Chromium (the Fetch domain of
// the DevTools protocol intercepts the requests; nothing leaves the
// machine): it keeps what was POSTed to https://signin.aws.amazon.com/saml
// and answers, like AWS, with a redirect into the console (to the
// RelayState, or the console home), which it answers with a small page.
type awsSignin struct {
	mu    sync.Mutex
	posts []url.Values
	urls  []string
}

func (a *awsSignin) serve(ctx context.Context, t *testing.T) error {
	events := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "https://signin.aws.amazon.com/*"},
		{URLPattern: "https://console.aws.amazon.com/*"},
		{URLPattern: "https://*.console.aws.amazon.com/*"},
	}}); err != nil {
		return err
	}
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			a.mu.Lock()
			a.urls = append(a.urls, ev.Request.Method+" "+ev.Request.URL)
			a.mu.Unlock()
			reply := fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}},
				Body:            []byte(`<!doctype html><title>AWS console</title><h1 id="aws-console">AWS console</h1>`)}
			if ev.Request.Method == "POST" && strings.HasPrefix(ev.Request.URL, "https://signin.aws.amazon.com/saml") {
				var body []byte
				for _, e := range ev.Request.PostDataEntries {
					body = append(body, e.Bytes...)
				}
				form, _ := url.ParseQuery(string(body))
				a.mu.Lock()
				a.posts = append(a.posts, form)
				a.mu.Unlock()
				to := form.Get("RelayState")
				if to == "" {
					to = "https://console.aws.amazon.com/console/home"
				}
				reply = fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 302,
					ResponseHeaders: []*fetch.HeaderEntry{{Name: "Location", Value: to}}}
			}
			if _, err := chromedp.Call(ctx, fetch.FulfillRequest, reply); err != nil {
				t.Logf("fulfill %s: %v", ev.Request.URL, err)
			}
		}
	}()
	return nil
}

func (a *awsSignin) Posts() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.posts...)
}

func (a *awsSignin) URLs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.urls...)
}

// TestBrowserPortalSAML drives Chromium through the whole stack (real
// OpenLDAP, Redis, key ring and SAML IdP): bob signs in, filters the portal,
// clicks Console; the page posts the signed response by itself to the AWS
// ACS, whose redirect into the console the CSP must allow too.
func TestBrowserPortalSAML(t *testing.T) {
	t.Parallel() // its own Chromium, wardend and Redis keys
	chromium := testenv.Binary(t, "chromium")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	o := portalOptions(t)
	base := startApp(t, o)
	nb := newBrowser(t, base) // wait until the seeded rules are compiled
	nb.signIn("bob", os.Getenv("LDAP_USER_PW"))
	nb.waitRoles()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900))
	defer cancelAlloc()
	bctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	aws := &awsSignin{}
	if err := aws.serve(bctx, t); err != nil {
		t.Fatal(err)
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v (requests to AWS: %v)", step, err, aws.URLs())
		}
	}
	str := func(step string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	type css = chromedp.CSS

	do("sign in",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "bob"),
		chromedp.SendKeys(css("#password"), os.Getenv("LDAP_USER_PW")),
		chromedp.Click(css(`button[type="submit"]`)),
		chromedp.WaitVisible(css("#role-search")),
	)
	do("search", chromedp.SendKeys(css("#role-search"), "prod read"))
	shown := str("shown", chromedp.Evaluate[string](`[...document.querySelectorAll("li.role:not([hidden]) button.console")].map(b => b.value).join(",")`))
	if shown != "arn:aws:iam::111122223333:role/ReadOnly" {
		t.Fatalf("search 'prod read' shows %q", shown)
	}
	do("Console", chromedp.Click(css(`button.console[value="arn:aws:iam::111122223333:role/ReadOnly"]`)),
		chromedp.WaitVisible(css("#aws-console")))
	loc := str("location", chromedp.Location())
	if loc != "https://console.aws.amazon.com/console/home" {
		t.Errorf("ended at %q", loc)
	}
	posts := aws.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d POSTs to AWS sign-in (%v)", len(posts), aws.URLs())
	}
	raw, err := base64.StdEncoding.DecodeString(posts[0].Get("SAMLResponse"))
	if err != nil || !strings.Contains(string(raw), "arn:aws:iam::111122223333:role/ReadOnly,arn:aws:iam::111122223333:saml-provider/warden") ||
		strings.Contains(string(raw), "role/ViewOnly") {
		t.Errorf("SAMLResponse (%v):\n%s", err, raw)
	}

	// a deep link with a regional console destination, typed as a bookmark
	dest := "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
	do("deep link", chromedp.Navigate(base+"/aws/console?role=staging/PowerUser&destination="+url.QueryEscape(dest)),
		chromedp.WaitVisible(css("#aws-console")))
	if loc := str("location", chromedp.Location()); loc != dest {
		t.Errorf("deep link ended at %q", loc)
	}
	posts = aws.Posts()
	if len(posts) != 2 || posts[1].Get("RelayState") != dest {
		t.Fatalf("deep link POST %v", posts)
	}
	raw, _ = base64.StdEncoding.DecodeString(posts[1].Get("SAMLResponse"))
	if !strings.Contains(string(raw), "role/PowerUser,") || !strings.Contains(string(raw), ">28800<") {
		t.Errorf("deep link SAMLResponse:\n%s", raw)
	}
}
