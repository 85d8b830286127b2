package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/keys"
)

// TestKeysES256Commands: -alg ES256 makes the ES256 ring, rotates and
// promotes it, and leaves the RSA ring and its commands' defaults alone.
func TestKeysES256Commands(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "keys")
	rsa, err := keys.Open(dir, keys.Config{}, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rsaManifest, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	ecStore, _ := keys.ForAlg(keys.Dir(dir), keys.AlgES256)

	code, out := runCmd(t, "keys", "list", "-data-dir", data, "-alg", "ES256")
	if code != 1 || !strings.Contains(out, "no key ring") || !strings.Contains(out, "keys rotate -data-dir "+data+" -alg ES256") {
		t.Fatalf("list before the ES256 ring: %d %s", code, out)
	}
	if code, out := runCmd(t, "keys", "rotate", "-data-dir", data, "-alg", "es256"); code != 2 || !strings.Contains(out, "-alg must be RS256 or ES256") {
		t.Fatalf("-alg es256: %d %s", code, out)
	}

	code, out = runCmd(t, "keys", "rotate", "-data-dir", data, "-alg", "ES256")
	if code != 0 || !strings.Contains(out, "Created the ES256 key ring") {
		t.Fatalf("first rotate: %d %s", code, out)
	}
	all, err := keys.ListStore(context.Background(), ecStore)
	if err != nil || len(all) != 1 || all[0].State != keys.StateCurrent || all[0].Alg != keys.AlgES256 || !strings.Contains(out, all[0].ID) {
		t.Fatalf("after the first rotate: %v %d", err, len(all))
	}
	first := all[0]

	code, out = runCmd(t, "keys", "rotate", "-data-dir", data, "-alg", "ES256")
	if code != 0 || !strings.Contains(out, "Created next key") || strings.Contains(out, "metadata") {
		t.Fatalf("second rotate: %d %s", code, out)
	}
	if code, out := runCmd(t, "keys", "rotate", "-data-dir", data, "-alg", "ES256"); code != 1 || !strings.Contains(out, "promote -data-dir "+data+" -alg ES256") {
		t.Fatalf("third rotate: %d %s", code, out)
	}
	code, out = runCmd(t, "keys", "list", "-data-dir", data, "-alg", "ES256")
	row := regexp.MustCompile(regexp.QuoteMeta(first.ID) + `\s+current\s+256\s+`)
	if code != 0 || !row.MatchString(out) || !strings.Contains(out, "manifest-es256.json") {
		t.Fatalf("list -alg ES256:\n%s", out)
	}
	code, out = runCmd(t, "keys", "promote", "-data-dir", data, "-alg", "ES256")
	if code != 0 || !strings.Contains(out, "signs when oidc.signing_algorithm is ES256") || !strings.Contains(out, "previous key "+first.ID) {
		t.Fatalf("promote: %d %s", code, out)
	}
	if all, _ := keys.ListStore(context.Background(), ecStore); len(all) != 2 || all[0].ID == first.ID || all[1].State != keys.StatePrevious {
		t.Fatalf("after promote: %v", all)
	}

	// the RSA ring: untouched, and still the default of every command
	if after, _ := os.ReadFile(filepath.Join(dir, "manifest.json")); string(after) != string(rsaManifest) {
		t.Fatal("the ES256 commands changed manifest.json")
	}
	code, out = runCmd(t, "keys", "list", "-data-dir", data)
	if code != 0 || !strings.Contains(out, rsa.Current().ID) || strings.Contains(out, first.ID) || !regexp.MustCompile(`current\s+2048`).MatchString(out) {
		t.Fatalf("list (RSA):\n%s", out)
	}
	if code, out := runCmd(t, "keys", "promote", "-data-dir", data); code != 1 || !strings.Contains(out, "no next key") {
		t.Fatalf("promote (RSA) without a next key: %d %s", code, out)
	}
}
