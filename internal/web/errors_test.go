package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/store"
)

// TestErrorPageHeader: an error page keeps the header of the signed-in
// pages (the user's name and the Mounts' links) when the browser has a
// session, on the server's own routes (a 404 has no route, so no session
// was loaded) and on a Mount's; it shows no user without one, and none
// for a session store failure. The request ID appears once.
func TestErrorPageHeader(t *testing.T) {
	e := newMountEnv(t)
	anon := e.browser(t)
	bobB := e.browser(t)
	if rec := bobB.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	const who, link = `<span class="who">bob</span>`, `<a href="/sub">Sub</a>`
	for _, tc := range []struct {
		b        *browser
		path     string
		status   int
		signedIn bool
	}{
		{bobB, "/no-such-page", http.StatusNotFound, true},
		{bobB, "/sub/fail", http.StatusServiceUnavailable, true}, // the route loaded the session
		{anon, "/no-such-page", http.StatusNotFound, false},
		{anon, "/sub/fail", http.StatusServiceUnavailable, false},
	} {
		name := fmt.Sprintf("%s (signed in: %v)", tc.path, tc.signedIn)
		rec := tc.b.get(tc.path)
		body := rec.Body.String()
		if rec.Code != tc.status {
			t.Errorf("%s: %d, want %d", name, rec.Code, tc.status)
		}
		if has := strings.Contains(body, who) && strings.Contains(body, link); has != tc.signedIn {
			t.Errorf("%s: header with the user and the links: %v, want %v\n%s", name, has, tc.signedIn, body)
		}
		rid := rec.Header().Get("X-Request-ID")
		if n := strings.Count(body, rid); rid == "" || n != 1 {
			t.Errorf("%s: the request ID %q appears %d times, want once\n%s", name, rid, n, body)
		}
	}

	// The session store fails: the 503 page shows no user (nothing read).
	e.sessions.mu.Lock()
	e.sessions.err = fmt.Errorf("fake: %w", store.ErrUnavailable)
	e.sessions.mu.Unlock()
	rec := bobB.get("/sub")
	if rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), who) {
		t.Errorf("store down: %d, user shown: %v", rec.Code, strings.Contains(rec.Body.String(), who))
	}
	// The 404 of a signed-in browser whose store fails is still a 404.
	if rec := bobB.get("/no-such-page"); rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), who) {
		t.Errorf("404 with the store down: %d, user shown: %v", rec.Code, strings.Contains(rec.Body.String(), who))
	}
}
