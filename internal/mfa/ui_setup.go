package mfa

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

type setupData struct {
	Next         string
	Method       string // "", "totp" or "webauthn"
	AllowTOTP    bool
	AllowPasskey bool
	Pending      bool // part of the sign-in: the user must set one up now
	LaterLeft    string
	Enrollment   *enrollmentView
	Error        string
	Required     bool // the user must use MFA
	HasFactors   bool
	DefaultName  string
}

type enrollmentView struct {
	ID, Secret, Expires string
	QR                  template.URL
}

// mayChange decides whether this session may add or change factors: a
// sign-in waiting for its first factor may (the password was just
// checked); otherwise a user with a factor gives one afresh
// (mfa.step_up_max_age), and a user without one gives the password afresh
// (a stolen session cookie must not be able to add the thief's factor).
// When it may not, it has answered (a redirect) and returns false.
func (u *UI) mayChange(c *gin.Context, sess store.Session, back string) bool {
	to, err := u.changeGate(c.Request.Context(), sess, back)
	switch {
	case err != nil:
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return false
	case to != "":
		c.Redirect(http.StatusSeeOther, to)
		c.Abort()
		return false
	}
	return true
}

// changeGate is mayChange's decision: "" when the session may change
// factors, else where to send the browser first.
func (u *UI) changeGate(ctx context.Context, sess store.Session, back string) (string, error) {
	switch sess.Pending {
	case store.PendingEnroll:
		return "", nil
	case store.PendingFactor:
		return web.FactorPath + "?next=" + url.QueryEscape(back), nil
	}
	maxAge := u.policy.cfg.StepUpMaxAge
	enrolled, err := u.policy.Enrolled(ctx, sess.User.ID)
	if err != nil {
		return "", err
	}
	if enrolled {
		need := web.FactorNeed{MaxAge: maxAge}
		if need.Satisfied(sess.Authn, u.policy.Methods(), u.now()) {
			return "", nil
		}
		return web.FactorPath + "?fresh=1&next=" + url.QueryEscape(back), nil
	}
	pw := sess.Authn.Time
	if pw.IsZero() {
		pw = sess.CreatedAt
	}
	if u.now().Sub(pw) > maxAge {
		return web.LoginURL(back), nil
	}
	return "", nil
}

// totpAccount is the account label of the otpauth URL (no ':').
func totpAccount(u identity.User) string {
	return strings.ReplaceAll(u.Username, ":", "_")
}

func (u *UI) setupData(c *gin.Context, sess store.Session, next string) (setupData, error) {
	ctx := c.Request.Context()
	cnt, err := u.f.Count(ctx, sess.User.ID)
	if err != nil {
		return setupData{}, err
	}
	d := setupData{Next: next, Pending: sess.Pending == store.PendingEnroll,
		AllowTOTP:    u.policy.Allows(identity.MethodTOTP),
		AllowPasskey: u.passkey != nil && u.policy.Allows(identity.MethodWebAuthn),
		Required:     u.policy.Required(sess.User), HasFactors: u.policy.usable(cnt) > 0}
	if d.Pending {
		left, err := u.policy.GraceLeft(ctx, sess.User, u.now())
		if err != nil {
			return setupData{}, err
		}
		if left > 0 {
			d.LaterLeft = durationText(left)
		}
	}
	return d, nil
}

// handleSetup shows the choice of factor, or starts one (?method=).
func (u *UI) handleSetup(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || !u.mayChange(c, sess, c.Request.URL.RequestURI()) {
		return
	}
	next := web.SafeNext(c.Query("next"))
	d, err := u.setupData(c, sess, next)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	switch m := c.Query("method"); {
	case m == identity.MethodTOTP && d.AllowTOTP:
		e, err := u.f.BeginTOTP(c.Request.Context(), sess.User.ID, u.policy.cfg.Issuer, totpAccount(sess.User))
		if err != nil {
			web.Fail(c, http.StatusServiceUnavailable, "", err)
			return
		}
		d.Method, d.Enrollment, d.DefaultName = m, enrollment(e), "Authenticator app"
		web.AllowDataImages(c)
	case m == identity.MethodWebAuthn && d.AllowPasskey:
		d.Method, d.DefaultName = m, "Passkey"
	case m != "":
		web.Fail(c, http.StatusBadRequest, "That kind of second factor cannot be set up here.", nil)
		return
	}
	web.Render(c, http.StatusOK, pageSetup, d)
}

func enrollment(e Enrollment) *enrollmentView {
	return &enrollmentView{ID: e.ID, Secret: spaced(e.Secret), Expires: e.ExpiresAt.UTC().Format(time.RFC3339),
		QR: qrDataURL(e.QRCodePNG)}
}

// spaced groups a base32 secret by four for typing.
func spaced(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// handleSetupTOTP confirms a TOTP enrollment with its first code.
func (u *UI) handleSetupTOTP(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || !u.mayChange(c, sess, web.FactorPath+"/setup?method=totp") || u.limited(c, sess) {
		return
	}
	ctx := c.Request.Context()
	next := web.SafeNext(c.PostForm("next"))
	if !u.policy.Allows(identity.MethodTOTP) {
		web.Fail(c, http.StatusBadRequest, "Authenticator apps are not used here.", nil)
		return
	}
	eid := c.PostForm("enrollment")
	name, err := CredentialName(c.PostForm("name"), "Authenticator app")
	if err == nil {
		_, err = u.f.ConfirmTOTP(ctx, sess.User.ID, eid, name, c.PostForm("code"))
	}
	if err != nil {
		var msg string
		switch {
		case errors.Is(err, ErrBadName):
			msg = "A name has at most 64 characters."
		case errors.Is(err, ErrWrongCode), errors.Is(err, ErrReplayed):
			msg = "That code is not right. Check that your phone's clock is right and type the code the app shows now."
			u.wrong(c, sess)
		case errors.Is(err, ErrNoCredential):
			// Expired (10 minutes) or never begun: start again, nothing stored.
			u.record(c, sess, "mfa.enroll", "", "expired", map[string]string{"method": identity.MethodTOTP})
			web.Fail(c, http.StatusBadRequest, "This set-up has expired. Start again.", nil)
			return
		default:
			web.Fail(c, http.StatusServiceUnavailable, "", err)
			return
		}
		d, derr := u.setupData(c, sess, next)
		if derr == nil {
			var e Enrollment
			e, derr = u.f.ResumeTOTP(ctx, sess.User.ID, eid, u.policy.cfg.Issuer, totpAccount(sess.User))
			d.Method, d.Enrollment, d.Error, d.DefaultName = identity.MethodTOTP, enrollment(e), msg, "Authenticator app"
		}
		if errors.Is(derr, ErrNoCredential) {
			web.Fail(c, http.StatusBadRequest, "This set-up has expired. Start again.", nil)
			return
		}
		if derr != nil {
			web.Fail(c, http.StatusServiceUnavailable, "", derr)
			return
		}
		web.AllowDataImages(c)
		web.Render(c, http.StatusOK, pageSetup, d)
		return
	}
	u.succeed(c, sess)
	u.record(c, sess, "mfa.enroll", eid, "success", map[string]string{"method": identity.MethodTOTP})
	u.enrolled(c, sess, identity.MethodTOTP, false, next)
}

// enrolled finishes a new factor: the first one also makes recovery
// codes (shown once); a sign-in that waited for it is finished with it
// (the user has just proved the factor).
func (u *UI) enrolled(c *gin.Context, sess store.Session, method string, uv bool, next string) {
	codes, next, err := u.afterEnroll(c, sess, method, uv, next)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	if len(codes) == 0 {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	web.Render(c, http.StatusOK, pageCodes, codesData{Codes: codes, Next: next, First: true})
}

// afterEnroll is enrolled's work: the session upgrade, the first recovery
// codes (nil when the user has some), and where to go afterwards.
func (u *UI) afterEnroll(c *gin.Context, sess store.Session, method string, uv bool, next string) ([]string, string, error) {
	ctx := c.Request.Context()
	if sess.Pending != "" || sess.Authn.Method != method {
		if _, err := web.UpgradeSession(c, u.stepped(sess, method, uv)); err != nil {
			return nil, "", err
		}
	}
	if web.SafeNext(next) == "/" && sess.Pending == "" {
		next = "/account/security"
	}
	left, err := u.f.RecoveryCodesLeft(ctx, sess.User.ID)
	if err != nil || left > 0 || !u.policy.Allows(identity.MethodRecovery) {
		return nil, next, err
	}
	codes, err := u.f.RegenerateRecoveryCodes(ctx, sess.User.ID)
	if err != nil {
		return nil, "", err
	}
	u.record(c, sess, "mfa.recovery.regenerate", "", "success", nil)
	return codes, next, nil
}

type codesData struct {
	Codes []string
	Next  string
	First bool
}

// handleLater postpones setting up a factor within the grace period.
func (u *UI) handleLater(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	if sess.Pending != store.PendingEnroll {
		c.Redirect(http.StatusSeeOther, web.SafeNext(c.PostForm("next")))
		return
	}
	left, err := u.policy.GraceLeft(c.Request.Context(), sess.User, u.now())
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	if left <= 0 {
		u.record(c, sess, "mfa.skip", "", "refused", nil)
		web.Fail(c, http.StatusForbidden, "You have to set up a second factor now.", nil)
		return
	}
	a := sess.Authn
	if a.Method == "" {
		a = identity.PasswordOnly(sess.CreatedAt)
	}
	if _, err := web.UpgradeSession(c, a); err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	u.record(c, sess, "mfa.skip", "", "success", map[string]string{"grace_left": left.Round(time.Minute).String()})
	c.Redirect(http.StatusSeeOther, web.SafeNext(c.PostForm("next")))
}

func durationText(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(max(int(d/time.Minute), 1), "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
