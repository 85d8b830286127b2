package store_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// startCluster starts a real three-master Redis Cluster on loopback (for
// TestCluster and TestRulesCluster) and returns its addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	addrs, _ := startClusterServers(t)
	return addrs
}

// startClusterServers is startCluster that also returns the servers (to
// kill one) and passes extra arguments to every redis-server.
func startClusterServers(t *testing.T, extra ...string) ([]string, []*redisServer) {
	t.Helper()
	return startClusterReplicas(t, 0, extra...)
}

// startClusterReplicas starts three masters with replicas replicas each
// (redis-cli --cluster-replicas): 3·(1+replicas) servers.
func startClusterReplicas(t *testing.T, replicas int, extra ...string) ([]string, []*redisServer) {
	t.Helper()
	cli := testenv.Binary(t, "redis-cli")
	var addrs []string
	var srvs []*redisServer
	for range 3 * (1 + replicas) {
		args := append([]string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}, extra...)
		srv := startRedis(t, freePort(t, true), args...)
		addrs, srvs = append(addrs, srv.addr()), append(srvs, srv)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok on %s: %v %s", a, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = c.Close()
	}
	return addrs, srvs
}

// TestRulesCluster runs the rules and audit suites on a real Redis
// Cluster: the save script's keys must all be in one slot (else Redis
// answers CROSSSLOT), and pub/sub must reach a replica subscribed through
// another node.
func TestRulesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three redis-server processes")
	}
	addrs := startCluster(t)
	b := rulesBackend{
		open: func(t testing.TB) *store.Store {
			return openCfg(t, store.RedisConfig{Mode: store.ModeCluster, Addrs: addrs, KeyPrefix: uniquePrefix()})
		},
		twin: func(t testing.TB, st *store.Store) *store.Store {
			// The twin knows the nodes in another order.
			rev := []string{addrs[2], addrs[1], addrs[0]}
			return openCfg(t, store.RedisConfig{Mode: store.ModeCluster, Addrs: rev, KeyPrefix: st.Key("")})
		},
		pubsubKill: killPubsub,
	}
	t.Run("rules", func(t *testing.T) { rulesSuite(t, b, 50) })
	t.Run("audit", func(t *testing.T) { auditSuite(t, b) })
}
