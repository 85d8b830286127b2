package admin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Config is the `admin` block of the config file.
type Config struct {
	// Groups are the directory groups whose members may use /admin: each a
	// CN ("admins") or a full DN, matched case-insensitively (DNs by
	// RFC 4517 distinguishedNameMatch). Required.
	Groups []string `yaml:"groups"`
	// RulesFile is a YAML rule set (rolemap.ParseYAML); the lead seeds it
	// into Redis on first start.
	RulesFile string `yaml:"rules_file"`
	// RulesReadOnly makes RulesFile the source of truth: it replaces the
	// stored rules at every start, and the admin UI and API show the rules
	// but refuse every change to them (403).
	RulesReadOnly bool `yaml:"rules_read_only"`
}

// SetDefaults trims the group names; there are no other defaults (an admin
// group must be said, never guessed).
func (c *Config) SetDefaults() {
	for i, g := range c.Groups {
		c.Groups[i] = strings.TrimSpace(g)
	}
	c.RulesFile = strings.TrimSpace(c.RulesFile)
}

// Validate reports every problem at once, with key paths relative to the block.
func (c Config) Validate() error {
	var errs []error
	if len(c.Groups) == 0 {
		errs = append(errs, errors.New("groups: at least one admin group is required"))
	}
	for i, g := range c.Groups {
		switch {
		case strings.TrimSpace(g) == "":
			errs = append(errs, fmt.Errorf("groups[%d]: empty group name", i))
		case strings.Contains(g, "="):
			if _, err := ldap.ParseDN(g); err != nil {
				errs = append(errs, fmt.Errorf("groups[%d]: %q is not a valid DN: %w", i, g, err))
			}
		}
	}
	if c.RulesReadOnly && c.RulesFile == "" {
		errs = append(errs, errors.New("rules_read_only: requires rules_file"))
	}
	return errors.Join(errs...)
}
