package oidcop

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
)

// flattenErrors opens up errors.Join.
func flattenErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Config is the `oidc` block of the config file.
type Config struct {
	// Issuer is the OP's issuer URL, the exact "iss" of every token and the
	// base of discovery (default: server.public_url, exactly). Item 28 of
	// aws-federation-rules.md: https, no port, no query, ≤255 characters,
	// and equal to the IAM OIDC provider URL. http is accepted only for a
	// loopback host (dev mode and tests). Warden serves the OP at the root,
	// so a path is refused.
	Issuer  string         `yaml:"issuer"`
	Clients []ClientConfig `yaml:"clients"`
	// AccessTokenLifetime (default 15m; 1m..24h) of the opaque access
	// tokens.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	// IDTokenLifetime (default 15m; 1m..24h).
	IDTokenLifetime time.Duration `yaml:"id_token_lifetime"`
	// RefreshTokenLifetime is the absolute lifetime of a token family
	// (default 12h; 5m..90 days): no refresh after it, however active.
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"`
	// RefreshIdle ends a family that was not refreshed for this long
	// (default 2h; at least AccessTokenLifetime, at most
	// RefreshTokenLifetime).
	RefreshIdle time.Duration `yaml:"refresh_idle"`
	// DeviceCodeLifetime (default 10m; 1m..1h) of a device authorization.
	DeviceCodeLifetime time.Duration `yaml:"device_code_lifetime"`
	// DevicePollInterval (default 5s; 1s..60s, whole seconds) is the
	// interval announced to devices; faster polls get slow_down and the
	// interval grows by 5 s each time (RFC 8628 §3.5).
	DevicePollInterval time.Duration `yaml:"device_poll_interval"`
	// CLIClient is the built-in public client "warden-cli" of Warden's own
	// CLI: device grant, refresh, token exchange, and the code flow with
	// PKCE to a loopback redirect (http://127.0.0.1/callback, any port,
	// RFC 8252 §7.3). On unless enabled: false.
	CLIClient struct {
		Enabled *bool `yaml:"enabled"`
	} `yaml:"cli_client"`
	// STSAudience is the aud of the role-scoped web-identity tokens of the
	// token exchange, and the client ID of the IAM OIDC provider (default
	// sts.amazonaws.com).
	STSAudience string `yaml:"sts_audience"`
	// DeviceLimits bounds the wrong user codes typed on /device.
	DeviceLimits store.DeviceLimitConfig `yaml:"device_limits"`
	// SigningAlgorithm signs ID tokens and web-identity tokens: RS256
	// (default; the RSA ring SAML uses) or ES256 (the EC P-256 ring, made
	// at the first start that asks for it). The JWKS publishes both rings
	// either way, so a switch keeps earlier tokens verifiable.
	SigningAlgorithm string `yaml:"signing_algorithm"`
	// Workloads configures the workload clients of the rules
	// (client_credentials; workload.go).
	Workloads WorkloadConfig `yaml:"workloads"`
}

// CLIClientID is the client ID of the built-in CLI client.
const CLIClientID = "warden-cli"

// CLIEnabled reports whether the built-in CLI client is on.
func (c Config) CLIEnabled() bool { return c.CLIClient.Enabled == nil || *c.CLIClient.Enabled }

// ClientConfig is one registered client.
type ClientConfig struct {
	// ID is the client_id ([A-Za-z0-9._-]{1,64}, unique).
	ID string `yaml:"id"`
	// Name is shown on the device approval page (default: ID).
	Name string `yaml:"name"`
	// Secret authenticates a confidential client (client_secret_basic or
	// client_secret_post); required unless Public, forbidden if Public.
	// At least 16 characters. Comes from secret_file in the config file.
	Secret string `yaml:"secret"`
	// RedirectURIs are matched exactly (for a public client, a loopback
	// http URI matches any port, RFC 8252 §7.3). https, or http on a
	// loopback host; no fragment.
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// Public marks a client without a secret (native app, CLI): PKCE with
	// S256 is then required for the code flow.
	Public bool `yaml:"public"`
	// GrantTypes the client may use: authorization_code, refresh_token,
	// device_code, token_exchange (default: authorization_code and
	// refresh_token).
	GrantTypes []string `yaml:"grant_types"`
	// Scopes are the extra scopes it may ask for besides openid, profile,
	// email and offline_access: groups, roles (default: both).
	Scopes []string `yaml:"scopes"`
}

// Grant type names in the config and their wire values.
var grantTypeNames = map[string]string{
	"authorization_code": "authorization_code",
	"refresh_token":      "refresh_token",
	"device_code":        "urn:ietf:params:oauth:grant-type:device_code",
	"token_exchange":     "urn:ietf:params:oauth:grant-type:token-exchange",
}

// Extra scopes (beyond the OIDC standard ones).
const (
	ScopeGroups = "groups"
	ScopeRoles  = "roles"
	// ScopeElevate asks for a sign-in that may request an elevation: the
	// device approval demands a second factor given within
	// mfa.step_up_max_age (Warden's CLI only).
	ScopeElevate = "elevate"
)

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// SetDefaults fills every unset field except Issuer, whose default
// (server.public_url) New resolves from Deps.PublicURL.
func (c *Config) SetDefaults() {
	if c.STSAudience == "" {
		c.STSAudience = awsfed.DefaultSTSAudience
	}
	if c.SigningAlgorithm == "" {
		c.SigningAlgorithm = keys.AlgRS256
	}
	c.DeviceLimits.SetDefaults()
	c.Workloads.setDefaults()
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenLifetime, 15*time.Minute)
	def(&c.IDTokenLifetime, 15*time.Minute)
	def(&c.RefreshTokenLifetime, 12*time.Hour)
	def(&c.RefreshIdle, 2*time.Hour)
	def(&c.DeviceCodeLifetime, 10*time.Minute)
	def(&c.DevicePollInterval, 5*time.Second)
	for i := range c.Clients {
		cl := &c.Clients[i]
		if cl.Name == "" {
			cl.Name = cl.ID
		}
		if cl.GrantTypes == nil {
			cl.GrantTypes = []string{"authorization_code", "refresh_token"}
		}
		if cl.Scopes == nil {
			cl.Scopes = []string{ScopeGroups, ScopeRoles}
		}
	}
}

// Validate reports every problem at once, each with its key path (relative
// to the oidc block).
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if a := c.STSAudience; a == "" || len(a) > 255 {
		add("sts_audience", "must be 1 to 255 characters (IAM's client ID list)")
	}
	if a := c.SigningAlgorithm; a != keys.AlgRS256 && a != keys.AlgES256 {
		add("signing_algorithm", "must be %s or %s (got %q)", keys.AlgRS256, keys.AlgES256, a)
	}
	if err := c.DeviceLimits.Validate(); err != nil {
		for _, e := range flattenErrors(err) {
			errs = append(errs, fmt.Errorf("device_limits.%w", e))
		}
	}
	c.Workloads.problems(add)
	if c.Issuer != "" {
		if msg := issuerProblem(c.Issuer); msg != "" {
			add("issuer", "%s", msg)
		}
	}
	span := func(path string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			add(path, "%s not in %s..%s", d, lo, hi)
		}
	}
	span("access_token_lifetime", c.AccessTokenLifetime, time.Minute, 24*time.Hour)
	span("id_token_lifetime", c.IDTokenLifetime, time.Minute, 24*time.Hour)
	span("refresh_token_lifetime", c.RefreshTokenLifetime, 5*time.Minute, 90*24*time.Hour)
	span("refresh_idle", c.RefreshIdle, c.AccessTokenLifetime, c.RefreshTokenLifetime)
	span("device_code_lifetime", c.DeviceCodeLifetime, time.Minute, time.Hour)
	span("device_poll_interval", c.DevicePollInterval, time.Second, time.Minute)
	if c.DevicePollInterval%time.Second != 0 {
		add("device_poll_interval", "must be whole seconds")
	}
	seen := map[string]int{}
	if c.CLIEnabled() {
		seen[CLIClientID] = -1
	}
	for i, cl := range c.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		switch {
		case !clientIDPattern.MatchString(cl.ID):
			add(p+".id", "must match [A-Za-z0-9._-]{1,64}")
		case seen[cl.ID] == -1:
			add(p+".id", "%q is the built-in CLI client (set cli_client.enabled: false to replace it)", cl.ID)
		default:
			if j, dup := seen[cl.ID]; dup {
				add(p+".id", "duplicate of clients[%d]", j)
			}
			seen[cl.ID] = i
		}
		if strings.ContainsAny(cl.Name, "\r\n\x00") || len(cl.Name) > 128 {
			add(p+".name", "at most 128 characters on one line")
		}
		switch {
		case cl.Public && cl.Secret != "":
			add(p+".secret", "a public client has no secret")
		case !cl.Public && len(cl.Secret) < 16:
			add(p+".secret", "required for a confidential client, at least 16 characters")
		}
		grants := map[string]bool{}
		for j, g := range cl.GrantTypes {
			if _, ok := grantTypeNames[g]; !ok {
				add(fmt.Sprintf("%s.grant_types[%d]", p, j), "unknown grant type %q (authorization_code, refresh_token, device_code, token_exchange)", g)
			}
			grants[g] = true
		}
		if len(cl.GrantTypes) == 0 {
			add(p+".grant_types", "at least one grant type")
		}
		if grants["authorization_code"] && len(cl.RedirectURIs) == 0 {
			add(p+".redirect_uris", "required for the authorization_code grant")
		}
		for j, u := range cl.RedirectURIs {
			if msg := redirectProblem(u); msg != "" {
				add(fmt.Sprintf("%s.redirect_uris[%d]", p, j), "%s", msg)
			}
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			if msg := redirectProblem(u); msg != "" {
				add(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", p, j), "%s", msg)
			}
		}
		for j, s := range cl.Scopes {
			if s != ScopeGroups && s != ScopeRoles {
				add(fmt.Sprintf("%s.scopes[%d]", p, j), "unknown scope %q (groups, roles)", s)
			}
		}
	}
	return errors.Join(errs...)
}

// issuerProblem checks an issuer against item 28 (https, no port, no
// query or fragment, ≤255 characters) and Warden's root-only serving; http
// and a port are accepted only on a loopback host (dev, tests).
func issuerProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return "must be an absolute https URL"
	}
	if len(s) > 255 {
		return "at most 255 characters (IAM OIDC provider URL limit)"
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "?") || strings.Contains(s, "#") {
		return "must not have a query or fragment"
	}
	if u.Path != "" {
		return "must not have a path (Warden serves the OpenID provider at the root); no trailing slash either"
	}
	loopback := isLoopbackHost(u.Hostname())
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	default:
		return "must be an https URL (http only on a loopback host, for dev and tests)"
	}
	if u.Port() != "" && !loopback {
		return "must not have a port (AWS IAM refuses OIDC provider URLs with a port)"
	}
	return ""
}

func redirectProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return "must be an absolute URL"
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "must not have a fragment"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return "must be https (http only on a loopback host)"
	}
	return ""
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
