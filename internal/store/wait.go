package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrReplicasBehind is the cause (wrapped with ErrUnavailable) when fewer
// replicas than redis.wait_replicas acknowledged a write within
// redis.wait_timeout.
var ErrReplicasBehind = errors.New("fewer replicas acknowledged the write than redis.wait_replicas")

// awaitReplicas makes a write that just succeeded on the master serving
// key durable across a failover, when redis.wait_replicas is set: it
// writes a marker in key's hash slot and sends WAIT numreplicas timeout on
// the same connection (a pipeline on the client of that master: WAIT
// counts the replicas that acknowledged this connection's writes). A
// master's replication stream is one ordered log, so a replica that has
// the marker has every write that master completed before it, the
// caller's included, whichever connection made them. Fewer
// acknowledgements than asked is ErrUnavailable wrapping
// ErrReplicasBehind: the caller fails (a sign-in or a token request gets
// 503) although the write itself stands on the master. With wait_replicas
// 0 (the default) it does nothing.
//
// Only key's master is waited for: writes of the same operation to other
// masters (Cluster) are not covered.
func (s *Store) awaitReplicas(ctx context.Context, op, key string) error {
	if s.waitReplicas <= 0 {
		return nil
	}
	var c redis.Cmdable = s.client
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return Unavailable(op+": wait", err)
		}
		c = node
	}
	pipe := c.Pipeline()
	pipe.Set(ctx, s.Key("wait:{"+slotTag(hashSlot(key))+"}"), "1", time.Minute)
	wait := pipe.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil {
		return Unavailable(op+": wait", err)
	}
	n, err := wait.Int64()
	if err != nil {
		return Unavailable(op+": wait", err)
	}
	if n < int64(s.waitReplicas) {
		return Unavailable(op, fmt.Errorf("%d of %d replicas within %v: %w", n, s.waitReplicas, s.waitTimeout, ErrReplicasBehind))
	}
	return nil
}

var (
	slotTagsOnce sync.Once
	slotTags     []string // by slot: a short hash tag that hashes to it
)

// slotTag returns a short string whose hash slot is slot, so that a key
// tagged with it lives on the master serving slot. The table is computed
// once (about 160 000 CRC16s of short strings) and never changes.
func slotTag(slot int) string {
	slotTagsOnce.Do(func() {
		slotTags = make([]string, clusterSlots)
		left := clusterSlots
		for i := 0; left > 0; i++ {
			t := strconv.FormatInt(int64(i), 36)
			if sl := hashSlot(t); slotTags[sl] == "" {
				slotTags[sl] = t
				left--
			}
		}
	})
	return slotTags[slot]
}
