package elevation

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// The JSON API. /api/elevations is the CLI's: it authenticates with the
// Bearer access token of its OIDC sign-in (Token), never with cookies.
// /admin/api/elevations is the admins' browser API (session cookie and
// CSRF header, like the other /admin/api routes). Errors are
// {"error": code, "error_description": sentence, "request_id": id}.

// apiError answers an error and aborts.
func apiError(c *gin.Context, status int, code, desc string) {
	c.AbortWithStatusJSON(status, gin.H{"error": code, "error_description": desc,
		"request_id": web.RequestID(c.Request.Context())})
}

// apiFail answers a refusal or failure of the Service.
func (u *UI) apiFail(c *gin.Context, err error) {
	status, code := statusOf(err)
	switch {
	case errors.Is(err, ErrStepUp):
		u.stepUpRequired(c)
		return
	case status == http.StatusServiceUnavailable:
		u.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "elevation api: unavailable", slog.String("err", err.Error()))
		apiError(c, status, code, "A service Warden depends on does not answer; try again in a moment.")
		return
	case status >= 500:
		u.log.LogAttrs(c.Request.Context(), slog.LevelError, "elevation api: failed", slog.String("err", err.Error()))
		apiError(c, status, code, "Internal error.")
		return
	}
	apiError(c, status, code, sentence(PublicMessage(err)))
}

// stepUpRequired is RFC 9470's answer: the token's sign-in lacks a second
// factor given within max_age seconds.
func (u *UI) stepUpRequired(c *gin.Context) {
	secs := strconv.Itoa(int(u.svc.StepUpMaxAge() / time.Second))
	desc := "Elevation needs a second factor given within the last " + human(int(u.svc.StepUpMaxAge()/time.Second)) +
		"; sign in again with the scope \"elevate\" and confirm with your second factor."
	c.Header("WWW-Authenticate", `Bearer error="insufficient_user_authentication", error_description="A second factor given within the last `+
		human(int(u.svc.StepUpMaxAge()/time.Second))+` is needed", max_age=`+secs)
	c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "insufficient_user_authentication",
		"error_description": desc, "max_age": secs, "request_id": web.RequestID(c.Request.Context())})
}

// invalidToken is RFC 6750's 401.
func invalidToken(c *gin.Context, desc string) {
	c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
	apiError(c, http.StatusUnauthorized, "invalid_token", desc)
}

// bearer authenticates a CLI request by its access token. fresh also looks
// the user up in the directory now (for anything that depends on groups:
// eligibility, approvers). It answers and returns false on failure.
func (u *UI) bearer(c *gin.Context, fresh bool) (identity.User, identity.Authn, bool) {
	scheme, tok, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 4096 {
		invalidToken(c, "An access token is required (Authorization: Bearer).")
		return identity.User{}, identity.Authn{}, false
	}
	ctx := c.Request.Context()
	user, authn, err := u.token(ctx, tok)
	switch {
	case err != nil && (store.IsUnavailable(err) || errors.Is(err, identity.ErrDirectoryUnavailable)):
		u.log.LogAttrs(ctx, slog.LevelWarn, "elevation api: token check unavailable", slog.String("err", err.Error()))
		apiError(c, http.StatusServiceUnavailable, "temporarily_unavailable", "A service Warden depends on does not answer; try again in a moment.")
		return identity.User{}, identity.Authn{}, false
	case err != nil:
		invalidToken(c, "The access token is invalid, expired or revoked; sign in again.")
		return identity.User{}, identity.Authn{}, false
	case user.ID == "":
		invalidToken(c, "The access token names no user; sign in again.")
		return identity.User{}, identity.Authn{}, false
	}
	if fresh && u.users != nil {
		fu, err := u.users(ctx, user, "elevation api")
		switch {
		case identity.IsGone(err):
			invalidToken(c, "Your account can no longer sign in.")
			return identity.User{}, identity.Authn{}, false
		case err != nil:
			u.log.LogAttrs(ctx, slog.LevelWarn, "elevation api: directory look-up failed", slog.String("err", err.Error()))
			apiError(c, http.StatusServiceUnavailable, "temporarily_unavailable", "The directory does not answer; try again in a moment.")
			return identity.User{}, identity.Authn{}, false
		}
		user = fu
	}
	return user, authn, true
}

// readJSON decodes the request body (one JSON object) into v; an empty
// body leaves v as it is when empty is allowed. It answers and returns
// false when the body is not acceptable.
func readJSON(c *gin.Context, v any, emptyOK bool) bool {
	body, err := io.ReadAll(c.Request.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		apiError(c, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
		return false
	case err != nil:
		apiError(c, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
		return false
	case len(strings.TrimSpace(string(body))) == 0:
		if emptyOK {
			return true
		}
		apiError(c, http.StatusBadRequest, "invalid_request", "The request body must be a JSON object.")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		apiError(c, http.StatusBadRequest, "invalid_request", "The request body is not the JSON object expected: "+jsonProblem(err))
		return false
	}
	if dec.More() {
		apiError(c, http.StatusBadRequest, "invalid_request", "The request body holds more than one JSON value.")
		return false
	}
	return true
}

// jsonProblem says what is wrong with a body without echoing it.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return "field \"" + te.Field + "\" must be a " + te.Type.String() + "."
	}
	return "malformed JSON."
}

// EligibleRole is a role the user may request, in GET /api/elevations.
type EligibleRole struct {
	RoleARN       string           `json:"role_arn"`
	AccountID     string           `json:"account_id"`
	AccountName   string           `json:"account_name"`
	RoleName      string           `json:"role_name"`
	Partition     string           `json:"partition"`
	MaxSeconds    int              `json:"max_seconds"`
	Approvers     string           `json:"approvers,omitempty"`
	RequireReason bool             `json:"require_reason"`
	ReasonPattern string           `json:"reason_pattern,omitempty"`
	Active        *store.Elevation `json:"active,omitempty"` // an elevation that grants the role now
}

// Mine is GET /api/elevations.
type Mine struct {
	Eligible   []EligibleRole    `json:"eligible"`
	Elevations []store.Elevation `json:"elevations"`
}

// List is the answer of the list endpoints.
type List struct {
	Elevations []store.Elevation `json:"elevations"`
}

func list(es []store.Elevation) List {
	if es == nil {
		es = []store.Elevation{}
	}
	return List{Elevations: es}
}

// eligibleRoles describes gs with the active elevation of each (from
// mine, the user's requests).
func eligibleRoles(gs []rolemap.Grant, mine []store.Elevation, now time.Time) []EligibleRole {
	out := make([]EligibleRole, 0, len(gs))
	for _, g := range eligibleSorted(gs) {
		el := g.Eligible
		if el == nil {
			el = &rolemap.Eligibility{}
		}
		r := EligibleRole{RoleARN: g.RoleARN, AccountID: g.AccountID, AccountName: g.AccountName, RoleName: g.RoleName,
			Partition: g.Partition, MaxSeconds: el.MaxSeconds, Approvers: el.Approvers,
			RequireReason: el.RequireReason || el.ReasonPattern != "", ReasonPattern: el.ReasonPattern}
		for i := range mine {
			e := &mine[i]
			if e.ActiveAt(now) && slices.Contains(e.Roles, g.RoleARN) && (r.Active == nil || e.EndsAt.After(r.Active.EndsAt)) {
				r.Active = e
			}
		}
		out = append(out, r)
	}
	return out
}

// apiList is GET /api/elevations: the roles the user may request and
// their latest requests.
func (u *UI) apiList(c *gin.Context) {
	user, _, ok := u.bearer(c, true)
	if !ok {
		return
	}
	mine, err := u.svc.Mine(c.Request.Context(), user, 50)
	if err != nil {
		u.apiFail(c, err)
		return
	}
	if mine == nil {
		mine = []store.Elevation{}
	}
	c.JSON(http.StatusOK, Mine{Eligible: eligibleRoles(u.svc.Eligible(user), mine, u.now()), Elevations: mine})
}

// CreateRequest is the body of POST /api/elevations. Seconds is the
// window; Duration ("1h") may be given instead. StartAt is RFC 3339.
type CreateRequest struct {
	Roles    []string `json:"roles"`
	Seconds  int      `json:"seconds"`
	Duration string   `json:"duration,omitempty"`
	Reason   string   `json:"reason"`
	StartAt  string   `json:"start_at,omitempty"`
}

// apiCreate is POST /api/elevations: 201 with the stored request.
func (u *UI) apiCreate(c *gin.Context) {
	user, authn, ok := u.bearer(c, true)
	if !ok {
		return
	}
	var in CreateRequest
	if !readJSON(c, &in, false) {
		return
	}
	secs := in.Seconds
	if secs == 0 && in.Duration != "" {
		var err error
		if secs, err = ParseDuration(in.Duration); err != nil {
			u.apiFail(c, err)
			return
		}
	}
	if secs <= 0 {
		u.apiFail(c, invalid("give the duration in seconds (at least %d)", MinSeconds))
		return
	}
	start, err := ParseStart(in.StartAt)
	if err != nil {
		u.apiFail(c, err)
		return
	}
	roles := in.Roles
	if len(roles) > 0 && len(roles) <= MaxRoles*2 && containsRef(roles) {
		roles = resolveRefs(u.svc.Eligible(user), roles)
	}
	ctx := c.Request.Context()
	e, err := u.svc.Request(ctx, user, authn, Input{Roles: roles, Seconds: secs, Reason: in.Reason, StartAt: start,
		ClientIP: web.ClientIP(c)})
	if err != nil {
		u.apiFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, e)
}

// containsRef reports whether some role is named otherwise than by ARN.
func containsRef(roles []string) bool {
	for _, r := range roles {
		if !strings.HasPrefix(strings.TrimSpace(r), "arn:") {
			return true
		}
	}
	return false
}

// apiGet is GET /api/elevations/:id: the user's own request (anyone
// else's: 404).
func (u *UI) apiGet(c *gin.Context) {
	user, _, ok := u.bearer(c, false)
	if !ok {
		return
	}
	e, err := u.svc.Get(c.Request.Context(), c.Param("id"))
	if err == nil && e.UserID != user.ID {
		err = ErrForbidden
	}
	if err != nil {
		u.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// apiEnd is POST /api/elevations/:id/end: the user's own elevation ends
// now (a pending request is cancelled). Ending takes privilege away: no
// fresh second factor is needed.
func (u *UI) apiEnd(c *gin.Context) {
	user, _, ok := u.bearer(c, false)
	if !ok {
		return
	}
	e, err := u.svc.End(c.Request.Context(), user, false, c.Param("id"), web.ClientIP(c))
	if err != nil {
		u.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// apiPending is GET /api/elevations/pending: the requests the user may
// decide.
func (u *UI) apiPending(c *gin.Context) {
	user, _, ok := u.bearer(c, true)
	if !ok {
		return
	}
	es, err := u.svc.ToDecide(c.Request.Context(), user)
	if err != nil {
		u.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(es))
}

// DecideRequest is the body of POST /api/elevations/:id/approve|deny
// (optional).
type DecideRequest struct {
	Comment string `json:"comment"`
}

// apiDecide is POST /api/elevations/:id/approve and /deny.
func (u *UI) apiDecide(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		user, authn, ok := u.bearer(c, true)
		if !ok {
			return
		}
		var in DecideRequest
		if !readJSON(c, &in, true) {
			return
		}
		ctx := c.Request.Context()
		e, err := u.svc.Decide(ctx, user, authn, c.Param("id"), approve, in.Comment, web.ClientIP(c))
		if err != nil {
			u.apiFail(c, err)
			return
		}
		c.JSON(http.StatusOK, e)
	}
}

// apiAdmin returns the session of an admin for the admin API, or answers
// 401 / 403.
func (u *UI) apiAdmin(c *gin.Context) (store.Session, bool) {
	sess, ok := web.CurrentSession(c)
	if !ok {
		apiError(c, http.StatusUnauthorized, "login_required", "Sign in first.")
		return store.Session{}, false
	}
	if !u.isAdmin(sess.User) {
		apiError(c, http.StatusForbidden, "forbidden", "Only administrators may do this.")
		return store.Session{}, false
	}
	return sess, true
}

// apiAdminList is GET /admin/api/elevations?state=pending|active|history
// (default pending). "active" holds the approved elevations whose window
// has not ended (starts_at tells the planned ones).
func (u *UI) apiAdminList(c *gin.Context) {
	if _, ok := u.apiAdmin(c); !ok {
		return
	}
	ctx := c.Request.Context()
	var es []store.Elevation
	var err error
	switch c.Query("state") {
	case "", store.ElevationPending:
		es, err = u.svc.Pending(ctx)
	case "active":
		es, err = u.svc.Approved(ctx, 500)
	case "history":
		var recent []store.Elevation
		recent, err = u.svc.Recent(ctx, 200)
		now := u.now()
		for _, e := range recent {
			if e.State != store.ElevationPending && (e.State != store.ElevationApproved || !now.Before(e.EndsAt)) {
				es = append(es, e)
			}
		}
	default:
		apiError(c, http.StatusBadRequest, "invalid_request", "state must be pending, active or history.")
		return
	}
	if err != nil {
		u.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(es))
}

// apiAdminEnd is POST /admin/api/elevations/:id/end.
func (u *UI) apiAdminEnd(c *gin.Context) {
	sess, ok := u.apiAdmin(c)
	if !ok {
		return
	}
	e, err := u.svc.End(c.Request.Context(), sess.User, true, c.Param("id"), web.ClientIP(c))
	if err != nil {
		u.apiFail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}
