// Package apptest starts a real wardend (app.Run) for tests of other
// packages: on a loopback listener, against the real OpenLDAP and Redis that
// deploy/testenv starts (skipping locally, failing under CI=true, when they
// are absent), stopped when the test ends.
package apptest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/app"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// RealOptions returns options for the real test servers: OpenLDAP from
// LDAP_*, Redis from REDIS_ADDR under a key prefix of its own, alice's
// "admins" as the admin group, rulesFile (read-only) as the rules, a 1 s
// device poll interval and 1 min device codes. It also returns LDAP_USER_PW,
// the seed users' password. Under -short it skips.
func RealOptions(t testing.TB, rulesFile string) (app.Options, string) {
	t.Helper()
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW", "REDIS_ADDR")
	if testing.Short() {
		t.Skip("wardend end to end skipped in -short mode")
	}
	o := app.Options{Admin: admin.Config{Groups: []string{"admins"}, RulesFile: rulesFile, RulesReadOnly: rulesFile != ""},
		Banner: io.Discard, DataDir: t.TempDir()}
	o.Directory = ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"]}
	o.Directory.Attributes.Extra = []string{"department"} // the example rules tag it
	o.Directory.ApplyPreset()
	o.Directory.SetDefaults()
	o.Redis = store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	o.Redis.SetDefaults()
	o.Redis.KeyPrefix = fmt.Sprintf("warden-apptest-%d:", time.Now().UnixNano())
	o.OIDC.DevicePollInterval = time.Second
	o.OIDC.DeviceCodeLifetime = time.Minute
	return o, env["LDAP_USER_PW"]
}

// Start runs wardend with o on a fresh loopback listener and returns its
// base URL (also its public URL and OIDC issuer).
func Start(t testing.TB, o app.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	o.Listener = ln
	o.Server.Listen = ln.Addr().String()
	o.Server.PublicURL = base
	o.Server.SetDefaults()
	o.Session.SetDefaults()
	o.LoginLimits.SetDefaults()
	if o.Banner == nil {
		o.Banner = io.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	o.Started = func(net.Addr) { close(started) }
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, o) }()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("wardend did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("wardend did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wardend stopped with %v", err)
		}
	})
	return base
}
