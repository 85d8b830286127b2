package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

// testCA is a throwaway certificate authority written to files.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string // path
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustf(t, err, "key")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	mustf(t, err, "ca cert")
	cert, _ := x509.ParseCertificate(der)
	p := filepath.Join(dir, name+".pem")
	writePEM(t, p, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, certPEM: p}
}

// issue writes a leaf certificate and key; returns their paths.
func (ca *testCA) issue(t *testing.T, dir, name string, client bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustf(t, err, "key")
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"redis.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	mustf(t, err, "leaf cert")
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	mustf(t, err, "marshal key")
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	mustf(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600), "write %s", path)
}

// TestTLSAndAuth starts redis-server with TLS only (client certificates
// required) and an ACL user, and checks that Open verifies the server
// against the configured CA and server name, presents the client
// certificate, and authenticates; and that each wrong setting fails with
// ErrUnavailable.
func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "ca")
	other := newCA(t, dir, "other-ca")
	srvCert, srvKey := ca.issue(t, dir, "server", false)
	cliCert, cliKey := ca.issue(t, dir, "client", true)
	strangerCert, strangerKey := other.issue(t, dir, "stranger", true)

	port := freePort(t, false)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	probeCert, err := tls.LoadX509KeyPair(cliCert, cliKey)
	mustf(t, err, "load client pair")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	startRedisProbe(t, port, &redis.Options{
		Addr: addr, Username: "warden", Password: "s3cret-pw", MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		TLSConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{probeCert}, ServerName: "redis.test", MinVersion: tls.VersionTLS12},
	},
		"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-ca-cert-file", ca.certPEM,
		"--tls-auth-clients", "yes",
		"--user", "default", "off",
		"--user", "warden", "on", ">s3cret-pw", "~*", "&*", "+@all",
	)

	good := func() store.RedisConfig {
		c := store.RedisConfig{Addrs: []string{addr}, Username: "warden", Password: "s3cret-pw", KeyPrefix: uniquePrefix(),
			DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}
		c.TLS.Enabled, c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ServerName = true, ca.certPEM, cliCert, cliKey, "redis.test"
		return c
	}
	ctx := context.Background()

	t.Run("good", func(t *testing.T) {
		st := openCfg(t, good())
		s := newSessions(t, st, newClock())
		tok, _, err := s.Create(ctx, user("u-tls", "alice"), store.SessionMeta{})
		mustf(t, err, "create over TLS")
		_, err = s.Get(ctx, tok)
		mustf(t, err, "get over TLS")
	})
	t.Run("ip_san_without_server_name", func(t *testing.T) {
		c := good()
		c.TLS.ServerName = "" // verified against the address, 127.0.0.1 (an IP SAN)
		openCfg(t, c)
	})

	bad := map[string]func(*store.RedisConfig){
		"wrong_ca":           func(c *store.RedisConfig) { c.TLS.CAFile = other.certPEM },
		"wrong_server_name":  func(c *store.RedisConfig) { c.TLS.ServerName = "elsewhere.test" },
		"no_client_cert":     func(c *store.RedisConfig) { c.TLS.CertFile, c.TLS.KeyFile = "", "" },
		"foreign_client_crt": func(c *store.RedisConfig) { c.TLS.CertFile, c.TLS.KeyFile = strangerCert, strangerKey },
		"wrong_password":     func(c *store.RedisConfig) { c.Password = "nope" },
		"no_tls": func(c *store.RedisConfig) {
			c.TLS.Enabled, c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ServerName = false, "", "", "", ""
		},
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			c := good()
			mut(&c)
			start := time.Now()
			st, err := store.Open(ctx, c, testLogger(t))
			if err == nil {
				_ = st.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			// the time is logged, not asserted: a wall-clock limit fails
			// on a loaded machine
			t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}
