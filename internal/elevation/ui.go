package elevation

import (
	"cmp"
	"context"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
	elevtemplates "github.com/wardenidp/warden/templates/elevation"
)

// UIDeps are the collaborators of the elevation pages and JSON API.
type UIDeps struct {
	Service *Service // required
	// Token resolves a Bearer access token of the CLI: the user and how
	// they signed in for the token's grant. Its errors wrap
	// oidcop.ErrInvalidToken (401 invalid_token) or store.ErrUnavailable
	// (503). Nil: no JSON API for the CLI (/api/elevations is not served).
	Token func(ctx context.Context, token string) (identity.User, identity.Authn, error)
	// Users looks the user up afresh in the directory (access.Access.Check
	// in the app; via names the route): identity.IsGone(err) means the
	// user can no longer sign in, any other error is an outage. Nil: the
	// token's user is used as it is.
	Users   func(ctx context.Context, u identity.User, via string) (identity.User, error)
	IsAdmin func(identity.User) bool // nil: nobody
	Logger  *slog.Logger
	Clock   func() time.Time // nil: the Service's
}

// UI serves the elevation pages (/elevations, /admin/elevations) and the
// JSON API (/api/elevations for the CLI with a Bearer token,
// /admin/api/elevations for admins' browsers). It is a web.Mount.
type UI struct {
	svc     *Service
	token   func(ctx context.Context, token string) (identity.User, identity.Authn, error)
	users   func(ctx context.Context, u identity.User, via string) (identity.User, error)
	isAdmin func(identity.User) bool
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	names accountNames // account names of the rules in force (cached per Engine)
}

type accountNames struct {
	eng   *rolemap.Engine
	names map[string]string
}

// NewUI returns the elevation pages and API.
func NewUI(d UIDeps) (*UI, error) {
	if d.Service == nil {
		return nil, errors.New("elevation: pages: Service is required")
	}
	u := &UI{svc: d.Service, token: d.Token, users: d.Users, isAdmin: d.IsAdmin, log: d.Logger, now: d.Clock}
	if u.isAdmin == nil {
		u.isAdmin = func(identity.User) bool { return false }
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = d.Service.Now
	}
	return u, nil
}

// Body limits: a request names at most MaxRoles ARNs of at most 2048
// bytes, with a reason of at most MaxReason characters.
const (
	formBody = 64 << 10
	jsonBody = 64 << 10
)

// Routes implements web.Mount. Every change is made by the user as the
// directory has them now (Fresh). The CLI's API is CrossSite: it
// authenticates with a Bearer token only, never with the session cookie,
// so it needs no CSRF token (a cross-site page cannot set Authorization).
func (u *UI) Routes() []web.Route {
	rs := []web.Route{
		{Method: http.MethodGet, Path: "/elevations", Handler: u.handleList},
		{Method: http.MethodGet, Path: "/elevations/new", Handler: u.handleNew, Fresh: true},
		{Method: http.MethodPost, Path: "/elevations", Handler: u.handleCreate, MaxBody: formBody, Fresh: true},
		{Method: http.MethodGet, Path: "/elevations/:id", Handler: u.handleShow},
		{Method: http.MethodPost, Path: "/elevations/:id/approve", Handler: u.handleDecide(true), MaxBody: formBody, Fresh: true},
		{Method: http.MethodPost, Path: "/elevations/:id/deny", Handler: u.handleDecide(false), MaxBody: formBody, Fresh: true},
		{Method: http.MethodPost, Path: "/elevations/:id/end", Handler: u.handleEnd, MaxBody: formBody, Fresh: true},
		{Method: http.MethodGet, Path: "/admin/elevations", Handler: u.handleAdmin},
		{Method: http.MethodPost, Path: "/admin/elevations/:id/end", Handler: u.handleAdminEnd, MaxBody: formBody, Fresh: true},
		{Method: http.MethodGet, Path: "/admin/api/elevations", Handler: u.apiAdminList, API: true},
		{Method: http.MethodPost, Path: "/admin/api/elevations/:id/end", Handler: u.apiAdminEnd, API: true, MaxBody: jsonBody, Fresh: true},
	}
	if u.token != nil {
		api := func(method, path string, h gin.HandlerFunc) web.Route {
			return web.Route{Method: method, Path: path, Handler: h, API: true, CrossSite: true, MaxBody: jsonBody}
		}
		rs = append(rs,
			api(http.MethodGet, "/api/elevations", u.apiList),
			api(http.MethodPost, "/api/elevations", u.apiCreate),
			api(http.MethodGet, "/api/elevations/pending", u.apiPending),
			api(http.MethodGet, "/api/elevations/:id", u.apiGet),
			api(http.MethodPost, "/api/elevations/:id/end", u.apiEnd),
			api(http.MethodPost, "/api/elevations/:id/approve", u.apiDecide(true)),
			api(http.MethodPost, "/api/elevations/:id/deny", u.apiDecide(false)),
		)
	}
	return rs
}

// Templates implements web.Templater.
func (u *UI) Templates() (fs.FS, template.FuncMap) { return elevtemplates.FS, nil }

// Nav implements web.Navigator: a link for everyone signed in (whether the
// user has eligible roles or requests to decide would cost a rules
// evaluation and a Redis round trip on every page).
func (u *UI) Nav(identity.User) []web.NavLink {
	return []web.NavLink{{Label: "Elevation", Path: "/elevations"}}
}

// Page names (templates/elevation).
const (
	pageNew   = "elevation_new.html"
	pageList  = "elevations.html"
	pageShow  = "elevation.html"
	pageAdmin = "admin_elevations.html"
)

// session returns the signed-in session, or sends the browser to sign in.
func (u *UI) session(c *gin.Context) (store.Session, bool) {
	sess, ok := web.CurrentSession(c)
	if !ok {
		web.RedirectToLogin(c)
		return store.Session{}, false
	}
	return sess, true
}

// stepUp is what requesting and deciding demand of the sign-in.
func (u *UI) stepUp() web.FactorNeed {
	return web.FactorNeed{MFA: true, MaxAge: u.svc.StepUpMaxAge()}
}

// toFactor sends the browser to give its second factor afresh, then to
// next (a GET that shows the same thing again), and aborts.
func toFactor(c *gin.Context, next string) {
	q := url.Values{"next": {web.SafeNext(next)}, "fresh": {"1"}}
	c.Redirect(http.StatusSeeOther, web.FactorPath+"?"+q.Encode())
	c.Abort()
}

// failPage answers a refused or failed action with the error page: the
// refusal's sentence for 4xx, the fixed text (and the error logged) for
// the rest.
func (u *UI) failPage(c *gin.Context, err error) {
	status, _ := statusOf(err)
	if status >= 500 {
		web.Fail(c, status, "", err)
		return
	}
	web.Fail(c, status, sentence(PublicMessage(err)), nil)
}

// sentence capitalises msg and ends it with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return ""
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// statusOf maps a refusal of the Service or the store to its HTTP status
// and API error code.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrStepUp):
		return http.StatusUnauthorized, "insufficient_user_authentication"
	case errors.Is(err, ErrNotEligible):
		return http.StatusForbidden, "not_eligible"
	case errors.Is(err, ErrNotApprover):
		return http.StatusForbidden, "not_approver"
	case errors.Is(err, store.ErrSelfApproval):
		return http.StatusForbidden, "self_approval"
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrForbidden):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, store.ErrAlreadyDecided):
		return http.StatusConflict, "already_decided"
	case errors.Is(err, store.ErrNotActive):
		return http.StatusConflict, "not_active"
	case errors.Is(err, store.ErrPastDeadline):
		return http.StatusConflict, "expired"
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited"
	case store.IsUnavailable(err), errors.Is(err, identity.ErrDirectoryUnavailable):
		return http.StatusServiceUnavailable, "temporarily_unavailable"
	}
	return http.StatusInternalServerError, "server_error"
}

// ---- views ----

// roleText is one role as the pages show it.
type roleText struct {
	ARN, Account, AccountID, Name string
}

// elevView is one elevation as the pages show it.
type elevView struct {
	ID, Link                 string
	Username                 string
	Roles                    []roleText
	Duration                 string
	Reason, ClientIP         string
	State                    string // store state, or "active", "scheduled", "over" for approved ones
	Created, Deadline, Start string
	StartsAt, EndsAt, Left   string
	Decider, Comment         string
	DecidedAt                string
	EndedBy, EndedAt         string
	Approvers                string
	Pending, Active, Live    bool // Live: approved and not over (active or scheduled)
}

func (u *UI) view(e store.Elevation, now time.Time) elevView {
	v := elevView{ID: e.ID, Link: "/elevations/" + e.ID, Username: e.Username, Duration: human(e.Seconds),
		Reason: e.Reason, ClientIP: e.ClientIP, State: e.State, Created: timeText(e.Created),
		Deadline: timeText(e.Deadline), Start: timeText(e.StartAt), StartsAt: timeText(e.StartsAt),
		EndsAt: timeText(e.EndsAt), Decider: e.Decider, Comment: e.Comment, DecidedAt: timeText(e.DecidedAt),
		EndedBy: e.EndedBy, EndedAt: timeText(e.EndedAt), Approvers: strings.Join(e.Approvers, ", "),
		Pending: e.State == store.ElevationPending}
	names := u.accountNames()
	for _, arn := range e.Roles {
		v.Roles = append(v.Roles, roleOf(arn, names))
	}
	if e.State == store.ElevationApproved {
		switch {
		case !now.Before(e.EndsAt):
			v.State = "over"
		case now.Before(e.StartsAt):
			v.State, v.Live = "scheduled", true
		default:
			v.State, v.Active, v.Live = "active", true, true
			v.Left = leftText(e.EndsAt.Sub(now))
		}
	}
	return v
}

func roleOf(arn string, names map[string]string) roleText {
	r := roleText{ARN: arn, Name: arn}
	if a, err := awsfed.ParseRoleARN(arn); err == nil {
		r.AccountID, r.Name = a.Account, strings.TrimPrefix(a.Path, "/")+a.Name
		r.Account = names[a.Account]
	}
	return r
}

// accountNames maps account IDs to their names in the rules in force.
func (u *UI) accountNames() map[string]string {
	eng := u.svc.rules.Load()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.names.eng != eng || u.names.names == nil {
		m := map[string]string{}
		for _, a := range eng.RuleSet().Accounts {
			m[a.ID] = a.Name
		}
		u.names = accountNames{eng: eng, names: m}
	}
	return u.names.names
}

func (u *UI) views(es []store.Elevation, now time.Time) []elevView {
	out := make([]elevView, 0, len(es))
	for _, e := range es {
		out = append(out, u.view(e, now))
	}
	return out
}

// timeText is t for people: minutes, in UTC.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// spanText is a configured span for people: whole days as days, less
// than an hour in minutes.
func spanText(d time.Duration) string {
	if d < time.Hour && d >= time.Minute && d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		if n := int(d / (24 * time.Hour)); n != 1 {
			return strconv.Itoa(n) + " days"
		}
		return "1 day"
	}
	return human(int(d / time.Second))
}

// leftText is the time left, rounded up to minutes.
func leftText(d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	if m < 60 {
		return strconv.Itoa(m) + " min left"
	}
	return strconv.Itoa(m/60) + " h " + strconv.Itoa(m%60) + " min left"
}

// ---- the request form ----

// formRole is one eligible role on the request form.
type formRole struct {
	ARN, Account, AccountID, Name, Partition string
	Max                                      string // "1h"
	Approvers                                string // "" for self-service
	RequireReason                            bool
	Pattern                                  string
	Checked                                  bool
	ActiveUntil                              string // an active elevation of the role ends then
}

type formData struct {
	Roles          []formRole
	Duration       string
	Durations      []string // suggestions, up to the largest maximum
	Reason, Start  string
	ReasonRequired bool // every role listed needs a reason
	ReasonSome     bool // some do
	Unknown        []string
	StepUp         string // "5 min"
	MaxStart       string
	Error          string
	NoRoles        bool
}

// durationChoices are the suggested durations.
var durationChoices = []int{900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600}

// eligibleSorted is the user's eligible roles by account name, then role.
func eligibleSorted(gs []rolemap.Grant) []rolemap.Grant {
	gs = slices.Clone(gs)
	slices.SortFunc(gs, func(a, b rolemap.Grant) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.AccountName), strings.ToLower(b.AccountName)),
			cmp.Compare(a.AccountID, b.AccountID), cmp.Compare(strings.ToLower(a.RoleName), strings.ToLower(b.RoleName)),
			cmp.Compare(a.RoleARN, b.RoleARN))
	})
	return gs
}

// refMatches reports whether ref names g: its ARN, or "<account>/<role>"
// with the account's name or ID and the role's name (with its IAM path or
// without), case-insensitively as the portal's links do.
func refMatches(g rolemap.Grant, ref string) bool {
	if strings.HasPrefix(ref, "arn:") {
		return g.RoleARN == ref
	}
	acct, role, ok := strings.Cut(ref, "/")
	if !ok || (acct != g.AccountID && !strings.EqualFold(acct, g.AccountName)) {
		return false
	}
	if strings.EqualFold(role, g.RoleName) {
		return true
	}
	a, err := awsfed.ParseRoleARN(g.RoleARN)
	return err == nil && strings.EqualFold(strings.TrimPrefix(a.Path, "/")+a.Name, role)
}

// resolveRefs turns role references into ARNs of eligible roles; a
// reference that names none is kept as it is (the Service refuses it).
func resolveRefs(eligible []rolemap.Grant, refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, ref := range refs {
		ref = strings.TrimSpace(ref)
		if i := slices.IndexFunc(eligible, func(g rolemap.Grant) bool { return refMatches(g, ref) }); i >= 0 {
			ref = eligible[i].RoleARN
		}
		out = append(out, ref)
	}
	return out
}

func (u *UI) form(ctx context.Context, user identity.User, eligible []rolemap.Grant, checked []string, dur, reason, start string) formData {
	d := formData{Duration: dur, Reason: reason, Start: start, StepUp: spanText(u.svc.StepUpMaxAge()),
		MaxStart: spanText(u.svc.Config().MaxStartDelay)}
	if len(eligible) == 0 {
		d.NoRoles = true
		return d
	}
	active := map[string]time.Time{}
	if mine, err := u.svc.Mine(ctx, user, 50); err == nil { // only a nicety: an outage shows no "active until"
		now := u.now()
		for _, e := range mine {
			if e.ActiveAt(now) {
				for _, r := range e.Roles {
					if e.EndsAt.After(active[r]) {
						active[r] = e.EndsAt
					}
				}
			}
		}
	}
	for _, ref := range checked {
		if ref = strings.TrimSpace(ref); ref != "" && !slices.ContainsFunc(eligible, func(g rolemap.Grant) bool { return refMatches(g, ref) }) {
			d.Unknown = append(d.Unknown, ref)
		}
	}
	maxAll, minChecked, need := 0, 0, 0
	for _, g := range eligibleSorted(eligible) {
		el := g.Eligible
		if el == nil {
			el = &rolemap.Eligibility{}
		}
		r := formRole{ARN: g.RoleARN, Account: g.AccountName, AccountID: g.AccountID, Name: g.RoleName,
			Partition: g.Partition, Max: human(el.MaxSeconds), Approvers: el.Approvers,
			RequireReason: el.RequireReason || el.ReasonPattern != "", Pattern: el.ReasonPattern,
			Checked:     slices.ContainsFunc(checked, func(ref string) bool { return refMatches(g, strings.TrimSpace(ref)) }),
			ActiveUntil: timeText(active[g.RoleARN])}
		if r.Checked && (minChecked == 0 || el.MaxSeconds < minChecked) {
			minChecked = el.MaxSeconds
		}
		maxAll = max(maxAll, el.MaxSeconds)
		if r.RequireReason {
			need++
		}
		d.Roles = append(d.Roles, r)
	}
	if len(d.Roles) == 1 {
		d.Roles[0].Checked = true
		minChecked = maxAll
	}
	d.ReasonRequired, d.ReasonSome = need == len(d.Roles), need > 0
	for _, s := range durationChoices {
		if s < maxAll {
			d.Durations = append(d.Durations, human(s))
		}
	}
	if maxAll >= MinSeconds {
		d.Durations = append(d.Durations, human(maxAll))
	}
	if d.Duration == "" {
		def := 3600
		if minChecked > 0 {
			def = min(def, minChecked)
		}
		d.Duration = human(max(def, MinSeconds))
	}
	return d
}

// newURL is the form's address with what the user entered (the way back
// after a second factor).
func newURL(roles []string, dur, reason, start string) string {
	q := url.Values{}
	for _, r := range roles {
		if r = strings.TrimSpace(r); r != "" && len(r) <= 2048 {
			q.Add("role", r)
		}
	}
	for k, v := range map[string]string{"duration": dur, "reason": reason, "start": start} {
		if v != "" && len(v) <= MaxReason*4 {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return "/elevations/new"
	}
	return "/elevations/new?" + q.Encode()
}

// handleNew is the request form (GET /elevations/new?role=ARN...).
func (u *UI) handleNew(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	eligible := u.svc.Eligible(sess.User)
	q := c.Request.URL.Query()
	if len(eligible) > 0 && !web.RequireFactor(c, u.stepUp(), newURL(q["role"], q.Get("duration"), q.Get("reason"), q.Get("start"))) {
		return
	}
	d := u.form(c.Request.Context(), sess.User, eligible, clipRefs(q["role"]), clipText(q.Get("duration"), 32),
		clipText(q.Get("reason"), MaxReason*4), clipText(q.Get("start"), 64))
	web.Render(c, http.StatusOK, pageNew, d)
}

func clipRefs(refs []string) []string {
	var out []string
	for _, r := range refs {
		if len(r) <= 2048 && len(out) < MaxRoles*2 {
			out = append(out, r)
		}
	}
	return out
}

func clipText(s string, n int) string {
	if len(s) > n {
		return ""
	}
	return s
}

// handleCreate stores a request (POST /elevations) and shows it.
func (u *UI) handleCreate(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	roles := c.PostFormArray("role")
	durText, reason, startText := strings.TrimSpace(c.PostForm("duration")), c.PostForm("reason"), strings.TrimSpace(c.PostForm("start"))
	if !u.svc.Fresh(sess.SignIn()) {
		toFactor(c, newURL(roles, durText, reason, startText))
		return
	}
	eligible := u.svc.Eligible(sess.User)
	again := func(status int, msg string) {
		d := u.form(ctx, sess.User, eligible, clipRefs(roles), clipText(durText, 32), clipText(reason, MaxReason*4), clipText(startText, 64))
		d.Error = msg
		web.Render(c, status, pageNew, d)
	}
	secs, err := ParseDuration(durText)
	if err == nil {
		var start time.Time
		if start, err = ParseStart(startText); err == nil {
			var e store.Elevation
			e, err = u.svc.Request(ctx, sess.User, sess.SignIn(), Input{Roles: resolveRefs(eligible, roles), Seconds: secs,
				Reason: reason, StartAt: start, ClientIP: web.ClientIP(c)})
			if err == nil {
				c.Redirect(http.StatusSeeOther, "/elevations/"+e.ID+"?done=requested")
				return
			}
		}
	}
	status, _ := statusOf(err)
	switch {
	case errors.Is(err, ErrStepUp):
		toFactor(c, newURL(roles, durText, reason, startText))
	case status >= 500:
		web.Fail(c, status, "", err)
	default:
		again(status, sentence(PublicMessage(err)))
	}
}

// ParseDuration reads a duration as people write it ("30m", "1h",
// "1h30m", or a number of minutes), in whole seconds.
func ParseDuration(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, invalid("give a duration, such as 30m or 1h")
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n <= 100000 {
		return n * 60, nil
	}
	d, err := time.ParseDuration(strings.ReplaceAll(s, " ", ""))
	if err != nil || d <= 0 || len(s) > 32 {
		return 0, invalid("the duration %q is not one Warden reads; write it like 30m, 1h or 1h30m", clipShow(s))
	}
	if d > 1000*time.Hour {
		d = 1000 * time.Hour // over any maximum; the Service says so
	}
	return int((d + time.Second - 1) / time.Second), nil
}

// ParseStart reads a planned start: RFC 3339, or the form's
// datetime-local value ("2026-12-06T14:30", taken as UTC unless it carries
// an offset). Empty: at approval.
func ParseStart(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) <= 64 {
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04",
			"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04Z07:00", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, invalid("the start time %q is not one Warden reads; write it like 2026-12-06T14:30 (UTC) or 2026-12-06T14:30+01:00", clipShow(s))
}

func clipShow(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// ---- lists and details ----

type listData struct {
	Pending, Active, Past []elevView
	ToDecide              []elevView
	HasEligible           bool
	StepUp                string
}

// handleList is /elevations: the user's requests and those to decide.
func (u *UI) handleList(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	mine, err := u.svc.Mine(ctx, sess.User, 50)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	decide, err := u.svc.ToDecide(ctx, sess.User)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	now := u.now()
	d := listData{HasEligible: len(u.svc.Eligible(sess.User)) > 0, ToDecide: u.views(decide, now),
		StepUp: spanText(u.svc.StepUpMaxAge())}
	for _, v := range u.views(mine, now) {
		switch {
		case v.Pending:
			d.Pending = append(d.Pending, v)
		case v.Live:
			d.Active = append(d.Active, v)
		default:
			d.Past = append(d.Past, v)
		}
	}
	web.Render(c, http.StatusOK, pageList, d)
}

type showData struct {
	E         elevView
	Own       bool
	CanDecide bool
	Admin     bool
	Notice    string
	StepUp    string
}

// handleShow is one request, for its requester, its approvers and admins
// (anyone else: 404, as if it did not exist).
func (u *UI) handleShow(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	e, err := u.svc.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		u.failPage(c, err)
		return
	}
	own, approver, admin := e.UserID == sess.User.ID, u.svc.MayDecide(sess.User, e), u.isAdmin(sess.User)
	if !own && !approver && !admin {
		web.Fail(c, http.StatusNotFound, "There is no such request.", nil)
		return
	}
	d := showData{E: u.view(e, u.now()), Own: own, CanDecide: approver && e.State == store.ElevationPending, Admin: admin,
		StepUp: spanText(u.svc.StepUpMaxAge())}
	switch c.Query("done") {
	case "requested":
		d.Notice = "Requested."
		if e.State == store.ElevationApproved {
			d.Notice = "Approved at once (no approver needed for these roles)."
		} else if e.State == store.ElevationPending {
			d.Notice = "Requested. An approver decides it; this page shows the decision."
		}
	case "approved":
		d.Notice = "Approved."
	case "denied":
		d.Notice = "Denied."
	case "ended":
		d.Notice = "Ended."
	}
	web.Render(c, http.StatusOK, pageShow, d)
}

// handleDecide approves or denies a request (POST
// /elevations/:id/approve|deny), after a fresh second factor.
func (u *UI) handleDecide(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		sess, ok := u.session(c)
		if !ok {
			return
		}
		id := c.Param("id")
		back := "/elevations/" + url.PathEscape(id)
		if !u.svc.Fresh(sess.SignIn()) {
			toFactor(c, back)
			return
		}
		e, err := u.svc.Decide(c.Request.Context(), sess.User, sess.SignIn(), id, approve, c.PostForm("comment"), web.ClientIP(c))
		switch {
		case errors.Is(err, ErrStepUp):
			toFactor(c, back)
			return
		case err != nil:
			u.failPage(c, err)
			return
		}
		done := "denied"
		if e.State == store.ElevationApproved {
			done = "approved"
		}
		c.Redirect(http.StatusSeeOther, back+"?done="+done)
	}
}

// handleEnd ends the user's own elevation, or cancels their pending
// request (POST /elevations/:id/end). Ending takes privilege away, so it
// asks for no second factor.
func (u *UI) handleEnd(c *gin.Context) {
	sess, ok := u.session(c)
	if !ok {
		return
	}
	e, err := u.svc.End(c.Request.Context(), sess.User, false, c.Param("id"), web.ClientIP(c))
	if err != nil {
		u.failPage(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/elevations/"+e.ID+"?done=ended")
}

// ---- admin ----

type adminData struct {
	Pending, Active, History []elevView
	Notice                   string
	HistoryNote              string
}

// admin returns the session of an admin, or answers (sign-in, or 403).
func (u *UI) admin(c *gin.Context) (store.Session, bool) {
	sess, ok := u.session(c)
	if !ok {
		return store.Session{}, false
	}
	if !u.isAdmin(sess.User) {
		web.Fail(c, http.StatusForbidden, "Only administrators may see this page.", nil)
		return store.Session{}, false
	}
	return sess, true
}

// adminLists are the pending, approved (active or planned) and recent
// requests of every user.
func (u *UI) adminLists(ctx context.Context) (pending, approved, recent []store.Elevation, err error) {
	if pending, err = u.svc.Pending(ctx); err != nil {
		return
	}
	if approved, err = u.svc.Approved(ctx, 500); err != nil {
		return
	}
	recent, err = u.svc.Recent(ctx, 200)
	return
}

// handleAdmin is /admin/elevations: pending, active, history; end now.
func (u *UI) handleAdmin(c *gin.Context) {
	if _, ok := u.admin(c); !ok {
		return
	}
	pending, approved, recent, err := u.adminLists(c.Request.Context())
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return
	}
	now := u.now()
	d := adminData{Pending: u.views(pending, now), Active: u.views(approved, now),
		HistoryNote: "The latest " + strconv.Itoa(store.RecentElevations) + " requests are kept here for " +
			strconv.Itoa(int(store.ElevationRetention/(24*time.Hour))) + " days; the audit log keeps every step for good."}
	for _, e := range recent {
		if e.State == store.ElevationPending || (e.State == store.ElevationApproved && now.Before(e.EndsAt)) {
			continue // listed above
		}
		d.History = append(d.History, u.view(e, now))
	}
	if c.Query("done") == "ended" {
		d.Notice = "Ended."
	}
	web.Render(c, http.StatusOK, pageAdmin, d)
}

// handleAdminEnd ends any user's elevation (or cancels a pending request).
func (u *UI) handleAdminEnd(c *gin.Context) {
	sess, ok := u.admin(c)
	if !ok {
		return
	}
	if _, err := u.svc.End(c.Request.Context(), sess.User, true, c.Param("id"), web.ClientIP(c)); err != nil {
		u.failPage(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/elevations?done=ended")
}
