package web

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// homeMount serves the home page and answers sign-ins whose next page is
// /answered?…: the hooks of page.go.
type homeMount struct {
	testMount
	asked []string
}

func (m *homeMount) AnswerNext(c *gin.Context, next string) bool {
	m.asked = append(m.asked, next)
	if !strings.HasPrefix(next, "/answered?") {
		return false
	}
	sess, ok := CurrentSession(c)
	csrf, err := CSRFToken(c)
	if !ok || err != nil || csrf == "" {
		c.String(http.StatusInternalServerError, "no session or token in AnswerNext")
		return true
	}
	c.String(http.StatusOK, "answered %s for %s", next, sess.User.Username)
	return true
}

func newHomeMount() *homeMount {
	m := &homeMount{}
	m.fsys = fstest.MapFS{
		"card.html": {Data: []byte(`{{define "title"}}Card{{end}}{{define "content"}}<p id="v">{{.Data}}</p>{{end}}`)},
	}
	m.routes = []Route{
		{Method: http.MethodGet, Path: "/", Handler: func(c *gin.Context) {
			if _, ok := CurrentSession(c); !ok {
				RedirectToLogin(c)
				return
			}
			Render(c, http.StatusOK, "card.html", "mount home")
		}},
		{Method: http.MethodGet, Path: "/card", Handler: func(c *gin.Context) { RenderCard(c, http.StatusOK, "card.html", "a&b") }},
		{Method: http.MethodGet, Path: "/exec", Handler: func(c *gin.Context) {
			var buf bytes.Buffer
			u := identity.User{Username: "frame-user"}
			if err := ExecutePage(c, &buf, "card.html", "x<y", PageFrame{User: &u, RequestID: "rid-1", Card: true}); err != nil {
				Fail(c, http.StatusInternalServerError, "", err)
				return
			}
			if err := ExecutePage(c, &buf, "nope.html", nil, PageFrame{}); err == nil {
				Fail(c, http.StatusInternalServerError, "no error for a missing page", nil)
				return
			}
			c.Data(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
		}},
		{Method: http.MethodPost, Path: "/gone", Handler: func(c *gin.Context) {
			FailPage(c, http.StatusForbidden, "Not yours", "That is not yours.", "/back", nil)
		}},
		{Method: http.MethodGet, Path: "/later", Handler: func(c *gin.Context) { RedirectToLoginNext(c, "/resume?x=1") }},
		{Method: http.MethodGet, Path: "/form-action", Handler: func(c *gin.Context) {
			if err := AllowFormAction(c, "https://acs.example.com", "https://*.example.com"); err != nil {
				Fail(c, http.StatusInternalServerError, "", err)
				return
			}
			for _, bad := range []string{"", "https://a.example.com; script-src *", "https://a b", "'unsafe-inline'"} {
				if AllowFormAction(c, bad) == nil {
					Fail(c, http.StatusInternalServerError, "accepted "+bad, nil)
					return
				}
			}
			c.String(http.StatusOK, "ok")
		}},
	}
	return m
}

func TestMountServesHome(t *testing.T) {
	// Without such a Mount, / is the server's account page.
	e := newEnv(t)
	b := e.browser(t)
	b.login("bob", testPassword, "/")
	if body := b.get("/").Body.String(); !strings.Contains(body, `id="username">bob<`) || !strings.Contains(body, `action="/logout"`) {
		t.Errorf("account page:\n%s", body)
	}
	m := newHomeMount()
	e = newEnv(t, func(_ *Config, d *Deps) { d.Mounts = []Mount{m} })
	b = e.browser(t)
	if rec := b.get("/"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Errorf("mount home signed out: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	b.login("bob", testPassword, "/")
	if body := b.get("/").Body.String(); !strings.Contains(body, `<p id="v">mount home</p>`) || strings.Contains(body, `id="username"`) {
		t.Errorf("the Mount's home page:\n%s", body)
	}
}

func TestNextAnswerer(t *testing.T) {
	m := newHomeMount()
	e := newEnv(t, func(_ *Config, d *Deps) { d.Mounts = []Mount{m} })
	rec := e.browser(t).login("bob", testPassword, "/answered?role=x")
	if rec.Code != http.StatusOK || rec.Body.String() != "answered /answered?role=x for bob" {
		t.Errorf("answered sign-in: %d %q", rec.Code, rec.Body.String())
	}
	rec = e.browser(t).login("bob", testPassword, "/elsewhere")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/elsewhere" {
		t.Errorf("sign-in the Mount does not answer: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := e.browser(t).login("bob", "wrong", "/answered?role=x"); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "answered /answered") {
		t.Errorf("failed sign-in answered: %d", rec.Code)
	}
	// A sign-in whose second factor is due is not the Mount's to answer.
	n := len(m.asked)
	e = newEnv(t, func(_ *Config, d *Deps) {
		d.Mounts = []Mount{m}
		d.SecondFactor = &fakeFactor{pending: store.PendingFactor}
	})
	if rec := e.browser(t).login("bob", testPassword, "/answered?role=x"); rec.Code != http.StatusSeeOther || len(m.asked) != n {
		t.Errorf("pending sign-in: %d, asked %v", rec.Code, m.asked[n:])
	}
}

func TestMountPageHooks(t *testing.T) {
	m := newHomeMount()
	e := newEnv(t, func(_ *Config, d *Deps) { d.Mounts = []Mount{m} })
	b := e.browser(t)
	b.login("bob", testPassword, "/")

	card := b.get("/card").Body.String()
	if !strings.Contains(card, `<p id="v">a&amp;b</p>`) || !strings.Contains(card, `<main class="card">`) || strings.Contains(card, `class="app"`) {
		t.Errorf("RenderCard:\n%s", card)
	}
	wide := b.get("/").Body.String()
	if !strings.Contains(wide, `<main class="card wide">`) || !strings.Contains(wide, `<body class="app">`) {
		t.Errorf("Render:\n%s", wide)
	}
	exec := b.get("/exec").Body.String()
	if !strings.Contains(exec, `<p id="v">x&lt;y</p>`) || !strings.Contains(exec, "frame-user") || !strings.Contains(exec, "rid-1") {
		t.Errorf("ExecutePage:\n%s", exec)
	}

	csrf := csrfFrom(t, wide+b.get("/logout").Body.String())
	rec := b.post("/gone", map[string][]string{"csrf_token": {csrf}})
	if body := rec.Body.String(); rec.Code != http.StatusForbidden || !strings.Contains(body, "Not yours") ||
		!strings.Contains(body, "That is not yours.") || !strings.Contains(body, `href="/back"`) {
		t.Errorf("FailPage: %d\n%s", rec.Code, body)
	}

	if rec := b.get("/form-action"); rec.Code != http.StatusOK ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "form-action 'self' https://acs.example.com https://*.example.com;") {
		t.Errorf("AllowFormAction: %d %q %s", rec.Code, rec.Header().Get("Content-Security-Policy"), rec.Body)
	}

	if rec := e.browser(t).get("/later"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != loginURL("/resume?x=1") {
		t.Errorf("RedirectToLoginNext: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}
