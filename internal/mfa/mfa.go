// Package mfa keeps and checks the second factors of Warden's users: TOTP
// authenticators (RFC 6238), WebAuthn credentials (webauthn.go: passkeys
// and security keys) and single-use recovery codes; applies the mfa policy
// (policy.go: who must give one); and serves their pages (ui*.go: the step
// after the password and step-up, set-up, /account/security, the admin
// view and reset of a user's factors), a web.Mount.
//
// Contracts:
//
//   - TOTP is SHA-1, 6 digits, a 30-second period (what authenticator apps
//     support), checked at the current step and one step either side
//     (RFC 6238 section 5.2, "at most one time step" of network delay).
//   - Each TOTP code is accepted once: a successful check records the
//     (user, time step) in Redis with SET NX, with a TTL that outlives the
//     window in which that step is acceptable, so the same code, or any code
//     of an already used step, is refused on every replica (ErrReplayed).
//   - A TOTP secret is stored only encrypted, with AES-256-GCM under the key
//     given to New; the additional data binds the ciphertext to the user ID
//     and the credential ID, so a ciphertext copied to another user or
//     credential does not decrypt. An enrollment waits, under a 10-minute
//     TTL, for a first correct code, and only then becomes a credential.
//   - Recovery codes: ten per user, 10 characters of Crockford's base32
//     alphabet (50 bits each), shown as xxxxx-xxxxx, stored only as salted
//     SHA-256 hashes; each is accepted once (SREM: of two replicas that race
//     with one code exactly one wins); regenerating replaces them all.
//   - Factors are durable data: no TTL (run Redis with AOF).
//   - Results and failures are apart: a wrong code is ErrWrongCode, a
//     replayed one ErrReplayed, a missing credential or enrollment
//     ErrNoCredential; a Redis outage wraps store.ErrUnavailable and is never
//     reported as a wrong code. Limiting the number of attempts is the
//     caller's job (a 6-digit code falls to enough guesses).
//   - Secrets and codes are never logged, nor put in errors.
//
// Keys (prefix from the store, hash tag on the user ID so that every key of
// one user lives on one Redis Cluster node):
//
//	user:{ID}:mfa:totp              hash: credential ID -> JSON credential
//	user:{ID}:mfa:totp:pending:EID  JSON pending enrollment, TTL 10 min
//	user:{ID}:mfa:totp:used:STEP    replay mark of a used time step, TTL
//	user:{ID}:mfa:rc                set of hex SHA-256(salt || code)
//	user:{ID}:mfa:rc:salt           the salt of those hashes
package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

var (
	// ErrWrongCode: the code does not match (a result, not a failure).
	ErrWrongCode = errors.New("mfa: wrong code")
	// ErrReplayed: the TOTP code, or another code of its time step, has
	// already been accepted for this user.
	ErrReplayed = errors.New("mfa: code already used")
	// ErrNoCredential: no such credential, pending enrollment (or it
	// expired), or the user has no factor of that kind.
	ErrNoCredential = errors.New("mfa: no such credential")
)

// KeySize is the size of the encryption key of TOTP secrets (AES-256).
const KeySize = 32

// Factors stores and verifies the second factors of users in Redis. It is
// safe for concurrent use.
type Factors struct {
	store  *store.Store
	aead   cipher.AEAD
	old    []cipher.AEAD // previous keys: decrypt only (rotation)
	now    func() time.Time
	random io.Reader
}

// New returns the factor store. key (KeySize bytes) encrypts secrets at
// rest; previous keys (a rotation) still decrypt what they encrypted; now
// and random are the clock and the source of randomness (nil: time.Now
// and crypto/rand).
func New(st *store.Store, key []byte, now func() time.Time, random io.Reader, previous ...[]byte) (*Factors, error) {
	if st == nil {
		return nil, errors.New("mfa: nil store")
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	f := &Factors{store: st, aead: aead, now: now, random: random}
	for i, k := range previous {
		a, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("mfa: previous key %d: %w", i, err)
		}
		f.old = append(f.old, a)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.random == nil {
		f.random = rand.Reader
	}
	return f, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("mfa: encryption key has %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("mfa: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("mfa: cipher: %w", err)
	}
	return aead, nil
}

// checkUserID refuses IDs that would break the hash tag or the key layout.
func checkUserID(userID string) error {
	if userID == "" || strings.ContainsAny(userID, "{}") {
		return errors.New("mfa: invalid user ID")
	}
	return nil
}

// aad binds a ciphertext to its user and credential.
func aad(userID, credID string) []byte {
	return []byte("warden/mfa/totp/v1\x00" + userID + "\x00" + credID)
}

// seal encrypts secret for (userID, credID): base64(nonce || ciphertext).
func (f *Factors) seal(userID, credID string, secret []byte) (string, error) {
	nonce := make([]byte, f.aead.NonceSize())
	if _, err := io.ReadFull(f.random, nonce); err != nil {
		return "", fmt.Errorf("mfa: random: %w", err)
	}
	out := f.aead.Seal(nonce, nonce, secret, aad(userID, credID))
	return base64.RawStdEncoding.EncodeToString(out), nil
}

// errDecrypt: a stored secret does not decrypt (wrong key, or copied from
// another user or credential). Not ErrWrongCode: it is a failure.
var errDecrypt = errors.New("mfa: stored secret does not decrypt")

// open decrypts what seal returned for the same (userID, credID).
func (f *Factors) open(userID, credID, sealed string) ([]byte, error) {
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	n := f.aead.NonceSize()
	if err != nil || len(raw) < n+f.aead.Overhead() {
		return nil, errDecrypt
	}
	for _, a := range append([]cipher.AEAD{f.aead}, f.old...) {
		if secret, err := a.Open(nil, raw[:n], raw[n:], aad(userID, credID)); err == nil {
			return secret, nil
		}
	}
	return nil, errDecrypt
}

// newID returns 16 random bytes in base64url.
func newID(random io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("mfa: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// reseal returns secret sealed under the current key when sealed was made
// under a previous one (ok), so that a rotation completes as factors are
// used.
func (f *Factors) reseal(userID, credID, sealed string, secret []byte) (string, bool, error) {
	if len(f.old) == 0 {
		return "", false, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	n := f.aead.NonceSize()
	if err == nil && len(raw) >= n+f.aead.Overhead() {
		if _, err := f.aead.Open(nil, raw[:n], raw[n:], aad(userID, credID)); err == nil {
			return "", false, nil
		}
	}
	out, err := f.seal(userID, credID, secret)
	return out, err == nil, err
}
