package oidcop_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/oidcop"
)

// benchClient keeps connections alive across parallel goroutines.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}, Timeout: 10 * time.Second}

func postForm(b *testing.B, u string, form url.Values) (int, map[string]any) {
	res, err := benchClient.PostForm(u, form)
	if err != nil {
		b.Error(err)
		return 0, nil
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return res.StatusCode, m
}

// deviceTokens runs a device authorization for bob through the HTTP API
// and returns the refresh token.
func deviceTokens(b *testing.B, s *stack) string {
	status, da := postForm(b, s.base+"/oauth/device_authorization", url.Values{"client_id": {oidcop.CLIClientID}, "scope": {"openid offline_access"}})
	if status != 200 {
		b.Fatalf("device authorization: %d %v", status, da)
	}
	bob, err := s.dir.Lookup(b.Context(), "bob")
	if err != nil {
		b.Fatal(err)
	}
	if err := s.p.ApproveDevice(b.Context(), da["user_code"].(string), bob, identity.Authn{}); err != nil {
		b.Fatal(err)
	}
	status, tok := postForm(b, s.base+"/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da["device_code"].(string)}, "client_id": {oidcop.CLIClientID}})
	if status != 200 {
		b.Fatalf("device token: %d %v", status, tok)
	}
	return tok["refresh_token"].(string)
}

// BenchmarkRefreshGrant: POST /oauth/token grant_type=refresh_token through
// the whole server (web middleware, zitadel, two Redis round trips, a
// fresh OpenLDAP lookup of the user, an RS256 ID token), each goroutine
// rotating its own family. Target: ≥ 800/s on 2 cores.
func BenchmarkRefreshGrant(b *testing.B) {
	s := newStack(b, nil)
	var next atomic.Int64
	const families = 64
	tokens := make([]string, families)
	for i := range tokens {
		tokens[i] = deviceTokens(b, s)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % families
		rt := tokens[i]
		for pb.Next() {
			status, tok := postForm(b, s.base+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
				"refresh_token": {rt}, "client_id": {oidcop.CLIClientID}})
			if status != 200 {
				b.Errorf("refresh: %d %v", status, tok)
				return
			}
			rt = tok["refresh_token"].(string)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refresh/s")
}

// BenchmarkDevicePoll: a CLI polling POST /oauth/token with a pending
// device code, through the whole server: one Redis round trip (a Lua
// script) per poll. Polling this fast, the answers after each code's first
// are slow_down: the same script and round trip as authorization_pending
// (a moving clock would expire the codes). Target: ≥ 2,000/s on 2 cores.
func BenchmarkDevicePoll(b *testing.B) {
	s := newStack(b, nil)
	const codes = 64
	dcs := make([]string, codes)
	for i := range dcs {
		status, da := postForm(b, s.base+"/oauth/device_authorization", url.Values{"client_id": {oidcop.CLIClientID}, "scope": {"openid"}})
		if status != 200 {
			b.Fatalf("device authorization: %d", status)
		}
		dcs[i] = da["device_code"].(string)
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dc := dcs[int(next.Add(1)-1)%codes]
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}, "client_id": {oidcop.CLIClientID}}
		for pb.Next() {
			status, body := postForm(b, s.base+"/oauth/token", form)
			if status != 400 || (body["error"] != "authorization_pending" && body["error"] != "slow_down") {
				b.Errorf("poll: %d %v", status, body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
}
