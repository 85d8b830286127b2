package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// FactorPath is the page that asks for a second factor (served by the MFA
// Mount). It takes next (where to go afterwards, a local path), and
// optionally methods (comma-separated: only these count) and fresh=1 (a
// factor given now, even if the session had one).
const FactorPath = "/mfa"

// pendingTTL bounds a session that waits for its second factor.
const pendingTTL = 10 * time.Minute

// SecondFactor is the MFA policy and factor store, as the web layer needs
// it. Nil in Deps: no second factors at all.
type SecondFactor interface {
	// AfterPassword says what a sign-in whose password was just accepted
	// must still do: "" (nothing), store.PendingFactor or
	// store.PendingEnroll.
	AfterPassword(ctx context.Context, user identity.User) (string, error)
	// Enrolled reports whether the user has a second factor that counts.
	Enrolled(ctx context.Context, userID string) (bool, error)
	// Methods are the second factors that count (mfa.methods).
	Methods() []string
}

// errPending: the session waits for its second factor (Session.Pending),
// so it is not a signed-in session outside the routes that finish it.
var errPending = errors.New("sign-in not finished (second factor pending)")

// factorURL is the second-factor page returning to next.
func factorURL(next string, methods []string, fresh bool) string {
	q := url.Values{"next": {safeNext(next)}}
	if len(methods) > 0 {
		q.Set("methods", strings.Join(methods, ","))
	}
	if fresh {
		q.Set("fresh", "1")
	}
	return FactorPath + "?" + q.Encode()
}

// FactorPager is a Mount (the MFA pages) that can answer the password POST
// of a sign-in whose second factor is due with the page that asks for it,
// one request fewer than a redirect to FactorPath. The request's session
// (CurrentSession, CSRFToken) is the new pending one; next is where the
// sign-in goes afterwards. The page must put FactorPath?next=… into the
// address bar (history.replaceState), so that a reload asks for it again
// rather than re-posting the password.
type FactorPager interface {
	FactorPage(c *gin.Context, next string)
}

// FactorHint is what a SecondFactor may leave, during AfterPassword, for
// the FactorPager that answers the same password POST (the user's factors,
// already read): one look-up instead of two. FactorHintOf returns nil
// outside a sign-in.
type FactorHint struct{ V any }

type factorHintKey struct{}

// FactorHintOf returns the hint holder of a sign-in request's context.
func FactorHintOf(ctx context.Context) *FactorHint {
	h, _ := ctx.Value(factorHintKey{}).(*FactorHint)
	return h
}

// SessionReplacer is an optional capability of Sessions (store.Sessions has
// it): a new session in the place of old, old deleted in the same round
// trip.
type SessionReplacer interface {
	Replace(ctx context.Context, old store.Session, user identity.User, meta store.SessionMeta) (string, store.Session, error)
}

// FactorNeed is what a hand-off or an act demands of the sign-in.
type FactorNeed struct {
	// MFA: a second factor must have been given in this session.
	MFA bool
	// Methods, when not empty, are the only second factors that count.
	Methods []string
	// MaxAge, when set, is how long ago the factor may have been given
	// (implies MFA).
	MaxAge time.Duration
	// IfEnrolled: demand the factor only from a user who has one (the
	// device approval page: the CLI's grant then carries the factor
	// whenever the user can give it).
	IfEnrolled bool
}

// Satisfied reports whether sess meets need, with the deployment's allowed
// methods (nil: all) and the time now.
func (need FactorNeed) Satisfied(a identity.Authn, allowed []string, now time.Time) bool {
	if !a.Satisfies(need.MFA || need.MaxAge > 0, need.Methods, allowed) {
		return false
	}
	if need.MaxAge > 0 && (a.FactorTime.IsZero() || now.Sub(a.FactorTime) > need.MaxAge) {
		return false
	}
	return true
}

// RequireFactor checks the signed-in session of a mounted route against
// need. When it is met it returns true. Otherwise it sends the browser to
// the second-factor page, which comes back to next (a local URL that a GET
// can resume from) afterwards, aborts the handler chain and returns false;
// without a session, to the sign-in page; a store failure is a 503.
func RequireFactor(c *gin.Context, need FactorNeed, next string) bool {
	s := serverOf(c)
	if s == nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return false
	}
	st := state(c)
	if st.session == nil {
		RedirectToLogin(c)
		return false
	}
	return s.requireFactor(c, *st.session, need, next)
}

func (s *Server) requireFactor(c *gin.Context, sess store.Session, need FactorNeed, next string) bool {
	var allowed []string
	if s.factor != nil {
		allowed = s.factor.Methods()
	}
	if need.Satisfied(sess.SignIn(), allowed, s.clock.Now()) {
		return true
	}
	if need.IfEnrolled {
		if s.factor == nil {
			return true
		}
		ok, err := s.factor.Enrolled(c.Request.Context(), sess.User.ID)
		if err != nil {
			s.storeUnavailable(c, fmt.Errorf("second factor: %w", err))
			c.Abort()
			return false
		}
		if !ok {
			return true
		}
	}
	c.Redirect(http.StatusSeeOther, factorURL(next, need.Methods, need.MaxAge > 0))
	c.Abort()
	return false
}

// UpgradeSession replaces the browser's session, after a second factor, by
// one that records authn and is no longer pending: a new cookie (the
// privilege changed, so the token does too), the same user and absolute
// end. It works on routes marked Partial as well.
func UpgradeSession(c *gin.Context, authn identity.Authn) (store.Session, error) {
	s := serverOf(c)
	if s == nil {
		return store.Session{}, errNoServer
	}
	st := state(c)
	if st.session == nil {
		return store.Session{}, errNoSession
	}
	old := *st.session
	ctx := c.Request.Context()
	meta := store.SessionMeta{ClientIP: st.clientIP, UserAgent: truncate(c.Request.UserAgent(), maxUserAgentBytes),
		Authn: authn, NotAfter: old.ExpiresAt}
	if old.Pending != "" {
		// The sign-in finishes now: the full lifetime (a pending session
		// lives only minutes).
		meta.NotAfter = time.Time{}
	}
	var token string
	var sess store.Session
	var evicted int
	var err error
	if e, ok := s.sessions.(SessionEvicter); ok {
		token, sess, evicted, err = e.ReplaceAndEvict(ctx, old, old.User, meta) // one round trip
	} else if r, ok := s.sessions.(SessionReplacer); ok {
		token, sess, err = r.Replace(ctx, old, old.User, meta) // one round trip
	} else {
		token, sess, err = s.sessions.Create(ctx, old.User, meta)
		if err == nil {
			if derr := s.sessions.Delete(ctx, st.token); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				s.log.LogAttrs(ctx, slog.LevelWarn, "delete replaced session", slog.String("err", derr.Error()))
			}
		}
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("upgrade session: %w", err)
	}
	s.auditEvicted(ctx, sess.User, evicted, st.clientIP, st.id)
	s.setSessionCookie(c, token, sess.ExpiresAt)
	st.session, st.token = &sess, token
	return sess, nil
}

// SessionPending reports whether the request's session waits for a second
// factor (only routes marked Partial see such a session).
func SessionPending(c *gin.Context) bool {
	st := state(c)
	return st.session != nil && st.session.Pending != ""
}

// AllowDataImages widens the Content-Security-Policy of this response so
// that its page may show images from data: URLs (a QR code made on the
// server for this page alone). Call it before rendering.
func AllowDataImages(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
		"img-src 'self'", "img-src 'self' data:", 1))
}

// LoginURL is the sign-in page that returns to next afterwards (next must
// be a local path; anything else becomes "/").
func LoginURL(next string) string { return loginURL(next) }

// SafeNext returns next when it is a local path (not //host, not a scheme),
// else "/".
func SafeNext(next string) string { return safeNext(next) }
