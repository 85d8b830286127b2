package oidcop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/testenv"
)

const (
	wlID     = "orders"
	wlSecret = "batch"
	wlURL    = "published"
)

// wlFixture is a real stack (OpenLDAP, Redis, ES256 tokens) whose rules
// have three workloads: orders (two inline keys, RSA and EC, a rotation),
// batch (a client secret) and published (keys at a jwks_url).
type wlFixture struct {
	*xStack
	rs             rolemap.RuleSet
	ec, ec2        *ecdsa.PrivateKey
	rsa            *rsa.PrivateKey
	secret         string
	jwksMu         sync.Mutex
	jwksDoc        []byte
	jwksHits       int
	jwksSrv        *httptest.Server
	tokenEndpoint  string
	published      *ecdsa.PrivateKey
	publishedKeyID string
}

func newWLFixture(t testing.TB) *wlFixture {
	t.Helper()
	f := &wlFixture{xStack: newXStackKeys(t, "", xTokenKeys(t, keys.AlgES256))}
	f.tokenEndpoint = f.srv.URL + "/oauth/token"
	var err error
	if f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	f.ec2, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.published, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if f.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	jwk := func(pub any, kid string) rolemap.JWK {
		j, err := rolemap.JWKFromKey(pub, kid)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	pj := jwk(&f.published.PublicKey, "")
	f.publishedKeyID = pj.Kid
	f.setJWKS(t, pj)
	f.jwksSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.jwksMu.Lock()
		defer f.jwksMu.Unlock()
		f.jwksHits++
		_, _ = w.Write(f.jwksDoc)
	}))
	t.Cleanup(f.jwksSrv.Close)
	f.secret = strings.Repeat("s3cr3t-", 6)
	sum := sha256.Sum256([]byte(f.secret))
	f.rs = xRuleSet()
	f.rs.Workloads = []rolemap.Workload{
		{ID: wlID, JWKS: &rolemap.WorkloadJWKS{Keys: []rolemap.JWK{jwk(&f.ec.PublicKey, "ec-2026"), jwk(&f.rsa.PublicKey, "rsa-2025")}},
			Roles: []rolemap.WorkloadRole{{ARN: xStaging, MaxSessionSeconds: 3600}}, Tags: map[string]string{"team": "orders"}},
		{ID: wlSecret, SecretSHA256: hex.EncodeToString(sum[:]), Roles: []rolemap.WorkloadRole{{ARN: xStaging}}},
		{ID: wlURL, JWKSURL: f.jwksSrv.URL + "/jwks.json", Roles: []rolemap.WorkloadRole{{ARN: xStaging}}},
	}
	f.storeRules(t)
	return f
}

func (f *wlFixture) setJWKS(t testing.TB, keys ...rolemap.JWK) {
	t.Helper()
	doc, err := json.Marshal(rolemap.WorkloadJWKS{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	f.jwksMu.Lock()
	f.jwksDoc = doc
	f.jwksMu.Unlock()
}

func (f *wlFixture) storeRules(t testing.TB) {
	t.Helper()
	e, err := rolemap.Compile(f.rs)
	if err != nil {
		t.Fatal(err)
	}
	f.p.rules.Store(e)
}

// assertion signs claims for client with key (go-jose, as a workload
// would), kid in the header.
func assertion(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, c jwt.Claims) string {
	t.Helper()
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

func (f *wlFixture) claims(client string, mod func(*jwt.Claims)) jwt.Claims {
	now := time.Now()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	c := jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{f.tokenEndpoint}, ID: base64.RawURLEncoding.EncodeToString(b),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if mod != nil {
		mod(&c)
	}
	return c
}

func ccForm(client, assertion string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {AssertionType}, "client_assertion": {assertion}}
	if client != "" {
		f.Set("client_id", client)
	}
	return f
}

func (f *wlFixture) clientCredentials(t *testing.T, form url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.PostForm(f.tokenEndpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%d, not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, m, resp.Header
}

func (f *wlFixture) accessToken(t *testing.T, form url.Values) string {
	t.Helper()
	code, m, _ := f.clientCredentials(t, form)
	if code != http.StatusOK || m["token_type"] != "Bearer" || m["expires_in"] != float64(300) {
		t.Fatalf("client_credentials: %d %v", code, m)
	}
	tok, _ := m["access_token"].(string)
	if !strings.HasPrefix(tok, workloadTokenPrefix) {
		t.Fatalf("access token %q", tok)
	}
	return tok
}

func (f *wlFixture) webIdentity(t *testing.T, access, role string) (int, map[string]any) {
	t.Helper()
	return f.postJSON(t, "/oauth/token", xForm(access, TokenTypeIDToken, role))
}

// TestWorkloadTokens: a workload signs an assertion with go-jose, gets an
// access token by client_credentials, exchanges it for a role-scoped
// ES256 web-identity token that coreos/go-oidc verifies (sub names the
// workload, tags name the role), and moto's STS takes it. Key rotation
// (two registered keys), a client secret and a jwks_url work too.
func TestWorkloadTokens(t *testing.T) {
	f := newWLFixture(t)
	access := f.accessToken(t, ccForm(wlID, assertion(t, jose.ES256, f.ec, "ec-2026", f.claims(wlID, nil))))
	code, x := f.webIdentity(t, access, xStaging)
	if code != http.StatusOK || x["issued_token_type"] != TokenTypeIDToken || x["max_session_seconds"] != float64(3600) {
		t.Fatalf("exchange: %d %v", code, x)
	}
	tok := x["access_token"].(string)
	if alg, _ := jwsAlg(t, tok); alg != "ES256" {
		t.Fatalf("alg %s", alg)
	}
	_, webV := verifiers(t, f.xStack, f.xStack, "ES256")
	idt, err := webV.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("go-oidc: %v", err)
	}
	var c struct {
		Tags AWSTags `json:"https://aws.amazon.com/tags"`
		AMR  []string
		Exp  int64 `json:"exp"`
		Iat  int64 `json:"iat"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	pt := c.Tags.PrincipalTags
	if idt.Subject != "workload:"+wlID || pt["WardenRole"][0] != "Deploy" || pt["WardenAccount"][0] != "444455556666" ||
		pt[rolemap.TagWorkload][0] != wlID || pt["team"][0] != "orders" || c.Exp-c.Iat > 300 {
		t.Fatalf("claims: sub %s %+v", idt.Subject, c)
	}
	if ev, ok := f.audit.find("workload.token", "success", wlID); !ok || ev.ClientIP == "" || ev.Detail["kid"] != "ec-2026" || ev.Actor != "workload:"+wlID {
		t.Fatalf("issuance not audited: %+v", ev)
	}
	if ev, ok := f.audit.find("token.exchange", "success", xStaging); !ok || ev.Actor != "workload:"+wlID || ev.ClientIP == "" {
		t.Fatalf("exchange not audited: %+v", ev)
	}
	xCredentials(t, xAWS(t, testenv.Moto(t), "assume-role-with-web-identity", "--role-arn", xStaging, "--role-session-name", wlID,
		"--web-identity-token", tok))

	// The second registered key (RS256), without client_id: the
	// assertion's iss names the client.
	access = f.accessToken(t, ccForm("", assertion(t, jose.RS256, f.rsa, "rsa-2025", f.claims(wlID, nil))))
	if code, x := f.webIdentity(t, access, xStaging); code != http.StatusOK {
		t.Fatalf("RS256 key: %d %v", code, x)
	}
	// No requested_token_type: a workload gets a web-identity token.
	if code, x := f.postJSON(t, "/oauth/token", xForm(access, "", xStaging)); code != http.StatusOK || x["issued_token_type"] != TokenTypeIDToken {
		t.Fatalf("default type: %d %v", code, x)
	}

	// A client secret, in the form and by HTTP Basic.
	sec := f.accessToken(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {wlSecret}, "client_secret": {f.secret}})
	if code, x := f.webIdentity(t, sec, xStaging); code != http.StatusOK {
		t.Fatalf("secret: %d %v", code, x)
	}
	req, _ := http.NewRequest(http.MethodPost, f.tokenEndpoint, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(wlSecret, url.QueryEscape(f.secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Basic: %d", resp.StatusCode)
	}

	// jwks_url: fetched once, then cached; a new kid fetches again (the
	// workload rotated its published key).
	pub := f.accessToken(t, ccForm(wlURL, assertion(t, jose.ES256, f.published, f.publishedKeyID, f.claims(wlURL, nil))))
	if code, x := f.webIdentity(t, pub, xStaging); code != http.StatusOK {
		t.Fatalf("jwks_url: %d %v", code, x)
	}
	f.accessToken(t, ccForm(wlURL, assertion(t, jose.ES256, f.published, f.publishedKeyID, f.claims(wlURL, nil))))
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nj, _ := rolemap.JWKFromKey(&newKey.PublicKey, "next")
	oj, _ := rolemap.JWKFromKey(&f.published.PublicKey, "")
	f.setJWKS(t, oj, nj)
	f.p.wl.fetcher.mu.Lock()
	for _, e := range f.p.wl.fetcher.entries {
		e.tried = time.Time{} // as if 30 s had passed since the last fetch
	}
	f.p.wl.fetcher.mu.Unlock()
	f.accessToken(t, ccForm(wlURL, assertion(t, jose.ES256, newKey, "next", f.claims(wlURL, nil))))
	f.jwksMu.Lock()
	hits := f.jwksHits
	f.jwksMu.Unlock()
	if hits != 2 {
		t.Fatalf("jwks_url fetched %d times, want 2 (first use, new kid)", hits)
	}
}

// TestWorkloadRefusals: every bad assertion or request is a clear 4xx
// with a request ID, and nothing is issued.
func TestWorkloadRefusals(t *testing.T) {
	f := newWLFixture(t)
	good := func(mod func(*jwt.Claims)) string {
		return assertion(t, jose.ES256, f.ec, "ec-2026", f.claims(wlID, mod))
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubDER}, (&jose.SignerOptions{}).WithHeader("kid", "rsa-2025"))
	if err != nil {
		t.Fatal(err)
	}
	hsTok, _ := jwt.Signed(hs).Claims(f.claims(wlID, nil)).Serialize()
	noneTok := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"ec-2026"}`))
		b, _ := json.Marshal(f.claims(wlID, nil))
		return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	}()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	replayed := good(nil)
	f.accessToken(t, ccForm(wlID, replayed))
	successes := len(f.successes())

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
		desc   string
	}{
		{"replayed jti", ccForm(wlID, replayed), 401, "invalid_client", "jti already used"},
		{"expired", ccForm(wlID, good(func(c *jwt.Claims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Minute))
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-5 * time.Minute))
		})), 401, "invalid_client", "expired"},
		{"exp too far ahead", ccForm(wlID, good(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour)) })), 401, "invalid_client", "more than 5m0s ahead"},
		{"issued in the future", ccForm(wlID, good(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(3 * time.Minute)) })), 401, "invalid_client", "not valid yet"},
		{"not before in the future", ccForm(wlID, good(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(3 * time.Minute)) })), 401, "invalid_client", "not valid yet"},
		{"wrong aud", ccForm(wlID, good(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://other.example/oauth/token"} })), 401, "invalid_client", "aud must name"},
		{"alg none", ccForm(wlID, noneTok), 401, "invalid_client", "not a JWT signed with RS256 or ES256"},
		{"HS256 with the public key", ccForm(wlID, hsTok), 401, "invalid_client", "not a JWT signed with RS256 or ES256"},
		{"another key", ccForm(wlID, assertion(t, jose.ES256, other, "ec-2026", f.claims(wlID, nil))), 401, "invalid_client", "does not verify"},
		{"unknown kid", ccForm(wlID, assertion(t, jose.ES256, f.ec, "nope", f.claims(wlID, nil))), 401, "invalid_client", `kid "nope"`},
		{"iss of another workload", ccForm(wlID, assertion(t, jose.ES256, f.ec, "ec-2026", f.claims(wlSecret, nil))), 401, "invalid_client", "iss and sub"},
		{"unknown client", ccForm("ghost", good(nil)), 401, "invalid_client", "unknown client"},
		{"wrong assertion type", url.Values{"grant_type": {"client_credentials"}, "client_id": {wlID}, "client_assertion_type": {"x"}, "client_assertion": {good(nil)}}, 401, "invalid_client", "client_assertion_type"},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {wlID}}, 401, "invalid_client", "client authentication missing"},
		{"two methods", url.Values{"grant_type": {"client_credentials"}, "client_id": {wlSecret}, "client_secret": {f.secret},
			"client_assertion_type": {AssertionType}, "client_assertion": {good(nil)}}, 400, "invalid_request", "one client authentication method"},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {wlSecret}, "client_secret": {f.secret + "x"}}, 401, "invalid_client", "authentication failed"},
		{"secret of a key workload", url.Values{"grant_type": {"client_credentials"}, "client_id": {wlID}, "client_secret": {f.secret}}, 401, "invalid_client", "authentication failed"},
		{"a user client", url.Values{"grant_type": {"client_credentials"}, "client_id": {CLIClientID}, "client_secret": {f.secret}}, 401, "invalid_client", "unknown client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m, h := f.clientCredentials(t, tc.form)
			desc, _ := m["error_description"].(string)
			if code != tc.status || m["error"] != tc.code || !strings.Contains(desc, tc.desc) || m["request_id"] == "" || m["access_token"] != nil {
				t.Fatalf("%d %v; want %d %s %q", code, m, tc.status, tc.code, tc.desc)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if n := len(f.successes()); n != successes {
		t.Fatalf("%d tokens issued by refused requests", n-successes)
	}

	// The exchange: a role not mapped, a SAML request, a user's role.
	access := f.accessToken(t, ccForm(wlID, good(nil)))
	for _, tc := range []struct {
		name, requested, role, code string
	}{
		{"role not mapped", TokenTypeIDToken, xProdRO, "invalid_target"},
		{"SAML asked", TokenTypeSAML2, xStaging, "invalid_request"},
		{"not an ARN", TokenTypeIDToken, "staging", "invalid_target"},
	} {
		code, x := f.webIdentity(t, access, tc.role)
		if tc.requested != TokenTypeIDToken {
			code, x = f.postJSON(t, "/oauth/token", xForm(access, tc.requested, tc.role))
		}
		if code != http.StatusBadRequest || x["error"] != tc.code || x["access_token"] != nil || x["request_id"] == "" {
			t.Fatalf("%s: %d %v", tc.name, code, x)
		}
	}
	// A forged or altered workload token.
	bad := access[:len(access)-4] + "AAAA"
	if code, x := f.webIdentity(t, bad, xStaging); code != http.StatusBadRequest || x["error"] != "invalid_request" {
		t.Fatalf("altered token: %d %v", code, x)
	}

	// Revocation: disabled, the next exchange of a live token fails at
	// once, and so does client_credentials; enabled again, it works.
	f.rs.Workloads[0].Disabled = true
	f.storeRules(t)
	if code, x := f.webIdentity(t, access, xStaging); code != http.StatusBadRequest || x["error"] != "invalid_grant" {
		t.Fatalf("disabled workload's exchange: %d %v", code, x)
	}
	if code, m, _ := f.clientCredentials(t, ccForm(wlID, good(nil))); code != 401 || !strings.Contains(m["error_description"].(string), "disabled") {
		t.Fatalf("disabled workload's client_credentials: %d %v", code, m)
	}
	f.rs.Workloads[0].Disabled = false
	f.storeRules(t)
	if code, _ := f.webIdentity(t, access, xStaging); code != http.StatusOK {
		t.Fatalf("re-enabled: %d", code)
	}
	// Removed from the rules.
	f.rs.Workloads = f.rs.Workloads[1:]
	f.storeRules(t)
	if code, x := f.webIdentity(t, access, xStaging); code != http.StatusBadRequest || x["error"] != "invalid_grant" {
		t.Fatalf("removed workload: %d %v", code, x)
	}
	if _, ok := f.audit.find("token.exchange", "workload_revoked", xStaging); !ok {
		t.Error("revoked exchange not audited")
	}
}

// TestWorkloadRateLimit: past its bucket a workload gets 429 slow_down
// with Retry-After, on both steps, and other workloads are not affected.
func TestWorkloadRateLimit(t *testing.T) {
	f := newWLFixture(t)
	f.p.wl.cfg.RateLimit = WorkloadRateLimit{PerSecond: 0.01, Burst: 2}
	access := f.accessToken(t, ccForm(wlID, assertion(t, jose.ES256, f.ec, "ec-2026", f.claims(wlID, nil))))
	if code, x := f.webIdentity(t, access, xStaging); code != http.StatusOK {
		t.Fatalf("second request: %d %v", code, x)
	}
	code, m, h := f.clientCredentials(t, ccForm(wlID, assertion(t, jose.ES256, f.ec, "ec-2026", f.claims(wlID, nil))))
	if code != http.StatusTooManyRequests || m["error"] != "slow_down" || h.Get("Retry-After") == "" {
		t.Fatalf("third request: %d %v %v", code, m, h)
	}
	resp, err := http.PostForm(f.tokenEndpoint, xForm(access, TokenTypeIDToken, xStaging))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("exchange past the limit: %d", resp.StatusCode)
	}
	// Requests that fail authentication do not count: a stranger who
	// knows the ID cannot use up the secret workload's bucket.
	f.p.wl.mu.Lock()
	clear(f.p.wl.limiters)
	f.p.wl.mu.Unlock()
	for range 5 {
		if code, _, _ := f.clientCredentials(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {wlSecret}, "client_secret": {f.secret + "x"}}); code != 401 {
			t.Fatalf("wrong secret: %d", code)
		}
	}
	f.accessToken(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {wlSecret}, "client_secret": {f.secret}})
}

func (f *wlFixture) successes() []string {
	f.audit.mu.Lock()
	defer f.audit.mu.Unlock()
	var out []string
	for _, e := range f.audit.events {
		if e.Action == "workload.token" && e.Result == "success" {
			out = append(out, e.Detail["token_id"])
		}
	}
	return out
}

// jwcrypto runs testdata/jwcrypto_assertion.py with Debian's python3 and
// its python3-jwcrypto.
func jwcrypto(t *testing.T, args ...string) string {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import jwcrypto.jwt").Run(); err != nil {
		msg := "/usr/bin/python3 cannot import jwcrypto (deploy/testenv/install-deps.sh installs python3-jwcrypto)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out, err := exec.Command("/usr/bin/python3", append([]string{"testdata/jwcrypto_assertion.py"}, args...)...).Output()
	if err != nil {
		t.Fatalf("jwcrypto %v: %v", args[0], err)
	}
	return strings.TrimSpace(string(out))
}

// TestWorkloadJWCrypto: keys made and assertions signed by jwcrypto
// (Python), ES256 and RS256, registered as the JWKs jwcrypto exported:
// accepted once each, refused when expired or replayed.
func TestWorkloadJWCrypto(t *testing.T) {
	f := newWLFixture(t)
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			var kp struct {
				Private json.RawMessage `json:"private"`
				Public  rolemap.JWK     `json:"public"`
			}
			if err := json.Unmarshal([]byte(jwcrypto(t, "keygen", alg)), &kp); err != nil {
				t.Fatal(err)
			}
			id := "py-" + strings.ToLower(alg)
			f.rs.Workloads = append(f.rs.Workloads, rolemap.Workload{ID: id, JWKS: &rolemap.WorkloadJWKS{Keys: []rolemap.JWK{kp.Public}},
				Roles: []rolemap.WorkloadRole{{ARN: xStaging}}})
			f.storeRules(t)
			a := jwcrypto(t, "sign", string(kp.Private), id, f.tokenEndpoint)
			access := f.accessToken(t, ccForm(id, a))
			if code, x := f.webIdentity(t, access, xStaging); code != http.StatusOK {
				t.Fatalf("exchange: %d %v", code, x)
			}
			if code, m, _ := f.clientCredentials(t, ccForm(id, a)); code != 401 || !strings.Contains(m["error_description"].(string), "jti already used") {
				t.Fatalf("replay: %d %v", code, m)
			}
			old := jwcrypto(t, "sign", string(kp.Private), id, f.tokenEndpoint, "-120")
			if code, m, _ := f.clientCredentials(t, ccForm(id, old)); code != 401 || !strings.Contains(m["error_description"].(string), "expired") {
				t.Fatalf("expired: %d %v", code, m)
			}
		})
	}
}
