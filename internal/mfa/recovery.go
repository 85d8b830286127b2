package mfa

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

const (
	// RecoveryCodes is how many recovery codes a user gets.
	RecoveryCodes = 10
	// recoveryLen is the length of a code without its dash.
	recoveryLen = 10
	// crockford is Crockford's base32 alphabet (no i, l, o, u), lower
	// case: 32 symbols, so 10 of them carry 50 bits.
	crockford = "0123456789abcdefghjkmnpqrstvwxyz"
	saltSize  = 16
)

// newRecoveryCodes returns RecoveryCodes fresh codes, formatted xxxxx-xxxxx.
func newRecoveryCodes(random io.Reader) ([]string, error) {
	raw := make([]byte, RecoveryCodes*recoveryLen)
	if _, err := io.ReadFull(random, raw); err != nil {
		return nil, fmt.Errorf("mfa: random: %w", err)
	}
	codes := make([]string, RecoveryCodes)
	for i := range codes {
		var b strings.Builder
		for j, r := range raw[i*recoveryLen : (i+1)*recoveryLen] {
			if j == recoveryLen/2 {
				b.WriteByte('-')
			}
			// 256 is a multiple of 32: r&31 is uniform.
			b.WriteByte(crockford[r&31])
		}
		codes[i] = b.String()
	}
	return codes, nil
}

// normalizeRecovery folds what a user typed into the canonical code:
// lower case, dashes and spaces removed, and Crockford's look-alikes
// (o -> 0, i and l -> 1) mapped. It reports whether the result has the
// shape of a code.
func normalizeRecovery(code string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		switch r {
		case '-', ' ':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if !strings.ContainsRune(crockford, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryLen {
		return "", false
	}
	return b.String(), true
}

// hashRecovery hashes a normalized code with the user's salt. A fast hash
// is enough here, unlike for passwords: a code carries 50 random bits, so
// even with the salt and hashes from a Redis dump, guessing one takes about
// 2^49 SHA-256 computations per user; the per-user salt stops one
// precomputation from serving every user.
func hashRecovery(salt []byte, code string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(code))
	return hex.EncodeToString(h.Sum(nil))
}
