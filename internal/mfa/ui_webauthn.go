package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// The WebAuthn ceremonies of the pages run in two JSON requests each
// (web/static/mfa.js): begin answers {"ceremony", "options"} (the options
// for navigator.credentials.get or create); finish takes {"ceremony",
// "credential", "next", "name"} and answers {"redirect"}. Errors are the
// JSON errors of web.Fail ({"error", "request_id"}).

type beginAnswer struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

type finishRequest struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
	Next       string          `json:"next"`
	Name       string          `json:"name"`
}

func passkeyUser(u identity.User) WebAuthnUser {
	name := u.Username
	display := u.DisplayName
	if display == "" {
		display = name
	}
	return WebAuthnUser{ID: u.ID, Name: name, DisplayName: display}
}

func (u *UI) listPasskeys(ctx context.Context, userID string) ([]factorView, error) {
	if u.passkey == nil {
		return nil, nil
	}
	creds, err := u.passkey.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]factorView, 0, len(creds))
	for _, c := range creds {
		kind := "Security key"
		if c.Platform {
			kind = "Passkey on this device"
		}
		out = append(out, factorView{ID: c.ID, Name: c.Name, Kind: kind, Method: identity.MethodWebAuthn,
			Created: dateText(c.CreatedAt), LastUsed: dateText(c.LastUsedAt)})
	}
	return out, nil
}

func (u *UI) renamePasskey(ctx context.Context, userID, id, name string) error {
	if u.passkey == nil {
		return ErrNoCredential
	}
	return u.passkey.Rename(ctx, userID, id, name)
}

func (u *UI) deletePasskey(ctx context.Context, userID, id string) error {
	if u.passkey == nil {
		return ErrNoCredential
	}
	return u.passkey.Delete(ctx, userID, id)
}

// readFinish decodes a finish request (the route's body limit bounds it).
func readFinish(c *gin.Context) (finishRequest, bool) {
	var req finishRequest
	dec := json.NewDecoder(c.Request.Body)
	if err := dec.Decode(&req); err != nil || req.Ceremony == "" || len(req.Credential) == 0 {
		web.Fail(c, http.StatusBadRequest, "The browser's answer was not understood; try again.", nil)
		return finishRequest{}, false
	}
	return req, true
}

// passkeyFailed answers a refused or failed ceremony: a refusal is a 400
// (counted as a wrong code at sign-in), an outage a 503.
func (u *UI) passkeyFailed(c *gin.Context, sess store.Session, action string, err error, count bool) {
	var msg, result string
	switch {
	case errors.Is(err, ErrCloned):
		msg, result = "This security key or passkey looks copied, so it was refused. Use another factor and tell your IT helpdesk.", "cloned"
	case errors.Is(err, ErrCeremony), errors.Is(err, ErrNoCredential):
		msg, result = "This attempt has expired or was already used; try again.", "expired"
	case errors.Is(err, ErrBadResponse):
		msg, result = "The browser's answer was not accepted; try again.", "rejected"
	case errors.Is(err, ErrTooMany):
		web.Fail(c, http.StatusConflict, "You have as many passkeys and security keys as allowed (20). Remove one first.", nil)
		return
	case errors.Is(err, ErrBadName):
		web.Fail(c, http.StatusBadRequest, "A name has at most 64 characters.", nil)
		return
	default:
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	if count {
		u.wrong(c, sess)
	}
	u.record(c, sess, action, "", result, map[string]string{"method": identity.MethodWebAuthn})
	web.Fail(c, http.StatusBadRequest, msg, nil)
}

func (u *UI) handlePasskeyBegin(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || u.limited(c, sess) {
		return
	}
	if u.passkey == nil || !u.needOf(c.Request.URL.Query()).allows(identity.MethodWebAuthn) {
		web.Fail(c, http.StatusBadRequest, "A passkey or security key does not count here.", nil)
		return
	}
	opts, id, err := u.passkey.BeginLogin(c.Request.Context(), passkeyUser(sess.User))
	if err != nil {
		u.passkeyFailed(c, sess, "mfa.verify", err, false)
		return
	}
	c.JSON(http.StatusOK, beginAnswer{Ceremony: id, Options: opts})
}

func (u *UI) handlePasskeyFinish(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || u.limited(c, sess) {
		return
	}
	if u.passkey == nil || !u.needOf(c.Request.URL.Query()).allows(identity.MethodWebAuthn) {
		web.Fail(c, http.StatusBadRequest, "A passkey or security key does not count here.", nil)
		return
	}
	req, ok := readFinish(c)
	if !ok {
		return
	}
	cred, uv, err := u.passkey.FinishLogin(c.Request.Context(), passkeyUser(sess.User), req.Ceremony, req.Credential)
	if err != nil {
		u.passkeyFailed(c, sess, "mfa.verify", err, true)
		return
	}
	u.succeed(c, sess)
	if _, err := web.UpgradeSession(c, u.stepped(sess, identity.MethodWebAuthn, uv)); err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	u.record(c, sess, "mfa.verify", cred.ID, "success", map[string]string{"method": identity.MethodWebAuthn})
	c.JSON(http.StatusOK, gin.H{"redirect": web.SafeNext(req.Next)})
}

func (u *UI) handleSetupPasskeyBegin(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	if !u.mayChangeAPI(c, sess) {
		return
	}
	if u.passkey == nil || !u.policy.Allows(identity.MethodWebAuthn) {
		web.Fail(c, http.StatusBadRequest, "Passkeys and security keys are not used here.", nil)
		return
	}
	opts, id, err := u.passkey.BeginRegistration(c.Request.Context(), passkeyUser(sess.User))
	if err != nil {
		u.passkeyFailed(c, sess, "mfa.enroll", err, false)
		return
	}
	c.JSON(http.StatusOK, beginAnswer{Ceremony: id, Options: opts})
}

func (u *UI) handleSetupPasskeyFinish(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok || !u.mayChangeAPI(c, sess) {
		return
	}
	if u.passkey == nil || !u.policy.Allows(identity.MethodWebAuthn) {
		web.Fail(c, http.StatusBadRequest, "Passkeys and security keys are not used here.", nil)
		return
	}
	req, ok := readFinish(c)
	if !ok {
		return
	}
	name, err := CredentialName(req.Name, "Passkey")
	var cred WebAuthnCredential
	if err == nil {
		cred, err = u.passkey.FinishRegistration(c.Request.Context(), passkeyUser(sess.User), req.Ceremony, name, req.Credential)
	}
	if err != nil {
		u.passkeyFailed(c, sess, "mfa.enroll", err, false)
		return
	}
	u.record(c, sess, "mfa.enroll", cred.ID, "success", map[string]string{"method": identity.MethodWebAuthn})
	codes, next, err := u.afterEnroll(c, sess, identity.MethodWebAuthn, cred.UserVerified, web.SafeNext(req.Next))
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	// The page shows the first recovery codes (once) before going on.
	c.JSON(http.StatusOK, gin.H{"redirect": next, "codes": codes})
}

// mayChangeAPI is mayChange for the JSON routes: where the pages would
// redirect, it answers 403 with the page to go to.
func (u *UI) mayChangeAPI(c *gin.Context, sess store.Session) bool {
	to, err := u.changeGate(c.Request.Context(), sess, web.FactorPath+"/setup?method=webauthn")
	switch {
	case err != nil:
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return false
	case to != "":
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "Confirm who you are first.", "redirect": to,
			"request_id": web.RequestID(c.Request.Context())})
		return false
	}
	return true
}
