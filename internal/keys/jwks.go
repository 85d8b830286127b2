package keys

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Thumbprint is the RFC 7638 JWK thumbprint of an RSA public key: the
// base64url (unpadded) SHA-256 of {"e":...,"kty":"RSA","n":...}. It is the
// key's ID and JWKS "kid".
func Thumbprint(pub *rsa.PublicKey) string {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		// Only unsupported key types fail; an *rsa.PublicKey never does.
		panic(fmt.Sprintf("keys: thumbprint: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// thumbprint is Thumbprint of any public key go-jose knows (RSA, EC).
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// jwk is the public JWK of s (RFC 7517 section 4): "alg" s.Alg, "use":"sig",
// kid = s.ID, x5c = its certificate, x5t#S256 = the certificate's SHA-256.
func jwk(s Signer) jose.JSONWebKey {
	sum := sha256.Sum256(s.Cert.Raw)
	return jose.JSONWebKey{
		Key:                         s.Public(),
		KeyID:                       s.ID,
		Algorithm:                   s.Alg,
		Use:                         "sig",
		Certificates:                []*x509.Certificate{s.Cert},
		CertificateThumbprintSHA256: sum[:],
	}
}
