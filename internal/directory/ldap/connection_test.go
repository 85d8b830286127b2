package ldap_test

import (
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory/directorytest"
	"github.com/wardenidp/warden/internal/directory/ldap"
)

// TestTestConnection: each configuration mistake check-config -connect must
// catch fails at its own step with a hint naming the key to fix.
func TestTestConnection(t *testing.T) {
	base, env := openLDAPConfig(t)
	base.CAFile = env["LDAP_CA_CERT"]
	wrongCA := directorytest.WrongCA(t)
	for _, tc := range []struct {
		name     string
		mod      func(*ldap.Config)
		user     string
		step     string // "" for OK
		inErr    string
		inHint   string
		wantUser bool
	}{
		{name: "ldaps", mod: func(c *ldap.Config) { c.URLs = []string{env["LDAPS_URL"]} }, user: "bob", wantUser: true},
		{name: "starttls", mod: func(c *ldap.Config) { c.StartTLS = true }},
		{name: "plain", mod: func(c *ldap.Config) { c.CAFile = "" }, user: "pat", wantUser: true},
		{name: "ldaps wrong CA", mod: func(c *ldap.Config) { c.URLs = []string{env["LDAPS_URL"]}; c.CAFile = wrongCA },
			step: ldap.StepTLS, inErr: "certificate", inHint: "ca_file"},
		{name: "ldaps wrong server name", mod: func(c *ldap.Config) { c.URLs = []string{env["LDAPS_URL"]}; c.ServerName = "ldap.wrong.example" },
			step: ldap.StepTLS, inErr: "certificate", inHint: "server_name"},
		{name: "starttls wrong CA", mod: func(c *ldap.Config) { c.StartTLS = true; c.CAFile = wrongCA },
			step: ldap.StepStartTLS, inErr: "certificate", inHint: "ca_file"},
		{name: "ldaps to the plain port", mod: func(c *ldap.Config) {
			c.URLs = []string{strings.Replace(env["LDAP_URL"], "ldap://", "ldaps://", 1)}
		}, step: ldap.StepTLS},
		{name: "nothing listens", mod: func(c *ldap.Config) { c.URLs = []string{directorytest.DeadURL(t)} },
			step: ldap.StepDial, inHint: "directory.urls"},
		{name: "wrong bind password", mod: func(c *ldap.Config) { c.BindPassword = "not-the-password" },
			step: ldap.StepServiceBind, inHint: "bind_password"},
		{name: "wrong user base", mod: func(c *ldap.Config) { c.UserBaseDN = "ou=nosuch," + env["LDAP_BASE_DN"] },
			step: ldap.StepBaseSearch, inHint: "user_base_dn"},
		{name: "unknown user", user: "nosuch-user", step: ldap.StepUserSearch, inHint: "user_filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.mod != nil {
				tc.mod(&c)
			}
			d, err := ldap.New(c)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			res := d.TestConnection(t.Context(), tc.user)
			if len(res) != 1 {
				t.Fatalf("%d results for one URL", len(res))
			}
			r := res[0]
			line := r.String()
			if strings.Contains(line, c.BindPassword) {
				t.Fatalf("the report shows the bind password: %s", line)
			}
			if tc.step == "" {
				if !r.OK || r.Err != nil {
					t.Fatalf("want OK: %s", line)
				}
				if !strings.Contains(line, ": OK") {
					t.Errorf("line: %s", line)
				}
				if tc.wantUser {
					if r.User == nil || r.User.DN == "" || r.User.ID == "" || len(r.User.Groups) == 0 {
						t.Fatalf("user: %+v", r.User)
					}
					if !strings.Contains(line, r.User.DN) || !strings.Contains(line, r.User.Groups[0].Name) {
						t.Errorf("line lacks the user's DN or groups: %s", line)
					}
				}
				return
			}
			if r.OK || r.Err == nil {
				t.Fatalf("want a failure at %s: %s", tc.step, line)
			}
			if r.Step != tc.step {
				t.Errorf("failed at %q, want %q: %s", r.Step, tc.step, line)
			}
			if !strings.Contains(r.Err.Error(), tc.inErr) {
				t.Errorf("error lacks %q: %s", tc.inErr, line)
			}
			if !strings.Contains(r.Hint, tc.inHint) {
				t.Errorf("hint lacks %q: %s", tc.inHint, line)
			}
			if !strings.Contains(line, "FAILED at "+tc.step) {
				t.Errorf("line: %s", line)
			}
			t.Log(line)
		})
	}
}

// TestGroupDNsByCN: a second "developers" group in another OU (added to a
// throwaway slapd of this test) makes the bare CN ambiguous.
func TestGroupDNsByCN(t *testing.T) {
	a := startSlapds(t, 1)[0]
	env := a.env
	l, err := goldap.DialURL(env["LDAP_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	ou := goldap.NewAddRequest("ou=teams,"+env["LDAP_GROUPS_DN"], nil)
	ou.Attribute("objectClass", []string{"organizationalUnit"})
	ou.Attribute("ou", []string{"teams"})
	g := goldap.NewAddRequest("cn=developers,ou=teams,"+env["LDAP_GROUPS_DN"], nil)
	g.Attribute("objectClass", []string{"groupOfNames"})
	g.Attribute("cn", []string{"developers"})
	g.Attribute("member", []string{"uid=erin," + env["LDAP_USERS_DN"]})
	for _, r := range []*goldap.AddRequest{ou, g} {
		if err := l.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	cfg := twoServerConfig(a, a, 5*time.Second)
	cfg.URLs = cfg.URLs[:1]
	d, err := ldap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, want := range map[string]int{"developers": 2, "Developers": 2, "admins": 1, "nosuch": 0, "dev*": 0} {
		dns, err := d.GroupDNsByCN(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(dns) != want {
			t.Errorf("%s: %d groups %v, want %d", name, len(dns), dns, want)
		}
	}
}
