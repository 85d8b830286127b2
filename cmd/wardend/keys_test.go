package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/app"
	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String() + errb.String()
}

// TestKeysCommands: rotate, list and promote through run(), on a ring that
// keys.Open created the way wardend does on its first start.
func TestKeysCommands(t *testing.T) {
	data := t.TempDir()
	code, out := runCmd(t, "keys", "list", "-data-dir", data)
	if code != 1 || !strings.Contains(out, "no key ring") || !strings.Contains(out, "start wardend once") {
		t.Fatalf("list on an empty dir: %d %s", code, out)
	}
	r, err := keys.Open(filepath.Join(data, "keys"), keys.Config{}, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := r.Current()

	code, out = runCmd(t, "keys", "list", "-data-dir", data)
	if code != 0 {
		t.Fatalf("list: %d %s", code, out)
	}
	row := regexp.MustCompile(regexp.QuoteMeta(first.ID) + `\s+current\s+2048\s+\S+Z\s+-\s+yes\s+\S+Z\s+` + first.Fingerprint())
	if !strings.Contains(out, "SHA-256 FINGERPRINT") || !row.MatchString(out) {
		t.Fatalf("list output:\n%s", out)
	}

	cfg := filepath.Join(t.TempDir(), "wardend.yaml")
	os.WriteFile(cfg, []byte("server:\n  public_url: https://sso.example.com/\ndata_dir: "+data+"\n"), 0o600)
	code, out = runCmd(t, "keys", "rotate", "-config", cfg)
	if code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	all, _ := keys.List(filepath.Join(data, "keys"))
	if len(all) != 2 || all[1].State != keys.StateNext {
		t.Fatalf("after rotate: %+v", all)
	}
	next := all[1]
	for _, want := range []string{
		"Created next key " + next.ID, next.Fingerprint(), "does not sign yet",
		"curl -fsS -o metadata.xml https://sso.example.com/saml/metadata",
		"aws iam update-saml-provider --saml-metadata-document file://metadata.xml",
		"--saml-provider-arn arn:aws:iam::<ACCOUNT-ID>:saml-provider/<NAME>",
		"wardend keys promote -config " + cfg,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rotate output lacks %q:\n%s", want, out)
		}
	}
	code, out = runCmd(t, "keys", "rotate", "-data-dir", data)
	if code != 1 || !strings.Contains(out, "a next key already exists") || !strings.Contains(out, "wardend keys promote") {
		t.Fatalf("second rotate: %d %s", code, out)
	}
	code, out = runCmd(t, "keys", "list", "-data-dir", data)
	if code != 0 || !regexp.MustCompile(regexp.QuoteMeta(next.ID)+`\s+next\s`).MatchString(out) {
		t.Fatalf("list after rotate: %d %s", code, out)
	}

	code, out = runCmd(t, "keys", "promote", "-data-dir", data)
	if code != 0 {
		t.Fatalf("promote: %d %s", code, out)
	}
	for _, want := range []string{"Promoted " + next.ID, "The previous key " + first.ID + " stays published until", "publish_previous 720h0m0s", "Response signature invalid"} {
		if !strings.Contains(out, want) {
			t.Errorf("promote output lacks %q:\n%s", want, out)
		}
	}
	code, out = runCmd(t, "keys", "list", "-data-dir", data)
	if code != 0 || !regexp.MustCompile(regexp.QuoteMeta(first.ID)+`\s+previous\s+2048\s+\S+Z\s+\S+Z\s+until \S+Z`).MatchString(out) ||
		!regexp.MustCompile(regexp.QuoteMeta(next.ID)+`\s+current\s`).MatchString(out) {
		t.Fatalf("list after promote: %d %s", code, out)
	}
	code, out = runCmd(t, "keys", "promote", "-data-dir", data)
	if code != 1 || !strings.Contains(out, "no next key to promote; run rotate first") {
		t.Fatalf("second promote: %d %s", code, out)
	}
}

func TestKeysArguments(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("keyz: 1\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no subcommand", []string{"keys"}, 2, "wardend keys rotate"},
		{"unknown subcommand", []string{"keys", "delete"}, 2, `unknown command "delete"`},
		{"help", []string{"keys", "help"}, 0, "rotate, upload the new metadata"},
		{"no directory", []string{"keys", "list"}, 2, "need -data-dir DIR or -config FILE"},
		{"stray argument", []string{"keys", "list", "-data-dir", dir, "x"}, 2, `unexpected argument "x"`},
		{"unknown flag", []string{"keys", "rotate", "-force"}, 2, "flag provided but not defined"},
		{"bad config", []string{"keys", "list", "-config", bad}, 1, "keyz"},
		{"missing config", []string{"keys", "list", "-config", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{"promote on empty dir", []string{"keys", "promote", "-data-dir", dir}, 1, "no key ring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d (want %d), output lacks %q?\n%s", code, tc.code, tc.out, out)
			}
		})
	}
}

// TestKeysRedis: with keys.store redis the commands work on the sealed ring
// in Redis, which a running wardend created (here: keys.OpenStore, as
// app.Run does).
func TestKeysRedis(t *testing.T) {
	env := testenv.Require(t, "REDIS_ADDR")
	dir := t.TempDir()
	kek := filepath.Join(dir, "kek")
	os.WriteFile(kek, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))+"\n"), 0o600)
	prefix := fmt.Sprintf("keyscmd:%d:", time.Now().UnixNano())
	cfg := filepath.Join(dir, "wardend.yaml")
	os.WriteFile(cfg, []byte("server: {public_url: https://sso.example.com}\ndata_dir: "+dir+"\n"+
		"redis: {addrs: ["+env["REDIS_ADDR"]+"], key_prefix: \""+prefix+"\"}\n"+
		"keys: {store: redis, encryption_key_file: "+kek+"}\n"), 0o600)

	code, out := runCmd(t, "keys", "list", "-config", cfg)
	if code != 1 || !strings.Contains(out, "no key ring") {
		t.Fatalf("list before any start: %d %s", code, out)
	}
	code, out = runCmd(t, "keys", "list", "-data-dir", dir)
	if code != 1 || !strings.Contains(out, "no key ring") {
		t.Fatalf("-data-dir is the directory, not Redis: %d %s", code, out)
	}

	c, err := config.Load(cfg, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer st.Client().Del(context.Background(), st.Key("keys:ring"))
	ks, err := app.KeyStore(c.Keys, c.DataDir, st)
	if err != nil {
		t.Fatal(err)
	}
	r, err := keys.OpenStore(context.Background(), ks, c.Keys, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); !os.IsNotExist(err) {
		t.Fatalf("a key directory was made: %v", err)
	}

	code, out = runCmd(t, "keys", "rotate", "-config", cfg)
	if code != 0 || !strings.Contains(out, "within 500ms") || !strings.Contains(out, "wardend keys promote -config "+cfg) {
		t.Fatalf("rotate: %d %s", code, out)
	}
	code, out = runCmd(t, "keys", "promote", "-config", cfg)
	if code != 0 || !strings.Contains(out, "The previous key "+r.Current().ID+" stays published") {
		t.Fatalf("promote: %d %s", code, out)
	}
	code, out = runCmd(t, "keys", "list", "-config", cfg)
	if code != 0 || !regexp.MustCompile(regexp.QuoteMeta(r.Current().ID)+`\s+previous\s`).MatchString(out) ||
		!strings.Contains(out, "redis key "+prefix+"keys:ring (running replicas re-read it every 500ms)") {
		t.Fatalf("list: %d %s", code, out)
	}

	os.WriteFile(kek, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))), 0o600)
	code, out = runCmd(t, "keys", "list", "-config", cfg)
	if code != 1 || !strings.Contains(out, "does not decrypt with keys.encryption_key_file") {
		t.Fatalf("list with another encryption key: %d %s", code, out)
	}
}
