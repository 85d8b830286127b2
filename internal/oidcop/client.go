package oidcop

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client is one registered client as zitadel's op.Client.
type client struct {
	id, name     string
	secretHash   [sha256.Size]byte // of the secret; zero for public clients
	public       bool
	redirects    []string
	postLogout   []string
	grants       []oidc.GrantType
	scopes       []string
	idTokenLife  time.Duration
	loginURLFunc func(id string) string
}

func newClient(cc ClientConfig, idTokenLife time.Duration) *client {
	c := &client{
		id: cc.ID, name: cc.Name, public: cc.Public,
		redirects: slices.Clone(cc.RedirectURIs), postLogout: slices.Clone(cc.PostLogoutRedirectURIs),
		scopes: slices.Clone(cc.Scopes), idTokenLife: idTokenLife,
	}
	if !cc.Public {
		c.secretHash = sha256.Sum256([]byte(cc.Secret))
	}
	for _, g := range cc.GrantTypes {
		c.grants = append(c.grants, oidc.GrantType(grantTypeNames[g]))
	}
	c.loginURLFunc = func(id string) string { return "/oauth/callback?id=" + url.QueryEscape(id) }
	return c
}

// cliClient is the built-in public client of Warden's CLI.
func cliClient(idTokenLife time.Duration) *client {
	return newClient(ClientConfig{
		ID: CLIClientID, Name: "Warden CLI", Public: true,
		RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]/callback"},
		GrantTypes:   []string{"device_code", "refresh_token", "token_exchange", "authorization_code"},
		Scopes:       []string{ScopeGroups, ScopeRoles, ScopeElevate},
	}, idTokenLife)
}

// checkSecret compares in constant time (over hashes of equal length).
func (c *client) checkSecret(secret string) bool {
	if c.public || secret == "" {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash[:]) == 1
}

func (c *client) hasGrant(g oidc.GrantType) bool { return slices.Contains(c.grants, g) }

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string { return c.postLogout }

// ApplicationType: confidential clients are web apps (exact redirect
// match); public ones native apps, for which zitadel matches a loopback
// redirect URI on any port (RFC 8252 §7.3) and everything else exactly.
func (c *client) ApplicationType() op.ApplicationType {
	if c.public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return c.grants }
func (c *client) LoginURL(id string) string    { return c.loginURLFunc(id) }

// AccessTokenType: opaque bearer tokens, looked up in Redis at every use,
// so that revocation takes effect at once.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenLife }
func (c *client) DevMode() bool                       { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(c.scopes, scope) }

// IDTokenUserinfoClaimsAssertion: the ID token carries the profile and
// email claims too (CLIs read the ID token, not userinfo).
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
