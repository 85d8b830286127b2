package ldap

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

func TestGUIDBytesRoundTrip(t *testing.T) {
	raw := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0xff}
	s, err := guidString(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s != "04030201-0605-0807-090a-0b0c0d0e0fff" {
		t.Fatalf("guidString = %s", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), "{" + s + "}", "urn:uuid:" + s} {
		b, err := guidBytes(in)
		if err != nil || !bytes.Equal(b, raw) {
			t.Errorf("guidBytes(%q) = %x, %v; want %x", in, b, err, raw)
		}
	}
	for _, in := range []string{"", "bob", "*", "04030201-0605-0807-090a-0b0c0d0e0ff*"} {
		if _, err := guidBytes(in); err == nil {
			t.Errorf("guidBytes(%q): no error", in)
		}
	}
	if got := escapeBinary([]byte{0x00, 0x2a, 0x28, 0x5c, 0xff}); got != `\00\2a\28\5c\ff` {
		t.Errorf("escapeBinary = %s", got)
	}
}

func TestIDFilter(t *testing.T) {
	ad := &Directory{cfg: Config{Attributes: Attributes{ID: "objectGUID"}}, idIsGUID: true}
	if f, ok := ad.idFilter("04030201-0605-0807-090a-0b0c0d0e0fff"); !ok || f != `(objectGUID=\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\ff)` {
		t.Errorf("AD filter: %s %v", f, ok)
	}
	ol := &Directory{cfg: Config{Attributes: Attributes{ID: "entryUUID"}}}
	if f, ok := ol.idFilter("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"); !ok || f != "(entryUUID=6ba7b810-9dad-11d1-80b4-00c04fd430c8)" {
		t.Errorf("entryUUID filter: %s %v", f, ok)
	}
	custom := &Directory{cfg: Config{Attributes: Attributes{ID: "employeeNumber"}}}
	if f, ok := custom.idFilter("1*)(uid=*"); !ok || f != `(employeeNumber=1\2a\29\28uid=\2a)` {
		t.Errorf("custom filter: %s %v", f, ok)
	}
	for _, d := range []*Directory{ad, ol, custom} {
		for _, id := range []string{"", "a\x00b", strings.Repeat("a", MaxUsernameLen+1)} {
			if _, ok := d.idFilter(id); ok {
				t.Errorf("%s: idFilter(%q) accepted", d.cfg.Attributes.ID, id)
			}
		}
	}
	for _, id := range []string{"bob", "*"} {
		if _, ok := ad.idFilter(id); ok {
			t.Errorf("objectGUID: idFilter(%q) accepted", id)
		}
		if _, ok := ol.idFilter(id); ok {
			t.Errorf("entryUUID: idFilter(%q) accepted", id)
		}
	}
}

func TestAnyUserFilter(t *testing.T) {
	for tmpl, want := range map[string]string{
		"(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))": "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName=*)(userPrincipalName=*)))",
		"(&(objectClass=inetOrgPerson)(uid={username}))":                                                           "(&(objectClass=inetOrgPerson)(uid=*))",
	} {
		d := &Directory{cfg: Config{UserFilter: tmpl}}
		if got := d.anyUserFilter(); got != want {
			t.Errorf("anyUserFilter(%s) = %s, want %s", tmpl, got, want)
		}
	}
}

func TestDomainOfBaseDN(t *testing.T) {
	for dn, want := range map[string][2]string{
		"DC=example,DC=test":                 {"DC=example,DC=test", "example.test"},
		"OU=Staff,DC=Corp,DC=Example,DC=com": {"DC=Corp,DC=Example,DC=com", "corp.example.com"},
		"dc=example,dc=org":                  {"dc=example,dc=org", "example.org"},
		"o=example":                          {"", ""},
		"not a dn":                           {"", ""},
		"DC=a,OU=b,DC=c":                     {"DC=c", "c"},
		"CN=Users,DC=example,DC=test":        {"DC=example,DC=test", "example.test"},
	} {
		if got := domainDNOf(dn); !strings.EqualFold(got, want[0]) {
			t.Errorf("domainDNOf(%q) = %q, want %q", dn, got, want[0])
		}
		if got := dnsDomainOf(dn); got != want[1] {
			t.Errorf("dnsDomainOf(%q) = %q, want %q", dn, got, want[1])
		}
	}
}

func TestLoginNameAndLimitKeyWithoutDirectory(t *testing.T) {
	// A configured NetBIOS name and a UPN suffix spelled by base_dn need no
	// LDAP request.
	ad := &Directory{cfg: Config{Type: TypeActiveDirectory, NetBIOSDomain: "EXAMPLE", BaseDN: "DC=example,DC=test"}}
	for typed, want := range map[string]string{
		"frank": "frank", "FRANK": "frank", "frank@example.test": "frank", "frank@EXAMPLE.TEST": "frank",
		`EXAMPLE\frank`: "frank", `example\Frank`: "frank",
		`OTHER\frank`: `other\frank`, `EXAMPLE\frank@example.test`: "frank",
	} {
		if got := ad.LimitKey(t.Context(), typed); got != want {
			t.Errorf("AD LimitKey(%q) = %q, want %q", typed, got, want)
		}
	}
	for typed, want := range map[string]struct {
		name string
		ok   bool
	}{
		"bob": {"bob", true}, `EXAMPLE\bob`: {"bob", true}, `Example\bob`: {"bob", true},
		`OTHER\bob`: {"", false}, `\bob`: {"", false}, `EXAMPLE\`: {"", false}, `EXAMPLE\a\b`: {"", false},
		"bob@example.test": {"bob@example.test", true},
	} {
		name, ok, err := ad.loginName(t.Context(), typed)
		if err != nil || name != want.name || ok != want.ok {
			t.Errorf("loginName(%q) = %q, %v, %v; want %q, %v", typed, name, ok, err, want.name, want.ok)
		}
	}
	ol := &Directory{cfg: Config{Type: TypeOpenLDAP, BaseDN: "dc=example,dc=org"}}
	for typed, want := range map[string]string{"Frank": "frank", "frank@example.org": "frank@example.org", `EXAMPLE\frank`: `example\frank`} {
		if got := ol.LimitKey(t.Context(), typed); got != want {
			t.Errorf("OpenLDAP LimitKey(%q) = %q, want %q", typed, got, want)
		}
		if name, ok, _ := ol.loginName(t.Context(), typed); !ok || name != typed {
			t.Errorf("OpenLDAP loginName(%q) = %q, %v", typed, name, ok)
		}
	}
}

func TestGroupSetNames(t *testing.T) {
	named := newGroupSet(true, nil)
	named.add("CN=admins,OU=x,DC=example,DC=test", "", true)
	named.add("CN=staff,DC=example,DC=test", "staff-sam", false)
	named.setName("cn=ADMINS, ou=x,dc=example,dc=test", "x-admins")
	named.setName("CN=staff,DC=example,DC=test", "ignored: already named")
	if u := named.unnamed(); len(u) != 0 {
		t.Errorf("unnamed: %v", u)
	}
	got := map[string]string{}
	for _, g := range named.sorted() {
		got[g.DN] = g.Name
	}
	if got["CN=admins,OU=x,DC=example,DC=test"] != "x-admins" || got["CN=staff,DC=example,DC=test"] != "staff-sam" {
		t.Errorf("named set: %v", got)
	}
	named.add("CN=nameless,DC=example,DC=test", "", false)
	if u := named.unnamed(); len(u) != 1 {
		t.Errorf("unnamed: %v", u)
	}
	rdn := newGroupSet(false, nil)
	rdn.add("CN=admins,OU=x,DC=example,DC=test", "ignored", true)
	rdn.setName("CN=admins,OU=x,DC=example,DC=test", "ignored")
	if g := rdn.sorted(); len(g) != 1 || g[0].Name != "admins" {
		t.Errorf("RDN-named set: %+v", g)
	}
}

func TestValidateNetBIOSAndGroupName(t *testing.T) {
	base := Config{Type: TypeActiveDirectory, URLs: []string{"ldaps://dc.example.test"}, BaseDN: "DC=example,DC=test",
		BindDN: "svc@example.test", BindPassword: "x"}
	base.ApplyPreset()
	base.SetDefaults()
	if base.Attributes.GroupName != "sAMAccountName" {
		t.Errorf("AD preset group_name = %q", base.Attributes.GroupName)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.NetBIOSDomain = "EXAMPLE" }, ""},
		{func(c *Config) { c.NetBIOSDomain = `EX\AMPLE` }, "netbios_domain"},
		{func(c *Config) { c.NetBIOSDomain = "example.test" }, "netbios_domain"},
		{func(c *Config) { c.NetBIOSDomain = "SIXTEENCHARSLONG" }, "netbios_domain"},
		{func(c *Config) { c.NetBIOSDomain = "EXAMPLE"; c.Type = TypeCustom }, "netbios_domain: only for type activedirectory"},
		{func(c *Config) { c.Attributes.GroupName = "cn,x" }, "attributes.group_name"},
	} {
		c := base
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", c.NetBIOSDomain, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
	o := Config{Type: TypeOpenLDAP}
	o.ApplyPreset()
	if o.Attributes.GroupName != "" {
		t.Errorf("openldap preset group_name = %q, want empty (CN)", o.Attributes.GroupName)
	}
}

// TestDownLevelNameOutage: when the NetBIOS name must be read and no server
// answers, DOMAIN\user is an outage (never a wrong password), and LimitKey
// falls back to the typed name.
func TestDownLevelNameOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	cfg := Config{Type: TypeActiveDirectory, URLs: []string{"ldap://" + addr}, BaseDN: "DC=example,DC=test",
		BindDN: "svc@example.test", BindPassword: "x", DialTimeout: time.Second, Timeout: time.Second}
	cfg.ApplyPreset()
	cfg.SetDefaults()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	for range 2 { // the second answer comes from the remembered outage
		_, err = d.Authenticate(t.Context(), `EXAMPLE\bob`, "pw")
		if !errors.Is(err, identity.ErrDirectoryUnavailable) || identity.IsRejection(err) {
			t.Errorf(`EXAMPLE\bob while no server answers: %v, want ErrDirectoryUnavailable`, err)
		}
	}
	if k := d.LimitKey(t.Context(), `EXAMPLE\Bob`); k != `example\bob` {
		t.Errorf("LimitKey during the outage = %q", k)
	}
	if k := d.LimitKey(t.Context(), "Bob@Example.Test"); k != "bob" {
		t.Errorf("LimitKey of a UPN of base_dn's domain = %q, want bob (no directory needed)", k)
	}
}
