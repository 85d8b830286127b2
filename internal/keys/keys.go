// Package keys owns Warden's signing keys and their certificates.
//
// A Ring (ring.go) is the set of keys of one algorithm in one store: the RSA
// ring (RS256; SAML, and OIDC tokens by default) in data_dir/keys, and
// beside it, from the first time it is needed, the EC P-256 ring (ES256;
// OIDC tokens only, oidc.signing_algorithm: ES256). Each ring has
// exactly one current key that signs, at most one next key that is
// published (SAML metadata, JWKS) before it signs, and previous keys that
// stay published for Config.PublishPrevious after they stopped signing, so
// that assertions and tokens signed just before a rotation still verify and
// relying parties that cache metadata or a JWKS have time to follow. A small
// JSON manifest names each key's state; every file is written atomically
// (temp file, fsync, rename) so that a crash leaves the previous ring usable.
// Replicas sharing the directory follow changes through Ring.Watch.
//
// The ES256 ring is a second manifest beside the first (manifest-es256.json
// in the directory, the Redis key suffixed ":es256"), so that the RSA ring's
// files and format are those of earlier versions, and a wardend that knows
// no ES256 ignores it. TokenKeys (tokens.go) signs OIDC tokens with the ring
// of oidc.signing_algorithm and publishes both.
//
// Key IDs are RFC 7638 JWK thumbprints (base64url SHA-256), the "kid" of
// the JWKS (jwks.go).
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
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

// File names of the single key pair that step 1 kept in the key directory;
// Open migrates them into a ring (they become the current key, unchanged).
const (
	keyFile  = "signing-key.pem"
	certFile = "signing-cert.pem"
)

// Key states in the manifest and in Signer.State.
const (
	StateCurrent  = "current"  // signs now, published
	StateNext     = "next"     // published, does not sign yet
	StatePrevious = "previous" // no longer signs; published until RetiredAt + PublishPrevious
)

// Signing algorithms, one ring each. AlgRS256 is the ring SAML needs (AWS
// accepts only RSA there); AlgES256 signs OIDC tokens only.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// Signer is one signing key and the certificate that publishes it.
type Signer struct {
	// ID is the RFC 7638 thumbprint of the public key (base64url SHA-256),
	// used as the JWKS "kid".
	ID  string
	Alg string // AlgRS256 (Key is set) or AlgES256 (EC is set)
	// Key is the RSA key of an RS256 signer; nil for ES256.
	Key *rsa.PrivateKey
	// EC is the P-256 key of an ES256 signer; nil for RS256.
	EC        *ecdsa.PrivateKey
	Cert      *x509.Certificate
	Created   time.Time
	State     string    // StateCurrent, StateNext or StatePrevious
	RetiredAt time.Time // when a previous key stopped signing; zero otherwise
}

// Private is the private key, whichever the algorithm; nil for a zero
// Signer.
func (s Signer) Private() crypto.Signer {
	switch {
	case s.Key != nil:
		return s.Key
	case s.EC != nil:
		return s.EC
	}
	return nil
}

// Public is the public key, whichever the algorithm.
func (s Signer) Public() crypto.PublicKey {
	if p := s.Private(); p != nil {
		return p.Public()
	}
	return nil
}

// Bits is the key size: the RSA modulus, or 256 for P-256.
func (s Signer) Bits() int {
	switch {
	case s.Key != nil:
		return s.Key.N.BitLen()
	case s.EC != nil:
		return s.EC.Curve.Params().BitSize
	}
	return 0
}

// Fingerprint is the hex SHA-256 of the certificate's DER bytes (what
// operators compare with the metadata uploaded to IAM).
func (s Signer) Fingerprint() string {
	sum := sha256.Sum256(s.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Options are the injected parts of key generation. Zero values mean:
// crypto/rand, time.Now, subject CN "Warden". Bits and Validity are read by
// LoadOrGenerate only (2048 and 10 years when zero); a Ring takes both from
// its Config (Size, CertValidity).
type Options struct {
	Bits     int
	Rand     io.Reader
	Now      func() time.Time
	Validity time.Duration
	Subject  string
}

func (o Options) withDefaults() Options {
	if o.Bits == 0 {
		o.Bits = 2048
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
	return o
}

// LoadOrGenerate reads the signing key and certificate from dir, creating dir
// (0700) and both files (0600) when neither exists. When only one of the two
// exists, it refuses rather than overwrite a key an IdP may have published.
//
// Deprecated: step 1's single key. Use Open, which migrates these files.
func LoadOrGenerate(dir string, o Options) (Signer, bool, error) {
	o = o.withDefaults()
	if !validSize(o.Bits) {
		return Signer{}, false, fmt.Errorf("keys: key size %d not supported (2048, 3072, 4096)", o.Bits)
	}
	kp, cp := filepath.Join(dir, keyFile), filepath.Join(dir, certFile)
	found, err := pairExists(dir, kp, cp)
	if err != nil {
		return Signer{}, false, err
	}
	if found {
		s, err := loadPair(kp, cp)
		return s, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Signer{}, false, fmt.Errorf("keys: %w", err)
	}
	s, kpem, cpem, err := newSigner(o, AlgRS256, o.Bits, o.Validity)
	if err != nil {
		return Signer{}, false, err
	}
	if err := writeExclusive(kp, kpem); err != nil {
		return Signer{}, false, err
	}
	if err := writeExclusive(cp, cpem); err != nil {
		return Signer{}, false, err
	}
	return s, true, nil
}

// pairExists reports whether both step-1 files exist; an error when only
// one of them does, or when either cannot be examined.
func pairExists(dir, kp, cp string) (bool, error) {
	_, kerr := os.Stat(kp)
	_, cerr := os.Stat(cp)
	switch {
	case kerr == nil && cerr == nil:
		return true, nil
	case errors.Is(kerr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist):
		return false, nil
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return false, fmt.Errorf("keys: %w", kerr)
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return false, fmt.Errorf("keys: %w", cerr)
	default:
		return false, fmt.Errorf("keys: only one of %s and %s exists in %s; restore the other or remove both", keyFile, certFile, dir)
	}
}

func validSize(bits int) bool { return bits == 2048 || bits == 3072 || bits == 4096 }

// loadPair reads a PKCS #8 RSA or P-256 key and the certificate that must
// certify it.
// The returned Signer has its ID set; Created, State and RetiredAt are the
// caller's.
func loadPair(kp, cp string) (Signer, error) { return loadPairFrom(os.ReadFile, kp, cp) }

// loadPairFrom is loadPair with the two files read through read.
func loadPairFrom(read func(string) ([]byte, error), kp, cp string) (Signer, error) {
	kb, err := read(kp)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	cb, err := read(cp)
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
	var s Signer
	switch key := anyKey.(type) {
	case *rsa.PrivateKey:
		s = Signer{ID: Thumbprint(&key.PublicKey), Alg: AlgRS256, Key: key}
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return Signer{}, fmt.Errorf("keys: %s: an EC key on %s; only P-256 (ES256) is supported", kp, key.Curve.Params().Name)
		}
		s = Signer{Alg: AlgES256, EC: key}
		if s.ID, err = thumbprint(&key.PublicKey); err != nil {
			return Signer{}, fmt.Errorf("keys: %s: %w", kp, err)
		}
	default:
		return Signer{}, fmt.Errorf("keys: %s: not an RSA or P-256 key (%T)", kp, anyKey)
	}
	cblk, _ := pem.Decode(cb)
	if cblk == nil {
		return Signer{}, fmt.Errorf("keys: %s: no PEM block", cp)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %s: %w", cp, err)
	}
	if pub, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return Signer{}, fmt.Errorf("keys: %s does not certify the key in %s", cp, kp)
	}
	s.Cert = cert
	return s, nil
}

// newSigner generates a key for alg (RSA of bits, or P-256) and a
// self-signed certificate
// valid from an hour ago (clock skew) for validity, and returns both PEM
// encodings (PKCS #8 "PRIVATE KEY", "CERTIFICATE").
func newSigner(o Options, alg string, bits int, validity time.Duration) (Signer, []byte, []byte, error) {
	var (
		key crypto.Signer
		s   = Signer{Alg: alg}
		err error
	)
	switch alg {
	case AlgRS256:
		s.Key, err = rsa.GenerateKey(o.Rand, bits)
		key = s.Key
	case AlgES256:
		s.EC, err = ecdsa.GenerateKey(elliptic.P256(), o.Rand)
		key = s.EC
	default:
		return Signer{}, nil, nil, fmt.Errorf("keys: algorithm %q not supported (%s, %s)", alg, AlgRS256, AlgES256)
	}
	if err != nil {
		return Signer{}, nil, nil, fmt.Errorf("keys: generate: %w", err)
	}
	serial, err := rand.Int(o.Rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Signer{}, nil, nil, fmt.Errorf("keys: serial: %w", err)
	}
	now := o.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.Subject},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(o.Rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Signer{}, nil, nil, fmt.Errorf("keys: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Signer{}, nil, nil, fmt.Errorf("keys: certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Signer{}, nil, nil, fmt.Errorf("keys: %w", err)
	}
	if s.ID, err = thumbprint(key.Public()); err != nil {
		return Signer{}, nil, nil, err
	}
	s.Cert, s.Created = cert, now
	return s, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
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

// writeAtomic replaces dir/name with data: a 0600 temp file in dir (name
// starting with ".tmp-", ignored by readers), fsync, rename, fsync of dir.
// A crash leaves either the old file or the new one, plus at worst a
// stray temp file.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keys: sync %s: %w", dir, err)
	}
	return nil
}
