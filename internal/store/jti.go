package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// AssertionJTIs remembers the jti of client assertions (RFC 7523 §3: "the
// authorization server MAY ensure that JWTs are not replayed") until the
// assertion expires, on every replica at once.
type AssertionJTIs struct{ store *Store }

// NewAssertionJTIs returns the jti cache on st.
func NewAssertionJTIs(st *Store) *AssertionJTIs { return &AssertionJTIs{store: st} }

// First records the jti of clientID's assertion until exp and reports
// whether it is new (false: a replay). The key is a hash of both, so any
// jti text fits. Every Redis failure wraps ErrUnavailable: the caller must
// refuse the assertion then, since it cannot tell a replay from a first use.
func (j *AssertionJTIs) First(ctx context.Context, clientID, jti string, exp time.Time) (bool, error) {
	if clientID == "" || jti == "" {
		return false, errors.New("store: assertion jti: empty client ID or jti")
	}
	ttl := time.Until(exp) + time.Second // past exp the assertion is refused anyway
	if ttl < time.Second {
		ttl = time.Second
	}
	sum := sha256.Sum256([]byte(clientID + "\x00" + jti))
	ctx, cancel := j.store.op(ctx)
	defer cancel()
	first, err := j.store.client.SetNX(ctx, j.store.Key("jti:"+hex.EncodeToString(sum[:16])), "1", ttl).Result()
	if err != nil {
		return false, Unavailable(fmt.Sprintf("store: assertion jti of %s", clientID), err)
	}
	return first, nil
}
