package cli

// Time-boxed elevation against fakeElev, an httptest server that implements
// the JSON API of /api/elevations as the contract says (and discovery,
// userinfo and the token exchange, for the credential commands). No test
// waits on the wall clock: polling is shortened with App.elevPoll.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	eAdmin     = "arn:aws:iam::111122223333:role/Admin"
	eStaging   = "arn:aws:iam::444455556666:role/Admin"
	eReadOnly  = "arn:aws:iam::111122223333:role/ReadOnly"
	eDevAdmin  = "arn:aws:iam::777788889999:role/Admin"
	eStepToken = "AT-stepped"
)

type elevPost struct {
	Roles   []string `json:"roles"`
	Seconds int      `json:"seconds"`
	Reason  string   `json:"reason"`
	StartAt string   `json:"start_at"`
}

// fakeElev is wardend's elevation API, userinfo and token exchange.
type fakeElev struct {
	srv *httptest.Server
	mu  sync.Mutex

	standing []Role
	eligible []EligibleRole
	elevs    []*Elevation // newest first
	// noAPI: an older wardend, without /api/elevations.
	noAPI bool
	// stepUp: POSTs need the bearer eStepToken (else 401
	// insufficient_user_authentication).
	stepUp bool
	// selfService: requests are approved at once.
	selfService bool
	// decideAfter GETs of a pending request, decide is applied to it.
	decideAfter int
	decide      func(e *Elevation)
	// pollFail: the first pollFail GETs of a request answer 503.
	pollFail int
	// onPoll runs at each GET of a request (n from 1).
	onPoll func(n int)
	// postErr: POST /api/elevations answers this error.
	postErr *APIError

	polls    int
	attempts int // POST /api/elevations, refused or not
	posts    []elevPost
	ends     []string
	nextID   int
}

func newFakeElev(t testing.TB) *fakeElev {
	f := &fakeElev{
		standing: []Role{{RoleARN: eReadOnly, AccountID: "111122223333", AccountName: "prod", RoleName: "ReadOnly", Partition: "aws", SessionSeconds: 3600}},
		eligible: []EligibleRole{
			{RoleARN: eAdmin, AccountID: "111122223333", AccountName: "prod", RoleName: "Admin", Partition: "aws", MaxSeconds: 3600,
				Approvers: approverList{"ops-leads"}, RequireReason: true, ReasonPattern: "^INC-[0-9]+$"},
			{RoleARN: eStaging, AccountID: "444455556666", AccountName: "staging", RoleName: "Admin", Partition: "aws", MaxSeconds: 1800},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"device_authorization_endpoint":%q,"userinfo_endpoint":%q,"revocation_endpoint":%q}`,
			f.srv.URL, f.srv.URL+"/oauth/token", f.srv.URL+"/oauth/device_authorization", f.srv.URL+"/oauth/userinfo", f.srv.URL+"/oauth/revoke")
	})
	mux.HandleFunc("/oauth/userinfo", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"sub": "bob", "roles": f.standing})
	})
	mux.HandleFunc("POST /oauth/token", f.exchange)
	mux.HandleFunc("GET /api/elevations", f.guard(f.list))
	mux.HandleFunc("POST /api/elevations", f.guard(f.create))
	mux.HandleFunc("GET /api/elevations/{id}", f.guard(f.get))
	mux.HandleFunc("POST /api/elevations/{id}/end", f.guard(f.end))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func apiErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc, "request_id": "req-" + code})
}

// guard checks the bearer and answers 404 for an older wardend.
func (f *fakeElev) guard(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.noAPI {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "The page was not found.", "request_id": "r404"})
			return
		}
		bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if bearer != "AT-good" && bearer != eStepToken {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			apiErr(w, http.StatusUnauthorized, "invalid_token", "the access token is not valid")
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == "/api/elevations" {
			f.attempts++
		}
		if r.Method == http.MethodPost && f.stepUp && bearer != eStepToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"insufficient_user_authentication","error_description":"elevation needs a second factor given within 300 seconds","max_age":"300","request_id":"req-su"}`)
			return
		}
		h(w, r)
	}
}

func (f *fakeElev) find(id string) *Elevation {
	for _, e := range f.elevs {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// activeFor is the elevation active now for role, if any.
func (f *fakeElev) activeFor(role string) *Elevation {
	for _, e := range f.elevs {
		if e.activeAt(time.Now()) && slices.Contains(e.Roles, role) {
			return e
		}
	}
	return nil
}

func (f *fakeElev) list(w http.ResponseWriter, r *http.Request) {
	out := elevationList{Eligible: []EligibleRole{}, Elevations: []Elevation{}}
	for _, er := range f.eligible {
		if a := f.activeFor(er.RoleARN); a != nil {
			cp := *a
			er.Active = &cp
		}
		out.Eligible = append(out.Eligible, er)
	}
	for _, e := range f.elevs {
		out.Elevations = append(out.Elevations, *e)
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeElev) create(w http.ResponseWriter, r *http.Request) {
	if f.postErr != nil {
		apiErr(w, f.postErr.Status, f.postErr.Code, f.postErr.Description)
		return
	}
	var p elevPost
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || len(p.Roles) == 0 {
		apiErr(w, 400, "invalid_request", "bad body")
		return
	}
	for _, role := range p.Roles {
		i := slices.IndexFunc(f.eligible, func(e EligibleRole) bool { return e.RoleARN == role })
		if i < 0 {
			apiErr(w, 403, "not_eligible", "you are not eligible for "+role)
			return
		}
		if p.Seconds > f.eligible[i].MaxSeconds {
			apiErr(w, 400, "invalid_request", "the duration is over the maximum")
			return
		}
	}
	f.posts = append(f.posts, p)
	f.nextID++
	now := time.Now().UTC().Truncate(time.Second)
	e := &Elevation{ID: fmt.Sprintf("%08x%024x", 0xabcd0000+f.nextID, f.nextID), Username: "bob", Roles: p.Roles, Seconds: p.Seconds,
		Reason: p.Reason, Created: now, Deadline: now.Add(time.Hour), State: elevPending}
	if p.StartAt != "" {
		e.StartAt, _ = time.Parse(time.RFC3339, p.StartAt)
	}
	if f.selfService {
		approve("bob", "")(e)
	}
	f.elevs = append([]*Elevation{e}, f.elevs...)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(e)
}

func (f *fakeElev) get(w http.ResponseWriter, r *http.Request) {
	e := f.find(r.PathValue("id"))
	if e == nil {
		apiErr(w, 404, "not_found", "no such request")
		return
	}
	f.polls++
	if f.onPoll != nil {
		f.onPoll(f.polls)
	}
	if f.polls <= f.pollFail {
		apiErr(w, 503, "unavailable", "try again")
		return
	}
	if e.State == elevPending && f.decide != nil && f.polls >= f.decideAfter {
		f.decide(e)
	}
	json.NewEncoder(w).Encode(e)
}

func (f *fakeElev) end(w http.ResponseWriter, r *http.Request) {
	e := f.find(r.PathValue("id"))
	if e == nil {
		apiErr(w, 404, "not_found", "no such request")
		return
	}
	if e.State != elevApproved || !time.Now().Before(e.EndsAt) {
		apiErr(w, 409, "not_active", "the elevation is not active")
		return
	}
	f.ends = append(f.ends, e.ID)
	e.State, e.EndedBy, e.EndedAt = elevEnded, "bob", time.Now().UTC()
	json.NewEncoder(w).Encode(e)
}

// exchange is the token exchange: standing roles and roles of an active
// elevation (via SAML) get a SAML response; eligible ones not active get
// invalid_target with "eligible":"true"; an elevated role via web identity
// gets "elevated":"true".
func (f *fakeElev) exchange(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.ParseForm()
	role := r.PostForm.Get("resource")
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code" {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":"access_denied","error_description":"denied in the browser"}`)
		return
	}
	fail := func(extra string) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":"invalid_target","error_description":"not for this role"%s}`, extra)
	}
	standing := slices.ContainsFunc(f.standing, func(x Role) bool { return x.RoleARN == role })
	eligible := slices.ContainsFunc(f.eligible, func(x EligibleRole) bool { return x.RoleARN == role })
	active := f.activeFor(role) != nil
	switch {
	case !standing && eligible && !active:
		fail(`,"eligible":"true"`)
	case !standing && active && r.PostForm.Get("requested_token_type") == tokenTypeIDToken:
		fail(`,"elevated":"true"`)
	case standing || active:
		fmt.Fprintf(w, `{"access_token":%q,"issued_token_type":%q,"token_type":"N_A"}`, samlFor(role), tokenTypeSAML2)
	default:
		fail("")
	}
}

func approve(by, comment string) func(e *Elevation) {
	return func(e *Elevation) {
		now := time.Now().UTC().Truncate(time.Second)
		e.State, e.Decider, e.Comment, e.DecidedAt = elevApproved, by, comment, now
		e.StartsAt = now
		if e.StartAt.After(now) {
			e.StartsAt = e.StartAt
		}
		e.EndsAt = e.StartsAt.Add(time.Duration(e.Seconds) * time.Second)
	}
}

func deny(by, comment string) func(e *Elevation) {
	return func(e *Elevation) {
		e.State, e.Decider, e.Comment, e.DecidedAt = elevDenied, by, comment, time.Now().UTC()
	}
}

// elevApp is a signed-in App for f, polling every millisecond.
func elevApp(t *testing.T, f *fakeElev) (*App, *bytes.Buffer, *bytes.Buffer) {
	a, out, errb := signedInApp(t, f.srv.URL, time.Now)
	a.elevPoll = time.Millisecond
	a.stepUp = func(context.Context) error {
		t.Error("a new sign-in was started")
		return errors.New("no sign-in in this test")
	}
	return a, out, errb
}

func TestElevateApprovedAfterPolling(t *testing.T) {
	f := newFakeElev(t)
	f.decideAfter, f.decide = 3, approve("carol", "go ahead")
	a, out, errb := elevApp(t, f)
	if err := run(a, "elevate", "--role", "prod/Admin", "--for", "30m", "--reason", "INC-123"); err != nil {
		t.Fatalf("elevate: %v\n%s", err, errb)
	}
	if len(f.posts) != 1 || !slices.Equal(f.posts[0].Roles, []string{eAdmin}) || f.posts[0].Seconds != 1800 ||
		f.posts[0].Reason != "INC-123" || f.posts[0].StartAt != "" {
		t.Fatalf("posted %+v", f.posts)
	}
	if f.polls < 3 {
		t.Errorf("%d polls, want at least 3", f.polls)
	}
	for _, want := range []string{
		"Requested prod/Admin for 30m (request abcd0001); a member of ops-leads decides by ",
		"Waiting for the decision (",
		`Approved by carol ("go ahead"): prod/Admin active until `,
		"  warden console --role prod/Admin\n", "  warden creds --role prod/Admin\n",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q", out)
	}
}

// Without --for, the request asks for the longest window every role
// allows; --no-wait returns at once; --json prints the request.
func TestElevateDefaultDurationSeveralRolesNoWait(t *testing.T) {
	f := newFakeElev(t)
	f.eligible[0].ReasonPattern, f.eligible[0].RequireReason = "", false
	a, out, errb := elevApp(t, f)
	err := run(a, "elevate", "--role", "prod/Admin", "--role", "arn:aws:iam::444455556666:role/Admin", "--role", "111122223333/Admin",
		"--start", "+2h", "--no-wait", "--json")
	if err != nil {
		t.Fatalf("elevate: %v\n%s", err, errb)
	}
	if len(f.posts) != 1 || !slices.Equal(f.posts[0].Roles, []string{eAdmin, eStaging}) || f.posts[0].Seconds != 1800 || f.posts[0].StartAt == "" {
		t.Fatalf("posted %+v", f.posts)
	}
	if st, err := time.Parse(time.RFC3339, f.posts[0].StartAt); err != nil || st.Sub(time.Now()) < 110*time.Minute {
		t.Errorf("start_at %q", f.posts[0].StartAt)
	}
	if f.polls != 0 {
		t.Errorf("--no-wait polled %d times", f.polls)
	}
	var e Elevation
	if err := json.Unmarshal(out.Bytes(), &e); err != nil || e.State != elevPending || len(e.Roles) != 2 {
		t.Errorf("--json printed %q (%v)", out, err)
	}
	if !strings.Contains(errb.String(), "Requested prod/Admin, staging/Admin for 30m") || !strings.Contains(errb.String(), "warden elevations") {
		t.Errorf("stderr:\n%s", errb)
	}
}

func TestElevateDeniedAndExpired(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decide func(*Elevation)
		want   string
	}{
		{"denied", deny("carol", "not during the freeze"), `request abcd0001 for prod/Admin was denied by carol ("not during the freeze")`},
		{"expired", func(e *Elevation) { e.State = elevExpired }, "request abcd0001 for prod/Admin expired: nobody decided it by "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeElev(t)
			f.decideAfter, f.decide = 2, tc.decide
			a, _, errb := elevApp(t, f)
			err := run(a, "elevate", "--role", "prod/Admin", "--reason", "INC-9")
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err %v, want %q\n%s", err, tc.want, errb)
			}
			var ee *ExitError
			if errors.As(err, &ee) {
				t.Errorf("exit code %d: main must exit 1 with the message", ee.Code)
			}
			if f.posts[0].Seconds != 3600 {
				t.Errorf("default duration %d, want the role's max 3600", f.posts[0].Seconds)
			}
		})
	}
}

// insufficient_user_authentication: a new sign-in (injected here), then
// the request is sent once more; a second refusal is an error.
func TestElevateStepUp(t *testing.T) {
	f := newFakeElev(t)
	f.stepUp, f.selfService = true, true
	a, _, errb := elevApp(t, f)
	calls := 0
	a.stepUp = func(ctx context.Context) error {
		calls++
		return writeJSON(a.tokenPath(), tokenCache{IdPURL: f.srv.URL, Issuer: f.srv.URL, ClientID: ClientID, AccessToken: eStepToken,
			Expiry: time.Now().Add(time.Hour), Username: "bob"})
	}
	if err := run(a, "elevate", "--role", "staging/Admin", "--for", "15m"); err != nil {
		t.Fatalf("elevate: %v\n%s", err, errb)
	}
	if calls != 1 || f.attempts != 2 || len(f.posts) != 1 {
		t.Fatalf("%d sign-ins, %d attempts, %d requests", calls, f.attempts, len(f.posts))
	}
	for _, want := range []string{"Elevation needs a fresh sign-in with your second factor", "Approved: staging/Admin active until ", "(15m left)"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	if f.polls != 0 {
		t.Errorf("a self-service approval was polled")
	}

	// Not signed in at all, on a terminal: the one sign-in is the step-up.
	os.Remove(a.tokenPath())
	a.IsTerminal = func() bool { return true }
	calls, f.attempts = 0, 0
	if err := run(a, "elevate", "--role", "staging/Admin", "--for", "15m"); err != nil {
		t.Fatalf("elevate, not signed in: %v\n%s", err, errb)
	}
	if calls != 1 || f.attempts != 1 {
		t.Errorf("not signed in: %d sign-ins, %d attempts", calls, f.attempts)
	}

	// The new sign-in did not satisfy the IdP: one retry only.
	g := newFakeElev(t)
	g.stepUp = true
	b, _, _ := elevApp(t, g)
	calls = 0
	b.stepUp = func(context.Context) error { calls++; return nil }
	err := run(b, "elevate", "--role", "staging/Admin", "--for", "15m")
	if err == nil || !strings.Contains(err.Error(), "still wants a fresh second factor") || !strings.Contains(err.Error(), "(request ID req-su)") {
		t.Fatalf("err %v", err)
	}
	if calls != 1 || g.attempts != 2 {
		t.Errorf("%d sign-ins, %d attempts", calls, g.attempts)
	}
}

// The real step-up is a device login asking for the "elevate" scope besides
// the usual ones, announcing the second factor.
func TestElevateStepUpDeviceLoginScopes(t *testing.T) {
	f := newFakeElev(t)
	f.stepUp = true
	var scope string
	f.srv.Config.Handler.(*http.ServeMux).HandleFunc("POST /oauth/device_authorization", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		scope = r.PostForm.Get("scope")
		fmt.Fprintf(w, `{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":%q,"expires_in":60,"interval":1}`, f.srv.URL+"/device")
	})
	// The token endpoint answers the device grant with access_denied.
	a, _, errb := elevApp(t, f)
	a.stepUp = nil
	err := run(a, "elevate", "--role", "staging/Admin", "--for", "15m", "--no-browser")
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err %v\n%s", err, errb)
	}
	got := strings.Fields(scope)
	for _, s := range append(slices.Clone(loginScopes), "elevate") {
		if !slices.Contains(got, s) {
			t.Errorf("scope %q lacks %s", scope, s)
		}
	}
	for _, want := range []string{"To sign in, open " + f.srv.URL + "/device", "ABCD-EFGH", "The approval page will ask for your second factor"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	if f.attempts != 1 {
		t.Errorf("%d attempts after a refused sign-in", f.attempts)
	}
}

func TestElevateBadInput(t *testing.T) {
	f := newFakeElev(t)
	f.eligible = append(f.eligible, EligibleRole{RoleARN: eDevAdmin, AccountID: "777788889999", AccountName: "prod", RoleName: "Admin", MaxSeconds: 3600})
	a, _, _ := elevApp(t, f)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "staging/Admin", "--for", "2h"}, "--for 2h: staging/Admin allows at most 30m"},
		{[]string{"--role", "staging/Admin", "--for", "10m"}, "--for 10m: an elevation lasts at least 15m"},
		{[]string{"--role", eAdmin, "--for", "1h"}, "arn:aws:iam::111122223333:role/Admin needs a reason matching ^INC-[0-9]+$: add --reason"},
		{[]string{"--role", eAdmin, "--reason", "fixing things"}, `--reason "fixing things": arn:aws:iam::111122223333:role/Admin wants a reason matching ^INC-[0-9]+$`},
		{[]string{"--role", "prod/Admin", "--reason", "INC-1"}, "--role prod/Admin matches 2 eligible roles: give the ARN (" + eAdmin + ", " + eDevAdmin + ")"},
		{[]string{"--role", "staging/Admn", "--for", "15m"}, "you are not eligible for staging/Admn; did you mean staging/Admin?"},
		{[]string{"--role", "dev/Nothing"}, "you are not eligible for dev/Nothing; you may request: " + eAdmin + ", " + eDevAdmin + ", staging/Admin"},
		{[]string{"--role", "prod/ReadOnly"}, "prod/ReadOnly is a standing role: you hold it already, no elevation needed (warden creds --role prod/ReadOnly)"},
		{[]string{"--role", "staging/Admin", "--start", past}, "--start " + past + " is in the past"},
		{[]string{"--role", "staging/Admin", "--start", "tomorrow"}, "--start tomorrow: want a time"},
		{[]string{"--role", "Admin"}, `--role "Admin": want a role ARN, account-id/role or account-name/role`},
		{[]string{"--for", "1h"}, "--role is required"},
		{[]string{"--end", "--role", "staging/Admin"}, "--end takes no --role"},
		{[]string{"abc"}, `unexpected argument "abc"`},
	} {
		err := run(a, append([]string{"elevate"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if f.attempts != 0 {
		t.Errorf("%d requests sent for bad input", f.attempts)
	}

	// What the client does not know, the server decides: its sentence and
	// request ID, one line.
	f.postErr = &APIError{Status: 400, Code: "invalid_request", Description: "the start is more than 7 days ahead"}
	err := run(a, "elevate", "--role", "staging/Admin", "--start", "+200h")
	if err == nil || err.Error() != "the start is more than 7 days ahead (request ID req-invalid_request)" {
		t.Errorf("server refusal: %v", err)
	}
	// An IdP without elevation.
	f.noAPI = true
	if err := run(a, "elevate", "--role", "staging/Admin"); !errors.Is(err, ErrNoElevationAPI) {
		t.Errorf("older IdP: %v", err)
	}
	if err := run(a, "elevations"); !errors.Is(err, ErrNoElevationAPI) {
		t.Errorf("older IdP: %v", err)
	}
}

// A 503 while waiting is asked again (with backoff); Ctrl-C stops waiting
// and leaves the request pending.
func TestElevateWaitRetriesAndInterrupt(t *testing.T) {
	f := newFakeElev(t)
	f.pollFail, f.decideAfter, f.decide = 2, 3, approve("carol", "")
	a, _, errb := elevApp(t, f)
	if err := run(a, "elevate", "--role", "staging/Admin", "--for", "20m"); err != nil {
		t.Fatalf("elevate: %v\n%s", err, errb)
	}
	if f.polls < 3 || !strings.Contains(errb.String(), "Approved by carol: staging/Admin") {
		t.Fatalf("%d polls\n%s", f.polls, errb)
	}

	g := newFakeElev(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g.onPoll = func(n int) {
		if n == 2 {
			cancel()
		}
	}
	b, _, errb := elevApp(t, g)
	b.IsTerminal = func() bool { return true } // the spinner runs
	stderr := &syncBuffer{}
	b.Stderr = stderr
	root := Root(b)
	root.SetArgs([]string{"elevate", "--role", "staging/Admin", "--for", "20m"})
	err := root.ExecuteContext(ctx)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 130 {
		t.Fatalf("err %v\n%s", err, stderr)
	}
	for _, want := range []string{"Stopped waiting. Request abcd0001 is not cancelled", "`warden elevations` shows it"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if g.elevs[0].State != elevPending || len(g.ends) != 0 {
		t.Errorf("the request changed: %+v", g.elevs[0])
	}
	_ = errb
}

func activeElevation(id string, roles ...string) *Elevation {
	now := time.Now().UTC().Truncate(time.Second)
	return &Elevation{ID: id, Username: "bob", Roles: roles, Seconds: 3600, Reason: "INC-1", Created: now.Add(-10 * time.Minute),
		Deadline: now.Add(50 * time.Minute), State: elevApproved, Decider: "carol", DecidedAt: now.Add(-5 * time.Minute),
		StartsAt: now.Add(-5 * time.Minute), EndsAt: now.Add(55 * time.Minute)}
}

func TestElevateEnd(t *testing.T) {
	const id1, id2 = "11111111aaaaaaaaaaaaaaaaaaaaaaaa", "22222222bbbbbbbbbbbbbbbbbbbbbbbb"
	f := newFakeElev(t)
	a, _, errb := elevApp(t, f)
	if err := run(a, "elevate", "--end"); err == nil || err.Error() != "you have no active elevation to end" {
		t.Fatalf("none active: %v", err)
	}

	// One active: no ID needed; its cached credentials go.
	f.elevs = []*Elevation{activeElevation(id1, eAdmin), {ID: "33333333", Roles: []string{eStaging}, State: elevDenied, Decider: "carol"}}
	cached := a.credsPath(credsKey(ViaSAML, eAdmin))
	other := a.credsPath(credsKey(ViaSAML, eReadOnly))
	for _, p := range []string{cached, other} {
		if err := writeJSON(p, credsCache{RoleARN: "x", Expiration: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	errb.Reset()
	if err := run(a, "elevate", "--end"); err != nil {
		t.Fatalf("end: %v\n%s", err, errb)
	}
	if !slices.Equal(f.ends, []string{id1}) {
		t.Fatalf("ended %v", f.ends)
	}
	if _, err := os.Stat(cached); !errors.Is(err, os.ErrNotExist) {
		t.Error("the elevated role's cached credentials survived")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another role's cached credentials were removed")
	}
	if !strings.Contains(errb.String(), "Ended elevation 11111111 (prod/Admin) and removed its cached credentials.") {
		t.Errorf("stderr:\n%s", errb)
	}

	// Two active: listed, nothing ended; then by ID prefix.
	f.ends = nil
	f.elevs = []*Elevation{activeElevation(id1, eAdmin), activeElevation(id2, eStaging)}
	errb.Reset()
	err := run(a, "elevate", "--end")
	if err == nil || !strings.Contains(err.Error(), "2 elevations are active: give the ID") || len(f.ends) != 0 {
		t.Fatalf("two active: %v, ended %v", err, f.ends)
	}
	for _, want := range []string{"11111111  prod/Admin     until ", "22222222  staging/Admin  until "} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}
	if err := run(a, "elevate", "--end", "2222"); err != nil || !slices.Equal(f.ends, []string{id2}) {
		t.Fatalf("end by prefix: %v, ended %v", err, f.ends)
	}
	if err := run(a, "elevate", "--end", "9999"); err == nil || !strings.Contains(err.Error(), "none of your requests has the ID 9999") {
		t.Errorf("unknown ID: %v", err)
	}
	// The server's refusal, one line with its request ID.
	err = run(a, "elevate", "--end", id2)
	if err == nil || err.Error() != "the elevation is not active (request ID req-not_active)" {
		t.Errorf("ended twice: %v", err)
	}
}

func TestElevationsList(t *testing.T) {
	f := newFakeElev(t)
	now := time.Now().UTC().Truncate(time.Second)
	f.elevs = []*Elevation{
		{ID: "aaaaaaaa0000", Roles: []string{eStaging}, Seconds: 1800, Reason: "CHG-1", State: elevPending, Deadline: now.Add(40 * time.Minute)},
		activeElevation("bbbbbbbb0000", eAdmin),
		{ID: "cccccccc0000", Roles: []string{eAdmin}, Seconds: 3600, Reason: "INC-2", State: elevDenied, Decider: "carol",
			Comment: "use the runbook", DecidedAt: now.Add(-time.Hour)},
		{ID: "dddddddd0000", Roles: []string{eAdmin}, Seconds: 3600, Reason: "INC-3", State: elevExpired, Deadline: now.Add(-2 * time.Hour)},
	}
	a, out, _ := elevApp(t, f)
	if err := run(a, "elevations"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range [][]string{
		{"aaaaaaaa", "pending", "staging/Admin", "30m", "CHG-1", "decide by", "left"},
		{"bbbbbbbb", "active", "prod/Admin", "1h", "INC-1", "until", "left", "approved by carol"},
		{"cccccccc", "denied", "by carol", "use the runbook"},
		{"dddddddd", "expired", "undecided"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %d lacks %q: %s", i+1, w, lines[i+1])
			}
		}
	}
	out.Reset()
	if err := run(a, "elevations", "--json"); err != nil {
		t.Fatal(err)
	}
	var l elevationList
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || len(l.Elevations) != 4 || len(l.Eligible) != 2 || l.Eligible[0].Active == nil {
		t.Errorf("--json: %v\n%s", err, out)
	}
}

// creds for an eligible role that is not active says what to run; a role
// active through an elevation works (even when the cached roles listing
// predates it), but not via web identity.
func TestCredsEligibleHint(t *testing.T) {
	f := newFakeElev(t)
	sts := newFakeSTS(t)
	a, _, _ := elevApp(t, f)
	want := `prod/Admin is eligible, not standing: run "warden elevate --role prod/Admin --for 1h --reason ..."`
	for _, cmd := range [][]string{
		{"creds", "--role", "prod/Admin"},
		{"console", "--role", "prod/Admin", "--print"},
		{"exec", "--role", "prod/Admin", "--", "true"},
	} {
		if err := run(a, append(cmd, "--sts-endpoint", sts.srv.URL)...); err == nil || err.Error() != want {
			t.Errorf("%v: %v, want %q", cmd, err, want)
		}
	}
	// Given as an ARN, the token exchange says "eligible".
	err := run(a, "credential-process", "--role", eAdmin, "--sts-endpoint", sts.srv.URL)
	var xe *ExchangeError
	if !errors.As(err, &xe) || !xe.Eligible ||
		err.Error() != `111122223333/Admin is eligible, not standing: run "warden elevate --role 111122223333/Admin --for 1h --reason ..."` {
		t.Errorf("by ARN: %v", err)
	}
	// A shorter maximum is the suggested --for.
	if err := run(a, "creds", "--role", "staging/Admin"); err == nil || !strings.Contains(err.Error(), "--for 30m") {
		t.Errorf("staging: %v", err)
	}

	// Active through an elevation: the fake STS knows tRole only.
	f.eligible = append(f.eligible, EligibleRole{RoleARN: tRole, AccountID: "111122223333", AccountName: "prod", RoleName: "ReadOnly", MaxSeconds: 3600})
	f.standing = nil
	if _, err := a.Roles(context.Background(), false); err != nil { // cached: no ReadOnly
		t.Fatal(err)
	}
	f.elevs = []*Elevation{activeElevation("eeeeeeee0000", tRole)}
	if err := run(a, "creds", "--role", "prod/ReadOnly", "--sts-endpoint", sts.srv.URL); err != nil {
		t.Fatalf("active elevation: %v", err)
	}
	sts.check(t)
	var c credsCache
	if ok, _ := readJSON(a.credsPath(credsKey(ViaSAML, tRole)), &c); !ok || !c.Expiration.Equal(sts.exp) {
		t.Errorf("cached credentials expire %v, want STS's %v", c.Expiration, sts.exp)
	}
	err = run(a, "creds", "--role", tRole, "--via", "web-identity", "--sts-endpoint", sts.srv.URL)
	if !errors.As(err, &xe) || !xe.Elevated || !strings.Contains(err.Error(), "use --via saml") {
		t.Errorf("web identity: %v", err)
	}
}

func TestRolesShowsEligible(t *testing.T) {
	f := newFakeElev(t)
	f.elevs = []*Elevation{activeElevation("bbbbbbbb0000", eAdmin)}
	a, out, errb := elevApp(t, f)
	if err := run(a, "roles"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	std, elig, ok := strings.Cut(s, "ELIGIBLE")
	if !ok || !strings.Contains(std, "ReadOnly") || strings.Contains(std, "Admin") {
		t.Fatalf("roles:\n%s", s)
	}
	for _, want := range []string{"ops-leads", "^INC-[0-9]+$", "active until ", "staging", "self-service", "30m"} {
		if !strings.Contains(elig, want) {
			t.Errorf("eligible part lacks %q:\n%s", want, elig)
		}
	}
	// --json is the standing roles as before.
	out.Reset()
	if err := run(a, "roles", "--json"); err != nil {
		t.Fatal(err)
	}
	var roles []Role
	if err := json.Unmarshal(out.Bytes(), &roles); err != nil || len(roles) != 1 {
		t.Errorf("--json: %v %s", err, out)
	}
	// An older IdP: as before, no eligible part, no warning.
	f.noAPI = true
	out.Reset()
	errb.Reset()
	if err := run(a, "roles"); err != nil || strings.Contains(out.String(), "ELIGIBLE") || errb.Len() != 0 {
		t.Errorf("older IdP: %v\n%s\n%s", err, out, errb)
	}
}

func TestAPIErrorLine(t *testing.T) {
	for _, tc := range []struct {
		e    APIError
		want string
	}{
		{APIError{Status: 403, Code: "not_eligible", Description: "you are not eligible", RequestID: "r1"}, "you are not eligible (request ID r1)"},
		{APIError{Status: 409, Code: "already_decided"}, "the IdP refused: already_decided"},
		{APIError{Status: 502}, "the IdP answered HTTP 502"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
	if levenshtein("prod/admin", "prod/admn") != 1 || levenshtein("", "abc") != 3 {
		t.Error("levenshtein")
	}
	if clockLeft(90*time.Second) != "1:30" || clockLeft(3723*time.Second) != "1:02:03" {
		t.Error("clockLeft")
	}
}
