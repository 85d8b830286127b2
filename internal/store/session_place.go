package store

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxPlacementTries bounds how many tokens newToken draws in Cluster to
// find one whose keys share a master with the user's index.
const maxPlacementTries = 64

// newToken draws a session token (32 random bytes, unpadded base64url)
// and returns it with its hex key.
//
// In Redis Cluster a session is three keys that cannot share a hash tag:
// the session key (found from the token alone), the user's index (found
// from the user ID alone) and an index shard (named by the session key).
// Drawn independently they would sit on three random masters, and losing
// one master of three would fail 1-(2/3)^3 of all sign-ins, not a third.
// So newToken draws tokens until the session key and its index shard are
// served by the master of the user's index (about nine draws with three
// masters; at most maxPlacementTries, after which the last token is used
// as it is). The placement follows the client's current slot map; after a
// resharding it is merely less good, never wrong. It costs the token at
// most log2(maxPlacementTries) = 6 of its 256 bits of randomness: the
// condition is on the SHA-256 of the token, which the attacker does not
// choose.
func (s *Sessions) newToken(ctx context.Context, userID string) (token, hexKey string, err error) {
	raw := make([]byte, tokenBytes)
	draw := func() error {
		if _, err := io.ReadFull(s.random, raw); err != nil {
			return fmt.Errorf("store: create session: random: %w", err)
		}
		token = tokenEncoding.EncodeToString(raw)
		hexKey = s.keyOf(token)
		return nil
	}
	if err := draw(); err != nil {
		return "", "", err
	}
	cc, ok := s.store.client.(*redis.ClusterClient)
	if !ok {
		return token, hexKey, nil
	}
	owner := s.store.slots.get(ctx, cc)
	home := owner(s.userKey(userID))
	if home == "" {
		return token, hexKey, nil // its master is down or unknown: Create fails or succeeds on its own
	}
	for range maxPlacementTries - 1 {
		if owner(s.sessionKey(hexKey)) == home && owner(s.indexKey(hexKey)) == home {
			break
		}
		prev, prevKey := token, hexKey
		if err := draw(); err != nil || token == prev {
			// The source ran dry or repeats itself: keep the token drawn
			// (Create's SET NX still refuses a repeated one).
			return prev, prevKey, nil
		}
	}
	return token, hexKey, nil
}

// slotMapMaxAge is how long a slot map is used before it is read again.
const slotMapMaxAge = 5 * time.Second

// slotMap is a cached copy of CLUSTER SLOTS: the master address serving
// each hash slot ("" for a slot no master serves, as after a master has
// failed and not been replaced). The client's own map cannot tell: for an
// unserved slot it names a random node.
type slotMap struct {
	mu         sync.Mutex
	readAt     time.Time
	refreshing bool
	owner      []string // by slot; nil until read
}

// get returns a function from key to the address of its master ("" when
// unknown), refreshing the map when it is older than slotMapMaxAge. One
// caller refreshes, outside the lock; the others meanwhile use the old map
// (or none), so a slow node never queues every sign-in behind it. A failed
// refresh keeps the old map.
func (m *slotMap) get(ctx context.Context, cc *redis.ClusterClient) func(key string) string {
	m.mu.Lock()
	owner := m.owner
	refresh := !m.refreshing && (owner == nil || time.Since(m.readAt) > slotMapMaxAge)
	if refresh {
		m.refreshing = true
		m.readAt = time.Now() // also after a failure: retry later, not on every sign-in
	}
	m.mu.Unlock()
	if refresh {
		fresh := readSlotMap(ctx, cc)
		m.mu.Lock()
		if fresh != nil {
			m.owner, owner = fresh, fresh
		}
		m.refreshing = false
		m.mu.Unlock()
	}
	return func(key string) string {
		if owner == nil {
			return ""
		}
		return owner[hashSlot(key)]
	}
}

// readSlotMap reads CLUSTER SLOTS into a slot-to-master table, or nil.
func readSlotMap(ctx context.Context, cc *redis.ClusterClient) []string {
	// The client sends CLUSTER SLOTS to a node of its choice, perhaps the
	// one that is down: a few tries reach another.
	var slots []redis.ClusterSlot
	var err error
	for range 3 {
		if slots, err = cc.ClusterSlots(ctx).Result(); err == nil {
			break
		}
	}
	if err != nil {
		return nil
	}
	owner := make([]string, clusterSlots)
	for _, r := range slots {
		if len(r.Nodes) == 0 {
			continue
		}
		for i := max(r.Start, 0); i <= r.End && i < clusterSlots; i++ {
			owner[i] = r.Nodes[0].Addr
		}
	}
	return owner
}

// clusterSlots is the number of hash slots of Redis Cluster.
const clusterSlots = 16384

// hashSlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of its hash tag (the text between the first "{" and the next
// "}", when not empty), modulo 16384 (Redis Cluster specification, "Hash
// tags").
func hashSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % clusterSlots
}
