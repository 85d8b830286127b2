package ldap_test

import (
	"errors"
	"os"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/testenv"
)

// These tests change passwords of users of their own (created and removed
// by the test, in the shared test servers); seed users are never touched.

// wantPolicy checks that err is a password policy refusal with reason.
func wantPolicy(t *testing.T, err error, reason identity.PasswordPolicyReason) {
	t.Helper()
	var pe *identity.PasswordPolicyError
	if !errors.Is(err, identity.ErrPasswordPolicy) || !errors.As(err, &pe) {
		t.Fatalf("got %v, want a password policy error", err)
	}
	if pe.Reason != reason {
		t.Errorf("reason %s, want %s (%v)", pe.Reason, reason, err)
	}
	if identity.IsRejection(err) || errors.Is(err, identity.ErrDirectoryUnavailable) {
		t.Errorf("a policy refusal must be neither a rejection nor an outage: %v", err)
	}
}

// TestActiveDirectoryChangePassword: a user who must change the password
// (pwdLastSet 0, bind answers data 773) changes it through the service
// account's unicodePwd delete/add; then the new password signs in and the
// old one does not.
func TestActiveDirectoryChangePassword(t *testing.T) {
	cfg, env := adConfig(t)
	conn, _ := adAdmin(t)
	id := uniq(t)
	ou := "OU=warden-pw-" + id + "," + env["AD_BASE_DN"]
	adAdd(t, conn, ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}})
	sam := "wpw" + id
	dn := "CN=" + sam + "," + ou
	oldPW := env["AD_USER_PW"]
	adAddUser(t, conn, dn, sam, oldPW)
	adModify(t, conn, dn, func(r *goldap.ModifyRequest) { r.Replace("pwdLastSet", []string{"0"}) })

	d := newDir(t, cfg, nil)
	ctx := t.Context()
	if _, err := d.Authenticate(ctx, sam, oldPW); !errors.Is(err, identity.ErrMustChangePassword) {
		t.Fatalf("before: Authenticate = %v, want must change", err)
	}
	for _, reason := range []error{identity.ErrMustChangePassword, identity.ErrPasswordExpired} {
		if !d.CanChangePassword(reason) {
			t.Errorf("CanChangePassword(%v) = false over LDAPS", reason)
		}
	}
	if d.CanChangePassword(identity.ErrAccountDisabled) {
		t.Error("CanChangePassword(disabled) = true")
	}

	// Refusals change nothing.
	if err := d.ChangePassword(ctx, sam, "wrong-"+oldPW, "N3w-"+id+"-Passw0rd!"); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("wrong old password: %v, want invalid credentials", err)
	}
	// A wrong old password with a too short new one: still a wrong password
	// (AD checks the old one first, so the answer tells nothing of the user).
	if err := d.ChangePassword(ctx, sam, "wrong-"+oldPW, "a1"); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("wrong old and short new password: %v, want invalid credentials", err)
	}
	if err := d.ChangePassword(ctx, "nosuch"+id, oldPW, "N3w-"+id+"-Passw0rd!"); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v, want invalid credentials", err)
	}
	wantPolicy(t, d.ChangePassword(ctx, sam, oldPW, "a1"), identity.PolicyUnspecified)
	wantPolicy(t, d.ChangePassword(ctx, sam, oldPW, oldPW), identity.PolicyUnspecified) // history
	if _, err := d.Authenticate(ctx, sam, oldPW); !errors.Is(err, identity.ErrMustChangePassword) {
		t.Fatalf("after refusals: Authenticate = %v, want must change still", err)
	}

	newPW := "N3w-" + id + "-Passw0rd!"
	// EXAMPLE\user works like the bare name.
	domain := testenv.Require(t, "AD_DOMAIN")["AD_DOMAIN"]
	if err := d.ChangePassword(ctx, domain+`\`+sam, oldPW, newPW); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	u, err := d.Authenticate(ctx, sam, newPW)
	if err != nil || u.DN != dn {
		t.Fatalf("new password: %+v %v", u, err)
	}
	_, err = d.Authenticate(ctx, sam, oldPW)
	switch {
	case os.Getenv("AD_OLD_PASSWORD_PERIOD") == "0":
		if !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Errorf("old password after the change: %v, want invalid credentials", err)
		}
	default:
		// Samba (like Windows for NTLM) accepts the old password for
		// "old password allowed period" minutes, 60 by default.
		t.Logf("old password after the change: %v (test DC without old password allowed period = 0)", err)
	}
	if _, err := d.Lookup(ctx, sam); err != nil {
		t.Errorf("Lookup after the change: %v", err)
	}
}

// TestActiveDirectoryChangePasswordNeedsTLS: without TLS the change is
// refused before any request.
func TestActiveDirectoryChangePasswordNeedsTLS(t *testing.T) {
	cfg, env := adConfig(t)
	cfg.URLs = []string{env["AD_URL"]} // plain ldap://, no start_tls
	d := newDir(t, cfg, nil)
	if d.CanChangePassword(identity.ErrMustChangePassword) {
		t.Error("CanChangePassword without TLS = true")
	}
	err := d.ChangePassword(t.Context(), "mustchange", env["AD_USER_PW"], "N3w-Passw0rd!-x")
	if !errors.Is(err, identity.ErrPasswordChangeUnsupported) {
		t.Fatalf("got %v, want ErrPasswordChangeUnsupported", err)
	}
}

// olAdmin returns a connection to the shared slapd bound as its rootdn.
func olAdmin(t *testing.T) (*goldap.Conn, map[string]string) {
	t.Helper()
	env := testenv.Require(t, "LDAP_URL", "LDAP_ADMIN_DN", "LDAP_ADMIN_PW", "LDAP_BASE_DN", "LDAP_USERS_DN")
	conn, err := goldap.DialURL(env["LDAP_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	return conn, env
}

// olAdd adds an entry with the relax control (so that the rootdn may set
// ppolicy's operational attributes, as deploy/testenv/openldap.sh does)
// and deletes it when the test ends.
func olAdd(t *testing.T, conn *goldap.Conn, dn string, attrs map[string][]string) {
	t.Helper()
	relax := goldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")
	req := goldap.NewAddRequest(dn, []goldap.Control{relax})
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

// TestOpenLDAPChangePassword: a user with pwdReset (bind answers
// changeAfterReset, every other operation is refused) changes the password
// with the Password Modify operation; ppolicy's refusals come back with
// their reason.
func TestOpenLDAPChangePassword(t *testing.T) {
	cfg, _ := openLDAPConfig(t)
	conn, env := olAdmin(t)
	id := uniq(t)
	base := env["LDAP_BASE_DN"]
	policy := "cn=warden-pw-" + id + ",ou=policies," + base
	olAdd(t, conn, policy, map[string][]string{
		"objectClass":        {"device", "pwdPolicy"},
		"cn":                 {"warden-pw-" + id},
		"pwdAttribute":       {"userPassword"},
		"pwdMinLength":       {"10"},
		"pwdCheckQuality":    {"1"},
		"pwdInHistory":       {"3"},
		"pwdMustChange":      {"TRUE"},
		"pwdAllowUserChange": {"TRUE"},
		"pwdSafeModify":      {"TRUE"},
	})
	name := "wpw-" + id
	dn := "uid=" + name + "," + env["LDAP_USERS_DN"]
	oldPW := "Old-" + id + "-pass"
	olAdd(t, conn, dn, map[string][]string{
		"objectClass":       {"inetOrgPerson"},
		"uid":               {name},
		"cn":                {"Warden Test " + name},
		"sn":                {"Test"},
		"userPassword":      {oldPW},
		"pwdPolicySubentry": {policy},
		"pwdReset":          {"TRUE"},
	})

	d := newDir(t, cfg, nil)
	ctx := t.Context()
	if _, err := d.Authenticate(ctx, name, oldPW); !errors.Is(err, identity.ErrMustChangePassword) {
		t.Fatalf("before: Authenticate = %v, want must change", err)
	}
	if !d.CanChangePassword(identity.ErrMustChangePassword) {
		t.Error("CanChangePassword(must change) = false")
	}
	// An expired password cannot be bound with, hence not changed by its
	// owner (grace logins aside, which sign in without a change).
	if d.CanChangePassword(identity.ErrPasswordExpired) {
		t.Error("CanChangePassword(expired) = true on OpenLDAP")
	}

	newPW := "New-" + id + "-pass"
	if err := d.ChangePassword(ctx, name, "wrong-"+oldPW, newPW); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("wrong old password: %v, want invalid credentials", err)
	}
	if err := d.ChangePassword(ctx, "nosuch-"+id, oldPW, newPW); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v, want invalid credentials", err)
	}
	wantPolicy(t, d.ChangePassword(ctx, name, oldPW, "short"), identity.PolicyTooShort)
	wantPolicy(t, d.ChangePassword(ctx, name, oldPW, oldPW), identity.PolicyInHistory)

	if err := d.ChangePassword(ctx, name, oldPW, newPW); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	u, err := d.Authenticate(ctx, name, newPW)
	if err != nil || u.DN != dn {
		t.Fatalf("new password: %+v %v", u, err)
	}
	if _, err := d.Authenticate(ctx, name, oldPW); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Errorf("old password after the change: %v, want invalid credentials", err)
	}
	if _, err := d.Lookup(ctx, name); err != nil {
		t.Errorf("Lookup after the change (pwdReset gone): %v", err)
	}
	// Back to the old one: in the history.
	wantPolicy(t, d.ChangePassword(ctx, name, newPW, oldPW), identity.PolicyInHistory)
}

// TestOpenLDAPChangePasswordExpired: the seed's pwexpired user (no grace
// logins) cannot change the password itself.
func TestOpenLDAPChangePasswordExpired(t *testing.T) {
	cfg, env := openLDAPConfig(t)
	d := newDir(t, cfg, nil)
	// The old password is right, but the bind fails with passwordExpired,
	// so the directory is not asked to change anything.
	err := d.ChangePassword(t.Context(), "pwexpired", env["LDAP_USER_PW"], "Whatever-"+uniq(t))
	if !errors.Is(err, identity.ErrPasswordChangeUnsupported) {
		t.Fatalf("got %v, want ErrPasswordChangeUnsupported", err)
	}
	// A wrong one is a wrong one.
	err = d.ChangePassword(t.Context(), "pwexpired", "wrong", "Whatever-"+uniq(t))
	if !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("got %v, want invalid credentials", err)
	}
}

// TestChangePasswordInputs: unusable input never reaches a server.
func TestChangePasswordInputs(t *testing.T) {
	cfg := ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{"ldap://127.0.0.1:1"}, BaseDN: "dc=example,dc=org",
		BindDN: "cn=svc,dc=example,dc=org", BindPassword: "x"}
	cfg.ApplyPreset()
	cfg.SetDefaults()
	d := newDir(t, cfg, nil)
	ctx := t.Context()
	for _, tc := range []struct {
		name, user, old, new string
		want                 error
	}{
		{"empty user", "", "old", "new-password", identity.ErrInvalidCredentials},
		{"empty old password", "bob", "", "new-password", identity.ErrInvalidCredentials},
		{"NUL in user", "bob\x00", "old", "new-password", identity.ErrInvalidCredentials},
		{"empty new password", "bob", "old", "", identity.ErrPasswordPolicy},
		{"new password not UTF-8", "bob", "old", "new\xff", identity.ErrPasswordPolicy},
		{"NUL in new password", "bob", "old", "new\x00pw", identity.ErrPasswordPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.ChangePassword(ctx, tc.user, tc.old, tc.new); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// The server is down: an outage, never a rejection.
	err := d.ChangePassword(ctx, "bob", "old", "new-password")
	if !errors.Is(err, identity.ErrDirectoryUnavailable) || identity.IsRejection(err) {
		t.Errorf("server down: %v", err)
	}
}
