package store

import "time"

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
}

// SessionConfig sets the lifetimes of sign-in sessions.
type SessionConfig struct {
	// AbsoluteLifetime: a session ends this long after sign-in, whatever happens.
	AbsoluteLifetime time.Duration `yaml:"absolute_lifetime"`
	// IdleTimeout: a session ends when unused this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// LimitConfig bounds failed sign-ins. A username (known or not) or a client
// IP past its limit within Window gets 429 with Retry-After until the window
// ends.
type LimitConfig struct {
	MaxFailuresPerUser int           `yaml:"max_failures_per_user"`
	MaxFailuresPerIP   int           `yaml:"max_failures_per_ip"`
	Window             time.Duration `yaml:"window"`
}
