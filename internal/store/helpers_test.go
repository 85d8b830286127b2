package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// uniquePrefix isolates one test's keys from every other test and run.
func uniquePrefix() string {
	b := make([]byte, 6)
	_, _ = io.ReadFull(rand.Reader, b)
	return "wtest:" + hex.EncodeToString(b) + ":"
}

// openReal opens a Store on REDIS_ADDR with a key prefix of its own, and
// deletes the test's keys at the end.
func openReal(t testing.TB) *store.Store {
	t.Helper()
	env := testenv.Require(t, "REDIS_ADDR")
	cfg := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, KeyPrefix: uniquePrefix()}
	return openCfg(t, cfg)
}

func openCfg(t testing.TB, cfg store.RedisConfig) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		deletePrefix(t, st)
		_ = st.Close()
	})
	return st
}

// allKeys returns every key under the store's prefix (on every master in
// cluster mode).
func allKeys(t testing.TB, st *store.Store) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, st.Key("*"), 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cc, ok := st.Client().(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, st.Client())
	}
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return keys
}

func deletePrefix(t testing.TB, st *store.Store) {
	ctx := context.Background()
	keys := allKeys(t, st)
	for len(keys) > 0 {
		n := min(len(keys), 500)
		pipe := st.Client().Pipeline()
		for _, k := range keys[:n] {
			pipe.Unlink(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		keys = keys[n:]
	}
}

// freePort returns a loopback TCP port that is free now (and, with bus,
// whose +10000 cluster bus port is free too).
func freePort(t testing.TB, bus bool) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !bus {
			return port
		}
		if port+10000 > 65535 {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err == nil {
			_ = l2.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// redisServer is a redis-server process started by a test.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	// probe, when set, is how start checks readiness (TLS, passwords).
	probe *redis.Options
}

func startRedis(t testing.TB, port int, extra ...string) *redisServer {
	return startRedisProbe(t, port, nil, extra...)
}

func startRedisProbe(t testing.TB, port int, probe *redis.Options, extra ...string) *redisServer {
	t.Helper()
	s := &redisServer{
		t: t, bin: testenv.Binary(t, "redis-server"), port: port, dir: t.TempDir(),
		args: extra, probe: probe,
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"),
	}, s.args...)
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	probe := &redis.Options{Addr: s.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1}
	if s.probe != nil {
		probe = s.probe
	}
	c := redis.NewClient(probe)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server on %s not ready: %v\n%s", s.addr(), err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server abruptly (SIGKILL), as a crash would.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *redisServer) stop() { s.kill() }

// countingHook counts the commands a client sends.
type countingHook struct {
	mu sync.Mutex
	n  int
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		h.n += len(cmds)
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *countingHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func user(id, name string) identity.User { return identity.User{ID: id, Username: name} }

func mustf(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// startReplicated starts a master and a replica of it (real redis-server
// processes) and waits until the master sees the replica online.
func startReplicated(t testing.TB) (master, replica *redisServer) {
	t.Helper()
	master = startRedis(t, freePort(t, false))
	replica = startRedis(t, freePort(t, false), "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	waitFor(t, 10*time.Second, "replica in sync", func() bool {
		c := redis.NewClient(&redis.Options{Addr: master.addr()})
		defer c.Close()
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "state=online")
	})
	return master, replica
}
