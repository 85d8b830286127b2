package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/directory/directorytest"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestCheckConfigConnect: check-config -connect against the shared OpenLDAP
// (read only): one line per server, and a wrong CA file or server name
// fails here, with the key to fix, instead of at the first sign-in.
func TestCheckConfigConnect(t *testing.T) {
	env := testenv.Require(t, "LDAP_URL", "LDAPS_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_CA_CERT")
	dir := t.TempDir()
	write := func(name, urls, extra string) string {
		p := filepath.Join(dir, name+".yaml")
		y := fmt.Sprintf(`server:
  public_url: https://sso.example.com
directory:
  type: openldap
  urls: [%s]
  base_dn: %q
  bind_dn: %q
  bind_password: %q
%sadmin:
  groups: [admins]
redis:
  addrs: [127.0.0.1:1]
data_dir: %s
`, urls, env["LDAP_BASE_DN"], env["LDAP_BIND_DN"], env["LDAP_BIND_PW"], extra, filepath.Join(dir, "data"))
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := "  ca_file: " + env["LDAP_CA_CERT"] + "\n"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"both OK with a user", []string{"-config", write("good", env["LDAPS_URL"]+", "+env["LDAP_URL"], ca+"  start_tls: false\n"), "-connect", "-user", "bob"}, 0,
			[]string{"directory " + env["LDAPS_URL"] + ": OK", "directory " + env["LDAP_URL"] + ": OK", "user bob: DN uid=bob,", "developers", "2 of 2 servers OK"}},
		{"wrong CA", []string{"-config", write("wrongca", env["LDAPS_URL"], "  ca_file: "+directorytest.WrongCA(t)+"\n"), "-connect"}, 1,
			[]string{"FAILED at tls", "certificate signed by unknown authority", "directory.ca_file", "1 of 1 servers failed"}},
		{"wrong server name", []string{"-config", write("wrongname", env["LDAPS_URL"], ca+"  server_name: ldap.wrong.example\n"), "-connect"}, 1,
			[]string{"FAILED at tls", "directory.server_name"}},
		{"one of two down", []string{"-config", write("onedown", directorytest.DeadURL(t)+", "+env["LDAP_URL"], ""), "-connect"}, 1,
			[]string{"FAILED at dial", "directory " + env["LDAP_URL"] + ": OK", "1 of 2 servers failed"}},
		{"user without connect", []string{"-config", write("nouser", env["LDAP_URL"], ""), "-user", "bob"}, 2,
			[]string{"usage: wardend check-config"}},
		{"without -connect no connection", []string{"-config", write("noconnect", directorytest.DeadURL(t), "")}, 0,
			[]string{"config OK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"check-config"}, tc.args...), &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, env["LDAP_BIND_PW"]) {
				t.Errorf("output shows the bind password:\n%s", all)
			}
		})
	}
}
