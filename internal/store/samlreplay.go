package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SAMLReplay remembers SAML request IDs so that one AuthnRequest is
// answered once (SAML profiles §4.1.4.5 asks the relying party to keep
// such a cache; Warden keeps one for the requests it answers too).
//
// Key: prefix+"saml:req:"+id, set with SET NX EX ttl. The caller picks id;
// samlidp passes the hex SHA-256 of the issuer and the request ID, so an
// attacker cannot choose key names or lengths.
type SAMLReplay struct{ store *Store }

// NewSAMLReplay returns the replay cache on st.
func NewSAMLReplay(st *Store) *SAMLReplay { return &SAMLReplay{store: st} }

// maxReplayID bounds the id of Seen (a key name).
const maxReplayID = 256

// Seen records id for ttl and reports whether this was the first time it
// was seen within its ttl (true: first; false: a replay). Every Redis
// failure wraps ErrUnavailable; the caller must then refuse the request,
// since it cannot tell a replay from a first use.
func (r *SAMLReplay) Seen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if id == "" || len(id) > maxReplayID {
		return false, fmt.Errorf("store: saml replay: id of %d bytes not in 1..%d", len(id), maxReplayID)
	}
	if ttl < time.Second {
		return false, errors.New("store: saml replay: ttl under one second")
	}
	ctx, cancel := r.store.op(ctx)
	defer cancel()
	first, err := r.store.client.SetNX(ctx, r.store.Key("saml:req:"+id), "1", ttl).Result()
	if err != nil {
		return false, Unavailable("store: saml replay", err)
	}
	return first, nil
}
