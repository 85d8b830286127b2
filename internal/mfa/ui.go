package mfa

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
	mfatemplates "github.com/wardenidp/warden/templates/mfa"
)

// Limiter counts wrong codes per user and per client IP (a store.Limiter
// of its own, store.NewNamedLimiter).
type Limiter interface {
	Check(ctx context.Context, key, ip string) (store.Decision, error)
	Fail(ctx context.Context, key, ip string) error
	Succeed(ctx context.Context, key string) error
}

// UIDeps are the collaborators of the MFA pages.
type UIDeps struct {
	Policy  *Policy   // required
	Factors *Factors  // required
	Passkey *WebAuthn // nil: no WebAuthn
	Limiter Limiter   // required
	Audit   audit.Logger
	Logger  *slog.Logger
	Clock   func() time.Time
	// IsAdmin tells the members of the admin groups (the admin pages of a
	// user's factors); nil: nobody.
	IsAdmin func(identity.User) bool
}

// UI serves the second-factor pages: the step at sign-in and step-up
// (web.FactorPath), setting up factors, /account/security, and the admin
// pages of a user's factors. It is a web.Mount.
type UI struct {
	policy  *Policy
	f       *Factors
	passkey *WebAuthn
	limiter Limiter
	audit   audit.Logger
	log     *slog.Logger
	now     func() time.Time
	isAdmin func(identity.User) bool
}

// NewUI returns the MFA pages.
func NewUI(deps UIDeps) (*UI, error) {
	if deps.Policy == nil || deps.Factors == nil || deps.Limiter == nil {
		return nil, errors.New("mfa: pages: Policy, Factors and Limiter are required")
	}
	u := &UI{policy: deps.Policy, f: deps.Factors, passkey: deps.Passkey, limiter: deps.Limiter,
		audit: deps.Audit, log: deps.Logger, now: deps.Clock, isAdmin: deps.IsAdmin}
	if u.audit == nil {
		u.audit = audit.Discard{}
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.isAdmin == nil {
		u.isAdmin = func(identity.User) bool { return false }
	}
	return u, nil
}

const (
	formBody = 4 << 10
	// jsonBody bounds WebAuthn requests: a response with a large
	// attestation is refused before parsing (see webauthn.go).
	jsonBody = 96 << 10
)

// Routes implements web.Mount.
func (u *UI) Routes() []web.Route {
	return []web.Route{
		{Method: http.MethodGet, Path: web.FactorPath, Handler: u.handleChallenge, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/totp", Handler: u.handleTOTP, MaxBody: formBody, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/recovery", Handler: u.handleRecovery, MaxBody: formBody, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/webauthn/begin", Handler: u.handlePasskeyBegin, MaxBody: formBody, API: true, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/webauthn/finish", Handler: u.handlePasskeyFinish, MaxBody: jsonBody, API: true, Partial: true},
		{Method: http.MethodGet, Path: web.FactorPath + "/setup", Handler: u.handleSetup, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/setup/totp", Handler: u.handleSetupTOTP, MaxBody: formBody, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/setup/webauthn/begin", Handler: u.handleSetupPasskeyBegin, MaxBody: formBody, API: true, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/setup/webauthn/finish", Handler: u.handleSetupPasskeyFinish, MaxBody: jsonBody, API: true, Partial: true},
		{Method: http.MethodPost, Path: web.FactorPath + "/setup/later", Handler: u.handleLater, MaxBody: formBody, Partial: true},
		{Method: http.MethodGet, Path: "/account/security", Handler: u.handleSecurity},
		{Method: http.MethodPost, Path: "/account/security/rename", Handler: u.handleRename, MaxBody: formBody},
		{Method: http.MethodPost, Path: "/account/security/remove", Handler: u.handleRemove, MaxBody: formBody},
		{Method: http.MethodPost, Path: "/account/security/recovery", Handler: u.handleRegenerate, MaxBody: formBody},
		{Method: http.MethodGet, Path: "/admin/users/:id/mfa", Handler: u.handleAdminView},
		{Method: http.MethodPost, Path: "/admin/users/:id/mfa/reset", Handler: u.handleAdminReset, MaxBody: formBody, Fresh: true},
		{Method: http.MethodGet, Path: "/admin/api/users/:id/mfa", Handler: u.apiAdminList, API: true},
		{Method: http.MethodDelete, Path: "/admin/api/users/:id/mfa", Handler: u.apiAdminReset, API: true, Fresh: true},
	}
}

// Templates implements web.Templater.
func (u *UI) Templates() (fs.FS, template.FuncMap) { return mfatemplates.FS, nil }

// Nav implements web.Navigator: every signed-in user manages their factors.
func (u *UI) Nav(identity.User) []web.NavLink {
	return []web.NavLink{{Label: "Security", Path: "/account/security"}}
}

// Page names (templates/mfa).
const (
	pageChallenge = "mfa_challenge.html"
	pageSetup     = "mfa_setup.html"
	pageCodes     = "mfa_recovery_codes.html"
	pageSecurity  = "account_security.html"
	pageAdmin     = "admin_user_mfa.html"
)

// session returns the signed-in (possibly pending) session, or answers.
func (u *UI) session(c *gin.Context) (store.Session, bool) {
	sess, ok := web.CurrentSession(c)
	if !ok {
		web.RedirectToLogin(c)
		return store.Session{}, false
	}
	return sess, true
}

// need is what the page was asked for: the methods that count here
// (query "methods", within the deployment's), and whether a factor given
// earlier in the session is not enough (fresh=1).
type need struct {
	methods []string
	fresh   bool
}

func (u *UI) needOf(q url.Values) need {
	n := need{fresh: q.Get("fresh") == "1"}
	for m := range strings.SplitSeq(q.Get("methods"), ",") {
		if m = strings.TrimSpace(m); u.policy.Allows(m) && !slices.Contains(n.methods, m) {
			n.methods = append(n.methods, m)
		}
	}
	if len(n.methods) == 0 {
		n.methods = slices.Clone(u.policy.Methods())
	}
	return n
}

func (n need) allows(m string) bool { return slices.Contains(n.methods, m) }

func (n need) query() string {
	q := url.Values{"methods": {strings.Join(n.methods, ",")}}
	if n.fresh {
		q.Set("fresh", "1")
	}
	return q.Encode()
}

type challengeData struct {
	// URL, when set, is put into the address bar by the page's script
	// (the page answers the password POST: see FactorPage).
	URL  string
	Next string
	// Query is methods and fresh (url.Values.Encode), for the forms'
	// actions: a template.URL, or html/template would escape it as one
	// query component ("methods%3dwebauthn...") and the POST would lose
	// the methods that count.
	Query         template.URL
	TOTP          bool // a TOTP code is asked for
	Passkey       bool // a WebAuthn button is shown
	Recovery      bool // the recovery-code form is offered
	RecoveryLeft  int
	Pending       bool // the sign-in waits for this step
	NoFactor      bool // the user has no factor that counts here
	OnlyPasskey   bool // the role demands a passkey or security key
	Error, Notice string
	RetryAfter    string
}

// FactorPage implements web.FactorPager: the challenge page as the answer
// to the password POST. Its script puts the /mfa URL into the address bar.
func (u *UI) FactorPage(c *gin.Context, next string) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	next = web.SafeNext(next)
	var known *Counts
	if h := web.FactorHintOf(c.Request.Context()); h != nil {
		if ch, ok := h.V.(countsHint); ok && ch.userID == sess.User.ID {
			known = &ch.n
		}
	}
	d, err := u.challengeWith(c.Request.Context(), sess, u.needOf(url.Values{}), next, known)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	d.URL = web.FactorPath + "?next=" + url.QueryEscape(next)
	web.Render(c, http.StatusOK, pageChallenge, d)
}

// handleChallenge asks for the second factor (sign-in, step-up).
func (u *UI) handleChallenge(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	if sess.Pending == store.PendingEnroll {
		c.Redirect(http.StatusSeeOther, web.FactorPath+"/setup?next="+url.QueryEscape(web.SafeNext(c.Query("next"))))
		return
	}
	n := u.needOf(c.Request.URL.Query())
	next := web.SafeNext(c.Query("next"))
	if sess.Pending == "" && !n.fresh &&
		(web.FactorNeed{MFA: true, Methods: n.methods}).Satisfied(sess.SignIn(), u.policy.Methods(), u.now()) {
		// A factor that counts here was given in this session already (the
		// page was reached again: a sign-in that began at this page, the
		// back button): straight on, rather than asking once more.
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	d, err := u.challenge(c.Request.Context(), sess, n, next)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	web.Render(c, http.StatusOK, pageChallenge, d)
}

func (u *UI) challenge(ctx context.Context, sess store.Session, n need, next string) (challengeData, error) {
	return u.challengeWith(ctx, sess, n, next, nil)
}

// challengeWith is challenge with the user's factor count already known
// (known, when not nil: read at this sign-in's password).
func (u *UI) challengeWith(ctx context.Context, sess store.Session, n need, next string, known *Counts) (challengeData, error) {
	var cnt Counts
	if known != nil {
		cnt = *known
	} else {
		var err error
		if cnt, err = u.f.Count(ctx, sess.User.ID); err != nil {
			return challengeData{}, err
		}
	}
	d := challengeData{Next: next, Query: template.URL(n.query()), Pending: sess.Pending != "",
		TOTP:         n.allows(identity.MethodTOTP) && cnt.TOTP > 0,
		Passkey:      u.passkey != nil && n.allows(identity.MethodWebAuthn) && cnt.WebAuthn > 0,
		Recovery:     n.allows(identity.MethodRecovery) && cnt.Recovery > 0,
		RecoveryLeft: cnt.Recovery,
		OnlyPasskey:  len(n.methods) == 1 && n.methods[0] == identity.MethodWebAuthn,
	}
	d.NoFactor = !d.TOTP && !d.Passkey
	if d.NoFactor {
		d.Recovery = false // a recovery code replaces a lost factor, not a missing one
	}
	return d, nil
}

// stepped is the Authn after a second factor of method given now.
func (u *UI) stepped(sess store.Session, method string, uv bool) identity.Authn {
	a := sess.Authn
	if a.Time.IsZero() {
		a.Time = sess.CreatedAt
	}
	a.Method, a.FactorTime, a.UserVerified = method, u.now().UTC(), uv
	return a
}

// limited checks the wrong-code limiter; when it refuses it answers 429
// with Retry-After and returns true.
func (u *UI) limited(c *gin.Context, sess store.Session) bool {
	d, err := u.limiter.Check(c.Request.Context(), limitKey(sess.User.ID), web.ClientIP(c))
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return true
	}
	if d.Allowed {
		c.Set(failuresKey, d.Failures)
		return false
	}
	secs := max(int((d.RetryAfter+time.Second-1)/time.Second), 1)
	c.Header("Retry-After", strconv.Itoa(secs))
	u.record(c, sess, "mfa.verify", "", "rate_limited", nil)
	web.Fail(c, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong codes. Try again in %s.", waitText(secs)), nil)
	return true
}

func limitKey(userID string) string { return "u:" + userID }

// failuresKey records in the request whether the limiter saw failures of
// the user (limited); succeed skips the reset when it saw none.
const failuresKey = "mfa.failures"

// succeed forgets the user's wrong codes after a right one.
func (u *UI) succeed(c *gin.Context, sess store.Session) {
	if v, ok := c.Get(failuresKey); ok && v == false {
		return // nothing counted in this window
	}
	if err := u.limiter.Succeed(c.Request.Context(), limitKey(sess.User.ID)); err != nil {
		u.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "mfa limiter: reset", slog.String("err", err.Error()))
	}
}

// wrong counts a wrong code.
func (u *UI) wrong(c *gin.Context, sess store.Session) {
	if err := u.limiter.Fail(c.Request.Context(), limitKey(sess.User.ID), web.ClientIP(c)); err != nil {
		u.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "mfa limiter: count failure", slog.String("err", err.Error()))
	}
}

// passed finishes a successful second factor: the session is replaced by
// one that records it, the limiter forgets the user's failures, the event
// is audited, and the browser goes on to next.
func (u *UI) passed(c *gin.Context, sess store.Session, method, credID string, uv bool) (string, bool) {
	u.succeed(c, sess)
	if _, err := web.UpgradeSession(c, u.stepped(sess, method, uv)); err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return "", false
	}
	u.record(c, sess, "mfa.verify", credID, "success", map[string]string{"method": method})
	return web.SafeNext(c.PostForm("next")), true
}

func (u *UI) handleTOTP(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || u.limited(c, sess) {
		return
	}
	n := u.needOf(c.Request.URL.Query())
	next := web.SafeNext(c.PostForm("next"))
	if !n.allows(identity.MethodTOTP) {
		web.Fail(c, http.StatusBadRequest, "An authenticator app code does not count here.", nil)
		return
	}
	cred, err := u.f.VerifyTOTP(c.Request.Context(), sess.User.ID, c.PostForm("code"))
	if err != nil {
		u.codeRejected(c, sess, n, next, identity.MethodTOTP, err)
		return
	}
	if to, ok := u.passed(c, sess, identity.MethodTOTP, cred.ID, false); ok {
		c.Redirect(http.StatusSeeOther, to)
	}
}

func (u *UI) handleRecovery(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || u.limited(c, sess) {
		return
	}
	n := u.needOf(c.Request.URL.Query())
	next := web.SafeNext(c.PostForm("next"))
	if !n.allows(identity.MethodRecovery) {
		web.Fail(c, http.StatusBadRequest, "A recovery code does not count here.", nil)
		return
	}
	err := u.f.UseRecoveryCode(c.Request.Context(), sess.User.ID, c.PostForm("code"))
	if err != nil {
		u.codeRejected(c, sess, n, next, identity.MethodRecovery, err)
		return
	}
	to, ok := u.passed(c, sess, identity.MethodRecovery, "", false)
	if !ok {
		return
	}
	left, err := u.f.RecoveryCodesLeft(c.Request.Context(), sess.User.ID)
	if err == nil && left <= 3 {
		// Tell the user, on the security page, that codes run out.
		to = "/account/security?low=1&next=" + url.QueryEscape(to)
	}
	c.Redirect(http.StatusSeeOther, to)
}

// codeRejected answers a code that was not accepted: a wrong or replayed
// one re-renders the page (200, counted); a store failure is a 503.
func (u *UI) codeRejected(c *gin.Context, sess store.Session, n need, next, method string, err error) {
	var msg, result string
	switch {
	case errors.Is(err, ErrReplayed):
		msg, result = "That code was already used. Wait for the next one.", "replayed"
	case errors.Is(err, ErrWrongCode), errors.Is(err, ErrNoCredential):
		msg, result = "That code is not right.", "wrong_code"
	default:
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	u.wrong(c, sess)
	u.record(c, sess, "mfa.verify", "", result, map[string]string{"method": method})
	d, derr := u.challenge(c.Request.Context(), sess, n, next)
	if derr != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", derr)
		return
	}
	d.Error = msg
	web.Render(c, http.StatusOK, pageChallenge, d)
}

func (u *UI) record(c *gin.Context, sess store.Session, action, object, result string, detail map[string]string) {
	u.audit.Record(c.Request.Context(), audit.Event{Actor: sess.User.Username, Action: action, Object: object,
		Result: result, ClientIP: web.ClientIP(c), RequestID: web.RequestID(c.Request.Context()), Detail: detail})
}

func waitText(secs int) string {
	if secs < 60 {
		return strconv.Itoa(secs) + " seconds"
	}
	m := (secs + 59) / 60
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}

// qrDataURL is a PNG as a data: URL (the page's CSP allows it, see
// web.AllowDataImages).
func qrDataURL(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

func itoa(n int) string { return strconv.Itoa(n) }
