package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// Input bounds: longer input gets the generic answer without a directory call.
const (
	maxUsernameBytes  = 256
	maxPasswordBytes  = 1024
	maxUserAgentBytes = 256
)

// genericFailure is the one text for every sign-in the directory rejects,
// unless the rejection proves that the password was right (accountStatePage).
const genericFailure = "Wrong username or password."

// loginInput is a parsed sign-in form with what is known about the request.
type loginInput struct {
	Username, Password string
	Next               string // already sanitized
	ClientIP           string
	UserAgent          string
	OldToken           string // the browser's previous session cookie, if any
	Start              time.Time
}

// LimitKeyer is an optional capability of the Directory (ldap.Directory has
// it): it turns a typed login name into the key the limiter counts failed
// sign-ins under, so that every way of typing one account's name (frank,
// FRANK, frank@example.test, EXAMPLE\frank) shares one counter. It must not
// fail, and should not cost a directory request at every sign-in. Without
// it the typed name is the key.
type LimitKeyer interface {
	LimitKey(ctx context.Context, username string) string
}

// limitKey is the limiter key of a typed login name.
func (s *Server) limitKey(ctx context.Context, username string) string {
	if lk, ok := s.dir.(LimitKeyer); ok {
		return lk.LimitKey(ctx, username)
	}
	return username
}

// rateLimitedError is a refusal by the limiter.
type rateLimitedError struct{ retryAfter time.Duration }

func (e *rateLimitedError) Error() string { return "rate limited for " + e.retryAfter.String() }

// errBadInput: empty, too long, not UTF-8 or control characters. It is
// answered exactly like a wrong password.
var errBadInput = fmt.Errorf("login: unacceptable input: %w", identity.ErrInvalidCredentials)

// errSessionStore marks failures of the session store during sign-in
// (whether or not they wrap store.ErrUnavailable): answered 503.
var errSessionStore = errors.New("session store")

// handleLoginForm shows the sign-in form.
func (s *Server) handleLoginForm(c *gin.Context) {
	token, err := s.ensureCSRF(c, "")
	if err != nil {
		s.fail(c, http.StatusInternalServerError, err)
		return
	}
	v := view{CSRF: token, Next: safeNext(c.Query("next"))}
	if c.Query("signed_out") == "1" {
		v.Notice = "You have been signed out."
	}
	s.render(c, http.StatusOK, "login.html", v)
}

// handleLogin checks the form and signs the user in.
func (s *Server) handleLogin(c *gin.Context) {
	st := state(c)
	if !s.parseForm(c) {
		return
	}
	if err := s.checkCSRF(c, ""); err != nil {
		s.metrics.observeLogin(outcomeCSRF, s.clock.Now().Sub(st.start))
		s.csrfRejected(c, err, "/login")
		return
	}
	form := c.Request.PostForm
	in := loginInput{
		Username:  form.Get("username"),
		Password:  form.Get("password"),
		Next:      safeNext(form.Get("next")),
		ClientIP:  st.clientIP,
		UserAgent: truncate(c.Request.UserAgent(), maxUserAgentBytes),
		Start:     st.start,
	}
	if ck, err := c.Request.Cookie(s.sessionCookieName()); err == nil {
		in.OldToken = ck.Value
	}
	if s.factorPage != nil {
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), factorHintKey{}, &FactorHint{}))
	}
	token, sess, err := s.signIn(c.Request.Context(), in, st.id)
	if err != nil {
		s.renderLoginFailure(c, in, err)
		return
	}
	s.setSessionCookie(c, token, sess.ExpiresAt)
	if sess.Pending == store.PendingFactor && s.factorPage != nil {
		st.session, st.token, st.partial = &sess, token, true
		c.Header("Cache-Control", "no-store")
		s.factorPage.FactorPage(c, in.Next)
		return
	}
	if sess.Pending != "" {
		c.Redirect(http.StatusSeeOther, factorURL(in.Next, nil, false))
		return
	}
	// A next page that a Mount answers itself (the portal's console links):
	// its page now, for the session just made (page.go, NextAnswerer).
	st.session, st.token = &sess, token
	if s.answerNext(c, in.Next) {
		return
	}
	c.Redirect(http.StatusSeeOther, in.Next)
}

// signIn runs one sign-in: input bounds, limiter, directory, session. It
// records the outcome (metrics, audit, log) and pads rejections to
// cfg.LoginMinDuration from the start of the request.
func (s *Server) signIn(ctx context.Context, in loginInput, requestID string) (string, store.Session, error) {
	token, sess, evicted, err := s.decide(ctx, in)
	outcome := loginOutcome(err)
	s.metrics.observeLogin(outcome, s.clock.Now().Sub(in.Start))

	ev := audit.Event{Actor: auditName(in.Username), Action: "login", Result: outcome,
		ClientIP: in.ClientIP, RequestID: requestID}
	switch {
	case err == nil:
		ev.Actor, ev.Object = sess.User.Username, sess.Key
	case outcome == outcomeDirectoryUnavailable || outcome == outcomeStoreUnavailable:
		level := slog.LevelWarn
		if !errors.Is(err, identity.ErrDirectoryUnavailable) && !errors.Is(err, store.ErrUnavailable) {
			level = slog.LevelError // an error outside the contract: still a 503, but look at it
		}
		s.log.LogAttrs(ctx, level, "sign-in failed",
			slog.String("outcome", outcome), slog.String("err", err.Error()))
	}
	s.audit.Record(ctx, ev)
	if err == nil {
		s.auditEvicted(ctx, sess.User, evicted, in.ClientIP, requestID)
	}

	if identity.IsRejection(err) {
		// Pad with a timer (no CPU) so that every rejection, whatever the
		// directory did, takes at least LoginMinDuration.
		s.clock.Sleep(ctx, s.cfg.LoginMinDuration-s.clock.Now().Sub(in.Start))
	}
	return token, sess, err
}

// decide is the sign-in decision proper; signIn wraps it with bookkeeping.
// It also returns how many of the user's older sessions the new one ended
// (session.max_per_user), for signIn's audit.
func (s *Server) decide(ctx context.Context, in loginInput) (string, store.Session, int, error) {
	if !acceptableInput(in.Username, in.Password) {
		return "", store.Session{}, 0, errBadInput
	}
	// One counter per account, whatever form of its name was typed.
	key := s.limitKey(ctx, in.Username)
	d, err := s.limiter.Check(ctx, key, in.ClientIP)
	if err != nil {
		return "", store.Session{}, 0, fmt.Errorf("login: limiter: %w: %w", errSessionStore, err)
	}
	if !d.Allowed {
		return "", store.Session{}, 0, &rateLimitedError{retryAfter: d.RetryAfter}
	}
	user, err := s.dir.Authenticate(ctx, in.Username, in.Password)
	if err != nil {
		if !identity.IsRejection(err) {
			return "", store.Session{}, 0, fmt.Errorf("login: directory: %w", err)
		}
		if ferr := s.limiter.Fail(ctx, key, in.ClientIP); ferr != nil {
			// The rejection stands; the next Check fails too if Redis is down.
			s.log.LogAttrs(ctx, slog.LevelWarn, "limiter: count failure", slog.String("err", ferr.Error()))
		}
		return "", store.Session{}, 0, fmt.Errorf("login: %w", err)
	}
	// A fresh session for every sign-in (no fixation): the browser's old
	// session, if any, ends here.
	if in.OldToken != "" {
		if derr := s.sessions.Delete(ctx, in.OldToken); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "delete previous session", slog.String("err", derr.Error()))
		}
	}
	meta := store.SessionMeta{ClientIP: in.ClientIP, UserAgent: in.UserAgent, Authn: identity.PasswordOnly(s.clock.Now())}
	if s.factor != nil {
		pending, err := s.factor.AfterPassword(ctx, user)
		if err != nil {
			return "", store.Session{}, 0, fmt.Errorf("login: second factor: %w: %w", errSessionStore, err)
		}
		if pending != "" {
			meta.Pending, meta.NotAfter = pending, s.clock.Now().Add(pendingTTL)
		}
	}
	token, sess, evicted, err := s.createSession(ctx, user, meta)
	if err != nil {
		return "", store.Session{}, 0, fmt.Errorf("login: create session: %w: %w", errSessionStore, err)
	}
	// Reset the counter Fail increments, when Check saw failures in it: a
	// sign-in without earlier failures saves the round trip.
	if d.Failures {
		if err := s.limiter.Succeed(ctx, key); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "limiter: reset after success", slog.String("err", err.Error()))
		}
	}
	return token, sess, evicted, nil
}

// SessionEvicter is an optional capability of Sessions (store.Sessions has
// it): Create and Replace that also return how many of the user's other
// sessions they ended to keep the user within session.max_per_user (the
// oldest first), so that the web layer audits it. Without it the store may
// still end sessions; nothing is audited.
type SessionEvicter interface {
	CreateAndEvict(ctx context.Context, user identity.User, meta store.SessionMeta) (string, store.Session, int, error)
	ReplaceAndEvict(ctx context.Context, old store.Session, user identity.User, meta store.SessionMeta) (string, store.Session, int, error)
}

// createSession is Sessions.Create, with the number of sessions it ended
// when the store says (SessionEvicter).
func (s *Server) createSession(ctx context.Context, user identity.User, meta store.SessionMeta) (string, store.Session, int, error) {
	if e, ok := s.sessions.(SessionEvicter); ok {
		return e.CreateAndEvict(ctx, user, meta)
	}
	token, sess, err := s.sessions.Create(ctx, user, meta)
	return token, sess, 0, err
}

// auditEvicted records one "session.evicted" event when a sign-in of user
// ended n of the user's older sessions (session.max_per_user): the user is
// the actor and the object, the detail says how many and why. No session
// key: the keys of the ended sessions are not even known here.
func (s *Server) auditEvicted(ctx context.Context, user identity.User, n int, clientIP, requestID string) {
	if n <= 0 {
		return
	}
	s.audit.Record(ctx, audit.Event{Actor: user.Username, Action: "session.evicted", Object: user.Username,
		Result: "success", ClientIP: clientIP, RequestID: requestID,
		Detail: map[string]string{"cause": "max_per_user", "sessions": strconv.Itoa(n), "user_id": user.ID}})
}

func acceptableInput(username, password string) bool {
	if username == "" || password == "" || len(username) > maxUsernameBytes || len(password) > maxPasswordBytes {
		return false
	}
	if !utf8.ValidString(username) {
		return false
	}
	for _, r := range username {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// loginOutcome maps a sign-in error to its metric label.
func loginOutcome(err error) string {
	var rl *rateLimitedError
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.As(err, &rl):
		return outcomeRateLimited
	case errors.Is(err, identity.ErrInvalidCredentials):
		return outcomeInvalidCredentials
	case errors.Is(err, identity.ErrAccountLocked):
		return outcomeLocked
	case errors.Is(err, identity.ErrPasswordExpired):
		return outcomePasswordExpired
	case errors.Is(err, identity.ErrMustChangePassword):
		return outcomeMustChange
	case errors.Is(err, identity.ErrAccountDisabled):
		return outcomeDisabled
	case errors.Is(err, identity.ErrAccountExpired):
		return outcomeAccountExpired
	case errors.Is(err, errSessionStore), errors.Is(err, store.ErrUnavailable):
		return outcomeStoreUnavailable
	default: // identity.ErrDirectoryUnavailable and anything unexpected from the directory
		return outcomeDirectoryUnavailable
	}
}

// accountState is the page for a rejection that tells the user what to do.
type accountState struct{ heading, message, advice string }

// accountStatePage returns the page for rejections that are shown as such.
//
// Which account states may be revealed: only those the directory reports
// after it has verified the password; otherwise an anonymous caller could
// learn that a username exists (and its state) by trying any password.
// Checked against Samba AD 4.17 (the test DC, users with a wrong password):
//   - data 775 (locked) comes back for a wrong password as well, so
//     ErrAccountLocked proves nothing and gets the generic answer (whose
//     hint mentions lock-outs, for everyone alike);
//   - data 532 (password expired), 773 (must change), 533 (disabled) and
//     701 (account expired) come back only with the right password; a wrong
//     one gives 52e, like an unknown user.
//
// OpenLDAP's ppolicy reports password expiry and pwdReset only on a bind
// with the right password, too. Directory implementations must keep this
// contract: never return these four sentinels for an unverified password.
func accountStatePage(err error) (accountState, bool) {
	switch {
	case errors.Is(err, identity.ErrPasswordExpired):
		return accountState{"Your password has expired",
			"Your password is correct, but it has expired.",
			"Change your password at the company password portal, or ask your IT helpdesk, then sign in again."}, true
	case errors.Is(err, identity.ErrMustChangePassword):
		return accountState{"Change your password first",
			"Your password is correct, but it must be changed before you can sign in.",
			"Change your password at the company password portal, or ask your IT helpdesk, then sign in again."}, true
	case errors.Is(err, identity.ErrAccountDisabled):
		return accountState{"Your account is disabled",
			"Your account has been disabled, so you cannot sign in.",
			"If you think this is a mistake, contact your IT helpdesk."}, true
	case errors.Is(err, identity.ErrAccountExpired):
		return accountState{"Your account has expired",
			"Your account has reached its expiry date, so you cannot sign in.",
			"Ask your IT helpdesk or your manager to extend it."}, true
	}
	return accountState{}, false
}

// renderLoginFailure answers a sign-in that did not succeed.
func (s *Server) renderLoginFailure(c *gin.Context, in loginInput, err error) {
	var rl *rateLimitedError
	if errors.As(err, &rl) {
		secs := int((rl.retryAfter + time.Second - 1) / time.Second)
		c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
		s.renderError(c, http.StatusTooManyRequests)
		return
	}
	if s.offerPasswordChange(c, in, err) { // expired or must change, and the directory can change it
		return
	}
	if page, ok := accountStatePage(err); ok {
		s.render(c, http.StatusForbidden, "account_state.html",
			view{Heading: page.heading, Message: page.message, Advice: page.advice})
		return
	}
	if identity.IsRejection(err) {
		token, terr := s.ensureCSRF(c, "")
		if terr != nil {
			s.fail(c, http.StatusInternalServerError, terr)
			return
		}
		// Same page, same status, for an unknown user, a wrong password,
		// a locked account and unacceptable input.
		s.render(c, http.StatusOK, "login.html", view{CSRF: token, Next: in.Next,
			Username: displayedUsername(in.Username), Error: genericFailure})
		return
	}
	s.renderError(c, http.StatusServiceUnavailable)
}

// displayedUsername is what the form shows again after a failure: what the
// user typed, unless it was unacceptable (then nothing).
func displayedUsername(u string) string {
	if !acceptableInput(u, "x") {
		return ""
	}
	return u
}

// auditName is the typed username, bounded, for audit events of failures.
func auditName(u string) string {
	if u == "" {
		return "anonymous"
	}
	u = truncate(u, maxUsernameBytes)
	if !utf8.ValidString(u) {
		return strconv.QuoteToASCII(u)
	}
	return u
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// parseForm parses a urlencoded POST body; a body over the limit is 413,
// a malformed one 400. It reports whether the handler may go on.
func (s *Server) parseForm(c *gin.Context) bool {
	err := c.Request.ParseForm()
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		s.renderError(c, http.StatusRequestEntityTooLarge)
		return false
	}
	s.renderError(c, http.StatusBadRequest)
	return false
}

// csrfRejected answers a POST that failed the CSRF checks: 403, "your form
// expired", counted and audited. A fresh CSRF cookie is set when the browser
// has none, so that "try again" works.
func (s *Server) csrfRejected(c *gin.Context, err error, retry string) {
	st := state(c)
	route := c.FullPath()
	s.metrics.csrf.WithLabelValues(route).Inc()
	s.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "csrf check failed",
		slog.String("route", route), slog.String("err", err.Error()))
	actor := "anonymous"
	if st.session != nil {
		actor = st.session.User.Username
	}
	s.audit.Record(c.Request.Context(), audit.Event{Actor: actor, Action: "csrf.reject", Object: route,
		Result: "rejected", ClientIP: st.clientIP, RequestID: st.id})
	if _, err := s.ensureCSRF(c, ""); err != nil {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "csrf cookie", slog.String("err", err.Error()))
	}
	s.renderErrorPage(c, http.StatusForbidden, "Your form expired",
		"Your form expired, please try again.", retry)
}

// fail logs an internal error with the request ID and answers status.
func (s *Server) fail(c *gin.Context, status int, err error) {
	s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
		slog.String("err", err.Error()))
	s.renderError(c, status)
}

// loginURL is the sign-in page that returns to next afterwards.
func loginURL(next string) string {
	// next is already safe; '/' needs no escaping in a query (RFC 3986 3.4).
	return "/login?next=" + strings.ReplaceAll(url.QueryEscape(safeNext(next)), "%2F", "/")
}
