package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// TestRevokeSubject: one call ends every token family of a subject (their
// access tokens die with them) and turns its approved, not yet redeemed
// device codes into denied ones, leaving other subjects, pending codes and
// redeemed ones alone. Real Redis.
func TestRevokeSubject(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	o := store.NewOIDC(st)
	now := time.Now()
	grant := func(id, sub string) {
		g := store.OIDCGrant{ID: id, ClientID: "c", Subject: sub, User: []byte(`{}`), Expires: now.Add(time.Hour), AuthTime: now}
		mustf(t, o.CreateGrant(ctx, g, "r-"+id, "at-"+id, time.Minute, time.Hour, now), "grant %s", id)
	}
	grant("ga1", "subA")
	grant("ga2", "subA")
	grant("gb1", "subB")
	device := func(hash, code string) {
		d := store.OIDCDevice{ClientID: "c", UserCode: code, Created: now, Expires: now.Add(time.Minute), Interval: time.Second}
		mustf(t, o.PutDevice(ctx, hash, d, 2*time.Minute), "device %s", hash)
	}
	device("dapproved", "AAAAAAAA")
	device("dpending", "BBBBBBBB")
	device("dother", "CCCCCCCC")
	device("dredeemed", "DDDDDDDD")
	mustf(t, o.DecideDevice(ctx, "dapproved", true, "subA", []byte(`{}`), now, time.Time{}, nil, now), "approve")
	mustf(t, o.DecideDevice(ctx, "dother", true, "subB", []byte(`{}`), now, time.Time{}, nil, now), "approve other")
	mustf(t, o.DecideDevice(ctx, "dredeemed", true, "subA", []byte(`{}`), now, time.Time{}, nil, now), "approve redeemed")
	if r, err := o.PollDevice(ctx, "dredeemed", "c", now); err != nil || r.Status != store.PollApproved {
		t.Fatalf("redeem: %+v %v", r, err)
	}

	grants, devices, err := o.RevokeSubject(ctx, "subA")
	if err != nil || grants != 2 || devices != 1 {
		t.Fatalf("RevokeSubject = %d grants, %d devices, %v; want 2, 1", grants, devices, err)
	}
	for _, id := range []string{"ga1", "ga2"} {
		if _, _, err := o.AccessToken(ctx, id, "at-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("access token of revoked %s: %v", id, err)
		}
		if _, err := o.GrantByRefresh(ctx, id, "r-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refresh of revoked %s: %v", id, err)
		}
	}
	if _, _, err := o.AccessToken(ctx, "gb1", "at-gb1"); err != nil {
		t.Errorf("another subject's token: %v", err)
	}
	later := now.Add(2 * time.Second)
	for hash, want := range map[string]string{"dapproved": store.PollDenied, "dpending": store.PollPending,
		"dother": store.PollApproved, "dredeemed": store.PollRedeemed} {
		if r, err := o.PollDevice(ctx, hash, "c", later); err != nil || r.Status != want {
			t.Errorf("poll %s after revoke = %q %v, want %q", hash, r.Status, err, want)
		}
	}
	if g, d, err := o.RevokeSubject(ctx, "subA"); err != nil || g != 0 || d != 0 {
		t.Errorf("second revoke = %d, %d, %v; want nothing left", g, d, err)
	}
	if g, d, err := o.RevokeSubject(ctx, "no{such}"); err != nil || g != 0 || d != 0 {
		t.Errorf("malformed subject = %d, %d, %v", g, d, err)
	}
}

// TestSessionRecheckedAndNames: a re-check stores the fresh user and the
// check time without touching the TTL, never revives a deleted session,
// refuses another user; the username index maps the last sign-in's name to
// its ID.
func TestSessionRecheckedAndNames(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond) // what a stored time keeps
	clock := func() time.Time { return now }
	ss, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 30 * time.Minute}, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: "id-carol", Username: "Carol", Groups: []identity.Group{{Name: "developers"}}}
	token, sess, err := ss.Create(ctx, u, store.SessionMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if !sess.CheckedAt.Equal(now) || !sess.Checked().Equal(now) {
		t.Errorf("CheckedAt at sign-in = %v", sess.CheckedAt)
	}
	if id, err := ss.UserIDByName(ctx, "carol"); err != nil || id != "id-carol" {
		t.Errorf("UserIDByName(carol) = %q %v", id, err)
	}
	if _, err := ss.UserIDByName(ctx, "nobody-"+t.Name()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	now = now.Add(2 * time.Minute)
	fresh := u
	fresh.Groups = nil
	got, err := ss.Rechecked(ctx, token, sess, fresh)
	if err != nil || len(got.User.Groups) != 0 || !got.CheckedAt.Equal(now) {
		t.Fatalf("Rechecked = %+v %v", got, err)
	}
	again, err := ss.Get(ctx, token)
	if err != nil || len(again.User.Groups) != 0 || !again.CheckedAt.Equal(now) {
		t.Errorf("Get after Rechecked = %+v %v", again, err)
	}
	other := identity.User{ID: "id-mallory", Username: "carol"}
	if _, err := ss.Rechecked(ctx, token, again, other); err == nil {
		t.Error("Rechecked with another user's ID succeeded")
	}
	mustf(t, ss.Delete(ctx, token), "delete")
	if _, err := ss.Rechecked(ctx, token, again, fresh); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Rechecked after delete: %v", err)
	}
	if _, err := ss.Get(ctx, token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session revived: %v", err)
	}
	// Sessions stored before re-checks existed count from CreatedAt.
	if (store.Session{CreatedAt: now}).Checked() != now {
		t.Error("Checked of a session without CheckedAt")
	}
}

// TestSessionReplace: a pending session replaced after the second factor:
// the old token is gone (and out of the user's index), the new one holds
// the Authn and the full lifetime, and the pending one's short end is not
// inherited unless asked (NotAfter).
func TestSessionReplace(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond) // what a stored time keeps
	ss, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 30 * time.Minute},
		func() time.Time { return now }, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := identity.User{ID: "id-replace-" + t.Name(), Username: "dora"}
	oldTok, old, err := ss.Create(ctx, u, store.SessionMeta{Authn: identity.PasswordOnly(now),
		Pending: store.PendingFactor, NotAfter: now.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if old.Pending != store.PendingFactor || !old.ExpiresAt.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("pending session %+v", old)
	}
	authn := identity.Authn{Method: identity.MethodTOTP, Time: now, FactorTime: now}
	newTok, sess, err := ss.Replace(ctx, old, u, store.SessionMeta{Authn: authn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Get(ctx, oldTok); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old session after Replace: %v", err)
	}
	got, err := ss.Get(ctx, newTok)
	if err != nil || got.Pending != "" || got.Authn.Method != identity.MethodTOTP || !got.ExpiresAt.Equal(now.Add(time.Hour)) || got.Key != sess.Key {
		t.Fatalf("new session %+v %v", got, err)
	}
	list, err := ss.ListUser(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].Key != sess.Key {
		t.Fatalf("user's sessions after Replace: %d %v", len(list), err)
	}
	if got.SignIn().Method != identity.MethodTOTP {
		t.Error("SignIn() lost the method")
	}
	if (store.Session{CreatedAt: now}).SignIn() != identity.PasswordOnly(now) {
		t.Error("an old session without Authn is not a password sign-in")
	}
}
