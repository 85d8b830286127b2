package store

import (
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

// Session is a signed-in browser. It is stored in Redis under the SHA-256 of
// the cookie token, so a Redis dump yields no usable cookie.
type Session struct {
	// Key is the hex SHA-256 of the cookie token: an identifier safe to
	// show to admins and to log. The token itself is never stored.
	Key       string        `json:"key"`
	User      identity.User `json:"user"`
	CreatedAt time.Time     `json:"created_at"`
	LastSeen  time.Time     `json:"last_seen"`
	// ExpiresAt is the absolute end (CreatedAt + AbsoluteLifetime).
	ExpiresAt time.Time `json:"expires_at"`
	ClientIP  string    `json:"client_ip"`
	UserAgent string    `json:"user_agent"`
}
