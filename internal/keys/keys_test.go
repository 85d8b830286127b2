package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	s1, created, err := LoadOrGenerate(dir, Options{})
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if s1.Key.N.BitLen() != 2048 {
		t.Fatalf("key size %d, want 2048", s1.Key.N.BitLen())
	}
	for _, name := range []string{keyFile, certFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	s2, created, err := LoadOrGenerate(dir, Options{})
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if s1.Fingerprint() != s2.Fingerprint() || !s1.Key.Equal(s2.Key) {
		t.Fatal("second call did not load the same key")
	}
}

func TestLoadOrGenerateRefusesHalfAPair(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrGenerate(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, certFile)); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrGenerate(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Fatalf("want refusal, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, keyFile)); err != nil {
		t.Fatal("the remaining key must be left alone")
	}
}

func TestLoadOrGenerateRejectsBadInput(t *testing.T) {
	if _, _, err := LoadOrGenerate(t.TempDir(), Options{Bits: 1024}); err == nil {
		t.Fatal("1024-bit keys must be refused")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, keyFile), []byte("not pem"), 0o600)
	os.WriteFile(filepath.Join(dir, certFile), []byte("not pem"), 0o600)
	if _, _, err := LoadOrGenerate(dir, Options{}); err == nil {
		t.Fatal("garbage files must be refused")
	}
	// a certificate for another key
	a, b := t.TempDir(), t.TempDir()
	LoadOrGenerate(a, Options{})
	LoadOrGenerate(b, Options{})
	cb, _ := os.ReadFile(filepath.Join(b, certFile))
	os.WriteFile(filepath.Join(a, certFile), cb, 0o600)
	if _, _, err := LoadOrGenerate(a, Options{}); err == nil || !strings.Contains(err.Error(), "does not certify") {
		t.Fatalf("mismatched pair must be refused, got %v", err)
	}
}
