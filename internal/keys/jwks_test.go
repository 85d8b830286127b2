package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// TestThumbprintRFC7638 checks Thumbprint against the example of RFC 7638
// section 3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, want := Thumbprint(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint %s, want %s", got, want)
	}
}

// sign makes a compact RS256 JWS with kid, as an OIDC provider would.
func sign(t *testing.T, key *rsa.PrivateKey, kid string, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestJWKSVerifiesWithGoOIDC: tokens signed by published keys verify with
// coreos/go-oidc's RemoteKeySet reading our JWKS over HTTP (an independent
// verifier); others do not; a key leaves the JWKS after publish_previous.
func TestJWKSVerifiesWithGoOIDC(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	r := mustOpen(t, dir, clk)
	old := r.Current()
	if _, err := Rotate(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	next, _ := r.Next()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(r.JWKS())
	}))
	defer srv.Close()
	ctx := context.Background()
	verify := func(tok string) error {
		// A fresh key set each time: RemoteKeySet caches what it fetched.
		_, err := oidc.NewRemoteKeySet(ctx, srv.URL).VerifySignature(ctx, tok)
		return err
	}

	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"iss":"https://idp.example","sub":"u1"}`
	for _, tc := range []struct {
		name string
		tok  string
		ok   bool
	}{
		{"current", sign(t, r.Current().Key, r.Current().ID, payload), true},
		{"next", sign(t, next.Key, next.ID, payload), true},
		{"current key without kid", sign(t, r.Current().Key, "", payload), true},
		{"unknown key", sign(t, stranger, "", payload), false},
		{"unknown key claiming the current kid", sign(t, stranger, r.Current().ID, payload), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tc.tok)
			if (err == nil) != tc.ok {
				t.Fatalf("verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	tampered := sign(t, r.Current().Key, r.Current().ID, payload)
	parts := strings.Split(tampered, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://idp.example","sub":"admin"}`))
	if err := verify(strings.Join(parts, ".")); err == nil {
		t.Fatal("a tampered token verified")
	}

	// After promote, tokens signed by the old key verify until
	// publish_previous has passed, then not.
	oldTok := sign(t, old.Key, old.ID, payload)
	if _, err := Promote(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := verify(oldTok); err != nil {
		t.Fatalf("previous key, just retired: %v", err)
	}
	clk.Add(DefaultPublishPrevious)
	if err := verify(oldTok); err == nil {
		t.Fatal("previous key still verifies after publish_previous")
	}
	if err := verify(sign(t, next.Key, next.ID, payload)); err != nil {
		t.Fatalf("promoted key: %v", err)
	}
}

// TestJWKSShape checks the JSON members against RFC 7517 and RFC 7638 by
// hand, without go-jose.
func TestJWKSShape(t *testing.T) {
	clk := newClock()
	r := mustOpen(t, filepath.Join(t.TempDir(), "keys"), clk)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	k := set.Keys[0]
	cur := r.Current()
	for member, want := range map[string]string{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": cur.ID, "e": "AQAB"} {
		if k[member] != want {
			t.Errorf("%s = %v, want %s", member, k[member], want)
		}
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := k[private]; ok {
			t.Errorf("private member %q published", private)
		}
	}
	// RFC 7638 section 3.2: the required members in lexicographic order,
	// no whitespace.
	canon := `{"e":"` + k["e"].(string) + `","kty":"RSA","n":"` + k["n"].(string) + `"}`
	sum := sha256.Sum256([]byte(canon))
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); got != cur.ID {
		t.Errorf("kid %s, thumbprint of the published key %s", cur.ID, got)
	}
	x5c, _ := k["x5c"].([]any)
	if len(x5c) != 1 {
		t.Fatalf("x5c %v", k["x5c"])
	}
	der, err := base64.StdEncoding.DecodeString(x5c[0].(string)) // RFC 7517 4.7: standard base64
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil || !cert.Equal(cur.Cert) {
		t.Fatalf("x5c is not the certificate: %v", err)
	}
	certSum := sha256.Sum256(der)
	if k["x5t#S256"] != base64.RawURLEncoding.EncodeToString(certSum[:]) {
		t.Errorf("x5t#S256 = %v", k["x5t#S256"])
	}
}

// BenchmarkJWKS: the JWKS of three published keys (current, next,
// previous), as served on every JWKS request.
func BenchmarkJWKS(b *testing.B) {
	clk := newClock()
	dir := filepath.Join(b.TempDir(), "keys")
	r := mustOpen(b, dir, clk)
	for _, step := range []func(string, Config, Options) (Signer, error){Rotate, Promote, Rotate} {
		if _, err := step(dir, Config{}, Options{Now: clk.Now}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := r.reload(context.Background()); err != nil || len(r.Published()) != 3 {
		b.Fatalf("%v %d", err, len(r.Published()))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.JWKS()
	}
}

func BenchmarkCurrent(b *testing.B) {
	r := mustOpen(b, filepath.Join(b.TempDir(), "keys"), newClock())
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Current()
	}
}
