package samlidp

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store/storetest"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// fixedTime is the clock of golden and table tests.
var fixedTime = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// loadSigner reads a fixed test key pair from testdata.
func loadSigner(t testing.TB, name string) keys.Signer {
	t.Helper()
	kb, err := os.ReadFile("testdata/" + name + "-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := os.ReadFile("testdata/" + name + "-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := pem.Decode(kb)
	cp, _ := pem.Decode(cb)
	k, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return keys.Signer{Key: k.(*rsa.PrivateKey), Cert: cert}
}

// ring is a fixed key ring.
type ring struct {
	mu  sync.Mutex
	cur keys.Signer
	pub []keys.Signer
}

func (r *ring) Current() keys.Signer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *ring) Published() []keys.Signer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]keys.Signer(nil), r.pub...)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Test directory: the seed people, with the groups the rules use.
func group(name string) identity.Group {
	return identity.Group{DN: "cn=" + name + ",ou=groups,dc=example,dc=org", Name: name, Direct: true}
}

var testUsers = map[string]identity.User{
	"alice": {ID: "0b3a8c1e-0000-4000-8000-00000000a11c", Username: "alice", DisplayName: "Alice Anderson",
		Email: "alice@example.org", Groups: []identity.Group{group("admins"), group("engineering")},
		Attributes: map[string][]string{"department": {"Platform"}, "email": {"alice@example.org"}}},
	"bob": {ID: "0b3a8c1e-0000-4000-8000-000000000b0b", Username: "bob", DisplayName: "Bob Brown",
		Email: "bob@example.org", Groups: []identity.Group{group("developers"), group("engineering"), group("staff")},
		Attributes: map[string][]string{"department": {"Apps"}, "email": {"bob@example.org"}}},
	"frank": {ID: "0b3a8c1e-0000-4000-8000-00000000f4a2", Username: "frank", DisplayName: "Frank Fischer"},
	"jürgen": {ID: "0b3a8c1e-0000-4000-8000-0000000003e6", Username: "jürgen", DisplayName: "Jürgen Müller",
		Email: "juergen@example.org", Groups: []identity.Group{group("developers")}},
	"x":    {ID: "0b3a8c1e-0000-4000-8000-000000000078", Username: "x", Groups: []identity.Group{group("developers")}},
	"many": {ID: "0b3a8c1e-0000-4000-8000-000000000500", Username: "many", Groups: []identity.Group{group("many")}},
	"two-hundred": {ID: "0b3a8c1e-0000-4000-8000-000000000200", Username: "two-hundred",
		Groups: []identity.Group{group("two-hundred")}},
	// mia holds a role that demands a second factor, one that demands a
	// passkey, and one that demands nothing; pia only the passkey one.
	"mia": {ID: "0b3a8c1e-0000-4000-8000-00000000003a", Username: "mia", Email: "mia@example.org",
		Groups: []identity.Group{group("mfa"), group("passkey")}, Attributes: map[string][]string{"department": {"Security"}}},
	"pia": {ID: "0b3a8c1e-0000-4000-8000-00000000003b", Username: "pia", Groups: []identity.Group{group("passkey")}},
}

// Roles of the mfa and passkey rules.
const (
	roleMFA      = "arn:aws:iam::111122223333:role/AdminMFA"
	rolePasskey  = "arn:aws:iam::111122223333:role/BreakGlass"
	roleReadOnly = "arn:aws:iam::111122223333:role/ReadOnly"
)

// longRoles returns n role ARNs with long names and paths in account prod.
func longRoles(n int, prefix string) []rolemap.RoleRef {
	out := make([]rolemap.RoleRef, n)
	for k := range out {
		name := fmt.Sprintf("%s-%04d-%s", prefix, k, strings.Repeat("x", 64))[:64]
		out[k] = rolemap.RoleRef{ARN: "arn:aws:iam::111122223333:role/teams/platform/" + name}
	}
	return out
}

func testRules(t testing.TB) *rolemap.Holder {
	t.Helper()
	rs := rolemap.RuleSet{
		Accounts: []rolemap.Account{
			{ID: "111122223333", Name: "prod", SAMLProvider: "warden"},
			{ID: "444455556666", Name: "staging", SAMLProvider: "warden"},
			{ID: "777788889999", Name: "gov", Partition: "aws-us-gov", SAMLProvider: "warden-gov"},
		},
		Grants: []rolemap.GrantRule{
			{ID: "admins", Group: "admins", Roles: []rolemap.RoleRef{
				{ARN: "arn:aws:iam::111122223333:role/AdministratorAccess", MaxSessionSeconds: 7200},
				{ARN: "arn:aws:iam::444455556666:role/AdministratorAccess", MaxSessionSeconds: 14400},
				{ARN: "arn:aws-us-gov:iam::777788889999:role/AdministratorAccess"}}},
			{ID: "developers", Group: "developers", Roles: []rolemap.RoleRef{
				{ARN: "arn:aws:iam::111122223333:role/ReadOnly", MaxSessionSeconds: 3600}}},
			{ID: "many", Group: "many", Roles: longRoles(500, "many")},
			{ID: "two-hundred", Group: "two-hundred", Roles: longRoles(200, "two")},
			// Roles that demand a second factor (any, or a passkey only).
			{ID: "mfa", Group: "mfa", Roles: []rolemap.RoleRef{
				{ARN: roleMFA, RequireMFA: true},
				{ARN: roleReadOnly}}},
			{ID: "passkey", Group: "passkey", Roles: []rolemap.RoleRef{
				{ARN: rolePasskey, MFAMethods: []string{identity.MethodWebAuthn}}}},
		},
		Tags: rolemap.TagRules{
			Attributes: []rolemap.TagAttribute{
				{Attribute: "email", Key: "email"},
				{Attribute: "department", Key: "department", Transitive: true},
			},
			SourceIdentity: "username",
		},
	}
	e, err := rolemap.Compile(rs)
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	var h rolemap.Holder
	h.Store(e)
	return &h
}

func grantOf(t testing.TB, h *rolemap.Holder, user, roleARN string) rolemap.Grant {
	t.Helper()
	for _, g := range h.Load().Evaluate(rolemap.InputFromUser(testUsers[user])).Grants {
		if g.RoleARN == roleARN {
			return g
		}
	}
	t.Fatalf("%s holds no %s", user, roleARN)
	return rolemap.Grant{}
}

// openStore returns a Redis store: the real one when REDIS_ADDR is set,
// else the embedded one.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	return storetest.Open(t, "wsaml")
}

// fixture is an IdP with fixed keys.
type fixture struct {
	idp   *IdP
	ring  *ring
	clock *clock
	rules *rolemap.Holder
	st    *store.Store
	audit *auditLog
}

type auditLog struct {
	mu     sync.Mutex
	events []string
}

func (a *auditLog) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e.Action+" "+e.Result+" "+e.Object)
}

func (a *auditLog) has(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}

type fixtureOpt func(*Config, *Deps)

const testPublicURL = "https://sso.example.org"

// newFixture builds an IdP on fixed keys, a fixed clock and a
// deterministic random source (seeded), with the stores on Redis.
func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	cur := loadSigner(t, "test")
	f := &fixture{ring: &ring{cur: cur, pub: []keys.Signer{cur}}, clock: &clock{t: fixedTime}, rules: testRules(t),
		st: openStore(t), audit: &auditLog{}}
	cfg := Config{}
	deps := Deps{
		Keys: f.ring, Rules: f.rules, Replay: store.NewSAMLReplay(f.st), Pending: store.NewSAMLPending(f.st, nil),
		Audit: f.audit, Clock: f.clock.Now, Rand: rand.NewChaCha8([32]byte{1}), PublicURL: testPublicURL,
		NameIDKey: []byte(strings.Repeat("k", 32)),
	}
	if testing.Verbose() {
		deps.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	idp, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(idp.Close)
	f.idp = idp
	return f
}

// fakeDir signs in the test users with the password "pw".
type fakeDir struct{}

func (fakeDir) Authenticate(_ context.Context, username, password string) (identity.User, error) {
	u, ok := testUsers[username]
	if !ok || password != "pw" {
		return identity.User{}, identity.ErrInvalidCredentials
	}
	return u, nil
}

// server serves the IdP through the real web server (real sessions and
// limiter on Redis; the directory is the fake above: this proves SAML,
// not LDAP).
func (f *fixture) server(t testing.TB, publicURL string, more ...web.Mount) *web.Server {
	t.Helper()
	sessions, err := store.NewSessions(f.st, store.SessionConfig{AbsoluteLifetime: 8 * time.Hour, IdleTimeout: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lim, err := store.NewLimiter(f.st, store.LimitConfig{MaxFailuresPerUser: 50, MaxFailuresPerIP: 500, Window: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{PublicURL: publicURL, LoginMinDuration: time.Millisecond},
		web.Deps{Directory: fakeDir{}, Sessions: sessions, Limiter: lim, CSRFKey: []byte(strings.Repeat("c", 32)),
			Mounts: append([]web.Mount{f.idp}, more...)})
	if err != nil {
		t.Fatalf("web: %v", err)
	}
	return srv
}

// browser is an HTTP client with cookies that does not follow redirects.
func browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func readBody(t testing.TB, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newTestServer(t testing.TB, h http.Handler) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// password is a sign-in with a password alone, checked at the fixture's
// time.
func (f *fixture) password() identity.Authn { return identity.PasswordOnly(f.clock.Now()) }
