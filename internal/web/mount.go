package web

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// Sub-applications (the admin UI) are served by the same engine as the
// sign-in pages, behind the same middleware, through a Mount. For every
// route of a Mount the server, before the route's handler:
//
//  1. loads the browser's session, if it sends a session cookie
//     (CurrentSession reads it; a session store failure is a 503 page);
//  2. for every method other than GET, HEAD and OPTIONS, checks CSRF: the
//     Go CrossOriginProtection (Sec-Fetch-Site / Origin) and the signed
//     double-submit token (csrf.go), bound to the session cookie. The token
//     comes in the X-Warden-CSRF header, or, for a route that is not an
//     API route, in the csrf_token field of a urlencoded or multipart form
//     (the form is parsed here, within the route's body limit). A failure
//     is a 403 ("Your form expired"; JSON on API paths), counted and audited.
//
// Authorization is the Mount's own business (it knows its groups).

// Route is one route of a Mount.
type Route struct {
	Method, Path string
	Handler      gin.HandlerFunc
	// MaxBody bounds the request body in bytes; 0 means the server default (64 KiB).
	MaxBody int64
	// API marks a JSON API route: its CSRF token is accepted only from the
	// X-Warden-CSRF header, never from a form field.
	API bool
	// CrossSite marks a route that other sites POST to by design (the SAML
	// HTTP-POST binding of /saml/sso): it skips the CSRF check. Such a
	// route must do nothing for the signed-in user that a cross-site GET
	// of the same route could not (the SAML HTTP-Redirect binding is a GET).
	CrossSite bool
	// Fresh marks a hand-off to AWS or a privileged act (an SP-initiated
	// SAML response, a device approval, an admin change): the session's
	// user is looked up afresh in the directory before the handler runs,
	// whatever the recheck interval. A user who is gone has no session
	// (and no access left); a directory outage is a 503.
	Fresh bool
	// Partial marks the routes that finish a sign-in (the second-factor
	// and enrolment pages): they see a session whose second factor is
	// still due (store.Session.Pending), which every other route treats
	// as no session.
	Partial bool
}

// Mount is a sub-application: its routes are added to the server's table.
// A Mount that serves GET / replaces the server's home page (page.go).
type Mount interface {
	Routes() []Route
}

// Templater is a Mount with HTML pages. Every *.html file at the root of
// fsys is a page rendered through the server's layout.html; files whose name
// starts with "_" are partials, parsed into every page of the Mount and never
// pages themselves. Page names must not collide with the server's own pages
// or another Mount's. funcs are added to the template functions ("asset",
// the hashed URL of a static file, and "valueAttr", a form field's
// value="…" attribute, are always present and cannot be replaced).
// A partial may define the layout block "head" (e.g. a <script src>).
type Templater interface {
	Templates() (fsys fs.FS, funcs template.FuncMap)
}

// Navigator is a Mount that adds links to the page header for a signed-in
// user (the admin UI links itself for admins only).
type Navigator interface {
	Nav(u identity.User) []NavLink
}

// NavLink is one link in the page header.
type NavLink struct {
	Label, Path string
}

// CSRFHeader carries the CSRF token of API requests (and optionally of forms
// sent by script). Browsers do not let another origin set it without a CORS
// preflight, which Warden never grants.
const CSRFHeader = "X-Warden-CSRF"

// CSRFField is the form field of the CSRF token.
const CSRFField = csrfField

var errNoServer = errors.New("web: request not served by a web.Server")

// mountRoutes collects the routes of every Mount, with their middleware.
func (s *Server) mountRoutes() []mountedRoute {
	var out []mountedRoute
	for _, m := range s.mounts {
		for _, r := range m.Routes() {
			load := s.loadSession
			if r.Fresh {
				load = s.loadFreshSession(r.Path)
			}
			hs := []gin.HandlerFunc{markRoute(r), load, s.mountCSRF(r.API), r.Handler}
			if r.CrossSite {
				hs = []gin.HandlerFunc{markRoute(r), load, r.Handler}
			}
			out = append(out, mountedRoute{method: r.Method, path: r.Path, maxBody: r.MaxBody, handlers: hs})
		}
	}
	return out
}

// markRoute records whether the route is an API route (errors as JSON)
// and whether it accepts a pending session.
func markRoute(r Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		st := state(c)
		st.api, st.partial = r.API, r.Partial
		c.Next()
	}
}

// loadSession puts the browser's session (if any) into the request state.
func (s *Server) loadSession(c *gin.Context) {
	sess, token, err := s.currentSession(c)
	s.storeSession(c, sess, token, err)
}

// loadFreshSession is loadSession with a fresh directory look-up (Fresh
// routes); via names the route in the audit record of a revocation.
func (s *Server) loadFreshSession(via string) gin.HandlerFunc {
	return func(c *gin.Context) {
		sess, token, err := s.freshSession(c, via)
		s.storeSession(c, sess, token, err)
	}
}

// storeSession records the outcome of loading the session and goes on (a
// failure other than "no session" is answered with 503).
func (s *Server) storeSession(c *gin.Context, sess store.Session, token string, err error) {
	switch {
	case err == nil:
		st := state(c)
		st.session, st.token = &sess, token
	case errors.Is(err, errNoSession), errors.Is(err, store.ErrNotFound), errors.Is(err, errPending):
		state(c).pending = errors.Is(err, errPending)
		if ck, cerr := c.Request.Cookie(s.sessionCookieName()); cerr == nil {
			state(c).token = ck.Value // the binding of a CSRF token made before it ended
		}
	default:
		s.storeUnavailable(c, err)
		return
	}
	c.Next()
}

// mountCSRF checks the CSRF layers of an unsafe request to a mounted route.
func (s *Server) mountCSRF(api bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		switch c.Request.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			c.Next()
			return
		}
		got := c.Request.Header.Get(CSRFHeader)
		if got == "" && !api && isForm(c.Request) {
			if !s.parseMountForm(c) {
				return
			}
			got = c.Request.PostForm.Get(csrfField)
		}
		if err := s.checkCSRFToken(c, state(c).token, got); err != nil {
			s.csrfRejected(c, err, "")
			return
		}
		c.Next()
	}
}

func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data")
}

// parseMountForm parses a urlencoded or multipart body (held in memory: the
// body limit already bounds it). 413 over the limit, 400 when malformed.
func (s *Server) parseMountForm(c *gin.Context) bool {
	var err error
	if mt, _, _ := mime.ParseMediaType(c.Request.Header.Get("Content-Type")); mt == "multipart/form-data" {
		err = c.Request.ParseMultipartForm(s.bodyLimit(c))
	} else {
		err = c.Request.ParseForm()
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, multipart.ErrMessageTooLarge) {
		s.renderError(c, http.StatusRequestEntityTooLarge)
		return false
	}
	s.renderError(c, http.StatusBadRequest)
	return false
}

// serverOf returns the Server that serves c, if any.
func serverOf(c *gin.Context) *Server { return state(c).srv }

// CurrentSession returns the signed-in session of a request to a mounted
// route (loaded before the route's handler), or false when the browser is
// not signed in.
func CurrentSession(c *gin.Context) (store.Session, bool) {
	st := state(c)
	if st.session == nil {
		return store.Session{}, false
	}
	return *st.session, true
}

// CSRFToken returns the CSRF token for forms and the X-Warden-CSRF header
// of this browser, bound to its session cookie; it sets the CSRF cookie when
// the browser has none.
func CSRFToken(c *gin.Context) (string, error) {
	s := serverOf(c)
	if s == nil {
		return "", errNoServer
	}
	return s.ensureCSRF(c, state(c).token)
}

// ClientIP is the client address worked out by the middleware
// (trusted_proxies aware).
func ClientIP(c *gin.Context) string { return state(c).clientIP }

// RedirectToLogin sends the browser to the sign-in page, which returns to
// the current URL afterwards (303), and aborts the handler chain.
func RedirectToLogin(c *gin.Context) {
	if state(c).pending { // signed in, but the second factor is still due
		c.Redirect(http.StatusSeeOther, factorURL(c.Request.URL.RequestURI(), nil, false))
		c.Abort()
		return
	}
	c.Redirect(http.StatusSeeOther, loginURL(c.Request.URL.RequestURI()))
	c.Abort()
}

// Fail answers status with the shared error page (or, on API paths and for
// JSON clients, {"error", "request_id"}) showing publicMsg (the fixed text of
// status when empty), logs err (private detail, may be nil) with the
// request ID, and aborts the handler chain. publicMsg must hold no secret
// and no internal error text.
func Fail(c *gin.Context, status int, publicMsg string, err error) {
	s := serverOf(c)
	if s == nil {
		c.AbortWithStatus(status)
		return
	}
	if err != nil {
		s.logFailure(c, status, err)
	}
	heading, msg := publicText(status)
	if publicMsg != "" {
		msg = publicMsg
	}
	s.renderErrorPage(c, status, heading, msg, "")
}

// Render answers status with page (a page of a Templater Mount) through the
// layout. The template gets the layout's fields (.User, .CSRF, .RequestID,
// .Nav) and data as .Data. .CSRF is bound to the session cookie.
func Render(c *gin.Context, status int, page string, data any) {
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
	v := view{CSRF: csrf, Data: data, Wide: true, BodyClass: "app"}
	if sess, ok := CurrentSession(c); ok {
		v.User = &sess.User
	}
	s.render(c, status, page, v)
}

// nav is the header links for u from every Navigator Mount.
func (s *Server) nav(u identity.User) []NavLink {
	var out []NavLink
	for _, m := range s.mounts {
		if n, ok := m.(Navigator); ok {
			out = append(out, n.Nav(u)...)
		}
	}
	return out
}

// parseMountViews adds the pages of every Templater Mount to v.
func parseMountViews(v *views, base template.FuncMap, mounts []Mount) error {
	for i, m := range mounts {
		tm, ok := m.(Templater)
		if !ok {
			continue
		}
		fsys, extra := tm.Templates()
		if fsys == nil {
			return fmt.Errorf("web: mount %d: Templates returned no file system", i)
		}
		funcs := template.FuncMap{}
		for k, f := range extra {
			funcs[k] = f
		}
		for k, f := range base {
			funcs[k] = f
		}
		names, err := fs.Glob(fsys, "*.html")
		if err != nil {
			return fmt.Errorf("web: mount %d: templates: %w", i, err)
		}
		sort.Strings(names)
		var partials, pages []string
		for _, n := range names {
			if strings.HasPrefix(n, "_") {
				partials = append(partials, n)
			} else {
				pages = append(pages, n)
			}
		}
		for _, p := range pages {
			if _, dup := v.pages[p]; dup {
				return fmt.Errorf("web: mount %d: page %s already exists", i, p)
			}
			t, err := v.layout(funcs)
			if err != nil {
				return err
			}
			if t, err = t.ParseFS(fsys, append(append([]string(nil), partials...), p)...); err != nil {
				return fmt.Errorf("web: mount %d: parse template %s: %w", i, p, err)
			}
			v.pages[p] = t
		}
	}
	return nil
}
