package store

import "testing"

// TestHashSlot checks the Redis Cluster key-to-slot function against the
// specification's examples, and that every slot has a tag hashing to it.
func TestHashSlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo":                  12182, // CLUSTER KEYSLOT foo
		"{user1000}.following": 3443,  // the specification's hash tag example
		"{user1000}.followers": 3443,
	} {
		if got := hashSlot(key); got != want {
			t.Errorf("hashSlot(%q) = %d, want %d", key, got, want)
		}
	}
	if hashSlot("foo{}{bar}") == hashSlot("bar") {
		t.Error("an empty first tag must hash the whole key")
	}
	if hashSlot("foo{{bar}}zap") != hashSlot("{bar") {
		t.Error("the tag ends at the first } after the first {")
	}
	for slot := range clusterSlots {
		if got := hashSlot("x:{" + slotTag(slot) + "}"); got != slot {
			t.Fatalf("slotTag(%d) = %q hashes to %d", slot, slotTag(slot), got)
		}
	}
}
