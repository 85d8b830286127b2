package ldap_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/directorytest"
	"github.com/wardenidp/warden/internal/directory/ldap"
)

// BenchmarkSignInFirstServerHung: urls [a, b], both throwaway slapds of
// this test (never the shared ones); the pools are warm on a, then a is
// SIGSTOPped (the kernel still accepts connections, nothing answers) and
// b.N sign-ins run from 32 goroutines. Reports the latency of one sign-in
// (Authenticate: user search, user bind, groups) as p50, p99 and max, and
// how many took longer than 1s; directory.timeout is 2s. Run it long enough
// to span several probes of the prober and health-check rounds (waves would
// show as a high "slow" count):
//
//	go test -run '^$' -bench SignInFirstServerHung -benchtime 20000x ./internal/directory/ldap/
func BenchmarkSignInFirstServerHung(b *testing.B) {
	srv := startSlapds(b, 2)
	a, c := srv[0], srv[1]
	cfg := twoServerConfig(a, c, 2*time.Second)
	cfg.HealthCheckInterval = 5 * time.Second
	pw := a.env["LDAP_USER_PW"]
	d, err := ldap.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if _, err := d.Authenticate(context.Background(), signInUsers[i%len(signInUsers)], pw); err != nil {
				b.Errorf("warm-up: %v", err)
			}
		})
	}
	wg.Wait()
	a.stop(b)

	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				start := time.Now()
				_, err := d.Authenticate(context.Background(), signInUsers[i%len(signInUsers)], pw)
				lat[i] = time.Since(start)
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d sign-ins failed", n, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	slow := len(lat) - slices.IndexFunc(lat, func(d time.Duration) bool { return d > time.Second })
	if slices.IndexFunc(lat, func(d time.Duration) bool { return d > time.Second }) < 0 {
		slow = 0
	}
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(slow), "slow>1s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auth/s")
}

// BenchmarkSignInFirstServerDead: the first sign-in of a fresh Directory
// whose first URL refuses connections (a closed port on loopback) and whose
// second is the shared OpenLDAP, against a fresh Directory with the live URL
// only: the difference is the cost of the failover. The directory suite's
// failover case (directorytest) checks that it happens and how; the time
// is measured here (docs/benchmarks.md, "Timing of failures").
//
//	go test -run '^$' -bench SignInFirstServerDead -benchtime 200x ./internal/directory/ldap/
func BenchmarkSignInFirstServerDead(b *testing.B) {
	cfg, env := openLDAPConfig(b)
	for _, bc := range []struct {
		name string
		urls []string
	}{
		{"live_only", []string{env["LDAP_URL"]}},
		{"dead_first", []string{directorytest.DeadURL(b), env["LDAP_URL"]}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := cfg
			c.URLs = bc.urls
			for b.Loop() {
				d, err := ldap.New(c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Authenticate(context.Background(), "bob", env["LDAP_USER_PW"]); err != nil {
					b.Fatalf("sign-in: %v", err)
				}
				_ = d.Close()
			}
		})
	}
}
