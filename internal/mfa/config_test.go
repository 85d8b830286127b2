package mfa_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mfa.Config
		want string // "" = valid
	}{
		{"defaults", mfa.Config{}, ""},
		{"all", mfa.Config{Required: "ALL"}, ""},
		{"groups without groups", mfa.Config{Required: "groups"}, "groups: required: groups needs at least one group"},
		{"groups with none", mfa.Config{Groups: []string{"x"}}, "groups: only used with required: groups"},
		{"bad required", mfa.Config{Required: "sometimes"}, `required: "sometimes" is not one of none, all, groups`},
		{"bad DN", mfa.Config{Required: "groups", Groups: []string{"cn=a,,dc"}}, "groups[0]"},
		{"bad method", mfa.Config{Methods: []string{"sms"}}, `methods[0]: "sms" is not one of`},
		{"twice", mfa.Config{Methods: []string{"totp", "TOTP"}}, `methods[1]: "totp" is listed twice`},
		{"recovery alone", mfa.Config{Methods: []string{"recovery"}}, "recovery codes alone"},
		{"negative grace", mfa.Config{EnrollGrace: -time.Hour}, "enroll_grace"},
		{"aws tag", mfa.Config{SessionTag: "aws:auth"}, "session_tag"},
		{"bad tag chars", mfa.Config{SessionTag: "a{b}"}, "session_tag"},
		{"taken tag", mfa.Config{SessionTag: "wardenrole"}, "session_tag"},
		{"no tag", mfa.Config{SessionTag: "-"}, ""},
		{"issuer colon", mfa.Config{Issuer: "a:b"}, "issuer"},
		{"step-up too long", mfa.Config{StepUpMaxAge: 2 * time.Hour}, "step_up_max_age"},
		{"limits", mfa.Config{Limits: store.LimitConfig{MaxFailuresPerUser: -1}}, "limits."},
	} {
		c := tc.cfg
		c.SetDefaults()
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	var c mfa.Config
	c.SetDefaults()
	if c.Tag() != "WardenAuth" || c.Required != "none" || len(c.Methods) != 3 {
		t.Errorf("defaults: %+v", c)
	}
	c.SessionTag = "-"
	if c.Tag() != "" {
		t.Error(`session_tag "-" still sends a tag`)
	}
}

func TestParseKey(t *testing.T) {
	raw := []byte(strings.Repeat("k", 32))
	for name, in := range map[string][]byte{
		"raw":    raw,
		"hex":    []byte(strings.Repeat("6b", 32) + "\n"),
		"base64": []byte("a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=\n"),
	} {
		k, err := mfa.ParseKey(in)
		if err != nil || string(k) != string(raw) {
			t.Errorf("%s: %q %v", name, k, err)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("6b", 31)} {
		if _, err := mfa.ParseKey([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
