package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

// TestStoredTimes: the direct look-up of last_seen and expires_at that
// evict uses agrees with the JSON decoder, whatever the strings and
// directory attributes of the session hold.
func TestStoredTimes(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	base := Session{Key: "k", CreatedAt: t0, LastSeen: t0.Add(time.Minute), ExpiresAt: t0.Add(12 * time.Hour),
		User: identity.User{ID: "u", Username: "alice", Groups: []identity.Group{{DN: "cn=a,dc=x", Name: "a"}}}}
	tricky := `","last_seen":"2099-01-01T00:00:00Z","expires_at":"2099-01-01T00:00:00Z`
	cases := map[string]func(s *Session){
		"plain":                  func(*Session) {},
		"user_agent_quotes_keys": func(s *Session) { s.UserAgent = tricky },
		"display_name":           func(s *Session) { s.User.DisplayName = tricky },
		"attribute_named_like_a_key": func(s *Session) {
			s.User.Attributes = map[string][]string{"last_seen": {"2099-01-01T00:00:00Z"}, "expires_at": {"x"}}
		},
		"attribute_value": func(s *Session) { s.User.Attributes = map[string][]string{"a": {tricky}} },
		"pending":         func(s *Session) { s.Pending = PendingFactor; s.CheckedAt = t0 },
	}
	for name, mod := range cases {
		s := base
		mod(&s)
		val, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		ls, ex, ok := storedTimes(val)
		if !ok || !ls.Equal(s.LastSeen) || !ex.Equal(s.ExpiresAt) {
			t.Errorf("%s: got %v %v %v, want %v %v\n%s", name, ls, ex, ok, s.LastSeen, s.ExpiresAt, val)
		}
	}
	for name, val := range map[string]string{"nil": "", "garbage": "{not json", "no_times": `{"key":"k"}`} {
		var b []byte
		if val != "" {
			b = []byte(val)
		}
		ls, ex, ok := storedTimes(b)
		if name != "no_times" && ok {
			t.Errorf("%s: decoded %v %v", name, ls, ex)
		}
		s := Sessions{cfg: SessionConfig{IdleTimeout: time.Hour}}
		if s.liveAt(b, t0) {
			t.Errorf("%s: live", name)
		}
	}
}
