// Package oidcop is Warden's OpenID Connect provider: zitadel/oidc/v3's
// op.Provider with its storage on Redis (store.OIDC), mounted into the web
// server as a web.Mount.
//
// Endpoints (issuer = Config.Issuer, default server.public_url, served at
// the root):
//
//	GET  /.well-known/openid-configuration   discovery (OIDC Discovery 1.0 §4)
//	GET  /oauth/keys                          JWKS: every published key of both rings (RS256, ES256)
//	GET  /oauth/authorize                     authorization endpoint (code flow only)
//	GET  /oauth/callback?id=                  completes an auth request for the signed-in user
//	POST /oauth/token                         token endpoint (authorization_code, refresh_token,
//	                                          device_code; token-exchange handed to SetTokenExchange)
//	POST /oauth/device_authorization          RFC 8628 §3.1
//	GET|POST /oauth/userinfo                  OIDC Core §5.3
//	POST /oauth/revoke                        RFC 7009
//	POST /oauth/introspect                    RFC 7662 (confidential clients only)
//	GET|POST /oauth/end_session               RP-initiated logout 1.0
//
// The user-facing device verification pages (/device) are a mount of their
// own, Provider.DeviceUI (deviceui.go), built on DeviceRequest,
// ApproveDevice and DenyDevice. The RFC 8693 token exchange (role-scoped
// SAML responses and web-identity tokens for the CLI) is exchange.go,
// installed with InstallTokenExchange.
//
// Security properties, each kept in one place:
//   - PKCE: S256 is required of public clients, `plain` is refused for
//     everyone (CreateAuthRequest, RFC 7636 §4.4.1 invalid_request).
//   - Authorization codes are single use; a code presented twice revokes
//     every token its first use issued (RFC 6749 §4.1.2) (AuthRequestByCode).
//   - Refresh tokens rotate at every use; presenting a rotated-away token
//     revokes its whole family (OAuth 2.0 Security BCP §4.14.2) (store.OIDC).
//   - Access tokens are opaque and looked up in Redis at every use, so a
//     revocation takes effect at once.
//   - Redirect URIs are matched exactly (loopback on any port for public
//     clients, RFC 8252 §7.3); a request with an unregistered one is
//     answered here, never redirected.
//   - Claims follow aws-federation-rules.md section C: iss exactly the
//     issuer, integer timestamps, aud = [client_id] (so azp equals aud),
//     an opaque pairwise-free sub (HMAC of the directory ID), and the
//     https://aws.amazon.com/tags claim in AWS's shape.
//
// A Redis outage during any OIDC request is answered 503
// temporarily_unavailable, never as a rejection of the client's input.
package oidcop

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/wardenidp/warden/internal/access"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// KeyRing is what the OP needs of the signing keys (keys.TokenKeys, or a
// keys.Ring for RS256 alone): Current signs with its Alg, Published and
// JWKS cover every algorithm published.
type KeyRing interface {
	Current() keys.Signer
	Published() []keys.Signer
	JWKS() []byte
}

// Directory looks a user up again at every refresh (a user removed from
// the directory loses the refresh token). directory.Directory satisfies it.
type Directory interface {
	Lookup(ctx context.Context, username string) (identity.User, error)
}

// UserChecker looks a user up afresh and, when the directory no longer
// lets them in, revokes all their access and returns the directory's
// answer (identity.IsGone); an outage is an error that revokes nothing
// (access.Access).
type UserChecker interface {
	Check(ctx context.Context, u identity.User, req access.Request) (identity.User, error)
}

// directoryChecker is a UserChecker that only looks the user up by name
// (the same entry ID required) and revokes nothing: for a provider given a
// Directory and no Users.
type directoryChecker struct{ dir Directory }

func (d directoryChecker) Check(ctx context.Context, u identity.User, _ access.Request) (identity.User, error) {
	fresh, err := d.dir.Lookup(ctx, u.Username)
	if err == nil && u.ID != "" && fresh.ID != u.ID {
		return identity.User{}, fmt.Errorf("oidcop: %q names another directory entry now: %w", u.Username, identity.ErrUserNotFound)
	}
	return fresh, err
}

// Deps are the provider's collaborators.
type Deps struct {
	// Users is the fresh look-up of every refresh and token exchange
	// (access.Access, which also revokes all access of a user found gone).
	// Nil: Directory is looked up instead and nothing but the refreshed
	// grant is revoked.
	Users     UserChecker
	Keys      KeyRing         // required
	Store     *store.Store    // required
	Directory Directory       // used when Users is nil; both nil: refresh keeps the sign-in snapshot of the user
	Rules     *rolemap.Holder // nil: no tags, no roles
	Audit     audit.Logger    // nil: discard
	Logger    *slog.Logger    // nil: discard
	Clock     func() time.Time
	Rand      io.Reader // nil: crypto/rand (ids, refresh tokens)
	// PublicURL is server.public_url, the default issuer.
	PublicURL string
	// SubjectKey keys the opaque sub (HMAC-SHA256 of the directory ID); at
	// least 32 bytes, the same on every replica
	// (store.SharedSecret(ctx, "oidc-sub", 32)). It also derives the key
	// that seals access tokens and codes.
	SubjectKey []byte
}

// Provider is the OpenID provider. It is a web.Mount (Routes).
type Provider struct {
	// elevations: SetElevations (nil: none).
	elevations Elevations
	cfg        Config
	issuer     string
	op         *op.Provider
	st         *store.OIDC
	ping       func(context.Context) error
	keys       KeyRing
	users      UserChecker
	rules      *rolemap.Holder
	audit      audit.Logger
	log        *slog.Logger
	now        func() time.Time
	rand       io.Reader
	subKey     []byte
	clients    map[string]*client
	wl         *workloads

	tokenExchange atomic.Pointer[gin.HandlerFunc]
}

// Lifetimes not in the config.
const (
	authRequestTTL = 10 * time.Minute // time to sign in
	codeTTL        = 5 * time.Minute  // code validity, and reuse detection after it
)

// New builds the provider. cfg is defaulted and validated here; an empty
// Issuer takes Deps.PublicURL (without a trailing slash).
func New(cfg Config, deps Deps) (*Provider, error) {
	cfg.SetDefaults()
	defaulted := cfg.Issuer == ""
	if defaulted {
		cfg.Issuer = strings.TrimRight(deps.PublicURL, "/")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("oidcop: no issuer (set oidc.issuer or server.public_url)")
	}
	// A defaulted issuer (server.public_url) is checked exactly as a set
	// one: AWS must be able to use it as an IAM OIDC provider URL.
	if err := cfg.Validate(); err != nil {
		if defaulted {
			return nil, fmt.Errorf("oidcop: config (oidc.issuer is server.public_url %q; set oidc.issuer or fix public_url): %w", cfg.Issuer, err)
		}
		return nil, fmt.Errorf("oidcop: config: %w", err)
	}
	switch {
	case deps.Keys == nil:
		return nil, errors.New("oidcop: Deps.Keys is required")
	case deps.Store == nil:
		return nil, errors.New("oidcop: Deps.Store is required")
	case len(deps.SubjectKey) < 32:
		return nil, errors.New("oidcop: Deps.SubjectKey must have at least 32 bytes")
	}
	if cur := deps.Keys.Current(); cur.Private() == nil {
		return nil, errors.New("oidcop: the key ring has no current key")
	} else if cur.Alg != cfg.SigningAlgorithm {
		return nil, fmt.Errorf("oidcop: oidc.signing_algorithm is %s but the key ring signs with %s", cfg.SigningAlgorithm, cur.Alg)
	}
	if deps.Users == nil && deps.Directory != nil {
		deps.Users = directoryChecker{deps.Directory}
	}
	p := &Provider{
		cfg: cfg, issuer: cfg.Issuer, st: store.NewOIDC(deps.Store), ping: deps.Store.Ping,
		keys: deps.Keys, users: deps.Users, rules: deps.Rules, audit: deps.Audit, log: deps.Logger,
		now: deps.Clock, rand: deps.Rand, subKey: append([]byte(nil), deps.SubjectKey...),
		clients: map[string]*client{},
	}
	if p.rules == nil {
		p.rules = &rolemap.Holder{}
	}
	if p.audit == nil {
		p.audit = audit.Discard{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if cfg.CLIEnabled() {
		p.clients[CLIClientID] = cliClient(cfg.IDTokenLifetime)
	}
	for _, cc := range cfg.Clients {
		p.clients[cc.ID] = newClient(cc, cfg.IDTokenLifetime)
	}

	var err error
	if p.wl, err = newWorkloads(cfg.Workloads, p.derive("workload-access-token"), store.NewAssertionJTIs(deps.Store), p.log, p.now); err != nil {
		return nil, fmt.Errorf("oidcop: workloads: %w", err)
	}
	var cryptoKey [32]byte
	copy(cryptoKey[:], p.derive("oidc-token-seal"))
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: p.issuer + "/",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail,
			oidc.ScopeOfflineAccess, ScopeGroups, ScopeRoles, ScopeElevate},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "acr",
			"at_hash", "c_hash", "client_id", "azp", "name", "preferred_username", "email", "groups", TagsClaim},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     cfg.DeviceCodeLifetime,
			PollInterval: cfg.DevicePollInterval,
			UserFormPath: "/device",
			UserCode:     op.UserCodeBase20,
		},
	}
	opts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint("oauth/authorize")),
		op.WithCustomTokenEndpoint(op.NewEndpoint("oauth/token")),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint("oauth/introspect")),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint("oauth/userinfo")),
		op.WithCustomRevocationEndpoint(op.NewEndpoint("oauth/revoke")),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint("oauth/end_session")),
		op.WithCustomKeysEndpoint(op.NewEndpoint("oauth/keys")),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint("oauth/device_authorization")),
		// No cookies are involved in any OP endpoint: CORS without
		// credentials, for browser-based public clients.
		op.WithCORSOptions(&cors.Options{
			AllowOriginFunc:  func(string) bool { return true },
			AllowedMethods:   []string{"GET", "HEAD", "POST"},
			AllowedHeaders:   []string{"Accept", "Authorization", "Content-Type"},
			AllowCredentials: false,
		}),
	}
	if u, _ := url.Parse(p.issuer); u != nil && u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // loopback only (Validate)
	}
	zp, err := op.NewProvider(opCfg, &storage{p: p}, op.StaticIssuer(p.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	p.op = zp
	return p, nil
}

// Issuer is the exact issuer ("iss") of every token.
func (p *Provider) Issuer() string { return p.issuer }

// derive returns HMAC-SHA256(SubjectKey, label): independent keys from the
// one shared secret.
func (p *Provider) derive(label string) []byte {
	m := hmac.New(sha256.New, p.subKey)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Subject is the opaque, stable "sub" of a user: unpadded base64url of
// HMAC-SHA256(SubjectKey, user.ID), 43 characters (item 34: 6–255, not
// PII). It survives renames (user.ID is entryUUID / objectGUID).
func (p *Provider) Subject(u identity.User) string { return subjectOf(p.subKey, u) }

func subjectOf(key []byte, u identity.User) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sub\x00"))
	m.Write([]byte(u.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// randomID returns n random bytes, unpadded base64url.
func (p *Provider) randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("oidcop: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret is the hex-free storage form of a code, refresh token or
// device code: unpadded base64url SHA-256.
func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Client returns a registered client's ID and display name (B's device
// page shows the name).
func (p *Provider) ClientName(id string) (string, bool) {
	c, ok := p.clients[id]
	if !ok {
		return "", false
	}
	return c.name, true
}

func (p *Provider) record(ctx context.Context, e audit.Event) {
	if e.Actor == "" {
		e.Actor = "anonymous"
	}
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	if sc := scratchOf(ctx); sc != nil {
		if e.ClientIP == "" {
			e.ClientIP = sc.clientIP
		}
		if e.RequestID == "" {
			e.RequestID = sc.requestID
		}
	}
	p.audit.Record(ctx, e)
}
