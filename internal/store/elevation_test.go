package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

func TestElevationLifecycle(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := store.NewElevations(st, clock)
	roles := []string{"arn:aws:iam::111122223333:role/Admin", "arn:aws:iam::444455556666:role/Admin"}

	if _, err := s.Create(ctx, store.ElevationRequest{UserID: "u-bob"}); err == nil {
		t.Fatal("a request without roles, duration and deadline was stored")
	}
	e, err := s.Create(ctx, store.ElevationRequest{UserID: "u-bob", Username: "bob", Roles: roles, Seconds: 3600,
		Reason: "INC-123", Deadline: clock().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if e.State != store.ElevationPending || len(e.ID) != 32 {
		t.Fatalf("created %+v", e)
	}
	pend, err := s.Pending(ctx, 10)
	if err != nil || len(pend) != 1 || pend[0].ID != e.ID {
		t.Fatalf("pending %v %v", pend, err)
	}
	// Nobody decides their own request.
	if _, err := s.Decide(ctx, e.ID, "u-bob", "bob", true, ""); !errors.Is(err, store.ErrSelfApproval) {
		t.Fatalf("self approval: %v", err)
	}
	// Two approvers at once: one decision.
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = s.Decide(ctx, e.ID, "u-alice", "alice", true, "ok")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyDecided):
			t.Fatalf("concurrent decision: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d decisions won, want 1", won)
	}
	got, err := s.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.ElevationApproved || got.Decider != "alice" || !got.StartsAt.Equal(clock()) ||
		!got.EndsAt.Equal(clock().Add(time.Hour)) || !got.ActiveAt(clock()) {
		t.Fatalf("approved %+v", got)
	}
	active, err := s.Active(ctx, "u-bob")
	if err != nil || len(active) != 1 {
		t.Fatalf("active %v %v", active, err)
	}
	if pend, _ := s.Pending(ctx, 10); len(pend) != 0 {
		t.Errorf("still pending after the decision: %v", pend)
	}
	// Ended early: no longer active; ending again is refused.
	advance(10 * time.Minute)
	if got, err = s.End(ctx, e.ID, "bob"); err != nil || got.State != store.ElevationEnded || got.EndedBy != "bob" {
		t.Fatalf("end: %+v %v", got, err)
	}
	if active, _ := s.Active(ctx, "u-bob"); len(active) != 0 {
		t.Error("active after the end")
	}
	if _, err := s.End(ctx, e.ID, "bob"); !errors.Is(err, store.ErrNotActive) {
		t.Errorf("second end: %v", err)
	}
}

func TestElevationDeadlineAndPlannedStart(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := store.NewElevations(st, clock)
	role := []string{"arn:aws:iam::111122223333:role/Admin"}
	// Undecided past its deadline: expired, and a decision is refused.
	late, err := s.Create(ctx, store.ElevationRequest{UserID: "u-carol", Roles: role, Seconds: 900, Deadline: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if got, _ := s.Get(ctx, late.ID); got.State != store.ElevationExpired {
		t.Errorf("past the deadline: %s", got.State)
	}
	if _, err := s.Decide(ctx, late.ID, "u-alice", "alice", true, ""); !errors.Is(err, store.ErrPastDeadline) {
		t.Errorf("decision past the deadline: %v", err)
	}
	// A planned start: approved now, active only from StartAt.
	start := now.Add(3 * time.Hour)
	planned, err := s.Create(ctx, store.ElevationRequest{UserID: "u-carol", Roles: role, Seconds: 1800,
		StartAt: start, Deadline: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Decide(ctx, planned.ID, "u-alice", "alice", true, "")
	if err != nil || !got.StartsAt.Equal(start) || !got.EndsAt.Equal(start.Add(30*time.Minute)) || got.ActiveAt(now) || !got.ActiveAt(start) {
		t.Fatalf("planned: %+v %v", got, err)
	}
	// A denial: never active, and final.
	denied, err := s.Create(ctx, store.ElevationRequest{UserID: "u-carol", Roles: role, Seconds: 900, Deadline: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Decide(ctx, denied.ID, "u-dave", "dave", false, "not now"); err != nil || got.State != store.ElevationDenied ||
		got.Comment != "not now" || got.ActiveAt(now) {
		t.Fatalf("denied: %+v %v", got, err)
	}
	if _, err := s.Decide(ctx, denied.ID, "u-alice", "alice", true, ""); !errors.Is(err, store.ErrAlreadyDecided) {
		t.Errorf("approval after a denial: %v", err)
	}
	// Unknown and malformed IDs.
	for _, id := range []string{"", "nope", "00000000000000000000000000000000"} {
		if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
		if _, err := s.Decide(ctx, id, "u", "x", true, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Decide(%q): %v", id, err)
		}
	}
}

func TestElevationExpireDueAndCancel(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := store.NewElevations(st, clock)
	role := []string{"arn:aws:iam::111122223333:role/Admin"}
	mk := func(deadline time.Duration) store.Elevation {
		t.Helper()
		e, err := s.Create(ctx, store.ElevationRequest{UserID: "u-erin", Roles: role, Seconds: 900, Deadline: clock().Add(deadline)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	soon, later, cancel := mk(time.Minute), mk(time.Hour), mk(time.Hour)
	if got, err := s.End(ctx, cancel.ID, "erin"); err != nil || got.State != store.ElevationEnded || got.EndedBy != "erin" {
		t.Fatalf("cancel a pending request: %+v %v", got, err)
	}
	if _, err := s.Decide(ctx, cancel.ID, "u-alice", "alice", true, ""); !errors.Is(err, store.ErrAlreadyDecided) {
		t.Errorf("approval of a cancelled request: %v", err)
	}
	if es, err := s.ExpireDue(ctx, 10); err != nil || len(es) != 0 {
		t.Fatalf("nothing due yet: %v %v", es, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	// Replicas sweeping at once: each expiry is reported exactly once.
	var wg sync.WaitGroup
	got := make([][]store.Elevation, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = s.ExpireDue(ctx, 10)
		}()
	}
	wg.Wait()
	n := 0
	for _, es := range got {
		for _, e := range es {
			n++
			if e.ID != soon.ID || e.State != store.ElevationExpired {
				t.Errorf("expired %+v", e)
			}
		}
	}
	if n != 1 {
		t.Fatalf("the due request was reported %d times, want once", n)
	}
	if e, _ := s.Get(ctx, later.ID); e.State != store.ElevationPending {
		t.Errorf("the later request: %s", e.State)
	}
	if pend, _ := s.Pending(ctx, 10); len(pend) != 1 || pend[0].ID != later.ID {
		t.Errorf("pending after the sweep: %v", pend)
	}
}
