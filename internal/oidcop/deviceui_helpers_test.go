package oidcop

// Test helpers of the device pages. Every name starts with "dui" so that
// they do not collide with the package's other tests.

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store/storetest"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

// duiClock is a settable clock.
type duiClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *duiClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *duiClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// duiAudit keeps the events recorded.
type duiAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *duiAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

// find returns the events of action.
func (a *duiAudit) find(action string) []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// duiOpenStore returns a Redis store: the real one when REDIS_ADDR is set
// (required under CI), else the embedded one.
func duiOpenStore(t testing.TB) *store.Store {
	t.Helper()
	return storetest.Open(t, "wdev")
}

// duiBrowser is an HTTP client with cookies that does not follow redirects.
func duiBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func duiBody(t testing.TB, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// duiFollow follows redirects from resp with GETs and returns the last response.
func duiFollow(t testing.TB, b *http.Client, resp *http.Response) *http.Response {
	t.Helper()
	for n := 0; resp.StatusCode >= 300 && resp.StatusCode < 400; n++ {
		if n > 10 {
			t.Fatal("redirect loop")
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp, err = b.Get(loc.String()); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

var (
	duiFormRE   = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	duiActionRE = regexp.MustCompile(`action="([^"]*)"`)
	duiInputRE  = regexp.MustCompile(`<input\b[^>]*>`)
	duiNameRE   = regexp.MustCompile(`\bname="([^"]*)"`)
	duiValueRE  = regexp.MustCompile(`\bvalue="([^"]*)"`)
)

// duiForm is one form of a page: its action and its inputs' values.
type duiForm struct {
	action string
	fields url.Values
}

// duiForms returns the forms of page by action.
func duiForms(page string) map[string]duiForm {
	out := map[string]duiForm{}
	for _, m := range duiFormRE.FindAllStringSubmatch(page, -1) {
		a := duiActionRE.FindStringSubmatch(m[1])
		if a == nil {
			continue
		}
		f := duiForm{action: html.UnescapeString(a[1]), fields: url.Values{}}
		for _, in := range duiInputRE.FindAllString(m[2], -1) {
			n := duiNameRE.FindStringSubmatch(in)
			if n == nil {
				continue
			}
			v := ""
			if vm := duiValueRE.FindStringSubmatch(in); vm != nil {
				v = html.UnescapeString(vm[1])
			}
			f.fields.Set(n[1], v)
		}
		out[f.action] = f
	}
	return out
}

// duiForm returns the form of page posting to action.
func duiFormOf(t testing.TB, page, action string) duiForm {
	t.Helper()
	f, ok := duiForms(page)[action]
	if !ok {
		t.Fatalf("no form to %s in page:\n%s", action, page)
	}
	return f
}

// duiPost submits fields to base+action and returns the response (not followed).
func duiPost(t testing.TB, b *http.Client, base, action string, fields url.Values) *http.Response {
	t.Helper()
	resp, err := b.PostForm(base+action, fields)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// duiGet GETs base+path (not followed).
func duiGet(t testing.TB, b *http.Client, base, path string) *http.Response {
	t.Helper()
	resp, err := b.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// duiSignIn signs b in as user with password pw, starting from the login
// page at loginPath, and returns the final page after the redirects.
func duiSignIn(t testing.TB, b *http.Client, base, loginPath, user, pw string) *http.Response {
	t.Helper()
	resp := duiFollow(t, b, duiGet(t, b, base, loginPath))
	page := duiBody(t, resp)
	f := duiFormOf(t, page, "/login")
	f.fields.Set("username", user)
	f.fields.Set("password", pw)
	resp = duiPost(t, b, base, "/login", f.fields)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: status %d: %s", user, resp.StatusCode, duiBody(t, resp))
	}
	return duiFollow(t, b, resp)
}

// duiWant fails unless page contains every one of wants.
func duiWant(t testing.TB, what, page string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(page, w) {
			t.Fatalf("%s: page lacks %q:\n%s", what, w, page)
		}
	}
}
