package ldap_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory"
	"github.com/wardenidp/warden/internal/directory/directorytest"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/testenv"
)

// seedUsers is what deploy/ldap/seed.ldif and the Samba seed hold; mail
// domains differ (example.org, example.test).
func seedUsers(mailDomain string) map[string]directorytest.WantUser {
	nested := []directorytest.WantGroup{{Name: "developers", Direct: true}, {Name: "engineering"}, {Name: "staff"}, {Name: "company"}}
	return map[string]directorytest.WantUser{
		"alice": {Username: "alice", DisplayName: "Alice Anderson", Email: "alice@" + mailDomain,
			Groups: []directorytest.WantGroup{{Name: "admins", Direct: true}, {Name: "engineering"}, {Name: "staff"}, {Name: "company"}}},
		"bob":   {Username: "bob", DisplayName: "Bob Brown", Email: "bob@" + mailDomain, Groups: nested},
		"carol": {Username: "carol", DisplayName: "Carol Clark", Email: "carol@" + mailDomain, Groups: nested},
		"dave": {Username: "dave", DisplayName: "Dave Davis", Email: "dave@" + mailDomain,
			Groups: []directorytest.WantGroup{{Name: "engineering", Direct: true}, {Name: "staff"}, {Name: "company"}}},
		"erin": {Username: "erin", DisplayName: "Erin Evans", Email: "erin@" + mailDomain,
			Groups: []directorytest.WantGroup{{Name: "staff", Direct: true}, {Name: "company"}}},
		"frank": {Username: "frank", DisplayName: "Frank Fischer", Email: "frank@" + mailDomain,
			Groups: []directorytest.WantGroup{{Name: "loop-a", Direct: true}, {Name: "loop-b"}}},
		"jürgen": {Username: "jürgen", DisplayName: "Jürgen Müller", Email: "juergen@" + mailDomain, Groups: nested},
		"pat":    {Username: "pat", DisplayName: "Pat O'Connor, Jr. (ext*)", Email: "pat@" + mailDomain, Groups: nested},
	}
}

func openLDAPConfig(t testing.TB) (ldap.Config, map[string]string) {
	env := testenv.Require(t, "LDAP_URL", "LDAPS_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW",
		"LDAP_USER_PW", "LDAP_CA_CERT")
	cfg := ldap.Config{
		Type:         ldap.TypeOpenLDAP,
		URLs:         []string{env["LDAP_URL"]},
		BaseDN:       env["LDAP_BASE_DN"],
		BindDN:       env["LDAP_BIND_DN"],
		BindPassword: env["LDAP_BIND_PW"],
		DialTimeout:  2 * time.Second,
		Timeout:      5 * time.Second,
	}
	if os.Getenv("LDAP_MEMBEROF") == "none" {
		cfg.GroupSource = ldap.GroupSourceSearch
	}
	cfg.ApplyPreset()
	cfg.SetDefaults()
	return cfg, env
}

func adConfig(t testing.TB) (ldap.Config, map[string]string) {
	env := testenv.Require(t, "AD_URL", "AD_LDAPS_URL", "AD_BASE_DN", "AD_BIND_UPN", "AD_BIND_PW",
		"AD_USER_PW", "AD_CA_CERT", "AD_REALM")
	cfg := ldap.Config{
		Type:         ldap.TypeActiveDirectory,
		URLs:         []string{env["AD_LDAPS_URL"]},
		CAFile:       env["AD_CA_CERT"],
		BaseDN:       env["AD_BASE_DN"],
		BindDN:       env["AD_BIND_UPN"],
		BindPassword: env["AD_BIND_PW"],
		DialTimeout:  2 * time.Second,
		Timeout:      10 * time.Second,
	}
	cfg.ApplyPreset()
	cfg.SetDefaults()
	return cfg, env
}

// newDir opens cfg for the test (closed when it ends), observed by rec
// when set.
func newDir(t *testing.T, cfg ldap.Config, rec *directorytest.Recorder) *ldap.Directory {
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

func hostPort(t testing.TB, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestOpenLDAP(t *testing.T) {
	cfg, env := openLDAPConfig(t)
	directorytest.Run(t, directorytest.Fixture{
		New:      func(t *testing.T, rec *directorytest.Recorder) directory.Directory { return newDir(t, cfg, rec) },
		Password: env["LDAP_USER_PW"],
		Users:    seedUsers("example.org"),
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
		// The memberof overlay stores direct membership only, so the client
		// walks the nesting and knows what is direct; dynlist computes
		// memberOf transitively and cannot tell.
		DirectKnown: os.Getenv("LDAP_MEMBEROF") != "dynlist",
		Failover: func(t *testing.T, rec *directorytest.Recorder, dead string) directory.Directory {
			c := cfg
			c.URLs = []string{dead, env["LDAP_URL"]}
			return newDir(t, c, rec)
		},
		TLS: func(t *testing.T, mode directorytest.TLSMode, ca string) directory.Directory {
			c := cfg
			c.CAFile = env["LDAP_CA_CERT"]
			if ca != "" {
				c.CAFile = ca
			}
			if mode == directorytest.LDAPS {
				c.URLs = []string{env["LDAPS_URL"]}
			} else {
				c.StartTLS = true
			}
			return newDir(t, c, nil)
		},
		Outage: func(t *testing.T) (directory.Directory, func(), func()) {
			p := directorytest.NewProxy(t, hostPort(t, env["LDAP_URL"]))
			c := cfg
			c.URLs = []string{"ldap://" + p.Addr()}
			return newDir(t, c, nil), p.Stop, p.Start
		},
	})
}

// TestOpenLDAPGroupSearch runs the group part of the suite with
// group_source search (groupOfNames by member, nesting level by level).
func TestOpenLDAPGroupSearch(t *testing.T) {
	cfg, env := openLDAPConfig(t)
	cfg.GroupSource = ldap.GroupSourceSearch
	cfg.PageSize = 2 // several pages for the bigger levels
	directorytest.Run(t, directorytest.Fixture{
		New:         func(t *testing.T, rec *directorytest.Recorder) directory.Directory { return newDir(t, cfg, rec) },
		Password:    env["LDAP_USER_PW"],
		Users:       seedUsers("example.org"),
		DirectKnown: true,
	})
}

func TestActiveDirectory(t *testing.T) {
	cfg, env := adConfig(t)
	directorytest.Run(t, directorytest.Fixture{
		New:      func(t *testing.T, rec *directorytest.Recorder) directory.Directory { return newDir(t, cfg, rec) },
		Password: env["AD_USER_PW"],
		Users:    seedUsers(strings.ToLower(env["AD_REALM"])),
		States: map[string]error{
			"locked":      identity.ErrAccountLocked,
			"pwexpired":   identity.ErrPasswordExpired,
			"mustchange":  identity.ErrMustChangePassword,
			"disabled":    identity.ErrAccountDisabled,
			"acctexpired": identity.ErrAccountExpired,
		},
		LookupStates: map[string]error{
			"locked":      identity.ErrAccountLocked,
			"pwexpired":   identity.ErrPasswordExpired,
			"mustchange":  identity.ErrMustChangePassword,
			"disabled":    identity.ErrAccountDisabled,
			"acctexpired": identity.ErrAccountExpired,
		},
		DirectKnown: true,
		Failover: func(t *testing.T, rec *directorytest.Recorder, dead string) directory.Directory {
			c := cfg
			c.URLs = []string{dead, env["AD_LDAPS_URL"]}
			return newDir(t, c, rec)
		},
		TLS: func(t *testing.T, mode directorytest.TLSMode, ca string) directory.Directory {
			c := cfg
			if ca != "" {
				c.CAFile = ca
			}
			if mode == directorytest.StartTLS {
				c.URLs = []string{env["AD_URL"]}
				c.StartTLS = true
			}
			return newDir(t, c, nil)
		},
		Outage: func(t *testing.T) (directory.Directory, func(), func()) {
			p := directorytest.NewProxy(t, hostPort(t, env["AD_LDAPS_URL"]))
			c := cfg
			c.URLs = []string{"ldaps://" + p.Addr()}
			return newDir(t, c, nil), p.Stop, p.Start
		},
	})
}

// TestActiveDirectoryGUID checks the objectGUID rendering against the
// server's own: the extended-DN control (1.2.840.113556.1.4.529, value
// SEQUENCE { INTEGER 1 } for the string form) makes AD prefix each DN with
// <GUID=xxxxxxxx-xxxx-...>.
func TestActiveDirectoryGUID(t *testing.T) {
	cfg, env := adConfig(t)
	d := newDir(t, cfg, nil)
	u, err := d.Lookup(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := goldap.DialURL(env["AD_LDAPS_URL"], goldap.DialWithTLSConfig(tlsConfig(t, env["AD_CA_CERT"])))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(env["AD_BIND_UPN"], env["AD_BIND_PW"]); err != nil {
		t.Fatal(err)
	}
	ext := &goldap.ControlString{ControlType: "1.2.840.113556.1.4.529", ControlValue: "\x30\x03\x02\x01\x01"}
	res, err := conn.Search(goldap.NewSearchRequest(u.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, []goldap.Control{ext}))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("extended DN search: %v", err)
	}
	if want := strings.ToLower("<GUID=" + u.ID + ">"); !strings.HasPrefix(strings.ToLower(res.Entries[0].DN), want) {
		t.Fatalf("server says %s, we say ID %s", res.Entries[0].DN, u.ID)
	}
}

func tlsConfig(t testing.TB, caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
