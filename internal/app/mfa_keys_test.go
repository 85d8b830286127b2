package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/mfa"
)

// TestMFAKeysWithoutSharedDisk: with the signing keys in Redis, replicas
// with data directories of their own encrypt factor secrets with one key,
// derived from keys.encryption_key_file; a single-host mfa.key stays
// readable as a previous key.
func TestMFAKeysWithoutSharedDisk(t *testing.T) {
	kek := filepath.Join(t.TempDir(), "kek")
	os.WriteFile(kek, []byte(strings.Repeat("cd", 32)), 0o600)
	o := Options{Keys: keys.Config{Store: keys.StoreRedis, EncryptionKeyFile: kek}}
	o.DataDir = t.TempDir()
	a, prevA, err := mfaKeys(mfa.Config{}, o)
	if err != nil {
		t.Fatal(err)
	}
	o.DataDir = t.TempDir()
	old := bytes.Repeat([]byte{4}, 32)
	os.WriteFile(filepath.Join(o.DataDir, "mfa.key"), old, 0o600)
	b, prevB, err := mfaKeys(mfa.Config{}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || len(a) != 32 || bytes.Equal(a, bytes.Repeat([]byte{0xcd}, 32)) {
		t.Fatalf("replicas' keys differ, or equal the signing ring's key: %x %x", a, b)
	}
	if len(prevA) != 0 || len(prevB) != 1 || !bytes.Equal(prevB[0], old) {
		t.Fatalf("previous keys: %d, %d", len(prevA), len(prevB))
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "mfa.key")); err != nil {
		t.Fatal(err)
	}

	// a directory ring: data_dir/mfa.key, made at first start
	o = Options{DataDir: t.TempDir()}
	c, _, err := mfaKeys(mfa.Config{}, o)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := mfa.LoadKey(filepath.Join(o.DataDir, "mfa.key"), false, nil); err != nil || !bytes.Equal(k, c) {
		t.Fatalf("data_dir/mfa.key: %v", err)
	}
	// mfa.encryption_key_file wins
	o.Keys = keys.Config{Store: keys.StoreRedis, EncryptionKeyFile: kek}
	own := filepath.Join(t.TempDir(), "mfa")
	os.WriteFile(own, bytes.Repeat([]byte{5}, 32), 0o600)
	if d, _, err := mfaKeys(mfa.Config{EncryptionKeyFile: own}, o); err != nil || !bytes.Equal(d, bytes.Repeat([]byte{5}, 32)) {
		t.Fatalf("mfa.encryption_key_file: %x %v", d, err)
	}
}
