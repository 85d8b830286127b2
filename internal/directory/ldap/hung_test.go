package ldap_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
)

var signInUsers = []string{"bob", "carol", "alice", "dave", "erin", "pat", "frank"}

// TestFirstServerHung: with urls [a, b] and a SIGSTOPped a (the kernel still
// accepts connections, nothing answers), 200 concurrent sign-ins all
// succeed through b, Ping (/readyz) succeeds throughout, a is marked down,
// and it is marked up again in the background once it answers. No
// durations are asserted (BenchmarkSignInFirstServerHung measures them).
func TestFirstServerHung(t *testing.T) {
	srv := startSlapds(t, 2)
	a, b := srv[0], srv[1]
	// 2s and 16 connections: on a loaded machine under -race, 200 sign-ins
	// queueing for the healthy server must not look like a failure of it.
	cfg := twoServerConfig(a, b, 2*time.Second)
	cfg.PoolSize = 16
	pw := a.env["LDAP_USER_PW"]
	d, err := ldap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	// Warm the pools on a, so that idle connections lead to the server that
	// is about to hang.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, err := d.Authenticate(t.Context(), signInUsers[i%len(signInUsers)], pw); err != nil {
				t.Errorf("warm-up: %v", err)
			}
		})
	}
	wg.Wait()
	if up := serverUp(d, cfg.URLs[0]); !up {
		t.Fatalf("a is down before it hangs")
	}

	a.stop(t)

	// go-ldap's own request timeout fires on the stopped peer, and so does
	// a TCP dial (the kernel answers it): the hang is only seen by a deadline.
	t.Run("go-ldap request timeout", func(t *testing.T) {
		l, err := goldap.DialURL(a.env["LDAP_URL"])
		if err != nil {
			t.Fatalf("dial a stopped slapd: %v (the kernel should accept it)", err)
		}
		l.SetTimeout(300 * time.Millisecond)
		defer l.Close()
		done := make(chan error, 1)
		go func() {
			_, err := l.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases,
				1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a stopped slapd answered")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("go-ldap's request timeout did not fire on a stopped peer")
		}
	})

	stopPing := make(chan struct{})
	var pings, pingFails atomic.Int64
	var pingWG sync.WaitGroup
	pingWG.Go(func() {
		for {
			select {
			case <-stopPing:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// As /readyz calls it (3s), though no duration is asserted:
			// Ping must succeed because b answers.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := d.Ping(ctx)
			cancel()
			pings.Add(1)
			if err != nil {
				pingFails.Add(1)
				t.Errorf("Ping while a is hung and b answers: %v", err)
			}
		}
	})

	const n = 200
	var failed atomic.Int64
	for i := range n {
		wg.Go(func() {
			user := signInUsers[i%len(signInUsers)]
			u, err := d.Authenticate(t.Context(), user, pw)
			if err != nil || len(u.Groups) == 0 {
				failed.Add(1)
				t.Errorf("sign-in %d (%s) with a hung first server: %v", i, user, err)
			}
		})
	}
	wg.Wait()
	// A few more rounds of Ping after the sign-ins.
	for range 3 {
		if err := d.Ping(t.Context()); err != nil {
			t.Errorf("Ping after the sign-ins: %v", err)
		}
	}
	close(stopPing)
	pingWG.Wait()
	t.Logf("%d sign-ins, %d failed; %d pings, %d failed", n, failed.Load(), pings.Load(), pingFails.Load())

	if serverUp(d, cfg.URLs[0]) {
		t.Errorf("the hung server is not marked down: %+v", d.PoolStats())
	}
	if !serverUp(d, cfg.URLs[1]) {
		t.Errorf("the healthy server is marked down: %+v", d.PoolStats())
	}

	// Back: the prober (not a request) finds it answering again.
	a.cont(t)
	deadline := time.Now().Add(60 * time.Second)
	for !serverUp(d, cfg.URLs[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("a not marked up 60s after SIGCONT: %+v", d.PoolStats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := d.Authenticate(t.Context(), "bob", pw); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestAllServersHung: when every server hangs, a sign-in is an outage
// (ErrDirectoryUnavailable, never a rejection), and Ping fails.
func TestAllServersHung(t *testing.T) {
	srv := startSlapds(t, 1)
	a := srv[0]
	cfg := twoServerConfig(a, a, 500*time.Millisecond)
	cfg.URLs = cfg.URLs[:1]
	d, err := ldap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if _, err := d.Authenticate(t.Context(), "bob", a.env["LDAP_USER_PW"]); err != nil {
		t.Fatal(err)
	}
	a.stop(t)
	_, err = d.Authenticate(t.Context(), "bob", a.env["LDAP_USER_PW"])
	if err == nil || !errors.Is(err, identity.ErrDirectoryUnavailable) || identity.IsRejection(err) {
		t.Fatalf("sign-in with the only server hung: %v, want ErrDirectoryUnavailable", err)
	}
	if err := d.Ping(t.Context()); err == nil {
		t.Fatal("Ping succeeded with the only server hung")
	}
	a.cont(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Every server down: requests try them anyway, so the first one
		// after the server is back succeeds.
		if _, err := d.Authenticate(t.Context(), "bob", a.env["LDAP_USER_PW"]); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no recovery 30s after SIGCONT")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func serverUp(d *ldap.Directory, url string) bool {
	up := true
	for _, s := range d.PoolStats() {
		if s.Server == url {
			up = up && s.Up
		}
	}
	return up
}
