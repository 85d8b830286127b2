package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenidp/warden/internal/access"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
)

// authRequest is a stored auth request (op.AuthRequest).
type authRequest struct {
	ID                  string   `json:"id"`
	ClientID            string   `json:"client_id"`
	RedirectURI         string   `json:"redirect_uri"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	Scopes              []string `json:"scopes"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	// MaxAge is the max_age parameter in seconds (OIDC Core §3.1.2.1);
	// zitadel makes it 0 for prompt=login.
	MaxAge  *uint     `json:"max_age,omitempty"`
	GrantID string    `json:"grant"`
	Created time.Time `json:"created"`
	// Set when the user signed in: who, and how and when they
	// authenticated (the session's identity.Authn as amr and auth_time).
	IsDone   bool            `json:"done,omitempty"`
	Subject  string          `json:"sub,omitempty"`
	User     json.RawMessage `json:"user,omitempty"`
	AuthTime time.Time       `json:"auth_time,omitzero"`
	AMR      []string        `json:"amr,omitempty"`
	// FactorTime is when the sign-in gave its second factor (zero: none).
	FactorTime time.Time `json:"factor_time,omitzero"`
}

func (a *authRequest) GetID() string { return a.ID }

// GetACR is the acr of the sign-in (identity.ACRPassword or ACRMFA).
func (a *authRequest) GetACR() string { return acrOf(a.GetAMR(), a.AuthTime) }

// GetAMR is the sign-in's amr (RFC 8176); ["pwd"] for a request completed
// before auth requests recorded it.
func (a *authRequest) GetAMR() []string {
	if len(a.AMR) == 0 {
		return []string{"pwd"}
	}
	return a.AMR
}
func (a *authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetNonce() string       { return a.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseTypeCode
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.IsDone }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) hasPrompt(p string) bool { return slices.Contains(a.Prompt, p) }

// refreshRequest is a refresh grant in progress (op.RefreshTokenRequest).
type refreshRequest struct {
	grant  store.OIDCGrant
	user   identity.User
	userJS []byte
	scopes []string
	token  string // the presented refresh token
}

func (r *refreshRequest) GetAMR() []string            { return r.grant.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.grant.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.grant.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.grant.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.grant.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// approvedDevice is an approved device authorization being redeemed.
type approvedDevice struct {
	state  *op.DeviceAuthorizationState
	user   identity.User
	userJS []byte
	// factorTime: when the approving session gave its second factor.
	factorTime time.Time
}

// storage is zitadel's op.Storage (plus device authorization, userinfo from
// the request and end_session) on store.OIDC.
type storage struct{ p *Provider }

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.DeviceAuthorizationStorage     = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// ---- auth requests and codes ----

// Bounds of auth request parameters that come back in redirects or tokens.
const (
	maxState     = 1024
	maxNonce     = 512
	maxScopes    = 20
	minChallenge = 43 // RFC 7636 §4.2: BASE64URL(SHA256) is 43 characters
	maxChallenge = 128
)

func validChallenge(s string) bool {
	if len(s) < minChallenge || len(s) > maxChallenge {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~') {
			return false
		}
	}
	return true
}

// CreateAuthRequest stores a validated auth request (zitadel has checked
// the client, the redirect URI, the response type and the scopes). PKCE:
// a public client must send an S256 challenge; the plain method (also the
// default when code_challenge_method is absent, RFC 7636 §4.3) is refused
// for everyone with invalid_request (§4.4.1), sent to the redirect URI.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	p := s.p
	cl, ok := p.clients[req.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	switch {
	case req.CodeChallenge == "" && cl.public:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256 (plain is not accepted)")
	case req.CodeChallenge != "" && !validChallenge(req.CodeChallenge):
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is malformed")
	case len(req.State) > maxState, len(req.Nonce) > maxNonce, len(req.Scopes) > maxScopes:
		return nil, oidc.ErrInvalidRequest().WithDescription("state, nonce or scope too long")
	case req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery:
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode not supported")
	case !slices.Contains(req.Scopes, oidc.ScopeOpenID):
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	if !cl.hasGrant(oidc.GrantTypeCode) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("client may not use the authorization code grant")
	}
	id, err := p.randomID(32)
	if err != nil {
		return nil, outage(ctx, err)
	}
	grant, err := p.randomID(16)
	if err != nil {
		return nil, outage(ctx, err)
	}
	ar := &authRequest{
		ID: id, ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce,
		Scopes: req.Scopes, ResponseMode: string(req.ResponseMode), CodeChallenge: req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod), Prompt: req.Prompt, MaxAge: req.MaxAge, GrantID: grant, Created: p.now().UTC(),
	}
	data, err := json.Marshal(ar)
	if err != nil {
		return nil, fmt.Errorf("oidcop: auth request: %w", err)
	}
	if err := p.st.PutAuthRequest(ctx, id, data, authRequestTTL); err != nil {
		return nil, outage(ctx, err)
	}
	return ar, nil
}

func (p *Provider) loadAuthRequest(ctx context.Context, id string) (*authRequest, error) {
	data, err := p.st.AuthRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	ar := new(authRequest)
	if err := json.Unmarshal(data, ar); err != nil {
		return nil, fmt.Errorf("oidcop: auth request: %w", err)
	}
	return ar, nil
}

// completeAuthRequest binds the signed-in user, and how and when they
// authenticated (authn: amr and auth_time of the grant and its ID tokens),
// to an auth request.
func (p *Provider) completeAuthRequest(ctx context.Context, ar *authRequest, sess store.Session, authn identity.Authn) error {
	u, err := json.Marshal(sess.User)
	if err != nil {
		return fmt.Errorf("oidcop: user: %w", err)
	}
	ar.IsDone, ar.Subject, ar.User, ar.AuthTime, ar.AMR = true, p.Subject(sess.User), u, authn.Time.UTC(), authn.AMR()
	if !authn.FactorTime.IsZero() {
		ar.FactorTime = authn.FactorTime.UTC()
	}
	data, err := json.Marshal(ar)
	if err != nil {
		return fmt.Errorf("oidcop: auth request: %w", err)
	}
	return p.st.UpdateAuthRequest(ctx, ar.ID, data)
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.p.loadAuthRequest(ctx, id)
	if err != nil {
		if isOutage(err) {
			return nil, outage(ctx, err)
		}
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired auth request")
	}
	return ar, nil
}

// AuthRequestByCode redeems a code (once). Codes are zitadel's sealed auth
// request IDs; only their hash is stored. A code presented a second time
// revokes the grant its first redemption created (RFC 6749 §4.1.2: "the
// authorization server MUST deny the request and SHOULD revoke (when
// possible) all tokens previously issued based on that authorization code").
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	p := s.p
	bad := oidc.ErrInvalidGrant().WithDescription("invalid, expired or used code")
	if len(code) > 512 {
		return nil, bad
	}
	id, err := p.op.Crypto().Decrypt(code)
	if err != nil {
		return nil, bad
	}
	data, err := p.st.RedeemCode(ctx, id, hashSecret(code))
	switch {
	case errors.Is(err, store.ErrReused):
		ar := new(authRequest)
		if json.Unmarshal(data, ar) == nil {
			if _, rerr := p.st.RevokeGrant(ctx, ar.GrantID); rerr != nil {
				return nil, outage(ctx, rerr)
			}
			p.record(ctx, audit.Event{Actor: usernameOf(ar.User), Action: "oidc.code_reuse", Object: ar.ClientID,
				Result: "revoked", Detail: map[string]string{"grant": ar.GrantID}})
		}
		return nil, bad
	case isOutage(err):
		return nil, outage(ctx, err)
	case err != nil:
		return nil, bad
	}
	ar := new(authRequest)
	if err := json.Unmarshal(data, ar); err != nil || !ar.IsDone {
		return nil, bad
	}
	return ar, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	if err := s.p.st.SaveCode(ctx, id, hashSecret(code), codeTTL); err != nil {
		if isOutage(err) {
			return outage(ctx, err)
		}
		return oidc.ErrInvalidRequest().WithDescription("auth request already answered")
	}
	return nil
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := s.p.st.DeleteAuthRequest(ctx, id); err != nil {
		return outage(ctx, err)
	}
	return nil
}

func usernameOf(userJSON []byte) string {
	var u struct {
		Username string `json:"username"`
	}
	_ = json.Unmarshal(userJSON, &u)
	return u.Username
}

// ---- tokens ----

// newGrant is the grant of a first token request (code or device).
func (p *Provider) newGrant(ctx context.Context, req op.TokenRequest) (store.OIDCGrant, error) {
	now := p.now()
	g := store.OIDCGrant{Subject: req.GetSubject(), Scopes: req.GetScopes(), Expires: now.Add(p.cfg.RefreshTokenLifetime)}
	switch r := req.(type) {
	case *authRequest:
		g.ID, g.ClientID, g.User, g.AMR, g.AuthTime, g.FactorTime = r.GrantID, r.ClientID, r.User, r.GetAMR(), r.AuthTime, r.FactorTime
	case *op.DeviceAuthorizationState:
		sc := scratchOf(ctx)
		if sc == nil || sc.device == nil || sc.device.state != r {
			return g, errors.New("oidcop: device token request without its approval")
		}
		id, err := p.randomID(16)
		if err != nil {
			return g, err
		}
		g.ID, g.ClientID, g.User, g.AMR, g.AuthTime = id, r.ClientID, sc.device.userJS, slices.Clone(r.AMR), r.AuthTime
		g.FactorTime = sc.device.factorTime
	default:
		return g, fmt.Errorf("oidcop: unexpected token request %T", req)
	}
	return g, nil
}

// accessTokenID is "<grant>.<random>": the grant part finds the family.
func splitTokenID(id string) (grant, at string, ok bool) {
	grant, at, ok = strings.Cut(id, ".")
	return grant, at, ok && grant != "" && at != ""
}

// CreateAccessToken issues an access token without a refresh token (no
// offline_access): a grant of its own that lives as long as the token.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	p := s.p
	g, err := p.newGrant(ctx, req)
	if err != nil {
		return "", time.Time{}, oidc.ErrServerError().WithParent(err)
	}
	at, err := p.randomID(16)
	if err != nil {
		return "", time.Time{}, outage(ctx, err)
	}
	now := p.now()
	if err := p.st.CreateGrant(ctx, g, "", at, p.cfg.AccessTokenLifetime, p.cfg.RefreshIdle, now); err != nil {
		return "", time.Time{}, outage(ctx, err)
	}
	p.recordIssue(ctx, g, req, false)
	return g.ID + "." + at, now.Add(p.cfg.AccessTokenLifetime), nil
}

// CreateAccessAndRefreshTokens issues the first tokens of a grant (code or
// device flow with offline_access), or rotates the refresh token of a
// grant (refresh flow): the presented token stops working, and presenting
// it again revokes the family.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	p := s.p
	now := p.now()
	at, err := p.randomID(16)
	if err != nil {
		return "", "", time.Time{}, outage(ctx, err)
	}
	secret, err := p.randomID(32)
	if err != nil {
		return "", "", time.Time{}, outage(ctx, err)
	}
	if rr, ok := req.(*refreshRequest); ok {
		newRT := rr.grant.ID + "." + secret
		g := rr.grant
		g.User = rr.userJS
		err := p.st.Rotate(ctx, g, hashSecret(rr.token), hashSecret(newRT), at, p.cfg.AccessTokenLifetime, p.cfg.RefreshIdle, now)
		switch {
		case errors.Is(err, store.ErrReused):
			p.recordReuse(ctx, g)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used; every token of this sign-in is revoked")
		case isOutage(err):
			return "", "", time.Time{}, outage(ctx, err)
		case err != nil:
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid or expired refresh token")
		}
		if sc := scratchOf(ctx); sc != nil {
			sc.refreshEnds = g.Expires
		}
		return g.ID + "." + at, newRT, now.Add(p.cfg.AccessTokenLifetime), nil
	}
	g, err := p.newGrant(ctx, req)
	if err != nil {
		return "", "", time.Time{}, oidc.ErrServerError().WithParent(err)
	}
	newRT := g.ID + "." + secret
	if err := p.st.CreateGrant(ctx, g, hashSecret(newRT), at, p.cfg.AccessTokenLifetime, p.cfg.RefreshIdle, now); err != nil {
		return "", "", time.Time{}, outage(ctx, err)
	}
	p.recordIssue(ctx, g, req, true)
	if sc := scratchOf(ctx); sc != nil {
		sc.refreshEnds = g.Expires
	}
	return g.ID + "." + at, newRT, now.Add(p.cfg.AccessTokenLifetime), nil
}

func (p *Provider) recordIssue(ctx context.Context, g store.OIDCGrant, req op.TokenRequest, refresh bool) {
	flow := "authorization_code"
	if _, ok := req.(*op.DeviceAuthorizationState); ok {
		flow = "device_code"
	}
	p.record(ctx, audit.Event{Actor: usernameOf(g.User), Action: "oidc.token", Object: g.ClientID, Result: "success",
		Detail: map[string]string{"flow": flow, "grant": g.ID, "scopes": strings.Join(g.Scopes, " "), "refresh_token": fmt.Sprint(refresh)}})
}

func (p *Provider) recordReuse(ctx context.Context, g store.OIDCGrant) {
	p.record(ctx, audit.Event{Actor: usernameOf(g.User), Action: "oidc.refresh_reuse", Object: g.ClientID, Result: "revoked",
		Detail: map[string]string{"grant": g.ID, "sub": g.Subject}})
}

// TokenRequestByRefreshToken finds the grant of a current refresh token.
// A rotated-away token revokes the family (reuse detection). The user is
// looked up again in the directory: one who is gone loses the grant.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	p := s.p
	bad := oidc.ErrInvalidGrant().WithDescription("invalid or expired refresh token")
	grantID, _, ok := splitTokenID(token)
	if !ok || len(token) > 256 {
		return nil, bad
	}
	g, err := p.st.GrantByRefresh(ctx, grantID, hashSecret(token))
	switch {
	case errors.Is(err, store.ErrReused):
		p.recordReuse(ctx, g)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used; every token of this sign-in is revoked")
	case isOutage(err):
		return nil, outage(ctx, err)
	case err != nil:
		return nil, bad
	}
	if !p.now().Before(g.Expires) {
		_, _ = p.st.RevokeGrant(ctx, g.ID)
		return nil, bad
	}
	var u identity.User
	if err := json.Unmarshal(g.User, &u); err != nil {
		return nil, bad
	}
	userJS := g.User
	if p.users != nil {
		fresh, err := p.users.Check(ctx, u, access.Request{Via: "refresh"})
		switch {
		case err == nil:
			u = fresh
			if userJS, err = json.Marshal(u); err != nil {
				return nil, oidc.ErrServerError().WithParent(err)
			}
		case identity.IsGone(err):
			// Gone, renamed to someone else, or refused: the grant ends
			// (access.Access has revoked every grant of the user already;
			// this covers a provider without it).
			_, _ = p.st.RevokeGrant(ctx, g.ID)
			p.record(ctx, audit.Event{Actor: u.Username, Action: "oidc.refresh", Object: g.ClientID, Result: "user_gone",
				Detail: map[string]string{"grant": g.ID}})
			return nil, bad
		default:
			return nil, outage(ctx, err)
		}
	}
	return &refreshRequest{grant: g, user: u, userJS: userJS, scopes: g.Scopes, token: token}, nil
}

// TerminateSession ends the grants of a subject at one client.
func (s *storage) TerminateSession(ctx context.Context, subject, clientID string) error {
	p := s.p
	if subject == "" {
		return nil
	}
	ids, err := p.st.GrantsOfSubject(ctx, subject)
	if err != nil {
		return outage(ctx, err)
	}
	for _, id := range ids {
		g, err := p.st.Grant(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return outage(ctx, err)
		}
		if g.ClientID == clientID && g.Subject == subject {
			if _, err := p.st.RevokeGrant(ctx, id); err != nil {
				return outage(ctx, err)
			}
		}
	}
	p.record(ctx, audit.Event{Action: "oidc.end_session", Object: clientID, Result: "success", Detail: map[string]string{"sub": subject}})
	return nil
}

// TerminateSessionFromRequest (RP-initiated logout): ends the client's
// grants for the id_token_hint's subject and returns to the validated
// post_logout_redirect_uri, else to the issuer's start page. The Warden
// browser session itself is left alone (sign out at /logout).
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if err := s.TerminateSession(ctx, req.UserID, req.ClientID); err != nil {
		return "", err
	}
	if req.RedirectURI != "" {
		return req.RedirectURI, nil
	}
	return s.p.issuer + "/", nil
}

// RevokeToken (RFC 7009): a refresh token ("rt:<grant>") revokes its whole
// grant; an access token ID ("<grant>.<at>") only itself. A token of
// another client is refused; an unknown token is not an error (§2.2).
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	p := s.p
	if grantID, ok := strings.CutPrefix(tokenOrID, "rt:"); ok {
		if _, err := p.st.RevokeGrant(ctx, grantID); err != nil {
			_ = outage(ctx, err)
			return oidc.ErrServerError()
		}
		p.record(ctx, audit.Event{Action: "oidc.revoke", Object: clientID, Result: "success",
			Detail: map[string]string{"grant": grantID, "token": "refresh_token"}})
		return nil
	}
	grantID, at, ok := splitTokenID(tokenOrID)
	if !ok {
		return nil
	}
	g, _, err := p.st.AccessToken(ctx, grantID, at)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		_ = outage(ctx, err)
		return oidc.ErrServerError()
	case g.ClientID != clientID:
		return oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	}
	if err := p.st.RevokeAccessToken(ctx, grantID, at); err != nil {
		_ = outage(ctx, err)
		return oidc.ErrServerError()
	}
	p.record(ctx, audit.Event{Actor: usernameOf(g.User), Action: "oidc.revoke", Object: clientID, Result: "success",
		Detail: map[string]string{"grant": grantID, "token": "access_token"}})
	return nil
}

// GetRefreshTokenInfo recognises a current refresh token of clientID (for
// revocation); anything else is op.ErrInvalidRefreshToken.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	p := s.p
	grantID, _, ok := splitTokenID(token)
	if !ok || len(token) > 256 {
		return "", "", op.ErrInvalidRefreshToken
	}
	g, err := p.st.GrantByRefresh(ctx, grantID, hashSecret(token))
	switch {
	case errors.Is(err, store.ErrReused):
		p.recordReuse(ctx, g)
		return "", "", op.ErrInvalidRefreshToken
	case isOutage(err):
		_ = outage(ctx, err)
		return "", "", err
	case err != nil || g.ClientID != clientID:
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.Subject, "rt:" + g.ID, nil
}

// ---- keys ----

// signingKey is the current key of the ring of oidc.signing_algorithm.
type signingKey struct{ s keys.Signer }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.s.Alg)
}
func (k signingKey) Key() any   { return k.s.Private() }
func (k signingKey) ID() string { return k.s.ID }

type publicKey struct{ s keys.Signer }

func (k publicKey) ID() string                         { return k.s.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.s.Alg) }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.s.Public() }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.p.keys.Current()}, nil
}

// SignatureAlgorithms is every algorithm with a published key (discovery's
// id_token_signing_alg_values_supported), the signing one first.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.p.signatureAlgorithms(), nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	pub := s.p.keys.Published()
	out := make([]op.Key, 0, len(pub))
	for _, k := range pub {
		out = append(out, publicKey{k})
	}
	return out, nil
}

// ---- clients ----

// GetClientByClientID: an unknown client is invalid_client (never a
// server_error).
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.p.clients[id]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.p.clients[id]
	if !ok || !c.checkSecret(secret) {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// ---- claims ----

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims from the user of the
// request (the sign-in snapshot, or the fresh lookup of a refresh), and
// its acr from the grant's amr (zitadel sets acr itself only for the code
// flow's first token: the device flow and refreshes get it here; amr and
// auth_time it sets from the request for every flow).
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var u identity.User
	switch r := req.(type) {
	case *authRequest:
		if err := json.Unmarshal(r.User, &u); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
	case *refreshRequest:
		u = r.user
	case *op.DeviceAuthorizationState:
		sc := scratchOf(ctx)
		if sc == nil || sc.device == nil {
			return oidc.ErrServerError().WithDescription("device approval missing")
		}
		u = sc.device.user
	default:
		return oidc.ErrServerError().WithDescription("unexpected request")
	}
	s.p.setClaims(ctx, info, u, scopes, false)
	info.AppendClaims("acr", acrOf(req.GetAMR(), req.GetAuthTime()))
	return nil
}

// acrOf is the acr of a grant's amr (identity.AuthnFromAMR).
func acrOf(amr []string, authTime time.Time) string {
	return identity.AuthnFromAMR(amr, authTime).ACR()
}

// SetUserinfoFromToken answers userinfo for a live access token.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	g, u, _, err := s.p.accessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	s.p.setClaims(ctx, info, u, g.Scopes, true)
	return nil
}

// SetIntrospectionFromToken (RFC 7662 §2.2) for a live access token.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	g, u, exp, err := s.p.accessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	resp.Active = true
	resp.Scope = g.Scopes
	resp.ClientID = g.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(exp)
	resp.IssuedAt = oidc.FromTime(exp.Add(-s.p.cfg.AccessTokenLifetime))
	resp.Subject = g.Subject
	resp.Audience = []string{g.ClientID}
	resp.Issuer = s.p.issuer
	resp.Username = u.Username
	return nil
}

// accessToken resolves a live access token by its ID.
func (p *Provider) accessToken(ctx context.Context, tokenID, subject string) (store.OIDCGrant, identity.User, time.Time, error) {
	bad := oidc.ErrAccessDenied().WithDescription("invalid or expired access token")
	grantID, at, ok := splitTokenID(tokenID)
	if !ok {
		return store.OIDCGrant{}, identity.User{}, time.Time{}, bad
	}
	g, exp, err := p.st.AccessToken(ctx, grantID, at)
	switch {
	case isOutage(err):
		return g, identity.User{}, exp, outage(ctx, err)
	case err != nil, g.Subject != subject, !p.now().Before(exp):
		return g, identity.User{}, exp, bad
	}
	var u identity.User
	if err := json.Unmarshal(g.User, &u); err != nil {
		return g, u, exp, bad
	}
	return g, u, exp, nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("JWT client authentication is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *storage) Health(ctx context.Context) error { return s.p.ping(ctx) }

// ---- device authorization (RFC 8628) ----

// StoreDeviceAuthorization keeps a new device authorization: the user code
// normalized (no dash), the device code hashed, the scopes narrowed to
// those the client may ask for, and the requesting IP for the approval
// page.
func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	p := s.p
	cl, ok := p.clients[clientID]
	if !ok {
		return oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if len(scopes) > maxScopes {
		return oidc.ErrInvalidScope().WithDescription("too many scopes")
	}
	kept := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		switch {
		case sc == oidc.ScopeOpenID, sc == oidc.ScopeProfile, sc == oidc.ScopeEmail, sc == oidc.ScopeOfflineAccess, cl.IsScopeAllowed(sc):
			if !slices.Contains(kept, sc) {
				kept = append(kept, sc)
			}
		}
	}
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return oidc.ErrServerError().WithDescription("bad user code")
	}
	now := p.now()
	ip := ""
	if sc := scratchOf(ctx); sc != nil {
		ip = sc.clientIP
	}
	d := store.OIDCDevice{ClientID: clientID, Scopes: kept, ClientIP: ip, UserCode: code, Created: now.UTC(),
		Expires: now.Add(p.cfg.DeviceCodeLifetime).UTC(), Interval: p.cfg.DevicePollInterval}
	err := p.st.PutDevice(ctx, hashSecret(deviceCode), d, 2*p.cfg.DeviceCodeLifetime)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return op.ErrDuplicateUserCode
	case err != nil:
		return outage(ctx, err)
	}
	p.record(ctx, audit.Event{Action: "device.authorize", Object: clientID, Result: "pending",
		Detail: map[string]string{"user_code": FormatUserCode(code), "scopes": strings.Join(kept, " ")}})
	return nil
}

// GetDeviceAuthorizatonState returns the approved authorization that the
// token endpoint's poll check just redeemed (devicePoll answers every other
// state itself, in one Redis round trip).
func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, _ string) (*op.DeviceAuthorizationState, error) {
	sc := scratchOf(ctx)
	if sc == nil || sc.device == nil || sc.device.state.ClientID != clientID {
		return nil, oidc.ErrInvalidGrant()
	}
	return sc.device.state, nil
}

// isDirectoryDown reports a directory outage.
func isDirectoryDown(err error) bool { return errors.Is(err, identity.ErrDirectoryUnavailable) }
