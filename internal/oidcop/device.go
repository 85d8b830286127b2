package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// UserCodeAlphabet is the user-code character set RFC 8628 §6.1 suggests
// (no vowels, no lookalikes); codes are 8 of them, shown XXXX-XXXX.
const UserCodeAlphabet = op.CharSetBase20

// UserCodeLength is the number of characters of a user code.
const UserCodeLength = 8

// NormalizeUserCode turns what a user typed into the stored form: case is
// ignored, dashes and spaces are dropped; the result must be exactly 8
// characters of UserCodeAlphabet.
func NormalizeUserCode(s string) (string, bool) {
	if len(s) > 32 {
		return "", false
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '-' || r == ' ':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 'Z' || !strings.ContainsRune(UserCodeAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != UserCodeLength {
		return "", false
	}
	return b.String(), true
}

// FormatUserCode shows a normalized code as XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// Errors of DeviceRequest, ApproveDevice and DenyDevice (test with
// errors.Is). A Redis outage wraps store.ErrUnavailable instead.
var (
	ErrUnknownCode    = errors.New("unknown user code")
	ErrExpired        = errors.New("device code expired")
	ErrAlreadyDecided = errors.New("device request already approved or denied")
)

// DeviceRequest is a pending device authorization, as the approval page
// shows it.
type DeviceRequest struct {
	UserCode   string // XXXX-XXXX
	ClientID   string
	ClientName string
	Scopes     []string
	// ClientIP is the address the device authorization request came from.
	ClientIP string
	Created  time.Time
	Expires  time.Time
}

// DeviceRequest looks a pending device authorization up by its user code
// (typed in any case, with or without the dash). ErrUnknownCode for a
// malformed or unknown code, ErrExpired after its lifetime,
// ErrAlreadyDecided once approved or denied.
func (p *Provider) DeviceRequest(ctx context.Context, userCode string) (DeviceRequest, error) {
	_, d, err := p.deviceByCode(ctx, userCode)
	if err != nil {
		return DeviceRequest{}, err
	}
	name := d.ClientID
	if c, ok := p.clients[d.ClientID]; ok {
		name = c.name
	}
	return DeviceRequest{UserCode: FormatUserCode(d.UserCode), ClientID: d.ClientID, ClientName: name,
		Scopes: d.Scopes, ClientIP: d.ClientIP, Created: d.Created, Expires: d.Expires}, nil
}

func (p *Provider) deviceByCode(ctx context.Context, userCode string) (string, store.OIDCDevice, error) {
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return "", store.OIDCDevice{}, fmt.Errorf("oidcop: device: %w", ErrUnknownCode)
	}
	h, d, err := p.st.DeviceByUserCode(ctx, code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", d, fmt.Errorf("oidcop: device: %w", ErrUnknownCode)
	case err != nil:
		return "", d, fmt.Errorf("oidcop: device: %w", err)
	case d.State != store.DevicePending:
		return h, d, fmt.Errorf("oidcop: device: %w", ErrAlreadyDecided)
	case !p.now().Before(d.Expires):
		return h, d, fmt.Errorf("oidcop: device: %w", ErrExpired)
	}
	return h, d, nil
}

// ApproveDevice approves the device authorization of userCode for user
// (the signed-in user who pressed Approve), who authenticated as authn
// (the approving session's, store.Session.SignIn): the device's next poll
// gets tokens for user, and the grant records authn's amr and auth_time
// (the ID token's amr, acr and auth_time; what the token exchange checks a
// role's MFA requirement against). Errors as DeviceRequest. Not audited
// here: the device page, which knows the session and the request, records
// device.approve.
func (p *Provider) ApproveDevice(ctx context.Context, userCode string, user identity.User, authn identity.Authn) error {
	return p.decideDevice(ctx, userCode, &user, authn)
}

// DenyDevice denies it: the device's next poll gets access_denied (the
// page records device.deny).
func (p *Provider) DenyDevice(ctx context.Context, userCode string) error {
	return p.decideDevice(ctx, userCode, nil, identity.Authn{})
}

func (p *Provider) decideDevice(ctx context.Context, userCode string, user *identity.User, authn identity.Authn) error {
	h, _, err := p.deviceByCode(ctx, userCode)
	if err != nil {
		return err
	}
	var sub string
	var js []byte
	var amr []string
	now := p.now()
	if user != nil {
		if user.ID == "" || user.Username == "" {
			return errors.New("oidcop: device: approving user has no ID")
		}
		if js, err = json.Marshal(user); err != nil {
			return fmt.Errorf("oidcop: device: %w", err)
		}
		sub = p.Subject(*user)
		if authn.Method == "" {
			authn.Method = identity.MethodPassword
		}
		if authn.Time.IsZero() {
			authn.Time = now
		}
		amr = authn.AMR()
	}
	err = p.st.DecideDevice(ctx, h, user != nil, sub, js, authn.Time, authn.FactorTime, amr, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("oidcop: device: %w", ErrUnknownCode)
	case errors.Is(err, store.ErrDecided):
		return fmt.Errorf("oidcop: device: %w", ErrAlreadyDecided)
	case errors.Is(err, store.ErrExpired):
		return fmt.Errorf("oidcop: device: %w", ErrExpired)
	case err != nil:
		return fmt.Errorf("oidcop: device: %w", err)
	}
	return nil
}

// clientFromRequest authenticates the client of a token-endpoint request
// (form already parsed): HTTP Basic or client_secret_post for confidential
// clients, client_id alone for public ones (RFC 6749 §2.3.1, §3.2.1).
func (p *Provider) clientFromRequest(r *http.Request) (*client, *oidc.Error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Get("client_secret") != "" {
			return nil, oidc.ErrInvalidRequest().WithDescription("use one client authentication method")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication missing")
	}
	c, ok := p.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if c.public {
		if secret != "" {
			return nil, oidc.ErrInvalidClient().WithDescription("a public client has no secret")
		}
		return c, nil
	}
	if !c.checkSecret(secret) {
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return c, nil
}

// AuthenticateClient authenticates the client of a token-endpoint request
// (for the token-exchange handler) and checks that it may use grantType
// (a wire value, e.g. urn:ietf:params:oauth:grant-type:token-exchange).
// On failure it answers the error itself (invalid_client 401,
// unauthorized_client 400) and returns false.
func (p *Provider) AuthenticateClient(c *gin.Context, grantType string) (clientID string, ok bool) {
	cl, e := p.clientFromRequest(c.Request)
	if e != nil {
		TokenError(c, string(e.ErrorType), e.Description)
		return "", false
	}
	if !cl.hasGrant(oidc.GrantType(grantType)) {
		TokenError(c, "unauthorized_client", "the client may not use this grant type")
		return "", false
	}
	return cl.id, true
}

// devicePoll answers a device_code token request (RFC 8628 §3.4, §3.5).
// Every state but "approved" is answered from one Redis round trip
// (store.OIDC.PollDevice); an approved authorization is redeemed once and
// handed to zitadel to issue the tokens.
func (p *Provider) devicePoll(c *gin.Context) {
	cl, e := p.clientFromRequest(c.Request)
	if e != nil {
		TokenError(c, string(e.ErrorType), e.Description)
		return
	}
	if !cl.hasGrant(oidc.GrantTypeDeviceCode) {
		TokenError(c, "unauthorized_client", "the client may not use the device code grant")
		return
	}
	dc := c.Request.PostForm.Get("device_code")
	if dc == "" {
		TokenError(c, "invalid_request", "device_code missing")
		return
	}
	res, err := p.st.PollDevice(c.Request.Context(), hashSecret(dc), cl.id, p.now())
	if err != nil {
		p.log.Warn("oidc: device poll: store unavailable", "err", err)
		TokenError(c, "temporarily_unavailable", "The service is temporarily unavailable; try again shortly.")
		return
	}
	switch res.Status {
	case store.PollPending:
		TokenError(c, "authorization_pending", "")
	case store.PollSlowDown:
		TokenError(c, "slow_down", fmt.Sprintf("poll at most every %d seconds", int(res.Interval/time.Second)))
	case store.PollExpired:
		TokenError(c, "expired_token", "the device code has expired; start again")
	case store.PollDenied:
		TokenError(c, "access_denied", "the user denied the request")
	case store.PollApproved:
		p.redeemDevice(c, res.Device)
	default: // unknown, another client's, or already redeemed
		TokenError(c, "invalid_grant", "invalid or used device code")
	}
}

func (p *Provider) redeemDevice(c *gin.Context, d store.OIDCDevice) {
	var u identity.User
	if err := json.Unmarshal(d.User, &u); err != nil {
		TokenError(c, "invalid_grant", "invalid device code")
		return
	}
	r, sc := p.withScratch(c)
	amr := d.AMR
	if len(amr) == 0 { // approved before devices recorded it
		amr = []string{"pwd"}
	}
	state := &op.DeviceAuthorizationState{
		ClientID: d.ClientID, Audience: []string{d.ClientID}, Scopes: slices.Clone(d.Scopes),
		Expires: d.Expires, Done: true, Subject: d.Subject, AMR: amr, AuthTime: d.AuthTime,
	}
	sc.device = &approvedDevice{state: state, user: u, userJS: d.User, factorTime: d.FactorTime}
	p.runOP(c, r, sc, func(w http.ResponseWriter, r *http.Request) { op.DeviceAccessToken(w, r, p.op) })
}
