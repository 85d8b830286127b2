package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// UserChecker looks a user up afresh in the directory (access.Access).
// When the directory no longer lets the user in, it has revoked all their
// access by the time it returns the directory's answer (identity.IsGone);
// an outage is any other error and revokes nothing.
type UserChecker interface {
	Check(ctx context.Context, u identity.User, req access.Request) (identity.User, error)
}

// sessionRechecker is the optional part of Sessions that stores a fresh
// look-up in the session (store.Sessions.Rechecked).
type sessionRechecker interface {
	Rechecked(ctx context.Context, token string, sess store.Session, user identity.User) (store.Session, error)
}

// errUserGone: the session's user was found deleted, disabled, locked or
// expired at a re-check; the session (and every other access of the user)
// has been revoked. It wraps store.ErrNotFound: the session has ended.
var errUserGone = fmt.Errorf("web: the directory no longer lets the session's user in: %w", store.ErrNotFound)

// recheck looks the session's user up afresh and returns the session with
// the fresh user (stored, so that the pages show that look-up).
//
// strict is for hand-offs and privileged acts: an outage is returned (the
// caller answers 503). Otherwise (a re-check because the last one is older
// than the recheck interval) an outage is logged and the session served
// as it is; the next request tries again. A user who is gone ends the
// session: the cookie is cleared and errUserGone returned.
func (s *Server) recheck(c *gin.Context, token string, sess store.Session, strict bool, via string) (store.Session, error) {
	ctx := c.Request.Context()
	st := state(c)
	u, err := s.users.Check(ctx, sess.User, access.Request{Via: via, ClientIP: st.clientIP, RequestID: st.id})
	switch {
	case identity.IsGone(err):
		s.clearSessionCookie(c)
		return store.Session{}, errUserGone
	case err != nil && strict:
		return store.Session{}, fmt.Errorf("web: fresh look-up: %w", err)
	case err != nil:
		s.log.LogAttrs(ctx, slog.LevelWarn, "session re-check failed; serving the last look-up",
			slog.String("user", sess.User.Username), slog.String("err", err.Error()))
		return sess, nil
	}
	if strict && !s.due(sess) && sameUser(sess.User, u) {
		// Nothing changed and no periodic re-check is due: the hand-off
		// needs no write (the common case; a write per click would cost).
		return sess, nil
	}
	if rs, ok := s.sessions.(sessionRechecker); ok {
		ns, err := rs.Rechecked(ctx, token, sess, u)
		switch {
		case err == nil:
			return ns, nil
		case errors.Is(err, store.ErrNotFound):
			s.clearSessionCookie(c)
			return store.Session{}, err
		case strict:
			return store.Session{}, err
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "session re-check not stored", slog.String("err", err.Error()))
	}
	sess.User, sess.CheckedAt = u, s.clock.Now()
	return sess, nil
}

// due reports whether the session's last look-up is older than the
// recheck interval.
func (s *Server) due(sess store.Session) bool {
	return s.users != nil && s.clock.Now().Sub(sess.Checked()) >= s.recheckEvery
}

// sameUser reports whether two look-ups of a user found the same: name,
// entry, groups and attributes.
func sameUser(a, b identity.User) bool {
	if a.ID != b.ID || a.Username != b.Username || a.DN != b.DN || a.DisplayName != b.DisplayName ||
		a.Email != b.Email || len(a.Groups) != len(b.Groups) || len(a.Attributes) != len(b.Attributes) {
		return false
	}
	for i := range a.Groups {
		if a.Groups[i] != b.Groups[i] {
			return false
		}
	}
	for k, va := range a.Attributes {
		vb, ok := b.Attributes[k]
		if !ok || !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}
