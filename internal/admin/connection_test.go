package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
)

// testerDir is the fake directory with the optional ConnectionTester.
type testerDir struct {
	*fakeDir
	users []string // the users asked for
}

func (d *testerDir) TestConnection(_ context.Context, user string) []ldap.ServerCheck {
	d.users = append(d.users, user)
	ok := ldap.ServerCheck{URL: "ldaps://dc1.example.org", TLS: "ldaps", OK: true}
	if user != "" {
		ok.User = &identity.User{Username: user, DN: "uid=" + user + ",ou=people,dc=example,dc=org", ID: "id-" + user,
			Groups: []identity.Group{{Name: "developers", Direct: true}, {Name: "staff"}}}
	}
	return []ldap.ServerCheck{ok, {URL: "ldaps://dc2.example.org", TLS: "ldaps", Step: ldap.StepTLS,
		Err:  errors.New("tls handshake with ldaps://dc2.example.org: x509: certificate signed by unknown authority"),
		Hint: "the server certificate is not signed by a CA in directory.ca_file"}}
}

func TestTestConnectionPage(t *testing.T) {
	e := newEnv(t, Config{})
	td := &testerDir{fakeDir: e.dir}
	e.admin.dir = td
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	if body := a.get("/admin").body; !strings.Contains(body, `action="/admin/connection"`) || !strings.Contains(body, `id="test-connection"`) {
		t.Fatalf("the overview has no Test connection button:\n%s", body)
	}
	if res := a.get("/admin/connection"); res.code != http.StatusOK || !strings.Contains(res.body, `name="user"`) {
		t.Fatalf("GET /admin/connection: %d\n%s", res.code, res.body)
	}
	res := a.post("/admin/connection", url.Values{"user": {"bob"}})
	if res.code != http.StatusOK {
		t.Fatalf("POST: %d\n%s", res.code, res.body)
	}
	for _, want := range []string{"1 of 2 servers failed", "ldaps://dc1.example.org", "uid=bob,ou=people,dc=example,dc=org",
		"id-bob", "staff (nested)", "Failed at tls", "certificate signed by unknown authority", "directory.ca_file"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("result lacks %q", want)
		}
	}
	if len(td.users) != 1 || td.users[0] != "bob" {
		t.Errorf("tested with users %q", td.users)
	}
	ev := e.audit.find("directory.test_connection")
	if len(ev) != 1 || ev[0].Actor != "alice" || ev[0].Result != "failure" ||
		ev[0].Detail["ldaps://dc2.example.org"] != "failed at tls" || ev[0].Detail["ldaps://dc1.example.org"] != "ok" ||
		ev[0].Detail["user"] != "bob" {
		t.Errorf("audit: %+v", ev)
	}
	if res := a.post("/admin/connection", url.Values{"user": {strings.Repeat("x", 300)}}); res.code != http.StatusUnprocessableEntity {
		t.Errorf("a 300-byte username: %d", res.code)
	}

	// A directory without the capability: the page says so.
	e.admin.dir = e.dir
	if res := a.post("/admin/connection", url.Values{}); res.code != http.StatusNotImplemented || !strings.Contains(res.body, "cannot be tested") {
		t.Errorf("without a tester: %d\n%s", res.code, res.body)
	}
}
