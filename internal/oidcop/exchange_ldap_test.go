package oidcop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
	"github.com/wardenidp/warden/internal/web"
)

// xStack is the real thing: the Provider with the exchange installed, on
// the real Redis and OpenLDAP, behind the web server.
type xStack struct {
	srv   *httptest.Server
	p     *Provider
	dir   *ldap.Directory
	audit *xAudit
	env   map[string]string
}

func newXStack(t testing.TB) *xStack { return newXStackOn(t, "") }

// newXStackOn is newXStack on the Redis at redisAddr ("" = REDIS_ADDR),
// with short timeouts when redisAddr is given (outage tests).
func newXStackOn(t testing.TB, redisAddr string) *xStack {
	return newXStackKeys(t, redisAddr, xKeyRing(t))
}

// newXStackKeys is newXStackOn with the Provider's token keys (SAML signs
// with xKeyRing either way); the Provider signs with tk's algorithm.
func newXStackKeys(t testing.TB, redisAddr string, tk KeyRing) *xStack {
	t.Helper()
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_GROUPS_DN",
		"LDAP_ADMIN_DN", "LDAP_ADMIN_PW", "REDIS_ADDR")
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rc := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	if redisAddr != "" {
		rc = store.RedisConfig{Addrs: []string{redisAddr}, DialTimeout: 300 * time.Millisecond,
			ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	}
	rc.SetDefaults()
	rc.KeyPrefix = fmt.Sprintf("warden-exchange-%d:", time.Now().UnixNano())
	st, err := store.Open(ctx, rc, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	dc := ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"]}
	dc.ApplyPreset()
	dc.SetDefaults()
	dir, err := ldap.New(dc, ldap.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dir.Close() })
	s := &xStack{dir: dir, audit: &xAudit{}, env: env}
	s.srv = httptest.NewUnstartedServer(nil)
	public := "http://" + s.srv.Listener.Addr().String()
	ring, rules := xKeyRing(t), xRules(t)
	idp, err := samlidp.New(samlidp.Config{}, samlidp.Deps{Keys: ring, Rules: rules, Replay: store.NewSAMLReplay(st),
		Pending: store.NewSAMLPending(st, nil), Audit: s.audit, Logger: logger, PublicURL: public,
		NameIDKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	if s.p, err = New(Config{SigningAlgorithm: tk.Current().Alg}, Deps{Keys: tk, Store: st, Directory: dir, Rules: rules, Audit: s.audit, Logger: logger,
		PublicURL: public, SubjectKey: bytes.Repeat([]byte{5}, 32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.p.InstallTokenExchange(ExchangeConfig{}, ExchangeDeps{SAML: idp, Audit: s.audit, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	var sc store.SessionConfig
	sc.SetDefaults()
	sessions, err := store.NewSessions(st, sc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lc store.LimitConfig
	lc.SetDefaults()
	limiter, err := store.NewLimiter(st, lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := web.New(web.Config{PublicURL: public}, web.Deps{Directory: dir, Sessions: sessions, Limiter: limiter,
		CSRFKey: bytes.Repeat([]byte{9}, 32), Logger: logger, Mounts: []web.Mount{s.p}})
	if err != nil {
		t.Fatal(err)
	}
	s.srv.Config.Handler = ws.Handler()
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// postJSON posts a form and decodes the JSON answer.
func (s *xStack) postJSON(t testing.TB, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %d, not JSON: %q", path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// accessToken signs username in through the device grant (approved
// through the Provider's API, as the /device page does) and returns the
// CLI's access token.
func (s *xStack) accessToken(t testing.TB, username string) string {
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
	if code != http.StatusOK || tok["access_token"] == nil {
		t.Fatalf("device token: %d %v", code, tok)
	}
	return tok["access_token"].(string)
}

func (s *xStack) exchange(t testing.TB, token, requested, role string) (int, map[string]any) {
	t.Helper()
	f := xForm(token, requested, role)
	f.Set("client_id", CLIClientID)
	return s.postJSON(t, "/oauth/token", f)
}

// ldapModify runs ldapmodify as the directory's admin.
func (s *xStack) ldapModify(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command("ldapmodify", "-x", "-H", s.env["LDAP_URL"], "-D", s.env["LDAP_ADMIN_DN"], "-w", s.env["LDAP_ADMIN_PW"])
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v: %s", err, out)
	}
}

// TestExchangeRealStack: the device grant's access token, exchanged at the
// real token endpoint for both token types; bob removed from developers
// in OpenLDAP loses the role at the next exchange, and gets it back.
func TestExchangeRealStack(t *testing.T) {
	s := newXStack(t)
	tok := s.accessToken(t, "bob")
	for _, typ := range []string{TokenTypeSAML2, TokenTypeIDToken} {
		if code, r := s.exchange(t, tok, typ, xProdRO); code != http.StatusOK || r["issued_token_type"] != typ {
			t.Fatalf("%s: %d %v", typ, code, r)
		}
	}
	member := "dn: cn=developers," + s.env["LDAP_GROUPS_DN"] + "\nchangetype: modify\n%s: member\nmember: uid=bob,ou=people," + s.env["LDAP_BASE_DN"] + "\n"
	s.ldapModify(t, fmt.Sprintf(member, "delete"))
	var once sync.Once
	restore := func() { once.Do(func() { s.ldapModify(t, fmt.Sprintf(member, "add")) }) }
	t.Cleanup(restore)
	for _, typ := range []string{TokenTypeSAML2, TokenTypeIDToken} {
		code, r := s.exchange(t, tok, typ, xProdRO)
		if code != http.StatusBadRequest || r["error"] != "invalid_target" || r["request_id"] == "" {
			t.Fatalf("%s after removal: %d %v", typ, code, r)
		}
	}
	if ev, ok := s.audit.find("token.exchange", "denied", xProdRO); !ok || ev.Actor != "bob" {
		t.Errorf("denial not audited: %+v", s.audit.events)
	}
	restore()
	if code, r := s.exchange(t, tok, TokenTypeSAML2, xProdRO); code != http.StatusOK {
		t.Fatalf("after restore: %d %v", code, r)
	}
	// The real token endpoint's refusals.
	for name, tc := range map[string]struct {
		form url.Values
		code string
	}{
		"foreign token":    {xForm("not-a-token", TokenTypeSAML2, xProdRO), "invalid_request"},
		"not a role ARN":   {xForm(tok, TokenTypeSAML2, "arn:aws:s3:::bucket"), "invalid_target"},
		"role not held":    {xForm(tok, TokenTypeIDToken, xProdAdmin), "invalid_target"},
		"no client":        {xForm(tok, TokenTypeSAML2, xProdRO), "invalid_client"},
		"requested jwt":    {xForm(tok, "urn:ietf:params:oauth:token-type:jwt", xProdRO), "invalid_request"},
		"oversized params": {xForm(strings.Repeat("t", 5000), TokenTypeSAML2, xProdRO), "invalid_request"},
	} {
		if name != "no client" {
			tc.form.Set("client_id", CLIClientID)
		}
		code, r := s.postJSON(t, "/oauth/token", tc.form)
		if code >= 500 || r["error"] != tc.code {
			t.Errorf("%s: %d %v, want %s", name, code, r, tc.code)
		}
	}
	// A revoked access token is refused.
	resp, err := http.PostForm(s.srv.URL+"/oauth/revoke", url.Values{"token": {tok}, "client_id": {CLIClientID}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, r := s.exchange(t, tok, TokenTypeSAML2, xProdRO); code != http.StatusBadRequest || r["error"] != "invalid_request" {
		t.Errorf("revoked token: %d %v", code, r)
	}
}
