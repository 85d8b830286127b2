// Package elevation is time-boxed elevation: a role the rules make
// eligible (rolemap access: eligible) is granted for a window after a
// request with a reason, a fresh second factor and, where the rule names
// approvers, the decision of one approver who is not the requester.
//
// The Service checks requests against the requester's rules as they are
// now, records every step in the audit log, sends signed webhooks off the
// request path, and turns active elevations into grants at hand-off time
// (Apply): every AWS session issued for an elevated role ends no later
// than the window. The state is store.Elevations (Redis, shared by all
// replicas). The UI and the JSON API (UI) are a web.Mount.
package elevation

import (
	"fmt"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

// Defaults of Config.
const (
	DefaultRequestTimeout = time.Hour
	DefaultMaxStartDelay  = 7 * 24 * time.Hour
	DefaultIDTag          = "WardenElevation"
	DefaultReasonTag      = "WardenReason"
	// MinSeconds is the shortest window: AWS sessions last at least 15
	// minutes, so a shorter window could not end them in time.
	MinSeconds = 900
	// MaxRoles is the most roles one request may cover.
	MaxRoles = 20
	// MaxReason is the longest reason or comment, in characters.
	MaxReason = 500
)

// Config is the elevation block of the wardend configuration.
type Config struct {
	// RequestTimeout is how long a request waits for a decision before it
	// expires (default 1h); a planned request may also be decided until
	// its start.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxStartDelay is how far ahead a planned start may be (default 7 days).
	MaxStartDelay time.Duration `yaml:"max_start_delay"`
	// IDTag and ReasonTag are the session tags that carry the request ID
	// and a safe form of the reason to AWS (CloudTrail shows them). "-"
	// sends none.
	IDTag     string `yaml:"id_tag"`
	ReasonTag string `yaml:"reason_tag"`
	// Webhooks receive requested, approved, denied, expired and ended events.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// Limits bound requests per user and per client IP (each request
	// counts): default 20 per user and 200 per IP an hour.
	Limits store.LimitConfig `yaml:"limits"`
}

// SetDefaults fills empty fields.
func (c *Config) SetDefaults() {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxStartDelay == 0 {
		c.MaxStartDelay = DefaultMaxStartDelay
	}
	c.IDTag, c.ReasonTag = strings.TrimSpace(c.IDTag), strings.TrimSpace(c.ReasonTag)
	if c.IDTag == "" {
		c.IDTag = DefaultIDTag
	}
	if c.ReasonTag == "" {
		c.ReasonTag = DefaultReasonTag
	}
	if c.Limits.MaxFailuresPerUser == 0 {
		c.Limits.MaxFailuresPerUser = 20
	}
	if c.Limits.MaxFailuresPerIP == 0 {
		c.Limits.MaxFailuresPerIP = 200
	}
	if c.Limits.Window == 0 {
		c.Limits.Window = time.Hour
	}
	for i := range c.Webhooks {
		c.Webhooks[i].SetDefaults()
	}
}

// Validate reports the first problem, with its key path.
func (c Config) Validate() error {
	switch {
	case c.RequestTimeout < time.Minute || c.RequestTimeout > 7*24*time.Hour:
		return fmt.Errorf("request_timeout: %v; want 1m to 168h", c.RequestTimeout)
	case c.MaxStartDelay < 0 || c.MaxStartDelay > 90*24*time.Hour:
		return fmt.Errorf("max_start_delay: %v; want 0 to 2160h (90 days)", c.MaxStartDelay)
	case c.Limits.MaxFailuresPerUser < 0 || c.Limits.MaxFailuresPerIP < 0 || c.Limits.Window < 0:
		return fmt.Errorf("limits: values must not be negative")
	}
	for _, t := range []struct{ key, v string }{{"id_tag", c.IDTag}, {"reason_tag", c.ReasonTag}} {
		if t.v == "-" {
			continue
		}
		if msg := tagKeyProblem(t.v); msg != "" {
			return fmt.Errorf("%s: %q %s", t.key, t.v, msg)
		}
	}
	if c.IDTag != "-" && strings.EqualFold(c.IDTag, c.ReasonTag) {
		return fmt.Errorf("reason_tag: %q is also elevation.id_tag", c.ReasonTag)
	}
	for i, w := range c.Webhooks {
		if err := w.Validate(fmt.Sprintf("webhooks[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// tagKeyProblem checks an AWS session tag key (aws-federation-rules.md
// item 14): 1–128 characters of letters, digits, spaces and _.:/=+-@, not
// starting with "aws:".
func tagKeyProblem(k string) string {
	if k == "" || len(k) > 128 {
		return "must be 1 to 128 characters"
	}
	if strings.HasPrefix(strings.ToLower(k), "aws:") {
		return `must not start with "aws:"`
	}
	for _, r := range k {
		if !tagChar(r) {
			return fmt.Sprintf("has %q; session tag keys allow letters, digits, spaces and _.:/=+-@", r)
		}
	}
	return ""
}

func tagChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" _.:/=+-@", r)
}

// SafeTagValue is reason as a session tag value: characters AWS does not
// accept become spaces, runs of spaces one, at most 256 characters.
func SafeTagValue(reason string) string {
	var b strings.Builder
	space := false
	for _, r := range reason {
		if !tagChar(r) || r == ' ' {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	s := strings.TrimSpace(b.String())
	if len(s) > 256 {
		s = strings.TrimSpace(s[:256])
	}
	return s
}
