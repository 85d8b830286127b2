package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
)

// PasswordChanger is an optional capability of the Directory (ldap.Directory
// has it): a user whose sign-in failed because the password has expired or
// must be changed sets a new one on the spot, by the directory's own rules,
// and is then signed in with it. Without it, such a user gets a page that
// sends them elsewhere (accountStatePage).
type PasswordChanger interface {
	// CanChangePassword reports whether ChangePassword can help a user
	// whose sign-in was refused with reason (identity.ErrPasswordExpired or
	// identity.ErrMustChangePassword). It must not ask a server.
	CanChangePassword(reason error) bool
	// ChangePassword changes the password of username from oldPassword to
	// newPassword as the user would (a change, not an administrator's
	// reset): the directory checks oldPassword and applies its password
	// policy. It returns identity.ErrInvalidCredentials for a wrong old
	// password and for an unknown user alike, an identity.ErrPasswordPolicy
	// error (*identity.PasswordPolicyError for the reason) when the new
	// password is refused, identity.ErrPasswordChangeUnsupported when the
	// directory does not let the user change it here, another identity
	// rejection, or an error wrapping identity.ErrDirectoryUnavailable.
	ChangePassword(ctx context.Context, username, oldPassword, newPassword string) error
}

// passwordPath is where the change form posts.
const passwordPath = "/login/password"

// Why the form is shown (its hidden "reason" field; only chooses texts).
const (
	reasonExpired    = "expired"
	reasonMustChange = "must_change"
)

// passwordPage is the change form's page data (view.Data).
type passwordPage struct {
	Reason string
}

// passwordInput is a parsed change form.
type passwordInput struct {
	loginInput         // Username, Password (the current one), Next, client
	NewPassword string // typed twice
	Confirm     string
	Reason      string // reasonExpired or reasonMustChange
}

// Form errors: answered before the limiter and the directory.
var (
	errNewPasswordMissing  = errors.New("password change: new password missing")
	errNewPasswordMismatch = errors.New("password change: new passwords differ")
	errNewPasswordSame     = errors.New("password change: new password equals the current one")
	errNewPasswordUnusable = errors.New("password change: new password too long or with control characters")
)

// passwordChanger returns the directory's capability, or nil.
func (s *Server) passwordChanger() PasswordChanger {
	pc, _ := s.dir.(PasswordChanger)
	return pc
}

// changeReason maps a sign-in error to the reason a change form is offered
// for, or "" when none is.
func (s *Server) changeReason(err error) string {
	pc := s.passwordChanger()
	if pc == nil {
		return ""
	}
	var r string
	switch {
	case errors.Is(err, identity.ErrPasswordExpired):
		r = reasonExpired
	case errors.Is(err, identity.ErrMustChangePassword):
		r = reasonMustChange
	default:
		return ""
	}
	if !pc.CanChangePassword(err) {
		return ""
	}
	return r
}

// offerPasswordChange answers a sign-in refused for an expired or
// must-change password with the change form, when the directory can
// change it. It reports whether it answered.
//
// The form reveals no more than accountStatePage does: the directory
// reports these two states only after it verified the password (see
// there). The POST proves the current password again, to the directory.
func (s *Server) offerPasswordChange(c *gin.Context, in loginInput, err error) bool {
	reason := s.changeReason(err)
	if reason == "" {
		return false
	}
	s.renderPasswordForm(c, http.StatusOK, passwordInput{loginInput: in, Reason: reason}, "")
	return true
}

// renderPasswordForm shows the change form for in (never with a password
// in it), with msg as the error when set.
func (s *Server) renderPasswordForm(c *gin.Context, status int, in passwordInput, msg string) {
	token, err := s.ensureCSRF(c, "")
	if err != nil {
		s.fail(c, http.StatusInternalServerError, err)
		return
	}
	v := view{CSRF: token, Next: in.Next, Username: in.Username, Error: msg,
		RetryLink: loginURL(in.Next), Data: passwordPage{Reason: in.Reason}}
	switch {
	case msg != "":
		v.Message = "Enter your current password and choose a new one."
	case in.Reason == reasonExpired:
		v.Message = "Your password is correct, but it has expired. Choose a new one to go on signing in."
	default:
		v.Message = "Your password is correct, but it must be changed before you can sign in. Choose a new one to go on signing in."
	}
	v.Heading = "Change your password first"
	if in.Reason == reasonExpired {
		v.Heading = "Your password has expired"
	}
	s.render(c, status, "password_change.html", v)
}

// handlePasswordChange takes the change form: CSRF, the same limiter as
// sign-in, the directory's change, then the ordinary sign-in with the new
// password (second factor included) and back to next.
func (s *Server) handlePasswordChange(c *gin.Context) {
	st := state(c)
	pc := s.passwordChanger()
	if pc == nil { // the route exists only with the capability
		s.renderError(c, http.StatusNotFound)
		return
	}
	if !s.parseForm(c) {
		return
	}
	if err := s.checkCSRF(c, ""); err != nil {
		s.csrfRejected(c, err, "/login")
		return
	}
	form := c.Request.PostForm
	in := passwordInput{
		loginInput: loginInput{
			Username:  form.Get("username"),
			Password:  form.Get("password"),
			Next:      safeNext(form.Get("next")),
			ClientIP:  st.clientIP,
			UserAgent: truncate(c.Request.UserAgent(), maxUserAgentBytes),
			Start:     st.start,
		},
		NewPassword: form.Get("new_password"),
		Confirm:     form.Get("confirm_password"),
		Reason:      reasonMustChange,
	}
	if form.Get("reason") == reasonExpired {
		in.Reason = reasonExpired
	}
	if ck, err := c.Request.Cookie(s.sessionCookieName()); err == nil {
		in.OldToken = ck.Value
	}
	ctx := c.Request.Context()
	if err := s.changePassword(ctx, pc, in, st.id); err != nil {
		s.renderPasswordFailure(c, in, err)
		return
	}
	// Changed. Now the one sign-in path, with the new password.
	login := in.loginInput
	login.Password = in.NewPassword
	token, sess, err := s.signIn(ctx, login, st.id)
	if err != nil {
		if errors.Is(err, identity.ErrInvalidCredentials) {
			// E.g. a replica that has not seen the change yet: the change
			// stands, so say so rather than "wrong password".
			s.renderSignInAfterChange(c, login.Next)
			return
		}
		s.renderLoginFailure(c, login, err)
		return
	}
	// As handleLogin does after a sign-in.
	s.setSessionCookie(c, token, sess.ExpiresAt)
	if sess.Pending != "" {
		c.Redirect(http.StatusSeeOther, factorURL(login.Next, nil, false))
		return
	}
	c.Redirect(http.StatusSeeOther, login.Next)
}

// changePassword checks the form, asks the limiter, and has the directory
// change the password. It records the outcome (audit, log) and pads every
// refusal by the directory to cfg.LoginMinDuration from the request start,
// as signIn does.
func (s *Server) changePassword(ctx context.Context, pc PasswordChanger, in passwordInput, requestID string) error {
	if err := checkPasswordForm(in); err != nil {
		return err
	}
	key := s.limitKey(ctx, in.Username)
	d, err := s.limiter.Check(ctx, key, in.ClientIP)
	if err != nil {
		return fmt.Errorf("password change: limiter: %w: %w", errSessionStore, err)
	}
	if !d.Allowed {
		return &rateLimitedError{retryAfter: d.RetryAfter}
	}
	err = pc.ChangePassword(ctx, in.Username, in.Password, in.NewPassword)
	result := passwordOutcome(err)
	s.audit.Record(ctx, audit.Event{Actor: auditName(in.Username), Action: "password.change", Result: result,
		ClientIP: in.ClientIP, RequestID: requestID})
	switch {
	case err == nil:
		return nil
	case identity.IsRejection(err):
		// A wrong current password is a failed sign-in attempt.
		if ferr := s.limiter.Fail(ctx, key, in.ClientIP); ferr != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "limiter: count failure", slog.String("err", ferr.Error()))
		}
	case errors.Is(err, identity.ErrPasswordPolicy), errors.Is(err, identity.ErrPasswordChangeUnsupported):
		s.log.LogAttrs(ctx, slog.LevelInfo, "password change refused by the directory",
			slog.String("outcome", result), slog.String("err", err.Error()))
	default:
		level := slog.LevelWarn
		if !errors.Is(err, identity.ErrDirectoryUnavailable) {
			level = slog.LevelError // outside the contract: still a 503, but look at it
		}
		s.log.LogAttrs(ctx, level, "password change failed", slog.String("outcome", result), slog.String("err", err.Error()))
		return fmt.Errorf("password change: directory: %w", err)
	}
	s.clock.Sleep(ctx, s.cfg.LoginMinDuration-s.clock.Now().Sub(in.Start))
	return fmt.Errorf("password change: %w", err)
}

// checkPasswordForm checks what needs no directory: the current password
// given, the new one twice, alike, different from the current one, and
// sendable.
func checkPasswordForm(in passwordInput) error {
	switch {
	case !acceptableInput(in.Username, in.Password):
		return errBadInput
	case in.NewPassword == "" || in.Confirm == "":
		return errNewPasswordMissing
	case in.NewPassword != in.Confirm:
		return errNewPasswordMismatch
	case in.NewPassword == in.Password:
		return errNewPasswordSame
	case len(in.NewPassword) > maxPasswordBytes || !utf8.ValidString(in.NewPassword):
		return errNewPasswordUnusable
	}
	for _, r := range in.NewPassword {
		if r < 0x20 || r == 0x7f {
			return errNewPasswordUnusable
		}
	}
	return nil
}

// passwordOutcome is the audit result of a change.
func passwordOutcome(err error) string {
	switch {
	case err == nil:
		return outcomeSuccess
	case errors.Is(err, identity.ErrPasswordPolicy):
		return "policy"
	case errors.Is(err, identity.ErrPasswordChangeUnsupported):
		return "unsupported"
	case identity.IsRejection(err):
		return loginOutcome(err)
	default:
		return outcomeDirectoryUnavailable
	}
}

// policyText is the public text of a policy refusal. Active Directory
// names no rule, so neither does the text then.
func policyText(err error) string {
	const prefix = "The new password does not meet the directory's rules: "
	var pe *identity.PasswordPolicyError
	reason := identity.PolicyUnspecified
	if errors.As(err, &pe) {
		reason = pe.Reason
	}
	switch reason {
	case identity.PolicyTooShort:
		return prefix + "it is too short."
	case identity.PolicyInHistory:
		return prefix + "it was used before. Choose one you have not used."
	case identity.PolicyTooYoung:
		return prefix + "the password was changed too recently to change it again now."
	case identity.PolicyQuality:
		return prefix + "it is not complex enough."
	}
	return prefix + "it may be too short, too simple, or one you used before. Choose another one."
}

// Public texts of the change form.
const (
	textWrongCurrent     = "Your current password is wrong."
	textNewMissing       = "Enter the new password twice."
	textNewMismatch      = "The two new passwords do not match."
	textNewSame          = "The new password must differ from the current one."
	textNewUnusable      = "The new password is too long or contains characters that cannot be used."
	textChangedSignInNow = "Your password has been changed. Sign in with your new password."
)

// renderPasswordFailure answers a change that did not happen: the form
// again with what to fix, the sign-in's own pages for the limiter and
// outages, or the account-state page when the directory will not change
// the password here.
func (s *Server) renderPasswordFailure(c *gin.Context, in passwordInput, err error) {
	var rl *rateLimitedError
	switch {
	case errors.As(err, &rl):
		s.renderLoginFailure(c, in.loginInput, err) // 429, as for sign-in
	case errors.Is(err, errNewPasswordMissing):
		s.renderPasswordForm(c, http.StatusBadRequest, in, textNewMissing)
	case errors.Is(err, errNewPasswordMismatch):
		s.renderPasswordForm(c, http.StatusBadRequest, in, textNewMismatch)
	case errors.Is(err, errNewPasswordSame):
		s.renderPasswordForm(c, http.StatusBadRequest, in, textNewSame)
	case errors.Is(err, errNewPasswordUnusable):
		s.renderPasswordForm(c, http.StatusBadRequest, in, textNewUnusable)
	case errors.Is(err, identity.ErrPasswordPolicy):
		s.renderPasswordForm(c, http.StatusBadRequest, in, policyText(err))
	case errors.Is(err, identity.ErrPasswordChangeUnsupported):
		reason := error(identity.ErrMustChangePassword)
		if in.Reason == reasonExpired {
			reason = identity.ErrPasswordExpired
		}
		page, _ := accountStatePage(reason)
		s.render(c, http.StatusForbidden, "account_state.html",
			view{Heading: page.heading, Message: page.message, Advice: page.advice})
	case errors.Is(err, identity.ErrInvalidCredentials), errors.Is(err, identity.ErrAccountLocked):
		// An unknown user, a wrong current password, a lock: one answer
		// (a locked account reads like a wrong password, as at sign-in).
		in.Username = displayedUsername(in.Username)
		s.renderPasswordForm(c, http.StatusOK, in, textWrongCurrent)
	case identity.IsRejection(err):
		if page, ok := accountStatePage(err); ok { // the directory verified the password
			s.render(c, http.StatusForbidden, "account_state.html",
				view{Heading: page.heading, Message: page.message, Advice: page.advice})
			return
		}
		in.Username = displayedUsername(in.Username)
		s.renderPasswordForm(c, http.StatusOK, in, textWrongCurrent)
	default: // the limiter's store, the directory: outages
		s.renderError(c, http.StatusServiceUnavailable)
	}
}

// renderSignInAfterChange is the sign-in form with a notice that the
// password was changed.
func (s *Server) renderSignInAfterChange(c *gin.Context, next string) {
	token, err := s.ensureCSRF(c, "")
	if err != nil {
		s.fail(c, http.StatusInternalServerError, err)
		return
	}
	s.render(c, http.StatusOK, "login.html", view{CSRF: token, Next: next, Notice: textChangedSignInNow})
}
