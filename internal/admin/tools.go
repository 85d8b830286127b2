package admin

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// funcs are the template functions of the admin pages.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"fieldid":       func(name string) string { return "f-" + strings.ReplaceAll(name, "_", "-") },
	"mfalabel":      mfaLabel,
	"eligiblelabel": eligibleLabel,
	"eligibletitle": eligibleTitle,
	"duration":      durationText,
	// inlist reports whether the comma-separated list holds v.
	"inlist": func(list, v string) bool { return slices.Contains(strings.Split(list, ","), v) },
}

// mfaLabel is the badge of a role that requires MFA: "MFA" (any second
// factor), "passkey only" (webauthn alone), or "MFA: " and the methods;
// "" for a role without the requirement.
func mfaLabel(require bool, methods []string) string {
	switch {
	case !require && len(methods) == 0:
		return ""
	case len(methods) == 0:
		return "MFA"
	case len(methods) == 1 && methods[0] == identity.MethodWebAuthn:
		return "passkey only"
	}
	return "MFA: " + strings.Join(methods, ", ")
}

// eligibility returns the terms of an eligible role as the engine gives
// them (MaxSeconds 0 when max_duration does not parse), for a
// rolemap.RoleRef, PatternRule, Grant or *Eligibility; nil for a standing
// role or anything else.
func eligibility(v any) *rolemap.Eligibility {
	terms := func(eligible bool, maxDuration string, session int, approvers string, reason bool, pattern string) *rolemap.Eligibility {
		if !eligible {
			return nil
		}
		secs := session
		if secs == 0 {
			secs = 3600 // AWS's default session length
		}
		if maxDuration != "" {
			d, err := time.ParseDuration(maxDuration)
			secs = int(d / time.Second)
			if err != nil || secs <= 0 {
				secs = 0
			}
		}
		return &rolemap.Eligibility{MaxSeconds: secs, Approvers: approvers, RequireReason: reason || pattern != "", ReasonPattern: pattern}
	}
	switch x := v.(type) {
	case rolemap.RoleRef:
		return terms(x.IsEligible(), x.MaxDuration, x.MaxSessionSeconds, x.Approvers, x.RequireReason, x.ReasonPattern)
	case rolemap.PatternRule:
		return terms(x.IsEligible(), x.MaxDuration, x.MaxSessionSeconds, x.Approvers, x.RequireReason, x.ReasonPattern)
	case rolemap.Grant:
		return x.Eligible
	case *rolemap.Eligibility:
		return x
	}
	return nil
}

// eligibleLabel is the badge of an eligible role: "eligible", the longest
// elevation and who approves ("eligible · up to 1h · approvers: ops" or
// "… · self-service"); "" for a standing role. v as for eligibility.
func eligibleLabel(v any) string {
	e := eligibility(v)
	if e == nil {
		return ""
	}
	s := "eligible"
	if e.MaxSeconds > 0 {
		s += " · up to " + rolemap.ShortDuration(e.MaxSeconds)
	}
	if e.Approvers != "" {
		return s + " · approvers: " + e.Approvers
	}
	return s + " · self-service"
}

// eligibleTitle explains an eligible badge (its title attribute).
func eligibleTitle(v any) string {
	e := eligibility(v)
	if e == nil {
		return ""
	}
	s := "Not granted outright: members request it for a limited time, with a fresh second factor"
	if e.Approvers != "" {
		s += ", and a member of " + e.Approvers + " approves"
	} else {
		s += " (self-service: no approval)"
	}
	switch {
	case e.ReasonPattern != "":
		s += "; the request needs a reason matching " + e.ReasonPattern
	case e.RequireReason:
		s += "; the request needs a reason"
	}
	return s
}

// durationText writes seconds like max_duration ("1h30m"); "" for 0.
func durationText(secs int) string {
	if secs <= 0 {
		return ""
	}
	return rolemap.ShortDuration(secs)
}

// Input bounds of the tools.
const (
	maxGroupName = 1024
	maxGroups    = 1000
	maxUsername  = 256
)

// lookupView is the "who gets what" answer.
type lookupView struct {
	User     *identity.User // nil for a pasted group list
	Groups   []identity.Group
	Result   rolemap.Result
	Version  int64
	NotFound bool
	// Blocked says why the directory refuses the account (locked,
	// disabled, ...): such a user gets no roles, whatever the rules say.
	Blocked string
}

func (a *Admin) pageTester(c *gin.Context) {
	p := a.newPage("tester")
	p.Group = strings.TrimSpace(c.Query("group"))
	if p.Group == "" {
		a.render(c, http.StatusOK, "tester.html", p)
		return
	}
	if len(p.Group) > maxGroupName {
		p.Fields["group"] = []string{fmt.Sprintf("A group name has at most %d bytes.", maxGroupName)}
		a.render(c, http.StatusUnprocessableEntity, "tester.html", p)
		return
	}
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p.Version, p.Tested = cur.version.Version, true
	res := cur.engine.TestGroupResult(p.Group)
	p.TestGrant, p.TestElig = res.Grants, res.Eligible
	a.render(c, http.StatusOK, "tester.html", p)
}

// pageWhoGets looks a user up (?username=), or a role (?role=: who may
// get it, people and workloads; workloads.go).
func (a *Admin) pageWhoGets(c *gin.Context) {
	p := a.newPage("whogets")
	p.Username = strings.TrimSpace(c.Query("username"))
	if p.Role = strings.TrimSpace(c.Query("role")); p.Role != "" && p.Username == "" {
		a.whoGetsRole(c, p)
		return
	}
	if p.Username == "" {
		a.render(c, http.StatusOK, "whogets.html", p)
		return
	}
	lv, status, msg, err := a.whoGetsUser(c, p.Username)
	if err != nil {
		web.Fail(c, status, msg, err)
		return
	}
	if msg != "" {
		p.Fields["username"] = []string{msg}
	}
	p.Lookup = lv
	a.render(c, status, "whogets.html", p)
}

// whoGetsUser evaluates the rules for a directory user. status and msg
// describe a failure (err != nil) or an input problem (msg, err nil).
func (a *Admin) whoGetsUser(c *gin.Context, username string) (*lookupView, int, string, error) {
	if len(username) > maxUsername || strings.ContainsFunc(username, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, http.StatusUnprocessableEntity, "This is not a username.", nil
	}
	cur, err := a.current(c.Request.Context())
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return nil, http.StatusServiceUnavailable, "The data store (Redis) does not answer. Please try again in a moment.", err
		}
		return nil, http.StatusInternalServerError, "", err
	}
	u, err := a.dir.Lookup(c.Request.Context(), username)
	switch {
	case errors.Is(err, identity.ErrUserNotFound):
		return &lookupView{NotFound: true, Version: cur.version.Version}, http.StatusOK,
			"There is no user " + strconv.Quote(username) + " in the directory.", nil
	case identity.IsRejection(err):
		state := accountStateText(err)
		return &lookupView{NotFound: true, Blocked: state, Version: cur.version.Version}, http.StatusOK,
			"The directory says the account " + strconv.Quote(username) + " is " + state +
				": Warden refuses it sign-in and token exchange, so it gets no roles.", nil
	case err != nil:
		return nil, http.StatusServiceUnavailable,
			"The directory does not answer, so the user cannot be looked up. Please try again in a moment.", err
	}
	return &lookupView{User: &u, Groups: u.Groups, Result: cur.engine.Evaluate(rolemap.InputFromUser(u)),
		Version: cur.version.Version}, http.StatusOK, "", nil
}

// parseGroupList reads one group per line: a DN (contains '=') or a CN.
func parseGroupList(text string) ([]identity.Group, []string) {
	var out []identity.Group
	var problems []string
	for n, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(out) == maxGroups {
			problems = append(problems, fmt.Sprintf("At most %d groups.", maxGroups))
			break
		}
		if len(line) > maxGroupName {
			problems = append(problems, fmt.Sprintf("Line %d: a group name has at most %d bytes.", n+1, maxGroupName))
			continue
		}
		g := identity.Group{Name: line, Direct: true}
		if strings.Contains(line, "=") {
			dn, err := ldap.ParseDN(line)
			if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) == 0 {
				problems = append(problems, fmt.Sprintf("Line %d: %q is not a valid DN.", n+1, line))
				continue
			}
			g.DN, g.Name = line, dn.RDNs[0].Attributes[0].Value
		}
		out = append(out, g)
	}
	return out, problems
}

// postWhoGets evaluates a pasted list of groups.
func (a *Admin) postWhoGets(c *gin.Context) {
	p := a.newPage("whogets")
	p.GroupList = c.Request.PostForm.Get("groups")
	groups, problems := parseGroupList(p.GroupList)
	if len(problems) > 0 || len(groups) == 0 {
		if len(groups) == 0 && len(problems) == 0 {
			problems = []string{"Write at least one group, one per line."}
		}
		p.Fields["groups"] = problems
		a.render(c, http.StatusUnprocessableEntity, "whogets.html", p)
		return
	}
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p.Lookup = &lookupView{Groups: groups, Result: cur.engine.Evaluate(rolemap.Input{Groups: groups}), Version: cur.version.Version}
	a.render(c, http.StatusOK, "whogets.html", p)
}

// sessionView is a session as the admin sees it: never the token.
type sessionView struct {
	Key         string    `json:"key"` // hex SHA-256 of the cookie: safe to show
	UserID      string    `json:"user_id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	ClientIP    string    `json:"client_ip"`
	UserAgent   string    `json:"user_agent"`
	Created     time.Time `json:"created_at"`
	LastSeen    time.Time `json:"last_seen"`
	Expires     time.Time `json:"expires_at"`
	Own         bool      `json:"own"` // the caller's own session
}

func toSessionView(s store.Session, own string) sessionView {
	return sessionView{Key: s.Key, UserID: s.User.ID, Username: s.User.Username, DisplayName: s.User.DisplayName,
		ClientIP: s.ClientIP, UserAgent: s.UserAgent, Created: s.CreatedAt, LastSeen: s.LastSeen, Expires: s.ExpiresAt,
		Own: s.Key == own}
}

// listSessions returns a page of sessions (user == "": all, from cursor),
// or every session of the username user.
//
// For a user, the directory gives the user's ID and the store's per-user
// index (ListUser) gives their sessions: a few reads, whatever the number
// of sessions. Only when the directory cannot name the user (not found:
// deleted or renamed since sign-in; a blocked account, which Lookup
// refuses; an outage) does it walk every ListAll page (bounded) and keep the
// sessions whose username matches, case-insensitively: exactly the users an
// admin may be looking for to revoke.
func (a *Admin) listSessions(c *gin.Context, user string, cursor uint64) ([]sessionView, uint64, error) {
	ctx := c.Request.Context()
	own, _ := web.CurrentSession(c)
	var out []sessionView
	if user == "" {
		ss, next, err := a.sessions.ListAll(ctx, cursor, 200)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range ss {
			out = append(out, toSessionView(s, own.Key))
		}
		return out, next, nil
	}
	u, err := a.dir.Lookup(ctx, user)
	if err == nil && u.ID != "" {
		ss, err := a.sessions.ListUser(ctx, u.ID)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range ss {
			out = append(out, toSessionView(s, own.Key))
		}
		return out, 0, nil
	}
	if err != nil && !errors.Is(err, identity.ErrUserNotFound) && !identity.IsRejection(err) {
		a.log.WarnContext(ctx, "admin: sessions filter: directory lookup failed; scanning all sessions", "err", err)
	}
	cursor = 0
	for pages := 0; pages < 1000; pages++ {
		ss, next, err := a.sessions.ListAll(ctx, cursor, 1000)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range ss {
			if strings.EqualFold(s.User.Username, user) {
				out = append(out, toSessionView(s, own.Key))
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return out, 0, nil
}

func (a *Admin) pageSessions(c *gin.Context) {
	p := a.newPage("sessions")
	p.UserFilter = strings.TrimSpace(c.Query("user"))
	cursor, _ := strconv.ParseUint(c.Query("cursor"), 10, 64)
	ss, next, err := a.listSessions(c, p.UserFilter, cursor)
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p.Sessions = ss
	if next != 0 {
		p.NextCursor = strconv.FormatUint(next, 10)
	}
	a.render(c, http.StatusOK, "sessions.html", p)
}

func (a *Admin) postSessionRevoke(c *gin.Context) {
	key := c.Param("key")
	err := a.sessions.DeleteByKey(c.Request.Context(), key)
	switch {
	case err == nil:
		a.record(c, "session.revoke", key, "success", "", "", nil)
		c.Redirect(http.StatusSeeOther, "/admin/sessions?done=revoked")
	case errors.Is(err, store.ErrNotFound):
		a.record(c, "session.revoke", key, "not_found", "", "", nil)
		web.Fail(c, http.StatusNotFound, "This session has already ended.", nil)
	default:
		a.record(c, "session.revoke", key, "error", "", "", nil)
		a.storeFailed(c, err)
	}
}

func (a *Admin) postUserRevoke(c *gin.Context) {
	if _, err := a.revokeUser(c, c.Param("id"), c.Request.PostForm.Get("username")); err != nil {
		a.storeFailed(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/sessions?done=revoked")
}

// revokeUser ends all access of the user with directory ID id: browser
// sessions, CLI sign-ins (OIDC token families) and approved device codes,
// through the one revocation (Deps.Access), which records the audit event
// "access.revoke" with cause admin. username, when empty, is taken from
// one of the user's sessions, for the record.
func (a *Admin) revokeUser(c *gin.Context, id, username string) (access.Result, error) {
	ctx := c.Request.Context()
	if username == "" {
		if ss, err := a.sessions.ListUser(ctx, id); err == nil && len(ss) > 0 {
			username = ss[0].User.Username
		}
	}
	if a.access == nil {
		n, err := a.sessions.RevokeUser(ctx, id)
		if err != nil {
			a.record(c, "session.revoke_user", id, "error", "", "", nil)
			return access.Result{}, err
		}
		a.record(c, "session.revoke_user", id, "success", "", "", map[string]string{"count": strconv.Itoa(n), "username": username})
		return access.Result{Sessions: n}, nil
	}
	return a.access.Revoke(ctx, identity.User{ID: id, Username: username}, access.CauseAdmin,
		access.Request{Actor: actor(c), ClientIP: web.ClientIP(c), RequestID: web.RequestID(ctx)})
}

// auditView is one audit event for display.
type auditView struct {
	audit.Event
}

// auditForm is the audit filter as typed.
type auditForm struct {
	Actor, Object, Action, Since, Until, Cursor string
	Limit                                       int
}

// timeForm is the format of <input type="datetime-local"> (UTC here).
const timeForm = "2006-01-02T15:04"

// parseAuditQuery turns the filter into a store query; problems by field.
func parseAuditQuery(get func(string) string) (auditForm, store.AuditQuery, map[string][]string) {
	f := auditForm{Actor: strings.TrimSpace(get("actor")), Object: strings.TrimSpace(get("object")),
		Action: strings.TrimSpace(get("action")), Since: strings.TrimSpace(get("since")),
		Until: strings.TrimSpace(get("until")), Cursor: strings.TrimSpace(get("cursor"))}
	q := store.AuditQuery{Actor: f.Actor, Object: f.Object, Action: f.Action, Cursor: f.Cursor, Limit: 50}
	fields := map[string][]string{}
	for _, x := range []struct {
		name, val string
		dst       *time.Time
	}{{"since", f.Since, &q.Since}, {"until", f.Until, &q.Until}} {
		if x.val == "" {
			continue
		}
		t, err := time.Parse(timeForm, x.val)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, x.val); err != nil {
				fields[x.name] = []string{"Write a date and time like 2025-06-01T14:30 (UTC)."}
				continue
			}
		}
		*x.dst = t.UTC()
	}
	if !q.Until.IsZero() {
		q.Until = q.Until.Add(time.Minute - time.Millisecond) // the whole minute typed
	}
	if l := get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			fields["limit"] = []string{"Write a number from 1 to 1000."}
		}
		q.Limit = n
	}
	f.Limit = q.Limit
	return f, q, fields
}

func (a *Admin) pageAudit(c *gin.Context) {
	p := a.newPage("audit")
	form, q, fields := parseAuditQuery(c.Query)
	p.Query, p.Fields = form, fields
	if len(fields) > 0 {
		a.render(c, http.StatusUnprocessableEntity, "audit.html", p)
		return
	}
	evs, next, err := a.auditLog.Query(c.Request.Context(), q)
	if errors.Is(err, store.ErrBadQuery) {
		p.Error = "This filter cannot be used: " + publicQueryError(err)
		a.render(c, http.StatusUnprocessableEntity, "audit.html", p)
		return
	}
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	for _, e := range evs {
		p.Audit = append(p.Audit, auditView{e})
	}
	p.NextCursor = next
	a.render(c, http.StatusOK, "audit.html", p)
}

// publicQueryError is the part of a store.ErrBadQuery error meant for users.
func publicQueryError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "audit query: "); i >= 0 {
		msg = msg[i+len("audit query: "):]
	}
	return strings.TrimSuffix(msg, ": "+store.ErrBadQuery.Error())
}

// auditEvent builds an audit event of an admin action.
func auditEvent(t time.Time, actor, action, object, result, ip, rid, before, after string, detail map[string]string) audit.Event {
	return audit.Event{Time: t, Actor: actor, Action: action, Object: object, Result: result, ClientIP: ip,
		RequestID: rid, Before: before, After: after, Detail: detail}
}

// accountStateText names an account state the directory reported.
func accountStateText(err error) string {
	switch {
	case errors.Is(err, identity.ErrAccountLocked):
		return "locked"
	case errors.Is(err, identity.ErrAccountDisabled):
		return "disabled"
	case errors.Is(err, identity.ErrAccountExpired):
		return "expired"
	case errors.Is(err, identity.ErrPasswordExpired):
		return "blocked until its expired password is changed"
	case errors.Is(err, identity.ErrMustChangePassword):
		return "blocked until its password is changed"
	}
	return "refused"
}
