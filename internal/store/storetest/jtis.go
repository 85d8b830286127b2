package storetest

import (
	"context"
	"sync"
	"time"
)

// MemJTIs stands in for store.AssertionJTIs (whose own tests run against
// Redis) where a test's subject is the code around it: First reports
// whether a client's jti is new, forever. The zero value is ready.
type MemJTIs struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *MemJTIs) First(_ context.Context, clientID, jti string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	k := clientID + "\x00" + jti
	if m.seen[k] {
		return false, nil
	}
	m.seen[k] = true
	return true, nil
}
