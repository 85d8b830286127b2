package config

import (
	"strings"
	"testing"
)

// TestSessionMaxPerUser: session.max_per_user defaults to 50 (also when
// given as 0) and a value out of range is reported with its key path.
func TestSessionMaxPerUser(t *testing.T) {
	base := "redis: {addrs: [127.0.0.1:6379]}\nadmin: {groups: [admins]}\n"
	for _, tt := range []struct {
		yaml string
		want int
	}{{"", 50}, {"session: {max_per_user: 0}\n", 50}, {"session: {max_per_user: 3}\n", 3}} {
		c, err := Parse([]byte(base+tt.yaml), envMap(nil))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if c.Session.MaxPerUser != tt.want {
			t.Errorf("%q: max_per_user %d, want %d", tt.yaml, c.Session.MaxPerUser, tt.want)
		}
	}
	for _, v := range []string{"-1", "1001"} {
		c, err := Parse([]byte(base+"session: {max_per_user: "+v+"}\n"), envMap(nil))
		if err == nil {
			err = c.Validate()
		}
		want := "session.max_per_user: must be 1-1000, or 0 for the default (50); got " + v
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("max_per_user %s: got %v, want %q", v, err, want)
		}
	}
}
