package oidcop_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestRedisOutage: with Redis gone, OAuth endpoints answer 503
// temporarily_unavailable, never a rejection of the client's input
// (invalid_grant) and never a 500 or internal detail.
func TestRedisOutage(t *testing.T) {
	rs := testenv.OwnRedis(t)
	addr, stop := rs.Addr, rs.Kill
	s := newStackOn(t, addr, nil)
	b := s.browser(t)
	b.login("bob", "/") // sessions live in this Redis too
	tok, _ := codeFlow(t, s, b, webConfig(s, "openid", "offline_access"), "n")
	da := url.Values{"client_id": {oidcop.CLIClientID}, "scope": {"openid"}}
	status, dev := s.form(t, "/oauth/device_authorization", da)
	if status != 200 {
		t.Fatalf("device authorization: %d", status)
	}
	stop()

	cases := []struct {
		name string
		path string
		form url.Values
		auth []string
	}{
		{"refresh", "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, []string{webClientID, webClientSecret}},
		{"device poll", "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dev["device_code"].(string)}, "client_id": {oidcop.CLIClientID}}, nil},
		{"device authorization", "/oauth/device_authorization", da, nil},
		{"introspect", "/oauth/introspect", url.Values{"token": {tok.AccessToken}}, []string{webClientID, webClientSecret}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.form(t, tc.path, tc.form, tc.auth...)
			if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
				t.Fatalf("%d %v", status, body)
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, "127.0.0.1") || strings.Contains(d, "redis") {
				t.Errorf("internal detail: %q", d)
			}
		})
	}
	if code, body := s.userinfo(t, tok.AccessToken); code != http.StatusServiceUnavailable {
		t.Errorf("userinfo: %d %v", code, body)
	}
}
