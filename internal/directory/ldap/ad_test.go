package ldap_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory/directorytest"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/testenv"
)

// These tests change the Samba AD directory: each creates its own uniquely
// named OU, users and groups and deletes them when it ends. Seed entries are
// never modified.

// adAdmin returns a connection bound as the domain administrator.
func adAdmin(t *testing.T) (*goldap.Conn, map[string]string) {
	t.Helper()
	env := testenv.Require(t, "AD_LDAPS_URL", "AD_BASE_DN", "AD_ADMIN_UPN", "AD_ADMIN_PW", "AD_CA_CERT")
	conn, err := goldap.DialURL(env["AD_LDAPS_URL"], goldap.DialWithTLSConfig(tlsConfig(t, env["AD_CA_CERT"])))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Bind(env["AD_ADMIN_UPN"], env["AD_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	return conn, env
}

// uniq is a short random suffix for test entries (sAMAccountName of a user
// has at most 20 characters).
func uniq(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// adAdd adds an entry and deletes it when the test ends (in reverse order
// of creation: t.Cleanup runs last-in first-out).
func adAdd(t *testing.T, conn *goldap.Conn, dn string, attrs map[string][]string) {
	t.Helper()
	req := goldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := conn.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	t.Cleanup(func() {
		err := conn.Del(goldap.NewDelRequest(dn, nil))
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			t.Errorf("clean up %s: %v", dn, err)
		}
	})
}

// adAddUser adds an enabled user with password pw.
func adAddUser(t *testing.T, conn *goldap.Conn, dn, sam, pw string) {
	t.Helper()
	// unicodePwd: the password in double quotes, UTF-16LE (MS-ADTS 3.1.1.3.1.5.1).
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	adAdd(t, conn, dn, map[string][]string{
		"objectClass":        {"top", "person", "organizationalPerson", "user"},
		"sAMAccountName":     {sam},
		"displayName":        {"Warden Test " + sam},
		"unicodePwd":         {string(b)},
		"userAccountControl": {"512"},
	})
}

func adModify(t *testing.T, conn *goldap.Conn, dn string, f func(*goldap.ModifyRequest)) {
	t.Helper()
	req := goldap.NewModifyRequest(dn, nil)
	f(req)
	if err := conn.Modify(req); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

// TestActiveDirectoryGroupNames: a group whose CN is that of a rule's group
// (admins), in another OU, with its own sAMAccountName, is not that group:
// its members get neither the grant rule's nor a pattern rule's roles, in
// every group source. Rules by DN still match.
func TestActiveDirectoryGroupNames(t *testing.T) {
	cfg, env := adConfig(t)
	conn, _ := adAdmin(t)
	base := env["AD_BASE_DN"]
	id := uniq(t)
	ou := "OU=warden-test-" + id + "," + base
	adAdd(t, conn, ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}})
	fakeAdmins := "CN=admins," + ou
	fakePattern := "CN=AWS-111122223333-Admin," + ou
	adAdd(t, conn, fakeAdmins, map[string][]string{"objectClass": {"top", "group"}, "sAMAccountName": {"wt-" + id + "-adm"}})
	adAdd(t, conn, fakePattern, map[string][]string{"objectClass": {"top", "group"}, "sAMAccountName": {"wt-" + id + "-pat"}})
	sam := "wt" + id
	userDN := "CN=" + sam + "," + ou
	adAddUser(t, conn, userDN, sam, env["AD_USER_PW"])
	for _, g := range []string{fakeAdmins, fakePattern} {
		adModify(t, conn, g, func(r *goldap.ModifyRequest) { r.Add("member", []string{userDN}) })
	}

	rules, err := rolemap.ParseYAML([]byte(`
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: admins
    group: admins
    roles:
      - arn: arn:aws:iam::111122223333:role/Admin
  - id: by-dn
    group: "` + fakeAdmins + `"
    roles:
      - arn: arn:aws:iam::111122223333:role/ByDN
patterns:
  - id: adfs
    pattern: ^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$
    role_arn: arn:aws:iam::${account}:role/${role}
`))
	if err != nil {
		t.Fatal(err)
	}
	engine, err := rolemap.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	roles := func(u identity.User) string {
		var out []string
		for _, g := range engine.Evaluate(rolemap.InputFromUser(u)).Grants {
			out = append(out, g.RoleName)
		}
		return strings.Join(out, ",")
	}

	for _, src := range []string{ldap.GroupSourceInChain, ldap.GroupSourceMemberOf, ldap.GroupSourceSearch} {
		t.Run(src, func(t *testing.T) {
			c := cfg
			c.GroupSource = src
			d := newDir(t, c, nil)
			u, err := d.Authenticate(t.Context(), sam, env["AD_USER_PW"])
			if err != nil {
				t.Fatalf("Authenticate(%s): %v", sam, err)
			}
			byDN := map[string]string{}
			for _, g := range u.Groups {
				byDN[strings.ToLower(g.DN)] = g.Name
			}
			if n := byDN[strings.ToLower(fakeAdmins)]; n != "wt-"+id+"-adm" {
				t.Errorf("group %s: Name %q, want its sAMAccountName wt-%s-adm (groups %+v)", fakeAdmins, n, id, u.Groups)
			}
			if n := byDN[strings.ToLower(fakePattern)]; n != "wt-"+id+"-pat" {
				t.Errorf("group %s: Name %q, want its sAMAccountName (groups %+v)", fakePattern, n, u.Groups)
			}
			for _, g := range u.Groups {
				if strings.EqualFold(g.Name, "admins") || strings.HasPrefix(g.Name, "AWS-") {
					t.Errorf("group %s is named %q, a CN", g.DN, g.Name)
				}
			}
			if got := roles(u); got != "ByDN" {
				t.Errorf("roles of %s: %q, want only ByDN (the rule naming the fake group's DN)", sam, got)
			}
			// Again: memberof now takes the names from its cache.
			u2, err := d.Lookup(t.Context(), sam)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(u2.Groups, u.Groups) {
				t.Errorf("second look-up: groups %+v, first %+v", u2.Groups, u.Groups)
			}
			// The real admins group still grants by name.
			a, err := d.Lookup(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			if got := roles(a); got != "Admin" {
				t.Errorf("roles of alice: %q, want Admin", got)
			}
		})
	}
}

// TestActiveDirectoryDownLevelName: DOMAIN\user signs in for this domain's
// NetBIOS name (discovered, or configured), another domain reads like an
// unknown user, and the UPN still works. LimitKey folds them into one key.
func TestActiveDirectoryDownLevelName(t *testing.T) {
	cfg, env := adConfig(t)
	domain := testenv.Require(t, "AD_DOMAIN")["AD_DOMAIN"]
	realm := env["AD_REALM"]
	pw := env["AD_USER_PW"]
	for _, tc := range []struct {
		name, netbios string
	}{{"discovered", ""}, {"configured", domain}} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.NetBIOSDomain = tc.netbios
			rec := &directorytest.Recorder{}
			d := newDir(t, c, rec)
			for _, login := range []string{domain + `\bob`, strings.ToLower(domain) + `\bob`, "bob@" + realm, "bob@" + strings.ToLower(realm), "bob"} {
				u, err := d.Authenticate(t.Context(), login, pw)
				if err != nil {
					t.Fatalf("Authenticate(%q): %v", login, err)
				}
				if u.Username != "bob" {
					t.Errorf("Authenticate(%q): Username %q, want bob", login, u.Username)
				}
			}
			if u, err := d.Lookup(t.Context(), domain+`\bob`); err != nil || u.Username != "bob" {
				t.Errorf("Lookup(%s\\bob): %q, %v", domain, u.Username, err)
			}
			_, wrong := d.Authenticate(t.Context(), "bob", pw+"x")
			if !errors.Is(wrong, identity.ErrInvalidCredentials) {
				t.Fatalf("wrong password: %v", wrong)
			}
			for _, login := range []string{`OTHER\bob`, domain + `\`, `\bob`, domain + `\` + domain + `\bob`} {
				rec.Reset()
				_, err := d.Authenticate(t.Context(), login, pw)
				if !errors.Is(err, identity.ErrInvalidCredentials) || err.Error() != wrong.Error() {
					t.Errorf("Authenticate(%q): %v, want what a wrong password gives (%v)", login, err, wrong)
				}
				if rec.Count("dummy_bind") != 1 || rec.Count("bind") != 0 {
					t.Errorf("Authenticate(%q): %d dummy binds, %d binds; want the unknown-user path (1 dummy bind)",
						login, rec.Count("dummy_bind"), rec.Count("bind"))
				}
				if _, err := d.Lookup(t.Context(), login); !errors.Is(err, identity.ErrUserNotFound) {
					t.Errorf("Lookup(%q): %v, want ErrUserNotFound", login, err)
				}
			}
			for _, login := range []string{"frank", "FRANK", "frank@" + realm, "Frank@" + strings.ToLower(realm),
				domain + `\frank`, strings.ToLower(domain) + `\FRANK`} {
				if k := d.LimitKey(t.Context(), login); k != "frank" {
					t.Errorf("LimitKey(%q) = %q, want frank", login, k)
				}
			}
			for _, login := range []string{`OTHER\frank`, "frank@other.example", "frank2"} {
				if k := d.LimitKey(t.Context(), login); k == "frank" {
					t.Errorf("LimitKey(%q) = %q: another account's key", login, k)
				}
			}
		})
	}
	t.Run("wrong configured name", func(t *testing.T) {
		c := cfg
		c.NetBIOSDomain = "WRONG"
		d := newDir(t, c, nil)
		if _, err := d.Authenticate(t.Context(), domain+`\bob`, pw); !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Errorf("%s\\bob with netbios_domain WRONG: %v, want ErrInvalidCredentials", domain, err)
		}
		if _, err := d.Authenticate(t.Context(), `WRONG\bob`, pw); err != nil {
			t.Errorf(`WRONG\bob with netbios_domain WRONG: %v`, err)
		}
	})
}

// TestActiveDirectoryLookupIDAfterRename: a user whose sAMAccountName
// changes (objectGUID stays) is found by LookupID under the new name;
// Lookup by the old name finds nobody. A disabled user's ID answers
// ErrAccountDisabled, a deleted one's ErrUserNotFound.
func TestActiveDirectoryLookupIDAfterRename(t *testing.T) {
	cfg, env := adConfig(t)
	conn, _ := adAdmin(t)
	id := uniq(t)
	ou := "OU=warden-test-" + id + "," + env["AD_BASE_DN"]
	adAdd(t, conn, ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}})
	oldName, newName := "wto"+id, "wtn"+id
	userDN := "CN=renamed " + id + "," + ou
	adAddUser(t, conn, userDN, oldName, env["AD_USER_PW"])

	d := newDir(t, cfg, nil)
	before, err := d.Lookup(t.Context(), oldName)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", oldName, err)
	}
	adModify(t, conn, userDN, func(r *goldap.ModifyRequest) { r.Replace("sAMAccountName", []string{newName}) })

	after, err := d.LookupID(t.Context(), before.ID)
	if err != nil {
		t.Fatalf("LookupID(%s) after the rename: %v", before.ID, err)
	}
	if after.Username != newName || after.ID != before.ID || !strings.EqualFold(after.DN, userDN) {
		t.Errorf("LookupID after the rename: %q %q %q, want %q %q %q", after.Username, after.ID, after.DN, newName, before.ID, userDN)
	}
	if _, err := d.Lookup(t.Context(), oldName); !errors.Is(err, identity.ErrUserNotFound) {
		t.Errorf("Lookup(%s) (the old name): %v, want ErrUserNotFound", oldName, err)
	}
	if u, err := d.Authenticate(t.Context(), newName, env["AD_USER_PW"]); err != nil || u.ID != before.ID {
		t.Errorf("Authenticate(%s): %v (ID %q, want %q)", newName, err, u.ID, before.ID)
	}

	adModify(t, conn, userDN, func(r *goldap.ModifyRequest) { r.Replace("userAccountControl", []string{"514"}) })
	if _, err := d.LookupID(t.Context(), before.ID); !errors.Is(err, identity.ErrAccountDisabled) {
		t.Errorf("LookupID of a disabled user: %v, want ErrAccountDisabled", err)
	}
	if err := conn.Del(goldap.NewDelRequest(userDN, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LookupID(t.Context(), before.ID); !errors.Is(err, identity.ErrUserNotFound) {
		t.Errorf("LookupID of a deleted user: %v, want ErrUserNotFound", err)
	}
}

// TestActiveDirectoryGroupNamesPastNesting: with group_source memberof, the
// groups found at the last level max_nesting allows (whose memberOf is not
// read) get their sAMAccountName too, with and without the cache.
func TestActiveDirectoryGroupNamesPastNesting(t *testing.T) {
	cfg, _ := adConfig(t)
	cfg.GroupSource = ldap.GroupSourceMemberOf
	cfg.MaxNesting = 1
	for _, ttl := range []time.Duration{-1, 0} {
		c := cfg
		c.GroupCacheTTL = ttl
		c.SetDefaults()
		d := newDir(t, c, nil)
		for range 2 {
			u, err := d.Lookup(t.Context(), "bob")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, g := range u.Groups {
				names = append(names, g.Name)
			}
			if strings.Join(names, ",") != "developers,engineering" {
				t.Errorf("cache ttl %v: groups %v, want developers,engineering (named)", c.GroupCacheTTL, names)
			}
		}
	}
}

// TestDownLevelNameNotAD: where the domain's NetBIOS name cannot be read
// (here: OpenLDAP, which has no configuration naming context, under the
// activedirectory type) and none is configured, DOMAIN\user reads like an
// unknown user, and plain names still work.
func TestDownLevelNameNotAD(t *testing.T) {
	cfg, env := openLDAPConfig(t)
	cfg.Type = ldap.TypeActiveDirectory
	d := newDir(t, cfg, nil)
	if _, err := d.Authenticate(t.Context(), `EXAMPLE\bob`, env["LDAP_USER_PW"]); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Errorf(`EXAMPLE\bob: %v, want ErrInvalidCredentials`, err)
	}
	if u, err := d.Authenticate(t.Context(), "bob", env["LDAP_USER_PW"]); err != nil || u.Username != "bob" {
		t.Errorf("bob: %q %v", u.Username, err)
	}
}
