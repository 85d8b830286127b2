package mfa

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
)

// Values of Config.Required.
const (
	RequiredNone   = "none"   // nobody must; anyone may enroll, and roles may still demand it
	RequiredAll    = "all"    // every user
	RequiredGroups = "groups" // members of Config.Groups
)

// DefaultSessionTag is the session tag that tells AWS how the user signed in.
const DefaultSessionTag = "WardenAuth"

// Config is the mfa block of the wardend configuration.
type Config struct {
	// Required says who must give a second factor at every sign-in:
	// "none" (default), "all", or "groups" (the members of Groups).
	Required string `yaml:"required"`
	// Groups are names or DNs, matched like admin.groups.
	Groups []string `yaml:"groups"`
	// Methods are the second factors that count (identity.SecondFactors by
	// default: webauthn, totp, recovery).
	Methods []string `yaml:"methods"`
	// EnrollGrace lets a user who must use MFA and has no factor postpone
	// setting one up, for this long after being first asked; 0 (default):
	// they set one up right after the password.
	EnrollGrace time.Duration `yaml:"enroll_grace"`
	// EncryptionKeyFile holds the 32-byte key (raw, hex or base64) that
	// encrypts TOTP secrets and WebAuthn credentials in Redis; every
	// replica needs the same. Empty: <data_dir>/mfa.key, created at first
	// start.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// PreviousEncryptionKeyFiles still decrypt (key rotation): factors are
	// re-encrypted under the current key when next used.
	PreviousEncryptionKeyFiles []string `yaml:"previous_encryption_key_files"`
	// SessionTag is the session tag (SAML PrincipalTag and the web-identity
	// token's tags) whose value is the method: password, totp, webauthn or
	// recovery. Default WardenAuth; "-" sends none.
	SessionTag string `yaml:"session_tag"`
	// Issuer is the name authenticator apps show for TOTP entries.
	Issuer string `yaml:"issuer"`
	// StepUpMaxAge is how recent a second factor must be for changes to
	// factors (the user's own and an admin's reset). Default 5m.
	StepUpMaxAge time.Duration `yaml:"step_up_max_age"`
	// Limits count wrong codes per user and per client IP.
	Limits store.LimitConfig `yaml:"limits"`
}

// SetDefaults fills empty fields.
func (c *Config) SetDefaults() {
	c.Required = strings.ToLower(strings.TrimSpace(c.Required))
	if c.Required == "" {
		c.Required = RequiredNone
	}
	if len(c.Methods) == 0 {
		c.Methods = slices.Clone(identity.SecondFactors)
	}
	for i, m := range c.Methods {
		c.Methods[i] = strings.ToLower(strings.TrimSpace(m))
	}
	for i, g := range c.Groups {
		c.Groups[i] = strings.TrimSpace(g)
	}
	if c.SessionTag == "" {
		c.SessionTag = DefaultSessionTag
	}
	if c.Issuer == "" {
		c.Issuer = "Warden"
	}
	if c.StepUpMaxAge == 0 {
		c.StepUpMaxAge = 5 * time.Minute
	}
	if c.Limits.MaxFailuresPerUser == 0 {
		c.Limits.MaxFailuresPerUser = 5
	}
	if c.Limits.MaxFailuresPerIP == 0 {
		c.Limits.MaxFailuresPerIP = 50
	}
	if c.Limits.Window == 0 {
		c.Limits.Window = 5 * time.Minute
	}
}

var tagKey = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)

// Validate reports every problem at once, with key paths relative to the block.
func (c Config) Validate() error {
	var errs []error
	switch c.Required {
	case RequiredNone, RequiredAll:
		if len(c.Groups) > 0 {
			errs = append(errs, fmt.Errorf("groups: only used with required: groups (required is %q)", c.Required))
		}
	case RequiredGroups:
		if len(c.Groups) == 0 {
			errs = append(errs, errors.New("groups: required: groups needs at least one group"))
		}
	default:
		errs = append(errs, fmt.Errorf("required: %q is not one of none, all, groups", c.Required))
	}
	for i, g := range c.Groups {
		switch {
		case g == "":
			errs = append(errs, fmt.Errorf("groups[%d]: empty group name", i))
		case strings.Contains(g, "="):
			if _, err := ldap.ParseDN(g); err != nil {
				errs = append(errs, fmt.Errorf("groups[%d]: %q is not a valid DN: %w", i, g, err))
			}
		}
	}
	seen := map[string]bool{}
	for i, m := range c.Methods {
		switch {
		case !identity.IsSecondFactor(m):
			errs = append(errs, fmt.Errorf("methods[%d]: %q is not one of %s", i, m, strings.Join(identity.SecondFactors, ", ")))
		case seen[m]:
			errs = append(errs, fmt.Errorf("methods[%d]: %q is listed twice", i, m))
		}
		seen[m] = true
	}
	if len(c.Methods) == 1 && c.Methods[0] == identity.MethodRecovery {
		errs = append(errs, errors.New("methods: recovery codes alone cannot be enrolled; add totp or webauthn"))
	}
	if c.EnrollGrace < 0 {
		errs = append(errs, errors.New("enroll_grace: must not be negative"))
	}
	if c.SessionTag != "-" && (!tagKey.MatchString(c.SessionTag) || strings.HasPrefix(strings.ToLower(c.SessionTag), "aws:")) {
		errs = append(errs, fmt.Errorf("session_tag: %q is not a valid AWS session tag key (1-128 letters, digits, spaces and _.:/=+-@, no aws: prefix), or - for none", c.SessionTag))
	}
	for _, taken := range []string{"WardenRole", "WardenAccount"} {
		if strings.EqualFold(c.SessionTag, taken) {
			errs = append(errs, fmt.Errorf("session_tag: %q is the tag Warden gives the role's own name or account; choose another key", c.SessionTag))
		}
	}
	if strings.Contains(c.Issuer, ":") {
		errs = append(errs, errors.New("issuer: must not contain ':'"))
	}
	if c.StepUpMaxAge < time.Minute || c.StepUpMaxAge > time.Hour {
		errs = append(errs, errors.New("step_up_max_age: must be between 1m and 1h"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, prefixErrs("limits.", err))
	}
	return errors.Join(errs...)
}

func prefixErrs(prefix string, err error) error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("%s%w", prefix, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s%w", prefix, err)
}

// Tag returns the session tag key, or "" when none is sent.
func (c Config) Tag() string {
	if c.SessionTag == "-" {
		return ""
	}
	return c.SessionTag
}

// ParseKey reads an encryption key: 32 raw bytes, or 64 hex digits, or
// base64 of 32 bytes (keys.ParseAESKey).
func ParseKey(b []byte) ([]byte, error) {
	k, err := keys.ParseAESKey(b)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	return k, nil
}

// LoadKey reads the key file at path. With create, a missing file is made
// with a new random key (mode 0600; keys.LoadAESKey).
func LoadKey(path string, create bool, random func([]byte) error) ([]byte, error) {
	k, err := keys.LoadAESKey(path, create, random)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	return k, nil
}
