package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestSignInLimitPerADAccount runs wardend against the real Samba AD and
// Redis: failed sign-ins typed as frank, FRANK and frank@<realm> share one
// counter with EXAMPLE\frank, so with login_limits.max_failures_per_user 3
// the fourth attempt is refused (429) before the directory is asked, even
// with the right password. EXAMPLE\bob signs in as bob; OTHER\bob reads
// like a wrong password.
func TestSignInLimitPerADAccount(t *testing.T) {
	env := testenv.Require(t, "AD_LDAPS_URL", "AD_BASE_DN", "AD_BIND_UPN", "AD_BIND_PW", "AD_USER_PW", "AD_CA_CERT",
		"AD_DOMAIN", "AD_REALM", "REDIS_ADDR")
	o := openLDAPOptions(t)
	o.Directory = ldap.Config{Type: ldap.TypeActiveDirectory, URLs: []string{env["AD_LDAPS_URL"]}, BaseDN: env["AD_BASE_DN"],
		BindDN: env["AD_BIND_UPN"], BindPassword: env["AD_BIND_PW"], CAFile: env["AD_CA_CERT"]}
	o.Directory.Attributes.Extra = []string{"department"} // the example rules tag it
	o.Directory.ApplyPreset()
	o.Directory.SetDefaults()
	o.LoginLimits.MaxFailuresPerUser = 3
	// The counters are fixed windows aligned on the clock: a run that
	// straddles the end of one would see its count start again. An hour's
	// window, and a start that is not in its last 30 seconds, keep the
	// whole test inside one window however slow the machine is.
	o.LoginLimits.Window = time.Hour
	if left := time.Hour - time.Duration(time.Now().UnixNano()%int64(time.Hour)); left < 30*time.Second {
		t.Logf("waiting %s for the next login-limit window", left.Round(time.Second))
		time.Sleep(left + time.Second)
	}
	// Counters outlive the test (their window): a prefix of this run's own.
	o.Redis.KeyPrefix = fmt.Sprintf("warden-apptest-limit-ad-%d:", time.Now().UnixNano())
	base := startApp(t, o)
	pw, domain, realm := env["AD_USER_PW"], env["AD_DOMAIN"], env["AD_REALM"]

	code, body := newBrowser(t, base).signIn(domain+`\bob`, pw)
	if code != http.StatusOK || !strings.Contains(body, "Bob Brown") {
		t.Fatalf(`sign-in as %s\bob: %d`, domain, code)
	}
	_, wrong := newBrowser(t, base).signIn("carol", "not-"+pw)
	if !strings.Contains(wrong, "Wrong username or password") {
		t.Fatalf("wrong password page:\n%s", wrong)
	}
	if _, body := newBrowser(t, base).signIn(`OTHER\bob`, pw); !strings.Contains(body, "Wrong username or password") {
		t.Errorf(`OTHER\bob: not the wrong-password page:\n%s`, body)
	}

	b := newBrowser(t, base)
	for _, u := range []string{"frank", "FRANK", "frank@" + strings.ToLower(realm)} {
		if code, body := b.signIn(u, "not-"+pw); code != http.StatusOK || !strings.Contains(body, "Wrong username or password") {
			t.Fatalf("%s with a wrong password: %d", u, code)
		}
	}
	if code, _ := b.signIn(domain+`\frank`, pw); code != http.StatusTooManyRequests {
		t.Fatalf(`%s\frank after 3 failures typed otherwise: %d, want 429`, domain, code)
	}
	if code, _ := b.signIn("frank", pw); code != http.StatusTooManyRequests {
		t.Fatalf("frank after 3 failures: %d, want 429", code)
	}
	// Another account keeps its allowance.
	if code, body := newBrowser(t, base).signIn("bob@"+realm, pw); code != http.StatusOK || !strings.Contains(body, "Bob Brown") {
		t.Fatalf("bob@%s: %d", realm, code)
	}
}
