package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/cli/credcache"
	"github.com/wardenidp/warden/internal/testenv"
)

// buildCLIs builds warden and warden-credentials side by side in a
// temporary directory, as `make build` puts them in bin/.
func buildCLIs(t testing.TB) (warden, fast string) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/wardenidp/warden/cmd/warden", "github.com/wardenidp/warden/cmd/warden-credentials").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "warden"), filepath.Join(dir, "warden-credentials")
}

// alone copies warden-credentials into a directory of its own: with no
// warden beside it (and none in the PATH the tests give it), it can only
// answer from the cache or fail to hand over.
func alone(t testing.TB, fast string) string {
	t.Helper()
	b, err := os.ReadFile(fast)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "warden-credentials")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// procResult is what a process left: its streams and exit code.
type procResult struct {
	stdout, stderr string
	code           int
}

func runProc(t testing.TB, env []string, bin string, args ...string) procResult {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", bin, err)
	}
	return procResult{o.String(), e.String(), cmd.ProcessState.ExitCode()}
}

const handOverFailed = "warden-credentials: cannot find warden beside this program or in PATH"

// TestWardenCredentials: warden-credentials prints what `warden
// credential-process` prints, byte for byte; with nothing cached, too
// little time left, or a config that changed since warden indexed the
// credentials, it hands over to warden (which calls STS); a copy with no
// warden to hand over to shows which of the two answered.
func TestWardenCredentials(t *testing.T) {
	idp, sts := newFakeIdP(t), newFakeSTS(t)
	a, _, _ := signedInApp(t, idp.srv.URL, time.Now)
	warden, fast := buildCLIs(t)
	lonely := alone(t, fast)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + t.TempDir(), "WARDEN_CONFIG_DIR=" + a.ConfigDir, "WARDEN_CACHE_DIR=" + a.CacheDir}
	args := []string{"--role", tRole, "--sts-endpoint", sts.srv.URL}
	full := func(args ...string) procResult {
		return runProc(t, env, warden, append([]string{"credential-process"}, args...)...)
	}
	ok := func(what string, r procResult) string {
		t.Helper()
		if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, `{"Version":1,`) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", what, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	handsOver := func(what string) {
		t.Helper()
		if r := runProc(t, env, lonely, args...); r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, handOverFailed) {
			t.Fatalf("%s: alone, warden-credentials exits %d, stdout %q, stderr %q; want a failed hand-over", what, r.code, r.stdout, r.stderr)
		}
	}
	cached := func() credsCache {
		t.Helper()
		var c credsCache
		if ok, err := readJSON(a.credsPath(credsKey(ViaSAML, tRole)), &c); !ok {
			t.Fatalf("no cached credentials (%v)", err)
		}
		return c
	}

	// Nothing cached: warden-credentials hands over, warden calls STS,
	// caches the credentials and indexes them for these arguments.
	handsOver("nothing cached")
	first := ok("first call", runProc(t, env, fast, args...))
	if n := sts.calls.Load(); n != 1 {
		t.Fatalf("%d STS calls, want 1", n)
	}
	if _, err := os.Stat(credcache.EntryPath(a.CacheDir, a.configPath(), args)); err != nil {
		t.Fatalf("no index entry: %v", err)
	}
	if want := string(credcache.CredentialProcessJSON(cached())); first != want {
		t.Fatalf("printed %s, cached %s", first, want)
	}

	// Cached: the same bytes from warden, warden-credentials beside it and
	// the lonely copy, which can only have read the cache; no STS call.
	for what, bin := range map[string]string{"warden-credentials": fast, "alone": lonely} {
		if got := ok(what, runProc(t, env, bin, args...)); got != first {
			t.Errorf("%s printed %s, want %s", what, got, first)
		}
	}
	if got := ok("warden", full(args...)); got != first {
		t.Errorf("warden printed %s, want %s", got, first)
	}
	if n := sts.calls.Load(); n != 1 {
		t.Errorf("%d STS calls, want 1", n)
	}

	// 10 minutes left, under the 15 kept in reserve: warden's turn.
	c := cached()
	c.Expiration = time.Now().Add(10 * time.Minute)
	if err := writeJSON(a.credsPath(credsKey(ViaSAML, tRole)), c); err != nil {
		t.Fatal(err)
	}
	handsOver("10 minutes left")
	second := ok("10 minutes left", runProc(t, env, fast, args...))
	if n := sts.calls.Load(); n != 2 || second == first {
		t.Errorf("10 minutes left: %d STS calls, printed %s; want a second call and new credentials", n, second)
	}
	if got := ok("alone after the refresh", runProc(t, env, lonely, args...)); got != second {
		t.Errorf("alone after the refresh: %s, want %s", got, second)
	}

	// The credentials file gone (as after `warden elevate --end`).
	if err := os.Remove(a.credsPath(credsKey(ViaSAML, tRole))); err != nil {
		t.Fatal(err)
	}
	handsOver("credentials removed")
	ok("credentials removed", runProc(t, env, fast, args...))
	if n := sts.calls.Load(); n != 3 {
		t.Errorf("credentials removed: %d STS calls, want 3", n)
	}
	third := ok("cached again", full(args...))

	// The config now says web-identity: the cached SAML credentials are
	// not these arguments' any more; warden-credentials fails exactly as
	// warden does (the fake IdP answers SAML only).
	if err := a.SaveConfig(Config{IdPURL: idp.srv.URL, Via: ViaWebIdentity}); err != nil {
		t.Fatal(err)
	}
	handsOver("web-identity in the config")
	w, f := full(args...), runProc(t, env, fast, args...)
	if f != w || w.code == 0 || w.stdout != "" {
		t.Errorf("web-identity in the config: warden-credentials %+v, warden %+v; want the same failure", f, w)
	}
	// The same config as before: the index answers again.
	if err := a.SaveConfig(Config{IdPURL: idp.srv.URL}); err != nil {
		t.Fatal(err)
	}
	if got := ok("config restored", runProc(t, env, lonely, args...)); got != third {
		t.Errorf("config restored: %s, want %s", got, third)
	}

	// Another role, even with these credentials cached: not from the cache.
	other := []string{"--role", "arn:aws:iam::111122223333:role/Other", "--sts-endpoint", sts.srv.URL}
	if r := runProc(t, env, lonely, other...); r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, handOverFailed) {
		t.Errorf("another role: alone, exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	sts.check(t)
}

// TestWardenCredentialsBadArguments: whatever warden-credentials cannot
// answer from the cache, warden answers, with its own output and exit
// code, even when credentials for the role are cached and indexed.
func TestWardenCredentialsBadArguments(t *testing.T) {
	f := newStartupFixture(t)
	warden, fast := buildCLIs(t)
	if r := runProc(t, f.env, fast, f.args[1:]...); r.code != 0 { // indexes them
		t.Fatalf("cached: %+v", r)
	}
	lonely := alone(t, fast)
	if r := runProc(t, append(f.env, "PATH="+t.TempDir()), lonely, f.args[1:]...); r.code != 0 {
		t.Fatalf("cached, alone: %+v", r)
	}
	for _, args := range [][]string{
		nil,
		{"--bogus"},
		{"--help"},
		{"--role", tRole, "-h"},
		{"--role"},
		{"--role", tRole, "extra"},
		{"--role", tRole, "--duration", "1m"},
		{"--role", tRole, "--via", "bogus"},
		{"--role", tRole, "--region", "mars-1"},
		{"--role", tRole, "--sts-endpoint", "ftp://x"},
		{"--role", "arn:aws:iam::bad"},
		{"--role", "prod/ReadOnly"}, // looked up at the IdP: the trap
	} {
		w := runProc(t, f.env, warden, append([]string{"credential-process"}, args...)...)
		got := runProc(t, f.env, fast, args...)
		if got != w {
			t.Errorf("%q: warden-credentials %+v, warden %+v", args, got, w)
		}
		if w.code == 0 && !slices.Contains(args, "--help") && !slices.Contains(args, "-h") || strings.Contains(w.stdout, f.creds.AccessKeyID) {
			t.Errorf("%q: warden %+v; want a failure", args, w)
		}
	}
}

// TestWardenCredentialsNotItself: a "warden" beside it that is
// warden-credentials again ends in an error, not in a loop of execs.
func TestWardenCredentialsNotItself(t *testing.T) {
	_, fast := buildCLIs(t)
	lonely := alone(t, fast)
	b, err := os.ReadFile(lonely)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(lonely), "warden"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"HOME=" + dir, "PATH=" + dir, "WARDEN_CONFIG_DIR=" + dir, "WARDEN_CACHE_DIR=" + dir}
	r := runProc(t, env, lonely, "--role", tRole)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "is not the warden CLI") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestProfileAddWardenCredentials: `profile add` writes warden-credentials
// into credential_process when it is an executable beside warden, else
// `warden credential-process`.
func TestProfileAddWardenCredentials(t *testing.T) {
	a := testApp(t)
	if err := a.SaveConfig(Config{IdPURL: "https://idp.example.com"}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "my bin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a.executable = func() (string, error) { return filepath.Join(dir, "warden"), nil }
	awsConfig := filepath.Join(t.TempDir(), "config")
	line := func() string {
		t.Helper()
		if err := run(a, "profile", "add", "--role", tRole, "--profile", "ro", "--config-file", awsConfig); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(awsConfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "credential_process") {
				return l
			}
		}
		t.Fatalf("no credential_process in\n%s", b)
		return ""
	}
	slow := `credential_process = "` + filepath.Join(dir, "warden") + `" credential-process --role ` + tRole
	if got := line(); got != slow {
		t.Errorf("without warden-credentials: %s, want %s", got, slow)
	}
	fast := filepath.Join(dir, "warden-credentials")
	if err := os.WriteFile(fast, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := line(); got != slow {
		t.Errorf("warden-credentials not executable: %s, want %s", got, slow)
	}
	if err := os.Chmod(fast, 0o755); err != nil {
		t.Fatal(err)
	}
	if want := `credential_process = "` + fast + `" --role ` + tRole; line() != want {
		t.Errorf("with warden-credentials: %s, want %s", line(), want)
	}
}

// TestAWSCLIWithWardenCredentials: with warden-credentials beside warden,
// `warden profile add` writes it into the profile, and Debian's awscli
// gets credentials through it from moto's STS: first through warden (which
// indexes them), then from the cache.
func TestAWSCLIWithWardenCredentials(t *testing.T) {
	aws := testenv.Binary(t, "aws")
	moto := testenv.Moto(t)
	idp := newFakeIdP(t)
	a, _, _ := signedInApp(t, idp.srv.URL, time.Now)
	warden, fast := buildCLIs(t)
	home := t.TempDir()
	cfgFile := filepath.Join(home, ".aws", "config")
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "WARDEN_CONFIG_DIR=" + a.ConfigDir, "WARDEN_CACHE_DIR=" + a.CacheDir,
		"AWS_CONFIG_FILE=" + cfgFile, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, ".aws", "credentials"), "AWS_PAGER="}
	if r := runProc(t, env, warden, "profile", "add", "--role", tRole, "--profile", "ro", "--sts-endpoint", moto, "--region", "eu-west-1"); r.code != 0 {
		t.Fatalf("profile add: %+v", r)
	}
	cfg, _ := os.ReadFile(cfgFile)
	args := []string{"--role", tRole, "--sts-endpoint", moto}
	if !strings.Contains(string(cfg), "credential_process = "+fast+" "+strings.Join(args, " ")+"\n") {
		t.Fatalf("config:\n%s", cfg)
	}
	for i := range 2 {
		r := runProc(t, env, aws, "sts", "get-caller-identity", "--endpoint-url", moto, "--profile", "ro", "--output", "json")
		if r.code != 0 || !strings.Contains(r.stdout, `"Account"`) {
			t.Fatalf("get-caller-identity %d: %+v", i+1, r)
		}
		if _, err := os.Stat(credcache.EntryPath(a.CacheDir, a.configPath(), args)); err != nil {
			t.Fatalf("after get-caller-identity %d: no index entry: %v", i+1, err)
		}
	}
}
