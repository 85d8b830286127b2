package admin

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// page is the data of every admin page (.Data in the templates); a page
// uses the fields it needs.
type page struct {
	Section   string // the admin menu entry to highlight
	ReadOnly  bool
	RulesFile string
	Notice    string
	Error     string
	// Version is the rules version the page was loaded from; forms send it
	// back (hidden field "version").
	Version  int64
	Current  store.RuleVersion
	Problems []string            // problems not tied to a form field
	Fields   map[string][]string // inline problems by form field
	Conflict bool                // the change was refused: stale version

	Kind     string // "account", "grant", "pattern" (forms)
	Editing  bool
	ID       string
	Form     map[string]string
	Comment  string
	Accounts []rolemap.Account
	Grants   []rolemap.GrantRule
	Patterns []rolemap.PatternRule
	Tags     rolemap.TagRules
	// Workloads are the workloads list (workloads.go) and its count.
	Workloads []workloadView
	Filter    string
	Parts     []string // partitions

	// tester and who gets what
	Group     string
	Username  string
	GroupList string
	Lookup    *lookupView
	Role      string    // who gets a role (?role=)
	RoleView  *roleView // its answer
	TestGrant []rolemap.Grant
	TestElig  []rolemap.Grant // eligible roles of the tested group
	Tested    bool

	// sessions, audit, history
	Sessions   []sessionView
	UserFilter string
	NextCursor string
	Audit      []auditView
	Query      auditForm
	History    []historyView
	VersionV   *historyView
	Import     string
}

func (a *Admin) newPage(section string) page {
	return page{Section: section, ReadOnly: a.cfg.RulesReadOnly, RulesFile: a.cfg.RulesFile,
		Fields: map[string][]string{}, Parts: partitions}
}

// storeFailed answers a failure to read or write the stores.
func (a *Admin) storeFailed(c *gin.Context, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		web.Fail(c, http.StatusServiceUnavailable,
			"The admin pages cannot reach the data store (Redis) right now. Please try again in a moment.", err)
		return
	}
	web.Fail(c, http.StatusInternalServerError, "", err)
}

// notices are the fixed texts of ?done= after a redirect.
var notices = map[string]string{
	"created":  "Created.",
	"saved":    "Saved.",
	"deleted":  "Deleted.",
	"restored": "Restored.",
	"imported": "Imported.",
	"revoked":  "Revoked.",
	"disabled": "Disabled: its token requests are refused from now on.",
	"enabled":  "Enabled.",
}

func (a *Admin) render(c *gin.Context, status int, name string, p page) {
	if p.Notice == "" {
		p.Notice = notices[c.Query("done")]
		if v := c.Query("v"); p.Notice != "" && v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p.Notice = strings.TrimSuffix(p.Notice, ".") + fmt.Sprintf(": the rules are now version %d.", n)
			}
		}
	}
	web.Render(c, status, name, p)
}

// pageOverview: counts, the current version, the read-only banner.
func (a *Admin) pageOverview(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := a.newPage("overview")
	p.Current, p.Version = cur.version, cur.version.Version
	p.Accounts, p.Grants, p.Patterns, p.Tags = cur.rs.Accounts, cur.rs.Grants, cur.rs.Patterns, cur.rs.Tags
	p.Workloads = workloadViews(cur.rs.Workloads)
	a.render(c, http.StatusOK, "overview.html", p)
}

func (a *Admin) pageAccounts(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := a.newPage("accounts")
	p.Version, p.Accounts = cur.version.Version, cur.rs.Accounts
	a.render(c, http.StatusOK, "accounts.html", p)
}

func (a *Admin) pageRules(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := a.newPage("rules")
	p.Version = cur.version.Version
	p.Filter = strings.TrimSpace(c.Query("q"))
	f := strings.ToLower(p.Filter)
	for _, g := range cur.rs.Grants {
		if f == "" || strings.Contains(strings.ToLower(g.ID+" "+g.Group+" "+g.Description+" "+roleList(g)), f) {
			p.Grants = append(p.Grants, g)
		}
	}
	for _, pr := range cur.rs.Patterns {
		if f == "" || strings.Contains(strings.ToLower(pr.ID+" "+pr.Pattern+" "+pr.RoleARN+" "+pr.Description+" "+mfaLabel(pr.MFA())+" "+eligibleLabel(pr)), f) {
			p.Patterns = append(p.Patterns, pr)
		}
	}
	a.render(c, http.StatusOK, "rules.html", p)
}

// roleList is the filter text of a grant rule's roles: ARNs, MFA and
// eligible badges.
func roleList(g rolemap.GrantRule) string {
	var b strings.Builder
	for _, r := range g.Roles {
		b.WriteString(r.ARN + " " + mfaLabel(r.MFA()) + " " + eligibleLabel(r) + " ")
	}
	return b.String()
}

var formPage = map[kind]string{kindAccount: "account_form.html", kindGrant: "grant_form.html", kindPattern: "pattern_form.html",
	kindWorkload: "workload_form.html"}
var kindName = map[kind]string{kindAccount: "account", kindGrant: "grant", kindPattern: "pattern", kindWorkload: "workload"}
var listPath = map[kind]string{kindAccount: "/admin/accounts", kindGrant: "/admin/rules", kindPattern: "/admin/rules",
	kindWorkload: "/admin/workloads"}

// formPath is the page of the form of object id of k: its edit page, or
// the new one for id "".
func formPath(k kind, id string) string {
	base := map[kind]string{kindAccount: "/admin/accounts/", kindGrant: "/admin/rules/grants/",
		kindPattern: "/admin/rules/patterns/", kindWorkload: "/admin/workloads/"}[k]
	if id == "" {
		return base + "new"
	}
	return base + url.PathEscape(id) + "/edit"
}

func (a *Admin) formPage(k kind) page {
	section := "rules"
	switch k {
	case kindAccount:
		section = "accounts"
	case kindWorkload:
		section = "workloads"
	}
	p := a.newPage(section)
	p.Kind = kindName[k]
	return p
}

// pageNew shows an empty form of k.
func (a *Admin) pageNew(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.cfg.RulesReadOnly {
			web.Fail(c, http.StatusForbidden, a.readOnlyMessage(), nil)
			return
		}
		cur, err := a.current(c.Request.Context())
		if err != nil {
			a.storeFailed(c, err)
			return
		}
		p := a.formPage(k)
		p.Version = cur.version.Version
		p.Form = objectToForm(object{kind: k})
		if k == kindAccount {
			p.Form["partition"] = "aws"
		}
		a.render(c, http.StatusOK, formPage[k], p)
	}
}

// pageEdit shows the form of an existing object (read-only mode: its
// values, no form).
func (a *Admin) pageEdit(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		cur, err := a.current(c.Request.Context())
		if err != nil {
			a.storeFailed(c, err)
			return
		}
		id := c.Param("id")
		i := find(&cur.rs, k, id)
		if i < 0 {
			web.Fail(c, http.StatusNotFound, "There is no "+k.noun()+" with this ID (it may have been deleted).", nil)
			return
		}
		p := a.formPage(k)
		p.Version, p.Editing, p.ID = cur.version.Version, true, id
		p.Form = objectToForm(get(&cur.rs, k, i))
		a.render(c, http.StatusOK, formPage[k], p)
	}
}

func (a *Admin) pageAccountNew(c *gin.Context)  { a.pageNew(kindAccount)(c) }
func (a *Admin) pageAccountEdit(c *gin.Context) { a.pageEdit(kindAccount)(c) }
func (a *Admin) pageGrantNew(c *gin.Context)    { a.pageNew(kindGrant)(c) }
func (a *Admin) pageGrantEdit(c *gin.Context)   { a.pageEdit(kindGrant)(c) }
func (a *Admin) pagePatternNew(c *gin.Context)  { a.pageNew(kindPattern)(c) }
func (a *Admin) pagePatternEdit(c *gin.Context) { a.pageEdit(kindPattern)(c) }

func (a *Admin) postAccountCreate(c *gin.Context) { a.postObject(c, kindAccount, "", false) }
func (a *Admin) postAccountUpdate(c *gin.Context) { a.postObject(c, kindAccount, c.Param("id"), false) }
func (a *Admin) postAccountDelete(c *gin.Context) { a.postObject(c, kindAccount, c.Param("id"), true) }
func (a *Admin) postGrantCreate(c *gin.Context)   { a.postObject(c, kindGrant, "", false) }
func (a *Admin) postGrantUpdate(c *gin.Context)   { a.postObject(c, kindGrant, c.Param("id"), false) }
func (a *Admin) postGrantDelete(c *gin.Context)   { a.postObject(c, kindGrant, c.Param("id"), true) }
func (a *Admin) postPatternCreate(c *gin.Context) { a.postObject(c, kindPattern, "", false) }
func (a *Admin) postPatternUpdate(c *gin.Context) { a.postObject(c, kindPattern, c.Param("id"), false) }
func (a *Admin) postPatternDelete(c *gin.Context) { a.postObject(c, kindPattern, c.Param("id"), true) }

// formVersion reads the hidden "version" field.
func formVersion(c *gin.Context) (int64, bool) {
	v, err := strconv.ParseInt(c.Request.PostForm.Get("version"), 10, 64)
	return v, err == nil && v >= 0
}

// postObject creates, updates or deletes one object from a form.
func (a *Admin) postObject(c *gin.Context, k kind, id string, del bool) {
	if c.Request.PostForm == nil {
		_ = c.Request.ParseForm() // web parsed it for the CSRF check; this is a safety net
	}
	f := c.Request.PostForm
	p := a.formPage(k)
	p.Editing, p.ID = id != "", id
	p.Form, p.Comment = formValues(k, f), strings.TrimSpace(f.Get("comment"))
	expected, ok := formVersion(c)
	if !ok {
		web.Fail(c, http.StatusBadRequest, "The form lacks the rules version it was loaded from. Reload the page and try again.", nil)
		return
	}
	p.Version = expected
	action := k.action() + ".create"
	o := op{kind: k, id: id}
	var secret string // a client secret generated for a workload, shown once
	switch {
	case del:
		action = k.action() + ".delete"
	default:
		if id != "" {
			action = k.action() + ".update"
		}
		obj, fields := formToObject(k, f)
		if k == kindWorkload {
			secret, o.keepSecret = workloadSecret(f, id != "", &obj, fields)
			scrubPrivateKeys(p.Form)
		}
		if len(fields) > 0 {
			p.Fields = fields
			a.record(c, action, firstNonEmpty(id, obj.id()), "invalid", "", "", nil)
			a.render(c, http.StatusUnprocessableEntity, formPage[k], p)
			return
		}
		o.obj = &obj
	}
	if del {
		// The delete form sits on the edit page; show the object's values again on failure.
		if cur, err := a.current(c.Request.Context()); err == nil {
			if i := find(&cur.rs, k, id); i >= 0 {
				p.Form = objectToForm(get(&cur.rs, k, i))
			}
		}
	}
	ed, err := a.changeObject(c.Request.Context(), expected, o, changeMeta(c, p.Comment))
	object := id
	if o.obj != nil {
		object = o.obj.id()
	}
	var pe *problemsError
	switch {
	case err == nil:
		a.record(c, action, object, "success", objectJSON(ed.before), objectJSON(ed.after),
			map[string]string{"version": strconv.FormatInt(ed.version.Version, 10)})
		if secret != "" {
			a.showSecret(c, ed, secret)
			return
		}
		done := map[bool]string{true: "saved", false: "created"}[id != ""]
		if del {
			done = "deleted"
		}
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s?done=%s&v=%d", listPath[k], done, ed.version.Version))
	case errors.Is(err, store.ErrConflict):
		a.record(c, action, object, "conflict", "", "", nil)
		p.Conflict = true
		p.Error = formPath(k, id) // the "reload" link (_admin.html)
		a.render(c, http.StatusConflict, formPage[k], p)
	case errors.Is(err, errNoObject):
		a.record(c, action, object, "not_found", "", "", nil)
		web.Fail(c, http.StatusNotFound, "There is no "+k.noun()+" with this ID (it may have been deleted meanwhile).", nil)
	case errors.Is(err, errExists):
		a.record(c, action, object, "invalid", "", "", nil)
		p.Fields["id"] = append(p.Fields["id"], "Another "+k.noun()+" already has this ID.")
		a.render(c, http.StatusUnprocessableEntity, formPage[k], p)
	case errors.As(err, &pe):
		a.record(c, action, object, "invalid", "", "", nil)
		fields, other := fieldProblems(pe.problems, k, ed.index, object)
		for _, rel := range slices.Sorted(maps.Keys(fields)) {
			for _, m := range fields[rel] {
				name, text := formField(k, rel, m)
				switch {
				case name == "" || del:
					p.Problems = append(p.Problems, text)
				case !slices.Contains(p.Fields[name], text):
					// (a field shared by several roles reports a problem once)
					p.Fields[name] = append(p.Fields[name], text)
				}
			}
		}
		for _, pr := range other {
			p.Problems = append(p.Problems, pr.String())
		}
		a.render(c, http.StatusUnprocessableEntity, formPage[k], p)
	default:
		a.record(c, action, object, "error", "", "", nil)
		a.storeFailed(c, err)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// safeQuery is a URL query value, for links.
func safeQuery(k, v string) string { return url.Values{k: {v}}.Encode() }
