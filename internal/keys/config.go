package keys

import (
	"errors"
	"fmt"
	"time"
)

// Config is the keys block of the configuration.
type Config struct {
	// Store is where the ring is kept: "file" (default; Dir, for one host
	// or a shared volume, or a mounted Kubernetes secret read-only) or
	// "redis" (sealed with EncryptionKeyFile's key; replicas need no
	// shared disk, and a rotation reaches them all within ReloadInterval).
	Store string `yaml:"store"`
	// Dir is the key directory of the file store, and the ring a Redis
	// store copies in when Redis holds none. Default: <data_dir>/keys.
	Dir string `yaml:"dir"`
	// EncryptionKeyFile holds the AES-256 key (32 bytes: raw, 64 hex
	// digits or base64) that seals the ring in Redis. Every replica needs
	// the same file. Required with store: redis.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// PreviousEncryptionKeyFiles still open the ring (rotation of the
	// encryption key): a ring sealed with one is sealed again with
	// EncryptionKeyFile's key at the next start.
	PreviousEncryptionKeyFiles []string `yaml:"previous_encryption_key_files"`
	// Size of new RSA keys in bits: 2048 (default), 3072 or 4096. Existing
	// keys keep their size; a change applies from the next rotation.
	Size int `yaml:"size"`
	// PublishPrevious is how long a key stays published after it stopped
	// signing (default 720h), so that relying parties that cache metadata
	// or a JWKS, and tokens signed just before the switch, keep verifying.
	PublishPrevious time.Duration `yaml:"publish_previous"`
	// CertValidity of new self-signed certificates (default 10 years; AWS
	// ignores the expiry of the metadata certificate, other SPs may not).
	CertValidity time.Duration `yaml:"cert_validity"`
	// ReloadInterval is how often Watch re-reads the stored ring (default
	// 30s for a directory, 500ms for Redis), so that replicas follow a
	// rotation.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Defaults of Config.
const (
	DefaultSize            = 2048
	DefaultPublishPrevious = 720 * time.Hour
	DefaultCertValidity    = 10 * 365 * 24 * time.Hour
	DefaultReloadInterval  = 30 * time.Second
	// DefaultRedisReloadInterval: with the ring in Redis a poll is one GET
	// of a few kilobytes, so replicas switch keys within a second (twice a
	// second: a poll and the GET that follows it fit in the second).
	DefaultRedisReloadInterval = 500 * time.Millisecond
)

// minReloadInterval bounds ReloadInterval from below: a directory is read
// and a Redis GET made that often by every replica.
const minReloadInterval = 250 * time.Millisecond

// Store kinds of Config.Store.
const (
	StoreFile  = "file"
	StoreRedis = "redis"
)

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.PublishPrevious == 0 {
		c.PublishPrevious = DefaultPublishPrevious
	}
	if c.CertValidity == 0 {
		c.CertValidity = DefaultCertValidity
	}
	if c.Store == "" {
		c.Store = StoreFile
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
		if c.Store == StoreRedis {
			c.ReloadInterval = DefaultRedisReloadInterval
		}
	}
}

// Validate reports every problem at once (errors.Join). Each error's text
// starts with the key path relative to the keys block ("size: ..."); the
// config package adds "keys.".
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !validSize(c.Size) {
		add("size", "must be 2048, 3072 or 4096 (got %d)", c.Size)
	}
	if c.PublishPrevious < time.Hour {
		// Assertions and ID tokens live minutes to an hour; a retired key
		// must outlive every token it signed.
		add("publish_previous", "must be at least 1h (got %s)", c.PublishPrevious)
	}
	if c.CertValidity < 24*time.Hour || c.CertValidity > 100*365*24*time.Hour {
		add("cert_validity", "must be between 24h and 100 years (got %s)", c.CertValidity)
	}
	switch c.Store {
	case StoreFile:
		if c.EncryptionKeyFile != "" || len(c.PreviousEncryptionKeyFiles) > 0 {
			add("encryption_key_file", "only with store: redis (a key directory is not encrypted)")
		}
	case StoreRedis:
		if c.EncryptionKeyFile == "" {
			add("encryption_key_file", "required with store: redis (32 random bytes, e.g. `openssl rand -base64 32`)")
		}
	default:
		add("store", "must be file or redis (got %q)", c.Store)
	}
	if c.ReloadInterval < minReloadInterval || c.ReloadInterval > time.Hour {
		add("reload_interval", "must be between 250ms and 1h (got %s)", c.ReloadInterval)
	}
	return errors.Join(errs...)
}
