package oidcop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenidp/warden/internal/store/storetest"
)

// FuzzClientAssertion: whatever the client_assertion, the check never
// panics, and nothing but the claims a registered key signed is ever
// accepted (a mutated header or payload cannot verify).
func FuzzClientAssertion(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	keys := []jose.JSONWebKey{{Key: &ec.PublicKey, KeyID: "e"}, {Key: &rk.PublicKey, KeyID: "r"}}
	const client, aud = "orders", "https://sso.example.com/oauth/token"
	now := time.Unix(1_900_000_000, 0)
	signed := map[string]bool{} // payload segments of the seeds
	for _, k := range []struct {
		alg jose.SignatureAlgorithm
		key any
		kid string
	}{{jose.ES256, ec, "e"}, {jose.RS256, rk, "r"}, {jose.ES256, ec, ""}} {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, (&jose.SignerOptions{}).WithHeader("kid", k.kid))
		if err != nil {
			f.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{aud}, ID: "j-" + k.kid,
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			f.Fatal(err)
		}
		signed[strings.Split(raw, ".")[1]] = true
		f.Add(raw)
	}
	f.Add(`eyJhbGciOiJub25lIn0.eyJpc3MiOiJvcmRlcnMifQ.`)
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := VerifyClientAssertion(context.Background(), raw, client, keys, []string{aud}, now, &storetest.MemJTIs{})
		if err != nil {
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 || !signed[parts[1]] || c.ClientID != client {
			t.Fatalf("accepted an assertion whose claims no registered key signed: %q (%+v)", raw, c)
		}
	})
}

// FuzzWorkloadToken: opening any string as a workload access token never
// panics, and only what was sealed opens (AES-GCM under the provider's
// derived key).
func FuzzWorkloadToken(f *testing.F) {
	var cfg WorkloadConfig
	cfg.setDefaults()
	w, err := newWorkloads(cfg, bytes.Repeat([]byte{3}, 32), &storetest.MemJTIs{}, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		f.Fatal(err)
	}
	sealed := map[workloadToken]bool{}
	for _, tok := range []workloadToken{
		{ID: "orders", JTI: "j1", Method: WorkloadAuthKey, KeyID: "k", Expiry: time.Unix(1_900_000_000, 0)},
		{ID: "batch", JTI: "j2", Method: WorkloadAuthSecret, Expiry: time.Unix(1_900_000_300, 0)},
	} {
		s, err := w.seal(tok, rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		sealed[tok] = true
		f.Add(s)
	}
	f.Add(workloadTokenPrefix)
	f.Add(workloadTokenPrefix + "AAAA")
	f.Add("not-a-token")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := w.open(s)
		if ok && !sealed[got] {
			t.Fatalf("%q opened as %+v, which was never sealed", s, got)
		}
		_ = unverifiedIssuer(s)
		_ = assertionKid(s)
	})
}
