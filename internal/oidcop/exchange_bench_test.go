package oidcop

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
