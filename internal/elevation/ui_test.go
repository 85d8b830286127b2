package elevation_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
	"github.com/wardenidp/warden/internal/testenv"
	"github.com/wardenidp/warden/internal/web"
)

// The elevation pages and JSON API end to end: the real web server, the
// real session and elevation stores on the test Redis (REDIS_ADDR), the
// real rules engine with eligible roles, and fake token and directory
// look-ups.

const (
	uiOrigin = "http://warden.test"

	uiProdAdmin    = "arn:aws:iam::111122223333:role/Admin"
	uiStagingAdmin = "arn:aws:iam::444455556666:role/Admin"
	uiStagingDebug = "arn:aws:iam::444455556666:role/Debug"
	uiProdReadOnly = "arn:aws:iam::111122223333:role/ReadOnly"
)

const uiRulesYAML = `
accounts:
  - {id: "111122223333", name: prod, saml_provider: warden}
  - {id: "444455556666", name: staging, saml_provider: warden}
grants:
  - id: ops
    group: ops
    roles:
      - arn: arn:aws:iam::111122223333:role/Admin
        max_session_seconds: 7200
        access: eligible
        max_duration: 2h
        approvers: approvers
        reason_pattern: '^INC-[0-9]+$'
      - arn: arn:aws:iam::444455556666:role/Admin
        access: eligible
        max_duration: 1h
        approvers: approvers
      - arn: arn:aws:iam::444455556666:role/Debug
        access: eligible
      - arn: arn:aws:iam::111122223333:role/ReadOnly
`

func uiGroup(n string) identity.Group {
	return identity.Group{Name: n, DN: "cn=" + n + ",dc=t", Direct: true}
}

var (
	uiBob   = identity.User{ID: "id-bob", Username: "bob", Groups: []identity.Group{uiGroup("ops")}}
	uiAlice = identity.User{ID: "id-alice", Username: "alice", Groups: []identity.Group{uiGroup("approvers")}}
	uiCarol = identity.User{ID: "id-carol", Username: "carol", Groups: []identity.Group{uiGroup("approvers"), uiGroup("ops")}}
	uiDave  = identity.User{ID: "id-dave", Username: "dave"}
	uiEve   = identity.User{ID: "id-eve", Username: "eve", Groups: []identity.Group{uiGroup("admins")}}
)

type uiClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *uiClock) Now() time.Time                       { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *uiClock) Sleep(context.Context, time.Duration) {}
func (c *uiClock) Advance(d time.Duration)              { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type uiAudit struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (a *uiAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	a.evs = append(a.evs, e)
	a.mu.Unlock()
}

func (a *uiAudit) count(action, result string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.evs {
		if e.Action == action && e.Result == result {
			n++
		}
	}
	return n
}

type uiDir struct{}

func (uiDir) Authenticate(context.Context, string, string) (identity.User, error) {
	return identity.User{}, identity.ErrInvalidCredentials
}

// tokenInfo is what a fake access token stands for.
type uiTokenInfo struct {
	user  identity.User
	authn identity.Authn
}

type uiEnv struct {
	t        *testing.T
	h        http.Handler
	clk      *uiClock
	svc      *elevation.Service
	elev     *store.Elevations
	sessions *store.Sessions
	audit    *uiAudit
	logs     *bytes.Buffer
	holder   *rolemap.Holder

	mu     sync.Mutex
	tokens map[string]uiTokenInfo
	gone   map[string]bool // user IDs the directory no longer knows
	down   bool            // the directory does not answer
}

type uiLockedBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l uiLockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newUIEnv(t *testing.T) *uiEnv {
	t.Helper()
	testenv.Require(t, "REDIS_ADDR")
	st := storetest.Open(t, "elevation-ui")
	clk := &uiClock{now: time.Now().UTC().Truncate(time.Second)}
	rs, err := rolemap.ParseYAML([]byte(uiRulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rolemap.Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	holder := &rolemap.Holder{}
	holder.Store(eng)
	rec := &uiAudit{}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(uiLockedBuf{&sync.Mutex{}, logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	elev := store.NewElevations(st, clk.Now)
	svc, err := elevation.New(elevation.Deps{Store: elev, Rules: holder, Audit: rec, Logger: logger, Now: clk.Now,
		StepUpMaxAge: 5 * time.Minute, PublicURL: uiOrigin})
	if err != nil {
		t.Fatal(err)
	}
	e := &uiEnv{t: t, clk: clk, svc: svc, elev: elev, audit: rec, logs: logs, holder: holder,
		tokens: map[string]uiTokenInfo{}, gone: map[string]bool{}}
	admins := identity.NewGroupMatcher([]string{"admins"})
	ui, err := elevation.NewUI(elevation.UIDeps{Service: svc, Token: e.token, Users: e.lookup, IsAdmin: admins.Match,
		Logger: logger, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := store.NewSessions(st, store.SessionConfig{AbsoluteLifetime: 24 * time.Hour, IdleTimeout: 8 * time.Hour}, clk.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 50, MaxFailuresPerIP: 500, Window: time.Minute}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{PublicURL: uiOrigin, LoginMinDuration: time.Millisecond}, web.Deps{
		Directory: uiDir{}, Sessions: sessions, Limiter: limiter, CSRFKey: uiCSRFKey,
		Logger: logger, Clock: clk, Audit: rec, Mounts: []web.Mount{ui}})
	if err != nil {
		t.Fatal(err)
	}
	e.h, e.sessions = srv.Handler(), sessions
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return e
}

var uiCSRFKey = bytes.Repeat([]byte{7}, 32)

var uiErrBadToken = errors.New("fake: invalid access token")

func (e *uiEnv) token(_ context.Context, tok string) (identity.User, identity.Authn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ti, ok := e.tokens[tok]
	if !ok {
		return identity.User{}, identity.Authn{}, uiErrBadToken
	}
	return ti.user, ti.authn, nil
}

func (e *uiEnv) lookup(_ context.Context, u identity.User, _ string) (identity.User, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.down:
		return identity.User{}, fmt.Errorf("fake: %w", identity.ErrDirectoryUnavailable)
	case e.gone[u.ID]:
		return identity.User{}, fmt.Errorf("fake: %w", identity.ErrUserNotFound)
	}
	return u, nil
}

// freshAuthn is a sign-in with a second factor given just now.
func (e *uiEnv) freshAuthn() identity.Authn {
	now := e.clk.Now()
	return identity.Authn{Method: identity.MethodTOTP, Time: now, FactorTime: now}
}

// cli returns an access token of u whose sign-in is authn.
func (e *uiEnv) cli(u identity.User, authn identity.Authn) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	tok := fmt.Sprintf("tok-%s-%d", u.Username, len(e.tokens))
	e.tokens[tok] = uiTokenInfo{u, authn}
	return tok
}

type uiResp struct {
	code int
	body string
	hdr  http.Header
	json map[string]any
}

func (e *uiEnv) api(tok, method, path string, body any) uiResp {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "198.51.100.7:5000"
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	out := uiResp{code: rec.Code, body: rec.Body.String(), hdr: rec.Header()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(rec.Body.Bytes(), &out.json)
	}
	return out
}

// elevationOf decodes an Elevation answer.
func uiElevationOf(t *testing.T, r uiResp) store.Elevation {
	t.Helper()
	var el store.Elevation
	if err := json.Unmarshal([]byte(r.body), &el); err != nil {
		t.Fatalf("not an elevation: %v: %s", err, r.body)
	}
	return el
}

// wantError checks an API error answer: status, code, a request ID.
func uiWantError(t *testing.T, r uiResp, status int, code string) {
	t.Helper()
	if r.code != status || r.json["error"] != code {
		t.Fatalf("got %d %s, want %d %s", r.code, r.body, status, code)
	}
	if id, _ := r.json["request_id"].(string); id == "" {
		t.Errorf("error without a request ID: %s", r.body)
	}
	if d, _ := r.json["error_description"].(string); d == "" {
		t.Errorf("error without a description: %s", r.body)
	}
}

// stored counts every request in Redis (the user's lists of the users
// here and the pending list).
func (e *uiEnv) stored(t *testing.T) int {
	t.Helper()
	n := 0
	for _, u := range []identity.User{uiBob, uiAlice, uiCarol, uiDave, uiEve} {
		es, err := e.elev.ListUser(t.Context(), u.ID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
	}
	return n
}

func TestAPIRequestApproveEnd(t *testing.T) {
	e := newUIEnv(t)
	bobTok := e.cli(uiBob, e.freshAuthn())
	aliceTok := e.cli(uiAlice, e.freshAuthn())

	// What bob may request.
	r := e.api(bobTok, "GET", "/api/elevations", nil)
	if r.code != http.StatusOK {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	var mine elevation.Mine
	if err := json.Unmarshal([]byte(r.body), &mine); err != nil {
		t.Fatal(err)
	}
	if len(mine.Eligible) != 3 || mine.Elevations == nil || len(mine.Elevations) != 0 {
		t.Fatalf("eligible %+v elevations %v", mine.Eligible, mine.Elevations)
	}
	var pa elevation.EligibleRole
	for _, g := range mine.Eligible {
		if g.RoleARN == uiProdAdmin {
			pa = g
		}
		if g.RoleARN == uiProdReadOnly {
			t.Error("a standing role listed as eligible")
		}
	}
	if pa.MaxSeconds != 7200 || pa.Approvers != "approvers" || !pa.RequireReason || pa.ReasonPattern != "^INC-[0-9]+$" ||
		pa.AccountName != "prod" || pa.RoleName != "Admin" || pa.Active != nil {
		t.Errorf("prod Admin: %+v", pa)
	}

	// Request: pending, one role in two accounts, by account/role name too.
	r = e.api(bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdAdmin, "staging/Admin"},
		"seconds": 3600, "reason": "INC-123"})
	if r.code != http.StatusCreated {
		t.Fatalf("request: %d %s", r.code, r.body)
	}
	req := uiElevationOf(t, r)
	if req.State != store.ElevationPending || len(req.ID) != 32 || req.Username != "bob" || req.Seconds != 3600 ||
		fmt.Sprint(req.Roles) != fmt.Sprint([]string{uiProdAdmin, uiStagingAdmin}) || req.ClientIP != "198.51.100.7" {
		t.Fatalf("request %+v", req)
	}
	if r.json["state"] != "pending" || r.json["reason"] != "INC-123" || r.json["deadline"] == nil {
		t.Errorf("request JSON %s", r.body)
	}

	// The approver sees it; the requester has nothing to decide.
	r = e.api(aliceTok, "GET", "/api/elevations/pending", nil)
	var pend elevation.List
	if err := json.Unmarshal([]byte(r.body), &pend); err != nil || r.code != 200 || len(pend.Elevations) != 1 || pend.Elevations[0].ID != req.ID {
		t.Fatalf("alice's pending: %d %s", r.code, r.body)
	}
	if r = e.api(bobTok, "GET", "/api/elevations/pending", nil); r.code != 200 || r.body != `{"elevations":[]}` {
		t.Errorf("bob's pending: %d %s", r.code, r.body)
	}

	// Approve.
	r = e.api(aliceTok, "POST", "/api/elevations/"+req.ID+"/approve", map[string]string{"comment": "go ahead"})
	if r.code != http.StatusOK {
		t.Fatalf("approve: %d %s", r.code, r.body)
	}
	ok := uiElevationOf(t, r)
	if ok.State != store.ElevationApproved || ok.Decider != "alice" || ok.Comment != "go ahead" ||
		!ok.StartsAt.Equal(e.clk.Now()) || !ok.EndsAt.Equal(e.clk.Now().Add(time.Hour)) {
		t.Fatalf("approved %+v", ok)
	}
	if e.audit.count("elevation.approved", "success") != 1 || e.audit.count("elevation.request", "success") != 1 {
		t.Errorf("audit: %+v", e.audit.evs)
	}

	// The requester reads it, and sees the roles active.
	if r = e.api(bobTok, "GET", "/api/elevations/"+req.ID, nil); r.code != 200 || uiElevationOf(t, r).State != store.ElevationApproved {
		t.Fatalf("get: %d %s", r.code, r.body)
	}
	r = e.api(bobTok, "GET", "/api/elevations", nil)
	mine = elevation.Mine{}
	_ = json.Unmarshal([]byte(r.body), &mine)
	active := 0
	for _, g := range mine.Eligible {
		if g.Active != nil && g.Active.ID == req.ID {
			active++
		}
	}
	if active != 2 || len(mine.Elevations) != 1 {
		t.Errorf("after approval: %s", r.body)
	}
	// The service grants the roles at hand-off.
	res := e.holder.Load().Evaluate(rolemap.InputFromUser(uiBob))
	if err := e.svc.Apply(t.Context(), uiBob, &res); err != nil {
		t.Fatal(err)
	}
	elevated := 0
	for _, g := range res.Grants {
		if g.Elevation != nil && g.Elevation.ID == req.ID {
			elevated++
		}
	}
	if elevated != 2 {
		t.Errorf("grants after approval: %+v", res.Grants)
	}

	// Admins list it as active.
	// End it: once.
	r = e.api(bobTok, "POST", "/api/elevations/"+req.ID+"/end", nil)
	if r.code != 200 || uiElevationOf(t, r).State != store.ElevationEnded || uiElevationOf(t, r).EndedBy != "bob" {
		t.Fatalf("end: %d %s", r.code, r.body)
	}
	uiWantError(t, e.api(bobTok, "POST", "/api/elevations/"+req.ID+"/end", nil), http.StatusConflict, "not_active")
	// Deciding it again: already decided.
	uiWantError(t, e.api(aliceTok, "POST", "/api/elevations/"+req.ID+"/deny", nil), http.StatusConflict, "already_decided")
}

func TestAPISelfService(t *testing.T) {
	e := newUIEnv(t)
	tok := e.cli(uiBob, e.freshAuthn())
	r := e.api(tok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "duration": "30m"})
	if r.code != http.StatusCreated {
		t.Fatalf("%d %s", r.code, r.body)
	}
	el := uiElevationOf(t, r)
	if el.State != store.ElevationApproved || el.Seconds != 1800 || !strings.Contains(el.Decider, "self-service") {
		t.Fatalf("self-service: %+v", el)
	}
}

func TestAPIRefusals(t *testing.T) {
	e := newUIEnv(t)
	bobTok := e.cli(uiBob, e.freshAuthn())
	aliceTok := e.cli(uiAlice, e.freshAuthn())
	daveTok := e.cli(uiDave, e.freshAuthn())
	r := e.api(bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdAdmin}, "seconds": 3600, "reason": "INC-7"})
	if r.code != http.StatusCreated {
		t.Fatalf("%d %s", r.code, r.body)
	}
	id := uiElevationOf(t, r).ID
	before := e.stored(t)

	bad := []struct {
		name   string
		tok    string
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"duration over the maximum", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdAdmin}, "seconds": 3 * 3600, "reason": "INC-1"}, 400, "invalid_request"},
		{"one role's maximum is lower", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdAdmin, uiStagingAdmin}, "seconds": 7200, "reason": "INC-1"}, 400, "invalid_request"},
		{"duration too short", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 60}, 400, "invalid_request"},
		{"no duration", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}}, 400, "invalid_request"},
		{"negative duration", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": -5}, 400, "invalid_request"},
		{"bad duration text", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "duration": "forever"}, 400, "invalid_request"},
		{"reason not matching", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdAdmin}, "seconds": 3600, "reason": "because"}, 400, "invalid_request"},
		{"reason missing", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdAdmin}, "seconds": 3600}, 400, "invalid_request"},
		{"reason with a newline", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 3600, "reason": "a\nb"}, 400, "invalid_request"},
		{"start in the past", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 3600, "start_at": "2001-01-01T00:00:00Z"}, 400, "invalid_request"},
		{"start unreadable", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 3600, "start_at": "tomorrow"}, 400, "invalid_request"},
		{"no roles", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{}, "seconds": 3600}, 400, "invalid_request"},
		{"not JSON", bobTok, "POST", "/api/elevations", "roles=x", 400, "invalid_request"},
		{"wrong type", bobTok, "POST", "/api/elevations", `{"roles":"x","seconds":900}`, 400, "invalid_request"},
		{"two values", bobTok, "POST", "/api/elevations", `{"roles":["x"],"seconds":900} {}`, 400, "invalid_request"},
		{"empty body", bobTok, "POST", "/api/elevations", "", 400, "invalid_request"},
		{"standing role", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiProdReadOnly}, "seconds": 3600}, 403, "not_eligible"},
		{"unknown role", bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{"arn:aws:iam::999999999999:role/Root"}, "seconds": 3600}, 403, "not_eligible"},
		{"someone else eligible", daveTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 3600}, 403, "not_eligible"},
		{"self-approval", bobTok, "POST", "/api/elevations/" + id + "/approve", nil, 403, "self_approval"},
		{"not an approver", daveTok, "POST", "/api/elevations/" + id + "/approve", map[string]string{"comment": "sure"}, 403, "not_approver"},
		{"someone else's request", daveTok, "GET", "/api/elevations/" + id, nil, 404, "not_found"},
		{"an approver reading it (own only)", aliceTok, "GET", "/api/elevations/" + id, nil, 404, "not_found"},
		{"ending someone else's", daveTok, "POST", "/api/elevations/" + id + "/end", nil, 404, "not_found"},
		{"unknown ID", bobTok, "GET", "/api/elevations/0123456789abcdef0123456789abcdef", nil, 404, "not_found"},
		{"malformed ID", bobTok, "GET", "/api/elevations/not-an-id", nil, 404, "not_found"},
		{"comment too long", aliceTok, "POST", "/api/elevations/" + id + "/deny", map[string]string{"comment": strings.Repeat("x", 600)}, 400, "invalid_request"},
		{"decide body not JSON", aliceTok, "POST", "/api/elevations/" + id + "/deny", "no", 400, "invalid_request"},
		{"no token", "", "GET", "/api/elevations", nil, 401, "invalid_token"},
		{"bad token", "nope", "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 3600}, 401, "invalid_token"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := e.api(c.tok, c.method, c.path, c.body)
			uiWantError(t, r, c.status, c.code)
			if c.code == "invalid_token" && !strings.Contains(r.hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", r.hdr.Get("WWW-Authenticate"))
			}
		})
	}
	if n := e.stored(t); n != before {
		t.Errorf("%d requests stored after the refusals, want %d", n, before)
	}
	got, err := e.svc.Get(t.Context(), id)
	if err != nil || got.State != store.ElevationPending {
		t.Errorf("the request changed: %+v %v", got, err)
	}
	if e.audit.count("elevation.request", "not_eligible") == 0 || e.audit.count("elevation.decide", "self_approval") != 1 {
		t.Error("refusals not audited")
	}
	if strings.Contains(e.logs.String(), "tok-") {
		t.Error("a token in the logs")
	}
}

func TestAPIStepUp(t *testing.T) {
	e := newUIEnv(t)
	bobFresh := e.cli(uiBob, e.freshAuthn())
	r := e.api(bobFresh, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingAdmin}, "seconds": 1800})
	if r.code != 201 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	id := uiElevationOf(t, r).ID
	stale := e.freshAuthn()
	e.clk.Advance(6 * time.Minute) // the factor is older than 5 min now
	before := e.stored(t)
	for name, tok := range map[string]string{
		"stale factor":  e.cli(uiBob, stale),
		"password only": e.cli(uiBob, identity.PasswordOnly(e.clk.Now())),
	} {
		t.Run(name, func(t *testing.T) {
			r := e.api(tok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingAdmin}, "seconds": 1800})
			uiWantError(t, r, http.StatusUnauthorized, "insufficient_user_authentication")
			if r.json["max_age"] != "300" {
				t.Errorf("max_age %v", r.json["max_age"])
			}
			if h := r.hdr.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_user_authentication"`) || !strings.Contains(h, "max_age=300") {
				t.Errorf("WWW-Authenticate %q", h)
			}
		})
	}
	// Deciding needs it as well; reading and ending do not.
	aliceStale := e.cli(uiAlice, stale)
	uiWantError(t, e.api(aliceStale, "POST", "/api/elevations/"+id+"/approve", nil), http.StatusUnauthorized, "insufficient_user_authentication")
	if r := e.api(aliceStale, "GET", "/api/elevations/pending", nil); r.code != 200 || !strings.Contains(r.body, id) {
		t.Errorf("pending with a stale factor: %d %s", r.code, r.body)
	}
	if n := e.stored(t); n != before {
		t.Errorf("stored %d, want %d", n, before)
	}
	if got, _ := e.svc.Get(t.Context(), id); got.State != store.ElevationPending {
		t.Errorf("state %s", got.State)
	}
	if r := e.api(bobFresh, "POST", "/api/elevations/"+id+"/end", nil); r.code != 200 {
		t.Errorf("cancel with a stale factor: %d %s", r.code, r.body)
	}
}

func TestAPIConcurrentDecisions(t *testing.T) {
	e := newUIEnv(t)
	bobTok := e.cli(uiBob, e.freshAuthn())
	aliceTok, carolTok := e.cli(uiAlice, e.freshAuthn()), e.cli(uiCarol, e.freshAuthn())
	for round := range 5 {
		r := e.api(bobTok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingAdmin}, "seconds": 900})
		if r.code != 201 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		id := uiElevationOf(t, r).ID
		var wg sync.WaitGroup
		results := make([]uiResp, 2)
		for i, act := range []struct{ tok, path string }{{aliceTok, "/approve"}, {carolTok, "/deny"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.api(act.tok, "POST", "/api/elevations/"+id+act.path, map[string]string{"comment": "round " + fmt.Sprint(round)})
			}()
		}
		wg.Wait()
		codes := []int{results[0].code, results[1].code}
		if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
			t.Fatalf("round %d: %d %s / %d %s", round, codes[0], results[0].body, codes[1], results[1].body)
		}
		for _, r := range results {
			if r.code == 409 && r.json["error"] != "already_decided" {
				t.Errorf("loser: %s", r.body)
			}
		}
		got, _ := e.svc.Get(t.Context(), id)
		winner := results[0]
		if winner.code != 200 {
			winner = results[1]
		}
		if got.State != uiElevationOf(t, winner).State {
			t.Errorf("stored %s, answered %s", got.State, winner.body)
		}
	}
}

func TestAPIDirectory(t *testing.T) {
	e := newUIEnv(t)
	tok := e.cli(uiBob, e.freshAuthn())
	e.mu.Lock()
	e.down = true
	e.mu.Unlock()
	uiWantError(t, e.api(tok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 900}),
		http.StatusServiceUnavailable, "temporarily_unavailable")
	e.mu.Lock()
	e.down, e.gone[uiBob.ID] = false, true
	e.mu.Unlock()
	uiWantError(t, e.api(tok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 900}),
		http.StatusUnauthorized, "invalid_token")
	if n := e.stored(t); n != 0 {
		t.Errorf("%d stored", n)
	}
}

// ---- the pages ----

type uiBrowser struct {
	t       *testing.T
	e       *uiEnv
	cookies map[string]string
}

// signIn is a browser whose session gave its second factor at factorAt.
func (e *uiEnv) signIn(t *testing.T, u identity.User, factorAt time.Time) *uiBrowser {
	t.Helper()
	authn := identity.Authn{Method: identity.MethodTOTP, Time: factorAt, FactorTime: factorAt}
	tok, _, err := e.sessions.Create(t.Context(), u, store.SessionMeta{ClientIP: "203.0.113.5", Authn: authn})
	if err != nil {
		t.Fatal(err)
	}
	return &uiBrowser{t: t, e: e, cookies: map[string]string{web.DefaultCookieName: tok}}
}

func (b *uiBrowser) do(req *http.Request) *httptest.ResponseRecorder {
	b.t.Helper()
	req.RemoteAddr = "203.0.113.5:4000"
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	b.e.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return rec
}

func (b *uiBrowser) get(path string) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest(http.MethodGet, path, nil))
}

// csrf is the browser's CSRF token (internal/web's signed double submit:
// HMAC of the CSRF cookie and the session cookie), after a page set the
// cookie. Pages without a form carry none to read.
func (b *uiBrowser) csrf() string {
	b.t.Helper()
	if b.cookies["warden_csrf"] == "" {
		b.get("/elevations")
	}
	m := hmac.New(sha256.New, uiCSRFKey)
	m.Write([]byte("warden-csrf-v1\x00"))
	m.Write([]byte(b.cookies["warden_csrf"]))
	m.Write([]byte{0})
	m.Write([]byte(b.cookies[web.DefaultCookieName]))
	tok := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if page := b.get("/elevations/new").Body.String(); strings.Contains(page, `name="csrf_token"`) &&
		!strings.Contains(page, `name="csrf_token" value="`+tok+`"`) {
		b.t.Fatal("the test's CSRF token differs from the page's")
	}
	return tok
}

// post sends a form with the browser's CSRF token.
func (b *uiBrowser) post(path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	form.Set("csrf_token", b.csrf())
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func uiWantRedirect(t *testing.T, rec *httptest.ResponseRecorder, prefix string) string {
	t.Helper()
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("got %d to %q, want 303 to %s…\n%s", rec.Code, loc, prefix, rec.Body.String())
	}
	return loc
}

func TestPagesRequestApprove(t *testing.T) {
	e := newUIEnv(t)
	now := e.clk.Now()
	b := e.signIn(t, uiBob, now)
	a := e.signIn(t, uiAlice, now)

	// The form: the eligible roles, the one asked for ticked.
	rec := b.get("/elevations/new?role=" + url.QueryEscape(uiProdAdmin) + "&role=" + url.QueryEscape("arn:aws:iam::999999999999:role/X"))
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("form: %d %s", rec.Code, body)
	}
	for _, s := range []string{`value="` + uiProdAdmin + `" checked`, `value="` + uiStagingAdmin + `">`, `value="` + uiStagingDebug + `">`,
		"up to 2h", "self-service", "approved by <em>approvers</em>", "^INC-[0-9]&#43;$", `type="datetime-local"`, "UTC",
		`id="unknown-roles"`, `<option value="1h">`, `name="csrf_token"`} {
		if !strings.Contains(body, s) {
			t.Errorf("form lacks %q", s)
		}
	}
	if strings.Contains(body, uiProdReadOnly) {
		t.Error("a standing role on the form")
	}
	bad := regexp.MustCompile(`(?i)<script>|<style|\sstyle=|\son[a-z]+=|javascript:`)
	if m := bad.FindString(body); m != "" {
		t.Errorf("form has %q", m)
	}

	// A bad request: 400, the form again with the message, nothing stored.
	rec = b.post("/elevations", url.Values{"role": {uiProdAdmin}, "duration": {"3h"}, "reason": {"INC-9"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "over the maximum") ||
		!strings.Contains(rec.Body.String(), `value="INC-9"`) || !strings.Contains(rec.Body.String(), "Request ID") {
		t.Fatalf("over the maximum: %d %s", rec.Code, rec.Body.String())
	}
	rec = b.post("/elevations", url.Values{"role": {uiProdAdmin}, "duration": {"1h"}, "reason": {"no ticket"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "must match") {
		t.Fatalf("pattern: %d", rec.Code)
	}
	rec = b.post("/elevations", url.Values{"role": {uiProdReadOnly}, "duration": {"1h"}})
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not eligible") {
		t.Fatalf("standing role: %d", rec.Code)
	}
	rec = b.post("/elevations", url.Values{"role": {uiStagingDebug}, "duration": {"1h"}, "start": {"someday"}})
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("start: %d", rec.Code)
	}
	if n := e.stored(t); n != 0 {
		t.Fatalf("%d stored after bad requests", n)
	}

	// The request: one role in two accounts, a planned start with an offset.
	start := now.Add(2 * time.Hour).Truncate(time.Minute)
	rec = b.post("/elevations", url.Values{"role": {uiProdAdmin, uiStagingAdmin}, "duration": {"45m"}, "reason": {"INC-77"},
		"start": {start.In(time.FixedZone("", 3600)).Format("2006-01-02T15:04-07:00")}})
	loc := uiWantRedirect(t, rec, "/elevations/")
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/elevations/"), "?done=requested")
	got, err := e.svc.Get(t.Context(), id)
	if err != nil || got.State != store.ElevationPending || got.Seconds != 2700 || !got.StartAt.Equal(start) || len(got.Roles) != 2 {
		t.Fatalf("stored %+v %v", got, err)
	}
	if body := b.get(loc).Body.String(); !strings.Contains(body, "An approver decides it") || !strings.Contains(body, "INC-77") {
		t.Errorf("request page:\n%s", body)
	}

	// The approver's list, then the decision.
	body = a.get("/elevations").Body.String()
	for _, s := range []string{`id="to-decide"`, `data-id="` + id + `"`, "bob", "INC-77", "45m", "203.0.113.5", "/elevations/" + id + "/deny"} {
		if !strings.Contains(body, s) {
			t.Errorf("alice's list lacks %q", s)
		}
	}
	if body := b.get("/elevations").Body.String(); strings.Contains(body, `id="to-decide"`) || !strings.Contains(body, `id="mine-pending"`) {
		t.Errorf("bob's list:\n%s", body)
	}
	rec = b.post("/elevations/"+id+"/approve", url.Values{})
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "own request") {
		t.Errorf("self-approval: %d", rec.Code)
	}
	d := e.signIn(t, uiDave, now)
	if rec := d.post("/elevations/"+id+"/approve", url.Values{}); rec.Code != http.StatusForbidden {
		t.Errorf("not an approver: %d", rec.Code)
	}
	if rec := d.get("/elevations/" + id); rec.Code != http.StatusNotFound {
		t.Errorf("someone else's request: %d", rec.Code)
	}
	uiWantRedirect(t, a.post("/elevations/"+id+"/approve", url.Values{"comment": {"ok"}}), "/elevations/"+id+"?done=approved")
	got, _ = e.svc.Get(t.Context(), id)
	if got.State != store.ElevationApproved || !got.StartsAt.Equal(start) || got.Decider != "alice" {
		t.Fatalf("after approval %+v", got)
	}
	if body := b.get("/elevations").Body.String(); !strings.Contains(body, `id="mine-active"`) || !strings.Contains(body, "scheduled") {
		t.Errorf("bob's list after approval:\n%s", body)
	}
	e.clk.Advance(2 * time.Hour)
	if body := b.get("/elevations/" + id).Body.String(); !strings.Contains(body, "state-active") || !strings.Contains(body, "45 min left") {
		t.Errorf("active page:\n%s", body)
	}

	// Admins: the page lists it active; others get 403.
	admin := e.signIn(t, uiEve, e.clk.Now())
	body = admin.get("/admin/elevations").Body.String()
	if !strings.Contains(body, `id="admin-active"`) || !strings.Contains(body, `data-id="`+id+`"`) {
		t.Errorf("admin page:\n%s", body)
	}
	if rec := b.get("/admin/elevations"); rec.Code != http.StatusForbidden {
		t.Errorf("admin page for bob: %d", rec.Code)
	}
	if rec := b.post("/admin/elevations/"+id+"/end", url.Values{}); rec.Code != http.StatusForbidden {
		t.Errorf("admin end by bob: %d", rec.Code)
	}
	uiWantRedirect(t, admin.post("/admin/elevations/"+id+"/end", url.Values{}), "/admin/elevations?done=ended")
	got, _ = e.svc.Get(t.Context(), id)
	if got.State != store.ElevationEnded || got.EndedBy != "eve (admin)" {
		t.Fatalf("after admin end %+v", got)
	}
	body = admin.get("/admin/elevations").Body.String()
	if !strings.Contains(body, `id="admin-history"`) || !strings.Contains(body, "eve (admin)") || strings.Contains(body, `id="admin-active"`) {
		t.Errorf("admin page after end:\n%s", body)
	}
}

func TestPagesStepUp(t *testing.T) {
	e := newUIEnv(t)
	stale := e.clk.Now()
	e.clk.Advance(10 * time.Minute)
	b := e.signIn(t, uiBob, stale)
	// The form asks for the factor first, and comes back to itself.
	loc := uiWantRedirect(t, b.get("/elevations/new?role="+url.QueryEscape(uiStagingDebug)), web.FactorPath+"?")
	u, _ := url.Parse(loc)
	if u.Query().Get("fresh") != "1" || u.Query().Get("next") != "/elevations/new?role="+url.QueryEscape(uiStagingDebug) {
		t.Errorf("factor URL %s", loc)
	}
	// So does a POST with a stale factor; nothing is stored.
	loc = uiWantRedirect(t, b.post("/elevations", url.Values{"role": {uiStagingDebug}, "duration": {"1h"}, "reason": {"x"}}), web.FactorPath+"?")
	u, _ = url.Parse(loc)
	if next := u.Query().Get("next"); !strings.HasPrefix(next, "/elevations/new?") || !strings.Contains(next, "duration=1h") {
		t.Errorf("next %q", next)
	}
	if n := e.stored(t); n != 0 {
		t.Errorf("%d stored", n)
	}
	// The list needs no factor; a user without eligible roles gets no step-up.
	if rec := b.get("/elevations"); rec.Code != 200 {
		t.Errorf("list: %d", rec.Code)
	}
	if rec := e.signIn(t, uiDave, stale).get("/elevations/new"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="no-eligible"`) {
		t.Errorf("no roles: %d", rec.Code)
	}
	// Signed out: to the sign-in page.
	anon := &uiBrowser{t: t, e: e, cookies: map[string]string{}}
	uiWantRedirect(t, anon.get("/elevations"), "/login")
}

func TestAdminAPI(t *testing.T) {
	e := newUIEnv(t)
	tok := e.cli(uiBob, e.freshAuthn())
	r := e.api(tok, "POST", "/api/elevations", map[string]any{"roles": []string{uiStagingDebug}, "seconds": 900})
	if r.code != 201 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	id := uiElevationOf(t, r).ID
	admin := e.signIn(t, uiEve, e.clk.Now())
	get := func(b *uiBrowser, q string) (int, elevation.List) {
		rec := b.get("/admin/api/elevations" + q)
		var l elevation.List
		_ = json.Unmarshal(rec.Body.Bytes(), &l)
		return rec.Code, l
	}
	if code, l := get(admin, "?state=active"); code != 200 || len(l.Elevations) != 1 || l.Elevations[0].ID != id {
		t.Errorf("active: %d %+v", code, l)
	}
	if code, l := get(admin, "?state=pending"); code != 200 || l.Elevations == nil || len(l.Elevations) != 0 {
		t.Errorf("pending: %d %+v", code, l)
	}
	if code, _ := get(admin, "?state=bogus"); code != 400 {
		t.Errorf("bogus state: %d", code)
	}
	if code, _ := get(e.signIn(t, uiBob, e.clk.Now()), "?state=active"); code != 403 {
		t.Errorf("non-admin: %d", code)
	}
	// End through the API: the CSRF header is required, like the other admin API routes.
	csrf := admin.csrf()
	req := httptest.NewRequest("POST", "/admin/api/elevations/"+id+"/end", nil)
	if rec := admin.do(req); rec.Code != http.StatusForbidden {
		t.Errorf("without CSRF: %d", rec.Code)
	}
	req = httptest.NewRequest("POST", "/admin/api/elevations/"+id+"/end", nil)
	req.Header.Set(web.CSRFHeader, csrf)
	rec := admin.do(req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"ended"`) {
		t.Fatalf("end: %d %s", rec.Code, rec.Body.String())
	}
	if code, l := get(admin, "?state=history"); code != 200 || len(l.Elevations) != 1 || l.Elevations[0].State != store.ElevationEnded {
		t.Errorf("history: %d %+v", code, l)
	}
	// Bearer routes ignore cookies: a browser session is no token.
	if rec := admin.get("/api/elevations"); rec.Code != http.StatusUnauthorized {
		t.Errorf("cookie on the CLI API: %d", rec.Code)
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int{"30m": 1800, "1h": 3600, "1h30m": 5400, "90": 5400, " 2h ": 7200, "1h 30m": 5400} {
		if got, err := elevation.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1h", "soon", "1d", strings.Repeat("1", 40)} {
		if _, err := elevation.ParseDuration(in); !errors.Is(err, elevation.ErrInvalid) {
			t.Errorf("ParseDuration(%q): %v", in, err)
		}
	}
	want := time.Date(2026, 12, 6, 14, 30, 0, 0, time.UTC)
	for _, in := range []string{"2026-12-06T14:30", "2026-12-06T14:30:00", "2026-12-06T14:30:00Z", "2026-12-06T15:30+01:00", "2026-12-06 14:30"} {
		if got, err := elevation.ParseStart(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseStart(%q) = %v, %v", in, got, err)
		}
	}
	if got, err := elevation.ParseStart(""); err != nil || !got.IsZero() {
		t.Errorf("empty start: %v %v", got, err)
	}
	if _, err := elevation.ParseStart("6/12/2026"); !errors.Is(err, elevation.ErrInvalid) {
		t.Errorf("bad start: %v", err)
	}
}
