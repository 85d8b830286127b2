package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// testMount is a small sub-application that exercises every hook.
type testMount struct {
	routes []Route
	fsys   fs.FS
}

func (m *testMount) Routes() []Route { return m.routes }
func (m *testMount) Templates() (fs.FS, template.FuncMap) {
	return m.fsys, template.FuncMap{"shout": strings.ToUpper}
}
func (m *testMount) Nav(u identity.User) []NavLink {
	if u.Username == "bob" {
		return []NavLink{{Label: "Sub", Path: "/sub"}}
	}
	return nil
}

func newMountEnv(t *testing.T) *env {
	t.Helper()
	whoami := func(c *gin.Context) {
		sess, ok := CurrentSession(c)
		if !ok {
			RedirectToLogin(c)
			return
		}
		c.String(http.StatusOK, "user=%s ip=%s", sess.User.Username, ClientIP(c))
	}
	echo := func(c *gin.Context) {
		body, err := io.ReadAll(c.Request.Body)
		if err != nil {
			Fail(c, http.StatusRequestEntityTooLarge, "", err)
			return
		}
		name := c.Request.PostFormValue("name")
		if c.Request.MultipartForm != nil {
			if fh := c.Request.MultipartForm.File["file"]; len(fh) == 1 {
				name += fmt.Sprintf(" file=%d", fh[0].Size)
			}
		}
		c.String(http.StatusOK, "ok name=%s body=%d", name, len(body))
	}
	m := &testMount{
		fsys: fstest.MapFS{
			"_part.html": {Data: []byte(`{{define "head"}}<meta name="warden-csrf" content="{{.CSRF}}">{{end}}{{define "sub"}}[{{shout .Data.Word}}]{{end}}`)},
			"sub.html":   {Data: []byte(`{{define "title"}}Sub{{end}}{{define "content"}}<p id="data">{{template "sub" .}}</p><form><input type="hidden" name="csrf_token" value="{{.CSRF}}"></form>{{end}}`)},
		},
		routes: []Route{
			{Method: http.MethodGet, Path: "/sub", Handler: whoami},
			{Method: http.MethodGet, Path: "/sub/page", Handler: func(c *gin.Context) {
				Render(c, http.StatusOK, "sub.html", struct{ Word string }{"hello"})
			}},
			{Method: http.MethodGet, Path: "/sub/fail", Handler: func(c *gin.Context) {
				Fail(c, http.StatusServiceUnavailable, "The thing is down.", errors.New("secret-detail"))
			}},
			{Method: http.MethodGet, Path: "/sub/api/fail", API: true, Handler: func(c *gin.Context) {
				Fail(c, http.StatusConflict, "Stale.", nil)
			}},
			{Method: http.MethodGet, Path: "/sub/api/csrf", API: true, Handler: func(c *gin.Context) {
				tok, err := CSRFToken(c)
				if err != nil {
					Fail(c, http.StatusInternalServerError, "", err)
					return
				}
				c.JSON(http.StatusOK, gin.H{"token": tok})
			}},
			{Method: http.MethodPost, Path: "/sub/form", Handler: echo},
			{Method: http.MethodPost, Path: "/sub/big", Handler: echo, MaxBody: 1 << 20},
			{Method: http.MethodPut, Path: "/sub/api/thing", API: true, Handler: echo},
		},
	}
	return newEnv(t, func(_ *Config, d *Deps) { d.Mounts = []Mount{m} })
}

func TestMountSessionAndLogin(t *testing.T) {
	e := newMountEnv(t)
	b := e.browser(t)
	rec := b.get("/sub?x=1")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?next=/sub%3Fx%3D1" {
		t.Fatalf("anonymous: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	b.login("bob", testPassword, "/")
	rec = b.get("/sub")
	if rec.Code != http.StatusOK || rec.Body.String() != "user=bob ip=198.51.100.7" {
		t.Fatalf("signed in: %d %q", rec.Code, rec.Body.String())
	}
	// The Navigator's link appears on the server's own pages too.
	if home := b.get("/").Body.String(); !strings.Contains(home, `<a href="/sub">Sub</a>`) {
		t.Errorf("home lacks the nav link:\n%s", home)
	}
	// A store failure while loading the session is a 503, not a redirect.
	e.sessions.mu.Lock()
	e.sessions.err = fmt.Errorf("fake: %w", store.ErrUnavailable)
	e.sessions.mu.Unlock()
	if rec := b.get("/sub"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d", rec.Code)
	}
}

func TestMountRenderAndFail(t *testing.T) {
	e := newMountEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	rec := b.get("/sub/page")
	body := rec.Body.String()
	for _, want := range []string{`<p id="data">[HELLO]</p>`, `<title>Sub · Warden</title>`, `<meta name="warden-csrf" content="`,
		`<span class="who">bob</span>`, `class="app"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	rec = b.get("/sub/fail")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "The thing is down.") ||
		strings.Contains(rec.Body.String(), "secret-detail") || !strings.Contains(rec.Body.String(), rec.Header().Get("X-Request-ID")) {
		t.Errorf("fail page: %d\n%s", rec.Code, rec.Body.String())
	}
	if !strings.Contains(e.logs.String(), "secret-detail") {
		t.Error("the private detail was not logged")
	}
	rec = b.get("/sub/api/fail")
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusConflict ||
		got["error"] != "Stale." || got["request_id"] != rec.Header().Get("X-Request-ID") {
		t.Errorf("api fail: %d %s", rec.Code, rec.Body.String())
	}
}

func TestMountCSRF(t *testing.T) {
	e := newMountEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	token := csrfFrom(t, b.get("/sub/page").Body.String())
	var api struct{ Token string }
	if err := json.Unmarshal(b.get("/sub/api/csrf").Body.Bytes(), &api); err != nil || api.Token != token {
		t.Fatalf("api token %q, page token %q (%v)", api.Token, token, err)
	}
	put := func(hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPut, "/sub/api/thing", strings.NewReader(`{"a":1}`))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return b.do(req)
	}
	for _, tc := range []struct {
		name string
		do   func() *httptest.ResponseRecorder
		want int
	}{
		{"form, no token", func() *httptest.ResponseRecorder { return b.post("/sub/form", url.Values{"name": {"x"}}) }, 403},
		{"form, wrong token", func() *httptest.ResponseRecorder {
			return b.post("/sub/form", url.Values{"name": {"x"}, "csrf_token": {"AAAA"}})
		}, 403},
		{"form, token", func() *httptest.ResponseRecorder {
			return b.post("/sub/form", url.Values{"name": {"x"}, "csrf_token": {token}})
		}, 200},
		{"form, header token", func() *httptest.ResponseRecorder {
			return b.post("/sub/form", url.Values{"name": {"x"}}, CSRFHeader, token)
		}, 200},
		{"form, cross-site with token", func() *httptest.ResponseRecorder {
			return b.post("/sub/form", url.Values{"csrf_token": {token}}, "Sec-Fetch-Site", "cross-site")
		}, 403},
		{"api, no header", func() *httptest.ResponseRecorder { return put() }, 403},
		{"api, header", func() *httptest.ResponseRecorder { return put(CSRFHeader, token) }, 200},
		{"api, header from another origin", func() *httptest.ResponseRecorder {
			return put(CSRFHeader, token, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
		}, 403},
		{"api, form field not accepted", func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPut, "/sub/api/thing", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return b.do(req)
		}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.do()
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body.String())
			}
			if tc.want == 403 && strings.Contains(rec.Body.String(), "ok name") {
				t.Error("the handler ran")
			}
		})
	}
	var rejects int
	for _, ev := range e.audit.Events() {
		if ev.Action == "csrf.reject" {
			rejects++
			if ev.Actor != "bob" {
				t.Errorf("csrf.reject actor %q, want bob", ev.Actor)
			}
		}
	}
	if rejects != 6 {
		t.Errorf("%d csrf.reject events, want 6", rejects)
	}
	// A token of another session does not work.
	other := e.browser(t)
	other.login("bob", testPassword, "/")
	if rec := other.post("/sub/form", url.Values{"csrf_token": {token}}); rec.Code != 403 {
		t.Errorf("another session's token: %d", rec.Code)
	}
}

func TestMountBodyLimitAndMultipart(t *testing.T) {
	e := newMountEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	token := csrfFrom(t, b.get("/sub/page").Body.String())
	multi := func(path string, size int) *httptest.ResponseRecorder {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("csrf_token", token)
		_ = w.WriteField("name", "up")
		fw, _ := w.CreateFormFile("file", "rules.yaml")
		_, _ = fw.Write(bytes.Repeat([]byte("a"), size))
		_ = w.Close()
		req := httptest.NewRequest(http.MethodPost, path, &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		return b.do(req)
	}
	if rec := multi("/sub/big", 200<<10); rec.Code != 200 || !strings.Contains(rec.Body.String(), "name=up file=204800") {
		t.Errorf("200 KiB under a 1 MiB limit: %d %s", rec.Code, rec.Body.String())
	}
	if rec := multi("/sub/form", 200<<10); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("200 KiB under the default limit: %d", rec.Code)
	}
	if rec := multi("/sub/big", 2<<20); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB under a 1 MiB limit: %d", rec.Code)
	}
	// The limit holds without a Content-Length, too.
	req := httptest.NewRequest(http.MethodPut, "/sub/api/thing", io.MultiReader(strings.NewReader(`"`), bytes.NewReader(make([]byte, 100<<10))))
	req.ContentLength = -1
	req.Header.Set(CSRFHeader, token)
	if rec := b.do(req); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 100 KiB: %d", rec.Code)
	}
}

func TestMountRejectsBadMounts(t *testing.T) {
	h := func(*gin.Context) {}
	page := fstest.MapFS{"login.html": {Data: []byte(`{{define "content"}}x{{end}}`)}}
	for name, m := range map[string]Mount{
		"conflicts with /login": &testMount{routes: []Route{{Method: "GET", Path: "/login", Handler: h}}},
		"duplicate route": &testMount{routes: []Route{{Method: "GET", Path: "/a", Handler: h},
			{Method: "GET", Path: "/a", Handler: h}}},
		"no handler":           &testMount{routes: []Route{{Method: "GET", Path: "/a"}}},
		"no method":            &testMount{routes: []Route{{Path: "/a", Handler: h}}},
		"page name collision":  &testMount{fsys: page},
		"template parse error": &testMount{fsys: fstest.MapFS{"x.html": {Data: []byte(`{{define "content"}}{{.Data.}}{{end}}`)}}},
		"no templates fs":      &testMount{},
	} {
		t.Run(name, func(t *testing.T) {
			deps := Deps{Directory: &fakeDir{}, Sessions: newFakeSessions(nil), Limiter: newFakeLimiter(),
				CSRFKey: bytes.Repeat([]byte{7}, 32), Mounts: []Mount{m}}
			if _, err := New(Config{PublicURL: "http://warden.test"}, deps); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
