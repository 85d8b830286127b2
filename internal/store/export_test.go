package store

// IndexShardKey is the index shard that holds the session hexKey (tests
// of the index of all sessions).
func IndexShardKey(st *Store, hexKey string) string {
	return (&Sessions{store: st}).indexKey(hexKey)
}

// IndexShardKeys is every shard of the index of all sessions.
func IndexShardKeys(st *Store) []string { return (&Sessions{store: st}).indexKeys() }
