package web

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/templates"
)

// view is the data every template gets. Fields a page does not use stay empty.
type view struct {
	RequestID string
	CSRF      string
	User      *identity.User
	Wide      bool
	Nav       []NavLink // header links (Navigator mounts), filled in by render
	BodyClass string
	Data      any // a Mount's page data (Render)

	// login
	Next     string
	Username string
	Error    string
	Notice   string
	// logout: a sign-in that waits for its second factor
	Pending bool

	// error and account-state pages
	Heading   string
	Message   string
	Advice    string
	RetryLink string
}

// views holds the parsed pages; each page is layout.html plus its own file.
type views struct {
	pages map[string]*template.Template
	funcs template.FuncMap
}

// layout returns a fresh template holding layout.html, with funcs.
func (v *views) layout(funcs template.FuncMap) (*template.Template, error) {
	t, err := template.New("layout.html").Funcs(funcs).ParseFS(templates.FS, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	return t, nil
}

var pageFiles = []string{"login.html", "account.html", "logout.html", "error.html", "account_state.html",
	"password_change.html"}

func parseViews(a *assets, mounts []Mount) (*views, error) {
	funcs := template.FuncMap{"asset": a.url, "valueAttr": valueAttr}
	v := &views{pages: map[string]*template.Template{}, funcs: funcs}
	for _, p := range pageFiles {
		t, err := template.New(p).Funcs(funcs).ParseFS(templates.FS, "layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", p, err)
		}
		v.pages[p] = t
	}
	if err := parseMountViews(v, funcs, mounts); err != nil {
		return nil, err
	}
	return v, nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render executes a page into a buffer first, so that a template error
// never sends half a page: it becomes a logged 500.
func (s *Server) render(c *gin.Context, status int, page string, v view) {
	v.RequestID = state(c).id
	if v.User != nil && v.Nav == nil {
		v.Nav = s.nav(*v.User)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	t, ok := s.views.pages[page]
	var err error
	if !ok {
		err = fmt.Errorf("no page %q", page)
	} else {
		err = t.ExecuteTemplate(buf, "layout", v)
	}
	if err != nil {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "render page",
			slog.String("page", page), slog.String("err", err.Error()))
		if page != "error.html" {
			s.renderError(c, http.StatusInternalServerError)
			return
		}
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8",
			[]byte("Internal error. Request ID: "+v.RequestID+"\n"))
		c.Abort()
		return
	}
	// With its length, net/http sends the page as it is rather than in
	// chunks (fewer writes to the socket for a 10 KB SAML post page).
	c.Header("Content-Length", strconv.Itoa(buf.Len()))
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// valueAttr is the attribute value="v" of a form field. A base64 value (a
// SAMLResponse: 7 KB and more) is written as it is, its characters being
// safe in a quoted attribute; html/template's escaper would turn each + / =
// into an entity, character by character, a tenth of a console click's CPU.
// Anything else is escaped.
func valueAttr(v string) template.HTMLAttr {
	return template.HTMLAttr(`value="` + attrValue(v) + `"`)
}

// attrValue is what valueAttr puts between the quotes of value="…".
func attrValue(v string) string {
	for i := 0; i < len(v); i++ {
		if !base64Char[v[i]] {
			return html.EscapeString(v)
		}
	}
	return v
}

// base64Char: the characters of standard base64 (RFC 4648 §4).
var base64Char = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return t
}()
