package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Modes of RedisConfig.Mode.
const (
	ModeStandalone = "standalone"
	ModeSentinel   = "sentinel"
	ModeCluster    = "cluster"
)

// RedisConfig describes how to reach Redis. Mode "standalone" (one address),
// "sentinel" (sentinel addresses plus MasterName) or "cluster" (seed nodes).
type RedisConfig struct {
	Mode       string   `yaml:"mode"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	// SentinelPassword authenticates to the sentinels, when they require it.
	SentinelPassword string `yaml:"sentinel_password"`
	DB               int    `yaml:"db"`
	TLS              struct {
		Enabled            bool   `yaml:"enabled"`
		CAFile             string `yaml:"ca_file"`
		CertFile           string `yaml:"cert_file"`
		KeyFile            string `yaml:"key_file"`
		ServerName         string `yaml:"server_name"`
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
	// KeyPrefix is put before every key Warden writes ("warden:").
	KeyPrefix    string        `yaml:"key_prefix"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	PoolSize     int           `yaml:"pool_size"`
	// WaitReplicas, when above 0, makes a session creation and an OIDC
	// grant creation or refresh rotation wait (Redis WAIT) until that many
	// replicas of the master acknowledged it, at most WaitTimeout; fewer
	// is a store outage (503). See docs/deployment.md, "Durability".
	WaitReplicas int           `yaml:"wait_replicas"`
	WaitTimeout  time.Duration `yaml:"wait_timeout"`
}

// SetDefaults fills every unset field with its default: mode standalone,
// key prefix "warden:", dial timeout 2s, read and write timeouts 1s, pool
// size 32, wait timeout 100ms (wait_replicas stays 0: no WAIT).
func (c *RedisConfig) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeStandalone
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "warden:"
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = time.Second
	}
	if c.PoolSize == 0 {
		c.PoolSize = 32
	}
	if c.WaitTimeout == 0 {
		c.WaitTimeout = 100 * time.Millisecond
	}
}

// Validate reports every problem at once (errors.Join). Each error's text
// starts with the key path relative to the redis block ("addrs[1]: ...");
// the config package adds "redis.". It reads the TLS files named, so that a
// missing or malformed CA or key pair is reported here and not at start.
func (c RedisConfig) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	switch c.Mode {
	case ModeStandalone, ModeSentinel, ModeCluster:
	default:
		add("mode", "must be one of standalone, sentinel, cluster (got %q)", c.Mode)
	}
	if len(c.Addrs) == 0 {
		add("addrs", "at least one address required")
	}
	for i, a := range c.Addrs {
		if err := checkHostPort(a); err != nil {
			add(fmt.Sprintf("addrs[%d]", i), "%v", err)
		}
	}
	if c.Mode == ModeStandalone && len(c.Addrs) > 1 {
		add("addrs", "standalone mode takes exactly one address (use mode sentinel or cluster for several)")
	}
	if c.Mode == ModeSentinel && c.MasterName == "" {
		add("master_name", "required when mode is sentinel")
	}
	if c.Mode != ModeSentinel && c.MasterName != "" {
		add("master_name", "only used when mode is sentinel")
	}
	if c.Mode != ModeSentinel && c.SentinelPassword != "" {
		add("sentinel_password", "only used when mode is sentinel")
	}
	if c.Username != "" && c.Password == "" {
		add("password", "required when username is set")
	}
	if c.DB < 0 {
		add("db", "must not be negative")
	}
	if c.Mode == ModeCluster && c.DB != 0 {
		add("db", "must be 0 in cluster mode (Redis Cluster has only database 0)")
	}
	if strings.ContainsAny(c.KeyPrefix, "{} \t\r\n") {
		// A brace would turn the prefix into a hash tag and put every key
		// in one cluster slot; whitespace makes keys hard to type in redis-cli.
		add("key_prefix", "must not contain braces or whitespace")
	}
	if len(c.KeyPrefix) > 64 {
		add("key_prefix", "longer than 64 bytes")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.v <= 0 {
			add(d.key, "must be positive")
		}
	}
	if c.PoolSize < 1 {
		add("pool_size", "must be at least 1")
	}
	if c.WaitReplicas < 0 {
		add("wait_replicas", "must not be negative")
	}
	if c.WaitTimeout <= 0 {
		add("wait_timeout", "must be positive")
	} else if c.WaitReplicas > 0 && c.ReadTimeout > 0 && c.WaitTimeout >= c.ReadTimeout {
		// WAIT blocks the connection up to wait_timeout; the client must
		// not give up on the reply first.
		add("wait_timeout", "must be shorter than read_timeout (%v)", c.ReadTimeout)
	}

	t := c.TLS
	if !t.Enabled {
		for _, f := range []struct{ key, v string }{
			{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile},
			{"tls.key_file", t.KeyFile}, {"tls.server_name", t.ServerName},
		} {
			if f.v != "" {
				add(f.key, "set but tls.enabled is false")
			}
		}
		if t.InsecureSkipVerify {
			add("tls.insecure_skip_verify", "set but tls.enabled is false")
		}
	} else {
		if t.CAFile != "" {
			if _, err := loadCAPool(t.CAFile); err != nil {
				add("tls.ca_file", "%v", err)
			}
		}
		switch {
		case t.CertFile != "" && t.KeyFile == "":
			add("tls.key_file", "required when tls.cert_file is set")
		case t.CertFile == "" && t.KeyFile != "":
			add("tls.cert_file", "required when tls.key_file is set")
		case t.CertFile != "":
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				add("tls.cert_file", "cannot load key pair: %v", err)
			}
		}
		if t.InsecureSkipVerify && t.CAFile != "" {
			add("tls.insecure_skip_verify", "contradicts tls.ca_file (the CA would be ignored)")
		}
	}
	return errors.Join(errs...)
}

func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", a)
	}
	return nil
}

func loadCAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", file)
	}
	return pool, nil
}

// SessionConfig sets the lifetimes of sign-in sessions and how many one
// user may hold.
type SessionConfig struct {
	// AbsoluteLifetime: a session ends this long after sign-in, whatever happens.
	AbsoluteLifetime time.Duration `yaml:"absolute_lifetime"`
	// IdleTimeout: a session ends when unused this long. It is measured
	// from the last recorded use, which Sessions.Get refreshes at most once
	// per refresh interval (see Sessions.Get), so a session may end up to
	// that interval before IdleTimeout after its very last request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxPerUser is how many live sessions one user may hold (0: the
	// default, DefaultMaxSessionsPerUser). A sign-in that would leave the
	// user with more ends the user's oldest sessions (by creation) so that
	// MaxPerUser remain, the new one among them (see Sessions.CreateAndEvict).
	MaxPerUser int `yaml:"max_per_user"`
	// Format of new sessions in Redis: "compact" (default) or "json", what
	// Wardens before the compact format wrote and read, for a rolling
	// upgrade from one of them (old replicas read sessions made by new
	// ones); switch to compact once every replica runs this version.
	Format string `yaml:"format"`
}

// Session formats of SessionConfig.Format.
const (
	SessionFormatCompact = "compact"
	SessionFormatJSON    = "json"
)

const (
	// DefaultMaxSessionsPerUser is SessionConfig.MaxPerUser when unset.
	DefaultMaxSessionsPerUser = 50
	// MaxSessionsPerUserLimit bounds SessionConfig.MaxPerUser: a sign-in
	// past the limit reads up to that many of the user's sessions.
	MaxSessionsPerUserLimit = 1000
)

// SetDefaults sets an absolute lifetime of 12h, an idle timeout of 1h and
// at most 50 sessions per user.
func (c *SessionConfig) SetDefaults() {
	if c.AbsoluteLifetime == 0 {
		c.AbsoluteLifetime = 12 * time.Hour
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Hour
	}
	if c.MaxPerUser == 0 {
		c.MaxPerUser = DefaultMaxSessionsPerUser
	}
	if c.Format == "" {
		c.Format = SessionFormatCompact
	}
}

// maxPerUser is MaxPerUser with 0 meaning the default.
func (c SessionConfig) maxPerUser() int {
	if c.MaxPerUser == 0 {
		return DefaultMaxSessionsPerUser
	}
	return c.MaxPerUser
}

// Validate reports every problem at once; keys are relative to the session
// block (the config package adds "session.").
func (c SessionConfig) Validate() error {
	var errs []error
	if c.AbsoluteLifetime <= 0 {
		errs = append(errs, errors.New("absolute_lifetime: must be positive"))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, errors.New("idle_timeout: must be positive"))
	}
	if c.AbsoluteLifetime > 0 && c.IdleTimeout > c.AbsoluteLifetime {
		errs = append(errs, fmt.Errorf("idle_timeout: must not exceed absolute_lifetime (%s)", c.AbsoluteLifetime))
	}
	if c.MaxPerUser < 0 || c.MaxPerUser > MaxSessionsPerUserLimit {
		errs = append(errs, fmt.Errorf("max_per_user: must be 1-%d, or 0 for the default (%d); got %d",
			MaxSessionsPerUserLimit, DefaultMaxSessionsPerUser, c.MaxPerUser))
	}
	if c.Format != "" && c.Format != SessionFormatCompact && c.Format != SessionFormatJSON {
		errs = append(errs, fmt.Errorf("format: must be compact or json (got %q)", c.Format))
	}
	return errors.Join(errs...)
}

// LimitConfig bounds failed sign-ins. A username (known or not) or a client
// IP past its limit within Window gets 429 with Retry-After until the window
// ends.
type LimitConfig struct {
	MaxFailuresPerUser int           `yaml:"max_failures_per_user"`
	MaxFailuresPerIP   int           `yaml:"max_failures_per_ip"`
	Window             time.Duration `yaml:"window"`
}

// SetDefaults sets 5 failures per user and 50 per client IP in 15 minutes.
func (c *LimitConfig) SetDefaults() {
	if c.MaxFailuresPerUser == 0 {
		c.MaxFailuresPerUser = 5
	}
	if c.MaxFailuresPerIP == 0 {
		c.MaxFailuresPerIP = 50
	}
	if c.Window == 0 {
		c.Window = 15 * time.Minute
	}
}

// Validate reports every problem at once; keys are relative to the
// login_limits block (the config package adds "login_limits.").
func (c LimitConfig) Validate() error {
	var errs []error
	if c.MaxFailuresPerUser < 1 {
		errs = append(errs, errors.New("max_failures_per_user: must be at least 1"))
	}
	if c.MaxFailuresPerIP < 1 {
		errs = append(errs, errors.New("max_failures_per_ip: must be at least 1"))
	}
	if c.Window < time.Second {
		errs = append(errs, errors.New("window: must be at least 1s"))
	}
	return errors.Join(errs...)
}
