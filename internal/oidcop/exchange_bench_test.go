package oidcop

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
	s := newXStack(b)
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
