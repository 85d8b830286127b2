package keys

import (
	"errors"
	"fmt"
	"time"
)

// Config is the keys block of the configuration.
type Config struct {
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
	// ReloadInterval is how often Watch re-reads the key directory
	// (default 30s), so that replicas sharing it follow a rotation.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Defaults of Config.
const (
	DefaultSize            = 2048
	DefaultPublishPrevious = 720 * time.Hour
	DefaultCertValidity    = 10 * 365 * 24 * time.Hour
	DefaultReloadInterval  = 30 * time.Second
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
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultReloadInterval
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
	if c.ReloadInterval < time.Second || c.ReloadInterval > time.Hour {
		add("reload_interval", "must be between 1s and 1h (got %s)", c.ReloadInterval)
	}
	return errors.Join(errs...)
}
