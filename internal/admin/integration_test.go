package admin

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
	"github.com/wardenidp/warden/internal/web"
)

// stack is the real thing: web.Server with the admin UI mounted, on a real
// redis-server and a real OpenLDAP.
type stack struct {
	base     string
	userPW   string
	rules    *store.Rules
	auditLog *store.AuditStream
}

func realStack(t *testing.T) *stack {
	t.Helper()
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW", "REDIS_ADDR")
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rc := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	rc.SetDefaults()
	rc.KeyPrefix = fmt.Sprintf("warden-admintest-%s-%d:", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	st, err := store.Open(t.Context(), rc, logger)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	dc := ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: env["LDAP_BASE_DN"],
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"]}
	dc.ApplyPreset()
	dc.SetDefaults()
	dir, err := ldap.New(dc, ldap.WithLogger(logger))
	if err != nil {
		t.Fatalf("ldap: %v", err)
	}
	t.Cleanup(func() { _ = dir.Close() })
	var sc store.SessionConfig
	sc.SetDefaults()
	sessions, err := store.NewSessions(st, sc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lc store.LimitConfig
	lc.SetDefaults()
	limiter, err := store.NewLimiter(st, lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{userPW: env["LDAP_USER_PW"], rules: store.NewRules(st, nil), auditLog: store.NewAuditStream(st, 10000)}
	auditTo := audit.Multi(s.auditLog, audit.NewSlog(logger, nil))
	adm, err := New(Config{Groups: []string{"admins"}}, Deps{Directory: dir, Rules: s.rules, Sessions: sessions,
		Audit: auditTo, AuditLog: s.auditLog, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	csrfKey, err := st.SharedSecret(t.Context(), "csrf", 32)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	s.base = "http://" + hs.Listener.Addr().String()
	ws, err := web.New(web.Config{PublicURL: s.base}, web.Deps{Directory: dir, Sessions: sessions, Limiter: limiter,
		CSRFKey: csrfKey, Audit: auditTo, Logger: logger, Mounts: []web.Mount{adm}})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = ws.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	return s
}

// TestRealStack: alice edits through the pages; bob is looked up in the
// real directory; the audit lands in the real stream.
func TestRealStack(t *testing.T) {
	s := realStack(t)
	alice := newClient(t, s.base)
	alice.login("alice", s.userPW)
	alice.get("/admin/accounts/new")
	res := alice.post("/admin/accounts", url.Values{"version": {"0"}, "id": {"111122223333"}, "name": {"prod"},
		"partition": {"aws"}, "saml_provider": {"warden"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("create account: %d %s", res.code, res.body)
	}
	alice.get("/admin/rules/patterns/new")
	res = alice.post("/admin/rules/patterns", url.Values{"version": {"1"}, "id": {"teams"},
		"pattern": {`^(?P<team>developers|admins)$`}, "role_arn": {"arn:aws:iam::111122223333:role/${team}"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("create pattern: %d %s", res.code, res.body)
	}
	alice.get("/admin/rules/grants/new")
	res = alice.post("/admin/rules/grants", url.Values{"version": {"2"}, "id": {"staff-readonly"},
		"group": {"cn=staff,ou=groups,dc=example,dc=org"}, "roles": {"arn:aws:iam::111122223333:role/ReadOnly 3600"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("create grant: %d %s", res.code, res.body)
	}
	body := alice.get("/admin/whogets?username=bob").body
	for _, want := range []string{"Bob Brown", "company", "nested", "role/developers", "teams", "role/ReadOnly", "staff-readonly", "3600 s"} {
		if !strings.Contains(body, want) {
			t.Errorf("who gets what for bob lacks %q", want)
		}
	}
	if res := alice.get("/admin/whogets?username=nobody-here"); !strings.Contains(res.body, "There is no user") {
		t.Errorf("unknown user: %d", res.code)
	}
	// The real audit stream, through the page.
	au := alice.get("/admin/audit?actor=alice&action=rules.pattern.create").body
	if !strings.Contains(au, "<code>teams</code>") || !strings.Contains(au, "role_arn") {
		t.Errorf("audit page:\n%s", au)
	}
	// History with diffs from the real store.
	v := alice.get("/admin/history/3").body
	if !strings.Contains(v, "staff-readonly") || !strings.Contains(v, `class="add"`) {
		t.Errorf("version page:\n%s", v)
	}
	bob := newClient(t, s.base)
	bob.login("bob", s.userPW)
	for _, p := range []string{"/admin", "/admin/rules", "/admin/api/rules"} {
		if res := bob.get(p); res.code != http.StatusForbidden {
			t.Errorf("bob %s: %d", p, res.code)
		}
	}
}

// TestConcurrentEdits: admins save against the same version at once; one
// wins, the others get 409; after reloading, every change gets in and the
// history shows each of them.
func TestConcurrentEdits(t *testing.T) {
	s := realStack(t)
	const n = 6
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = newClient(t, s.base)
		clients[i].login("alice", s.userPW)
		clients[i].get("/admin")
	}
	create := func(c *client, i int, version string) resp {
		return c.api("POST", "/admin/api/accounts", map[string]any{"id": fmt.Sprintf("%012d", 100000000000+i),
			"name": fmt.Sprintf("acct-%d", i), "saml_provider": "warden"}, "If-Match", version)
	}
	pending := map[int]bool{}
	for i := range n {
		pending[i] = true
	}
	for round := 0; len(pending) > 0; round++ {
		if round > n {
			t.Fatal("no progress")
		}
		cur := clients[0].api("GET", "/admin/api/rules", nil).json(t)["version"].(float64)
		var mu sync.Mutex
		var wg sync.WaitGroup
		wins, conflicts := 0, 0
		var ids []int
		for i := range pending {
			ids = append(ids, i)
		}
		for _, i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := create(clients[i], i, fmt.Sprint(cur))
				mu.Lock()
				defer mu.Unlock()
				switch res.code {
				case http.StatusCreated:
					wins++
					delete(pending, i)
				case http.StatusConflict:
					conflicts++
				default:
					t.Errorf("client %d: %d %s", i, res.code, res.body)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d winners, %d conflicts", round, wins, conflicts)
		}
	}
	accts := clients[0].api("GET", "/admin/api/accounts", nil).json(t)["accounts"].([]any)
	if len(accts) != n {
		t.Fatalf("%d accounts, want %d: %v", len(accts), n, accts)
	}
	hist, err := s.rules.History(t.Context(), 0, 100)
	if err != nil || len(hist) != n {
		t.Fatalf("history: %d versions, %v", len(hist), err)
	}
	for i := range n {
		found := false
		for _, h := range hist {
			if strings.Contains(h.Diff, fmt.Sprintf("acct-%d", i)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no version adds acct-%d", i)
		}
	}
	// The losers' 409s are in the audit stream too.
	evs, _, err := s.auditLog.Query(t.Context(), store.AuditQuery{Action: "rules.account.create", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]int{}
	for _, e := range evs {
		results[e.Result]++
	}
	if results["success"] != n || results["conflict"] < n-1 {
		t.Errorf("audit results %v", results)
	}
}
