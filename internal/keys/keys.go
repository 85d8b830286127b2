// Package keys owns Warden's signing keys and their certificates.
//
// This first version loads the current RSA signing key and its self-signed
// certificate from a directory, generating them on first start (dev mode, or
// a fresh data_dir). Rotation (next / current / previous, published before
// use) and the JWKS come with the SAML and OIDC steps.
package keys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names inside the key directory.
const (
	keyFile  = "signing-key.pem"
	certFile = "signing-cert.pem"
)

// Signer is one signing key and the certificate that publishes it.
type Signer struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// Fingerprint is the hex SHA-256 of the certificate's DER bytes (what
// operators compare with the metadata uploaded to IAM).
func (s Signer) Fingerprint() string {
	sum := sha256.Sum256(s.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Options for LoadOrGenerate. Zero values mean: 2048-bit keys, crypto/rand,
// time.Now, certificates valid 10 years, subject CN "Warden".
type Options struct {
	Bits     int
	Rand     io.Reader
	Now      func() time.Time
	Validity time.Duration
	Subject  string
}

// LoadOrGenerate reads the signing key and certificate from dir, creating dir
// (0700) and both files (0600) when neither exists. When only one of the two
// exists, it refuses rather than overwrite a key an IdP may have published.
func LoadOrGenerate(dir string, o Options) (Signer, bool, error) {
	if o.Bits == 0 {
		o.Bits = 2048
	}
	if o.Bits != 2048 && o.Bits != 3072 && o.Bits != 4096 {
		return Signer{}, false, fmt.Errorf("keys: key size %d not supported (2048, 3072, 4096)", o.Bits)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Validity == 0 {
		o.Validity = 10 * 365 * 24 * time.Hour
	}
	if o.Subject == "" {
		o.Subject = "Warden"
	}
	kp, cp := filepath.Join(dir, keyFile), filepath.Join(dir, certFile)
	_, kerr := os.Stat(kp)
	_, cerr := os.Stat(cp)
	switch {
	case kerr == nil && cerr == nil:
		s, err := load(kp, cp)
		return s, false, err
	case errors.Is(kerr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist):
		s, err := generate(dir, kp, cp, o)
		return s, err == nil, err
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return Signer{}, false, fmt.Errorf("keys: %w", kerr)
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return Signer{}, false, fmt.Errorf("keys: %w", cerr)
	default:
		return Signer{}, false, fmt.Errorf("keys: only one of %s and %s exists in %s; restore the other or remove both", keyFile, certFile, dir)
	}
}

func load(kp, cp string) (Signer, error) {
	kb, err := os.ReadFile(kp)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	cb, err := os.ReadFile(cp)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return Signer{}, fmt.Errorf("keys: %s: no PEM block", kp)
	}
	anyKey, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %s: %w", kp, err)
	}
	key, ok := anyKey.(*rsa.PrivateKey)
	if !ok {
		return Signer{}, fmt.Errorf("keys: %s: not an RSA key (AWS requires RSA)", kp)
	}
	cblk, _ := pem.Decode(cb)
	if cblk == nil {
		return Signer{}, fmt.Errorf("keys: %s: no PEM block", cp)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %s: %w", cp, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return Signer{}, fmt.Errorf("keys: %s does not certify the key in %s", cp, kp)
	}
	return Signer{Key: key, Cert: cert}, nil
}

func generate(dir, kp, cp string, o Options) (Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	key, err := rsa.GenerateKey(o.Rand, o.Bits)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: generate: %w", err)
	}
	serial, err := rand.Int(o.Rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Signer{}, fmt.Errorf("keys: serial: %w", err)
	}
	now := o.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.Subject},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(o.Rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	if err := writeExclusive(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})); err != nil {
		return Signer{}, err
	}
	if err := writeExclusive(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return Signer{}, err
	}
	return Signer{Key: key, Cert: cert}, nil
}

// writeExclusive creates path with mode 0600, failing if it exists (two
// replicas starting at once on one data_dir must not overwrite each other).
func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keys: sync %s: %w", path, err)
	}
	return f.Close()
}
