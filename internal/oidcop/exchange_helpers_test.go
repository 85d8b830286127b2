package oidcop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
)

// Test fixtures of the exchange, prefixed x* so as not to collide with the
// Provider's own test helpers.

const (
	xIssuer    = "https://sso.example.org"
	xClient    = "warden-cli"
	xProdRO    = "arn:aws:iam::111122223333:role/ReadOnly"
	xProdAdmin = "arn:aws:iam::111122223333:role/Admin"
	xStaging   = "arn:aws:iam::444455556666:role/Deploy"
	xGovAdmin  = "arn:aws-us-gov:iam::777788889999:role/Admin"
	// Roles of the oncall rule: a second factor, a passkey.
	xProdMFA     = "arn:aws:iam::111122223333:role/OnCall"
	xProdPasskey = "arn:aws:iam::111122223333:role/BreakGlass"
)

func xGroup(name string) identity.Group {
	return identity.Group{DN: "cn=" + name + ",ou=groups,dc=example,dc=org", Name: name, Direct: true}
}

func xUsers() map[string]identity.User {
	return map[string]identity.User{
		"bob": {ID: "id-bob", Username: "bob", DisplayName: "Bob Brown", Email: "bob@example.org",
			Groups:     []identity.Group{xGroup("developers"), xGroup("engineering"), xGroup("staff"), xGroup("company")},
			Attributes: map[string][]string{"departmentnumber": {"Apps"}}},
		"alice": {ID: "id-alice", Username: "alice", DisplayName: "Alice Anderson", Email: "alice@example.org",
			Groups: []identity.Group{xGroup("admins"), xGroup("engineering")}},
		"frank": {ID: "id-frank", Username: "frank", DisplayName: "Frank Fischer"},
		"mia": {ID: "id-mia", Username: "mia", DisplayName: "Mia Meyer", Email: "mia@example.org",
			Groups: []identity.Group{xGroup("oncall")}},
	}
}

// xRuleSet grants by group; the same groups exist in the seed directory.
func xRuleSet() rolemap.RuleSet {
	return rolemap.RuleSet{
		Accounts: []rolemap.Account{
			{ID: "111122223333", Name: "prod", SAMLProvider: "warden"},
			{ID: "444455556666", Name: "staging", SAMLProvider: "warden"},
			{ID: "777788889999", Name: "gov", Partition: "aws-us-gov", SAMLProvider: "warden"},
		},
		Grants: []rolemap.GrantRule{
			{ID: "developers", Group: "developers", Roles: []rolemap.RoleRef{{ARN: xProdRO, MaxSessionSeconds: 7200}}},
			{ID: "admins", Group: "admins", Roles: []rolemap.RoleRef{{ARN: xProdAdmin}, {ARN: xGovAdmin}}},
			{ID: "engineering", Group: "engineering", Roles: []rolemap.RoleRef{{ARN: xStaging, MaxSessionSeconds: 900}}},
			// Roles that demand a second factor: any, or a passkey only.
			{ID: "oncall", Group: "oncall", Roles: []rolemap.RoleRef{{ARN: xProdMFA, RequireMFA: true},
				{ARN: xProdPasskey, MFAMethods: []string{identity.MethodWebAuthn}}}},
		},
		Tags: rolemap.TagRules{
			Attributes: []rolemap.TagAttribute{
				{Attribute: "email", Key: "email"},
				{Attribute: "departmentnumber", Key: "department", Transitive: true},
			},
			SourceIdentity: "username",
		},
	}
}

func xRules(t testing.TB) *rolemap.Holder {
	t.Helper()
	e, err := rolemap.Compile(xRuleSet())
	if err != nil {
		t.Fatal(err)
	}
	var h rolemap.Holder
	h.Store(e)
	return &h
}

// xDirectory is a directory whose answers a test changes.
type xDirectory struct {
	mu    sync.Mutex
	users map[string]identity.User
	err   error
	calls int
}

func (d *xDirectory) Lookup(_ context.Context, username string) (identity.User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.err != nil {
		return identity.User{}, d.err
	}
	u, ok := d.users[username]
	if !ok {
		return identity.User{}, fmt.Errorf("fake: %w", identity.ErrUserNotFound)
	}
	return u, nil
}

func (d *xDirectory) set(u identity.User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[u.Username] = u
}

// xAccess knows some access tokens; every other token is "expired,
// revoked or foreign".
type xAccess struct {
	mu     sync.Mutex
	tokens map[string]ExchangeSubject
	err    error
}

var errXToken = errors.New("fake: token unknown, expired or revoked")

func (a *xAccess) verify(_ context.Context, token string) (ExchangeSubject, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return ExchangeSubject{}, a.err
	}
	s, ok := a.tokens[token]
	if !ok {
		return ExchangeSubject{}, errXToken
	}
	return s, nil
}

func (a *xAccess) add(token string, u identity.User) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[token] = ExchangeSubject{Username: u.Username, UserID: u.ID, ClientID: xClient, Scopes: []string{"openid"},
		Expiry: time.Now().Add(15 * time.Minute)}
}

// addAuthn adds a token whose grant's sign-in was authn (its amr and
// auth_time, as the store keeps them).
func (a *xAccess) addAuthn(token string, u identity.User, authn identity.Authn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[token] = ExchangeSubject{Username: u.Username, UserID: u.ID, ClientID: xClient, Scopes: []string{"openid"},
		Expiry: time.Now().Add(15 * time.Minute), AMR: authn.AMR(), AuthTime: authn.Time.Truncate(time.Second)}
}

// xSubjects: base64url(HMAC-SHA256(key, user.ID)), as the Provider's sub.
type xSubjects struct{ key []byte }

func (s xSubjects) Subject(u identity.User) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(u.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// xJOSESigner signs RS256 with the ring's current key and its kid, as
// Provider.SignJWT does.
type xJOSESigner struct{ ring *keys.Ring }

func (j xJOSESigner) SignJWT(claims any) (string, error) {
	cur := j.ring.Current()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: cur.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), cur.ID))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

type xNoReplay struct{}

func (xNoReplay) Seen(context.Context, string, time.Duration) (bool, error) { return true, nil }

type xNoPending struct{}

func (xNoPending) Put(context.Context, []byte, time.Duration) (string, error) {
	return "", errors.New("unused")
}
func (xNoPending) Take(context.Context, string) ([]byte, error) { return nil, store.ErrNotFound }

// xAudit records events.
type xAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *xAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *xAudit) find(action, result, object string) (audit.Event, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := len(a.events) - 1; k >= 0; k-- { // the latest
		e := a.events[k]
		if e.Action == action && e.Result == result && e.Object == object {
			return e, true
		}
	}
	return audit.Event{}, false
}

// xRing is one real key ring per test binary (RSA generation is slow).
var xRing = sync.OnceValues(func() (*keys.Ring, error) {
	dir, err := os.MkdirTemp("", "warden-exchange-keys-")
	if err != nil {
		return nil, err
	}
	var kc keys.Config
	kc.SetDefaults()
	return keys.Open(dir, kc, keys.Options{})
})

func xKeyRing(t testing.TB) *keys.Ring {
	t.Helper()
	r, err := xRing()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// xFixture is an exchanger on the real samlidp and keys, with a fake
// directory and fake access tokens (or real ones, see the LDAP tests).
type xFixture struct {
	x      *Exchanger
	srv    *httptest.Server
	ring   *keys.Ring
	idp    *samlidp.IdP
	dir    *xDirectory
	access *xAccess
	rules  *rolemap.Holder
	audit  *xAudit
	now    time.Time
}

type xOpt func(*ExchangeConfig, *ExchangeDeps, *samlidp.Config)

func newXFixture(t testing.TB, opts ...xOpt) *xFixture {
	t.Helper()
	f := &xFixture{ring: xKeyRing(t), dir: &xDirectory{users: xUsers()}, access: &xAccess{tokens: map[string]ExchangeSubject{}},
		rules: xRules(t), audit: &xAudit{}}
	for name, u := range f.dir.users {
		f.access.add("tok-"+name, u)
	}
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := ExchangeConfig{Issuer: xIssuer}
	deps := ExchangeDeps{Access: AccessVerifierFunc(f.access.verify), Subjects: xSubjects{key: []byte("subject-key-0123456789abcdef0123")},
		Signer: xJOSESigner{f.ring}, Directory: f.dir, Rules: f.rules, Audit: f.audit, Logger: logger}
	scfg := samlidp.Config{}
	for _, o := range opts {
		o(&cfg, &deps, &scfg)
	}
	if deps.Clock != nil {
		f.now = deps.Clock()
	}
	// The IdP gets the same authentication tag and methods as the
	// exchange (as internal/app wires both from the mfa block).
	idp, err := samlidp.New(scfg, samlidp.Deps{Keys: f.ring, Rules: f.rules, Replay: xNoReplay{}, Pending: xNoPending{},
		Audit: f.audit, Logger: logger, Clock: deps.Clock, PublicURL: xIssuer, NameIDKey: []byte(strings.Repeat("n", 32)),
		AuthnTag: cfg.AuthnTag, MFAMethods: cfg.MFAMethods})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	f.idp = idp
	if deps.SAML == nil {
		deps.SAML = idp
	}
	if f.x, err = NewExchanger(cfg, deps); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.x)
	t.Cleanup(f.srv.Close)
	return f
}

// xResult is an answer of the token endpoint.
type xResult struct {
	status int
	header http.Header
	ok     ExchangeResponse
	err    struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		RequestID   string `json:"request_id"`
	}
	raw string
}

func (f *xFixture) post(t testing.TB, form url.Values) xResult {
	t.Helper()
	return xPostRaw(t, f.srv.URL, "application/x-www-form-urlencoded", form.Encode())
}

func xPostRaw(t testing.TB, u, contentType, body string) xResult {
	t.Helper()
	resp, err := http.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := xResult{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(b, &r.ok)
	} else {
		err = json.Unmarshal(b, &r.err)
	}
	if err != nil {
		t.Fatalf("status %d, body not JSON: %v: %q", resp.StatusCode, err, b)
	}
	return r
}

func xForm(token, requested, resource string) url.Values {
	v := url.Values{
		"grant_type":         {GrantTypeTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {TokenTypeAccessToken},
		"resource":           {resource},
	}
	if requested != "" {
		v.Set("requested_token_type", requested)
	}
	return v
}
