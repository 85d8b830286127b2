package oidcop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client assertions (RFC 7523 §2.2, OpenID Connect Core §9
// private_key_jwt): a client authenticates to the token endpoint with a
// JWT it signed with its own key. VerifyClientAssertion is the whole
// check; the token endpoint's client_credentials grant for workloads
// builds on it.

// AssertionType is the client_assertion_type of a JWT assertion.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits of client assertions.
const (
	// MaxAssertionAhead: an assertion may not be valid for longer than
	// this from now (its exp): a stolen one is worth five minutes.
	MaxAssertionAhead = 5 * time.Minute
	// AssertionLeeway absorbs clock differences between client and server.
	AssertionLeeway   = 30 * time.Second
	maxAssertionBytes = 8 << 10
	maxJTIBytes       = 256
)

// ErrBadAssertion is every refusal of VerifyClientAssertion; the token
// endpoint answers it as invalid_client (RFC 6749 §5.2) with the text.
var ErrBadAssertion = errors.New("client assertion refused")

// JTICache remembers the jti of accepted assertions until they expire
// (store.AssertionJTIs): First reports whether jti is new for clientID.
type JTICache interface {
	First(ctx context.Context, clientID, jti string, exp time.Time) (bool, error)
}

// AssertionClaims are what a verified assertion says.
type AssertionClaims struct {
	ClientID string
	KeyID    string
	ID       string // jti
	Expiry   time.Time
}

// VerifyClientAssertion checks raw, an assertion of clientID, against the
// client's registered public keys and the audiences the server answers to
// (the token endpoint URL and the issuer): signed RS256 (RSA, 2048 bits or
// more) or ES256 (P-256) only, so "none" and an HMAC made with a public
// key are refused before any key is used; a key named by kid (or the only
// key of the algorithm); iss and sub the client; aud one of audiences; exp
// in the future but at most MaxAssertionAhead away; nbf and iat not in the
// future; a jti not seen before (jtis, until exp). A refusal wraps
// ErrBadAssertion, or is the cache's error (store.ErrUnavailable) when it
// cannot tell a replay from a first use.
func VerifyClientAssertion(ctx context.Context, raw, clientID string, keys []jose.JSONWebKey, audiences []string,
	now time.Time, jtis JTICache) (AssertionClaims, error) {
	bad := func(format string, args ...any) (AssertionClaims, error) {
		return AssertionClaims{}, fmt.Errorf("%w: %s", ErrBadAssertion, fmt.Sprintf(format, args...))
	}
	if clientID == "" {
		return bad("no client_id")
	}
	if raw == "" || len(raw) > maxAssertionBytes {
		return bad("the assertion is empty or longer than %d bytes", maxAssertionBytes)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return bad("not a JWT signed with RS256 or ES256")
	}
	if len(tok.Headers) != 1 {
		return bad("one signature expected")
	}
	h := tok.Headers[0]
	key, err := assertionKey(keys, h.KeyID, jose.SignatureAlgorithm(h.Algorithm))
	if err != nil {
		return bad("%v", err)
	}
	var c jwt.Claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return bad("the signature does not verify with the client's key %q", key.KeyID)
	}
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return bad("iss and sub must both be the client_id")
	case c.Expiry == nil:
		return bad("no exp")
	case c.ID == "" || len(c.ID) > maxJTIBytes:
		return bad("jti missing or longer than %d bytes", maxJTIBytes)
	}
	exp := c.Expiry.Time()
	if exp.After(now.Add(MaxAssertionAhead + AssertionLeeway)) {
		return bad("exp is more than %s ahead", MaxAssertionAhead)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{AnyAudience: audiences, Time: now}, AssertionLeeway); err != nil {
		switch {
		case errors.Is(err, jwt.ErrInvalidAudience):
			return bad("aud must name this server's token endpoint")
		case errors.Is(err, jwt.ErrExpired):
			return bad("expired")
		default:
			return bad("not valid yet (nbf or iat in the future)")
		}
	}
	first, err := jtis.First(ctx, clientID, c.ID, exp)
	if err != nil {
		return AssertionClaims{}, err
	}
	if !first {
		return bad("jti already used (a replayed assertion)")
	}
	return AssertionClaims{ClientID: clientID, KeyID: key.KeyID, ID: c.ID, Expiry: exp}, nil
}

// assertionKey is the client's key that verifies alg: the one named by kid,
// or, without a kid, the only key usable with alg. A key must be public,
// of the algorithm's type (RSA of 2048 bits or more for RS256, P-256 for
// ES256), and not restricted to another algorithm or use.
func assertionKey(keys []jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	usable := func(k jose.JSONWebKey) bool {
		if (k.Algorithm != "" && k.Algorithm != string(alg)) || (k.Use != "" && k.Use != "sig") {
			return false
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			return alg == jose.RS256 && pub.N.BitLen() >= 2048
		case *ecdsa.PublicKey:
			return alg == jose.ES256 && pub.Curve == elliptic.P256()
		}
		return false // private or symmetric keys never verify an assertion
	}
	var found []jose.JSONWebKey
	for _, k := range keys {
		if (kid == "" || k.KeyID == kid) && usable(k) {
			found = append(found, k)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case kid != "":
		return jose.JSONWebKey{}, fmt.Errorf("no registered %s key with kid %q", alg, kid)
	case len(found) == 0:
		return jose.JSONWebKey{}, fmt.Errorf("no registered %s key", alg)
	}
	return jose.JSONWebKey{}, fmt.Errorf("several registered %s keys and no kid", alg)
}
