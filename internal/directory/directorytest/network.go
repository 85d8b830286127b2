package directorytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

// DeadURL returns an ldap:// URL on 127.0.0.1 where nothing listens: it
// listens on a free port and closes it again.
func DeadURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "ldap://" + addr
}

// WrongCA writes a freshly generated, self-signed CA certificate that signed
// nothing the server has, and returns its path.
func WrongCA(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "warden throwaway test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "wrong-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// probeEvery is the shortest wait between two background probes of a down
// server (ldap's backoffMin).
const probeEvery = 2 * time.Second

func testFailover(t *testing.T, f Fixture) {
	if f.Failover == nil {
		t.Skip("fixture has no Failover")
	}
	rec := &Recorder{}
	dead := DeadURL(t)
	d := f.Failover(t, rec, dead)
	defer d.Close()
	// How long the failover takes is measured by
	// BenchmarkSignInFirstServerDead (internal/directory/ldap), not
	// asserted here: a wall-clock limit fails on a loaded machine.
	u, err := d.Authenticate(ctxT(t), "bob", f.Password)
	if err != nil {
		t.Fatalf("with a dead first URL: %v", err)
	}
	checkUser(t, f, "bob", u)
	if n := rec.CountServer("dial", dead); n < 1 {
		t.Errorf("the dead URL was not tried first (dials: %d)", n)
	}
	// The dead server backs off: later requests go straight to the live one
	// and do not dial the dead one each time. The background prober may
	// dial it once per backoff period (at least probeEvery apart), so the
	// allowance grows with the time the loop took, not with the requests:
	// on a loaded machine the loop is slow, and that is no failure.
	before := rec.CountServer("dial", dead)
	start := time.Now()
	const n = 10
	for range n {
		if _, err := d.Authenticate(ctxT(t), "carol", f.Password); err != nil {
			t.Fatalf("later request: %v", err)
		}
		if err := d.Ping(ctxT(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	took := time.Since(start)
	if redials, allowed := rec.CountServer("dial", dead)-before, n/4+int(took/probeEvery); redials > allowed {
		t.Errorf("dead URL dialled %d times in %d requests over %v (allowed %d): no backoff",
			redials, 2*n, took.Round(time.Millisecond), allowed)
	}
}

func testTLS(t *testing.T, f Fixture) {
	if f.TLS == nil {
		t.Skip("fixture has no TLS")
	}
	wrong := WrongCA(t)
	for _, mode := range []TLSMode{LDAPS, StartTLS} {
		t.Run(string(mode), func(t *testing.T) {
			d := f.TLS(t, mode, "")
			if d == nil {
				t.Skipf("%s not offered by this server", mode)
			}
			defer d.Close()
			u, err := d.Authenticate(ctxT(t), "bob", f.Password)
			if err != nil {
				t.Fatalf("%s with the right CA: %v", mode, err)
			}
			checkUser(t, f, "bob", u)
		})
		t.Run(string(mode)+"/wrong-CA", func(t *testing.T) {
			d := f.TLS(t, mode, wrong)
			if d == nil {
				t.Skipf("%s not offered by this server", mode)
			}
			defer d.Close()
			_, err := d.Authenticate(ctxT(t), "bob", f.Password)
			if !errors.Is(err, identity.ErrDirectoryUnavailable) || identity.IsRejection(err) {
				t.Fatalf("%s with a wrong CA: %v, want ErrDirectoryUnavailable and no rejection", mode, err)
			}
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("wrong CA error does not say why: %v", err)
			}
			if err := d.Ping(ctxT(t)); !errors.Is(err, identity.ErrDirectoryUnavailable) {
				t.Errorf("Ping with a wrong CA: %v", err)
			}
		})
	}
}

func testOutage(t *testing.T, f Fixture) {
	if f.Outage == nil {
		t.Skip("fixture has no Outage")
	}
	d, stop, start := f.Outage(t)
	defer d.Close()
	if _, err := d.Authenticate(ctxT(t), "bob", f.Password); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	stop()
	for _, pw := range []string{f.Password, f.Password + "x"} {
		_, err := d.Authenticate(ctxT(t), "bob", pw)
		if !errors.Is(err, identity.ErrDirectoryUnavailable) || identity.IsRejection(err) {
			t.Fatalf("during the outage: %v, want ErrDirectoryUnavailable, never a rejection", err)
		}
	}
	if _, err := d.Lookup(ctxT(t), "bob"); !errors.Is(err, identity.ErrDirectoryUnavailable) {
		t.Errorf("Lookup during the outage: %v", err)
	}
	if err := d.Ping(ctxT(t)); !errors.Is(err, identity.ErrDirectoryUnavailable) {
		t.Errorf("Ping during the outage: %v", err)
	}
	start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := d.Authenticate(ctxT(t), "bob", f.Password)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 10s after the server came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := d.Authenticate(ctxT(t), "bob", f.Password+"x"); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Errorf("wrong password after recovery: %v", err)
	}
}
