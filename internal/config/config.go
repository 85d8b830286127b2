// Package config loads, defaults and validates the wardend configuration file.
//
// The file is YAML and strict: an unknown key is an error, reported with its
// full key path and line, and every problem in the file is reported at once
// (DESIGN.md, "Config"). Scalar values may refer to environment variables as
// ${VAR} or ${VAR:-default} ($$ is a literal $), and any key X that the
// configuration knows may instead be given as X_file, the path of a file
// holding the value (for secrets: Docker and Kubernetes secrets are files).
//
// Each component owns its config type (web.Config, ldap.Config, the store
// configs) with its own SetDefaults and Validate; this package puts them
// together under one file, fills defaults in one place (applyDefaults), and
// prefixes every component error with the key path of its block. Nothing but
// cmd/wardend imports this package. docs/configuration.md is the reference for
// every key; config/wardend.yaml is the annotated example.
package config

import (
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/wardenidp/warden/internal/accesskeys"
	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Config is the whole wardend configuration file. The YAML keys are the
// reference in docs/configuration.md.
type Config struct {
	Server      web.Config          `yaml:"server"`
	Directory   ldap.Config         `yaml:"directory"`
	Redis       store.RedisConfig   `yaml:"redis"`
	Session     store.SessionConfig `yaml:"session"`
	LoginLimits store.LimitConfig   `yaml:"login_limits"`
	Admin       admin.Config        `yaml:"admin"`
	Keys        keys.Config         `yaml:"keys"`
	SAML        samlidp.Config      `yaml:"saml"`
	OIDC        oidcop.Config       `yaml:"oidc"`
	MFA         mfa.Config          `yaml:"mfa"`
	Elevation   elevation.Config    `yaml:"elevation"`
	Portal      PortalConfig        `yaml:"portal"`
	Log         LogConfig           `yaml:"log"`
	// DataDir is where wardend keeps what it generates (signing keys and
	// certificates).
	DataDir string    `yaml:"data_dir"`
	Dev     DevConfig `yaml:"dev"`
}

// PortalConfig holds the settings of the user's portal.
type PortalConfig struct {
	// AccessKeys is the "Access keys" panel: short-term credentials per
	// role, minted by wardend at STS.
	AccessKeys accesskeys.Config `yaml:"access_keys"`
}

// LogConfig sets the level and format of wardend's log (log/slog).
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (one object per line) or text (key=value).
	Format string `yaml:"format"`
}

// DevConfig holds the settings of dev mode (wardend -dev).
type DevConfig struct {
	// AllowNonLoopback lets dev mode serve on an address other than a
	// loopback one. Dev mode has demo users with known passwords: never do
	// this on a network others can reach.
	AllowNonLoopback bool `yaml:"allow_non_loopback"`
}

// Defaults of the keys this package owns (the components own theirs).
const (
	DefaultListen     = ":8080"
	DefaultLogLevel   = "info"
	DefaultLogFormat  = "json"
	DefaultDataDir    = "/var/lib/warden"
	DefaultDevListen  = "127.0.0.1:8080"
	DefaultDevDataDir = "./.warden-dev"
	// DefaultDevAdminGroup is the admin group of dev mode: the dev
	// directory's admins group, whose member is alice.
	DefaultDevAdminGroup = "admins"
)

// Defaults returns the configuration that an empty file yields: every
// component's defaults, with no directory type (so no preset) and no
// directory or Redis address.
func Defaults() Config {
	var c Config
	applyDefaults(&c)
	return c
}

// applyDefaults is the one place where defaults are filled in, in this
// order: this package's own defaults for keys it decides (server.listen),
// then the directory preset implied by directory.type (ApplyPreset must run
// before SetDefaults, so that a preset wins over a generic default), then
// every component's SetDefaults, then log and data_dir. Each step fills only
// empty fields, so what the file sets is kept.
func applyDefaults(c *Config) {
	if c.Server.Listen == "" {
		c.Server.Listen = DefaultListen
	}
	c.Server.SetDefaults()
	c.Directory.ApplyPreset()
	c.Directory.SetDefaults()
	c.Redis.SetDefaults()
	c.Session.SetDefaults()
	c.LoginLimits.SetDefaults()
	c.Admin.SetDefaults()
	c.Keys.SetDefaults()
	c.SAML.SetDefaults()
	c.OIDC.SetDefaults()
	c.MFA.SetDefaults()
	c.Elevation.SetDefaults()
	c.Portal.AccessKeys.SetDefaults()
	c.Log.setDefaults()
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
}

func (l *LogConfig) setDefaults() {
	if l.Level == "" {
		l.Level = DefaultLogLevel
	}
	if l.Format == "" {
		l.Format = DefaultLogFormat
	}
}

// Dev returns the configuration dev mode starts from: defaults for the
// server, sessions and login limits, the server on listen (127.0.0.1:8080
// when empty) with public_url http://<listen>, a text log, and data_dir
// ./.warden-dev, and the admin group "admins" (alice's group in the dev
// directory, config/dev-directory.ldif) with no rules file (dev mode seeds
// its built-in example rules). Directory and Redis are left empty: dev mode
// fills them with its embedded directory and in-process Redis.
func Dev(listen string) Config {
	if listen == "" {
		listen = DefaultDevListen
	}
	var c Config
	c.Server.Listen = listen
	c.Server.PublicURL = "http://" + publicHostPort(listen)
	c.Server.SetDefaults()
	c.Session.SetDefaults()
	c.LoginLimits.SetDefaults()
	// the dev directory's admins group (alice)
	c.Admin.Groups = []string{"admins"}
	c.Admin.SetDefaults()
	c.Keys.SetDefaults()
	c.SAML.SetDefaults()
	c.OIDC.SetDefaults()
	// MFA for the admins (alice, whose TOTP factor dev mode seeds)
	c.MFA.Required, c.MFA.Groups = mfa.RequiredGroups, []string{"admins"}
	c.MFA.SetDefaults()
	c.Log = LogConfig{Level: DefaultLogLevel, Format: "text"}
	c.DataDir = DefaultDevDataDir
	return c
}

// publicHostPort turns a listen address into one a browser can open: an
// empty or unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") becomes
// 127.0.0.1.
func publicHostPort(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" {
		host = "127.0.0.1"
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// SlogLevel is the slog level that Level names (info when it names none;
// Validate rejects such a level).
func (l LogConfig) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Handler returns a slog handler writing to w in Format at Level.
func (l LogConfig) Handler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if strings.EqualFold(l.Format, "text") {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}
