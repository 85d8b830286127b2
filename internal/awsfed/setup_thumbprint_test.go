package awsfed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t *testing.T, cn string, parent *testCert, ca bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: ca}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{c, key}
}

// TestOIDCThumbprint: the thumbprint is the SHA-1 of the last certificate
// that the jwks_uri's server sends: the intermediate CA, or the root
// when the server sends it too.
func TestOIDCThumbprint(t *testing.T) {
	root := newCert(t, "Test Root", nil, true)
	inter := newCert(t, "Test Intermediate", root, true)
	leaf := newCert(t, "127.0.0.1", inter, false)
	pool := x509.NewCertPool()
	pool.AddCert(root.cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	sha := func(c *testCert) string { s := sha1.Sum(c.cert.Raw); return hex.EncodeToString(s[:]) }

	for _, tc := range []struct {
		name  string
		chain []*testCert
		want  string
	}{
		{"intermediate on top", []*testCert{leaf, inter}, sha(inter)},
		{"root sent too", []*testCert{leaf, inter, root}, sha(root)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/tenant/.well-known/openid-configuration":
					_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `/tenant","jwks_uri":"` + srv.URL + `/oauth/keys"}`))
				case "/oauth/keys":
					_, _ = w.Write([]byte(`{"keys":[]}`))
				default:
					http.NotFound(w, r)
				}
			}))
			var der [][]byte
			for _, c := range tc.chain {
				der = append(der, c.cert.Raw)
			}
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: der, PrivateKey: leaf.key}}}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted handshake below
			srv.StartTLS()
			defer srv.Close()
			got, err := OIDCThumbprint(context.Background(), client, srv.URL+"/tenant")
			if err != nil || got != tc.want {
				t.Fatalf("%s %v, want %s", got, err, tc.want)
			}
			if err := ValidThumbprint(got); err != nil {
				t.Error(err)
			}
			// A chain the client does not trust gives no thumbprint.
			if got, err := OIDCThumbprint(context.Background(), http.DefaultClient, srv.URL+"/tenant"); err == nil {
				t.Errorf("untrusted chain: %s", got)
			}
			// No discovery document there.
			if _, err := OIDCThumbprint(context.Background(), client, srv.URL+"/other"); err == nil || !strings.Contains(err.Error(), "404") {
				t.Errorf("missing discovery: %v", err)
			}
		})
	}
	for _, issuer := range []string{"http://127.0.0.1:8080", ""} {
		if _, err := OIDCThumbprint(context.Background(), client, issuer); err == nil || !strings.Contains(err.Error(), "not https") {
			t.Errorf("%q: %v", issuer, err)
		}
	}
	// A jwks_uri that is not https.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"jwks_uri":"http://example.com/keys"}`))
	}))
	defer srv.Close()
	if _, err := OIDCThumbprint(context.Background(), srv.Client(), srv.URL); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Errorf("http jwks_uri: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 40), strings.Repeat("a", 41)} {
		if ValidThumbprint(bad) == nil {
			t.Errorf("ValidThumbprint(%q) = nil", bad)
		}
	}
	if ValidThumbprint(strings.Repeat("AB", 20)) != nil {
		t.Error("upper case refused")
	}
}
