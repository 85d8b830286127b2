package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// ClientID is the public OAuth client of the CLI at wardend.
const ClientID = "warden-cli"

// Scopes the CLI asks for at sign-in.
var loginScopes = []string{"openid", "profile", "email", "offline_access", "groups", "roles"}

// Discovery is the part of the IdP's OpenID configuration the CLI uses.
type Discovery struct {
	Issuer                      string `json:"issuer"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	UserinfoEndpoint            string `json:"userinfo_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
	// IdPURL and Fetched belong to the cache, not to the document.
	IdPURL  string    `json:"x_warden_idp_url,omitempty"`
	Fetched time.Time `json:"x_warden_fetched,omitempty"`
}

// discoveryTTL is how long a cached discovery document is used.
const discoveryTTL = 24 * time.Hour

func (a *App) discoveryPath() string { return filepath.Join(a.CacheDir, "discovery.json") }

// Discovery returns the IdP's endpoints: from CacheDir/discovery.json when
// it is younger than a day and for the configured IdP, else from
// <idp>/.well-known/openid-configuration (then cached).
func (a *App) Discovery(ctx context.Context) (Discovery, error) {
	cfg, err := a.LoadConfig()
	if err != nil {
		return Discovery{}, err
	}
	if cfg.IdPURL == "" {
		return Discovery{}, ErrNotConfigured
	}
	var d Discovery
	if ok, _ := readJSON(a.discoveryPath(), &d); ok && d.IdPURL == cfg.IdPURL && a.Now().Sub(d.Fetched) < discoveryTTL && d.Fetched.Before(a.Now().Add(time.Minute)) {
		return d, nil
	}
	d, err = a.fetchDiscovery(ctx, cfg.IdPURL)
	if err != nil {
		return Discovery{}, err
	}
	_ = writeJSON(a.discoveryPath(), d) // a cache: failing to write it is not an error
	return d, nil
}

func (a *App) fetchDiscovery(ctx context.Context, idp string) (Discovery, error) {
	var d Discovery
	u := idp + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return d, fmt.Errorf("discovery: %w", err)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return d, idpProblem("discovery", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("discovery: %s answered %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return d, fmt.Errorf("discovery: %s is not an OpenID configuration: %w", u, err)
	}
	if d.TokenEndpoint == "" || d.Issuer == "" {
		return d, fmt.Errorf("discovery: %s has no token_endpoint or issuer", u)
	}
	d.IdPURL, d.Fetched = idp, a.Now()
	return d, nil
}

// oauthConfig is the x/oauth2 client of the discovery's endpoints.
func oauthConfig(d Discovery) *oauth2.Config {
	return &oauth2.Config{ClientID: ClientID, Scopes: loginScopes,
		Endpoint: oauth2.Endpoint{TokenURL: d.TokenEndpoint, DeviceAuthURL: d.DeviceAuthorizationEndpoint,
			AuthStyle: oauth2.AuthStyleInParams}}
}

func (a *App) oauthCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, a.HTTP)
}

// tokenCache is CacheDir/token.json.
type tokenCache struct {
	IdPURL       string    `json:"idp_url"`
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	AccessToken  string    `json:"access_token"`
	Expiry       time.Time `json:"expiry"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Username     string    `json:"username,omitempty"`
	// SignedInAt is when the device login behind the tokens finished
	// (zero: before warden recorded it).
	SignedInAt time.Time `json:"signed_in_at,omitzero"`
	// RefreshExpiry is when the refresh token ends, when the IdP says so
	// (refresh_token_expires_in or refresh_expires_in in its answer);
	// zero: not said.
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
}

func (a *App) tokenPath() string { return filepath.Join(a.CacheDir, "token.json") }

// expirySkew: an access token this close to its expiry counts as expired.
const expirySkew = time.Minute

func (a *App) readToken(idp string) (tokenCache, bool) {
	var t tokenCache
	ok, _ := readJSON(a.tokenPath(), &t)
	if !ok || t.IdPURL != idp || t.ClientID != ClientID {
		return tokenCache{}, false
	}
	return t, true
}

func (t tokenCache) valid(now time.Time) bool {
	return t.AccessToken != "" && now.Add(expirySkew).Before(t.Expiry)
}

// saveToken caches tok (keeping the old refresh and ID tokens when the
// answer carries none) and drops the cached roles.
func (a *App) saveToken(idp string, d Discovery, old tokenCache, tok *oauth2.Token) (tokenCache, error) {
	t := tokenCache{IdPURL: idp, Issuer: d.Issuer, ClientID: ClientID, AccessToken: tok.AccessToken,
		Expiry: tok.Expiry, RefreshToken: tok.RefreshToken, IDToken: old.IDToken, Username: old.Username}
	if t.RefreshToken == "" {
		t.RefreshToken = old.RefreshToken
	}
	t.SignedInAt, t.RefreshExpiry = old.SignedInAt, old.RefreshExpiry
	if old.AccessToken == "" && old.RefreshToken == "" {
		t.SignedInAt = a.Now() // a new sign-in, not a refresh
	}
	for _, k := range []string{"refresh_token_expires_in", "refresh_expires_in"} {
		if secs := extraSeconds(tok.Extra(k)); secs > 0 {
			t.RefreshExpiry = a.Now().Add(time.Duration(secs) * time.Second)
			break
		}
	}
	if t.Expiry.IsZero() {
		t.Expiry = a.Now().Add(5 * time.Minute)
	}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		t.IDToken = id
		if u := idTokenUsername(id); u != "" {
			t.Username = u
		}
	}
	_ = os.Remove(a.rolesPath())
	return t, writeJSON(a.tokenPath(), t)
}

// extraSeconds reads a number of seconds from a token answer's member
// (a JSON number, or a string of digits); 0 when it is neither.
func extraSeconds(v any) int64 {
	switch x := v.(type) {
	case float64:
		if x > 0 && x < 1<<31 {
			return int64(x)
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 32); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// idTokenUsername reads preferred_username (else sub) from an ID token's
// payload, for display only: the token came straight from the token
// endpoint over the TLS connection, and nothing is decided by it.
func idTokenUsername(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		PreferredUsername string `json:"preferred_username"`
		Sub               string `json:"sub"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	if c.PreferredUsername != "" {
		return c.PreferredUsername
	}
	return c.Sub
}

// tokenLockName is the lock that serialises refreshes and device logins.
const tokenLockName = "token"

// AccessToken returns a valid access token: the cached one, or one
// refreshed silently with the refresh token under the cache lock (so that
// concurrent callers, goroutines or processes, refresh once and the others
// reuse its result: the IdP rotates refresh tokens and treats a reused one
// as theft). When neither works it runs the device login if interactive,
// else returns ErrLoginRequired.
func (a *App) AccessToken(ctx context.Context, interactive bool) (string, error) {
	t, err := a.token(ctx, interactive, false)
	return t.AccessToken, err
}

// token is AccessToken returning the whole cache entry; force skips the
// cached access token (not the refresh token).
func (a *App) token(ctx context.Context, interactive, force bool) (tokenCache, error) {
	cfg, err := a.LoadConfig()
	if err != nil {
		return tokenCache{}, err
	}
	if cfg.IdPURL == "" {
		return tokenCache{}, ErrNotConfigured
	}
	if t, ok := a.readToken(cfg.IdPURL); ok && t.valid(a.Now()) && !force {
		return t, nil
	}
	unlock, err := a.Lock(ctx, tokenLockName)
	if err != nil {
		return tokenCache{}, err
	}
	defer unlock()
	// Another caller may have refreshed while this one waited.
	t, ok := a.readToken(cfg.IdPURL)
	if ok && t.valid(a.Now()) && !force {
		return t, nil
	}
	if ok && t.RefreshToken != "" {
		nt, err := a.refresh(ctx, cfg.IdPURL, t)
		if err == nil {
			return nt, nil
		}
		if !deadRefresh(err) {
			// The IdP is unreachable or answers temporarily_unavailable:
			// keep the refresh token; a login would not work either.
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				return tokenCache{}, fmt.Errorf("the IdP could not refresh the sign-in: %w", oauthErr(err))
			}
			return tokenCache{}, err
		}
		// The refresh token is dead (expired, revoked, or the user gone).
		_ = os.Remove(a.tokenPath())
		_ = os.Remove(a.rolesPath())
	}
	if !interactive {
		return tokenCache{}, ErrLoginRequired
	}
	return a.deviceLogin(ctx, cfg.IdPURL, loginOptions{})
}

// deadRefresh reports whether a refresh failed because the refresh token
// itself is refused (RFC 6749 §5.2 invalid_grant, or the client refused),
// as opposed to an outage.
func deadRefresh(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	switch re.ErrorCode {
	case "invalid_grant", "invalid_client", "unauthorized_client":
		return true
	}
	return false
}

// refresh trades t's refresh token for new tokens and caches them. Callers
// hold the token lock.
func (a *App) refresh(ctx context.Context, idp string, t tokenCache) (tokenCache, error) {
	d, err := a.Discovery(ctx)
	if err != nil {
		return tokenCache{}, err
	}
	src := oauthConfig(d).TokenSource(a.oauthCtx(ctx), &oauth2.Token{RefreshToken: t.RefreshToken})
	tok, err := src.Token()
	if err != nil {
		return tokenCache{}, fmt.Errorf("refresh: %w", err)
	}
	return a.saveToken(idp, d, t, tok)
}

// Role is one AWS role the signed-in user may assume.
type Role struct {
	RoleARN        string `json:"role_arn"`
	ProviderARN    string `json:"provider_arn,omitempty"` // empty: userinfo does not carry it; the SAML response does
	AccountID      string `json:"account_id"`
	AccountName    string `json:"account_name,omitempty"`
	RoleName       string `json:"role_name"`
	Partition      string `json:"partition"`
	SessionSeconds int    `json:"session_seconds,omitempty"`
}

type rolesCache struct {
	IdPURL  string    `json:"idp_url"`
	Fetched time.Time `json:"fetched"`
	Roles   []Role    `json:"roles"`
}

// rolesTTL is how long the roles listing is cached.
const rolesTTL = 5 * time.Minute

func (a *App) rolesPath() string { return filepath.Join(a.CacheDir, "roles.json") }

// Roles lists the user's roles from the userinfo endpoint's "roles" entry
// (cached for five minutes in CacheDir/roles.json, dropped at every new
// sign-in or refresh).
func (a *App) Roles(ctx context.Context, interactive bool) ([]Role, error) {
	cfg, err := a.LoadConfig()
	if err != nil {
		return nil, err
	}
	var rc rolesCache
	if ok, _ := readJSON(a.rolesPath(), &rc); ok && rc.IdPURL == cfg.IdPURL && a.Now().Sub(rc.Fetched) < rolesTTL && !rc.Fetched.After(a.Now()) {
		if _, ok := a.readToken(cfg.IdPURL); ok {
			return rc.Roles, nil
		}
	}
	tok, err := a.AccessToken(ctx, interactive)
	if err != nil {
		return nil, err
	}
	roles, err := a.userinfoRoles(ctx, tok)
	var ae *authError
	if errors.As(err, &ae) {
		// The IdP no longer takes the access token (revoked server-side):
		// refresh once and try again.
		t, terr := a.token(ctx, interactive, true)
		if terr != nil {
			return nil, terr
		}
		roles, err = a.userinfoRoles(ctx, t.AccessToken)
	}
	if err != nil {
		return nil, err
	}
	_ = writeJSON(a.rolesPath(), rolesCache{IdPURL: cfg.IdPURL, Fetched: a.Now(), Roles: roles})
	return roles, nil
}

type authError struct{ status int }

func (e *authError) Error() string {
	return fmt.Sprintf("userinfo: the IdP refused the access token (%d)", e.status)
}

func (a *App) userinfoRoles(ctx context.Context, accessToken string) ([]Role, error) {
	d, err := a.Discovery(ctx)
	if err != nil {
		return nil, err
	}
	if d.UserinfoEndpoint == "" {
		return nil, errors.New("userinfo: the IdP announces no userinfo_endpoint")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, idpProblem("userinfo", d.UserinfoEndpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, &authError{resp.StatusCode}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: the IdP answered %s", resp.Status)
	}
	var body struct {
		Roles []Role `json:"roles"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	out := body.Roles[:0]
	for _, r := range body.Roles {
		if r.RoleARN == "" {
			continue
		}
		if p, _, ok := strings.Cut(strings.TrimPrefix(r.RoleARN, "arn:"), ":"); ok && r.Partition == "" {
			r.Partition = p
		}
		out = append(out, r)
	}
	if out == nil {
		out = []Role{}
	}
	return out, nil
}

// revoke revokes token at the revocation endpoint (RFC 7009 §2.1: a
// public client sends its client_id; 200 means revoked or unknown).
func (a *App) revoke(ctx context.Context, d Discovery, token, hint string) error {
	if d.RevocationEndpoint == "" {
		return errors.New("revoke: the IdP announces no revocation_endpoint")
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}, "client_id": {ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("revoke: cannot reach the IdP: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoke: the IdP answered %s", resp.Status)
	}
	return nil
}
