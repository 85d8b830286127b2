package embedded_test

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory"
	"github.com/wardenidp/warden/internal/directory/directorytest"
	"github.com/wardenidp/warden/internal/directory/embedded"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
)

// devLDIF is config/dev-directory.ldif, the file dev mode serves.
func devLDIF(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "config", "dev-directory.ldif")
}

func start(t testing.TB, opts ...embedded.Option) *embedded.Server {
	t.Helper()
	s, err := embedded.Start(context.Background(), devLDIF(t), nil, opts...)
	if err != nil {
		t.Fatalf("embedded.Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newDir(t *testing.T, cfg ldap.Config, rec *directorytest.Recorder) directory.Directory {
	t.Helper()
	var opts []ldap.Option
	if rec != nil {
		opts = append(opts, ldap.WithObserver(rec))
	}
	d, err := ldap.New(cfg, opts...)
	if err != nil {
		t.Fatalf("ldap.New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func users() map[string]directorytest.WantUser {
	nested := []directorytest.WantGroup{{Name: "developers", Direct: true}, {Name: "engineering"}, {Name: "staff"}, {Name: "company"}}
	return map[string]directorytest.WantUser{
		"alice": {Username: "alice", DisplayName: "Alice Anderson", Email: "alice@example.org",
			Groups: []directorytest.WantGroup{{Name: "admins", Direct: true}, {Name: "engineering"}, {Name: "staff"}, {Name: "company"}}},
		"bob":   {Username: "bob", DisplayName: "Bob Brown", Email: "bob@example.org", Groups: nested},
		"carol": {Username: "carol", DisplayName: "Carol Clark", Email: "carol@example.org", Groups: nested},
		"dave": {Username: "dave", DisplayName: "Dave Davis", Email: "dave@example.org",
			Groups: []directorytest.WantGroup{{Name: "engineering", Direct: true}, {Name: "staff"}, {Name: "company"}}},
		"erin": {Username: "erin", DisplayName: "Erin Evans", Email: "erin@example.org",
			Groups: []directorytest.WantGroup{{Name: "staff", Direct: true}, {Name: "company"}}},
		"frank": {Username: "frank", DisplayName: "Frank Fischer", Email: "frank@example.org",
			Groups: []directorytest.WantGroup{{Name: "loop-a", Direct: true}, {Name: "loop-b"}}},
		"jürgen": {Username: "jürgen", DisplayName: "Jürgen Müller", Email: "juergen@example.org", Groups: nested},
		"pat":    {Username: "pat", DisplayName: "Pat O'Connor, Jr. (ext*)", Email: "pat@example.org", Groups: nested},
	}
}

func TestEmbedded(t *testing.T) {
	srv := start(t)
	cfg := srv.Config()
	directorytest.Run(t, directorytest.Fixture{
		New:      func(t *testing.T, rec *directorytest.Recorder) directory.Directory { return newDir(t, cfg, rec) },
		Password: "warden-dev",
		Users:    users(),
		States: map[string]error{
			"locked":     identity.ErrAccountLocked,
			"mustchange": identity.ErrMustChangePassword,
			"pwexpired":  identity.ErrPasswordExpired,
		},
		// ppolicy: the lock and pwdReset are on the entry; expiry by age
		// needs the policy, and only a bind tells it.
		LookupStates: map[string]error{
			"locked":     identity.ErrAccountLocked,
			"mustchange": identity.ErrMustChangePassword,
		},
		DirectKnown: true,
		Failover: func(t *testing.T, rec *directorytest.Recorder, dead string) directory.Directory {
			c := cfg
			c.URLs = []string{dead, srv.URL()}
			return newDir(t, c, rec)
		},
		Outage: func(t *testing.T) (directory.Directory, func(), func()) {
			s := start(t)
			d := newDir(t, s.Config(), nil)
			addr := s.Addr()
			return d, func() { _ = s.Close() }, func() { start(t, embedded.WithAddr(addr)) }
		},
	})
}

// TestEmbeddedGroupSearch: group_source search against the embedded server.
func TestEmbeddedGroupSearch(t *testing.T) {
	srv := start(t)
	cfg := srv.Config()
	cfg.GroupSource = ldap.GroupSourceSearch
	directorytest.Run(t, directorytest.Fixture{
		New:         func(t *testing.T, rec *directorytest.Recorder) directory.Directory { return newDir(t, cfg, rec) },
		Password:    "warden-dev",
		Users:       users(),
		DirectKnown: true,
	})
}

// TestGroupCache: with group_source memberof, the nesting of groups is read
// once per GroupCacheTTL (injected clock); direct groups are read at every
// sign-in with the user's entry.
func TestGroupCache(t *testing.T) {
	srv := start(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for _, tc := range []struct {
		name       string
		ttl        time.Duration
		wantCached int // searches for the second sign-in
	}{
		{"cached", time.Minute, 1},
		{"off", -1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.Config()
			cfg.GroupCacheTTL = tc.ttl
			rec := &directorytest.Recorder{}
			d, err := ldap.New(cfg, ldap.WithObserver(rec), ldap.WithClock(clock))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			auth := func() int {
				rec.Reset()
				u, err := d.Authenticate(t.Context(), "bob", "warden-dev")
				if err != nil || len(u.Groups) != 4 {
					t.Fatalf("bob: %v %v", u.Groups, err)
				}
				return rec.Count("search")
			}
			// user search + memberOf of developers, engineering, staff, company
			if n := auth(); n != 5 {
				t.Errorf("first sign-in: %d searches, want 5", n)
			}
			if n := auth(); n != tc.wantCached {
				t.Errorf("second sign-in: %d searches, want %d", n, tc.wantCached)
			}
			mu.Lock()
			now = now.Add(2 * time.Minute)
			mu.Unlock()
			if n := auth(); n != 5 {
				t.Errorf("after the TTL: %d searches, want 5", n)
			}
		})
	}
}

// TestHealthCheck: idle pooled connections are checked every
// HealthCheckInterval and dropped when the server is gone.
func TestHealthCheck(t *testing.T) {
	srv := start(t)
	cfg := srv.Config()
	cfg.HealthCheckInterval = 50 * time.Millisecond
	rec := &directorytest.Recorder{}
	d, err := ldap.New(cfg, ldap.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Authenticate(t.Context(), "bob", "warden-dev"); err != nil {
		t.Fatal(err)
	}
	open := func() int {
		n := 0
		for _, p := range d.PoolStats() {
			n += p.Open
		}
		return n
	}
	if n := open(); n != 2 {
		t.Fatalf("open connections after one sign-in: %d, want 2 (search + bind)", n)
	}
	waitFor(t, func() bool { return rec.Count("health") >= 2 }, "health checks of the idle connections")
	if n := open(); n != 2 {
		t.Errorf("healthy connections dropped: %d open", n)
	}
	_ = srv.Close()
	waitFor(t, func() bool { return open() == 0 }, "dead connections dropped")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
