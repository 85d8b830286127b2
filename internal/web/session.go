package web

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

func (s *Server) sessionCookieName() string {
	if s.https {
		return "__Host-" + s.cfg.CookieName // RFC 6265bis 4.1.3.2: Secure, Path=/, no Domain
	}
	return s.cfg.CookieName
}

// setSessionCookie sets the session cookie; it lives no longer than the
// session's absolute lifetime (a browser-session cookie when that is unknown).
func (s *Server) setSessionCookie(c *gin.Context, token string, expires time.Time) {
	maxAge := 0
	if !expires.IsZero() {
		maxAge = int(expires.Sub(s.clock.Now()) / time.Second)
		if maxAge <= 0 {
			maxAge = -1
		}
	}
	s.setCookie(c, s.sessionCookieName(), token, maxAge)
}

func (s *Server) clearSessionCookie(c *gin.Context) {
	s.setCookie(c, s.sessionCookieName(), "", -1)
}

// errNoSession: the browser sent no session cookie.
var errNoSession = errors.New("no session cookie")

// currentSession returns the browser's session and its cookie value:
// errNoSession without a cookie, store.ErrNotFound when it has ended (the
// cookie is cleared then), or a store failure.
func (s *Server) currentSession(c *gin.Context) (store.Session, string, error) {
	sess, token, err := s.storedSession(c)
	if err == nil && s.due(sess) {
		sess, err = s.recheck(c, token, sess, false, "session")
	}
	return sess, token, err
}

// freshSession is currentSession with a fresh directory look-up of the
// user, whatever the recheck interval: for hand-offs to AWS and privileged
// acts. An outage of the directory is an error (503), never a refusal.
func (s *Server) freshSession(c *gin.Context, via string) (store.Session, string, error) {
	sess, token, err := s.storedSession(c)
	if err == nil && s.users != nil {
		sess, err = s.recheck(c, token, sess, true, via)
	}
	return sess, token, err
}

// storedSession is the session as stored, without a re-check.
func (s *Server) storedSession(c *gin.Context) (store.Session, string, error) {
	ck, err := c.Request.Cookie(s.sessionCookieName())
	if err != nil || ck.Value == "" {
		return store.Session{}, "", errNoSession
	}
	sess, err := s.sessions.Get(c.Request.Context(), ck.Value)
	if errors.Is(err, store.ErrNotFound) {
		s.clearSessionCookie(c)
	}
	if err == nil && sess.Pending != "" && !state(c).partial {
		return store.Session{}, ck.Value, errPending
	}
	return sess, ck.Value, err
}

// sessionFailure answers a failed currentSession: to the sign-in page when
// there is no session, 503 when the store failed.
func (s *Server) sessionFailure(c *gin.Context, err error) {
	if errors.Is(err, errPending) {
		c.Redirect(http.StatusSeeOther, factorURL(c.Request.URL.RequestURI(), nil, false))
		c.Abort()
		return
	}
	if errors.Is(err, errNoSession) || errors.Is(err, store.ErrNotFound) {
		c.Redirect(http.StatusSeeOther, loginURL(c.Request.URL.RequestURI()))
		c.Abort()
		return
	}
	s.storeUnavailable(c, err)
}

func (s *Server) storeUnavailable(c *gin.Context, err error) {
	s.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "session unavailable (session store or directory)",
		slog.String("err", err.Error()))
	s.renderError(c, http.StatusServiceUnavailable)
}

// handleHome is the home page when no Mount serves one (page.go): who the
// signed-in user is, their groups, and sign-out.
func (s *Server) handleHome(c *gin.Context) {
	sess, token, err := s.currentSession(c)
	if err != nil {
		s.sessionFailure(c, err)
		return
	}
	csrf, err := s.ensureCSRF(c, token)
	if err != nil {
		s.fail(c, http.StatusInternalServerError, err)
		return
	}
	s.render(c, http.StatusOK, "account.html", view{User: &sess.User, CSRF: csrf, Wide: true})
}

// handleLogoutConfirm shows a form that POSTs /logout: a GET never signs
// out (a link or an <img> on another site must not end a session).
func (s *Server) handleLogoutConfirm(c *gin.Context) {
	sess, token, err := s.currentSession(c)
	switch {
	case errors.Is(err, errNoSession), errors.Is(err, store.ErrNotFound):
		s.render(c, http.StatusOK, "logout.html", view{})
		return
	case errors.Is(err, errPending): // a sign-in waiting for its second factor can be abandoned
		csrf, cerr := s.ensureCSRF(c, token)
		if cerr != nil {
			s.fail(c, http.StatusInternalServerError, cerr)
			return
		}
		s.render(c, http.StatusOK, "logout.html", view{CSRF: csrf, Pending: true})
		return
	case err != nil:
		s.storeUnavailable(c, err)
		return
	}
	csrf, err := s.ensureCSRF(c, token)
	if err != nil {
		s.fail(c, http.StatusInternalServerError, err)
		return
	}
	s.render(c, http.StatusOK, "logout.html", view{User: &sess.User, CSRF: csrf})
}

// handleLogout ends the session (CSRF-checked), clears the cookie and goes
// to the sign-in page.
func (s *Server) handleLogout(c *gin.Context) {
	if !s.parseForm(c) {
		return
	}
	var token string
	if ck, err := c.Request.Cookie(s.sessionCookieName()); err == nil {
		token = ck.Value
	}
	if err := s.checkCSRF(c, token); err != nil {
		s.csrfRejected(c, err, "/logout")
		return
	}
	if err := s.signOut(c, token); err != nil {
		s.storeUnavailable(c, err) // the cookie stays, so that the user can retry
		return
	}
	s.clearSessionCookie(c)
	c.Redirect(http.StatusSeeOther, "/login?signed_out=1")
}

// signOut deletes the session of token (if any) and audits it.
func (s *Server) signOut(c *gin.Context, token string) error {
	if token == "" {
		return nil
	}
	ctx := c.Request.Context()
	sess, err := s.sessions.Get(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.sessions.Delete(ctx, token); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	st := state(c)
	s.audit.Record(ctx, audit.Event{Actor: sess.User.Username, Action: "logout", Object: sess.Key,
		Result: "success", ClientIP: st.clientIP, RequestID: st.id})
	return nil
}
