package keys

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// AESKeySize is the size of an AES-256 key: the key that encrypts the ring
// in Redis (keys.encryption_key_file) and the MFA factor key.
const AESKeySize = 32

// ParseAESKey reads an AES-256 key: 32 raw bytes, or 64 hex digits, or
// base64 of 32 bytes (surrounding white space ignored for the text forms).
func ParseAESKey(b []byte) ([]byte, error) {
	if len(b) == AESKeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == AESKeySize {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == AESKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("encryption key must be %d bytes: raw, 64 hex digits or base64", AESKeySize)
}

// LoadAESKey reads the key file at path. With create, a missing file is
// made with a new key from random (mode 0600, hex); when another process
// made it first, its key is read.
func LoadAESKey(path string, create bool, random func([]byte) error) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		k := make([]byte, AESKeySize)
		if err := random(k); err != nil {
			return nil, fmt.Errorf("new encryption key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadAESKey(path, false, random)
		}
		if err != nil {
			return nil, fmt.Errorf("new encryption key: %w", err)
		}
		_, werr := f.WriteString(hex.EncodeToString(k) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("new encryption key: %w", werr)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	k, err := ParseAESKey(b)
	if err != nil {
		return nil, fmt.Errorf("encryption key %s: %w", path, err)
	}
	return k, nil
}
