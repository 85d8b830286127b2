package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
)

// The directory wardend passes to the web server has the capability.
var _ LimitKeyer = (*ldap.Directory)(nil)

// keyedDir is fakeDir with the LimitKeyer capability of ldap.Directory in
// an Active Directory domain EXAMPLE (example.test). It knows the
// down-level name as well: EXAMPLE\bob signs in as bob.
type keyedDir struct{ *fakeDir }

func (keyedDir) LimitKey(_ context.Context, username string) string {
	u := strings.ToLower(username)
	u = strings.TrimPrefix(u, `example\`)
	return strings.TrimSuffix(u, "@example.test")
}

func (d keyedDir) Authenticate(ctx context.Context, username, password string) (identity.User, error) {
	return d.fakeDir.Authenticate(ctx, d.LimitKey(ctx, username), password)
}

// TestLoginLimitPerAccount: with the real limiter, failures typed as bob,
// BOB, bob@example.test and EXAMPLE\bob share one counter, so the fourth
// attempt is refused before the directory is asked, even with the right
// password.
func TestLoginLimitPerAccount(t *testing.T) {
	var lim *store.Limiter
	e := newEnv(t, func(_ *Config, d *Deps) {
		l, err := store.NewLimiter(storetest.Open(t, "web-limitkey"),
			store.LimitConfig{MaxFailuresPerUser: 3, MaxFailuresPerIP: 100, Window: time.Hour}, d.Clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		lim = l
		d.Limiter = l
		d.Directory = keyedDir{d.Directory.(*fakeDir)}
	})
	b := e.browser(t)
	for _, u := range []string{"bob", "BOB", "bob@EXAMPLE.test"} {
		if rec := b.login(u, "wrong", "/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), genericFailure) {
			t.Fatalf("%s with a wrong password: %d", u, rec.Code)
		}
	}
	calls := e.dir.Calls()
	if rec := b.login(`EXAMPLE\bob`, testPassword, "/"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf(`EXAMPLE\bob after 3 failures under other spellings: %d, want 429`, rec.Code)
	}
	if e.dir.Calls() != calls {
		t.Error("the directory was asked despite the limit")
	}
	// Another account keeps its own allowance.
	if d, err := lim.Check(t.Context(), "alice", "203.0.113.9"); err != nil || !d.Allowed {
		t.Errorf("alice: %+v %v", d, err)
	}
}
