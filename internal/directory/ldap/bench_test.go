package ldap_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/wardenidp/warden/internal/directory/ldap"
)

// BenchmarkAuthenticate: the directory part of a sign-in (service-bound user
// search with memberOf, user bind, nested groups) against the real OpenLDAP
// of deploy/testenv, from about 32 goroutines.
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench Authenticate -benchtime 5s ./internal/directory/ldap/
func BenchmarkAuthenticate(b *testing.B) {
	cfg, env := openLDAPConfig(b)
	for _, bc := range []struct {
		name string
		mod  func(*ldap.Config)
	}{
		{"memberof", func(*ldap.Config) {}},
		{"search", func(c *ldap.Config) { c.GroupSource = ldap.GroupSourceSearch }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := cfg
			bc.mod(&c)
			c.PoolSize = 16
			d, err := ldap.New(c)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			users := []string{"bob", "carol", "alice", "dave", "erin", "pat", "frank"}
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					u, err := d.Authenticate(context.Background(), users[i%len(users)], env["LDAP_USER_PW"])
					if err != nil || len(u.Groups) == 0 {
						b.Errorf("%s: %v", users[i%len(users)], err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auth/s")
		})
	}
}

// BenchmarkUnknownVersusWrong measures what the dummy bind evens out: a
// wrong password for a known user and any password for an unknown user,
// side by side in one run against the real OpenLDAP. The two ns/op should
// be close; an unknown user markedly faster would tell a
// caller which usernames exist.
//
//	go test -run '^$' -bench UnknownVersusWrong -count 5 ./internal/directory/ldap/
func BenchmarkUnknownVersusWrong(b *testing.B) {
	cfg, env := openLDAPConfig(b)
	d, err := ldap.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, bc := range []struct{ name, user string }{
		{"wrong_password", "carol"},
		{"unknown_user", "no-such-user-4711"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := d.Authenticate(context.Background(), bc.user, env["LDAP_USER_PW"]+"x"); err == nil {
					b.Fatal("signed in with a wrong password")
				}
			}
		})
	}
}
