package web

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
	"github.com/wardenidp/warden/internal/testenv"
)

// The directory wardend passes to the web server has the capability.
var _ PasswordChanger = (*ldap.Directory)(nil)

// e2eUser is a user of the test's own in a real directory, whose password
// must be changed, removed when the test ends.
type e2eUser struct {
	cfg      ldap.Config
	name, pw string
}

func e2eRand(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// e2eAdd adds an entry as conn's identity and deletes it at the end.
func e2eAdd(t *testing.T, conn *goldap.Conn, dn string, attrs map[string][]string, controls ...goldap.Control) {
	t.Helper()
	req := goldap.NewAddRequest(dn, controls)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := conn.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	t.Cleanup(func() { _ = conn.Del(goldap.NewDelRequest(dn, nil)) })
}

// openLDAPMustChange: the shared slapd, a user with pwdReset under a
// policy of the test's own (minimum length 10).
func openLDAPMustChange(t *testing.T) e2eUser {
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_ADMIN_DN",
		"LDAP_ADMIN_PW", "LDAP_USERS_DN")
	conn, err := goldap.DialURL(env["LDAP_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	id := e2eRand(t)
	relax := goldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "") // lets the rootdn set pwdReset
	policy := "cn=warden-web-pw-" + id + ",ou=policies," + env["LDAP_BASE_DN"]
	e2eAdd(t, conn, policy, map[string][]string{
		"objectClass": {"device", "pwdPolicy"}, "cn": {"warden-web-pw-" + id}, "pwdAttribute": {"userPassword"},
		"pwdMinLength": {"10"}, "pwdCheckQuality": {"1"}, "pwdMustChange": {"TRUE"}, "pwdAllowUserChange": {"TRUE"},
	}, relax)
	u := e2eUser{name: "wweb-" + id, pw: "Old-" + id + "-pw"}
	e2eAdd(t, conn, "uid="+u.name+","+env["LDAP_USERS_DN"], map[string][]string{
		"objectClass": {"inetOrgPerson"}, "uid": {u.name}, "cn": {"Warden Web " + id}, "sn": {"Web"},
		"userPassword": {u.pw}, "pwdPolicySubentry": {policy}, "pwdReset": {"TRUE"},
	}, relax)
	u.cfg = ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"], DialTimeout: 2 * time.Second, Timeout: 5 * time.Second}
	return u
}

// adMustChange: the shared Samba AD DC, a user with pwdLastSet 0 (data 773)
// in an OU of the test's own.
func adMustChange(t *testing.T) e2eUser {
	env := testenv.Require(t, "AD_LDAPS_URL", "AD_BASE_DN", "AD_BIND_UPN", "AD_BIND_PW", "AD_USER_PW", "AD_CA_CERT",
		"AD_ADMIN_UPN", "AD_ADMIN_PW")
	pem, err := os.ReadFile(env["AD_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := goldap.DialURL(env["AD_LDAPS_URL"], goldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Bind(env["AD_ADMIN_UPN"], env["AD_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	id := e2eRand(t)
	ou := "OU=warden-web-pw-" + id + "," + env["AD_BASE_DN"]
	e2eAdd(t, conn, ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}})
	u := e2eUser{name: "wweb" + id, pw: env["AD_USER_PW"]}
	q := utf16.Encode([]rune(`"` + u.pw + `"`))
	pw := make([]byte, 2*len(q))
	for i, c := range q {
		pw[2*i], pw[2*i+1] = byte(c), byte(c>>8)
	}
	dn := "CN=" + u.name + "," + ou
	e2eAdd(t, conn, dn, map[string][]string{
		"objectClass": {"top", "person", "organizationalPerson", "user"}, "sAMAccountName": {u.name},
		"unicodePwd": {string(pw)}, "userAccountControl": {"512"},
	})
	mod := goldap.NewModifyRequest(dn, nil)
	mod.Replace("pwdLastSet", []string{"0"})
	if err := conn.Modify(mod); err != nil {
		t.Fatal(err)
	}
	u.cfg = ldap.Config{Type: ldap.TypeActiveDirectory, URLs: []string{env["AD_LDAPS_URL"]}, CAFile: env["AD_CA_CERT"],
		BaseDN: env["AD_BASE_DN"], BindDN: env["AD_BIND_UPN"], BindPassword: env["AD_BIND_PW"],
		DialTimeout: 2 * time.Second, Timeout: 10 * time.Second}
	return u
}

// TestPasswordChangeRealDirectory: the whole flow through the handler,
// with the real directory and the real limiter (Redis): the sign-in offers
// the form, a too short password is refused with the directory's reason
// (OpenLDAP) or its generic text (AD), a wrong current password counts as
// a failure, the change signs the user in, and the new password works.
func TestPasswordChangeRealDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		user  func(*testing.T) e2eUser
		short string // the text of a too short password's refusal
	}{
		{"openldap", openLDAPMustChange, "rules: it is too short."},
		{"activedirectory", adMustChange, "rules: it may be too short, too simple, or one you used before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.user(t)
			u.cfg.ApplyPreset()
			u.cfg.SetDefaults()
			dir, err := ldap.New(u.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = dir.Close() })
			var lim *store.Limiter
			e := newEnv(t, func(_ *Config, d *Deps) {
				l, err := store.NewLimiter(storetest.Open(t, "web-pwchange-"+tc.name),
					store.LimitConfig{MaxFailuresPerUser: 5, MaxFailuresPerIP: 100, Window: time.Hour}, d.Clock.Now)
				if err != nil {
					t.Fatal(err)
				}
				lim = l
				d.Limiter = l
				d.Directory = dir
			})
			b := e.browser(t)
			h := changeFormWith(t, b, u.name, u.pw, "/after")

			rec := postChange(b, h, u.pw, "Sh0rt!", "Sh0rt!")
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.short) {
				t.Fatalf("too short: %d\n%s", rec.Code, rec.Body)
			}
			rec = postChange(b, h, "wrong-"+u.pw, "Long-enough-N3w-pw", "Long-enough-N3w-pw")
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), textWrongCurrent) {
				t.Fatalf("wrong current password: %d\n%s", rec.Code, rec.Body)
			}
			newPW := "N3w-" + e2eRand(t) + "-pw!"
			rec = postChange(b, h, u.pw, newPW, newPW)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/after" {
				t.Fatalf("change: %d %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			sess, err := e.sessions.Get(t.Context(), b.cookies["warden_session"].Value)
			if err != nil || !strings.EqualFold(sess.User.Username, u.name) {
				t.Fatalf("session %+v %v", sess, err)
			}
			if rec := e.browser(t).login(u.name, newPW, "/"); rec.Code != http.StatusSeeOther {
				t.Errorf("new password: %d\n%s", rec.Code, rec.Body)
			}
			// The success reset the account's failure counter.
			if d, err := lim.Check(t.Context(), strings.ToLower(u.name), "203.0.113.9"); err != nil || !d.Allowed {
				t.Errorf("limiter after the change: %+v %v", d, err)
			}
		})
	}
}
