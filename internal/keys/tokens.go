package keys

import (
	"errors"
	"fmt"
)

// TokenKeys are the keys of OIDC tokens (ID tokens, web-identity tokens):
// the ring of one algorithm signs, and every published key of both rings
// is in the JWKS, so that switching oidc.signing_algorithm is publish (the
// new ring exists), switch, and the old ring's keys stay published (the
// RSA ring always is: SAML signs with it). The rings are followed by their
// own Watch; TokenKeys reads them at every call.
type TokenKeys struct {
	signing *Ring
	rings   []*Ring
}

// NewTokenKeys signs with the ring of alg (AlgRS256: rsa, AlgES256: ec) and
// publishes both. ec may be nil (no ES256 ring followed); the signing ring
// must have a current key.
func NewTokenKeys(alg string, rsa, ec *Ring) (*TokenKeys, error) {
	if rsa == nil || rsa.Alg() != AlgRS256 || (ec != nil && ec.Alg() != AlgES256) {
		return nil, errors.New("keys: token keys need the RS256 ring and, if any, the ES256 ring")
	}
	t := &TokenKeys{rings: []*Ring{rsa}}
	if ec != nil {
		t.rings = append(t.rings, ec)
	}
	switch alg {
	case AlgRS256:
		t.signing = rsa
	case AlgES256:
		t.signing = ec
	default:
		return nil, fmt.Errorf("keys: signing algorithm %q not supported (%s, %s)", alg, AlgRS256, AlgES256)
	}
	if t.signing == nil || t.signing.Current().Private() == nil {
		return nil, fmt.Errorf("keys: no %s key to sign tokens with", alg)
	}
	return t, nil
}

// Alg is the algorithm tokens are signed with.
func (t *TokenKeys) Alg() string { return t.signing.Alg() }

// Current is the key that signs tokens now.
func (t *TokenKeys) Current() Signer { return t.signing.Current() }

// Published is every published key of both rings, RSA first.
func (t *TokenKeys) Published() []Signer {
	var out []Signer
	for _, r := range t.rings {
		out = append(out, r.Published()...)
	}
	return out
}

// JWKS is the JWK Set of Published() (Ring.JWKS).
func (t *TokenKeys) JWKS() []byte {
	b, more := []byte(`{"keys":[`), false
	for _, r := range t.rings {
		b, more = r.appendJWKs(b, more)
	}
	return append(b, "]}"...)
}
