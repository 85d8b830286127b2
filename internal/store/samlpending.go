package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
)

// SAMLPending holds SAML AuthnRequests paused while the browser signs in:
// the IdP stores what it validated, sends the browser to the sign-in page
// with a continuation URL naming the returned id, and takes it back once
// the user is signed in. Take deletes it (GETDEL), so a continuation is
// used once.
//
// Key: prefix+"saml:pending:"+id, id = 32 random bytes, unpadded base64url.
type SAMLPending struct {
	store  *Store
	random io.Reader
}

// NewSAMLPending returns the pending-request store on st; random is the
// source of ids (nil: the store's, crypto/rand).
func NewSAMLPending(st *Store, random io.Reader) *SAMLPending {
	if random == nil {
		random = st.random
	}
	return &SAMLPending{store: st, random: random}
}

// Limits of Put.
const (
	// MaxSAMLPending bounds the stored data (an AuthnRequest is capped
	// well under this by samlidp).
	MaxSAMLPending = 256 << 10
	// DefaultSAMLPendingTTL is how long a paused request waits for the
	// sign-in (10 minutes).
	DefaultSAMLPendingTTL = 10 * time.Minute
)

// Put stores data for ttl (0: DefaultSAMLPendingTTL) and returns its id.
func (p *SAMLPending) Put(ctx context.Context, data []byte, ttl time.Duration) (string, error) {
	if len(data) == 0 || len(data) > MaxSAMLPending {
		return "", fmt.Errorf("store: saml pending: %d bytes not in 1..%d", len(data), MaxSAMLPending)
	}
	if ttl == 0 {
		ttl = DefaultSAMLPendingTTL
	}
	if ttl < time.Second {
		return "", errors.New("store: saml pending: ttl under one second")
	}
	raw := make([]byte, tokenBytes)
	if _, err := io.ReadFull(p.random, raw); err != nil {
		return "", fmt.Errorf("store: saml pending: random: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	ctx, cancel := p.store.op(ctx)
	defer cancel()
	ok, err := p.store.client.SetNX(ctx, p.key(id), data, ttl).Result()
	if err != nil {
		return "", Unavailable("store: saml pending", err)
	}
	if !ok {
		return "", errors.New("store: saml pending: id collision (is the random source broken?)")
	}
	return id, nil
}

// Take returns the data stored under id and deletes it. An unknown,
// expired, already taken or malformed id is ErrNotFound.
func (p *SAMLPending) Take(ctx context.Context, id string) ([]byte, error) {
	if raw, err := base64.RawURLEncoding.Strict().DecodeString(id); err != nil || len(raw) != tokenBytes {
		return nil, fmt.Errorf("store: saml pending: %w", ErrNotFound)
	}
	ctx, cancel := p.store.op(ctx)
	defer cancel()
	data, err := p.store.client.GetDel(ctx, p.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: saml pending: %w", ErrNotFound)
	}
	if err != nil {
		return nil, Unavailable("store: saml pending", err)
	}
	return data, nil
}

func (p *SAMLPending) key(id string) string { return p.store.Key("saml:pending:" + id) }
