package cli

// Time-boxed elevation end to end: the CLI against a real wardend (app.Run
// on the real OpenLDAP and Redis), bob and alice with TOTP factors (codes
// from oathtool), every browser step through the real pages, credentials
// from moto's STS. wardend's clock is the test's (to age a second factor
// past mfa.step_up_max_age); moto's is the wall clock.
//
//	bob signs in (password + TOTP) → the clock moves 6 minutes → `warden
//	elevate` gets 401 insufficient_user_authentication → device login with
//	scope elevate, whose page sends bob's stale session to /mfa first →
//	the request is sent again, pending → alice approves through the API
//	with her own fresh sign-in → creds (SAML, SessionDuration capped at
//	the window) → web identity refused → `elevate --end` → creds say what
//	to run. Bad input is refused by the CLI and by the server, and nothing
//	is stored.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/app/apptest"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// elevE2ERules: Developer standing, Admin eligible for bob's developers,
// approved by admins (alice).
const elevE2ERules = `
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: dev
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/Developer
        max_session_seconds: 3600
      - arn: arn:aws:iam::111122223333:role/Admin
        max_session_seconds: 3600
        access: eligible
        max_duration: 30m
        approvers: admins
        reason_pattern: '^INC-[0-9]+$'
`

const (
	elevAdminARN = "arn:aws:iam::111122223333:role/Admin"
	elevDevARN   = "arn:aws:iam::111122223333:role/Developer"
	// elevStale is how far the clock moves so that a second factor given
	// before is older than mfa.step_up_max_age (5 minutes by default).
	elevStale = 6 * time.Minute
)

func TestElevateE2E(t *testing.T) {
	env := startElevE2E(t)
	moto := testenv.Moto(t)
	sts := newSTSRecorder(t, moto)
	bin := buildWarden(t)
	ctx := context.Background()
	base := env.idp.base

	// --- bob signs in: password and TOTP (he has a factor) ---
	a := testApp(t)
	a.Now = env.now
	a.elevPoll = 50 * time.Millisecond
	if _, _, err := runCLI(a, "configure", "--idp-url", base); err != nil {
		t.Fatal(err)
	}
	bob := env.browser("bob")
	if v := elevLogin(t, a, bob); !slices.Equal(v.pages, []string{"login", "code", "mfa", "code", "confirm"}) {
		t.Fatalf("bob's approval of the login went through %v", v.pages)
	}

	// The eligible role, with its terms, and no requests yet.
	stdout, stderr, err := runCLI(a, "elevations", "--json")
	if err != nil {
		t.Fatalf("elevations --json: %v\n%s", err, stderr)
	}
	var l elevationList
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatalf("elevations --json: %v\n%s", err, stdout)
	}
	if len(l.Eligible) != 1 || l.Eligible[0].RoleARN != elevAdminARN || l.Eligible[0].MaxSeconds != 1800 ||
		l.Eligible[0].ReasonPattern != "^INC-[0-9]+$" || l.Eligible[0].AccountName != "prod" || l.Eligible[0].Active != nil ||
		len(l.Elevations) != 0 {
		t.Fatalf("elevations --json:\n%s", stdout)
	}

	// roles: Developer standing, Admin apart.
	stdout, _, err = runCLI(a, "roles")
	std, elig, ok := strings.Cut(stdout, "ELIGIBLE")
	if err != nil || !ok || !strings.Contains(std, "Developer") || strings.Contains(std, "Admin") ||
		!strings.Contains(elig, "Admin") || !strings.Contains(elig, "30m") || !strings.Contains(elig, "admins") {
		t.Fatalf("roles: %v\n%s", err, stdout)
	}

	// Credentials for the eligible role: what to run, from the listing
	// (shorthand) and from the token exchange (ARN).
	hint := `prod/Admin is eligible, not standing: run "warden elevate --role prod/Admin --for 30m --reason ..."`
	if _, _, err := runCLI(a, "creds", "--role", "prod/Admin", "--sts-endpoint", sts.srv.URL); err == nil || err.Error() != hint {
		t.Errorf("creds prod/Admin: %v, want %q", err, hint)
	}
	_, _, err = runCLI(a, "credential-process", "--role", elevAdminARN, "--sts-endpoint", sts.srv.URL)
	var xe *ExchangeError
	if !errors.As(err, &xe) || !xe.Eligible {
		t.Errorf("credential-process for the eligible role: %v (want the exchange's \"eligible\")", err)
	}

	// Bad input: the CLI refuses it with one line (the real binary: exit
	// code 1, nothing on stdout), from the terms wardend lists.
	badInput := []struct {
		args []string
		want string
	}{
		{[]string{"--role", "prod/Admin", "--for", "1h", "--reason", "INC-1"}, "--for 1h: prod/Admin allows at most 30m"},
		{[]string{"--role", "prod/Admin", "--reason", "because"}, `--reason "because": prod/Admin wants a reason matching ^INC-[0-9]+$`},
		{[]string{"--role", "prod/Developer", "--reason", "INC-1"}, "prod/Developer is a standing role"},
		{[]string{"--role", "prod/Admn", "--reason", "INC-1"}, "you are not eligible for prod/Admn; did you mean prod/Admin?"},
		{[]string{"--role", "arn:aws:iam::999999999999:role/Admin", "--reason", "INC-1"}, "you are not eligible for arn:aws:iam::999999999999:role/Admin"},
	}
	for _, tc := range badInput {
		args := append([]string{"elevate"}, tc.args...)
		if _, _, err := runCLI(a, args...); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("elevate %v: %v, want one line with %q", tc.args, err, tc.want)
		}
		elevRunBinary(t, bin, a, 1, "warden: "+tc.want, args...)
	}
	if _, _, err := runCLI(a, "elevate", "--end"); err == nil || err.Error() != "you have no active elevation to end" {
		t.Errorf("elevate --end: %v", err)
	}
	if n := len(env.mine(t, a).Elevations); n != 0 {
		t.Fatalf("%d requests stored after bad input", n)
	}

	// --- six minutes later: bob's second factor is no longer fresh ---
	env.off.Store(int64(elevStale))
	staleFrom := env.now()
	staleToken := elevBearer(t, a)
	status, body, hdr := elevAPI(t, base, staleToken, http.MethodPost, "/api/elevations",
		map[string]any{"roles": []string{elevAdminARN}, "seconds": 1800, "reason": "INC-7"})
	var stepUp struct {
		Error  string `json:"error"`
		MaxAge string `json:"max_age"`
	}
	_ = json.Unmarshal(body, &stepUp)
	if status != http.StatusUnauthorized || stepUp.Error != errInsufficientAuthn || stepUp.MaxAge != "300" ||
		!strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
		t.Fatalf("a request with a second factor %s old: %d %s (WWW-Authenticate %q)", elevStale, status, body, hdr.Get("WWW-Authenticate"))
	}

	// alice, the approver, signs in (her factor is fresh).
	a2 := testApp(t)
	a2.Now = env.now
	if _, _, err := runCLI(a2, "configure", "--idp-url", base); err != nil {
		t.Fatal(err)
	}
	if v := elevLogin(t, a2, env.browser("alice")); !slices.Equal(v.pages, []string{"login", "code", "mfa", "code", "confirm"}) {
		t.Fatalf("alice's approval of her login went through %v", v.pages)
	}
	aliceToken := elevBearer(t, a2)

	// --- bob: warden elevate, the step-up for real, then waiting ---
	var opened atomic.Int32
	visits := make(chan elevVisit, 1)
	a.OpenBrowser = func(u string) error {
		opened.Add(1)
		go func() { visits <- bob.approve(u) }()
		return nil
	}
	type cliResult struct {
		stdout, stderr string
		err            error
	}
	elevated := make(chan cliResult, 1)
	go func() {
		o, e, err := runCLI(a, "elevate", "--role", "prod/Admin", "--for", "30m", "--reason", "INC-7", "--json")
		elevated <- cliResult{o, e, err}
	}()
	var v elevVisit
	select {
	case v = <-visits:
	case r := <-elevated:
		t.Fatalf("elevate ended before the step-up: %v\n%s", r.err, r.stderr)
	}
	if v.err != nil {
		t.Fatalf("bob's approval of the step-up: %v (pages %v)", v.err, v.pages)
	}
	// The device page sent bob's signed-in session, whose factor is stale,
	// to the second-factor page (fresh=1) before the code could be approved.
	if !slices.Equal(v.pages, []string{"code", "mfa fresh", "code", "confirm"}) ||
		!strings.HasPrefix(v.factorNext, "/device?user_code=") {
		t.Fatalf("bob's approval of the step-up: %v, pages %v, factor page next %q", v.err, v.pages, v.factorNext)
	}
	ev := env.lastAudit(t, "device.approve", "bob", func(ev audit.Event) bool { return !ev.Time.Before(staleFrom) })
	if !slices.Contains(strings.Fields(ev.Detail["scopes"]), scopeElevate) || ev.Detail["method"] != "totp" {
		t.Errorf("the step-up's device approval: %+v, want scope %q and method totp", ev.Detail, scopeElevate)
	}

	// The request is pending: alice may decide it.
	var pending Elevation
	for i := 0; ; i++ {
		status, body, _ := elevAPI(t, base, aliceToken, http.MethodGet, "/api/elevations/pending", nil)
		var pl struct{ Elevations []Elevation }
		if status != http.StatusOK || json.Unmarshal(body, &pl) != nil {
			t.Fatalf("alice: GET /api/elevations/pending: %d %s", status, body)
		}
		if len(pl.Elevations) > 0 {
			if len(pl.Elevations) != 1 {
				t.Fatalf("alice sees %d pending requests: %s", len(pl.Elevations), body)
			}
			pending = pl.Elevations[0]
			break
		}
		select {
		case r := <-elevated:
			t.Fatalf("elevate ended without a pending request: %v\n%s", r.err, r.stderr)
		default:
		}
		if i == 1200 {
			t.Fatal("no pending request after the step-up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pending.Username != "bob" || !slices.Equal(pending.Roles, []string{elevAdminARN}) || pending.Seconds != 1800 ||
		pending.Reason != "INC-7" || pending.State != elevPending || len(pending.ID) != 32 {
		t.Fatalf("the pending request: %+v", pending)
	}
	if opened.Load() != 1 {
		t.Errorf("the browser was opened %d times for the step-up", opened.Load())
	}

	// Nobody decides their own request, though bob's sign-in is fresh now.
	bobToken := elevBearer(t, a)
	if bobToken == staleToken {
		t.Fatal("the step-up did not replace the cached sign-in")
	}
	if status, body, _ := elevAPI(t, base, bobToken, http.MethodPost, "/api/elevations/"+pending.ID+"/approve", map[string]string{}); status != http.StatusForbidden ||
		!strings.Contains(string(body), `"self_approval"`) {
		t.Errorf("bob approving his own request: %d %s", status, body)
	}

	// alice approves with her own Bearer token.
	status, body, _ = elevAPI(t, base, aliceToken, http.MethodPost, "/api/elevations/"+pending.ID+"/approve", map[string]string{"comment": "go ahead"})
	var approved Elevation
	if status != http.StatusOK || json.Unmarshal(body, &approved) != nil || approved.State != elevApproved || approved.Decider != "alice" {
		t.Fatalf("alice's approval: %d %s", status, body)
	}
	if status, body, _ := elevAPI(t, base, aliceToken, http.MethodPost, "/api/elevations/"+pending.ID+"/approve", nil); status != http.StatusConflict ||
		!strings.Contains(string(body), `"already_decided"`) {
		t.Errorf("a second approval: %d %s", status, body)
	}

	var r cliResult
	select {
	case r = <-elevated:
	case <-time.After(time.Minute):
		t.Fatal("elevate did not finish after the approval")
	}
	if r.err != nil {
		t.Fatalf("elevate: %v\n%s", r.err, r.stderr)
	}
	short := pending.ID[:8]
	for _, want := range []string{
		"Elevation needs a fresh sign-in with your second factor",
		"The approval page will ask for your second factor",
		"Requested prod/Admin for 30m (request " + short + "); a member of admins decides by ",
		"Waiting for the decision (",
		`Approved by alice ("go ahead"): prod/Admin active until `,
		"Next:\n  warden console --role prod/Admin\n  warden creds --role prod/Admin\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("elevate stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !regexp.MustCompile(`active until [^(\n]*\d\d:\d\d \(\d+m left\)\.\n`).MatchString(r.stderr) {
		t.Errorf("elevate stderr does not give the window:\n%s", r.stderr)
	}
	var e Elevation
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil {
		t.Fatalf("elevate --json: %v\n%s", err, r.stdout)
	}
	if e.ID != pending.ID || e.State != elevApproved || e.Decider != "alice" || e.Comment != "go ahead" || e.Reason != "INC-7" ||
		e.EndsAt.Sub(e.StartsAt) != 30*time.Minute || !e.EndsAt.Equal(approved.EndsAt) {
		t.Fatalf("elevate --json: %+v\nalice's answer: %+v", e, approved)
	}

	// --- creds while active: SAML through moto ---
	stdout, stderr, err = runCLI(a, "creds", "--role", "prod/Admin", "--sts-endpoint", sts.srv.URL, "--format", "json")
	after := time.Now() // moto's clock
	if err != nil {
		t.Fatalf("creds prod/Admin while elevated: %v\n%s", err, stderr)
	}
	var c wdCredJSON
	if err := json.Unmarshal([]byte(stdout), &c); err != nil || c.Version != 1 || c.AccessKeyID == "" || c.SessionToken == "" {
		t.Fatalf("creds --format json: %v\n%s", err, stdout)
	}
	forms := sts.requests()
	if len(forms) != 1 || forms[0].Get("Action") != "AssumeRoleWithSAML" || forms[0].Get("RoleArn") != elevAdminARN {
		t.Fatalf("STS requests: %v", forms)
	}
	sa := parseElevSAML(t, forms[0].Get("SAMLAssertion"))
	secs, err := strconv.Atoi(sa.attr(samlidp.AttrSessionDuration))
	if err != nil || secs > 1800 || secs < 900 {
		t.Errorf("SessionDuration %q, want at most the 1800 s of the window", sa.attr(samlidp.AttrSessionDuration))
	}
	// The session ends with the window: SessionDuration is the time left
	// when the assertion was issued (wardend's clock, in whole seconds; the
	// time left is read a few milliseconds before the assertion's
	// IssueInstant, hence the tolerance on both sides).
	if d := e.EndsAt.Sub(sa.issued) - time.Duration(secs)*time.Second; d <= -time.Second || d >= 2*time.Second {
		t.Errorf("SessionDuration %d s issued at %s for a window ending %s", secs, sa.issued, e.EndsAt)
	}
	if d := e.EndsAt.Sub(sa.sessionEnd); d <= -time.Second || d >= 2*time.Second {
		t.Errorf("SessionNotOnOrAfter %s, the window ends %s", sa.sessionEnd, e.EndsAt)
	}
	if got := sa.attr(samlidp.AttrPrincipalTag + "WardenElevation"); got != pending.ID {
		t.Errorf("WardenElevation tag %q, want the request ID %s", got, pending.ID)
	}
	if got := sa.attr(samlidp.AttrPrincipalTag + "WardenReason"); got != "INC-7" {
		t.Errorf("WardenReason tag %q", got)
	}
	t.Logf("elevation %s until %s; SAML issued %s with SessionDuration %d s, SessionNotOnOrAfter %s; DurationSeconds %q",
		short, e.EndsAt.Format(time.RFC3339Nano), sa.issued.Format(time.RFC3339Nano), secs, sa.sessionEnd.Format(time.RFC3339Nano),
		forms[0].Get("DurationSeconds"))
	// moto takes the SessionDuration attribute as the session's length.
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil || exp.Sub(after) > time.Duration(secs)*time.Second || exp.Sub(after) > 30*time.Minute {
		t.Errorf("moto's Expiration %s (%v), %v after the call; SessionDuration %d s", c.Expiration, err, exp.Sub(after), secs)
	}
	// The audit log says the same.
	ev = env.lastAudit(t, "saml.response", "bob", func(ev audit.Event) bool { return ev.Detail["elevation"] == pending.ID })
	if ev.Object != elevAdminARN || ev.Detail["session_seconds"] != strconv.Itoa(secs) || ev.Detail["flow"] != "token-exchange" {
		t.Errorf("audit saml.response: %+v, want session_seconds %d", ev, secs)
	}
	// Cached: no second STS call.
	if _, _, err := runCLI(a, "creds", "--role", "prod/Admin", "--sts-endpoint", sts.srv.URL); err != nil || len(sts.requests()) != 1 {
		t.Errorf("creds again: %v, %d STS calls", err, len(sts.requests()))
	}

	// `warden elevations`: active.
	stdout, _, err = runCLI(a, "elevations")
	if err != nil || !regexp.MustCompile(`(?m)^`+short+` +active +prod/Admin +30m +INC-7 +until [^(]*\d\d:\d\d \(\d+m left\), approved by alice$`).MatchString(stdout) {
		t.Errorf("elevations: %v\n%s", err, stdout)
	}

	// Web identity for an elevated role: refused, with the way out.
	_, _, err = runCLI(a, "creds", "--role", "prod/Admin", "--via", ViaWebIdentity, "--sts-endpoint", sts.srv.URL)
	if !errors.As(err, &xe) || !xe.Elevated || !strings.Contains(err.Error(), "use --via saml") || !strings.HasPrefix(err.Error(), "prod/Admin ") {
		t.Errorf("creds --via web-identity while elevated: %v", err)
	}
	if n := len(sts.requests()); n != 1 {
		t.Errorf("STS was called for web identity (%d calls)", n)
	}

	// Bad input refused by wardend itself (the CLI's checks bypassed), as
	// one line with the request ID; bob's sign-in is fresh, so these are
	// not step-up refusals.
	for _, tc := range []struct {
		body   map[string]any
		status int
		code   string
		want   string
	}{
		{map[string]any{"roles": []string{elevAdminARN}, "seconds": 3600, "reason": "INC-9"}, 400, "invalid_request", "over the maximum of 30m"},
		{map[string]any{"roles": []string{elevAdminARN}, "seconds": 1200, "reason": "because"}, 400, "invalid_request", "reason"},
		{map[string]any{"roles": []string{elevDevARN}, "seconds": 1200, "reason": "INC-9"}, 403, "not_eligible", "not eligible for " + elevDevARN},
		{map[string]any{"roles": []string{"arn:aws:iam::999999999999:role/Admin"}, "seconds": 1200, "reason": "INC-9"}, 403, "not_eligible", "not eligible"},
	} {
		_, err := a.elevCall(ctx, false, http.MethodPost, "/api/elevations", tc.body, nil)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), " (request ID ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("POST /api/elevations %v: %v (%+v), want %d %s %q", tc.body, err, ae, tc.status, tc.code, tc.want)
		}
	}

	// Another user's request ID: alice cannot end bob's elevation.
	want := "No such request. (request ID "
	if _, _, err := runCLI(a2, "elevate", "--end", pending.ID); err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("alice: elevate --end bob's ID: %v", err)
	}
	elevRunBinary(t, bin, a2, 1, "warden: "+want, "elevate", "--end", pending.ID)
	if got := env.get(t, bobToken, pending.ID); got.State != elevApproved || got.EndedBy != "" {
		t.Fatalf("bob's elevation after alice's attempt to end it: %+v", got)
	}

	// --- bob ends it ---
	_, stderr, err = runCLI(a, "elevate", "--end")
	if err != nil || !strings.Contains(stderr, "Ended elevation "+short+" (prod/Admin) and removed its cached credentials.") {
		t.Fatalf("elevate --end: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(a.credsPath(credsKey(ViaSAML, elevAdminARN))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cached credentials of the ended elevation survived: %v", err)
	}
	if got := env.get(t, bobToken, pending.ID); got.State != elevEnded || got.EndedBy != "bob" {
		t.Fatalf("after elevate --end: %+v", got)
	}
	if _, _, err := runCLI(a, "creds", "--role", "prod/Admin", "--sts-endpoint", sts.srv.URL); err == nil || err.Error() != hint {
		t.Errorf("creds prod/Admin after the end: %v, want %q", err, hint)
	}
	_, _, err = runCLI(a, "credential-process", "--role", elevAdminARN, "--sts-endpoint", sts.srv.URL)
	if !errors.As(err, &xe) || !xe.Eligible || !strings.Contains(err.Error(), "is eligible, not standing") {
		t.Errorf("credential-process (the exchange) after the end: %v", err)
	}
	if n := len(sts.requests()); n != 1 {
		t.Errorf("%d STS calls in all, want 1", n)
	}
	stdout, _, err = runCLI(a, "elevations")
	if err != nil || !regexp.MustCompile(`(?m)^`+short+` +ended +prod/Admin +30m +INC-7 +early by bob at [^\n]*\d\d:\d\d$`).MatchString(stdout) {
		t.Errorf("elevations after the end: %v\n%s", err, stdout)
	}

	// Nothing else was stored: bob's one request, none of alice's.
	if m := env.mine(t, a); len(m.Elevations) != 1 || m.Elevations[0].ID != pending.ID {
		t.Errorf("bob's requests: %+v", m.Elevations)
	}
	if m := env.mine(t, a2); len(m.Elevations) != 0 || len(m.Eligible) != 0 {
		t.Errorf("alice's requests: %+v", m)
	}
}

// --- the environment ---

// elevE2EEnv is a wardend with second factors on a clock the test moves
// (off), bob's and alice's TOTP secrets, and wardend's store (audit log).
type elevE2EEnv struct {
	idp     *e2eIdP
	off     *atomic.Int64
	oath    string
	secrets map[string]string // username → base32 TOTP secret
	audit   *store.AuditStream
}

// now is wardend's clock (and the CLI's in this test).
func (env *elevE2EEnv) now() time.Time { return time.Now().Add(time.Duration(env.off.Load())) }

// startElevE2E starts wardend on the real OpenLDAP and Redis with
// elevE2ERules and an MFA key of its own, and gives bob and alice a TOTP
// factor (stored as wardend stores one).
func startElevE2E(t *testing.T) *elevE2EEnv {
	t.Helper()
	oath := testenv.Binary(t, "oathtool")
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(elevE2ERules), 0o600); err != nil {
		t.Fatal(err)
	}
	o, pw := apptest.RealOptions(t, rules)
	key := make([]byte, mfa.KeySize)
	_, _ = rand.Read(key)
	o.MFA.EncryptionKeyFile = filepath.Join(t.TempDir(), "mfa.key")
	if err := os.WriteFile(o.MFA.EncryptionKeyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := &elevE2EEnv{off: &atomic.Int64{}, oath: oath, secrets: map[string]string{}}
	o.Now = env.now

	ctx := context.Background()
	st, err := store.Open(ctx, o.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env.audit = store.NewAuditStream(st, 0)
	dir, err := ldap.New(o.Directory)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	factors, err := mfa.New(st, key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "alice"} {
		u, err := dir.Lookup(ctx, name)
		if err != nil {
			t.Fatalf("look up %s: %v", name, err)
		}
		secret := make([]byte, 20)
		_, _ = rand.Read(secret)
		env.secrets[name] = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
		if _, err := factors.ImportTOTP(ctx, u.ID, "e2e authenticator", env.secrets[name]); err != nil {
			t.Fatalf("TOTP factor of %s: %v", name, err)
		}
	}
	env.idp = &e2eIdP{pw: pw, off: env.off, base: apptest.Start(t, o)}
	return env
}

// lastAudit returns the newest audit event of action by actor that keep
// accepts (nil: any), waiting a little for wardend's background writer.
func (env *elevE2EEnv) lastAudit(t *testing.T, action, actor string, keep func(audit.Event) bool) audit.Event {
	t.Helper()
	for i := 0; i < 200; i++ {
		evs, _, err := env.audit.Query(context.Background(), store.AuditQuery{Action: action, Actor: actor, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if keep == nil || keep(ev) {
				return ev
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no audit event %s by %s", action, actor)
	return audit.Event{}
}

// mine is GET /api/elevations with a's cached access token.
func (env *elevE2EEnv) mine(t *testing.T, a *App) elevationList {
	t.Helper()
	status, body, _ := elevAPI(t, env.idp.base, elevBearer(t, a), http.MethodGet, "/api/elevations", nil)
	var l elevationList
	if status != http.StatusOK || json.Unmarshal(body, &l) != nil {
		t.Fatalf("GET /api/elevations: %d %s", status, body)
	}
	return l
}

// get is GET /api/elevations/{id}.
func (env *elevE2EEnv) get(t *testing.T, token, id string) Elevation {
	t.Helper()
	status, body, _ := elevAPI(t, env.idp.base, token, http.MethodGet, "/api/elevations/"+id, nil)
	var e Elevation
	if status != http.StatusOK || json.Unmarshal(body, &e) != nil {
		t.Fatalf("GET /api/elevations/%s: %d %s", id, status, body)
	}
	return e
}

// elevBearer is a's cached access token (read from the cache file, so that
// it is safe while a command of a runs in another goroutine).
func elevBearer(t *testing.T, a *App) string {
	t.Helper()
	var tc tokenCache
	if ok, err := readJSON(a.tokenPath(), &tc); !ok || tc.AccessToken == "" {
		t.Fatalf("no cached access token: %v", err)
	}
	return tc.AccessToken
}

// elevAPI sends method path to wardend's JSON API with token as the
// bearer and in (when not nil) as the JSON body.
func elevAPI(t *testing.T, base, token, method, path string, in any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

// elevRunBinary runs the built warden with a's directories and checks that
// it exits with code, prints nothing on stdout and one line on stderr that
// starts with want.
func elevRunBinary(t *testing.T, bin string, a *App, code int, want string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "WARDEN_CONFIG_DIR="+a.ConfigDir, "WARDEN_CACHE_DIR="+a.CacheDir)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != code || out.Len() != 0 ||
		strings.Count(errb.String(), "\n") != 1 || !strings.HasPrefix(errb.String(), want) {
		t.Errorf("warden %v: %v, stdout %q, stderr %q; want exit code %d and one line %q…", args, err, out.String(), errb.String(), code, want)
	}
}

// elevLogin runs `warden login` on a, approved by b through the pages
// (the browser opens verification_uri_complete); it fails the test at once
// when the approval fails, and returns what the browser went through.
func elevLogin(t *testing.T, a *App, b *elevBrowser) elevVisit {
	t.Helper()
	visits := make(chan elevVisit, 1)
	a.OpenBrowser = func(u string) error {
		go func() { visits <- b.approve(u) }()
		return nil
	}
	type result struct {
		stderr string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		_, stderr, err := runCLI(a, "login")
		done <- result{stderr, err}
	}()
	var v elevVisit
	select {
	case v = <-visits:
		if v.err != nil {
			t.Fatalf("%s's approval of the login: %v (pages %v)", b.user, v.err, v.pages)
		}
	case r := <-done:
		t.Fatalf("%s's login ended before the approval: %v\n%s", b.user, r.err, r.stderr)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("%s's login: %v\n%s", b.user, r.err, r.stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s's login did not finish after the approval", b.user)
	}
	a.OpenBrowser = func(string) error { t.Errorf("a browser was opened for %s", b.user); return ErrNoBrowser }
	return v
}

// --- the person at the browser ---

// elevBrowser is a user at a browser (cookie jar) with their authenticator
// app (oathtool on the user's secret, at wardend's time).
type elevBrowser struct {
	env  *elevE2EEnv
	user string
	c    *http.Client
}

func (env *elevE2EEnv) browser(user string) *elevBrowser {
	jar, _ := cookiejar.New(nil)
	return &elevBrowser{env: env, user: user, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// elevVisit is what the browser went through to approve a device code:
// pages "login", "code" (the code form, filled in from the link), "mfa"
// (the second-factor page; "mfa fresh" when it asked for a new factor
// although the session had one) and "confirm"; factorNext is where the
// second-factor page was to return to.
type elevVisit struct {
	pages      []string
	factorNext string
	err        error
}

// approve opens link (verification_uri_complete) and goes through the
// pages as they come: signs in, gives a TOTP code when asked, approves.
func (b *elevBrowser) approve(link string) (v elevVisit) {
	base := b.env.idp.base
	page, u, err := b.read(b.c.Get(link))
	for range 10 {
		if err != nil {
			v.err = err
			return v
		}
		if f, ferr := e2eForm(page, "/login"); ferr == nil {
			v.pages = append(v.pages, "login")
			f.Set("username", b.user)
			f.Set("password", b.env.idp.pw)
			page, u, err = b.read(b.c.PostForm(base+"/login", f))
			continue
		}
		if action, f, ok := elevFormPrefix(page, "/mfa/totp"); ok {
			if slices.ContainsFunc(v.pages, func(p string) bool { return strings.HasPrefix(p, "mfa") }) {
				v.err = fmt.Errorf("the second-factor page came back (%s)", elevPageError(page))
				return v
			}
			step := "mfa"
			if u.Query().Get("fresh") == "1" {
				step = "mfa fresh"
			}
			v.pages = append(v.pages, step)
			v.factorNext = u.Query().Get("next")
			code, cerr := b.totp()
			if cerr != nil {
				v.err = cerr
				return v
			}
			f.Set("code", code)
			page, u, err = b.read(b.c.PostForm(base+action, f))
			continue
		}
		if f, ferr := e2eForm(page, "/device"); ferr == nil {
			// The code form, filled in from the link.
			codes := 0
			for _, p := range v.pages {
				if p == "code" {
					codes++
				}
			}
			if f.Get("user_code") == "" || codes == 2 {
				v.err = fmt.Errorf("the code form came back (%s)", elevPageError(page))
				return v
			}
			v.pages = append(v.pages, "code")
			page, u, err = b.read(b.c.PostForm(base+"/device", f))
			continue
		}
		if f, ferr := e2eForm(page, "/device/approve"); ferr == nil {
			v.pages = append(v.pages, "confirm")
			page, _, err = b.read(b.c.PostForm(base+"/device/approve", f))
			if err == nil && !strings.Contains(page, "Device approved") {
				err = fmt.Errorf("after the approval: %s", elevPageError(page))
			}
			v.err = err
			return v
		}
		v.err = fmt.Errorf("unexpected page at %s: %s", u, elevPageError(page))
		return v
	}
	v.err = errors.New("too many pages")
	return v
}

// totp is the code of the user's authenticator at wardend's time.
func (b *elevBrowser) totp() (string, error) {
	out, err := exec.Command(b.env.oath, "--totp", "-b", b.env.secrets[b.user], "-N", fmt.Sprintf("@%d", b.env.now().Unix())).Output()
	if err != nil {
		return "", fmt.Errorf("oathtool: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func (b *elevBrowser) read(resp *http.Response, err error) (string, *url.URL, error) {
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", resp.Request.URL, fmt.Errorf("%s %s: %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, elevPageError(string(body)))
	}
	return string(body), resp.Request.URL, err
}

// elevFormPrefix returns the action and fields of the form of page whose
// action starts with prefix.
func elevFormPrefix(page, prefix string) (string, url.Values, bool) {
	for _, m := range e2eFormRE.FindAllStringSubmatch(page, -1) {
		a := e2eActionRE.FindStringSubmatch(m[1])
		if a == nil || !strings.HasPrefix(html.UnescapeString(a[1]), prefix) {
			continue
		}
		f := url.Values{}
		for _, in := range e2eInputRE.FindAllString(m[2], -1) {
			if n := e2eNameRE.FindStringSubmatch(in); n != nil {
				v := ""
				if vm := e2eValueRE.FindStringSubmatch(in); vm != nil {
					v = html.UnescapeString(vm[1])
				}
				f.Set(n[1], v)
			}
		}
		return html.UnescapeString(a[1]), f, true
	}
	return "", nil, false
}

var elevErrorRE = regexp.MustCompile(`(?s)class="error"[^>]*>\s*<p>(.*?)</p>`)

// elevPageError is the error message of a page, else its start.
func elevPageError(page string) string {
	if m := elevErrorRE.FindStringSubmatch(page); m != nil {
		return strings.TrimSpace(html.UnescapeString(m[1]))
	}
	if len(page) > 300 {
		page = page[:300]
	}
	return page
}

// --- STS ---

// stsRecorder is a reverse proxy to moto's STS that records every request.
type stsRecorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	forms []url.Values
}

func newSTSRecorder(t *testing.T, target string) *stsRecorder {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(tu)
	r := &stsRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.forms = append(r.forms, form)
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Host = tu.Host
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *stsRecorder) requests() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.forms)
}

// elevSAML is what the test reads of a SAML response for AWS.
type elevSAML struct {
	issued, sessionEnd time.Time
	attrs              map[string][]string
}

func (s elevSAML) attr(name string) string {
	if v := s.attrs[name]; len(v) == 1 {
		return v[0]
	}
	return fmt.Sprint(s.attrs[name])
}

func parseElevSAML(t *testing.T, b64 string) elevSAML {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("SAMLAssertion: %v", err)
	}
	var d struct {
		Assertions []struct {
			IssueInstant string `xml:"IssueInstant,attr"`
			Authn        struct {
				SessionNotOnOrAfter string `xml:"SessionNotOnOrAfter,attr"`
			} `xml:"AuthnStatement"`
			Attributes []struct {
				Name   string   `xml:"Name,attr"`
				Values []string `xml:"AttributeValue"`
			} `xml:"AttributeStatement>Attribute"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
	}
	if err := xml.Unmarshal(raw, &d); err != nil || len(d.Assertions) != 1 {
		t.Fatalf("SAMLAssertion: %v, %d assertions\n%s", err, len(d.Assertions), raw)
	}
	as := d.Assertions[0]
	s := elevSAML{attrs: map[string][]string{}}
	if s.issued, err = time.Parse(time.RFC3339Nano, as.IssueInstant); err != nil {
		t.Fatalf("IssueInstant: %v", err)
	}
	if s.sessionEnd, err = time.Parse(time.RFC3339Nano, as.Authn.SessionNotOnOrAfter); err != nil {
		t.Fatalf("SessionNotOnOrAfter: %v", err)
	}
	for _, at := range as.Attributes {
		s.attrs[at.Name] = append(s.attrs[at.Name], at.Values...)
	}
	return s
}
