package store_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

// replicaAcked matches a master's INFO replication once its (first)
// replica is online and has acknowledged an offset: "state=online" alone
// is set while the replica may still be loading the RDB, and a WAIT then
// times out.
var replicaAcked = regexp.MustCompile(`slave0:[^\r\n]*state=online,offset=[1-9]`)

// TestWaitReplicas runs a master with one real replica (redis-server
// --replicaof) and redis.wait_replicas set: a session creation, an OIDC
// grant creation and a refresh rotation return only once the replica has
// the write; asking for more replicas than answer, or losing the replica,
// turns them into ErrUnavailable (ErrReplicasBehind), the sign-in's 503.
func TestWaitReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two redis-server processes")
	}
	ctx := context.Background()
	master, replica := startReplicated(t)
	waitFor(t, 10*time.Second, "replica acknowledging", func() bool {
		c := redis.NewClient(&redis.Options{Addr: master.addr()})
		defer c.Close()
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && replicaAcked.MatchString(info)
	})
	open := func(t *testing.T, n int) *store.Store {
		return openCfg(t, store.RedisConfig{Addrs: []string{master.addr()}, KeyPrefix: uniquePrefix(),
			WaitReplicas: n, WaitTimeout: 100 * time.Millisecond})
	}
	rc := redis.NewClient(&redis.Options{Addr: replica.addr()})
	t.Cleanup(func() { _ = rc.Close() })
	now := time.Now()
	grant := func(id string) store.OIDCGrant {
		return store.OIDCGrant{ID: id, ClientID: "c", Subject: "sub1", User: []byte(`{"username":"bob"}`),
			Scopes: []string{"openid", "offline_access"}, AuthTime: now, Expires: now.Add(time.Hour)}
	}

	t.Run("acknowledged", func(t *testing.T) {
		st := open(t, 1)
		s := newSessions(t, st, newClock())
		_, sess, err := s.Create(ctx, user("w-1", "alice"), store.SessionMeta{})
		mustf(t, err, "create session")
		// WAIT returned: the replica has it already, no polling needed.
		if n := rc.Exists(ctx, st.Key("sess:"+sess.Key)).Val(); n != 1 {
			t.Fatal("session not on the replica when Create returned")
		}
		o := store.NewOIDC(st)
		mustf(t, o.CreateGrant(ctx, grant("g1"), "r1", "at1", time.Minute, 30*time.Minute, now), "create grant")
		if n := rc.Exists(ctx, st.Key("oidc:g:{g1}")).Val(); n != 1 {
			t.Fatal("grant not on the replica when CreateGrant returned")
		}
		mustf(t, o.Rotate(ctx, grant("g1"), "r1", "r2", "at2", time.Minute, 30*time.Minute, now), "rotate")
		if cur := rc.HGet(ctx, st.Key("oidc:g:{g1}"), "cur").Val(); cur != "r2" {
			t.Fatalf("replica's current refresh hash %q after Rotate returned, want r2", cur)
		}
	})

	wantBehind := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, store.ErrReplicasBehind) {
			t.Fatalf("%s: %v, want ErrUnavailable and ErrReplicasBehind", what, err)
		}
	}
	t.Run("too_few_replicas", func(t *testing.T) {
		st := open(t, 2) // one replica exists
		s := newSessions(t, st, newClock())
		_, _, err := s.Create(ctx, user("w-2", "bob"), store.SessionMeta{})
		wantBehind(t, "create session", err)
		o := store.NewOIDC(st)
		wantBehind(t, "create grant", o.CreateGrant(ctx, grant("g2"), "r1", "at1", time.Minute, 30*time.Minute, now))
	})

	t.Run("off_by_default", func(t *testing.T) {
		st := open(t, 0)
		s := newSessions(t, st, newClock())
		_, _, err := s.Create(ctx, user("w-3", "carol"), store.SessionMeta{})
		mustf(t, err, "create session without WAIT")
	})

	t.Run("replica_lost", func(t *testing.T) {
		st := open(t, 1)
		o := store.NewOIDC(st)
		mustf(t, o.CreateGrant(ctx, grant("g3"), "r1", "at1", time.Minute, 30*time.Minute, now), "create grant")
		replica.kill()
		waitFor(t, 10*time.Second, "master sees the replica gone", func() bool {
			info, err := st.Client().Info(ctx, "replication").Result()
			return err == nil && strings.Contains(info, "connected_slaves:0")
		})
		wantBehind(t, "rotate", o.Rotate(ctx, grant("g3"), "r1", "r2", "at2", time.Minute, 30*time.Minute, now))
		s := newSessions(t, st, newClock())
		_, _, err := s.Create(ctx, user("w-4", "dave"), store.SessionMeta{})
		wantBehind(t, "create session", err)
	})
}

// TestWaitReplicasCluster: in Cluster, WAIT goes to the master of the
// session (or grant) key, after a write in that key's slot, so that it
// counts that master's replica.
func TestWaitReplicasCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six redis-server processes")
	}
	ctx := context.Background()
	addrs, _ := startClusterReplicas(t, 1)
	// "state=online" is not enough: the replica may still be loading the
	// RDB and acknowledge nothing (offset=0). Ready is when every master's
	// replica has acknowledged some offset.
	waitFor(t, 30*time.Second, "every replica acknowledging", func() bool {
		n := 0
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			if info, err := c.Info(ctx, "replication").Result(); err == nil && replicaAcked.MatchString(info) {
				n++
			}
			_ = c.Close()
		}
		return n == 3
	})
	open := func(t *testing.T, n int) *store.Store {
		return openCfg(t, store.RedisConfig{Mode: store.ModeCluster, Addrs: addrs, KeyPrefix: uniquePrefix(),
			WaitReplicas: n, WaitTimeout: 100 * time.Millisecond})
	}
	now := time.Now()
	g := store.OIDCGrant{ID: "cg1", ClientID: "c", Subject: "sub1", User: []byte(`{"username":"bob"}`),
		Scopes: []string{"openid", "offline_access"}, AuthTime: now, Expires: now.Add(time.Hour)}

	st := open(t, 1)
	s := newSessions(t, st, newClock())
	for i := range 10 { // users on every master
		_, _, err := s.Create(ctx, user("cw-"+itoa(i), "u"), store.SessionMeta{})
		mustf(t, err, "create session %d", i)
	}
	o := store.NewOIDC(st)
	mustf(t, o.CreateGrant(ctx, g, "r1", "at1", time.Minute, 30*time.Minute, now), "create grant")
	mustf(t, o.Rotate(ctx, g, "r1", "r2", "at2", time.Minute, 30*time.Minute, now), "rotate")

	st2 := open(t, 2) // each master has one replica
	_, _, err := newSessions(t, st2, newClock()).Create(ctx, user("cw-x", "u"), store.SessionMeta{})
	if !errors.Is(err, store.ErrReplicasBehind) {
		t.Fatalf("create with wait_replicas 2 of 1: %v, want ErrReplicasBehind", err)
	}
}
