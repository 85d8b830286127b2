package oidcop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// xECRing is the ES256 ring beside xRing's RSA ring, one per test binary.
var xECRing = sync.OnceValues(func() (*keys.Ring, error) {
	rsa, err := xRing()
	if err != nil {
		return nil, err
	}
	st, err := keys.ForAlg(keys.Dir(rsa.Where()), keys.AlgES256)
	if err != nil {
		return nil, err
	}
	return keys.OpenStore(context.Background(), st, keys.Config{}, keys.Options{})
})

// xTokenKeys signs with alg and publishes both rings.
func xTokenKeys(t testing.TB, alg string) *keys.TokenKeys {
	t.Helper()
	ec, err := xECRing()
	if err != nil {
		t.Fatal(err)
	}
	tk, err := keys.NewTokenKeys(alg, xKeyRing(t), ec)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// deviceTokens signs username in through the device grant and returns the
// token response (access_token, id_token).
func (s *xStack) deviceTokens(t testing.TB, username string) map[string]any {
	t.Helper()
	code, da := s.postJSON(t, "/oauth/device_authorization", url.Values{"client_id": {CLIClientID}, "scope": {"openid"}})
	if code != http.StatusOK {
		t.Fatalf("device authorization: %d %v", code, da)
	}
	user, err := s.dir.Lookup(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.p.ApproveDevice(context.Background(), da["user_code"].(string), user, identity.Authn{}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	code, tok := s.postJSON(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da["device_code"].(string)}, "client_id": {CLIClientID}})
	if code != http.StatusOK || tok["access_token"] == nil || tok["id_token"] == nil {
		t.Fatalf("device token: %d %v", code, tok)
	}
	return tok
}

// jwsAlg is the "alg" and "kid" of a compact JWS's header.
func jwsAlg(t testing.TB, tok string) (string, string) {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var head struct{ Alg, Kid string }
	if err := json.Unmarshal(h, &head); err != nil {
		t.Fatal(err)
	}
	return head.Alg, head.Kid
}

// verifiers are go-oidc verifiers of s's ID tokens (through discovery) and
// of its web-identity tokens (the STS audience, over /oauth/keys of jwks),
// each accepting only algs.
func verifiers(t testing.TB, s *xStack, jwks *xStack, algs ...string) (idt, web *oidc.IDTokenVerifier) {
	t.Helper()
	ctx := context.Background()
	ks := oidc.NewRemoteKeySet(ctx, jwks.srv.URL+"/oauth/keys")
	idt = oidc.NewVerifier(s.srv.URL, ks, &oidc.Config{ClientID: CLIClientID, SupportedSigningAlgs: algs})
	web = oidc.NewVerifier(s.srv.URL, ks, &oidc.Config{ClientID: awsfed.DefaultSTSAudience, SupportedSigningAlgs: algs})
	return idt, web
}

// discoveryAlgs is discovery's id_token_signing_alg_values_supported.
func discoveryAlgs(t testing.TB, s *xStack) []string {
	t.Helper()
	resp, err := http.Get(s.srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Algs
}

// TestES256Tokens: with oidc.signing_algorithm ES256 the ID token and the
// web-identity token are ES256 with the ES256 ring's current kid, and
// coreos/go-oidc verifies both against /oauth/keys (found through
// discovery for the ID token); the JWKS has both rings with the right alg.
func TestES256Tokens(t *testing.T) {
	s := newXStackKeys(t, "", xTokenKeys(t, keys.AlgES256))
	ec, _ := xECRing()
	ctx := context.Background()

	tok := s.deviceTokens(t, "bob")
	raw := tok["id_token"].(string)
	if alg, kid := jwsAlg(t, raw); alg != "ES256" || kid != ec.Current().ID {
		t.Fatalf("ID token header: alg %s kid %s (want ES256 %s)", alg, kid, ec.Current().ID)
	}
	prov, err := oidc.NewProvider(ctx, s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&oidc.Config{ClientID: CLIClientID}).Verify(ctx, raw); err != nil {
		t.Fatalf("go-oidc (discovery): %v", err)
	}
	idv, webv := verifiers(t, s, s, oidc.ES256)
	if _, err := idv.Verify(ctx, raw); err != nil {
		t.Fatalf("go-oidc ES256 only: %v", err)
	}
	if got := discoveryAlgs(t, s); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("discovery algs %v", got)
	}

	code, x := s.exchange(t, tok["access_token"].(string), TokenTypeIDToken, xProdRO)
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %v", code, x)
	}
	wit := x["access_token"].(string)
	if alg, kid := jwsAlg(t, wit); alg != "ES256" || kid != ec.Current().ID {
		t.Fatalf("web-identity token header: alg %s kid %s", alg, kid)
	}
	if _, err := webv.Verify(ctx, wit); err != nil {
		t.Fatalf("go-oidc web-identity token: %v", err)
	}
	// an RS256-only verifier refuses it (the alg is really ES256)
	rsOnly, _ := verifiers(t, s, s, oidc.RS256)
	if _, err := rsOnly.Verify(ctx, raw); err == nil {
		t.Fatal("an RS256-only verifier accepted the ES256 ID token")
	}

	// the JWKS: every published key of both rings, alg and use set
	resp, err := http.Get(s.srv.URL + "/oauth/keys")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, Alg, Use, Crv string }
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, k := range xTokenKeys(t, keys.AlgES256).Published() {
		want[k.ID] = k.Alg
	}
	if len(set.Keys) != len(want) || len(want) < 2 {
		t.Fatalf("JWKS %s, want %v", body, want)
	}
	for _, k := range set.Keys {
		ok := k.Use == "sig" && want[k.Kid] == k.Alg &&
			((k.Alg == "ES256" && k.Kty == "EC" && k.Crv == "P-256") || (k.Alg == "RS256" && k.Kty == "RSA"))
		if !ok {
			t.Fatalf("JWK %+v", k)
		}
	}

	// bad input stays 4xx on the ES256 path
	if code, m := s.exchange(t, "not-a-token", TokenTypeIDToken, xProdRO); code != http.StatusBadRequest || m["error"] != "invalid_request" {
		t.Fatalf("bad subject token: %d %v", code, m)
	}
	if code, m := s.exchange(t, tok["access_token"].(string), TokenTypeIDToken, "arn:aws:iam::1:role/x"); code < 400 || code >= 500 {
		t.Fatalf("bad role: %d %v", code, m)
	}
}

// TestES256Switch: RS256 → ES256 as an operator does it. Before the
// switch the RS256 provider already publishes the ES256 key and lists both
// algorithms; after it, RS256 ID and web-identity tokens issued before
// the switch still verify against the ES256 provider's /oauth/keys, and
// its new tokens are ES256.
func TestES256Switch(t *testing.T) {
	ctx := context.Background()
	before := newXStackKeys(t, "", xTokenKeys(t, keys.AlgRS256))
	if got := discoveryAlgs(t, before); !slices.Equal(got, []string{"RS256", "ES256"}) {
		t.Fatalf("discovery before the switch: %v", got)
	}
	old := before.deviceTokens(t, "bob")
	oldID := old["id_token"].(string)
	code, x := before.exchange(t, old["access_token"].(string), TokenTypeIDToken, xProdRO)
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %v", code, x)
	}
	oldWIT := x["access_token"].(string)
	for _, tok := range []string{oldID, oldWIT} {
		if alg, _ := jwsAlg(t, tok); alg != "RS256" {
			t.Fatalf("before the switch: %s", alg)
		}
	}

	after := newXStackKeys(t, "", xTokenKeys(t, keys.AlgES256))
	idv, webv := verifiers(t, before, after, oidc.RS256, oidc.ES256)
	if _, err := idv.Verify(ctx, oldID); err != nil {
		t.Fatalf("RS256 ID token after the switch: %v", err)
	}
	if _, err := webv.Verify(ctx, oldWIT); err != nil {
		t.Fatalf("RS256 web-identity token after the switch: %v", err)
	}
	nw := after.deviceTokens(t, "bob")
	if alg, _ := jwsAlg(t, nw["id_token"].(string)); alg != "ES256" {
		t.Fatalf("after the switch: %s", alg)
	}
	// and the other way: the RS256 provider's JWKS verifies the new token
	idv2, _ := verifiers(t, after, before, oidc.ES256)
	if _, err := idv2.Verify(ctx, nw["id_token"].(string)); err != nil {
		t.Fatalf("ES256 ID token against the RS256 provider's JWKS: %v", err)
	}

	// RS256 alone (no ES256 ring followed) publishes and announces RS256 only
	rsOnly := newXStackKeys(t, "", xKeyRing(t))
	if got := discoveryAlgs(t, rsOnly); !slices.Equal(got, []string{"RS256"}) {
		t.Fatalf("discovery without an ES256 ring: %v", got)
	}
}

// TestES256Config: signing_algorithm is RS256 by default, and anything but
// RS256 or ES256 (or keys of another algorithm) is refused with its key.
func TestES256Config(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.SigningAlgorithm != keys.AlgRS256 {
		t.Fatalf("default %q", c.SigningAlgorithm)
	}
	for _, bad := range []string{"HS256", "es256", "none", "PS256"} {
		c.SigningAlgorithm = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "signing_algorithm: must be RS256 or ES256") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	env := testenv.Require(t, "REDIS_ADDR")
	rc := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	rc.SetDefaults()
	st, err := store.Open(context.Background(), rc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		alg  string
		keys KeyRing
	}{{keys.AlgES256, xKeyRing(t)}, {keys.AlgRS256, xTokenKeys(t, keys.AlgES256)}} {
		_, err = New(Config{Issuer: xIssuer, SigningAlgorithm: tc.alg}, Deps{Keys: tc.keys, Store: st, SubjectKey: make([]byte, 32)})
		if err == nil || !strings.Contains(err.Error(), "oidc.signing_algorithm is "+tc.alg+" but the key ring signs with") {
			t.Fatalf("New with %s and keys of %s: %v", tc.alg, tc.keys.Current().Alg, err)
		}
	}
}

// TestES256AWSCLI: an ES256 web-identity token goes through the AWS CLI's
// assume-role-with-web-identity (moto: plumbing only, it checks nothing of
// the token).
func TestES256AWSCLI(t *testing.T) {
	moto := testenv.Moto(t)
	s := newXStackKeys(t, "", xTokenKeys(t, keys.AlgES256))
	code, x := s.exchange(t, s.accessToken(t, "bob"), TokenTypeIDToken, xProdRO)
	if code != http.StatusOK {
		t.Fatalf("exchange: %d %v", code, x)
	}
	tok := x["access_token"].(string)
	if alg, _ := jwsAlg(t, tok); alg != "ES256" {
		t.Fatalf("alg %s", alg)
	}
	xCredentials(t, xAWS(t, moto, "assume-role-with-web-identity", "--role-arn", xProdRO, "--role-session-name", "bob",
		"--web-identity-token", tok))
}
