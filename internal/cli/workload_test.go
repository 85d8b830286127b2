package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/app/apptest"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store/storetest"
	"github.com/wardenidp/warden/internal/testenv"
)

const (
	wlID   = "orders-worker"
	wlRole = "arn:aws:iam::111122223333:role/orders-sqs"
)

// ---- keys ----

func pemFile(t *testing.T, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, bl := range blocks {
		b = append(b, pem.EncodeToMemory(bl)...)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkcs8(t *testing.T, k any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// testKeys are made once: RSA generation is slow under -race.
var testKeys = sync.OnceValues(func() (*ecdsa.PrivateKey, *rsa.PrivateKey) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return ec, r
})

func TestLoadWorkloadKey(t *testing.T) {
	ec, rsa2048 := testKeys()
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(ec.Public())
	ecParams := &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}

	for _, tc := range []struct {
		name   string
		blocks []*pem.Block
		pub    crypto.PublicKey
		alg    jose.SignatureAlgorithm
		err    string
	}{
		{name: "EC PKCS#8", blocks: []*pem.Block{pkcs8(t, ec)}, pub: ec.Public(), alg: jose.ES256},
		{name: "EC SEC1", blocks: []*pem.Block{{Type: "EC PRIVATE KEY", Bytes: sec1}}, pub: ec.Public(), alg: jose.ES256},
		{name: "EC SEC1 after EC PARAMETERS (openssl ecparam -genkey)", blocks: []*pem.Block{ecParams, {Type: "EC PRIVATE KEY", Bytes: sec1}}, pub: ec.Public(), alg: jose.ES256},
		{name: "RSA PKCS#8", blocks: []*pem.Block{pkcs8(t, rsa2048)}, pub: rsa2048.Public(), alg: jose.RS256},
		{name: "RSA PKCS#1", blocks: []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa2048)}}, pub: rsa2048.Public(), alg: jose.RS256},
		{name: "RSA-1024 refused", blocks: []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa1024)}}, err: "an RSA key of 1024 bits; wardend takes 2048 or more"},
		{name: "RSA-1024 PKCS#8 refused", blocks: []*pem.Block{pkcs8(t, rsa1024)}, err: "1024 bits"},
		{name: "P-384 refused", blocks: []*pem.Block{pkcs8(t, p384)}, err: "an EC key on P-384; wardend takes P-256 only"},
		{name: "Ed25519 refused", blocks: []*pem.Block{pkcs8(t, ed)}, err: "an Ed25519 key"},
		{name: "public key", blocks: []*pem.Block{{Type: "PUBLIC KEY", Bytes: pubDER}}, err: "the public half; give the private key"},
		{name: "encrypted", blocks: []*pem.Block{{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}}, err: "the key is encrypted"},
		{name: "wrong block type", blocks: []*pem.Block{{Type: "X509 CRL", Bytes: []byte{1}}}, err: `a PEM block of type "X509 CRL"`},
		{name: "garbage in a PRIVATE KEY block", blocks: []*pem.Block{{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}}, err: "the private key does not parse"},
		{name: "no PEM", blocks: nil, err: "no private key in it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := pemFile(t, tc.blocks...)
			k, alg, err := loadWorkloadKey(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err %v, want one naming %s and saying %q", err, path, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg != tc.alg {
				t.Errorf("alg %s, want %s", alg, tc.alg)
			}
			if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
				t.Error("loaded another key")
			}
		})
	}
	if _, _, err := loadWorkloadKey(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// ---- assertion ----

// registered is the public key as the rules hold it (the JWK that keygen
// prints), as wardend parses it.
func registered(t testing.TB, pub crypto.PublicKey, kid string) jose.JSONWebKey {
	t.Helper()
	j, err := rolemap.JWKFromKey(pub, kid)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j)
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWorkloadAssertion(t *testing.T) {
	ec, r := testKeys()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const aud = "https://idp.example.com/oauth/token"
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
		kid  string // --kid; "" the thumbprint
	}{
		{"ES256, thumbprint kid", ec, jose.ES256, ""},
		{"RS256, thumbprint kid", r, jose.RS256, ""},
		{"ES256, own kid", ec, jose.ES256, "2025-06"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testApp(t)
			a.Now = func() time.Time { return now }
			path := pemFile(t, pkcs8(t, tc.key))
			w, err := a.newWorkloadClient(workloadFlags{idp: "https://idp.example.com", clientID: wlID, keyFile: path, kid: tc.kid, role: wlRole})
			if err != nil {
				t.Fatal(err)
			}
			reg := registered(t, tc.key.Public(), tc.kid)
			if tc.kid == "" && w.kid != reg.KeyID {
				t.Fatalf("default kid %q, keygen's (RFC 7638 thumbprint) %q", w.kid, reg.KeyID)
			}
			jtis := map[string]bool{}
			for range 3 {
				raw, err := w.assertion(aud)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{tc.alg})
				if err != nil {
					t.Fatal(err)
				}
				h := tok.Headers[0]
				if h.KeyID != reg.KeyID || h.Algorithm != string(tc.alg) || h.ExtraHeaders["typ"] != "JWT" {
					t.Errorf("header kid %q alg %q typ %v; want kid %q", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"], reg.KeyID)
				}
				var c jwt.Claims
				if err := tok.Claims(tc.key.Public(), &c); err != nil {
					t.Fatalf("signature: %v", err)
				}
				if c.Issuer != wlID || c.Subject != wlID || !slices.Equal([]string(c.Audience), []string{aud}) {
					t.Errorf("iss %q sub %q aud %q", c.Issuer, c.Subject, c.Audience)
				}
				if c.IssuedAt == nil || !c.IssuedAt.Time().Equal(now) || c.Expiry == nil {
					t.Fatalf("iat %v exp %v", c.IssuedAt, c.Expiry)
				}
				if exp := c.Expiry.Time(); !exp.After(now) || exp.After(now.Add(5*time.Minute)) {
					t.Errorf("exp %v: want after now and at most 5 minutes ahead", exp)
				}
				if c.ID == "" || jtis[c.ID] {
					t.Errorf("jti %q empty or repeated", c.ID)
				}
				jtis[c.ID] = true
				// And wardend's own verifier takes it, with the key as the
				// rules register it.
				got, err := oidcop.VerifyClientAssertion(context.Background(), raw, wlID, []jose.JSONWebKey{reg}, []string{aud}, now, &storetest.MemJTIs{})
				if err != nil || got.KeyID != reg.KeyID {
					t.Errorf("oidcop.VerifyClientAssertion: %v (kid %q)", err, got.KeyID)
				}
			}
		})
	}
}

// ---- a fake wardend and STS ----

// fakeWardend answers discovery, client_credentials (checking the
// assertion with oidcop.VerifyClientAssertion, or the Basic secret) and
// the token exchange of a workload, like docs/workloads.md says wardend
// does. fail, when set, may answer a request with an error instead.
type fakeWardend struct {
	t      testing.TB
	srv    *httptest.Server
	keys   []jose.JSONWebKey
	secret string
	roles  []string
	jtis   storetest.MemJTIs

	mu sync.Mutex
	// expiresIn is that of role tokens; < 0: leave expires_in out.
	expiresIn int
	// fail, when set, may answer the nth request of a grant with an error.
	fail     func(grant string, n int) (status int, code string, retryAfter int)
	access   map[string]bool
	issued   []string
	exps     []time.Time // of the issued tokens, when they were issued
	problems []string
	cc, xc   atomic.Int32
	// now is the clock of issued tokens (nil: time.Now); fakeClock sets
	// it to the CLI's.
	now func() time.Time
}

func (f *fakeWardend) clock() time.Time {
	f.mu.Lock()
	now := f.now
	f.mu.Unlock()
	if now == nil {
		return time.Now()
	}
	return now()
}

// fakeClock gives a and f one clock that moves only when token-file
// waits: each wait returns at once, the clock that much later. The
// schedule (a refresh while the file's token is valid, the retries, the
// giving up) is then checked exactly, whatever the machine's load.
func fakeClock(a *App, f *fakeWardend) {
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	a.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	a.after = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		now = now.Add(d)
		t := now
		mu.Unlock()
		ch := make(chan time.Time, 1)
		ch <- t
		return ch
	}
	f.mu.Lock()
	f.now = a.Now
	f.mu.Unlock()
}

func newFakeWardend(t testing.TB, keys []jose.JSONWebKey, secret string) *fakeWardend {
	f := &fakeWardend{t: t, keys: keys, secret: secret, roles: []string{wlRole}, expiresIn: 300, access: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWardend) set(expiresIn int, fail func(grant string, n int) (int, string, int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expiresIn, f.fail = expiresIn, fail
}

func (f *fakeWardend) bad(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *fakeWardend) check(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Errorf("fake wardend: %s", p)
	}
	f.problems = nil
}

func (f *fakeWardend) tokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.issued)
}

func (f *fakeWardend) serve(w http.ResponseWriter, r *http.Request) {
	tokenURL := f.srv.URL + "/oauth/token"
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	refuse := func(status int, code, desc string) {
		answer(status, map[string]string{"error": code, "error_description": desc, "request_id": "req-" + code})
	}
	switch {
	case r.URL.Path == "/.well-known/openid-configuration":
		answer(200, map[string]string{"issuer": f.srv.URL, "token_endpoint": tokenURL})
		return
	case r.URL.Path != "/oauth/token" || r.Method != http.MethodPost:
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		f.bad("form: %v", err)
	}
	form := r.PostForm
	grant := form.Get("grant_type")
	var n int32
	switch grant {
	case "client_credentials":
		n = f.cc.Add(1)
	case grantTokenExchange:
		n = f.xc.Add(1)
	}
	f.mu.Lock()
	fail, expiresIn := f.fail, f.expiresIn
	f.mu.Unlock()
	if fail != nil {
		if status, code, ra := fail(grant, int(n)); status != 0 {
			if ra > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(ra))
			}
			refuse(status, code, "the fake says "+code)
			return
		}
	}
	switch grant {
	case "client_credentials":
		if u, p, ok := r.BasicAuth(); ok {
			id, err1 := url.QueryUnescape(u)
			sec, err2 := url.QueryUnescape(p)
			if err1 != nil || err2 != nil || id != wlID || sec != f.secret || f.secret == "" {
				refuse(401, "invalid_client", "client authentication failed")
				return
			}
		} else {
			if form.Get("client_assertion_type") != oidcop.AssertionType {
				refuse(401, "invalid_client", "client_assertion_type")
				return
			}
			if form.Get("client_id") != wlID {
				f.bad("client_id %q", form.Get("client_id"))
			}
			_, err := oidcop.VerifyClientAssertion(r.Context(), form.Get("client_assertion"), form.Get("client_id"), f.keys,
				[]string{tokenURL}, f.clock(), &f.jtis)
			if err != nil {
				refuse(401, "invalid_client", strings.TrimPrefix(err.Error(), oidcop.ErrBadAssertion.Error()+": "))
				return
			}
		}
		at := fmt.Sprintf("access-%d-%s", n, rand.Text())
		f.mu.Lock()
		f.access[at] = true
		f.mu.Unlock()
		answer(200, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300})
	case grantTokenExchange:
		f.mu.Lock()
		known := f.access[form.Get("subject_token")]
		delete(f.access, form.Get("subject_token"))
		f.mu.Unlock()
		for k, want := range map[string]string{"subject_token_type": tokenTypeAccess, "requested_token_type": tokenTypeIDToken, "client_id": wlID} {
			if form.Get(k) != want {
				f.bad("exchange %s %q, want %q", k, form.Get(k), want)
			}
		}
		if form.Has("client_secret") || form.Has("client_assertion") || r.Header.Get("Authorization") != "" {
			f.bad("the exchange carries client credentials")
		}
		switch {
		case !known:
			refuse(400, "invalid_request", "bad subject token")
			return
		case !slices.Contains(f.roles, form.Get("resource")):
			refuse(400, "invalid_target", "this workload does not have this role")
			return
		}
		life := expiresIn
		if life < 0 {
			life = 120
		}
		now := f.clock()
		f.mu.Lock()
		if n := len(f.exps); n > 0 && !now.Before(f.exps[n-1]) {
			f.problems = append(f.problems, fmt.Sprintf("token %d asked for at %s, after token %d expired at %s", n+1, now.Format(time.StampMilli), n, f.exps[n-1].Format(time.StampMilli)))
		}
		f.mu.Unlock()
		claims, _ := json.Marshal(map[string]any{"sub": "workload:" + wlID, "aud": "sts.amazonaws.com", "iat": now.Unix(), "exp": now.Unix() + int64(life), "jti": rand.Text()})
		tok := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
		f.mu.Lock()
		f.issued = append(f.issued, tok)
		f.exps = append(f.exps, now.Add(time.Duration(life)*time.Second))
		f.mu.Unlock()
		ans := map[string]any{"access_token": tok, "issued_token_type": tokenTypeIDToken, "token_type": "N_A"}
		if expiresIn >= 0 {
			ans["expires_in"] = expiresIn
		}
		answer(200, ans)
	default:
		refuse(400, "unsupported_grant_type", "grant "+grant)
	}
}

// fakeWLSTS answers AssumeRoleWithWebIdentity and records the requests.
type fakeWLSTS struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []url.Values
}

func newFakeWLSTS(t testing.TB) *fakeWLSTS {
	s := &fakeWLSTS{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		s.mu.Lock()
		s.reqs = append(s.reqs, r.PostForm)
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "" || r.PostForm.Get("Action") != "AssumeRoleWithWebIdentity" {
			w.WriteHeader(400)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>signed, or not AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>`)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>`+
			`<Credentials><AccessKeyId>ASIAWORKLOAD</AccessKeyId><SecretAccessKey>wl-secret</SecretAccessKey><SessionToken>wl-session</SessionToken>`+
			`<Expiration>2030-01-02T03:04:05Z</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/orders-sqs/%s</Arn>`+
			`<AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`,
			r.PostForm.Get("RoleSessionName"))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeWLSTS) requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// wlSetup is a fake wardend that knows an EC key, that key's file, and
// the flags that reach it with it.
func wlSetup(t *testing.T) (*fakeWardend, []string) {
	t.Helper()
	ec, _ := testKeys()
	f := newFakeWardend(t, []jose.JSONWebKey{registered(t, ec.Public(), "")}, "")
	path := pemFile(t, pkcs8(t, ec))
	return f, []string{"--idp", f.srv.URL, "--client-id", wlID, "--key", path, "--role", wlRole}
}

func clearWorkloadEnv(t *testing.T) {
	for _, k := range []string{envWorkloadIdP, envWorkloadClientID, envWorkloadKeyFile, envWorkloadSecretFile, envWorkloadRoleARN,
		"AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
}

// ---- token, creds ----

func TestWorkloadToken(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	a := testApp(t)
	for i := range 2 { // a second run: a new assertion (wardend takes each jti once)
		out, errOut, err := runCLI(a, append([]string{"workload", "token"}, flags...)...)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, errOut)
		}
		toks := f.tokens()
		if len(toks) != i+1 || out != toks[i]+"\n" || errOut != "" {
			t.Fatalf("run %d printed %q (stderr %q); issued %q", i, out, errOut, toks)
		}
	}
	f.check(t)
	if entries, _ := os.ReadDir(a.CacheDir); len(entries) != 0 {
		t.Errorf("the user's cache was written: %v", entries)
	}
	if entries, _ := os.ReadDir(a.ConfigDir); len(entries) != 0 {
		t.Errorf("the user's config was written: %v", entries)
	}
}

func TestWorkloadCreds(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	sts := newFakeWLSTS(t)
	a := testApp(t)
	run := func(extra ...string) string {
		t.Helper()
		args := append(append([]string{"workload", "creds", "--sts-endpoint", sts.srv.URL}, flags...), extra...)
		out, errOut, err := runCLI(a, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, errOut)
		}
		f.check(t)
		return out
	}

	out := run("--duration", "1h")
	var j map[string]string
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	want := map[string]string{"AccessKeyId": "ASIAWORKLOAD", "SecretAccessKey": "wl-secret", "SessionToken": "wl-session",
		"Expiration": "2030-01-02T03:04:05Z", "RoleArn": wlRole}
	if fmt.Sprint(j) != fmt.Sprint(want) {
		t.Errorf("json output %v, want %v", j, want)
	}
	reqs := sts.requests()
	toks := f.tokens()
	if len(reqs) != 1 || len(toks) != 1 {
		t.Fatalf("%d STS calls, %d tokens", len(reqs), len(toks))
	}
	for k, v := range map[string]string{"RoleArn": wlRole, "RoleSessionName": wlID, "WebIdentityToken": toks[0], "DurationSeconds": "3600"} {
		if reqs[0].Get(k) != v {
			t.Errorf("STS %s %q, want %q", k, reqs[0].Get(k), v)
		}
	}

	out = run("--format", "process")
	var p wdCredJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Version != 1 || p.AccessKeyID != "ASIAWORKLOAD" || p.SessionToken != "wl-session" ||
		p.Expiration != "2030-01-02T03:04:05Z" {
		t.Errorf("process output %q (%v)", out, err)
	}
	if reqs := sts.requests(); reqs[1].Has("DurationSeconds") {
		t.Errorf("DurationSeconds %q sent without --duration", reqs[1].Get("DurationSeconds"))
	}

	out = run("--format", "env", "--region", "eu-west-1")
	for _, line := range []string{"export AWS_ACCESS_KEY_ID=ASIAWORKLOAD\n", "export AWS_SECRET_ACCESS_KEY=wl-secret\n",
		"export AWS_SESSION_TOKEN=wl-session\n", "export AWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z\n", "export AWS_REGION=eu-west-1\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("env output lacks %q:\n%s", line, out)
		}
	}
	if out := run("--format", "env"); strings.Contains(out, "AWS_REGION") {
		t.Errorf("env output sets AWS_REGION without --region:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "yaml"}, `--format "yaml": want json, env or process`},
		{[]string{"--duration", "5m"}, "--duration 5m0s: want 15m to 12h"},
		{[]string{"--region", "cn-north-1"}, `--region "cn-north-1": not a region of the role's partition aws`},
	} {
		_, _, err := runCLI(a, append(append([]string{"workload", "creds", "--sts-endpoint", sts.srv.URL}, flags...), tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestWorkloadSTSRegion(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	gov := "arn:aws-us-gov:iam::777788889999:role/x"
	for _, tc := range []struct {
		role, flag string
		env        map[string]string
		part, want string
	}{
		{wlRole, "", nil, "aws", "us-east-1"},
		{wlRole, "", map[string]string{"AWS_REGION": "eu-west-1"}, "aws", "eu-west-1"},
		{wlRole, "", map[string]string{"AWS_DEFAULT_REGION": "eu-north-1"}, "aws", "eu-north-1"},
		{wlRole, "ap-south-1", map[string]string{"AWS_REGION": "eu-west-1"}, "aws", "ap-south-1"},
		{gov, "", map[string]string{"AWS_REGION": "eu-west-1"}, "aws-us-gov", "us-gov-west-1"}, // another partition's: ignored
		{gov, "us-gov-east-1", nil, "aws-us-gov", "us-gov-east-1"},
	} {
		o, err := workloadSTS(tc.role, tc.flag, "", env(tc.env))
		if err != nil || o.Partition != tc.part || o.Region != tc.want {
			t.Errorf("%s --region %q env %v: %+v %v, want %s/%s", tc.role, tc.flag, tc.env, o, err, tc.part, tc.want)
		}
	}
}

func TestWorkloadSecret(t *testing.T) {
	clearWorkloadEnv(t)
	secret := "s3cret+with/odd=chars & spaces:" + strings.Repeat("x", 8) // needs form-urlencoding in Basic
	f := newFakeWardend(t, nil, secret)
	dir := t.TempDir()
	sf := filepath.Join(dir, "secret")
	if err := os.WriteFile(sf, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := testApp(t)
	out, errOut, err := runCLI(a, "workload", "token", "--idp", f.srv.URL, "--client-id", wlID, "--secret-file", sf, "--role", wlRole)
	if err != nil || len(f.tokens()) != 1 || out != f.tokens()[0]+"\n" {
		t.Fatalf("token with a secret: %v %q\n%s", err, out, errOut)
	}
	f.check(t)

	// A wrong secret: wardend's refusal, with advice.
	if err := os.WriteFile(sf, []byte(strings.Repeat("y", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(a, "workload", "token", "--idp", f.srv.URL, "--client-id", wlID, "--secret-file", sf, "--role", wlRole)
	want := "wardend refused the workload's credentials: client authentication failed; check --client-id, the secret and its registration in the rules (request ID req-invalid_client)"
	if err == nil || err.Error() != want {
		t.Errorf("wrong secret: %v\nwant %s", err, want)
	}
	// Too short to be a workload secret: refused before any request.
	if err := os.WriteFile(sf, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := f.cc.Load()
	_, _, err = runCLI(a, "workload", "token", "--idp", f.srv.URL, "--client-id", wlID, "--secret-file", sf, "--role", wlRole)
	if err == nil || !strings.Contains(err.Error(), "the secret is 5 bytes long; a workload secret has at least 32") || f.cc.Load() != n {
		t.Errorf("short secret: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "short") {
		t.Error("the error shows the secret")
	}
}

// TestWorkloadErrors: wardend's refusals become one line with advice.
func TestWorkloadErrors(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	a := testApp(t)
	run := func(args ...string) error {
		_, _, err := runCLI(a, append(append([]string{"workload", "token"}, flags...), args...)...)
		return err
	}

	// A key that is not registered.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherFlags := slices.Clone(flags)
	otherFlags[5] = pemFile(t, pkcs8(t, other))
	_, _, err := runCLI(a, append([]string{"workload", "token"}, otherFlags...)...)
	var we *WorkloadError
	if !errors.As(err, &we) || we.Code != "invalid_client" || we.Temporary() ||
		!strings.HasPrefix(err.Error(), "wardend refused the workload's credentials: no registered ES256 key with kid") ||
		!strings.HasSuffix(err.Error(), "; check --client-id, the key and its registration in the rules (request ID req-invalid_client)") {
		t.Errorf("unregistered key: %v", err)
	}
	// The right key under another kid.
	if err := run("--kid", "nope"); err == nil || !strings.Contains(err.Error(), `kid "nope"`) {
		t.Errorf("--kid nope: %v", err)
	}
	// A role the workload does not have.
	err = run("--role", "arn:aws:iam::111122223333:role/Admin")
	if !errors.As(err, &we) || we.Code != "invalid_target" || err.Error() != "workload orders-worker may not have role arn:aws:iam::111122223333:role/Admin: "+
		"this workload does not have this role; check --role, or add the role to the workload's roles in the rules (request ID req-invalid_target)" {
		t.Errorf("another role: %v", err)
	}

	for _, tc := range []struct {
		grant             string
		status            int
		code              string
		retryAfter        int
		want              string
		temporary, isWLEr bool
	}{
		{"client_credentials", 429, "slow_down", 7, "wardend is rate-limiting workload orders-worker; try again in 7s (request ID req-slow_down)", true, true},
		{grantTokenExchange, 429, "slow_down", 3, "wardend is rate-limiting workload orders-worker; try again in 3s (request ID req-slow_down)", true, true},
		{"client_credentials", 503, "temporarily_unavailable", 0, "wardend is temporarily unavailable: the fake says temporarily_unavailable; try again in a moment (request ID req-temporarily_unavailable)", true, true},
		{"client_credentials", 400, "unsupported_grant_type", 0, "wardend does not take workload clients (client_credentials): the fake says unsupported_grant_type; check --idp, or upgrade wardend (request ID req-unsupported_grant_type)", false, true},
		{grantTokenExchange, 400, "invalid_grant", 0, "wardend refused workload orders-worker at the token exchange: the fake says invalid_grant; it may have been disabled or removed in the rules (request ID req-invalid_grant)", false, true},
	} {
		f.set(300, func(grant string, _ int) (int, string, int) {
			if grant == tc.grant {
				return tc.status, tc.code, tc.retryAfter
			}
			return 0, "", 0
		})
		err := run()
		if !errors.As(err, &we) || we.Temporary() != tc.temporary || err.Error() != tc.want {
			t.Errorf("%s %d %s: %v\nwant %s", tc.grant, tc.status, tc.code, err, tc.want)
		}
	}
	f.set(300, nil)

	// wardend not there.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	deadFlags := slices.Clone(flags)
	deadFlags[1] = dead.URL
	_, _, err = runCLI(a, append([]string{"workload", "token"}, deadFlags...)...)
	if err == nil || !strings.HasPrefix(err.Error(), "discovery: cannot reach wardend at "+hostOf(dead.URL)+" (connection refused): check your network and proxy, or --idp") {
		t.Errorf("dead wardend: %v", err)
	}
	f.check(t)
}

// ---- flags and environment ----

func TestWorkloadFlagsEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want workloadFlags
	}{
		{"env only", nil,
			map[string]string{envWorkloadIdP: "https://env", envWorkloadClientID: "env-id", envWorkloadKeyFile: "env.pem", envWorkloadRoleARN: "env-role"},
			workloadFlags{idp: "https://env", clientID: "env-id", keyFile: "env.pem", role: "env-role"}},
		{"flags win", []string{"--idp", "https://flag", "--client-id", "flag-id", "--key", "flag.pem", "--role", "flag-role"},
			map[string]string{envWorkloadIdP: "https://env", envWorkloadClientID: "env-id", envWorkloadKeyFile: "env.pem", envWorkloadRoleARN: "env-role"},
			workloadFlags{idp: "https://flag", clientID: "flag-id", keyFile: "flag.pem", role: "flag-role"}},
		{"some of each", []string{"--client-id", "flag-id"},
			map[string]string{envWorkloadIdP: "https://env", envWorkloadClientID: "env-id", envWorkloadRoleARN: "env-role"},
			workloadFlags{idp: "https://env", clientID: "flag-id", role: "env-role"}},
		{"--secret-file on the command line hides WARDEN_KEY_FILE", []string{"--secret-file", "s"},
			map[string]string{envWorkloadKeyFile: "env.pem"},
			workloadFlags{secretFile: "s"}},
		{"--key on the command line hides WARDEN_SECRET_FILE", []string{"--key", "k.pem"},
			map[string]string{envWorkloadSecretFile: "env-secret"},
			workloadFlags{keyFile: "k.pem"}},
		{"an empty variable is unset", nil,
			map[string]string{envWorkloadIdP: "", envWorkloadSecretFile: "env-secret"},
			workloadFlags{secretFile: "env-secret"}},
		{"a flag given empty stays empty", []string{"--idp", ""},
			map[string]string{envWorkloadIdP: "https://env"},
			workloadFlags{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f workloadFlags
			cmd := &cobra.Command{}
			f.register(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			f.fromEnv(cmd, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if f != tc.want {
				t.Errorf("%+v, want %+v", f, tc.want)
			}
		})
	}

	// Through the command: everything from the environment, and a flag
	// over its variable.
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	t.Setenv(envWorkloadIdP, f.srv.URL)
	t.Setenv(envWorkloadClientID, wlID)
	t.Setenv(envWorkloadKeyFile, flags[5])
	t.Setenv(envWorkloadRoleARN, "arn:aws:iam::111122223333:role/not-this-one")
	a := testApp(t)
	out, _, err := runCLI(a, "workload", "token", "--role", wlRole)
	if err != nil || out != f.tokens()[0]+"\n" {
		t.Fatalf("from the environment: %v %q", err, out)
	}
	_, _, err = runCLI(a, "workload", "token")
	var we *WorkloadError
	if !errors.As(err, &we) || we.Code != "invalid_target" || we.RoleARN != "arn:aws:iam::111122223333:role/not-this-one" {
		t.Errorf("WARDEN_ROLE_ARN not used: %v", err)
	}
	f.check(t)
}

func TestWorkloadFlagsCheck(t *testing.T) {
	f := workloadFlags{}
	err := f.check()
	for _, want := range []string{"--idp (or WARDEN_IDP) is required", "--client-id (or WARDEN_CLIENT_ID) is required",
		"--key (or WARDEN_KEY_FILE) is required", "--role (or WARDEN_ROLE_ARN) is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("empty flags: %v; want %q", err, want)
		}
	}
	f = workloadFlags{idp: "http://idp.example.com", clientID: "Orders_Worker", keyFile: "k", secretFile: "s", role: "arn:aws:iam::1:role/x"}
	err = f.check()
	for _, want := range []string{`--idp "http://idp.example.com": want https://host[/path] (plain http only on a loopback host)`,
		`--client-id "Orders_Worker": a workload ID is 1–64 characters of a-z, 0-9 and -`, "give --key or --secret-file, not both", "--role: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad flags: %v; want %q", err, want)
		}
	}
	f = workloadFlags{idp: "https://idp.example.com/", clientID: wlID, keyFile: "k", role: wlRole}
	if err := f.check(); err != nil || f.idp != "https://idp.example.com" {
		t.Errorf("good flags: %v, idp %q", err, f.idp)
	}
}

// ---- keygen ----

func TestWorkloadKeygen(t *testing.T) {
	clearWorkloadEnv(t)
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			a := testApp(t)
			out := filepath.Join(t.TempDir(), "key.pem")
			stdout, stderr, err := runCLI(a, "workload", "keygen", "--out", out, "--alg", alg)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
			}
			raw, _ := os.ReadFile(out)
			if b, _ := pem.Decode(raw); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("not a PKCS#8 PEM:\n%s", raw)
			}
			key, gotAlg, err := loadWorkloadKey(out)
			if err != nil || string(gotAlg) != alg {
				t.Fatalf("load: %v %s", err, gotAlg)
			}
			if strings.Contains(stdout, "PRIVATE") || strings.Contains(stderr, "PRIVATE") {
				t.Error("the private key was printed")
			}
			// The snippet goes into a workload of the rules as it is, and
			// wardend's rules compile it into the key that verifies the
			// CLI's assertions.
			var snippet struct {
				JWKS rolemap.WorkloadJWKS `yaml:"jwks"`
			}
			if err := yaml.Unmarshal([]byte(stdout), &snippet); err != nil || len(snippet.JWKS.Keys) != 1 {
				t.Fatalf("snippet: %v\n%s", err, stdout)
			}
			want, _ := rolemap.JWKFromKey(key.Public(), "")
			if snippet.JWKS.Keys[0] != want || !strings.Contains(stderr, want.Kid) {
				t.Errorf("snippet key %+v, want %+v; stderr %s", snippet.JWKS.Keys[0], want, stderr)
			}
			var indented strings.Builder
			for _, line := range strings.SplitAfter(stdout, "\n") {
				if line != "" {
					indented.WriteString("    " + line)
				}
			}
			rules := "accounts:\n  - id: \"111122223333\"\n    name: prod\n    saml_provider: warden\n" +
				"workloads:\n  - id: " + wlID + "\n" + indented.String() + "    roles:\n      - arn: " + wlRole + "\n"
			rs, err := rolemap.ParseYAML([]byte(rules))
			if err != nil {
				t.Fatalf("rules with the snippet: %v\n%s", err, rules)
			}
			eng, err := rolemap.Compile(rs)
			if err != nil {
				t.Fatalf("compile: %v\n%s", err, rules)
			}
			wl, ok := eng.Workload(wlID)
			if !ok || len(wl.Keys) != 1 {
				t.Fatalf("workload %v keys %d", ok, len(wl.Keys))
			}
			w, err := a.newWorkloadClient(workloadFlags{clientID: wlID, keyFile: out})
			if err != nil {
				t.Fatal(err)
			}
			as, err := w.assertion("https://idp/oauth/token")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := oidcop.VerifyClientAssertion(context.Background(), as, wlID, wl.Keys, []string{"https://idp/oauth/token"}, time.Now(), &storetest.MemJTIs{}); err != nil {
				t.Errorf("wardend's verifier with the compiled rules: %v", err)
			}

			// An existing file is not replaced without --force.
			_, _, err = runCLI(a, "workload", "keygen", "--out", out, "--alg", alg)
			if err == nil || !strings.Contains(err.Error(), "exists; give another --out, or --force") {
				t.Errorf("overwrite: %v", err)
			}
			if again, _ := os.ReadFile(out); !bytes.Equal(again, raw) {
				t.Error("the key file changed")
			}
		})
	}

	a := testApp(t)
	out := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCLI(a, "workload", "keygen", "--out", out, "--force", "--json", "--kid", "k2")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(stdout), &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != "k2" ||
		set.Keys[0]["kty"] != "EC" || set.Keys[0]["alg"] != "ES256" || set.Keys[0]["d"] != "" {
		t.Errorf("--json: %v\n%s", err, stdout)
	}
	if st, _ := os.Stat(out); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("--force: mode %v", st.Mode().Perm())
	}
	if _, _, err := loadWorkloadKey(out); err != nil {
		t.Errorf("--force: %v", err)
	}
	if _, _, err := runCLI(a, "workload", "keygen", "--out", out+"2", "--alg", "HS256"); err == nil || !strings.Contains(err.Error(), `--alg "HS256"`) {
		t.Errorf("--alg HS256: %v", err)
	}
	if _, _, err := runCLI(a, "workload", "keygen"); err == nil || !strings.Contains(err.Error(), "--out is required") {
		t.Errorf("no --out: %v", err)
	}
}

// ---- token file ----

// TestWriteFileReplace: readers see the old token or the new, whole,
// never a part or nothing; the file is 0600 and no temporary file stays.
func TestWriteFileReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	tokens := []string{strings.Repeat("A", 64<<10), strings.Repeat("B", 64<<10), strings.Repeat("C", 3)}
	if err := writeFileReplace(path, []byte(tokens[0])); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != tokens[0] {
		t.Fatal("not replaced")
	}
	buf := make([]byte, 8)
	if n, _ := held.Read(buf); string(buf[:n]) != "old" {
		t.Errorf("a reader of the old file read %q: it was written in place", buf[:n])
	}
	if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Value
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := os.ReadFile(path)
				if err != nil {
					bad.Store(err.Error())
					return
				}
				if !slices.Contains(tokens, string(b)) {
					bad.Store(fmt.Sprintf("read %d bytes that are no whole token", len(b)))
					return
				}
			}
		})
	}
	for i := range 300 {
		if err := writeFileReplace(path, []byte(tokens[i%len(tokens)])); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Error(v)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	if err := writeFileReplace(filepath.Join(dir, "missing", "token"), []byte("x")); err == nil {
		t.Error("a missing directory must be an error")
	}
}

func TestWorkloadTokenFileOnce(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "token")
	a := testApp(t)
	stdout, stderr, err := runCLI(a, append([]string{"workload", "token-file", "--once", "--out", out}, flags...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	toks := f.tokens()
	b, _ := os.ReadFile(out)
	if len(toks) != 1 || string(b) != toks[0] {
		t.Fatalf("file holds %q; issued %q", b, toks)
	}
	if st, _ := os.Stat(out); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	want := "export AWS_ROLE_ARN=" + wlRole + "\nexport AWS_WEB_IDENTITY_TOKEN_FILE=" + shellQuote(out) + "\nexport AWS_ROLE_SESSION_NAME=" + wlID + "\n"
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	if strings.Contains(stderr, toks[0]) || !strings.Contains(stderr, "wrote "+out) {
		t.Errorf("stderr: %q", stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
	f.check(t)

	// The first token must come: a refusal ends it, and no file is written.
	f.set(300, func(string, int) (int, string, int) { return 401, "invalid_client", 0 })
	out2 := filepath.Join(dir, "token2")
	_, _, err = runCLI(a, append([]string{"workload", "token-file", "--out", out2}, flags...)...)
	if err == nil || !strings.Contains(err.Error(), "wardend refused the workload's credentials") {
		t.Errorf("refused: %v", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was written: %v", err)
	}
	if _, _, err := runCLI(a, append([]string{"workload", "token-file"}, flags...)...); err == nil || !strings.Contains(err.Error(), "--out is required") {
		t.Errorf("no --out: %v", err)
	}
}

// startTokenFile runs `workload token-file` in the background; stop
// cancels it and returns its error and stderr.
func startTokenFile(t *testing.T, a *App, args ...string) (stop func() (error, string)) {
	t.Helper()
	errb := &syncBuffer{}
	a.Stdout, a.Stderr = &syncBuffer{}, errb
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := Root(a)
		root.SetArgs(append([]string{"workload", "token-file"}, args...))
		done <- root.ExecuteContext(ctx)
	}()
	var once sync.Once
	var res error
	stop = func() (error, string) {
		once.Do(func() { cancel(); res = <-done })
		return res, errb.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitFor polls cond until it holds, failing the test at the hang guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := testenv.HangGuard(t)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWorkloadTokenFileRefresh: the file is renewed at half the token's
// lifetime, a failed refresh is retried, and the end of the context ends
// the command without an error.
func TestWorkloadTokenFileRefresh(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	// A refresh after 2 s, which fails; the retry comes a second later,
	// while the first token is still valid.
	f.set(4, func(grant string, n int) (int, string, int) {
		if grant == "client_credentials" && n == 2 {
			return 503, "temporarily_unavailable", 0
		}
		return 0, "", 0
	})
	out := filepath.Join(t.TempDir(), "token")
	a := testApp(t)
	fakeClock(a, f)
	stop := startTokenFile(t, a, append([]string{"--out", out}, flags...)...)
	waitFor(t, "three tokens written", func() bool {
		toks := f.tokens()
		b, _ := os.ReadFile(out)
		return len(toks) >= 3 && string(b) == toks[len(toks)-1]
	})
	err, stderr := stop()
	if err != nil {
		t.Fatalf("ended with %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "refresh failed: wardend is temporarily unavailable") || !strings.Contains(stderr, "retrying in") ||
		!strings.Contains(stderr, "refreshed "+out) || !strings.Contains(stderr, "stopping;") {
		t.Errorf("stderr:\n%s", stderr)
	}
	for _, tok := range f.tokens() {
		if strings.Contains(stderr, tok) {
			t.Error("a token was logged")
		}
	}
	f.check(t)
}

// TestWorkloadTokenFileRefreshInTime: each new token is asked for while
// the one in the file is still valid (the fake checks it).
func TestWorkloadTokenFileRefreshInTime(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	f.set(3, nil) // refreshed after 1.5 s
	out := filepath.Join(t.TempDir(), "token")
	a := testApp(t)
	fakeClock(a, f)
	stop := startTokenFile(t, a, append([]string{"--out", out}, flags...)...)
	waitFor(t, "three tokens", func() bool { return len(f.tokens()) >= 3 })
	if err, stderr := stop(); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	f.check(t)
}

// TestWorkloadTokenFileNoExpiresIn: without expires_in, the token's exp
// times the refresh.
func TestWorkloadTokenFileNoExpiresIn(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	f.set(-1, nil)
	a := testApp(t)
	fakeClock(a, f)
	w, err := a.newWorkloadClient(workloadFlags{idp: f.srv.URL, clientID: wlID, keyFile: flags[5], role: wlRole})
	if err != nil {
		t.Fatal(err)
	}
	_, ttl, err := w.roleToken(context.Background(), wlRole)
	if err != nil || ttl != 120*time.Second {
		t.Errorf("ttl %v (%v), want the token's 120 s", ttl, err)
	}
}

// TestWorkloadTokenFileGivesUp: a refusal is retried while the token in
// the file is valid, then ends the command with the refusal.
func TestWorkloadTokenFileGivesUp(t *testing.T) {
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	f.set(2, func(grant string, n int) (int, string, int) {
		if grant == "client_credentials" && n >= 2 {
			return 401, "invalid_client", 0
		}
		return 0, "", 0
	})
	out := filepath.Join(t.TempDir(), "token")
	a := testApp(t)
	fakeClock(a, f)
	errb := &syncBuffer{}
	a.Stdout, a.Stderr = &syncBuffer{}, errb
	root := Root(a)
	root.SetArgs(append([]string{"workload", "token-file", "--out", out}, flags...))
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the token in "+out+" has expired and wardend refuses a new one: wardend refused the workload's credentials") {
		t.Errorf("err %v", err)
	}
	if f.cc.Load() < 3 || !strings.Contains(errb.String(), "refresh failed: wardend refused") {
		t.Errorf("%d client_credentials requests; stderr:\n%s", f.cc.Load(), errb.String())
	}
}

// TestWorkloadTokenFileSIGTERM: SIGTERM ends token-file with status 0.
func TestWorkloadTokenFileSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	clearWorkloadEnv(t)
	f, flags := wlSetup(t)
	out := filepath.Join(t.TempDir(), "token")
	a := testApp(t)
	errb := &syncBuffer{}
	a.Stdout, a.Stderr = &syncBuffer{}, errb
	done := make(chan error, 1)
	go func() {
		root := Root(a)
		root.SetArgs(append([]string{"workload", "token-file", "--out", out}, flags...))
		done <- root.ExecuteContext(context.Background())
	}()
	// The handler is installed before the first token is fetched, so it
	// is there once the file is.
	waitFor(t, "the token file", func() bool { _, err := os.Stat(out); return err == nil && len(f.tokens()) == 1 })
	p, _ := os.FindProcess(os.Getpid())
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SIGTERM: %v", err)
		}
	case <-time.After(time.Until(testenv.HangGuard(t))):
		t.Fatal("token-file did not end on SIGTERM")
	}
	if !strings.Contains(errb.String(), "stopping;") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}

// ---- end to end, against a real wardend ----

// TestWorkloadAgainstWardendE2E runs the workload commands against a real
// wardend (app.Run on the real OpenLDAP and Redis) whose rules are
// config/mappings.example.yaml plus three workloads, and a fake STS that
// verifies the web-identity tokens with coreos/go-oidc against wardend's
// discovery and JWKS.
func TestWorkloadAgainstWardendE2E(t *testing.T) {
	clearWorkloadEnv(t)
	a := testApp(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	jwksOut, stderr, err := runCLI(a, "workload", "keygen", "--out", keyFile, "--json")
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	var jwks rolemap.WorkloadJWKS
	if err := json.Unmarshal([]byte(jwksOut), &jwks); err != nil {
		t.Fatal(err)
	}
	secret := rand.Text() + rand.Text() // 52 characters
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))

	example, err := os.ReadFile(filepath.Join("..", "..", "config", "mappings.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rolemap.ParseYAML(example)
	if err != nil {
		t.Fatal(err)
	}
	const otherRole = "arn:aws:iam::444455556666:role/PowerUser"
	rs.Workloads = append(rs.Workloads,
		rolemap.Workload{ID: "e2e-worker", Description: "CLI end to end", JWKS: &jwks,
			Roles: []rolemap.WorkloadRole{{ARN: wdReadOnly, MaxSessionSeconds: 3600}}, Tags: map[string]string{"team": "orders"}},
		rolemap.Workload{ID: "e2e-secret", SecretSHA256: hex.EncodeToString(sum[:]), Roles: []rolemap.WorkloadRole{{ARN: wdReadOnly}}},
		rolemap.Workload{ID: "e2e-off", Disabled: true, JWKS: &jwks, Roles: []rolemap.WorkloadRole{{ARN: wdReadOnly}}})
	if _, err := rolemap.Compile(rs); err != nil {
		t.Fatalf("the e2e rules: %v", err)
	}
	rulesYAML, err := rs.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, rulesYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	o, pw := apptest.RealOptions(t, rules)
	logs := &syncBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	idp := &wdIdP{base: apptest.Start(t, o), pw: pw}

	auth := []string{"--idp", idp.base, "--client-id", "e2e-worker", "--key", keyFile}

	_, _, err = runCLI(a, append([]string{"workload", "token", "--role", wdReadOnly}, auth...)...)
	var we *WorkloadError
	if err != nil {
		t.Fatalf("workload token: %v", err)
	}

	// creds --format process: client_credentials, the exchange, and STS
	// with a token that go-oidc verifies and that carries the role's,
	// the account's and the workload's tags.
	sts := newWdSTS(t, idp, true, func() wdExpect {
		return wdExpect{roleARN: wdReadOnly, duration: "3600", roleName: "ReadOnly", account: "111122223333"}
	})
	stdout, stderr, err := runCLI(a, append([]string{"workload", "creds", "--format", "process", "--role", wdReadOnly, "--duration", "1h",
		"--sts-endpoint", sts.srv.URL}, auth...)...)
	for _, p := range sts.problems() {
		t.Errorf("fake STS: %s", p)
	}
	if err != nil {
		t.Fatalf("workload creds: %v\n%s", err, stderr)
	}
	var c wdCredJSON
	if err := json.Unmarshal([]byte(stdout), &c); err != nil || c.Version != 1 || !strings.HasPrefix(c.AccessKeyID, "ASIAFAKE") || c.SessionToken != "fake-session" {
		t.Fatalf("creds printed %q (%v)", stdout, err)
	}
	req := sts.requests[len(sts.requests)-1]
	if req.Get("RoleSessionName") != "e2e-worker" {
		t.Errorf("RoleSessionName %q", req.Get("RoleSessionName"))
	}
	var claims struct {
		Sub  string `json:"sub"`
		Aud  any    `json:"aud"`
		Tags struct {
			PrincipalTags map[string][]string `json:"principal_tags"`
		} `json:"https://aws.amazon.com/tags"`
	}
	parts := strings.Split(req.Get("WebIdentityToken"), ".")
	if len(parts) != 3 {
		t.Fatal("the WebIdentityToken is not a JWS")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "workload:e2e-worker" || fmt.Sprint(claims.Tags.PrincipalTags["WardenWorkload"]) != "[e2e-worker]" ||
		fmt.Sprint(claims.Tags.PrincipalTags["team"]) != "[orders]" {
		t.Errorf("web-identity token: sub %q, tags %v", claims.Sub, claims.Tags.PrincipalTags)
	}

	// token-file --once.
	tokenFile := filepath.Join(dir, "token")
	stdout, stderr, err = runCLI(a, append([]string{"workload", "token-file", "--once", "--out", tokenFile, "--role", wdReadOnly}, auth...)...)
	if err != nil {
		t.Fatalf("token-file: %v\n%s", err, stderr)
	}
	if tok, _ := os.ReadFile(tokenFile); strings.Count(string(tok), ".") != 2 || strings.Contains(stderr, string(tok)) ||
		!strings.Contains(stdout, "export AWS_WEB_IDENTITY_TOKEN_FILE="+shellQuote(tokenFile)) {
		t.Errorf("token file %q; stdout %q", tok, stdout)
	}

	// The token file as AWS's own tools use it, against moto's STS: the
	// Go SDK's default config and the AWS CLI assume the role with
	// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE alone.
	moto := testenv.Moto(t)
	awsEnv := map[string]string{"AWS_ROLE_ARN": wdReadOnly, "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_SESSION_NAME": "e2e-worker",
		"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_STS": moto, "AWS_CONFIG_FILE": filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-credentials"), "AWS_EC2_METADATA_DISABLED": "true"}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range awsEnv {
		t.Setenv(k, v)
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sdkCreds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || !strings.HasPrefix(sdkCreds.AccessKeyID, "ASIA") || sdkCreds.SessionToken == "" || !sdkCreds.CanExpire {
		t.Fatalf("aws-sdk-go-v2 with the token file: %+v %v", sdkCreds, err)
	}
	// Debian's awscli (2.9) predates AWS_ENDPOINT_URL_STS: an STS
	// endpoint rule set in AWS_DATA_PATH, which botocore reads before its
	// own, sends every STS call (the credential provider's too) to moto.
	rulesDir := filepath.Join(dir, "awsdata", "sts", "2011-06-15")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ruleSet := `{"version":"1.0","parameters":{"Region":{"builtIn":"AWS::Region","required":false,"type":"String"}},` +
		`"rules":[{"conditions":[],"endpoint":{"url":` + strconv.Quote(moto) + `},"type":"endpoint"}]}`
	if err := os.WriteFile(filepath.Join(rulesDir, "endpoint-rule-set-1.json"), []byte(ruleSet), 0o644); err != nil {
		t.Fatal(err)
	}
	aws := exec.Command(testenv.Binary(t, "/usr/bin/aws"), "sts", "get-caller-identity", "--output", "json")
	aws.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "AWS_PAGER=", "AWS_DATA_PATH=" + filepath.Join(dir, "awsdata")}
	for k, v := range awsEnv {
		aws.Env = append(aws.Env, k+"="+v)
	}
	out, err := aws.CombinedOutput()
	var ident struct{ Account, Arn string }
	if err != nil || json.Unmarshal(out, &ident) != nil || ident.Account != "111122223333" {
		t.Fatalf("aws sts get-caller-identity with the token file: %v\n%s", err, out)
	}
	t.Logf("awscli: %s; aws-sdk-go-v2: %s", ident.Arn, sdkCreds.AccessKeyID)

	// A session longer than the rules' max_session_seconds for the role
	// (3600) is refused before STS.
	_, _, err = runCLI(a, append([]string{"workload", "creds", "--role", wdReadOnly, "--duration", "2h", "--sts-endpoint", sts.srv.URL}, auth...)...)
	if err == nil || !strings.Contains(err.Error(), "longer than the rules allow this workload for the role (1h0m0s)") {
		t.Errorf("--duration 2h: %v", err)
	}

	// A client secret (HTTP Basic).
	stdout, stderr, err = runCLI(a, "workload", "token", "--idp", idp.base, "--client-id", "e2e-secret", "--secret-file", secretFile, "--role", wdReadOnly)
	if err != nil || strings.Count(stdout, ".") != 2 {
		t.Errorf("with a secret: %v %q\n%s", err, stdout, stderr)
	}

	// Refusals, each one line with advice.
	other := filepath.Join(dir, "other.pem")
	if _, _, err := runCLI(a, "workload", "keygen", "--out", other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code string
		want string
	}{
		{"a role the workload does not have", append([]string{"--role", otherRole}, auth...), "invalid_target",
			"workload e2e-worker may not have role " + otherRole},
		{"an unregistered key", []string{"--role", wdReadOnly, "--idp", idp.base, "--client-id", "e2e-worker", "--key", other}, "invalid_client",
			"wardend refused the workload's credentials: "},
		{"a disabled workload", []string{"--role", wdReadOnly, "--idp", idp.base, "--client-id", "e2e-off", "--key", keyFile}, "invalid_client",
			"wardend refused the workload's credentials: "},
		{"an unknown workload", []string{"--role", wdReadOnly, "--idp", idp.base, "--client-id", "e2e-nobody", "--key", keyFile}, "invalid_client",
			"wardend refused the workload's credentials: "},
	} {
		_, _, err := runCLI(a, append([]string{"workload", "token"}, tc.args...)...)
		t.Logf("%s: %v", tc.name, err)
		if !errors.As(err, &we) || we.Code != tc.code || !strings.HasPrefix(err.Error(), tc.want) || we.RequestID == "" {
			t.Errorf("%s: %v (want %s, %q…, a request ID)", tc.name, err, tc.code, tc.want)
		}
	}
	// wardend's log has the issuances (client ID and IP) and never a
	// token, the key's assertion or the secret; /metrics counts them per
	// workload.
	tok, _ := os.ReadFile(tokenFile)
	for _, secretText := range []string{string(tok), secret, sdkCreds.SecretAccessKey, "wl1."} {
		if strings.Contains(logs.String(), secretText) {
			t.Errorf("wardend logged a secret (%.12s…)", secretText)
		}
	}
	if !strings.Contains(logs.String(), `"action":"workload.token"`) || !strings.Contains(logs.String(), `"client_ip":"127.0.0.1"`) {
		t.Errorf("no workload.token audit line with the client IP in wardend's log")
	}
	resp, err := http.Get(idp.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`warden_workload_tokens_total{client="e2e-worker",result="success",step="access_token"}`,
		`warden_workload_tokens_total{client="e2e-worker",result="success",step="web_identity"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics (%d) lacks %s", resp.StatusCode, want)
		}
	}
}
