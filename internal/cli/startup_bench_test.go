package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startupFixture is a config and a credential cache holding valid
// credentials for tRole, in temporary directories, with the IdP and STS
// endpoint both at a trap server that counts every request it gets: a
// cached `credential-process` must leave its count at zero.
type startupFixture struct {
	app   *App
	env   []string // the environment that points warden at app's directories
	args  []string // credential-process --role tRole
	creds credsCache
	idp   string // the trap's URL
	hits  atomic.Int64
}

func newStartupFixture(tb testing.TB) *startupFixture {
	tb.Helper()
	f := &startupFixture{}
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		http.Error(w, "the cached path must not reach the network", http.StatusTeapot)
	}))
	tb.Cleanup(trap.Close)
	f.idp = trap.URL
	dir := tb.TempDir()
	f.app = &App{ConfigDir: filepath.Join(dir, "config"), CacheDir: filepath.Join(dir, "cache"), Now: time.Now}
	if err := f.app.SaveConfig(Config{IdPURL: f.idp, STSEndpoint: f.idp, Region: "eu-west-1"}); err != nil {
		tb.Fatal(err)
	}
	f.creds = credsCache{RoleARN: tRole, Via: ViaSAML, AccessKeyID: "ASIAFIXTURE0000000001",
		SecretAccessKey: "fixture/secret+key", SessionToken: "fixture-session-token==",
		Expiration: time.Now().Add(time.Hour).UTC().Truncate(time.Second), AccountID: "111122223333"}
	f.writeCreds(tb, f.creds)
	f.env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"WARDEN_CONFIG_DIR=" + f.app.ConfigDir, "WARDEN_CACHE_DIR=" + f.app.CacheDir,
		"HTTPS_PROXY=" + f.idp, "HTTP_PROXY=" + f.idp}
	f.args = []string{"credential-process", "--role", tRole}
	return f
}

func (f *startupFixture) writeCreds(tb testing.TB, c credsCache) {
	tb.Helper()
	if err := writeJSON(f.app.credsPath(credsKey(c.Via, c.RoleARN)), c); err != nil {
		tb.Fatal(err)
	}
}

// buildForStartup builds pkg in dir (a module) with the flags of `make
// build`, so that both binaries of a comparison are built alike.
func buildForStartup(tb testing.TB, dir, pkg, out string) {
	tb.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// buildHello builds a Go hello-world: the start-up floor of any Go binary.
func buildHello(tb testing.TB, dir string) string {
	tb.Helper()
	src := filepath.Join(dir, "hello")
	if err := os.MkdirAll(src, 0o700); err != nil {
		tb.Fatal(err)
	}
	for name, text := range map[string]string{
		"go.mod":  "module hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "hello.bin")
	buildForStartup(tb, src, ".", bin)
	return bin
}

// TestCredentialProcessCachedOffline: the built `warden credential-process`
// prints the cached credentials as credential_process JSON, one line on
// stdout and nothing on stderr, without a request to the IdP or STS; once
// the cache is too close to expiry the same call does go to the network.
func TestCredentialProcessCachedOffline(t *testing.T) {
	f := newStartupFixture(t)
	warden := buildWarden(t)
	run := func() (stdout, stderr string, err error) {
		var o, e bytes.Buffer
		cmd := exec.Command(warden, f.args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = f.env, &o, &e
		err = cmd.Run()
		return o.String(), e.String(), err
	}
	out, errOut, err := run()
	if err != nil || errOut != "" {
		t.Fatalf("credential-process: %v, stderr %q", err, errOut)
	}
	if !strings.HasSuffix(out, "}\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("want one JSON line on stdout, got %q", out)
	}
	var got struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      string
		AccountID       string `json:"AccountId"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	exp, err := time.Parse(time.RFC3339, got.Expiration)
	if got.Version != 1 || got.AccessKeyID != f.creds.AccessKeyID || got.SecretAccessKey != f.creds.SecretAccessKey ||
		got.SessionToken != f.creds.SessionToken || got.AccountID != f.creds.AccountID ||
		err != nil || !exp.Equal(f.creds.Expiration) || !strings.HasSuffix(got.Expiration, "Z") {
		t.Errorf("credential_process JSON %+v, want the cached %+v", got, f.creds)
	}
	if n := f.hits.Load(); n != 0 {
		t.Errorf("the cached path made %d network requests", n)
	}

	// 10 minutes left (under the 15 kept in reserve) with a valid access
	// token cached: now warden asks the IdP, that is the trap, and fails.
	stale := f.creds
	stale.Expiration = time.Now().Add(10 * time.Minute)
	f.writeCreds(t, stale)
	if err := writeJSON(f.app.tokenPath(), tokenCache{IdPURL: f.idp, ClientID: ClientID,
		AccessToken: "AT", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = run()
	if err == nil || out != "" || f.hits.Load() == 0 {
		t.Errorf("stale cache: err %v, stdout %q, stderr %q, %d requests; want a failed call to the IdP", err, out, errOut, f.hits.Load())
	}
}

// BenchmarkStartup runs a Go hello-world, `warden credential-process`
// and warden-credentials with cached credentials, all built as `make
// build` does, alternately as whole processes, and reports the median
// wall time of each (hello-ms, warden-ms, warden-credentials-ms) and
// their ratios to hello's (warden/hello, warden-credentials/hello);
// ns/op is warden-credentials' median. warden-credentials runs alone in
// its directory with an empty PATH, so that it fails rather than hand
// over to warden: the figures are its cached path's.
// WARDEN_STARTUP_BASELINE=/path/to/an/older/warden adds that binary to
// the rotation (baseline-ms, baseline/hello), for before/after figures
// from one run. Alternating keeps the load of a shared machine alike for
// all; the figures still vary from run to run, the ratios much less.
func BenchmarkStartup(b *testing.B) {
	f := newStartupFixture(b)
	dir := b.TempDir()
	hello := buildHello(b, dir)
	warden := filepath.Join(dir, "warden")
	buildForStartup(b, ".", "github.com/wardenidp/warden/cmd/warden", warden)
	fast := filepath.Join(dir, "alone", "warden-credentials")
	buildForStartup(b, ".", "github.com/wardenidp/warden/cmd/warden-credentials", fast)
	type bin struct {
		name  string
		path  string
		args  []string
		env   []string // nil: f.env
		times []time.Duration
	}
	// warden runs first: it writes the index that warden-credentials reads.
	bins := []*bin{{name: "hello", path: hello}, {name: "warden", path: warden, args: f.args},
		{name: "warden-credentials", path: fast, args: f.args[1:], env: append(slices.Clip(f.env), "PATH="+b.TempDir())}}
	if old := os.Getenv("WARDEN_STARTUP_BASELINE"); old != "" {
		bins = append(bins, &bin{name: "baseline", path: old, args: f.args})
	}
	one := func(x *bin) time.Duration {
		cmd := exec.Command(x.path, x.args...)
		cmd.Env = f.env
		if x.env != nil {
			cmd.Env = x.env
		}
		start := time.Now()
		out, err := cmd.Output()
		d := time.Since(start)
		if err != nil || len(out) == 0 {
			b.Fatalf("%s: %v, stdout %q", x.name, err, out)
		}
		return d
	}
	for _, x := range bins {
		one(x) // page cache
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, x := range bins {
			x.times = append(x.times, one(x))
		}
	}
	b.StopTimer()
	if n := f.hits.Load(); n != 0 {
		b.Fatalf("the cached path made %d network requests", n)
	}
	median := func(ts []time.Duration) float64 {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		return float64(ts[len(ts)/2].Nanoseconds())
	}
	h := median(bins[0].times)
	b.ReportMetric(h/1e6, "hello-ms")
	for _, x := range bins[1:] {
		m := median(x.times)
		b.ReportMetric(m/1e6, x.name+"-ms")
		b.ReportMetric(m/h, x.name+"/hello")
	}
	b.ReportMetric(median(bins[2].times), "ns/op")
}
