package web

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// headMount records what its handlers saw: one GET route that counts its
// calls, one that streams, one with a HEAD route of its own, and a
// POST-only one.
type headMount struct {
	mu      sync.Mutex
	methods []string // the method each call of /h/count saw
}

func (m *headMount) Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/h/count", Handler: func(c *gin.Context) {
			m.mu.Lock()
			m.methods = append(m.methods, c.Request.Method)
			n := len(m.methods)
			m.mu.Unlock()
			c.Header("X-Calls", fmt.Sprint(n))
			c.String(http.StatusOK, "call %d of a GET handler\n", n)
		}},
		{Method: http.MethodGet, Path: "/h/stream", Handler: func(c *gin.Context) {
			c.Header("Content-Type", "text/plain")
			_, _ = c.Writer.WriteString("first part\n")
			c.Writer.Flush()
			_, _ = c.Writer.WriteString("second part\n")
		}},
		{Method: http.MethodGet, Path: "/h/own", Handler: func(c *gin.Context) { c.String(http.StatusOK, "get") }},
		{Method: http.MethodHead, Path: "/h/own", Handler: func(c *gin.Context) {
			c.Header("X-Own-Head", "yes")
			c.Status(http.StatusNoContent)
		}},
		{Method: http.MethodPost, Path: "/h/post", Handler: func(c *gin.Context) { c.String(http.StatusOK, "posted") }},
		{Method: http.MethodGet, Path: "/h/fail", Handler: func(c *gin.Context) {
			Fail(c, http.StatusConflict, "Stale.", nil)
		}},
	}
}

func (m *headMount) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.methods...)
}

func newHeadEnv(t *testing.T) (*env, *headMount) {
	t.Helper()
	m := &headMount{}
	return newEnv(t, func(_ *Config, d *Deps) { d.Mounts = []Mount{m} }), m
}

// TestHeadRoutes: every GET route, the server's own and the Mounts', has a
// HEAD route; a path without GET has none (405), and a Mount's own HEAD
// route is kept. Routes() lists the HEAD routes of their own only.
func TestHeadRoutes(t *testing.T) {
	e, _ := newHeadEnv(t)
	listed := map[string]bool{}
	for _, r := range e.srv.Routes() {
		listed[r.Method+" "+r.Path] = true
	}
	for _, want := range []string{"HEAD /h/own", "HEAD /static/:name", "GET /h/count"} {
		if !listed[want] {
			t.Errorf("Routes() lacks %s", want)
		}
	}
	if listed["HEAD /h/count"] || listed["HEAD /login"] {
		t.Error("Routes() lists the HEAD routes made from GET routes")
	}
	byPath := map[string]map[string]bool{}
	for _, r := range e.srv.engine.Routes() {
		if byPath[r.Path] == nil {
			byPath[r.Path] = map[string]bool{}
		}
		byPath[r.Path][r.Method] = true
	}
	gets := 0
	for path, ms := range byPath {
		if ms[http.MethodGet] {
			gets++
			if !ms[http.MethodHead] {
				t.Errorf("GET %s has no HEAD", path)
			}
		}
		if ms[http.MethodHead] && !ms[http.MethodGet] {
			t.Errorf("HEAD %s without GET", path)
		}
	}
	if gets < 8 {
		t.Fatalf("only %d GET routes: %v", gets, byPath)
	}
	b := e.browser(t)
	if rec := b.do(httptest.NewRequest(http.MethodHead, "/h/post", nil)); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("HEAD of a POST-only route: %d, want 405", rec.Code)
	}
	rec := b.do(httptest.NewRequest(http.MethodHead, "/h/own", nil))
	if rec.Code != http.StatusNoContent || rec.Header().Get("X-Own-Head") != "yes" {
		t.Errorf("a Mount's own HEAD route: %d %v", rec.Code, rec.Header())
	}
}

// TestHeadRunsTheGET: the handler runs once per HEAD, sees a GET (a handler
// that dispatches on the method answers as for GET), and the access log
// still says HEAD.
func TestHeadRunsTheGET(t *testing.T) {
	e, m := newHeadEnv(t)
	b := e.browser(t)
	get := b.get("/h/count")
	head := b.do(httptest.NewRequest(http.MethodHead, "/h/count", nil))
	if get.Code != http.StatusOK || head.Code != http.StatusOK {
		t.Fatalf("GET %d, HEAD %d", get.Code, head.Code)
	}
	if got := m.seen(); len(got) != 2 || got[0] != http.MethodGet || got[1] != http.MethodGet {
		t.Errorf("the handler saw %v, want [GET GET]", got)
	}
	if head.Header().Get("X-Calls") != "2" || head.Body.Len() != 0 {
		t.Errorf("HEAD: X-Calls %q, body %q", head.Header().Get("X-Calls"), head.Body.String())
	}
	if want := fmt.Sprint(len("call 2 of a GET handler\n")); head.Header().Get("Content-Length") != want {
		t.Errorf("HEAD Content-Length %q, want %s (the GET's body)", head.Header().Get("Content-Length"), want)
	}
	// an error answer is logged (never sampled away) with the real method
	if rec := b.do(httptest.NewRequest(http.MethodHead, "/h/fail", nil)); rec.Code != http.StatusConflict || rec.Body.Len() != 0 {
		t.Errorf("HEAD /h/fail: %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(e.logs.String(), `"method":"HEAD","path":"/h/fail"`) &&
		!strings.Contains(e.logs.String(), `"path":"/h/fail","method":"HEAD"`) {
		t.Errorf("no access log line of HEAD /h/fail:\n%s", e.logs.String())
	}
}

// rawResponse sends req on a fresh connection to addr and returns the
// status line, the headers and every byte after them until the server
// closes the connection.
func rawResponse(t *testing.T, addr, req string) (string, http.Header, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	hdr := http.Header{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("headers: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		hdr.Add(k, strings.TrimSpace(v))
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("after the headers: %v", err)
	}
	return strings.TrimSpace(status), hdr, rest
}

// TestHeadOnTheWire: over a real connection a HEAD answers with the GET's
// status and headers, Content-Length the length of the GET's body, and not
// one byte of body (net/http and the browser see the same), for pages,
// JSON, redirects, errors, static files and a streamed answer.
func TestHeadOnTheWire(t *testing.T) {
	e, _ := newHeadEnv(t)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	// headers that differ between any two answers
	differ := map[string]bool{"Date": true, "X-Request-Id": true, "Set-Cookie": true, "X-Calls": true}
	css, err := e.srv.assets.url("warden.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/login", "/healthz", "/", "/no-such-page", "/h/count", "/h/fail", "/h/stream", css} {
		req := func(method string) string {
			return method + " " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n"
		}
		gStatus, gHdr, gBody := rawResponse(t, addr, req(http.MethodGet))
		hStatus, hHdr, hBody := rawResponse(t, addr, req(http.MethodHead))
		if hStatus != gStatus {
			t.Errorf("%s: HEAD %q, GET %q", path, hStatus, gStatus)
		}
		if len(hBody) != 0 {
			t.Errorf("%s: HEAD sent a body of %d bytes: %q", path, len(hBody), hBody)
		}
		for k := range gHdr {
			if !differ[k] && k != "Transfer-Encoding" && strings.Join(hHdr[k], ",") != strings.Join(gHdr[k], ",") {
				t.Errorf("%s: %s: HEAD %q, GET %q", path, k, hHdr[k], gHdr[k])
			}
		}
		for k := range hHdr {
			if _, ok := gHdr[k]; !ok && !differ[k] {
				t.Errorf("%s: HEAD has %s: %q, GET has none", path, k, hHdr[k])
			}
		}
		if path == "/h/stream" {
			if gHdr.Get("Transfer-Encoding") != "chunked" || hHdr.Get("Content-Length") != "" {
				t.Errorf("streamed: GET Transfer-Encoding %q, HEAD Content-Length %q", gHdr.Get("Transfer-Encoding"), hHdr.Get("Content-Length"))
			}
			continue
		}
		if cl := hHdr.Get("Content-Length"); cl != fmt.Sprint(len(gBody)) {
			t.Errorf("%s: HEAD Content-Length %q, the GET's body has %d bytes", path, cl, len(gBody))
		}
	}
}

// TestHeadIsSafe: a HEAD needs no CSRF token and changes nothing a GET
// would not: it does not sign out (GET /logout only asks).
func TestHeadIsSafe(t *testing.T) {
	e, _ := newHeadEnv(t)
	b := e.browser(t)
	if rec := b.login("bob", testPassword, "/"); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	rec := b.do(httptest.NewRequest(http.MethodHead, "/logout", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /logout: %d %q", rec.Code, rec.Body.String())
	}
	if rec := b.get("/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<span class="who">bob</span>`) {
		t.Errorf("after HEAD /logout the home page is %d; the session must live on", rec.Code)
	}
	if rec := b.do(httptest.NewRequest(http.MethodHead, "/?next="+url.QueryEscape("/x"), nil)); rec.Code != http.StatusOK {
		t.Errorf("HEAD / signed in: %d", rec.Code)
	}
}
