package oidcop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
)

// TestClientAssertions: private_key_jwt assertions made by go-jose (as a
// workload would make them) against a client's registered public keys,
// with the jti cache on the real Redis. Good RS256 and ES256 assertions
// pass once; every bad one is refused with its reason and, but for the
// replay, without touching the cache.
func TestClientAssertions(t *testing.T) {
	ctx := context.Background()
	jtis := store.NewAssertionJTIs(storetest.Open(t, "wjti"))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	registered := []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "r1", Algorithm: "RS256", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "e1"},
		{Key: &small.PublicKey, KeyID: "small"},
	}
	const client = "sqs-sender"
	aud := []string{"https://sso.example.com/oauth/token", "https://sso.example.com"}
	now := time.Now()
	n := 0
	claims := func(mod func(*jwt.Claims)) jwt.Claims {
		n++
		c := jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{aud[0]}, ID: "jti-" + strings.Repeat("x", n%3) + time.Now().Format(time.RFC3339Nano),
			Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now)}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	sign := func(alg jose.SignatureAlgorithm, key any, kid string, c jwt.Claims) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	verify := func(raw string) error {
		_, err := VerifyClientAssertion(ctx, raw, client, registered, aud, now, jtis)
		return err
	}

	// Good ones, once.
	good := sign(jose.RS256, rsaKey, "r1", claims(nil))
	if err := verify(good); err != nil {
		t.Fatalf("RS256: %v", err)
	}
	if err := verify(good); !errors.Is(err, ErrBadAssertion) || !strings.Contains(err.Error(), "replayed") {
		t.Errorf("replay: %v", err)
	}
	if err := verify(sign(jose.ES256, ecKey, "e1", claims(nil))); err != nil {
		t.Errorf("ES256: %v", err)
	}
	if err := verify(sign(jose.ES256, ecKey, "", claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{aud[1]} }))); err != nil {
		t.Errorf("ES256 without kid, the issuer as audience: %v", err)
	}

	// alg none, by hand (go-jose makes none).
	enc := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(claims(nil))
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(body) + "."
	// HS256 with the registered public key's bytes as the secret: the
	// classic confusion of an RS256 verifier.
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	hsInput := enc([]byte(`{"alg":"HS256","typ":"JWT","kid":"r1"}`)) + "." + enc(body)
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + enc(mac.Sum(nil))

	for _, c := range []struct {
		name, raw, want string
	}{
		{"alg none", none, "not a JWT signed with RS256 or ES256"},
		{"HS256 with the public key", hs256, "not a JWT signed with RS256 or ES256"},
		{"expired", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) })), "expired"},
		{"exp too far", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) })), "more than 5m0s ahead"},
		{"no exp", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.Expiry = nil })), "no exp"},
		{"issued in the future", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(3 * time.Minute)) })), "not valid yet"},
		{"wrong aud", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://evil.example/token"} })), "aud"},
		{"other iss", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.Issuer = "another-client" })), "iss and sub"},
		{"other sub", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.Subject = "admin" })), "iss and sub"},
		{"no jti", sign(jose.RS256, rsaKey, "r1", claims(func(c *jwt.Claims) { c.ID = "" })), "jti"},
		{"unknown kid", sign(jose.RS256, rsaKey, "r9", claims(nil)), `kid "r9"`},
		{"kid of the other algorithm", sign(jose.RS256, rsaKey, "e1", claims(nil)), `kid "e1"`},
		{"another key, same kid", sign(jose.ES256, otherKey, "e1", claims(nil)), "does not verify"},
		{"RSA under 2048 bits", sign(jose.RS256, small, "small", claims(nil)), `kid "small"`},
		{"garbage", "a.b.c", "not a JWT"},
		{"empty", "", "empty"},
		{"oversized", strings.Repeat("a", 9000), "longer than"},
	} {
		err := verify(c.raw)
		if !errors.Is(err, ErrBadAssertion) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal saying %q", c.name, err, c.want)
		}
	}
	// A refused assertion leaves its jti unused: the same jti, properly
	// made, passes.
	cl := claims(func(c *jwt.Claims) { c.ID = "reused-after-refusal" })
	bad := cl
	bad.Audience = jwt.Audience{"https://evil.example/token"}
	if err := verify(sign(jose.RS256, rsaKey, "r1", bad)); err == nil {
		t.Fatal("wrong aud accepted")
	}
	if err := verify(sign(jose.RS256, rsaKey, "r1", cl)); err != nil {
		t.Errorf("the jti of a refused assertion: %v", err)
	}
	// Another client's assertion with the same jti is its own.
	if _, err := VerifyClientAssertion(ctx, sign(jose.RS256, rsaKey, "r1", jwt.Claims{Issuer: "other", Subject: "other",
		Audience: jwt.Audience{aud[0]}, ID: cl.ID, Expiry: jwt.NewNumericDate(now.Add(time.Minute))}), "other", registered, aud, now, jtis); err != nil {
		t.Errorf("same jti, other client: %v", err)
	}
}
