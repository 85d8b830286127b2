package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// The JSON API under /admin/api/ offers what the pages offer, with the same
// checks. Authentication is the browser session (cookie); CSRF needs the
// X-Warden-CSRF header with the token from GET /admin/api/csrf (or the
// warden-csrf meta tag of any admin page), and Go's CrossOriginProtection
// refuses cross-site requests; see docs and web/mount.go.
//
// Rules changes carry the version they were made against: the If-Match
// header ("3" or "\"3\"") or ?version=3 (PUT /admin/api/rules may also put
// "version" in the body). A stale version is 409, a missing one 428,
// validation problems 422 with "problems". Errors are
// {"error", "request_id", "problems"?}. Unknown JSON fields are refused.

// apiProblem is one problem in an error answer.
type apiProblem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

type apiError struct {
	Error     string       `json:"error"`
	RequestID string       `json:"request_id"`
	Problems  []apiProblem `json:"problems,omitempty"`
}

func (a *Admin) jsonError(c *gin.Context, status int, msg string, problems []apiProblem) {
	c.AbortWithStatusJSON(status, apiError{Error: msg, RequestID: web.RequestID(c.Request.Context()), Problems: problems})
}

// apiFailed maps an error to its answer; err's text is only logged.
func (a *Admin) apiFailed(c *gin.Context, err error) {
	var pe *problemsError
	switch {
	case errors.Is(err, store.ErrConflict):
		a.jsonError(c, http.StatusConflict, "The rules changed since the given version; reload them and apply the change again.", nil)
	case errors.Is(err, errNoObject), errors.Is(err, store.ErrNotFound):
		a.jsonError(c, http.StatusNotFound, "Not found.", nil)
	case errors.Is(err, errExists):
		a.jsonError(c, http.StatusConflict, "An object with this ID already exists.", []apiProblem{{Path: "id", Message: "already exists"}})
	case errors.As(err, &pe):
		ps := make([]apiProblem, len(pe.problems))
		for i, p := range pe.problems {
			ps[i] = apiProblem{p.Path, p.Message}
		}
		a.jsonError(c, http.StatusUnprocessableEntity, "The rules are not valid; nothing was saved.", ps)
	case errors.Is(err, store.ErrTooLarge):
		a.jsonError(c, http.StatusRequestEntityTooLarge, "The rule set is too large.", nil)
	case errors.Is(err, store.ErrUnavailable):
		a.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "admin api: store failed", slog.String("err", err.Error()))
		a.jsonError(c, http.StatusServiceUnavailable, "The data store (Redis) does not answer; try again in a moment.", nil)
	default:
		a.log.LogAttrs(c.Request.Context(), slog.LevelError, "admin api failed", slog.String("err", err.Error()))
		a.jsonError(c, http.StatusInternalServerError, "An internal error occurred.", nil)
	}
}

// decodeJSON reads one JSON value into dst: application/json only, unknown
// fields refused, within the route's body limit.
func (a *Admin) decodeJSON(c *gin.Context, dst any) bool {
	if mt, _, err := mime.ParseMediaType(c.Request.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		a.jsonError(c, http.StatusUnsupportedMediaType, "Send Content-Type: application/json.", nil)
		return false
	}
	body, err := io.ReadAll(c.Request.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		a.jsonError(c, http.StatusRequestEntityTooLarge, "The request body is too large.", nil)
		return false
	}
	if err != nil {
		a.jsonError(c, http.StatusBadRequest, "The request body could not be read.", nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		a.jsonError(c, http.StatusBadRequest, "The request body is not valid JSON for this call: "+jsonProblem(err), nil)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		a.jsonError(c, http.StatusBadRequest, "The request body holds more than one JSON value.", nil)
		return false
	}
	return true
}

// jsonProblem is a short, input-free description of a decoding error.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be of type %s", te.Field, te.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed"
}

// expectedVersion reads If-Match or ?version=; false answered 428/400.
func (a *Admin) expectedVersion(c *gin.Context) (int64, bool) {
	s := strings.Trim(strings.TrimPrefix(strings.TrimSpace(c.GetHeader("If-Match")), "W/"), `"`)
	if s == "" {
		s = c.Query("version")
	}
	if s == "" {
		a.jsonError(c, http.StatusPreconditionRequired, "Say which rules version the change is based on: If-Match header or ?version=.", nil)
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		a.jsonError(c, http.StatusBadRequest, "The version must be a non-negative integer.", nil)
		return 0, false
	}
	return v, true
}

func (a *Admin) apiCSRF(c *gin.Context) {
	tok, err := web.CSRFToken(c)
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok, "header": web.CSRFHeader})
}

func (a *Admin) apiGetRules(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.Header("ETag", strconv.Quote(strconv.FormatInt(cur.version.Version, 10)))
	c.JSON(http.StatusOK, gin.H{"version": cur.version.Version, "rules": cur.rs})
}

// putRulesBody is the body of PUT /admin/api/rules.
type putRulesBody struct {
	Version *int64          `json:"version"`
	Rules   rolemap.RuleSet `json:"rules"`
	Comment string          `json:"comment"`
}

func (a *Admin) apiPutRules(c *gin.Context) {
	var body putRulesBody
	if !a.decodeJSON(c, &body) {
		return
	}
	var expected int64
	if body.Version != nil && c.GetHeader("If-Match") == "" && c.Query("version") == "" {
		expected = *body.Version
	} else {
		var ok bool
		if expected, ok = a.expectedVersion(c); !ok {
			return
		}
	}
	v, before, after, err := a.replace(c, expected, body.Rules, body.Comment)
	if err != nil {
		a.record(c, "rules.replace", "rules", resultOf(err), "", "", nil)
		a.apiFailed(c, err)
		return
	}
	a.record(c, "rules.replace", "rules", "success", before, after, map[string]string{"version": strconv.FormatInt(v.Version, 10)})
	c.JSON(http.StatusOK, gin.H{"version": v.Version})
}

// resultOf is the audit result of a failed change.
func resultOf(err error) string {
	var pe *problemsError
	switch {
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, errNoObject):
		return "not_found"
	case errors.Is(err, errExists), errors.As(err, &pe):
		return "invalid"
	}
	return "error"
}

func (a *Admin) apiList(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		cur, err := a.current(c.Request.Context())
		if err != nil {
			a.apiFailed(c, err)
			return
		}
		var list any
		switch k {
		case kindAccount:
			list = nonNil(cur.rs.Accounts)
		case kindGrant:
			list = nonNil(cur.rs.Grants)
		case kindWorkload:
			list = nonNil(cur.rs.Workloads)
		default:
			list = nonNil(cur.rs.Patterns)
		}
		c.Header("ETag", strconv.Quote(strconv.FormatInt(cur.version.Version, 10)))
		c.JSON(http.StatusOK, gin.H{"version": cur.version.Version, k.key(): list})
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *Admin) apiGet(k kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		cur, err := a.current(c.Request.Context())
		if err != nil {
			a.apiFailed(c, err)
			return
		}
		i := find(&cur.rs, k, c.Param("id"))
		if i < 0 {
			a.jsonError(c, http.StatusNotFound, "There is no "+k.noun()+" with this ID.", nil)
			return
		}
		c.Header("ETag", strconv.Quote(strconv.FormatInt(cur.version.Version, 10)))
		c.JSON(http.StatusOK, gin.H{"version": cur.version.Version, kindName[k]: get(&cur.rs, k, i).value()})
	}
}

// decodeObject reads an object of kind k from the body.
func (a *Admin) decodeObject(c *gin.Context, k kind) (*object, bool) {
	o := &object{kind: k}
	var dst any
	switch k {
	case kindAccount:
		dst = &o.account
	case kindGrant:
		dst = &o.grant
	case kindWorkload:
		dst = &o.workload
	default:
		dst = &o.pattern
	}
	if !a.decodeJSON(c, dst) {
		return nil, false
	}
	return o, true
}

func (a *Admin) apiCreate(k kind) gin.HandlerFunc {
	return func(c *gin.Context) { a.apiChange(c, k, "", true, http.StatusCreated, ".create") }
}

func (a *Admin) apiUpdate(k kind) gin.HandlerFunc {
	return func(c *gin.Context) { a.apiChange(c, k, c.Param("id"), true, http.StatusOK, ".update") }
}

func (a *Admin) apiDelete(k kind) gin.HandlerFunc {
	return func(c *gin.Context) { a.apiChange(c, k, c.Param("id"), false, http.StatusOK, ".delete") }
}

func (a *Admin) apiChange(c *gin.Context, k kind, id string, withBody bool, okStatus int, verb string) {
	expected, ok := a.expectedVersion(c)
	if !ok {
		return
	}
	o := op{kind: k, id: id}
	if withBody {
		if o.obj, ok = a.decodeObject(c, k); !ok {
			return
		}
	}
	// A workload's client secret: ?generate_secret=true makes one and
	// answers it this once (apiSecret, workloads.go).
	secret, ok := a.apiSecret(c, k, o.obj)
	if !ok {
		return
	}
	ed, err := a.changeObject(c.Request.Context(), expected, o, changeMeta(c, c.Query("comment")))
	object := id
	if o.obj != nil {
		object = o.obj.id()
	}
	if err != nil {
		a.record(c, k.action()+verb, object, resultOf(err), "", "", nil)
		a.apiFailed(c, err)
		return
	}
	a.record(c, k.action()+verb, object, "success", objectJSON(ed.before), objectJSON(ed.after),
		map[string]string{"version": strconv.FormatInt(ed.version.Version, 10)})
	out := gin.H{"version": ed.version.Version}
	if ed.after != nil {
		out[kindName[k]] = ed.after.value()
	}
	if secret != "" {
		out["client_secret"] = secret
	}
	c.JSON(okStatus, out)
}

// evaluateBody: exactly one of Username and Groups.
type evaluateBody struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
}

type evaluateUser struct {
	Username    string           `json:"username"`
	DisplayName string           `json:"display_name,omitempty"`
	Groups      []identity.Group `json:"groups"`
}

func (a *Admin) apiEvaluate(c *gin.Context) {
	var body evaluateBody
	if !a.decodeJSON(c, &body) {
		return
	}
	body.Username = strings.TrimSpace(body.Username)
	if (body.Username == "") == (len(body.Groups) == 0) {
		a.jsonError(c, http.StatusUnprocessableEntity, "Give either username or groups.", []apiProblem{{Path: "username", Message: "either username or groups"}})
		return
	}
	if body.Username != "" {
		lv, status, msg, err := a.whoGetsUser(c, body.Username)
		switch {
		case err != nil:
			a.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "admin api: evaluate", slog.String("err", err.Error()))
			a.jsonError(c, status, msg, nil)
		case lv == nil:
			a.jsonError(c, status, msg, []apiProblem{{Path: "username", Message: msg}})
		case lv.Blocked != "":
			c.JSON(http.StatusOK, gin.H{"version": lv.Version, "blocked": lv.Blocked, "message": msg})
		case lv.NotFound:
			a.jsonError(c, http.StatusNotFound, msg, nil)
		default:
			c.JSON(http.StatusOK, gin.H{"version": lv.Version, "user": evaluateUser{lv.User.Username, lv.User.DisplayName, nonNil(lv.Groups)},
				"result": lv.Result})
		}
		return
	}
	groups, problems := parseGroupList(strings.Join(body.Groups, "\n"))
	if len(problems) > 0 || len(groups) == 0 {
		ps := []apiProblem{}
		for _, p := range problems {
			ps = append(ps, apiProblem{Path: "groups", Message: p})
		}
		a.jsonError(c, http.StatusUnprocessableEntity, "The group list has problems.", ps)
		return
	}
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": cur.version.Version, "groups": groups,
		"result": cur.engine.Evaluate(rolemap.Input{Groups: groups})})
}

func (a *Admin) apiTestGroup(c *gin.Context) {
	var body struct {
		Group string `json:"group"`
	}
	if !a.decodeJSON(c, &body) {
		return
	}
	body.Group = strings.TrimSpace(body.Group)
	if body.Group == "" || len(body.Group) > maxGroupName {
		a.jsonError(c, http.StatusUnprocessableEntity, "Give a group name.", []apiProblem{{Path: "group", Message: "required, at most 1024 bytes"}})
		return
	}
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	res := cur.engine.TestGroupResult(body.Group)
	c.JSON(http.StatusOK, gin.H{"version": cur.version.Version, "grants": nonNil(res.Grants), "eligible": nonNil(res.Eligible)})
}

func (a *Admin) apiSessions(c *gin.Context) {
	cursor, err := strconv.ParseUint(c.DefaultQuery("cursor", "0"), 10, 64)
	if err != nil {
		a.jsonError(c, http.StatusBadRequest, "The cursor must be a number.", nil)
		return
	}
	ss, next, err := a.listSessions(c, strings.TrimSpace(c.Query("user")), cursor)
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"sessions": nonNil(ss), "next_cursor": strconv.FormatUint(next, 10)})
}

func (a *Admin) apiRevokeSession(c *gin.Context) {
	key := c.Param("key")
	err := a.sessions.DeleteByKey(c.Request.Context(), key)
	if err != nil {
		a.record(c, "session.revoke", key, map[bool]string{true: "not_found", false: "error"}[errors.Is(err, store.ErrNotFound)], "", "", nil)
		a.apiFailed(c, err)
		return
	}
	a.record(c, "session.revoke", key, "success", "", "", nil)
	c.Status(http.StatusNoContent)
}

func (a *Admin) apiRevokeUser(c *gin.Context) {
	res, err := a.revokeUser(c, c.Param("id"), "")
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": res.Total(), "sessions": res.Sessions, "grants": res.Grants, "device_codes": res.Devices, "elevations": res.Elevations})
}

func (a *Admin) apiAudit(c *gin.Context) {
	_, q, fields := parseAuditQuery(c.Query)
	if len(fields) > 0 {
		var ps []apiProblem
		for f, msgs := range fields {
			for _, m := range msgs {
				ps = append(ps, apiProblem{f, m})
			}
		}
		a.jsonError(c, http.StatusUnprocessableEntity, "The filter has problems.", ps)
		return
	}
	evs, next, err := a.auditLog.Query(c.Request.Context(), q)
	if errors.Is(err, store.ErrBadQuery) {
		a.jsonError(c, http.StatusUnprocessableEntity, "This filter cannot be used: "+publicQueryError(err), nil)
		return
	}
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": nonNil(evs), "next_cursor": next})
}

func (a *Admin) apiHistory(c *gin.Context) {
	before, err1 := strconv.ParseInt(c.DefaultQuery("before", "0"), 10, 64)
	limit, err2 := strconv.Atoi(c.DefaultQuery("limit", "20"))
	if err1 != nil || err2 != nil || before < 0 || limit < 1 || limit > 1000 {
		a.jsonError(c, http.StatusBadRequest, "before must be a version number, limit 1 to 1000.", nil)
		return
	}
	vs, err := a.rules.History(c.Request.Context(), before, limit)
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"versions": nonNil(vs)})
}

func (a *Admin) apiVersion(c *gin.Context) {
	n, ok := parseVersion(c.Param("version"))
	if !ok {
		a.jsonError(c, http.StatusNotFound, "There is no such rules version.", nil)
		return
	}
	v, doc, err := a.rules.Get(c.Request.Context(), n)
	if err != nil {
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": v, "document": string(doc)})
}

func (a *Admin) apiRestore(c *gin.Context) {
	n, ok := parseVersion(c.Param("version"))
	if !ok {
		a.jsonError(c, http.StatusNotFound, "There is no such rules version.", nil)
		return
	}
	expected, ok := a.expectedVersion(c)
	if !ok {
		return
	}
	v, err := a.restore(c, expected, n, c.Query("comment"))
	if err != nil {
		a.record(c, "rules.restore", "v"+strconv.FormatInt(n, 10), resultOf(err), "", "", nil)
		a.apiFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": v.Version, "restored_from": n})
}
