package keys

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is an injected, settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ids(ss []Signer) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID+"/"+s.State)
	}
	return strings.Join(out, " ")
}

func mustOpen(t testing.TB, dir string, clk *clock) *Ring {
	t.Helper()
	r, err := Open(dir, Config{}, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// TestRingLifecycle: first start, rotate (next published, not signing),
// promote (previous published for PublishPrevious, then not), pruning.
func TestRingLifecycle(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	opts := Options{Now: clk.Now}

	if _, err := Rotate(dir, Config{}, opts); !errors.Is(err, ErrNoRing) {
		t.Fatalf("rotate before the ring exists: %v", err)
	}
	if _, err := List(dir); !errors.Is(err, ErrNoRing) {
		t.Fatalf("list before the ring exists: %v", err)
	}

	r := mustOpen(t, dir, clk)
	first := r.Current()
	if first.State != StateCurrent || first.Key.N.BitLen() != 2048 || !first.Created.Equal(clk.Now()) {
		t.Fatalf("first key: state %s, %d bits, created %v", first.State, first.Key.N.BitLen(), first.Created)
	}
	if first.ID != Thumbprint(&first.Key.PublicKey) {
		t.Fatal("ID is not the key's thumbprint")
	}
	if _, ok := r.Next(); ok || len(r.Published()) != 1 {
		t.Fatalf("fresh ring: %s", ids(r.Published()))
	}
	if again := mustOpen(t, dir, clk); again.Current().ID != first.ID {
		t.Fatal("second open made another key")
	}
	checkModes(t, dir)

	next, err := Rotate(dir, Config{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if next.State != StateNext || next.ID == first.ID {
		t.Fatalf("rotate returned %s/%s", next.ID, next.State)
	}
	if _, err := Rotate(dir, Config{}, opts); !errors.Is(err, ErrNextExists) {
		t.Fatalf("second rotate: %v", err)
	}
	if changed, err := r.reload(context.Background()); err != nil || !changed {
		t.Fatalf("reload after rotate: %v %v", changed, err)
	}
	if r.Current().ID != first.ID {
		t.Fatal("rotate must not change the signing key")
	}
	if n, ok := r.Next(); !ok || n.ID != next.ID {
		t.Fatal("next key not visible")
	}
	if got, want := ids(r.Published()), first.ID+"/current "+next.ID+"/next"; got != want {
		t.Fatalf("published %s, want %s", got, want)
	}
	checkModes(t, dir)

	clk.Add(time.Hour)
	retiredAt := clk.Now()
	cur, err := Promote(dir, Config{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cur.ID != next.ID || cur.State != StateCurrent || cur.Key == nil {
		t.Fatalf("promote returned %s/%s", cur.ID, cur.State)
	}
	if _, err := Promote(dir, Config{}, opts); !errors.Is(err, ErrNoNext) {
		t.Fatalf("promote without next: %v", err)
	}
	if _, err := r.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Current().ID != next.ID {
		t.Fatal("promoted key does not sign")
	}
	pub := r.Published()
	if got, want := ids(pub), next.ID+"/current "+first.ID+"/previous"; got != want {
		t.Fatalf("published %s, want %s", got, want)
	}
	if !pub[1].RetiredAt.Equal(retiredAt) {
		t.Fatalf("retired at %v, want %v", pub[1].RetiredAt, retiredAt)
	}

	clk.Add(DefaultPublishPrevious - time.Second)
	if len(r.Published()) != 2 {
		t.Fatal("previous key unpublished too early")
	}
	clk.Add(time.Second)
	if got := ids(r.Published()); got != next.ID+"/current" {
		t.Fatalf("after publish_previous: %s", got)
	}
	if len(r.All()) != 2 {
		t.Fatal("an expired previous key stays listed until the next promote")
	}

	// The next promote drops the expired key and deletes its files.
	third, err := Rotate(dir, Config{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Promote(dir, Config{}, opts); err != nil {
		t.Fatal(err)
	}
	all, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), third.ID+"/current "+next.ID+"/previous"; got != want {
		t.Fatalf("after second promote: %s, want %s", got, want)
	}
	for _, f := range []string{"key-" + first.ID + ".pem", "cert-" + first.ID + ".pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed: %v", f, err)
		}
	}
}

// checkModes: the directory is 0700 and every file in it 0600.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

func TestKeySizes(t *testing.T) {
	for _, size := range []int{2048, 3072, 4096} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r, err := Open(dir, Config{Size: size}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Current().Key.N.BitLen(); got != size {
				t.Fatalf("%d bits, want %d", got, size)
			}
			if got := r.Current().Cert.PublicKey.(*rsa.PublicKey).N.BitLen(); got != size {
				t.Fatalf("certificate key %d bits", got)
			}
		})
	}
	if _, err := Open(t.TempDir(), Config{Size: 1024}, Options{}); err == nil || !strings.Contains(err.Error(), "size: must be 2048, 3072 or 4096") {
		t.Fatalf("1024 bits: %v", err)
	}
}

// TestConcurrentOpen: replicas starting together on one empty directory end
// with one key.
func TestConcurrentOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	const n = 6
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := Open(dir, Config{}, Options{})
			if err != nil {
				errs[i] = err
				return
			}
			got[i] = r.Current().ID
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("replica %d got key %s, replica 0 %s", i, got[i], got[0])
		}
	}
	checkOneKey(t, dir)
}

func checkOneKey(t *testing.T, dir string) {
	t.Helper()
	keys, _ := filepath.Glob(filepath.Join(dir, "key-*.pem"))
	if len(keys) != 1 {
		t.Fatalf("%d key files, want 1: %v", len(keys), keys)
	}
}

// TestConcurrentOpenProcesses: the same with separate processes (this test
// binary re-run as a helper), which is what replicas on a shared volume are.
func TestConcurrentOpenProcesses(t *testing.T) {
	if dir := os.Getenv("WARDEN_KEYS_HELPER_DIR"); dir != "" {
		r, err := Open(dir, Config{}, Options{})
		if err != nil {
			os.Stdout.WriteString("ERR " + err.Error())
			os.Exit(1)
		}
		os.Stdout.WriteString("ID " + r.Current().ID)
		os.Exit(0)
	}
	dir := filepath.Join(t.TempDir(), "keys")
	const n = 4
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestConcurrentOpenProcesses$")
		cmds[i].Env = append(os.Environ(), "WARDEN_KEYS_HELPER_DIR="+dir)
		outs[i] = new(bytes.Buffer)
		cmds[i].Stdout = outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("process %d: %v: %s", i, err, outs[i])
		}
	}
	for i := range n {
		if outs[i].String() != outs[0].String() || !strings.HasPrefix(outs[0].String(), "ID ") {
			t.Fatalf("process %d: %q, process 0: %q", i, outs[i], outs[0])
		}
	}
	checkOneKey(t, dir)
}

// TestCrashSafety: what a crash (or a careless hand) can leave behind.
func TestCrashSafety(t *testing.T) {
	clk := newClock()
	setup := func(t *testing.T) (string, *Ring) {
		dir := filepath.Join(t.TempDir(), "keys")
		return dir, mustOpen(t, dir, clk)
	}

	t.Run("leftover temp files and unnamed key files are ignored", func(t *testing.T) {
		dir, r := setup(t)
		// a crash in the middle of writing the manifest, and one after a
		// rotation wrote its key files but before the manifest named them
		os.WriteFile(filepath.Join(dir, ".tmp-manifest.json-123"), []byte(`{"version":1,"ke`), 0o600)
		s, kpem, cpem, err := newSigner(Options{}.withDefaults(), AlgRS256, 2048, time.Hour*24)
		if err != nil {
			t.Fatal(err)
		}
		e := entryFor(s, "")
		os.WriteFile(filepath.Join(dir, e.KeyFile), kpem, 0o600)
		os.WriteFile(filepath.Join(dir, e.CertFile), cpem, 0o600)
		r2 := mustOpen(t, dir, clk)
		if r2.Current().ID != r.Current().ID || len(r2.All()) != 1 {
			t.Fatalf("ring changed: %s", ids(r2.All()))
		}
		if _, err := Rotate(dir, Config{}, Options{Now: clk.Now}); err != nil {
			t.Fatalf("rotate after a crash: %v", err)
		}
	})

	t.Run("a missing key file is an error, not a new key", func(t *testing.T) {
		dir, r := setup(t)
		kf := filepath.Join(dir, "key-"+r.Current().ID+".pem")
		os.Remove(kf)
		before, _ := os.ReadFile(filepath.Join(dir, manifestFile))
		_, err := Open(dir, Config{}, Options{})
		if err == nil || !strings.Contains(err.Error(), kf) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("want an error naming %s, got %v", kf, err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, manifestFile))
		if !bytes.Equal(before, after) {
			t.Fatal("manifest rewritten")
		}
		if keys, _ := filepath.Glob(filepath.Join(dir, "key-*.pem")); len(keys) != 0 {
			t.Fatalf("a new key was made: %v", keys)
		}
	})

	t.Run("a swapped key file is refused", func(t *testing.T) {
		dir, r := setup(t)
		n, err := Rotate(dir, Config{}, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		cur := r.Current().ID
		for _, p := range []string{"key-", "cert-"} {
			b, _ := os.ReadFile(filepath.Join(dir, p+n.ID+".pem"))
			os.WriteFile(filepath.Join(dir, p+cur+".pem"), b, 0o600)
		}
		if _, err := Open(dir, Config{}, Options{}); err == nil || !strings.Contains(err.Error(), "holds a different key") {
			t.Fatalf("got %v", err)
		}
	})

	for _, tc := range []struct {
		name, manifest, want string
	}{
		{"truncated", `{"version":1,"keys":[{"id":"x"`, "unexpected EOF"},
		{"empty", ``, "EOF"},
		{"unknown field", `{"version":1,"keys":[],"extra":1}`, `unknown field "extra"`},
		{"trailing data", `{"version":1,"keys":[]} {}`, "data after the JSON object"},
		{"wrong version", `{"version":2,"keys":[]}`, "version 2 not supported"},
		{"no current", `{"version":1,"keys":[]}`, "exactly one current key needed (found 0)"},
		{"path traversal", `{"version":1,"keys":[{"id":"a","state":"current","key_file":"../a.pem","cert_file":"b.pem"}]}`, `key_file "../a.pem" must be a plain file name`},
		{"absolute path", `{"version":1,"keys":[{"id":"a","state":"current","key_file":"a.pem","cert_file":"/etc/passwd"}]}`, `cert_file "/etc/passwd" must be a plain file name`},
		{"bad state", `{"version":1,"keys":[{"id":"a","state":"spare","key_file":"a","cert_file":"b"}]}`, `state "spare"`},
		{"previous without retired_at", `{"version":1,"keys":[{"id":"a","state":"previous","key_file":"a","cert_file":"b"}]}`, "needs retired_at"},
		{"two next", `{"version":1,"keys":[{"id":"a","state":"current","key_file":"a","cert_file":"b"},{"id":"b","state":"next","key_file":"c","cert_file":"d"},{"id":"c","state":"next","key_file":"e","cert_file":"f"}]}`, "at most one next key"},
		{"duplicate id", `{"version":1,"keys":[{"id":"a","state":"current","key_file":"a","cert_file":"b"},{"id":"a","state":"next","key_file":"c","cert_file":"d"}]}`, "listed twice"},
	} {
		t.Run("manifest "+tc.name, func(t *testing.T) {
			dir, _ := setup(t)
			os.WriteFile(filepath.Join(dir, manifestFile), []byte(tc.manifest), 0o600)
			_, err := Open(dir, Config{}, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), manifestFile) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			if _, err := Rotate(dir, Config{}, Options{}); err == nil {
				t.Fatal("rotate on a broken manifest must fail")
			}
		})
	}
}

// TestMigrateStep1: step 1's key pair becomes the current key, its files
// unchanged, and the ring rotates from there.
func TestMigrateStep1(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	old, created, err := LoadOrGenerate(dir, Options{Now: clk.Now})
	if err != nil || !created {
		t.Fatal(err)
	}
	kb, _ := os.ReadFile(filepath.Join(dir, keyFile))
	cb, _ := os.ReadFile(filepath.Join(dir, certFile))

	clk.Add(48 * time.Hour)
	r := mustOpen(t, dir, clk)
	cur := r.Current()
	if cur.ID != Thumbprint(&old.Key.PublicKey) || !cur.Key.Equal(old.Key) || !bytes.Equal(cur.Cert.Raw, old.Cert.Raw) {
		t.Fatal("the step-1 key is not the current key")
	}
	if !cur.Created.Equal(old.Cert.NotBefore) {
		t.Fatalf("created %v, want the certificate's NotBefore %v", cur.Created, old.Cert.NotBefore)
	}
	kb2, _ := os.ReadFile(filepath.Join(dir, keyFile))
	cb2, _ := os.ReadFile(filepath.Join(dir, certFile))
	if !bytes.Equal(kb, kb2) || !bytes.Equal(cb, cb2) {
		t.Fatal("step-1 files changed")
	}
	m, _ := os.ReadFile(filepath.Join(dir, manifestFile))
	if !strings.Contains(string(m), `"key_file": "signing-key.pem"`) {
		t.Fatalf("manifest: %s", m)
	}
	if _, err := Rotate(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := Promote(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	all, _ := List(dir)
	if len(all) != 2 || all[1].ID != cur.ID || all[1].State != StatePrevious {
		t.Fatalf("after rotation: %s", ids(all))
	}

	t.Run("half a pair is refused", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := LoadOrGenerate(dir, Options{}); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, certFile))
		if _, err := Open(dir, Config{}, Options{}); err == nil || !strings.Contains(err.Error(), "only one of") {
			t.Fatalf("got %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, manifestFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("no manifest may be written")
		}
	})
}

// syncBuffer is a log sink that the watcher goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatch: a replica follows rotations made by another process, and keeps
// its last good ring while the manifest is broken.
func TestWatch(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	r := mustOpen(t, dir, clk)
	r.cfg.ReloadInterval = 10 * time.Millisecond // below what Validate allows, for speed
	first := r.Current().ID
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	defer func() { cancel(); <-done }()

	next, err := Rotate(dir, Config{}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next key", func() bool { n, ok := r.Next(); return ok && n.ID == next.ID })

	good, _ := os.ReadFile(filepath.Join(dir, manifestFile))
	// A manifest cut in half (an editor mid-save), put in place in one step:
	// os.WriteFile truncates first, and a poll between the truncation and
	// the write would see an empty file, a second distinct problem.
	half := filepath.Join(dir, "half.tmp")
	os.WriteFile(half, good[:len(good)/2], 0o600)
	if err := os.Rename(half, filepath.Join(dir, manifestFile)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the error log", func() bool { return strings.Contains(logs.String(), "keeping the last good key ring") })
	time.Sleep(100 * time.Millisecond) // several more polls
	if c := strings.Count(logs.String(), "keeping the last good key ring"); c != 1 {
		t.Fatalf("%d error lines for one problem, want 1:\n%s", c, logs.String())
	}
	if r.Current().ID != first || len(r.Published()) != 2 {
		t.Fatalf("ring changed on a broken manifest: %s", ids(r.Published()))
	}
	os.WriteFile(filepath.Join(dir, manifestFile), good, 0o600)

	if _, err := Promote(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the promoted key", func() bool { return r.Current().ID == next.ID })
	if !strings.Contains(logs.String(), "keys: reloaded") {
		t.Fatalf("no reload logged:\n%s", logs.String())
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if !reflect.DeepEqual(c, Config{Store: "file", Size: 2048, PublishPrevious: 720 * time.Hour, CertValidity: 87600 * time.Hour, ReloadInterval: 30 * time.Second}) {
		t.Fatalf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := Config{Store: StoreRedis, EncryptionKeyFile: "/k"}
	r.SetDefaults()
	if r.ReloadInterval != 500*time.Millisecond || r.Validate() != nil {
		t.Fatalf("redis defaults %+v: %v", r, r.Validate())
	}
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"size", Config{Size: 1024}, []string{"size: must be 2048, 3072 or 4096 (got 1024)"}},
		{"size 8192", Config{Size: 8192}, []string{"size: must be 2048, 3072 or 4096 (got 8192)"}},
		{"publish_previous", Config{PublishPrevious: time.Minute}, []string{"publish_previous: must be at least 1h (got 1m0s)"}},
		{"negative publish_previous", Config{PublishPrevious: -time.Hour}, []string{"publish_previous: must be at least 1h"}},
		{"cert_validity", Config{CertValidity: time.Hour}, []string{"cert_validity: must be between 24h and 100 years (got 1h0m0s)"}},
		{"reload_interval", Config{ReloadInterval: time.Millisecond}, []string{"reload_interval: must be between 250ms and 1h"}},
		{"store", Config{Store: "s3"}, []string{`store: must be file or redis (got "s3")`}},
		{"redis without a key", Config{Store: "redis"}, []string{"encryption_key_file: required with store: redis"}},
		{"a key for a directory", Config{EncryptionKeyFile: "/k"}, []string{"encryption_key_file: only with store: redis"}},
		{"all at once", Config{Size: 1, PublishPrevious: 1, CertValidity: 1, ReloadInterval: 2 * time.Hour},
			[]string{"size:", "publish_previous:", "cert_validity:", "reload_interval:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.SetDefaults()
			err := tc.c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.want), err)
			}
		})
	}
}

// TestConcurrentRotate: two operators rotating at once make one next key.
func TestConcurrentRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	mustOpen(t, dir, newClock())
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Rotate(dir, Config{}, Options{})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrNextExists):
			t.Fatal(err)
		}
	}
	all, err := List(dir)
	if ok != 1 || err != nil || len(all) != 2 {
		t.Fatalf("%d rotations succeeded, ring %s, %v", ok, ids(all), err)
	}
}
