package oidcop

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenidp/warden/internal/keys"
)

// BenchmarkExchangeSAML: the SAML token exchange at the real token
// endpoint, on the real Redis (access token) and OpenLDAP (a fresh lookup
// of bob with his nested groups), the rules and one RSA signature, with
// parallel clients over keep-alive connections. Target (issue 5): ≥ 600/s
// on 2 cores.
func BenchmarkExchangeSAML(b *testing.B) {
	benchExchange(b, TokenTypeSAML2)
}

// BenchmarkExchangeIDToken: the same for the web-identity token.
func BenchmarkExchangeIDToken(b *testing.B) {
	benchExchange(b, TokenTypeIDToken)
}

func benchExchange(b *testing.B, typ string) {
	benchExchangeOn(b, newXStack(b), typ)
}

func benchExchangeOn(b *testing.B, s *xStack, typ string) {
	tok := s.accessToken(b, "bob")
	f := xForm(tok, typ, xProdRO)
	f.Set("client_id", CLIClientID)
	body := f.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(s.srv.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}

// BenchmarkSignWebIdentity: Provider.SignJWT of a web-identity token (its
// claims as the exchange builds them) with RS256 (RSA-2048) and with
// ES256 (P-256), side by side; one core.
func BenchmarkSignWebIdentity(b *testing.B) {
	now := time.Now()
	c := webIdentityClaims{Issuer: xIssuer, Subject: strings.Repeat("s", 43), Audience: "sts.amazonaws.com",
		Expiry: now.Add(5 * time.Minute).Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), ID: strings.Repeat("j", 22),
		AMR: []string{"pwd"}, ACR: "urn:warden:acr:password",
		Tags: AWSTags{PrincipalTags: map[string][]string{"department": {"Apps"}, "warden-authn": {"password"}}, TransitiveTagKeys: []string{"department"}}}
	for _, alg := range []string{keys.AlgRS256, keys.AlgES256} {
		b.Run(alg, func(b *testing.B) {
			p := &Provider{keys: xTokenKeys(b, alg)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.SignJWT(c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkExchangeWebIdentityAlg: the whole exchange to a web-identity
// token (as BenchmarkExchangeIDToken) with the Provider signing RS256 and
// ES256, side by side in one run.
func BenchmarkExchangeWebIdentityAlg(b *testing.B) {
	for _, alg := range []string{keys.AlgRS256, keys.AlgES256} {
		b.Run(alg, func(b *testing.B) {
			benchExchangeOn(b, newXStackKeys(b, "", xTokenKeys(b, alg)), TokenTypeIDToken)
		})
	}
}

// BenchmarkWorkloadWebIdentity: a workload's whole flow at the real token
// endpoint, ES256 tokens, on the real Redis: client_credentials with an
// ES256 private_key_jwt assertion (signature check, jti recorded in
// Redis), then the exchange of the access token for a role-scoped
// web-identity token. The assertions are made before the timer starts
// (a workload makes its own, on its own machine). Target: ≥ 1,500
// flows/s on 2 cores.
func BenchmarkWorkloadWebIdentity(b *testing.B) {
	f := newWLFixture(b)
	f.p.wl.cfg.RateLimit = WorkloadRateLimit{PerSecond: 1e6, Burst: 1e6}
	assertions := make(chan string, b.N)
	for range b.N {
		assertions <- ccForm(wlID, assertion(b, jose.ES256, f.ec, "ec-2026", f.claims(wlID, nil))).Encode()
	}
	close(assertions)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(body string) (map[string]any, bool) {
		resp, err := client.Post(f.tokenEndpoint, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			b.Error(err)
			return nil, false
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
			b.Errorf("status %d %v", resp.StatusCode, m)
			return nil, false
		}
		return m, true
	}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m, ok := post(<-assertions)
			if !ok {
				return
			}
			if _, ok := post(xForm(m["access_token"].(string), TokenTypeIDToken, xStaging).Encode()); !ok {
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
}
