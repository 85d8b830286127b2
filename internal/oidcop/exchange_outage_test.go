package oidcop

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestExchangeRedisOutage: with Redis stopped (SIGSTOP: connections hang
// until the read timeout) and with Redis killed (connection refused),
// every OAuth path that needs the token store answers 503
// temporarily_unavailable with the request ID header, never "not a valid
// access token" or invalid_grant: the token exchange for both token
// types, refresh, userinfo, introspection and revocation.
func TestExchangeRedisOutage(t *testing.T) {
	rs := testenv.OwnRedis(t)
	addr, proc := rs.Addr, rs.Cmd
	s := newXStackOn(t, addr)

	// Tokens from the device grant, while Redis is up.
	code, da := s.postJSON(t, "/oauth/device_authorization", url.Values{"client_id": {CLIClientID}, "scope": {"openid offline_access"}})
	if code != http.StatusOK {
		t.Fatalf("device authorization: %d %v", code, da)
	}
	user, err := s.dir.Lookup(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.p.ApproveDevice(t.Context(), da["user_code"].(string), user, identity.Authn{}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	code, tok := s.postJSON(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da["device_code"].(string)}, "client_id": {CLIClientID}})
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if code != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("device token: %d %v", code, tok)
	}
	if code, r := s.exchange(t, access, TokenTypeSAML2, xProdRO); code != http.StatusOK {
		t.Fatalf("exchange while up: %d %v", code, r)
	}

	type call struct {
		name   string
		method string
		path   string
		form   url.Values
		bearer string
	}
	exch := func(typ string) url.Values {
		f := xForm(access, typ, xProdRO)
		f.Set("client_id", CLIClientID)
		return f
	}
	calls := []call{
		{"exchange saml2", http.MethodPost, "/oauth/token", exch(TokenTypeSAML2), ""},
		{"exchange id_token", http.MethodPost, "/oauth/token", exch(TokenTypeIDToken), ""},
		{"refresh", http.MethodPost, "/oauth/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {refresh}, "client_id": {CLIClientID}}, ""},
		{"userinfo", http.MethodGet, "/oauth/userinfo", nil, access},
		{"introspect", http.MethodPost, "/oauth/introspect", url.Values{"token": {access}, "client_id": {CLIClientID}}, ""},
		{"revoke", http.MethodPost, "/oauth/revoke", url.Values{"token": {refresh}, "client_id": {CLIClientID}}, ""},
	}
	check := func(t *testing.T) {
		for _, c := range calls {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				var body io.Reader
				if c.form != nil {
					body = strings.NewReader(c.form.Encode())
				}
				req, _ := http.NewRequest(c.method, s.srv.URL+c.path, body)
				if c.form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if c.bearer != "" {
					req.Header.Set("Authorization", "Bearer "+c.bearer)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				raw, _ := io.ReadAll(res.Body)
				var m map[string]any
				_ = json.Unmarshal(raw, &m)
				if c.name == "introspect" && m["error"] == "invalid_client" {
					// Introspection is for confidential clients: refused
					// before any token is looked up (see routes.go).
					return
				}
				if res.StatusCode != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
					t.Fatalf("%d %s, want 503 temporarily_unavailable", res.StatusCode, raw)
				}
				if res.Header.Get("X-Request-ID") == "" {
					t.Error("no X-Request-ID header")
				}
				if strings.Contains(string(raw), "127.0.0.1") || strings.Contains(strings.ToLower(string(raw)), "redis") {
					t.Errorf("internal detail in the answer: %s", raw)
				}
			})
		}
	}

	if err := proc.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Run("stopped", check)
	if err := proc.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	_ = proc.Process.Kill()
	_ = proc.Wait()
	t.Run("killed", check)
}
