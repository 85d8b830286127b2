package web

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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warden test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServe(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t)
	tests := []struct {
		name   string
		tls    bool
		scheme string
	}{{"plain http", false, "http"}, {"tls", true, "https"}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := func(c *Config, _ *Deps) {
				c.PublicURL = tc.scheme + "://127.0.0.1"
				if tc.tls {
					c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
				}
			}
			e := newEnv(t, opt)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.srv.Serve(ctx, ln) }()

			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			resp, err := client.Get(tc.scheme + "://" + ln.Addr().String() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("healthz %d", resp.StatusCode)
			}
			if tc.tls && resp.Header.Get("Strict-Transport-Security") == "" {
				t.Error("no HSTS over TLS")
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve after cancel: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after cancel")
			}
			if _, err := client.Get(tc.scheme + "://" + ln.Addr().String() + "/healthz"); err == nil {
				t.Error("still serving after shutdown")
			}
		})
	}
	t.Run("listen error", func(t *testing.T) {
		e := newEnv(t, func(c *Config, _ *Deps) { c.Listen = "256.0.0.1:1" })
		if err := e.srv.Run(context.Background()); err == nil || errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Run on a bad address: %v", err)
		}
	})
}

func TestSystemClockSleep(t *testing.T) {
	var c SystemClock
	start := time.Now()
	c.Sleep(context.Background(), 30*time.Millisecond)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("slept %s, want at least 30ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	c.Sleep(ctx, time.Minute)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a cancelled Sleep took %s", d)
	}
	c.Sleep(context.Background(), -time.Second) // returns at once
}
