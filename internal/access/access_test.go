package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
)

type fakeDir struct {
	byName map[string]identity.User
	byID   map[string]identity.User
	err    error // returned by every look-up when set
}

func (d *fakeDir) Lookup(_ context.Context, name string) (identity.User, error) {
	if d.err != nil {
		return identity.User{}, d.err
	}
	u, ok := d.byName[name]
	if !ok {
		return identity.User{}, identity.ErrUserNotFound
	}
	return u, nil
}

type idDir struct{ *fakeDir }

func (d idDir) LookupID(_ context.Context, id string) (identity.User, error) {
	if d.err != nil {
		return identity.User{}, d.err
	}
	u, ok := d.byID[id]
	if !ok {
		return identity.User{}, identity.ErrUserNotFound
	}
	return u, nil
}

type fakeSessions struct {
	n   map[string]int
	err error
}

func (s *fakeSessions) RevokeUser(_ context.Context, id string) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := s.n[id]
	delete(s.n, id)
	return n, nil
}

type fakeGrants struct{ grants, devices map[string]int }

func (g *fakeGrants) RevokeUser(_ context.Context, u identity.User) (int, int, error) {
	a, b := g.grants[u.ID], g.devices[u.ID]
	delete(g.grants, u.ID)
	delete(g.devices, u.ID)
	return a, b, nil
}

type events struct {
	mu  sync.Mutex
	all []audit.Event
}

func (e *events) Record(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

var errOutage = fmt.Errorf("ldap: dial: %w", identity.ErrDirectoryUnavailable)

func setup(dir Directory) (*Access, *fakeSessions, *fakeGrants, *events) {
	ss := &fakeSessions{n: map[string]int{"id-carol": 2}}
	gs := &fakeGrants{grants: map[string]int{"id-carol": 3}, devices: map[string]int{"id-carol": 1}}
	ev := &events{}
	a, err := New(Deps{Directory: dir, Sessions: ss, Audit: ev})
	if err != nil {
		panic(err)
	}
	a.SetGrants(gs)
	return a, ss, gs, ev
}

func TestCheck(t *testing.T) {
	carol := identity.User{ID: "id-carol", Username: "carol", Groups: []identity.Group{{Name: "developers"}}}
	renamed := identity.User{ID: "id-carol", Username: "carol.smith"}
	impostor := identity.User{ID: "id-other", Username: "carol"}
	cases := []struct {
		name      string
		dir       Directory
		wantUser  string
		wantErr   error // errors.Is
		wantCause Cause // "" = nothing revoked, no event
	}{
		{"present by name", &fakeDir{byName: map[string]identity.User{"carol": carol}}, "carol", nil, ""},
		{"renamed, by ID", idDir{&fakeDir{byID: map[string]identity.User{"id-carol": renamed}}}, "carol.smith", nil, ""},
		{"deleted", &fakeDir{}, "", identity.ErrUserNotFound, CauseDeleted},
		{"deleted, by ID", idDir{&fakeDir{}}, "", identity.ErrUserNotFound, CauseDeleted},
		{"name reused by another entry", &fakeDir{byName: map[string]identity.User{"carol": impostor}}, "", identity.ErrUserNotFound, CauseReplaced},
		{"disabled", &fakeDir{err: fmt.Errorf("ldap: %w", identity.ErrAccountDisabled)}, "", identity.ErrAccountDisabled, CauseDisabled},
		{"locked", &fakeDir{err: identity.ErrAccountLocked}, "", identity.ErrAccountLocked, CauseLocked},
		{"account expired", &fakeDir{err: identity.ErrAccountExpired}, "", identity.ErrAccountExpired, CauseExpired},
		{"password expired", &fakeDir{err: identity.ErrPasswordExpired}, "", identity.ErrPasswordExpired, CausePasswordExpired},
		{"must change", &fakeDir{err: identity.ErrMustChangePassword}, "", identity.ErrMustChangePassword, CauseMustChange},
		{"outage", &fakeDir{err: errOutage}, "", identity.ErrDirectoryUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, ss, gs, ev := setup(tc.dir)
			got, err := a.Check(t.Context(), carol, Request{Via: "console", RequestID: "req-1"})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Check error = %v, want %v", err, tc.wantErr)
			}
			if got.Username != tc.wantUser {
				t.Errorf("user = %q, want %q", got.Username, tc.wantUser)
			}
			if gone := identity.IsGone(err); gone != (tc.wantCause != "") {
				t.Errorf("IsGone = %v", gone)
			}
			revoked := len(ss.n) == 0 && len(gs.grants) == 0 && len(gs.devices) == 0
			if revoked != (tc.wantCause != "") {
				t.Errorf("revoked = %v (sessions left %v, grants left %v)", revoked, ss.n, gs.grants)
			}
			if tc.wantCause == "" {
				if len(ev.all) != 0 {
					t.Errorf("events = %+v, want none", ev.all)
				}
				return
			}
			if len(ev.all) != 1 {
				t.Fatalf("events = %+v, want one", ev.all)
			}
			e := ev.all[0]
			if e.Action != "access.revoke" || e.Actor != "directory" || e.Object != "carol" || e.Result != "success" ||
				e.RequestID != "req-1" || e.Detail["cause"] != string(tc.wantCause) || e.Detail["via"] != "console" ||
				e.Detail["sessions"] != "2" || e.Detail["grants"] != "3" || e.Detail["devices"] != "1" || e.Detail["user_id"] != "id-carol" {
				t.Errorf("event = %+v", e)
			}
			// A second request finds nothing left: no second event.
			if _, err := a.Check(t.Context(), carol, Request{Via: "session"}); !errors.Is(err, tc.wantErr) {
				t.Errorf("second Check: %v", err)
			}
			if len(ev.all) != 1 {
				t.Errorf("second Check recorded %d events", len(ev.all)-1)
			}
		})
	}
}

func TestRevokeByAdminAndOperator(t *testing.T) {
	for _, cause := range []Cause{CauseAdmin, CauseOperator} {
		a, _, _, ev := setup(&fakeDir{})
		res, err := a.Revoke(t.Context(), identity.User{ID: "id-carol", Username: "carol"}, cause, Request{Actor: "alice", ClientIP: "192.0.2.1"})
		if err != nil || res != (Result{Sessions: 2, Grants: 3, Devices: 1}) || res.Total() != 6 {
			t.Fatalf("%s: Revoke = %+v %v", cause, res, err)
		}
		// Nothing left, but an explicit revocation is always recorded.
		res, err = a.Revoke(t.Context(), identity.User{ID: "id-carol"}, cause, Request{Actor: "alice"})
		if err != nil || res.Total() != 0 {
			t.Fatalf("%s: second Revoke = %+v %v", cause, res, err)
		}
		if len(ev.all) != 2 || ev.all[0].Detail["cause"] != string(cause) || ev.all[0].Actor != "alice" ||
			ev.all[0].ClientIP != "192.0.2.1" || ev.all[1].Object != "id-carol" {
			t.Errorf("%s: events = %+v", cause, ev.all)
		}
	}
	a, _, _, _ := setup(&fakeDir{})
	if _, err := a.Revoke(t.Context(), identity.User{Username: "carol"}, CauseAdmin, Request{}); err == nil {
		t.Error("Revoke without an ID succeeded")
	}
}

// A revocation that cannot be completed is an error, never "gone": the
// caller must neither hand anything out nor tell the user they are
// refused, and the event says it failed.
func TestRevokeFailure(t *testing.T) {
	a, ss, _, ev := setup(&fakeDir{})
	ss.err = errors.New("store: unavailable")
	_, err := a.Check(t.Context(), identity.User{ID: "id-carol", Username: "carol"}, Request{})
	if err == nil || identity.IsGone(err) {
		t.Fatalf("Check with a failing revocation = %v", err)
	}
	if len(ev.all) != 1 || ev.all[0].Result != "error" {
		t.Errorf("events = %+v", ev.all)
	}
}

func TestNewRequiresDeps(t *testing.T) {
	if _, err := New(Deps{}); err == nil {
		t.Error("New without deps succeeded")
	}
}

// slowSessions holds every RevokeUser until released, so that checks of
// the same gone user overlap.
type slowSessions struct {
	fakeSessions
	release chan struct{}
}

func (s *slowSessions) RevokeUser(ctx context.Context, id string) (int, error) {
	<-s.release
	return s.fakeSessions.RevokeUser(ctx, id)
}

// Requests of a gone user that arrive together share one revocation and
// one audit event.
func TestConcurrentChecksRecordOnce(t *testing.T) {
	ss := &slowSessions{fakeSessions: fakeSessions{n: map[string]int{"id-carol": 2}}, release: make(chan struct{})}
	gs := &fakeGrants{grants: map[string]int{"id-carol": 3}, devices: map[string]int{}}
	ev := &events{}
	a, err := New(Deps{Directory: &fakeDir{}, Sessions: ss, Grants: gs, Audit: ev})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := a.Check(t.Context(), identity.User{ID: "id-carol", Username: "carol"}, Request{Via: "token_exchange"})
			errs <- err
		})
	}
	// Wait until the first revocation is in flight and every other check
	// has had the chance to join it, then let it finish.
	for {
		a.mu.Lock()
		_, started := a.inFlight["id-carol"]
		a.mu.Unlock()
		if started {
			break
		}
	}
	close(ss.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, identity.ErrUserNotFound) {
			t.Errorf("Check = %v, want the directory's answer", err)
		}
	}
	if len(ev.all) != 1 || ev.all[0].Detail["sessions"] != "2" || ev.all[0].Detail["grants"] != "3" {
		t.Errorf("events = %+v, want one with everything", ev.all)
	}
}

type countCauses map[Cause]int

func (c countCauses) Revoked(cause Cause) { c[cause]++ }

// The observer sees each recorded revocation once, with its cause.
func TestObserver(t *testing.T) {
	obs := countCauses{}
	a, err := New(Deps{Directory: &fakeDir{}, Sessions: &fakeSessions{n: map[string]int{"id-carol": 1}}, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	carol := identity.User{ID: "id-carol", Username: "carol"}
	_, _ = a.Check(t.Context(), carol, Request{})
	_, _ = a.Check(t.Context(), carol, Request{}) // nothing left: not recorded, not counted
	_, _ = a.Revoke(t.Context(), carol, CauseAdmin, Request{Actor: "alice"})
	if obs[CauseDeleted] != 1 || obs[CauseAdmin] != 1 || len(obs) != 2 {
		t.Errorf("observed %v", obs)
	}
}
