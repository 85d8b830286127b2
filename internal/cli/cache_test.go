package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriteFileAtomicModes(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "a", "cache")
	p := filepath.Join(dir, "token.json")
	if err := WriteFileAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %o, want 700", m)
	}
	if m := mode(t, p); m != 0o600 {
		t.Errorf("file mode %o, want 600", m)
	}
	// An existing, too open directory and file are tightened by the write.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode after rewrite %o, want 700", m)
	}
	if m := mode(t, p); m != 0o600 {
		t.Errorf("file mode after rewrite %o, want 600", m)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("content %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// Readers racing a writer see the old content or the new, never a mix or
// an empty file.
func TestWriteFileAtomicNoTornReads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c", "x.json")
	a, b := bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10)
	if err := WriteFileAtomic(p, a); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := os.ReadFile(p)
				if err != nil || !(bytes.Equal(got, a) || bytes.Equal(got, b)) {
					bad.Add(1)
				}
			}
		}()
	}
	for i := range 200 {
		data := a
		if i%2 == 0 {
			data = b
		}
		if err := WriteFileAtomic(p, data); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d torn or failed reads", n)
	}
}

func TestReadJSONGarbageIsMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.json")
	var v tokenCache
	if ok, err := readJSON(p, &v); ok || err != nil {
		t.Fatalf("missing: %v %v", ok, err)
	}
	_ = os.WriteFile(p, []byte("{not json"), 0o600)
	if ok, err := readJSON(p, &v); ok || err != nil {
		t.Fatalf("garbage: %v %v", ok, err)
	}
}

func TestLockExcludes(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	unlock, err := a.Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, a.CacheDir); m != 0o700 {
		t.Errorf("cache dir mode %o", m)
	}
	// A second holder waits: with a short deadline it gives up.
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = a.Lock(short, "x")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v, want a deadline error", err)
	}
	// Another name is independent.
	u2, err := a.Lock(ctx, "y")
	if err != nil {
		t.Fatal(err)
	}
	u2()
	got := make(chan time.Time, 1)
	go func() {
		u, err := a.Lock(ctx, "x")
		if err != nil {
			t.Error(err)
		}
		got <- time.Now()
		u()
	}()
	time.Sleep(100 * time.Millisecond)
	released := time.Now()
	unlock()
	if at := <-got; at.Before(released) {
		t.Fatal("the waiter got the lock before it was released")
	}
}

// tokenServer is an IdP token endpoint for the refresh grant that rotates
// refresh tokens (a reused one is invalid_grant, as at wardend) and counts
// refreshes. Each refresh takes 50 ms, to widen any race.
type tokenServer struct {
	*httptest.Server
	mu        sync.Mutex
	current   string
	refreshes atomic.Int64
	gen       int
}

func newTokenServer(t testing.TB, firstRT string) *tokenServer {
	ts := &tokenServer{current: firstRT}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base, "token_endpoint": base + "/token",
			"userinfo_endpoint": base + "/userinfo", "revocation_endpoint": base + "/revoke",
			"device_authorization_endpoint": base + "/device"})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("client_id") != ClientID {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
			return
		}
		time.Sleep(50 * time.Millisecond)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if r.PostForm.Get("refresh_token") != ts.current {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"refresh token reused or unknown"}`))
			return
		}
		ts.refreshes.Add(1)
		ts.gen++
		ts.current = fmt.Sprintf("rt-%d", ts.gen+1)
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("at-%d", ts.gen), "token_type": "Bearer",
			"expires_in": 900, "refresh_token": ts.current})
	})
	ts.Server = httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// seedExpired configures a for the server and caches an expired access
// token with the refresh token rt.
func seedExpired(t testing.TB, a *App, idp, rt string) {
	t.Helper()
	if err := a.SaveConfig(Config{IdPURL: idp}); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(a.tokenPath(), tokenCache{IdPURL: idp, ClientID: ClientID, AccessToken: "old",
		Expiry: time.Now().Add(30 * time.Second), RefreshToken: rt, Username: "bob"}); err != nil {
		t.Fatal(err)
	}
}

func TestAccessTokenCachedAndRefreshed(t *testing.T) {
	ts := newTokenServer(t, "rt-1")
	a := testApp(t)
	seedExpired(t, a, ts.URL, "rt-1")
	// 30 s left is within the one-minute skew: refreshed.
	tok, err := a.AccessToken(context.Background(), false)
	if err != nil || tok != "at-1" {
		t.Fatalf("AccessToken: %q %v", tok, err)
	}
	// Now cached: no second refresh.
	if tok, err := a.AccessToken(context.Background(), false); err != nil || tok != "at-1" || ts.refreshes.Load() != 1 {
		t.Fatalf("second AccessToken: %q %v, %d refreshes", tok, err, ts.refreshes.Load())
	}
	var c tokenCache
	_, _ = readJSON(a.tokenPath(), &c)
	if c.RefreshToken != "rt-2" || c.Username != "bob" {
		t.Fatalf("cache after refresh: rt %q user %q", c.RefreshToken, c.Username)
	}
	if m := mode(t, a.tokenPath()); m != 0o600 {
		t.Fatalf("token.json mode %o", m)
	}
	// The injected clock past the expiry: refreshed again.
	a.Now = func() time.Time { return time.Now().Add(time.Hour) }
	if tok, err := a.AccessToken(context.Background(), false); err != nil || tok != "at-2" {
		t.Fatalf("after expiry: %q %v", tok, err)
	}
}

func TestAccessTokenLoginRequired(t *testing.T) {
	ts := newTokenServer(t, "rt-1")
	for _, tc := range []struct {
		name string
		seed func(a *App)
	}{
		{"nothing cached", func(a *App) { _ = a.SaveConfig(Config{IdPURL: ts.URL}) }},
		{"dead refresh token", func(a *App) { seedExpired(t, a, ts.URL, "rt-stolen") }},
		{"another IdP's token", func(a *App) {
			seedExpired(t, a, "https://other.example.com", "rt-1")
			_ = a.SaveConfig(Config{IdPURL: ts.URL})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testApp(t)
			tc.seed(a)
			_, err := a.AccessToken(context.Background(), false)
			if !errors.Is(err, ErrLoginRequired) {
				t.Fatalf("got %v, want ErrLoginRequired", err)
			}
		})
	}
	a := testApp(t)
	if _, err := a.AccessToken(context.Background(), false); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("unconfigured: %v", err)
	}
}

// An unreachable IdP is an error of its own, not "log in again", and the
// cached refresh token is kept.
func TestAccessTokenIdPDown(t *testing.T) {
	ts := newTokenServer(t, "rt-1")
	a := testApp(t)
	seedExpired(t, a, ts.URL, "rt-1")
	ts.Close()
	_, err := a.AccessToken(context.Background(), false)
	if err == nil || errors.Is(err, ErrLoginRequired) {
		t.Fatalf("IdP down: %v", err)
	}
	if _, ok := a.readToken(ts.URL); !ok {
		t.Fatal("the cached token was dropped although the IdP was only unreachable")
	}
}

// An IdP answering 503 temporarily_unavailable (wardend during a Redis
// outage) is not a dead sign-in either.
func TestAccessTokenIdPUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "http://" + r.Host, "token_endpoint": "http://" + r.Host + "/token"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}))
	defer srv.Close()
	a := testApp(t)
	seedExpired(t, a, srv.URL, "rt-1")
	_, err := a.AccessToken(context.Background(), false)
	if err == nil || errors.Is(err, ErrLoginRequired) {
		t.Fatalf("IdP unavailable: %v", err)
	}
	if _, ok := a.readToken(srv.URL); !ok {
		t.Fatal("the cached token was dropped although the IdP was only unavailable")
	}
}

// 16 goroutines (each with its own App on the same cache, as separate
// processes would be) find an expired access token: exactly one refresh.
func TestAccessTokenConcurrentGoroutines(t *testing.T) {
	ts := newTokenServer(t, "rt-1")
	base := testApp(t)
	seedExpired(t, base, ts.URL, "rt-1")
	var wg sync.WaitGroup
	toks := make([]string, 16)
	errs := make([]error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := *base
			toks[i], errs[i] = a.AccessToken(context.Background(), false)
		}()
	}
	wg.Wait()
	for i := range 16 {
		if errs[i] != nil || toks[i] != "at-1" {
			t.Errorf("caller %d: %q %v", i, toks[i], errs[i])
		}
	}
	if n := ts.refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}

// helperEnv makes the test binary act as `warden` calling AccessToken
// (see TestMain).
const helperEnv = "WARDEN_CLI_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "accesstoken" {
		a := NewApp()
		tok, err := a.AccessToken(context.Background(), false)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		fmt.Print(tok)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// 16 processes (this test binary re-executed) find an expired access
// token: exactly one refresh, all get the same token.
func TestAccessTokenConcurrentProcesses(t *testing.T) {
	ts := newTokenServer(t, "rt-1")
	a := testApp(t)
	seedExpired(t, a, ts.URL, "rt-1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([]string, 16)
	errs := make([]error, 16)
	start := make(chan struct{})
	for i := range 16 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=accesstoken", "WARDEN_CONFIG_DIR="+a.ConfigDir, "WARDEN_CACHE_DIR="+a.CacheDir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
			}
			outs[i] = stdout.String()
		}()
	}
	close(start)
	wg.Wait()
	for i := range 16 {
		if errs[i] != nil || outs[i] != "at-1" {
			t.Errorf("process %d: %q %v", i, outs[i], errs[i])
		}
	}
	if n := ts.refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
}
