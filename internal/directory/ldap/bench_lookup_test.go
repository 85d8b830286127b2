package ldap_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/wardenidp/warden/internal/directory/ldap"
)

// BenchmarkLookupID: the fresh look-up of every console click (search by
// entryUUID with memberOf, nested groups from the group cache) against the
// real OpenLDAP of deploy/testenv, from about 32 goroutines.
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench LookupID -benchtime 20000x ./internal/directory/ldap/
func BenchmarkLookupID(b *testing.B) {
	cfg, env := openLDAPConfig(b)
	cfg.PoolSize = 16
	d, err := ldap.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var ids []string
	for _, name := range []string{"bob", "carol", "alice", "dave"} {
		u, err := d.Authenticate(context.Background(), name, env["LDAP_USER_PW"])
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			u, err := d.LookupID(context.Background(), ids[i%len(ids)])
			if err != nil || len(u.Groups) == 0 {
				b.Errorf("%s: %v", ids[i%len(ids)], err)
				return
			}
			i++
		}
	})
}
