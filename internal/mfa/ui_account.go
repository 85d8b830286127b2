package mfa

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// factorView is one factor as the security pages show it.
type factorView struct {
	ID, Name, Kind, Method string
	Created, LastUsed      string
	Detail                 string
}

type securityData struct {
	Factors      []factorView
	RecoveryLeft int
	Required     bool
	AllowTOTP    bool
	AllowPasskey bool
	Low          bool // recovery codes run out
	Next         string
	Notice       string
	Error        string
	Method       string // how this session signed in
}

// listFactors returns the user's factors, oldest first.
func (u *UI) listFactors(ctx context.Context, userID string) ([]factorView, int, error) {
	totps, err := u.f.ListTOTP(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	var out []factorView
	for _, t := range totps {
		out = append(out, factorView{ID: t.ID, Name: t.Name, Kind: "Authenticator app", Method: identity.MethodTOTP,
			Created: dateText(t.CreatedAt), LastUsed: dateText(t.LastUsedAt)})
	}
	pk, err := u.listPasskeys(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	out = append(out, pk...)
	slices.SortStableFunc(out, func(a, b factorView) int { return cmpText(a.Created, b.Created) })
	left, err := u.f.RecoveryCodesLeft(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	return out, left, nil
}

func cmpText(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func dateText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func (u *UI) security(c *gin.Context, sess store.Session) (securityData, error) {
	fs, left, err := u.listFactors(c.Request.Context(), sess.User.ID)
	if err != nil {
		return securityData{}, err
	}
	m := sess.Authn.Method
	if m == "" {
		m = identity.MethodPassword
	}
	return securityData{Factors: fs, RecoveryLeft: left, Required: u.policy.Required(sess.User),
		AllowTOTP:    u.policy.Allows(identity.MethodTOTP),
		AllowPasskey: u.passkey != nil && u.policy.Allows(identity.MethodWebAuthn),
		Low:          left <= 3 && len(fs) > 0 && u.policy.Allows(identity.MethodRecovery),
		Next:         web.SafeNext(c.Query("next")), Method: m}, nil
}

// handleSecurity lists the user's factors.
func (u *UI) handleSecurity(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	d, err := u.security(c, sess)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	switch c.Query("done") {
	case "renamed":
		d.Notice = "Renamed."
	case "removed":
		d.Notice = "Removed."
	}
	web.Render(c, http.StatusOK, pageSecurity, d)
}

// kindOf tells which store holds credential id of the user.
func (u *UI) kindOf(ctx context.Context, userID, id string) (string, error) {
	totps, err := u.f.ListTOTP(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, t := range totps {
		if t.ID == id {
			return identity.MethodTOTP, nil
		}
	}
	pk, err := u.listPasskeys(ctx, userID)
	if err != nil {
		return "", err
	}
	for _, p := range pk {
		if p.ID == id {
			return identity.MethodWebAuthn, nil
		}
	}
	return "", ErrNoCredential
}

func (u *UI) handleRename(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || !u.mayChange(c, sess, "/account/security") {
		return
	}
	ctx := c.Request.Context()
	id := c.PostForm("id")
	kind, err := u.kindOf(ctx, sess.User.ID, id)
	if err == nil {
		var name string
		if name, err = CredentialName(c.PostForm("name"), ""); err == nil && name == "" {
			err = ErrBadName
		}
		if err == nil && kind == identity.MethodTOTP {
			err = u.f.RenameTOTP(ctx, sess.User.ID, id, name)
		} else if err == nil {
			err = u.renamePasskey(ctx, sess.User.ID, id, name)
		}
	}
	if !u.changeFailed(c, sess, err) {
		u.record(c, sess, "mfa.rename", id, "success", map[string]string{"method": kind})
		c.Redirect(http.StatusSeeOther, "/account/security?done=renamed")
	}
}

func (u *UI) handleRemove(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || !u.mayChange(c, sess, "/account/security") {
		return
	}
	ctx := c.Request.Context()
	id := c.PostForm("id")
	kind, err := u.kindOf(ctx, sess.User.ID, id)
	var cnt Counts
	if err == nil {
		cnt, err = u.f.Count(ctx, sess.User.ID)
	}
	if err == nil && !u.policy.CanRemove(sess.User, cnt, kind) {
		u.record(c, sess, "mfa.remove", id, "refused_last_factor", map[string]string{"method": kind})
		d, derr := u.security(c, sess)
		if derr != nil {
			web.Fail(c, http.StatusServiceUnavailable, "", derr)
			return
		}
		d.Error = "You must keep at least one second factor. Add another one first, then remove this one."
		web.Render(c, http.StatusConflict, pageSecurity, d)
		return
	}
	if err == nil && kind == identity.MethodTOTP {
		err = u.f.DeleteTOTP(ctx, sess.User.ID, id)
	} else if err == nil {
		err = u.deletePasskey(ctx, sess.User.ID, id)
	}
	if !u.changeFailed(c, sess, err) {
		u.record(c, sess, "mfa.remove", id, "success", map[string]string{"method": kind})
		c.Redirect(http.StatusSeeOther, "/account/security?done=removed")
	}
}

// changeFailed answers a failed change (and returns true): an unknown
// credential 404, a bad name 400, a store failure 503.
func (u *UI) changeFailed(c *gin.Context, sess store.Session, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrNoCredential):
		web.Fail(c, http.StatusNotFound, "There is no such factor.", nil)
	case errors.Is(err, ErrBadName):
		web.Fail(c, http.StatusBadRequest, "A name has 1 to 64 characters, without control characters.", nil)
	default:
		web.Fail(c, http.StatusServiceUnavailable, "", err)
	}
	return true
}

// handleRegenerate replaces the recovery codes and shows the new ones once.
func (u *UI) handleRegenerate(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || !u.mayChange(c, sess, "/account/security") {
		return
	}
	if !u.policy.Allows(identity.MethodRecovery) {
		web.Fail(c, http.StatusBadRequest, "Recovery codes are not used here.", nil)
		return
	}
	ctx := c.Request.Context()
	enrolled, err := u.policy.Enrolled(ctx, sess.User.ID)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	if !enrolled {
		web.Fail(c, http.StatusConflict, "Set up a second factor first; recovery codes replace a lost one.", nil)
		return
	}
	codes, err := u.f.RegenerateRecoveryCodes(ctx, sess.User.ID)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	u.record(c, sess, "mfa.recovery.regenerate", "", "success", nil)
	web.Render(c, http.StatusOK, pageCodes, codesData{Codes: codes, Next: "/account/security"})
}

type adminData struct {
	User         string
	UserID       string
	Factors      []factorView
	RecoveryLeft int
	Notice       string
}

// admin checks that the session is an admin's (403 otherwise).
func (u *UI) admin(c *gin.Context) (store.Session, bool) {
	sess, ok := u.session(c)
	if !ok {
		return store.Session{}, false
	}
	if !u.isAdmin(sess.User) {
		web.Fail(c, http.StatusForbidden, "Only administrators may see this page.", nil)
		return store.Session{}, false
	}
	return sess, true
}

// userParam is the :id of the admin routes (a directory ID, bounded).
func userParam(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if checkUserID(id) != nil || len(id) > 256 {
		web.Fail(c, http.StatusBadRequest, "That is not a user ID.", nil)
		return "", false
	}
	return id, true
}

// handleAdminView shows a user's factors to an admin.
func (u *UI) handleAdminView(c *gin.Context) {
	if _, ok := u.admin(c); !ok {
		return
	}
	id, ok := userParam(c)
	if !ok {
		return
	}
	fs, left, err := u.listFactors(c.Request.Context(), id)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	d := adminData{User: c.Query("name"), UserID: id, Factors: fs, RecoveryLeft: left}
	if c.Query("done") == "reset" {
		d.Notice = "Every second factor of this user was removed; they set up a new one at their next sign-in."
	}
	web.Render(c, http.StatusOK, pageAdmin, d)
}

// handleAdminReset removes every factor of a user; the admin gives their
// own second factor afresh first.
func (u *UI) handleAdminReset(c *gin.Context) {
	sess, ok := u.admin(c)
	if !ok {
		return
	}
	id, ok := userParam(c)
	if !ok {
		return
	}
	back := "/admin/users/" + id + "/mfa"
	if !web.RequireFactor(c, web.FactorNeed{MFA: true, MaxAge: u.policy.cfg.StepUpMaxAge}, back) {
		return
	}
	n, err := u.f.Reset(c.Request.Context(), id)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	u.record(c, sess, "mfa.reset", id, "success", map[string]string{
		"totp": itoa(n.TOTP), "webauthn": itoa(n.WebAuthn), "recovery_codes": itoa(n.Recovery)})
	c.Redirect(http.StatusSeeOther, back+"?done=reset")
}

// apiAdmin is admin for the JSON API: 401 without a session, 403 for a
// non-admin (JSON, like the admin API).
func (u *UI) apiAdmin(c *gin.Context) (store.Session, string, bool) {
	sess, ok := web.CurrentSession(c)
	if !ok {
		web.Fail(c, http.StatusUnauthorized, "Sign in first.", nil)
		return store.Session{}, "", false
	}
	if !u.isAdmin(sess.User) {
		web.Fail(c, http.StatusForbidden, "Only administrators may do this.", nil)
		return store.Session{}, "", false
	}
	id, ok := userParam(c)
	return sess, id, ok
}

type apiFactors struct {
	UserID       string      `json:"user_id"`
	Factors      []apiFactor `json:"factors"`
	RecoveryLeft int         `json:"recovery_codes_left"`
	Removed      *apiRemoved `json:"removed,omitempty"`
}

type apiFactor struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Method   string `json:"method"`
	Kind     string `json:"kind"`
	Created  string `json:"created"`
	LastUsed string `json:"last_used,omitempty"`
}

type apiRemoved struct {
	TOTP          int `json:"totp"`
	WebAuthn      int `json:"webauthn"`
	RecoveryCodes int `json:"recovery_codes"`
}

// apiAdminList is GET /admin/api/users/:id/mfa: a user's factors.
func (u *UI) apiAdminList(c *gin.Context) {
	_, id, ok := u.apiAdmin(c)
	if !ok {
		return
	}
	fs, left, err := u.listFactors(c.Request.Context(), id)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	out := apiFactors{UserID: id, Factors: []apiFactor{}, RecoveryLeft: left}
	for _, f := range fs {
		out.Factors = append(out.Factors, apiFactor{ID: f.ID, Name: f.Name, Method: f.Method, Kind: f.Kind,
			Created: f.Created, LastUsed: f.LastUsed})
	}
	c.JSON(http.StatusOK, out)
}

// apiAdminReset is DELETE /admin/api/users/:id/mfa: every factor of the
// user removed, after the admin's own fresh second factor (else 403 with
// the page that asks for it).
func (u *UI) apiAdminReset(c *gin.Context) {
	sess, id, ok := u.apiAdmin(c)
	if !ok {
		return
	}
	need := web.FactorNeed{MFA: true, MaxAge: u.policy.cfg.StepUpMaxAge}
	if !need.Satisfied(sess.SignIn(), u.policy.Methods(), u.now()) {
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{
			"error":      "Confirm with your own second factor first (in the browser), then try again within a few minutes.",
			"redirect":   web.FactorPath + "?fresh=1&next=" + url.QueryEscape("/admin/users/"+id+"/mfa"),
			"request_id": web.RequestID(c.Request.Context())})
		return
	}
	n, err := u.f.Reset(c.Request.Context(), id)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	u.record(c, sess, "mfa.reset", id, "success", map[string]string{
		"totp": itoa(n.TOTP), "webauthn": itoa(n.WebAuthn), "recovery_codes": itoa(n.Recovery), "via": "api"})
	c.JSON(http.StatusOK, apiFactors{UserID: id, Factors: []apiFactor{},
		Removed: &apiRemoved{TOTP: n.TOTP, WebAuthn: n.WebAuthn, RecoveryCodes: n.Recovery}})
}
