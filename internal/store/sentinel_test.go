package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestSentinel starts a master, a replica and one Sentinel, opens the store
// in sentinel mode, kills the master and checks that the same Store follows
// the failover to the promoted replica.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three redis-server processes and waits for a failover")
	}
	ctx := context.Background()
	master, replica := startReplicated(t)

	sport := freePort(t, false)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	mustf(t, os.WriteFile(conf, fmt.Appendf(nil,
		"port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
			"sentinel monitor wmaster 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds wmaster 500\n"+
			"sentinel failover-timeout wmaster 5000\n",
		sport, dir, filepath.Join(dir, "sentinel.log"), master.port), 0o600), "write sentinel.conf")
	cmd := exec.Command(testenv.Binary(t, "redis-server"), conf, "--sentinel")
	mustf(t, cmd.Start(), "start sentinel")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	saddr := "127.0.0.1:" + strconv.Itoa(sport)
	waitFor(t, 10*time.Second, "sentinel knows the replica", func() bool {
		s := redis.NewSentinelClient(&redis.Options{Addr: saddr})
		defer s.Close()
		reps, err := s.Replicas(ctx, "wmaster").Result()
		return err == nil && len(reps) == 1
	})

	cfg := store.RedisConfig{Mode: store.ModeSentinel, Addrs: []string{saddr}, MasterName: "wmaster", KeyPrefix: uniquePrefix(),
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}
	st := openCfg(t, cfg)
	s := newSessions(t, st, newClock())
	tok, _, err := s.Create(ctx, user("u-sent", "alice"), store.SessionMeta{})
	mustf(t, err, "create via sentinel")
	// The session reached the replica before the master dies: the
	// replica's offset catches up with the master's. (WAIT 1 2000, as
	// before, proves nothing when it times out with 0 replicas, which it
	// does on a loaded machine, and it only covers the writes of its own
	// pooled connection.)
	waitReplicated(t, master, replica)

	master.kill()
	start := time.Now()
	var lastErr error
	waitFor(t, 30*time.Second, "failover", func() bool {
		_, lastErr = s.Get(ctx, tok)
		if lastErr != nil && !errors.Is(lastErr, store.ErrUnavailable) {
			t.Fatalf("during failover: %v (want ErrUnavailable until it is over)", lastErr)
		}
		return lastErr == nil
	})
	t.Logf("session readable on the promoted replica %s after %v", replica.addr(), time.Since(start).Round(time.Millisecond))
	_, _, err = s.Create(ctx, user("u-sent", "alice"), store.SessionMeta{})
	mustf(t, err, "create after failover")
}

// waitReplicated waits until replica has processed everything master has
// written so far (INFO replication: the replica's slave_repl_offset reaches
// the master's master_repl_offset).
func waitReplicated(t testing.TB, master, replica *redisServer) {
	t.Helper()
	ctx := context.Background()
	offset := func(addr, field string) int64 {
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return -1
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					return n
				}
			}
		}
		return -1
	}
	want := offset(master.addr(), "master_repl_offset")
	if want < 0 {
		t.Fatal("no master_repl_offset from the master")
	}
	waitFor(t, 30*time.Second, "the replica to catch up", func() bool {
		return offset(replica.addr(), "slave_repl_offset") >= want
	})
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
