package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

func TestElevationIndexes(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := store.NewElevations(st, clock)
	create := func(user string, secs int) store.Elevation {
		t.Helper()
		e, err := s.Create(ctx, store.ElevationRequest{UserID: user, Username: user, Roles: []string{"arn:aws:iam::111122223333:role/Admin"},
			Seconds: secs, Created: clock(), Deadline: clock().Add(time.Hour), Approvers: []string{"secops"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Track(ctx, e); err != nil {
			t.Fatal(err)
		}
		advance(time.Second)
		return e
	}
	approve := func(id string) store.Elevation {
		t.Helper()
		e, err := s.Decide(ctx, id, "u-approver", "approver", true, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Track(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	ids := func(es []store.Elevation) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}

	if es, err := s.Approved(ctx, 10); err != nil || len(es) != 0 {
		t.Fatalf("empty: %v %v", es, err)
	}
	long := create("u-bob", 7200)
	short := create("u-carol", 900)
	pending := create("u-dave", 900)
	denied := create("u-erin", 900)
	if _, err := s.Decide(ctx, denied.ID, "u-approver", "approver", false, "no"); err != nil {
		t.Fatal(err)
	}
	approve(long.ID)
	approve(short.ID)

	// Recent: every user's, newest first, with their state.
	rec, err := s.Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(rec), []string{denied.ID, pending.ID, short.ID, long.ID}; len(got) != 4 || got[0] != want[0] || got[3] != want[3] {
		t.Fatalf("recent %v, want %v", got, want)
	}
	if rec[0].State != store.ElevationDenied || rec[1].State != store.ElevationPending {
		t.Errorf("recent states %s %s", rec[0].State, rec[1].State)
	}
	if rec, _ := s.Recent(ctx, 2); len(rec) != 2 {
		t.Errorf("limit: %d", len(rec))
	}

	// Approved: soonest end first; over or ended ones leave.
	act, err := s.Approved(ctx, 10)
	if err != nil || len(act) != 2 || act[0].ID != short.ID || act[1].ID != long.ID {
		t.Fatalf("approved %v %v", ids(act), err)
	}
	advance(20 * time.Minute) // the short one is over
	if act, _ := s.Approved(ctx, 10); len(act) != 1 || act[0].ID != long.ID {
		t.Fatalf("after the short window: %v", ids(act))
	}
	if _, err := s.End(ctx, long.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if act, _ := s.Approved(ctx, 10); len(act) != 0 {
		t.Fatalf("after the end: %v", ids(act))
	}
	n, err := st.Client().ZCard(ctx, st.Key("elev:active")).Result()
	if err != nil || n != 1 { // the ended one was pruned; the over one stays until the next Track
		t.Errorf("active index holds %d (%v)", n, err)
	}
	create("u-frank", 900)
	if n, _ := st.Client().ZCard(ctx, st.Key("elev:active")).Result(); n != 0 {
		t.Errorf("active index holds %d after a Track", n)
	}

	// A request whose record is gone leaves the recent list as it is read.
	if err := st.Client().Del(ctx, st.Key("elev:{"+pending.ID+"}")).Err(); err != nil {
		t.Fatal(err)
	}
	rec, _ = s.Recent(ctx, 10)
	for _, e := range rec {
		if e.ID == pending.ID {
			t.Error("a gone request listed")
		}
	}
	if n, _ := st.Client().ZCard(ctx, st.Key("elev:recent")).Result(); n != 4 {
		t.Errorf("recent index holds %d, want 4", n)
	}
	// Not an ID: nothing indexed.
	if err := s.Track(ctx, store.Elevation{}); err != nil {
		t.Error(err)
	}
}
