package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// samplePath fills the route's parameters.
func samplePath(p string) string {
	r := strings.NewReplacer(":id", "111122223333", ":key", strings.Repeat("ab", 32), ":version", "1")
	return r.Replace(p)
}

func (c *client) send(method, path string) resp {
	c.t.Helper()
	if method == http.MethodGet {
		return c.get(path)
	}
	if strings.HasPrefix(path, "/admin/api/") {
		return c.api(method, path, "{}", "If-Match", "0")
	}
	return c.post(path, url.Values{"version": {"0"}})
}

// TestAuthorization walks the whole route table: nobody but admins gets in.
func TestAuthorization(t *testing.T) {
	e := newEnv(t, Config{})
	anon := newClient(t, e.srv.URL)
	anon.get("/login") // a CSRF token without a session
	bob := newClient(t, e.srv.URL)
	bob.login("bob", pw)
	routes := e.admin.routeTable()
	if len(routes) < 50 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, r := range routes {
		path := samplePath(r.path)
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			res := anon.send(r.method, path)
			if r.api {
				if res.code != http.StatusUnauthorized || res.json(t)["request_id"] == "" {
					t.Errorf("anonymous API: %d %s", res.code, res.body)
				}
			} else if res.code != http.StatusSeeOther || res.hdr.Get("Location") != "/login?next="+path {
				t.Errorf("anonymous: %d %q", res.code, res.hdr.Get("Location"))
			}
			res = bob.send(r.method, path)
			if res.code != http.StatusForbidden {
				t.Errorf("non-admin: %d", res.code)
			}
			if r.api && res.json(t)["error"] == "" {
				t.Errorf("non-admin API answer: %s", res.body)
			}
			if !r.api && !strings.Contains(res.body, "Only members of the admin groups") {
				t.Errorf("non-admin page: %s", res.body)
			}
		})
	}
	if e.rules.version() != 0 {
		t.Error("a refused request changed the rules")
	}
	// Bob sees no Admin link; alice does.
	if strings.Contains(bob.get("/").body, `href="/admin"`) {
		t.Error("non-admin sees the Admin link")
	}
	alice := newClient(t, e.srv.URL)
	alice.login("alice", pw)
	if !strings.Contains(alice.get("/").body, `<a href="/admin">Admin</a>`) {
		t.Error("admin lacks the Admin link")
	}
}

func TestGroupMatcher(t *testing.T) {
	u := identity.User{Groups: []identity.Group{{DN: "CN=Domain Admins,CN=Users,DC=example,DC=test", Name: "Domain Admins"}}}
	for _, tc := range []struct {
		groups []string
		want   bool
	}{
		{[]string{"domain admins"}, true},
		{[]string{"DOMAIN ADMINS"}, true},
		{[]string{"cn=domain admins,cn=users,dc=example,dc=test"}, true},
		{[]string{"cn=Domain Admins, cn=Users, dc=EXAMPLE, dc=test"}, true},
		{[]string{"cn=domain admins,cn=users,dc=other,dc=test"}, false},
		{[]string{"admins"}, false},
		{[]string{"Domain"}, false},
	} {
		if got := newGroupMatcher(tc.groups).isAdmin(u); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.groups, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "groups: at least one"},
		{Config{Groups: []string{" "}}, "groups[0]: empty"},
		{Config{Groups: []string{"cn=x,,=y"}}, "groups[0]:"},
		{Config{Groups: []string{"admins"}, RulesReadOnly: true}, "rules_read_only: requires rules_file"},
		{Config{Groups: []string{"admins", "cn=ops,dc=example,dc=org"}, RulesFile: "r.yaml", RulesReadOnly: true}, ""},
	} {
		tc.cfg.SetDefaults()
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCSRFOnEveryUnsafeRoute: no POST, PUT or DELETE of the table runs
// without the token, even for an admin.
func TestCSRFOnEveryUnsafeRoute(t *testing.T) {
	e := newEnv(t, Config{})
	alice := newClient(t, e.srv.URL)
	alice.login("alice", pw)
	token := alice.csrf
	for _, r := range e.admin.routeTable() {
		if r.method == http.MethodGet {
			continue
		}
		path := samplePath(r.path)
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			alice.csrf = ""
			var res resp
			if r.api {
				res = alice.api(r.method, path, "{}", "If-Match", "0")
			} else {
				res = alice.post(path, url.Values{"version": {"0"}})
			}
			if res.code != http.StatusForbidden {
				t.Errorf("without token: %d", res.code)
			}
			alice.csrf = "x" + token[1:]
			if r.api {
				res = alice.api(r.method, path, "{}", "If-Match", "0")
			} else {
				res = alice.post(path, url.Values{"version": {"0"}})
			}
			if res.code != http.StatusForbidden {
				t.Errorf("wrong token: %d", res.code)
			}
			if r.api {
				alice.csrf = token
				res = alice.api(r.method, path, "{}", "If-Match", "0", "Sec-Fetch-Site", "cross-site")
				if res.code != http.StatusForbidden {
					t.Errorf("cross-site with token: %d", res.code)
				}
			}
		})
	}
	alice.csrf = token
	if e.rules.version() != 0 || len(e.audit.find("session.revoke")) != 0 {
		t.Error("a request without CSRF token changed something")
	}
	if len(e.audit.find("csrf.reject")) == 0 {
		t.Error("CSRF rejections were not audited")
	}
}

var fieldErr = func(field string) *regexp.Regexp {
	return regexp.MustCompile(`id="f-` + field + `-err">[^<]*\S`)
}

func TestAccountFormValidationAndAudit(t *testing.T) {
	e := newEnv(t, Config{})
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	a.get("/admin/accounts/new")
	res := a.post("/admin/accounts", url.Values{"version": {"0"}, "id": {"12345"}, "name": {"prod"}, "partition": {"aws"}, "saml_provider": {"bad name!"}})
	if res.code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid account: %d %s", res.code, res.body)
	}
	for _, f := range []string{"id", "saml-provider"} {
		if !fieldErr(f).MatchString(res.body) {
			t.Errorf("no inline message for %s:\n%s", f, res.body)
		}
	}
	if !strings.Contains(res.body, `value="12345"`) || !strings.Contains(res.body, `value="bad name!"`) {
		t.Error("the input was not kept")
	}
	if e.rules.version() != 0 {
		t.Fatal("an invalid account was saved")
	}
	res = a.post("/admin/accounts", url.Values{"version": {"0"}, "id": {"111122223333"}, "name": {"prod"}, "partition": {"aws"},
		"saml_provider": {"warden"}, "comment": {"first account"}})
	if res.code != http.StatusSeeOther || res.hdr.Get("Location") != "/admin/accounts?done=created&v=1" {
		t.Fatalf("create: %d %q %s", res.code, res.hdr.Get("Location"), res.body)
	}
	if v, _, _ := e.rules.Current(t.Context()); v.Author != "alice" || v.Comment != "first account" || v.ClientIP != "127.0.0.1" || v.RequestID == "" {
		t.Errorf("change meta %+v", v)
	}
	page := a.get("/admin/accounts?done=created&v=1").body
	if !strings.Contains(page, "111122223333") || !strings.Contains(page, "version 1") {
		t.Errorf("list:\n%s", page)
	}
	evs := e.audit.find("rules.account.create")
	last := evs[len(evs)-1]
	if last.Result != "success" || last.Actor != "alice" || last.Object != "111122223333" || !strings.Contains(last.After, `"saml_provider":"warden"`) ||
		last.Before != "" || last.RequestID == "" || last.ClientIP == "" {
		t.Errorf("audit %+v", last)
	}
	if evs[0].Result != "invalid" {
		t.Errorf("the refused attempt was not audited: %+v", evs[0])
	}
	// Duplicate ID: inline on the id field.
	a.get("/admin/accounts/new")
	res = a.post("/admin/accounts", url.Values{"version": {"1"}, "id": {"111122223333"}, "name": {"other"}, "saml_provider": {"warden"}})
	if res.code != http.StatusUnprocessableEntity || !fieldErr("id").MatchString(res.body) {
		t.Errorf("duplicate: %d", res.code)
	}
	// Update and delete.
	a.get("/admin/accounts/111122223333/edit")
	res = a.post("/admin/accounts/111122223333", url.Values{"version": {"1"}, "id": {"111122223333"}, "name": {"production"}, "partition": {"aws"}, "saml_provider": {"warden"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("update: %d %s", res.code, res.body)
	}
	up := e.audit.find("rules.account.update")
	if len(up) != 1 || !strings.Contains(up[0].Before, `"name":"prod"`) || !strings.Contains(up[0].After, `"name":"production"`) {
		t.Errorf("update audit %+v", up)
	}
	res = a.post("/admin/accounts/111122223333/delete", url.Values{"version": {"2"}})
	if res.code != http.StatusSeeOther || e.rules.version() != 3 {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	if res = a.post("/admin/accounts/111122223333/delete", url.Values{"version": {"3"}}); res.code != http.StatusNotFound {
		t.Errorf("delete again: %d", res.code)
	}
}

func seed(t *testing.T, e *env, yaml string) {
	t.Helper()
	if _, err := e.rules.Save(t.Context(), e.rules.version(), []byte(yaml), store.ChangeMeta{Author: "seed"}); err != nil {
		t.Fatal(err)
	}
}

const seedRules = `accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: devs
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/Developer
        max_session_seconds: 3600
patterns:
  - id: adfs
    pattern: ^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$
    role_arn: arn:aws:iam::${account}:role/${role}
`

func TestGrantAndPatternForms(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	a.get("/admin/rules/grants/new")
	// A bad ARN on line 2 and a bad number: inline, by line.
	res := a.post("/admin/rules/grants", url.Values{"version": {"1"}, "id": {"ops"}, "group": {"ops"},
		"roles": {"arn:aws:iam::111122223333:role/Ops\narn:aws:iam::1:role/X\narn:aws:iam::111122223333:role/Y lots"}})
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, "Line 3") || !fieldErr("roles").MatchString(res.body) {
		t.Fatalf("form problem: %d %s", res.code, res.body)
	}
	res = a.post("/admin/rules/grants", url.Values{"version": {"1"}, "id": {"ops"}, "group": {"ops"},
		"roles": {"arn:aws:iam::111122223333:role/Ops\narn:aws:iam::1:role/X"}})
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, "Line 2:") {
		t.Fatalf("validation problem: %d %s", res.code, res.body)
	}
	res = a.post("/admin/rules/grants", url.Values{"version": {"1"}, "id": {"ops"}, "group": {"ops"},
		"roles": {"arn:aws:iam::111122223333:role/Ops 7200"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("create grant: %d %s", res.code, res.body)
	}
	// Pattern with a bad regexp: inline on the pattern field.
	a.get("/admin/rules/patterns/new")
	res = a.post("/admin/rules/patterns", url.Values{"version": {"2"}, "id": {"p2"}, "pattern": {"^(?P<role>[a-z+$"},
		"role_arn": {"arn:aws:iam::111122223333:role/${role}"}})
	if res.code != http.StatusUnprocessableEntity || !fieldErr("pattern").MatchString(res.body) {
		t.Fatalf("bad pattern: %d %s", res.code, res.body)
	}
	res = a.post("/admin/rules/patterns", url.Values{"version": {"2"}, "id": {"p2"}, "pattern": {"^team-(?P<role>[a-z]+)$"},
		"role_arn": {"arn:aws:iam::111122223333:role/${role}"}, "max_session_seconds": {"soon"}})
	if res.code != http.StatusUnprocessableEntity || !fieldErr("max-session-seconds").MatchString(res.body) {
		t.Fatalf("bad seconds: %d %s", res.code, res.body)
	}
	// The rules list, with its filter.
	list := a.get("/admin/rules?q=ops").body
	if !strings.Contains(list, "role/Ops") || strings.Contains(list, "role/Developer") {
		t.Errorf("filter:\n%s", list)
	}
	// Tester: the pattern yields the role, with the rule.
	tr := a.get("/admin/tester?group=AWS-111122223333-Auditor").body
	if !strings.Contains(tr, "arn:aws:iam::111122223333:role/Auditor") || !strings.Contains(tr, "adfs") {
		t.Errorf("tester:\n%s", tr)
	}
	if tr := a.get("/admin/tester?group=nothing").body; !strings.Contains(tr, `id="no-grants"`) {
		t.Errorf("tester, no match:\n%s", tr)
	}
}

func TestConflictKeepsInput(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	a.get("/admin/rules/grants/devs/edit")
	// Someone else saves meanwhile.
	seed(t, e, strings.Replace(seedRules, "3600", "7200", 1))
	res := a.post("/admin/rules/grants/devs", url.Values{"version": {"1"}, "id": {"devs"}, "group": {"developers"},
		"roles": {"arn:aws:iam::111122223333:role/Developer 1800"}, "description": {"my careful edit"}})
	if res.code != http.StatusConflict || !strings.Contains(res.body, "Someone else changed the rules since you opened this page; your change was not saved") ||
		!strings.Contains(res.body, "my careful edit") || !strings.Contains(res.body, "Reload") {
		t.Fatalf("conflict: %d %s", res.code, res.body)
	}
	if e.rules.version() != 2 {
		t.Error("the stale edit was saved")
	}
	if evs := e.audit.find("rules.grant.update"); len(evs) != 1 || evs[0].Result != "conflict" {
		t.Errorf("audit %+v", evs)
	}
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, Config{RulesFile: "/etc/warden/rules.yaml", RulesReadOnly: true})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	n := 0
	for _, r := range e.admin.routeTable() {
		if !r.rulesChange {
			continue
		}
		n++
		a.get("/admin")
		res := a.send(r.method, samplePath(r.path))
		if res.code != http.StatusForbidden || !strings.Contains(res.body, "rules are managed in /etc/warden/rules.yaml") {
			t.Errorf("%s %s: %d %s", r.method, r.path, res.code, res.body)
		}
	}
	if n < 15 {
		t.Errorf("only %d rules-changing routes", n)
	}
	for _, p := range []string{"/admin/rules", "/admin/accounts", "/admin/rules/grants/devs/edit"} {
		body := a.get(p).body
		if strings.Contains(body, `method="post"`) || strings.Contains(body, "New grant rule") || !strings.Contains(body, "Read-only") {
			t.Errorf("%s shows forms in read-only mode:\n%s", p, body)
		}
	}
	if res := a.get("/admin/rules/grants/new"); res.code != http.StatusForbidden {
		t.Errorf("new form: %d", res.code)
	}
	if e.rules.version() != 1 {
		t.Error("read-only rules changed")
	}
	// Sessions can still be revoked.
	a.get("/admin/sessions")
	if res := a.post("/admin/users/id-bob/revoke", url.Values{}); res.code != http.StatusSeeOther {
		t.Errorf("revoke in read-only mode: %d", res.code)
	}
}

func TestWhoGetsWhat(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	body := a.get("/admin/whogets?username=bob").body
	for _, want := range []string{"Bob Brown", "developers", "nested", "arn:aws:iam::111122223333:role/Developer", "devs",
		"arn:aws:iam::111122223333:role/ReadOnly", "adfs", "3600 s"} {
		if !strings.Contains(body, want) {
			t.Errorf("who gets what lacks %q", want)
		}
	}
	if res := a.get("/admin/whogets?username=nobody"); res.code != 200 || !strings.Contains(res.body, `There is no user &#34;nobody&#34; in the directory.`) {
		t.Errorf("unknown user: %d %s", res.code, res.body)
	}
	res := a.post("/admin/whogets", url.Values{"groups": {"developers\ncn=AWS-111122223333-Admin,ou=groups,dc=example,dc=org\n"}})
	if res.code != 200 || !strings.Contains(res.body, "role/Admin") || !strings.Contains(res.body, "role/Developer") {
		t.Errorf("group list: %d %s", res.code, res.body)
	}
	if res := a.post("/admin/whogets", url.Values{"groups": {"cn=,,bad"}}); res.code != 422 || !fieldErr("groups").MatchString(res.body) {
		t.Errorf("bad group list: %d", res.code)
	}
	// A locked account is a result (no roles), not an outage.
	e.dir.mu.Lock()
	e.dir.err = fmt.Errorf("ldap: lookup: %w", identity.ErrAccountLocked)
	e.dir.mu.Unlock()
	if res := a.get("/admin/whogets?username=bob"); res.code != 200 || !strings.Contains(res.body, "is locked") || strings.Contains(res.body, "role/Developer") {
		t.Errorf("locked user: %d %s", res.code, res.body)
	}
	e.dir.mu.Lock()
	e.dir.err = fmt.Errorf("ldap: dial: connection refused 10.0.0.9: %w", identity.ErrDirectoryUnavailable)
	e.dir.mu.Unlock()
	res = a.get("/admin/whogets?username=bob")
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.body, res.hdr.Get("X-Request-ID")) ||
		strings.Contains(res.body, "10.0.0.9") || !strings.Contains(res.body, "directory does not answer") {
		t.Errorf("directory down: %d %s", res.code, res.body)
	}
	if !strings.Contains(e.logs.String(), "10.0.0.9") {
		t.Error("the detail was not logged")
	}
	// The rule store down: 503 with a request ID.
	e.rules.mu.Lock()
	e.rules.err = fmt.Errorf("redis: %w", store.ErrUnavailable)
	e.rules.mu.Unlock()
	if res := a.get("/admin/rules"); res.code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d", res.code)
	}
}

func TestSessionsPage(t *testing.T) {
	e := newEnv(t, Config{})
	bob := newClient(t, e.srv.URL)
	bob.login("bob", pw)
	bob2 := newClient(t, e.srv.URL)
	bob2.login("bob", pw)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	page := a.get("/admin/sessions?user=BOB").body
	if strings.Count(page, `action="/admin/sessions/`) != 2 || strings.Contains(page, "alice</a>") {
		t.Errorf("bob's sessions:\n%s", page)
	}
	// Never a cookie value on the page.
	for _, c := range []*client{bob, bob2, a} {
		u, _ := url.Parse(e.srv.URL)
		for _, ck := range c.hc.Jar.Cookies(u) {
			if ck.Name == "warden_session" && strings.Contains(page, ck.Value) {
				t.Fatal("a session token is on the page")
			}
		}
	}
	key := regexp.MustCompile(`action="/admin/sessions/([0-9a-f]{64})/revoke"`).FindStringSubmatch(page)[1]
	if res := a.post("/admin/sessions/"+key+"/revoke", url.Values{}); res.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.code)
	}
	if e.sessions.count("bob") != 1 {
		t.Error("revoke did not end the session")
	}
	if evs := e.audit.find("session.revoke"); len(evs) != 1 || evs[0].Object != key || evs[0].Actor != "alice" {
		t.Errorf("audit %+v", evs)
	}
	if res := a.post("/admin/sessions/"+key+"/revoke", url.Values{}); res.code != http.StatusNotFound {
		t.Errorf("revoke again: %d", res.code)
	}
	if res := a.post("/admin/users/id-bob/revoke", url.Values{"username": {"bob"}}); res.code != http.StatusSeeOther || e.sessions.count("bob") != 0 {
		t.Errorf("revoke all: %d", res.code)
	}
	if res := bob2.get("/admin"); res.code != http.StatusSeeOther {
		t.Errorf("revoked browser: %d", res.code)
	}
	// The audit page shows the revocations, filtered.
	au := a.get("/admin/audit?action=session.revoke_user").body
	if !strings.Contains(au, "id-bob") || strings.Contains(au, "<code>session.revoke</code>") {
		t.Errorf("audit page:\n%s", au)
	}
	if res := a.get("/admin/audit?since=yesterday"); res.code != 422 || !fieldErr("since").MatchString(res.body) {
		t.Errorf("bad since: %d", res.code)
	}
}

func TestHistoryImportExport(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	exp := a.get("/admin/export")
	if exp.code != 200 || !strings.Contains(exp.hdr.Get("Content-Disposition"), "warden-rules-v1.yaml") || !strings.Contains(exp.body, "111122223333") {
		t.Fatalf("export: %d %v", exp.code, exp.hdr)
	}
	a.get("/admin/import")
	res := a.post("/admin/import", url.Values{"version": {"1"}, "yaml": {"accounts: []\nbogus: 1\n"}})
	if res.code != 422 || !strings.Contains(res.body, "bogus") {
		t.Fatalf("bad import: %d %s", res.code, res.body)
	}
	changed := strings.Replace(exp.body, "name: prod", "name: production", 1)
	res = a.post("/admin/import", url.Values{"version": {"1"}, "yaml": {changed}, "comment": {"rename"}})
	if res.code != http.StatusSeeOther || e.rules.version() != 2 {
		t.Fatalf("import: %d %s", res.code, res.body)
	}
	if evs := e.audit.find("rules.import"); len(evs) != 2 || !strings.Contains(evs[1].Before, "name: prod\n") || !strings.Contains(evs[1].After, "production") {
		t.Errorf("import audit %+v", evs)
	}
	res = a.post("/admin/import", url.Values{"version": {"1"}, "yaml": {changed}})
	if res.code != http.StatusConflict || !strings.Contains(res.body, "not saved") {
		t.Errorf("stale import: %d", res.code)
	}
	h := a.get("/admin/history").body
	if !strings.Contains(h, "v2") || !strings.Contains(h, "rename") {
		t.Errorf("history:\n%s", h)
	}
	v := a.get("/admin/history/1").body
	if !strings.Contains(v, `<span class="add">&#43;new</span>`) || !strings.Contains(v, `<span class="del">-old</span>`) || !strings.Contains(v, `id="restore"`) {
		t.Errorf("version page:\n%s", v)
	}
	if res := a.post("/admin/history/1/restore", url.Values{"version": {"1"}}); res.code != http.StatusConflict {
		t.Errorf("stale restore: %d", res.code)
	}
	if res := a.post("/admin/history/1/restore", url.Values{"version": {"2"}}); res.code != http.StatusSeeOther || e.rules.version() != 3 {
		t.Errorf("restore: %d %s", res.code, res.body)
	}
	if cur, _, _ := e.rules.Current(t.Context()); cur.RestoredFrom != 1 {
		t.Errorf("restored %+v", cur)
	}
	if res := a.get("/admin/history/99"); res.code != 404 {
		t.Errorf("unknown version: %d", res.code)
	}
}

func TestAPI(t *testing.T) {
	e := newEnv(t, Config{})
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	tok := a.get("/admin/api/csrf").json(t)["token"].(string)
	if tok != a.csrf {
		t.Fatalf("api csrf %q vs page %q", tok, a.csrf)
	}
	acct := map[string]any{"id": "111122223333", "name": "prod", "saml_provider": "warden"}
	if res := a.api("POST", "/admin/api/accounts", acct); res.code != http.StatusPreconditionRequired {
		t.Errorf("no version: %d", res.code)
	}
	if res := a.api("POST", "/admin/api/accounts", acct, "If-Match", `"0"`); res.code != http.StatusCreated {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	if res := a.api("POST", "/admin/api/accounts", map[string]any{"id": "1", "nmae": "x"}, "If-Match", "1"); res.code != 400 ||
		!strings.Contains(res.body, `unknown field \"nmae\"`) {
		t.Errorf("unknown field: %d %s", res.code, res.body)
	}
	if res := a.api("POST", "/admin/api/accounts", `{"id":`, "If-Match", "1"); res.code != 400 {
		t.Errorf("truncated JSON: %d", res.code)
	}
	if res := a.api("POST", "/admin/api/accounts", `{} {}`, "If-Match", "1"); res.code != 400 {
		t.Errorf("two values: %d", res.code)
	}
	res := a.api("POST", "/admin/api/grants", map[string]any{"id": "devs", "group": "developers",
		"roles": []map[string]any{{"arn": "arn:aws:iam::111122223333:role/Dev", "max_session_seconds": 5}}}, "If-Match", "1")
	m := res.json(t)
	if res.code != 422 || m["problems"] == nil || m["request_id"] == "" {
		t.Fatalf("invalid grant: %d %s", res.code, res.body)
	}
	if p := m["problems"].([]any)[0].(map[string]any); !strings.HasPrefix(p["path"].(string), "grants[0].roles[0]") {
		t.Errorf("problem path %v", p)
	}
	// GET and PUT the whole set; a stale PUT is 409; an invalid one 422.
	g := a.api("GET", "/admin/api/rules", nil)
	if g.hdr.Get("ETag") != `"1"` {
		t.Errorf("ETag %q", g.hdr.Get("ETag"))
	}
	rs := g.json(t)["rules"]
	if res := a.api("PUT", "/admin/api/rules", map[string]any{"version": 1, "rules": rs, "comment": "same"}); res.code != 200 {
		t.Errorf("put same: %d %s", res.code, res.body)
	}
	bad := map[string]any{"accounts": []any{map[string]any{"id": "x", "name": "y", "saml_provider": "z"}}}
	if res := a.api("PUT", "/admin/api/rules", map[string]any{"version": 1, "rules": bad}); res.code != 422 {
		t.Errorf("put invalid: %d", res.code)
	}
	if res := a.api("PUT", "/admin/api/rules", map[string]any{"rules": rs}, "If-Match", "0"); res.code != 409 {
		t.Errorf("put stale: %d %s", res.code, res.body)
	}
	// A pattern rule, then evaluate.
	res = a.api("POST", "/admin/api/patterns", map[string]any{"id": "adfs", "pattern": `^AWS-(?P<account>\d{12})-(?P<role>\w+)$`,
		"role_arn": "arn:aws:iam::${account}:role/${role}"}, "If-Match", "1")
	if res.code != 201 || res.json(t)["version"].(float64) != 2 {
		t.Fatalf("create pattern: %d %s", res.code, res.body)
	}
	if res := a.api("GET", "/admin/api/patterns/adfs", nil); res.code != 200 || res.hdr.Get("ETag") != `"2"` {
		t.Errorf("get pattern: %d %s", res.code, res.body)
	}
	res = a.api("POST", "/admin/api/evaluate", map[string]any{"groups": []string{"AWS-111122223333-Admin"}})
	if res.code != 200 || !strings.Contains(res.body, `"rule_id":"adfs"`) || !strings.Contains(res.body, `"role_arn":"arn:aws:iam::111122223333:role/Admin"`) {
		t.Errorf("evaluate groups: %d %s", res.code, res.body)
	}
	if res := a.api("POST", "/admin/api/evaluate", map[string]any{"username": "ghost"}); res.code != 404 {
		t.Errorf("evaluate unknown: %d", res.code)
	}
	if res := a.api("POST", "/admin/api/evaluate", map[string]any{"username": "bob", "groups": []string{"x"}}); res.code != 422 {
		t.Errorf("evaluate both: %d", res.code)
	}
	if res := a.api("POST", "/admin/api/evaluate", map[string]any{"username": "bob"}); res.code != 200 || !strings.Contains(res.body, `"developers"`) {
		t.Errorf("evaluate bob: %d %s", res.code, res.body)
	}
	// Sessions: list, revoke one, revoke a user's.
	bob := newClient(t, e.srv.URL)
	bob.login("bob", pw)
	ss := a.api("GET", "/admin/api/sessions?user=bob", nil).json(t)["sessions"].([]any)
	if len(ss) != 1 {
		t.Fatalf("sessions %v", ss)
	}
	key := ss[0].(map[string]any)["key"].(string)
	if res := a.api("DELETE", "/admin/api/sessions/"+key, nil); res.code != 204 {
		t.Errorf("revoke: %d", res.code)
	}
	if res := a.api("DELETE", "/admin/api/sessions/"+key, nil); res.code != 404 {
		t.Errorf("revoke again: %d", res.code)
	}
	if res := a.api("DELETE", "/admin/api/users/id-alice/sessions", nil); res.code != 200 || res.json(t)["revoked"].(float64) != 1 {
		t.Errorf("revoke user: %d %s", res.code, res.body)
	}
	a.login("alice", pw)
	// Audit and history.
	au := a.api("GET", "/admin/api/audit?action=rules.account.create", nil).json(t)["events"].([]any)
	if len(au) != 1 || au[0].(map[string]any)["actor"] != "alice" {
		t.Errorf("audit %v", au)
	}
	if h := a.api("GET", "/admin/api/history", nil).json(t)["versions"].([]any); len(h) != 2 {
		t.Errorf("history %v", h)
	}
	if res := a.api("POST", "/admin/api/history/1/restore", nil, "If-Match", "1"); res.code != 409 {
		t.Errorf("stale restore: %d %s", res.code, res.body)
	}
	if res := a.api("POST", "/admin/api/history/1/restore", nil, "If-Match", "2"); res.code != 200 || e.rules.version() != 3 {
		t.Errorf("restore current: %d %s", res.code, res.body)
	}
	if res := a.api("GET", "/admin/api/history/abc", nil); res.code != 404 {
		t.Errorf("bad version: %d", res.code)
	}
	// Unsupported media type, oversized body.
	if res := a.api("POST", "/admin/api/evaluate", "username=bob", "Content-Type", "application/x-www-form-urlencoded"); res.code != 415 {
		t.Errorf("form body: %d", res.code)
	}
	big := `{"username":"` + strings.Repeat("b", 70<<10) + `"}`
	if res := a.api("POST", "/admin/api/evaluate", big); res.code != 413 {
		t.Errorf("big body: %d", res.code)
	}
}
