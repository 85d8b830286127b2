package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
)

// Hooks for Mounts that serve whole pages of the signed-in user (the
// portal): the home page, the password POST's own answer, pages in the
// small card, pre-rendered pages, error pages with a heading of their own
// and form targets outside this origin.

// homePath is the home page. A Mount that serves GET / replaces the
// server's own home page (account.html: who the user is, and sign-out).
const homePath = "/"

// mountServesHome reports whether a Mount has a route GET /.
func (s *Server) mountServesHome() bool {
	for _, m := range s.mounts {
		for _, r := range m.Routes() {
			if r.Method == http.MethodGet && r.Path == homePath {
				return true
			}
		}
	}
	return false
}

// NextAnswerer is a Mount that can answer the password POST of a sign-in
// with the page its next path leads to, rather than the redirect to next:
// one round trip fewer, and no second read of the session just made. The
// login handler asks every NextAnswerer in turn once a session is made that
// does not wait for a second factor.
type NextAnswerer interface {
	// AnswerNext answers c as a GET of next (SafeNext's: a local path and
	// its query) would be answered, and reports true; or, having written
	// nothing, reports false when next is not its own. The request is the
	// sign-in POST: CurrentSession is the session just made, its user as
	// the directory gave it a moment ago (as fresh as a Fresh route's), and
	// CSRFToken is bound to its cookie.
	AnswerNext(c *gin.Context, next string) bool
}

// answerNext asks the NextAnswerer Mounts to answer a sign-in whose next
// page is next, with the session just made (in the request state).
func (s *Server) answerNext(c *gin.Context, next string) bool {
	for _, m := range s.mounts {
		if a, ok := m.(NextAnswerer); ok && a.AnswerNext(c, next) {
			return true
		}
	}
	return false
}

// RenderCard is Render in the small centred card of the sign-in pages (a
// confirmation, a page that posts itself) rather than the wide frame of
// the application pages.
func RenderCard(c *gin.Context, status int, page string, data any) {
	renderMount(c, status, page, data, true)
}

func renderMount(c *gin.Context, status int, page string, data any, card bool) {
	s := serverOf(c)
	if s == nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	csrf, err := s.ensureCSRF(c, state(c).token)
	if err != nil {
		s.fail(c, http.StatusInternalServerError, err)
		return
	}
	v := view{CSRF: csrf, Data: data}
	if !card {
		v.Wide, v.BodyClass = true, "app"
	}
	if sess, ok := CurrentSession(c); ok {
		v.User = &sess.User
	}
	s.render(c, status, page, v)
}

// PageFrame is what the layout shows around a page that ExecutePage
// writes, in place of what a request would give it.
type PageFrame struct {
	User      *identity.User // the header's user; nil: signed out
	Nav       []NavLink      // the header's links (Nav gives a user's)
	RequestID string         // the footer's
	Card      bool           // as RenderCard; else as Render
}

// ExecutePage writes page (a page of a Templater Mount) through the layout
// into w, with data as .Data and f around it, as Render or RenderCard
// would for a request with f's user, links and request ID; .CSRF is empty.
// A Mount may so pre-render a page with placeholders and fill in the
// values per request (html/template escapes each value where it lands:
// the filler must escape the same way). c is any request the server serves.
func ExecutePage(c *gin.Context, w io.Writer, page string, data any, f PageFrame) error {
	s := serverOf(c)
	if s == nil {
		return errNoServer
	}
	t, ok := s.views.pages[page]
	if !ok {
		return fmt.Errorf("web: no page %q", page)
	}
	v := view{User: f.User, Nav: f.Nav, RequestID: f.RequestID, Data: data}
	if !f.Card {
		v.Wide, v.BodyClass = true, "app"
	}
	if v.User != nil && v.Nav == nil {
		v.Nav = s.nav(*v.User)
	}
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		return fmt.Errorf("web: page %s: %w", page, err)
	}
	return nil
}

// Nav is the header links the page of a request shows for u (every
// Navigator Mount's).
func Nav(c *gin.Context, u identity.User) []NavLink {
	s := serverOf(c)
	if s == nil {
		return nil
	}
	return s.nav(u)
}

// AttrValue is what the template function valueAttr puts between the
// quotes of value="…": a base64 value as it is, anything else escaped.
func AttrValue(v string) string { return attrValue(v) }

// FailPage is Fail with a heading of its own and a link back: heading and
// publicMsg are fixed public texts (no secret, no internal error text);
// back is a local path ("" for none). err, if any, is logged.
func FailPage(c *gin.Context, status int, heading, publicMsg, back string, err error) {
	s := serverOf(c)
	if s == nil {
		c.AbortWithStatus(status)
		return
	}
	if err != nil {
		s.logFailure(c, status, err)
	}
	s.renderErrorPage(c, status, heading, publicMsg, back)
}

// RedirectToLoginNext is RedirectToLogin returning to next (a local URL a
// GET can resume from) rather than to the current URL: for a POST whose
// session has ended.
func RedirectToLoginNext(c *gin.Context, next string) {
	if state(c).pending { // signed in, but the second factor is still due
		c.Redirect(http.StatusSeeOther, factorURL(next, nil, false))
		c.Abort()
		return
	}
	c.Redirect(http.StatusSeeOther, loginURL(next))
	c.Abort()
}

// AllowFormAction widens the Content-Security-Policy of this response so
// that its page may submit a form to sources too: CSP source expressions
// such as "https://signin.aws.amazon.com" or "https://*.example.com" (a SAML
// ACS and where it redirects to). Every page's policy allows forms to this
// origin only (form-action 'self'). Call it before rendering. A source that
// is not a single expression (empty, or with white space, ';' or ',') is an
// error, and nothing is changed.
func AllowFormAction(c *gin.Context, sources ...string) error {
	for _, src := range sources {
		if src == "" || strings.ContainsAny(src, " \t\r\n;,'\"") {
			return fmt.Errorf("web: form-action source %q: %w", src, errBadSource)
		}
	}
	if len(sources) == 0 {
		return nil
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
		"form-action 'self'", "form-action 'self' "+strings.Join(sources, " "), 1))
	return nil
}

var errBadSource = errors.New("not a CSP source expression")

// logFailure logs the private detail of a failed request (Fail, FailPage).
func (s *Server) logFailure(c *gin.Context, status int, err error) {
	level := slog.LevelWarn
	if status >= 500 && status != http.StatusServiceUnavailable {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request.Context(), level, "request failed",
		slog.Int("status", status), slog.String("err", err.Error()))
}
