package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

// TestOIDCStore runs store.OIDC against real Redis: single-use codes with
// reuse recognised, rotation with reuse revoking the family, access tokens
// dying with their grant, device polls with slow_down; every key has a TTL
// and the keys of one operation share a hash tag.
func TestOIDCStore(t *testing.T) {
	st := openReal(t)
	ctx := t.Context()
	o := store.NewOIDC(st)
	now := time.Now()

	// Auth request and code.
	if err := o.PutAuthRequest(ctx, "ar1", []byte(`{"a":1}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := o.UpdateAuthRequest(ctx, "ar1", []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.RedeemCode(ctx, "ar1", "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeem before SaveCode: %v", err)
	}
	mustf(t, o.SaveCode(ctx, "ar1", "h1", time.Minute), "save code")
	if err := o.SaveCode(ctx, "ar1", "h2", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second code: %v", err)
	}
	if err := o.UpdateAuthRequest(ctx, "ar1", []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update after code: %v", err)
	}
	if _, err := o.RedeemCode(ctx, "ar1", "wrong"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("wrong code: %v", err)
	}
	d, err := o.RedeemCode(ctx, "ar1", "h1")
	if err != nil || string(d) != `{"a":2}` {
		t.Fatalf("redeem: %s %v", d, err)
	}
	mustf(t, o.DeleteAuthRequest(ctx, "ar1"), "delete") // kept: redeemed
	if d, err := o.RedeemCode(ctx, "ar1", "h1"); !errors.Is(err, store.ErrReused) || string(d) != `{"a":2}` {
		t.Errorf("reuse: %s %v", d, err)
	}
	for _, bad := range []string{"", "a{b}", "a:b", strings.Repeat("x", 200)} {
		if _, err := o.AuthRequest(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AuthRequest(%q): %v", bad, err)
		}
	}

	// Grant with rotation.
	g := store.OIDCGrant{ID: "g1", ClientID: "c", Subject: "sub1", User: []byte(`{"username":"bob"}`),
		Scopes: []string{"openid", "offline_access"}, AMR: []string{"pwd"}, AuthTime: now, Expires: now.Add(time.Hour)}
	mustf(t, o.CreateGrant(ctx, g, "r1", "at1", time.Minute, 30*time.Minute, now), "create grant")
	got, exp, err := o.AccessToken(ctx, "g1", "at1")
	if err != nil || got.ClientID != "c" || got.Subject != "sub1" || string(got.User) != `{"username":"bob"}` ||
		len(got.Scopes) != 2 || exp.Unix() != now.Add(time.Minute).Unix() {
		t.Fatalf("access token: %+v %v %v", got, exp, err)
	}
	if _, err := o.GrantByRefresh(ctx, "g1", "r1"); err != nil {
		t.Fatal(err)
	}
	mustf(t, o.Rotate(ctx, g, "r1", "r2", "at2", time.Minute, 30*time.Minute, now), "rotate")
	if err := o.Rotate(ctx, g, "nope", "r3", "at3", time.Minute, 30*time.Minute, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotate unknown token: %v", err)
	}
	if _, _, err := o.AccessToken(ctx, "g1", "at2"); err != nil {
		t.Fatal(err)
	}
	checkTTLs(t, st)
	if g2, err := o.GrantByRefresh(ctx, "g1", "r1"); !errors.Is(err, store.ErrReused) || g2.ClientID != "c" {
		t.Fatalf("reuse of r1: %+v %v", g2, err)
	}
	for _, at := range []string{"at1", "at2"} {
		if _, _, err := o.AccessToken(ctx, "g1", at); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("access token %s after reuse: %v", at, err)
		}
	}
	if _, err := o.GrantByRefresh(ctx, "g1", "r2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("current token after reuse: %v", err)
	}
	ids, err := o.GrantsOfSubject(ctx, "sub1")
	if err != nil || len(ids) != 1 || ids[0] != "g1" {
		t.Errorf("grants of subject: %v %v", ids, err)
	}

	// Devices.
	dev := store.OIDCDevice{ClientID: "cli", Scopes: []string{"openid"}, ClientIP: "192.0.2.1", UserCode: "BCDFGHJK",
		Created: now, Expires: now.Add(10 * time.Minute), Interval: 5 * time.Second}
	mustf(t, o.PutDevice(ctx, "dh1", dev, 20*time.Minute), "put device")
	if err := o.PutDevice(ctx, "dh2", dev, 20*time.Minute); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("duplicate user code: %v", err)
	}
	h, d2, err := o.DeviceByUserCode(ctx, "BCDFGHJK")
	if err != nil || h != "dh1" || d2.ClientIP != "192.0.2.1" || d2.State != store.DevicePending || d2.Interval != 5*time.Second {
		t.Fatalf("device by user code: %q %+v %v", h, d2, err)
	}
	poll := func(at time.Time, client string) store.PollResult {
		t.Helper()
		r, err := o.PollDevice(ctx, "dh1", client, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := poll(now, "other"); r.Status != store.PollUnknown {
		t.Errorf("other client: %+v", r)
	}
	if r := poll(now, "cli"); r.Status != store.PollPending {
		t.Errorf("first poll: %+v", r)
	}
	if r := poll(now.Add(time.Second), "cli"); r.Status != store.PollSlowDown || r.Interval != 10*time.Second {
		t.Errorf("fast poll: %+v", r)
	}
	if r := poll(now.Add(12*time.Second), "cli"); r.Status != store.PollPending {
		t.Errorf("poll after the grown interval: %+v", r)
	}
	mustf(t, o.DecideDevice(ctx, "dh1", true, "sub1", []byte(`{"username":"bob"}`), now.Add(-time.Minute), time.Time{}, []string{"pwd", "otp", "mfa"}, now), "approve")
	if err := o.DecideDevice(ctx, "dh1", false, "", nil, now, time.Time{}, nil, now); !errors.Is(err, store.ErrDecided) {
		t.Errorf("second decision: %v", err)
	}
	r := poll(now.Add(30*time.Second), "cli")
	if r.Status != store.PollApproved || r.Device.Subject != "sub1" || string(r.Device.User) != `{"username":"bob"}` {
		t.Fatalf("approved poll: %+v", r)
	}
	// How the approving session authenticated travels to the grant.
	if !r.Device.AuthTime.Equal(now.Add(-time.Minute).Truncate(time.Second)) || strings.Join(r.Device.AMR, " ") != "pwd otp mfa" {
		t.Errorf("approved poll: auth time %v amr %q", r.Device.AuthTime, r.Device.AMR)
	}
	if r := poll(now.Add(60*time.Second), "cli"); r.Status != store.PollRedeemed {
		t.Errorf("poll after redemption: %+v", r)
	}
	dev.UserCode = "ZZZZZZZZ"
	mustf(t, o.PutDevice(ctx, "dh3", dev, 20*time.Minute), "put device 3")
	if err := o.DecideDevice(ctx, "dh3", true, "s", []byte(`{}`), now, time.Time{}, nil, now.Add(11*time.Minute)); !errors.Is(err, store.ErrExpired) {
		t.Errorf("approve expired: %v", err)
	}
	r, _ = o.PollDevice(ctx, "dh3", "cli", now.Add(11*time.Minute))
	if r.Status != store.PollExpired {
		t.Errorf("expired poll: %+v", r)
	}
	checkTTLs(t, st)
}

// checkTTLs: every key has a TTL; the keys of the access-token check share
// their grant's hash tag.
func checkTTLs(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := t.Context()
	for _, k := range allKeys(t, st) {
		if strings.Contains(k, "secret:") {
			continue
		}
		ttl, err := st.Client().PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("key %s: ttl %v %v", k, ttl, err)
		}
		if strings.Contains(k, "oidc:at:") || strings.Contains(k, "oidc:g:") {
			tag := k[strings.Index(k, "{")+1 : strings.Index(k, "}")]
			if tag == "" {
				t.Errorf("key %s has no hash tag", k)
			}
		}
	}
}
