package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
)

// CSRF protection has two independent layers, and a POST must pass both:
//
//  1. net/http.CrossOriginProtection: browsers mark cross-site requests with
//     Sec-Fetch-Site (or an Origin that differs from Host); those are refused.
//  2. A signed double-submit token (OWASP CSRF cheat sheet, "signed double
//     submit cookie"): a random per-browser value lives in an HttpOnly cookie,
//     and every form carries HMAC-SHA256(key, value || binding), where binding
//     is the session cookie of a signed-in browser (empty before sign-in). An
//     attacker who can plant a cookie (a sibling subdomain without __Host-)
//     still cannot mint a matching token without the server's key, and a token
//     seen by one session is useless in another.

const (
	csrfField      = "csrf_token"
	csrfCookieBase = "warden_csrf"
	csrfValueLen   = 32 // random bytes in the cookie
)

var (
	errCSRFCrossOrigin = errors.New("csrf: cross-origin request")
	errCSRFNoCookie    = errors.New("csrf: no csrf cookie")
	errCSRFBadToken    = errors.New("csrf: token missing or wrong")
)

func (s *Server) csrfCookieName() string {
	if s.https {
		return "__Host-" + csrfCookieBase
	}
	return csrfCookieBase
}

// csrfCookieValue returns the browser's CSRF cookie if it is well formed.
func (s *Server) csrfCookieValue(c *gin.Context) string {
	ck, err := c.Request.Cookie(s.csrfCookieName())
	if err != nil {
		return ""
	}
	if b, err := base64.RawURLEncoding.DecodeString(ck.Value); err != nil || len(b) != csrfValueLen {
		return ""
	}
	return ck.Value
}

// ensureCSRF returns the token a form needs, setting a fresh CSRF cookie
// when the browser has none. binding is the session cookie value, or "".
func (s *Server) ensureCSRF(c *gin.Context, binding string) (string, error) {
	v := s.csrfCookieValue(c)
	if v == "" {
		b := make([]byte, csrfValueLen)
		if _, err := io.ReadFull(s.rand, b); err != nil {
			return "", fmt.Errorf("csrf: random: %w", err)
		}
		v = base64.RawURLEncoding.EncodeToString(b)
		s.setCookie(c, s.csrfCookieName(), v, 0)
	}
	return s.csrfToken(v, binding), nil
}

func (s *Server) csrfToken(cookieValue, binding string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("warden-csrf-v1\x00"))
	m.Write([]byte(cookieValue))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a POST whose form has been parsed. binding must be the
// same value the form's token was made with.
func (s *Server) checkCSRF(c *gin.Context, binding string) error {
	return s.checkCSRFToken(c, binding, c.Request.PostForm.Get(csrfField))
}

// checkCSRFToken verifies both layers for the token got (from a form field
// or the X-Warden-CSRF header).
func (s *Server) checkCSRFToken(c *gin.Context, binding, got string) error {
	if err := s.cop.Check(c.Request); err != nil {
		return fmt.Errorf("%w: %w", errCSRFCrossOrigin, err)
	}
	v := s.csrfCookieValue(c)
	if v == "" {
		return errCSRFNoCookie
	}
	want := s.csrfToken(v, binding)
	if !hmac.Equal([]byte(got), []byte(want)) { // constant time
		return errCSRFBadToken
	}
	return nil
}

// setCookie sets a cookie with Warden's flags: Path=/, HttpOnly,
// SameSite=Lax, Secure under https. maxAge 0 means a browser-session
// cookie, negative deletes it.
func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.https,
		SameSite: http.SameSiteLaxMode,
	})
}
