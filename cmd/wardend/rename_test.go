package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// TestRenamedADUserKeepsAccess: an Active Directory user whose
// sAMAccountName changes (objectGUID stays) keeps the browser session and
// the CLI sign-in: every look-up goes by the stable ID, and the fresh
// look-up brings the new name. Nothing is revoked.
func TestRenamedADUserKeepsAccess(t *testing.T) {
	offbLong(t)
	d := offbActiveDirectory(t)
	w := offbStart(t, d)
	user := d.addUser(t)
	b := w.browser(t)
	b.signIn(t, user, d.pw)
	tok := w.cliLogin(t, b)

	renamed := user + "r"
	d.modify(t, d.dnOf(t, user), nil, func(r *goldap.ModifyRequest) { r.Replace("sAMAccountName", []string{renamed}) })
	time.Sleep(1200 * time.Millisecond) // past the 1 s recheck interval

	page, path := b.land(t, "/")
	if path != "/" || page.code != http.StatusOK || !strings.Contains(page.body, renamed) {
		t.Fatalf("home page after the rename: %d at %s, new name shown: %v", page.code, path, strings.Contains(page.body, renamed))
	}
	if got := offbHomeRoles(page.body); got != "OffbA,OffbB" {
		t.Errorf("roles after the rename: %q", got)
	}
	if r := b.post(t, "/aws/console", url.Values{"csrf_token": {b.csrf}, "role": {offbRoleA}}); r.code != http.StatusOK ||
		!strings.Contains(r.body, `name="SAMLResponse"`) {
		t.Errorf("console after the rename: %d", r.code)
	}
	for _, typ := range []string{offbSAML2, offbIDToken} {
		if got := w.exchange(t, tok.AccessToken, typ, offbRoleA); got != "200" {
			t.Errorf("token exchange (%s) after the rename: %s", typ, got)
		}
	}
	if got, _ := w.refresh(t, tok.RefreshToken); got != "200" {
		t.Errorf("refresh after the rename: %s", got)
	}
	if ev := w.revokeEvents(t, renamed); len(ev) != 0 {
		t.Errorf("access.revoke events for a renamed user: %+v", ev)
	}
	if ev := w.revokeEvents(t, user); len(ev) != 0 {
		t.Errorf("access.revoke events under the old name: %+v", ev)
	}
}
