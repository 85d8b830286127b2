// Package admin is Warden's admin UI (/admin) and admin JSON API
// (/admin/api/): the account catalogue, the group-to-role rules and the
// workload clients (list, create, edit, delete, import, export, history,
// restore), a pattern tester, "who gets what" for a user, a list of groups
// or a role, live sessions with revoke, and the audit log.
//
// It is a web.Mount: internal/web serves its routes behind the common
// middleware, loads the session and checks CSRF on every unsafe method (a
// form's csrf_token field, or the X-Warden-CSRF header, which the API
// requires; see web/mount.go). This package adds authorization: the signed-in
// user must be in one of Config.Groups (authz.go).
//
// Every rules change is read-modify-write against a version: the form or the
// API request carries the version it was loaded from, and store.Rules.Save
// refuses a stale one (store.ErrConflict), so that two admins editing at
// once never lose an update. Every change is audited (audit.Logger) with the
// admin's name, the object, before/after, client IP and request ID.
package admin

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
	admintemplates "github.com/wardenidp/warden/templates/admin"
)

// Directory looks users up for "who gets what" (directory.Directory is one).
// A user that does not exist is identity.ErrUserNotFound; a failure wraps
// identity.ErrDirectoryUnavailable.
type Directory interface {
	Lookup(ctx context.Context, username string) (identity.User, error)
}

// RuleStore is the versioned rule document (*store.Rules).
type RuleStore interface {
	Current(ctx context.Context) (store.RuleVersion, []byte, error)
	Save(ctx context.Context, expected int64, doc []byte, m store.ChangeMeta) (store.RuleVersion, error)
	Get(ctx context.Context, version int64) (store.RuleVersion, []byte, error)
	History(ctx context.Context, before int64, limit int) ([]store.RuleVersion, error)
	Restore(ctx context.Context, expected, version int64, m store.ChangeMeta) (store.RuleVersion, error)
}

// Sessions is the admin side of the session store (*store.Sessions).
type Sessions interface {
	ListAll(ctx context.Context, cursor uint64, count int64) ([]store.Session, uint64, error)
	ListUser(ctx context.Context, userID string) ([]store.Session, error)
	DeleteByKey(ctx context.Context, hexKey string) error
	RevokeUser(ctx context.Context, userID string) (int, error)
}

// UserRevoker ends all access of a user with one audit event
// (*access.Access).
type UserRevoker interface {
	Revoke(ctx context.Context, u identity.User, cause access.Cause, req access.Request) (access.Result, error)
}

// AuditLog reads the audit stream (*store.AuditStream).
type AuditLog interface {
	Query(ctx context.Context, q store.AuditQuery) ([]audit.Event, string, error)
}

// Deps are the collaborators of the admin UI. All but Logger and Clock are
// required.
type Deps struct {
	Directory Directory
	Rules     RuleStore
	Sessions  Sessions
	// Access ends all access of a user ("revoke all"): sessions, CLI
	// sign-ins, device codes. Nil: only the user's browser sessions end.
	Access   UserRevoker
	Audit    audit.Logger // where admin actions are recorded
	AuditLog AuditLog     // what the audit page reads
	Logger   *slog.Logger // nil: discard
	Clock    func() time.Time
	// FetchedAttributes are the attributes the directory reads for every
	// user (directory.attributes.extra): a rule set whose tags need
	// another one is refused (rolemap.RuleSet.CheckFetched). Nil skips
	// the check (no directory configuration to compare with).
	FetchedAttributes []string
}

// Admin serves the admin pages and API; it implements web.Mount,
// web.Templater and web.Navigator.
type Admin struct {
	cfg      Config
	groups   groupMatcher
	dir      Directory
	rules    RuleStore
	fetched  []string // Deps.FetchedAttributes
	sessions Sessions
	access   UserRevoker
	audit    audit.Logger
	auditLog AuditLog
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	cached   *compiled       // the last compiled version (see current)
	awsSetup awsSetupOptions // SetAWSSetup (awssetup.go)
}

// New validates cfg (after defaults) and deps.
func New(cfg Config, deps Deps) (*Admin, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin: config: %w", err)
	}
	switch {
	case deps.Directory == nil:
		return nil, errors.New("admin: Deps.Directory is required")
	case deps.Rules == nil:
		return nil, errors.New("admin: Deps.Rules is required")
	case deps.Sessions == nil:
		return nil, errors.New("admin: Deps.Sessions is required")
	case deps.Audit == nil:
		return nil, errors.New("admin: Deps.Audit is required")
	case deps.AuditLog == nil:
		return nil, errors.New("admin: Deps.AuditLog is required")
	}
	a := &Admin{cfg: cfg, groups: newGroupMatcher(cfg.Groups), dir: deps.Directory, rules: deps.Rules, fetched: deps.FetchedAttributes,
		sessions: deps.Sessions, access: deps.Access, audit: deps.Audit, auditLog: deps.AuditLog, log: deps.Logger, now: deps.Clock}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Body limits: a whole rule set (import, PUT) may be large (10,000 rules
// are about 2 MB of YAML); everything else is small.
const (
	maxRulesBody = 8 << 20
	maxBody      = 64 << 10
)

// route is one entry of the route table.
type route struct {
	method, path string
	handler      gin.HandlerFunc
	api          bool  // JSON API (errors as JSON, CSRF header only)
	rulesChange  bool  // changes the rules: refused in read-only mode
	maxBody      int64 // 0: maxBody
}

// routeTable is every route of the package, in one place.
func (a *Admin) routeTable() []route {
	return []route{
		// pages
		{method: "GET", path: "/admin", handler: a.pageOverview},
		{method: "GET", path: "/admin/accounts", handler: a.pageAccounts},
		{method: "GET", path: "/admin/accounts/new", handler: a.pageAccountNew},
		{method: "POST", path: "/admin/accounts", handler: a.postAccountCreate, rulesChange: true},
		{method: "GET", path: "/admin/accounts/:id/edit", handler: a.pageAccountEdit},
		{method: "POST", path: "/admin/accounts/:id", handler: a.postAccountUpdate, rulesChange: true},
		{method: "POST", path: "/admin/accounts/:id/delete", handler: a.postAccountDelete, rulesChange: true},
		{method: "GET", path: "/admin/rules", handler: a.pageRules},
		{method: "GET", path: "/admin/rules/grants/new", handler: a.pageGrantNew},
		{method: "POST", path: "/admin/rules/grants", handler: a.postGrantCreate, rulesChange: true},
		{method: "GET", path: "/admin/rules/grants/:id/edit", handler: a.pageGrantEdit},
		{method: "POST", path: "/admin/rules/grants/:id", handler: a.postGrantUpdate, rulesChange: true},
		{method: "POST", path: "/admin/rules/grants/:id/delete", handler: a.postGrantDelete, rulesChange: true},
		{method: "GET", path: "/admin/rules/patterns/new", handler: a.pagePatternNew},
		{method: "POST", path: "/admin/rules/patterns", handler: a.postPatternCreate, rulesChange: true},
		{method: "GET", path: "/admin/rules/patterns/:id/edit", handler: a.pagePatternEdit},
		{method: "POST", path: "/admin/rules/patterns/:id", handler: a.postPatternUpdate, rulesChange: true},
		{method: "POST", path: "/admin/rules/patterns/:id/delete", handler: a.postPatternDelete, rulesChange: true},
		{method: "GET", path: "/admin/workloads", handler: a.pageWorkloads},
		{method: "GET", path: "/admin/workloads/new", handler: a.pageNew(kindWorkload)},
		{method: "POST", path: "/admin/workloads", handler: a.postWorkloadCreate, rulesChange: true},
		{method: "GET", path: "/admin/workloads/:id/edit", handler: a.pageEdit(kindWorkload)},
		{method: "POST", path: "/admin/workloads/:id", handler: a.postWorkloadUpdate, rulesChange: true},
		{method: "POST", path: "/admin/workloads/:id/delete", handler: a.postWorkloadDelete, rulesChange: true},
		{method: "POST", path: "/admin/workloads/:id/disable", handler: a.postWorkloadToggle(true), rulesChange: true},
		{method: "POST", path: "/admin/workloads/:id/enable", handler: a.postWorkloadToggle(false), rulesChange: true},
		{method: "GET", path: "/admin/tester", handler: a.pageTester},
		{method: "GET", path: "/admin/whogets", handler: a.pageWhoGets},
		{method: "POST", path: "/admin/whogets", handler: a.postWhoGets},
		{method: "GET", path: "/admin/sessions", handler: a.pageSessions},
		{method: "POST", path: "/admin/sessions/:key/revoke", handler: a.postSessionRevoke},
		{method: "POST", path: "/admin/users/:id/revoke", handler: a.postUserRevoke},
		{method: "GET", path: "/admin/audit", handler: a.pageAudit},
		{method: "GET", path: "/admin/history", handler: a.pageHistory},
		{method: "GET", path: "/admin/history/:version", handler: a.pageVersion},
		{method: "POST", path: "/admin/history/:version/restore", handler: a.postRestore, rulesChange: true},
		{method: "GET", path: "/admin/export", handler: a.getExport},
		{method: "GET", path: "/admin/aws-setup", handler: a.pageAWSSetup},
		{method: "GET", path: "/admin/connection", handler: a.pageConnection},
		{method: "POST", path: "/admin/connection", handler: a.postConnection},
		{method: "GET", path: "/admin/import", handler: a.pageImport},
		{method: "POST", path: "/admin/import", handler: a.postImport, rulesChange: true, maxBody: maxRulesBody},

		// JSON API
		{method: "GET", path: "/admin/api/csrf", handler: a.apiCSRF, api: true},
		{method: "GET", path: "/admin/api/rules", handler: a.apiGetRules, api: true},
		{method: "PUT", path: "/admin/api/rules", handler: a.apiPutRules, api: true, rulesChange: true, maxBody: maxRulesBody},
		{method: "GET", path: "/admin/api/accounts", handler: a.apiList(kindAccount), api: true},
		{method: "POST", path: "/admin/api/accounts", handler: a.apiCreate(kindAccount), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/accounts/:id", handler: a.apiGet(kindAccount), api: true},
		{method: "PUT", path: "/admin/api/accounts/:id", handler: a.apiUpdate(kindAccount), api: true, rulesChange: true},
		{method: "DELETE", path: "/admin/api/accounts/:id", handler: a.apiDelete(kindAccount), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/grants", handler: a.apiList(kindGrant), api: true},
		{method: "POST", path: "/admin/api/grants", handler: a.apiCreate(kindGrant), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/grants/:id", handler: a.apiGet(kindGrant), api: true},
		{method: "PUT", path: "/admin/api/grants/:id", handler: a.apiUpdate(kindGrant), api: true, rulesChange: true},
		{method: "DELETE", path: "/admin/api/grants/:id", handler: a.apiDelete(kindGrant), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/patterns", handler: a.apiList(kindPattern), api: true},
		{method: "POST", path: "/admin/api/patterns", handler: a.apiCreate(kindPattern), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/patterns/:id", handler: a.apiGet(kindPattern), api: true},
		{method: "PUT", path: "/admin/api/patterns/:id", handler: a.apiUpdate(kindPattern), api: true, rulesChange: true},
		{method: "DELETE", path: "/admin/api/patterns/:id", handler: a.apiDelete(kindPattern), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/workloads", handler: a.apiList(kindWorkload), api: true},
		{method: "POST", path: "/admin/api/workloads", handler: a.apiCreate(kindWorkload), api: true, rulesChange: true},
		{method: "GET", path: "/admin/api/workloads/:id", handler: a.apiGet(kindWorkload), api: true},
		{method: "PUT", path: "/admin/api/workloads/:id", handler: a.apiUpdate(kindWorkload), api: true, rulesChange: true},
		{method: "DELETE", path: "/admin/api/workloads/:id", handler: a.apiDelete(kindWorkload), api: true, rulesChange: true},
		{method: "POST", path: "/admin/api/evaluate", handler: a.apiEvaluate, api: true},
		{method: "POST", path: "/admin/api/test-group", handler: a.apiTestGroup, api: true},
		{method: "GET", path: "/admin/api/sessions", handler: a.apiSessions, api: true},
		{method: "DELETE", path: "/admin/api/sessions/:key", handler: a.apiRevokeSession, api: true},
		{method: "DELETE", path: "/admin/api/users/:id/sessions", handler: a.apiRevokeUser, api: true},
		{method: "GET", path: "/admin/api/audit", handler: a.apiAudit, api: true},
		{method: "GET", path: "/admin/api/history", handler: a.apiHistory, api: true},
		{method: "GET", path: "/admin/api/history/:version", handler: a.apiVersion, api: true},
		{method: "POST", path: "/admin/api/history/:version/restore", handler: a.apiRestore, api: true, rulesChange: true},
	}
}

// Routes implements web.Mount: every route behind authorization, and the
// rules-changing ones behind the read-only check.
func (a *Admin) Routes() []web.Route {
	table := a.routeTable()
	out := make([]web.Route, 0, len(table))
	for _, r := range table {
		h := r.handler
		if r.rulesChange {
			h = a.refuseReadOnly(r.api, h)
		}
		mb := r.maxBody
		if mb == 0 {
			mb = maxBody
		}
		// Every change (any method but GET) is made by the admin as the
		// directory has them now: groups, and whether they may sign in.
		out = append(out, web.Route{Method: r.method, Path: r.path, Handler: a.authorize(r.api, h), API: r.api, MaxBody: mb,
			Fresh: r.method != http.MethodGet})
	}
	return out
}

// Templates implements web.Templater.
func (a *Admin) Templates() (fs.FS, template.FuncMap) {
	return admintemplates.FS, funcs
}

// refuseReadOnly answers 403 to every rules change in read-only mode.
func (a *Admin) refuseReadOnly(api bool, h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !a.cfg.RulesReadOnly {
			h(c)
			return
		}
		msg := a.readOnlyMessage()
		if api {
			a.jsonError(c, http.StatusForbidden, msg, nil)
			return
		}
		web.Fail(c, http.StatusForbidden, msg, nil)
	}
}

func (a *Admin) readOnlyMessage() string {
	return "The rules are read-only here: rules are managed in " + a.cfg.RulesFile + "."
}

// actor is the signed-in admin (authorize guarantees a session).
func actor(c *gin.Context) string {
	sess, _ := web.CurrentSession(c)
	return sess.User.Username
}

func changeMeta(c *gin.Context, comment string) store.ChangeMeta {
	return store.ChangeMeta{Author: actor(c), ClientIP: web.ClientIP(c),
		RequestID: web.RequestID(c.Request.Context()), Comment: comment}
}

// record writes one audit event of an admin action.
func (a *Admin) record(c *gin.Context, action, object, result, before, after string, detail map[string]string) {
	a.audit.Record(c.Request.Context(), auditEvent(a.now(), actor(c), action, object, result,
		web.ClientIP(c), web.RequestID(c.Request.Context()), before, after, detail))
}

// compiled is one stored version of the rules, parsed and compiled.
type compiled struct {
	version store.RuleVersion
	doc     []byte
	rs      rolemap.RuleSet
	engine  *rolemap.Engine
}

// current loads the stored current version and compiles it (cached by
// version number), so that the tester and "who gets what" show exactly
// what the latest save gives, without waiting for the reload loop.
func (a *Admin) current(ctx context.Context) (*compiled, error) {
	v, doc, err := a.rules.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: load rules: %w", err)
	}
	a.mu.Lock()
	cached := a.cached
	a.mu.Unlock()
	if cached != nil && cached.version.Version == v.Version && v.Version != 0 {
		return cached, nil
	}
	rs, err := parseDoc(doc)
	if err != nil {
		return nil, fmt.Errorf("admin: stored rules version %d: %w", v.Version, err)
	}
	eng, err := rolemap.Compile(rs)
	if err != nil {
		return nil, fmt.Errorf("admin: compile rules version %d: %w", v.Version, err)
	}
	cp := &compiled{version: v, doc: doc, rs: rs, engine: eng}
	a.mu.Lock()
	if a.cached == nil || a.cached.version.Version <= v.Version {
		a.cached = cp
	}
	a.mu.Unlock()
	return cp, nil
}

// parseDoc parses a stored document; none saved yet is the empty rule set.
func parseDoc(doc []byte) (rolemap.RuleSet, error) {
	if len(doc) == 0 {
		return rolemap.RuleSet{}, nil
	}
	return rolemap.ParseYAML(doc)
}
