package cli

// The whole CLI end to end: a real wardend (app.Run on the real OpenLDAP and
// Redis, the rules of config/mappings.example.yaml), the device login
// approved through the real pages, and credentials from a fake STS that
// verifies what it is sent independently (xmlsec1, coreos/go-oidc).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	wdReadOnly = "arn:aws:iam::111122223333:role/ReadOnly"
	wdProvider = "arn:aws:iam::111122223333:saml-provider/warden"
	wdGovView  = "arn:aws-us-gov:iam::777788889999:role/ViewOnly"
)

// wdCredJSON is the credential_process output, Version 1.
type wdCredJSON struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

func TestCLIAgainstWardendE2E(t *testing.T) {
	idp := wdStart(t)
	var mu sync.Mutex
	want := wdExpect{roleARN: wdReadOnly, providerARN: wdProvider, duration: "3600", roleName: "ReadOnly", account: "111122223333"}
	sts := newWdSTS(t, idp, true, func() wdExpect { mu.Lock(); defer mu.Unlock(); return want })
	a := testApp(t)

	// 1. configure + login --no-browser, approved as bob through the pages.
	stderr := wdLogin(t, a, idp, "bob")
	if !strings.Contains(stderr, "Signed in as bob.") {
		t.Fatalf("login stderr:\n%s", stderr)
	}

	// 1b. status --json: wardend said how long the sign-in lasts
	// (refresh_token_expires_in: refresh_token_lifetime, 12 h by default).
	stdout, stderr, err := runCLI(a, "status", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var st struct {
		Username   string    `json:"username"`
		ValidUntil time.Time `json:"valid_until"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Username != "bob" || st.ValidUntil.Before(time.Now().Add(11*time.Hour)) ||
		st.ValidUntil.After(time.Now().Add(12*time.Hour+time.Minute)) {
		t.Errorf("status --json: valid_until %v (%v)\n%s", st.ValidUntil, err, stdout)
	}

	// 2. roles --json: bob's roles from the example rules (developers and,
	// through nesting, engineering).
	stdout, stderr, err = runCLI(a, "roles", "--json")
	if err != nil {
		t.Fatalf("roles: %v\n%s", err, stderr)
	}
	var roles []Role
	if err := json.Unmarshal([]byte(stdout), &roles); err != nil {
		t.Fatalf("roles --json: %v\n%s", err, stdout)
	}
	got := map[string]Role{}
	for _, r := range roles {
		got[r.RoleARN] = r
	}
	for _, w := range []Role{
		{RoleARN: wdReadOnly, AccountID: "111122223333", AccountName: "prod", RoleName: "ReadOnly", Partition: "aws", SessionSeconds: 3600},
		{RoleARN: "arn:aws:iam::444455556666:role/PowerUser", AccountID: "444455556666", AccountName: "staging", RoleName: "PowerUser", Partition: "aws", SessionSeconds: 28800},
		{RoleARN: "arn:aws:iam::111122223333:role/ViewOnly", AccountID: "111122223333", AccountName: "prod", RoleName: "ViewOnly", Partition: "aws"},
		{RoleARN: "arn:aws-us-gov:iam::777788889999:role/ViewOnly", AccountID: "777788889999", AccountName: "sandbox", RoleName: "ViewOnly", Partition: "aws-us-gov"},
	} {
		g := got[w.RoleARN]
		g.ProviderARN = ""
		if g != w {
			t.Errorf("roles: %s is %+v, want %+v", w.RoleARN, got[w.RoleARN], w)
		}
	}
	if _, ok := got["arn:aws:iam::111122223333:role/AdministratorAccess"]; ok || len(roles) != 5 {
		t.Errorf("bob holds %d roles: %+v", len(roles), roles)
	}

	// 3. credential-process via saml.
	credProcess := func(via string) wdCredJSON {
		t.Helper()
		stdout, stderr, err := runCLI(a, "credential-process", "--role", wdReadOnly, "--via", via, "--sts-endpoint", sts.srv.URL)
		for _, p := range sts.problems() {
			t.Errorf("fake STS (%s): %s", via, p)
		}
		if err != nil {
			t.Fatalf("credential-process --via %s: %v\n%s", via, err, stderr)
		}
		var c wdCredJSON
		if err := json.Unmarshal([]byte(stdout), &c); err != nil {
			t.Fatalf("credential-process output: %v\n%s", err, stdout)
		}
		exp, err := time.Parse(time.RFC3339, c.Expiration)
		if c.Version != 1 || !strings.HasPrefix(c.AccessKeyID, "ASIAFAKE") || c.SecretAccessKey != "fake-secret" ||
			c.SessionToken != "fake-session" || err != nil || !exp.Equal(sts.exp) {
			t.Fatalf("credential-process --via %s printed %s", via, stdout)
		}
		return c
	}
	c := credProcess(ViaSAML)
	if n := sts.calls.Load(); n != 1 {
		t.Fatalf("%d STS calls, want 1", n)
	}
	// Cached now: the same credentials, no STS call.
	if c2 := credProcess(ViaSAML); c2 != c || sts.calls.Load() != 1 {
		t.Fatalf("second call: %+v (STS calls %d)", c2, sts.calls.Load())
	}

	// 4. via web-identity (its own cache entry).
	if c3 := credProcess(ViaWebIdentity); c3.AccessKeyID == c.AccessKeyID || sts.calls.Load() != 2 {
		t.Fatalf("web-identity: %+v (STS calls %d)", c3, sts.calls.Load())
	}
	sts.mu.Lock()
	last := sts.requests[len(sts.requests)-1]
	sts.mu.Unlock()
	if last.Get("Action") != "AssumeRoleWithWebIdentity" {
		t.Fatalf("web-identity went to %s", last.Get("Action"))
	}

	// The verifiers are not blind: a changed role breaks the SAML signature,
	// a changed payload the JWT's.
	sts.mu.Lock()
	samlReq, webReq := sts.requests[0], sts.requests[len(sts.requests)-1]
	sts.mu.Unlock()
	raw, _ := base64.StdEncoding.DecodeString(samlReq.Get("SAMLAssertion"))
	tampered := strings.Replace(string(raw), "role/ReadOnly,", "role/Admin,", 1)
	mu.Lock()
	want.roleARN = "arn:aws:iam::111122223333:role/Admin"
	mu.Unlock()
	if p := sts.checkSAML(base64.StdEncoding.EncodeToString([]byte(tampered)), want); tampered == string(raw) ||
		len(p) != 1 || !strings.Contains(p[0], "xmlsec1 rejects") {
		t.Errorf("a tampered SAML response: %q", p)
	}
	mu.Lock()
	want.roleARN = wdReadOnly
	mu.Unlock()
	parts := strings.Split(webReq.Get("WebIdentityToken"), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"ReadOnly"`, `"Admin"`, 1)))
	if p := sts.checkWebIdentity(context.Background(), strings.Join(parts, "."), want); len(p) != 1 || !strings.Contains(p[0], "go-oidc rejects") {
		t.Errorf("a tampered web-identity token: %q", p)
	}

	// 4b. bob's GovCloud role, where this wardend signs SAML for the aws
	// partition only: web identity by default (verified by go-oidc), and
	// --via saml says what to do instead of the IdP's words.
	mu.Lock()
	saved := want
	want = wdExpect{roleARN: wdGovView, roleName: "ViewOnly", account: "777788889999"}
	mu.Unlock()
	stdout, stderr, err = runCLI(a, "credential-process", "--role", wdGovView, "--sts-endpoint", sts.srv.URL)
	for _, p := range sts.problems() {
		t.Errorf("fake STS (GovCloud): %s", p)
	}
	sts.mu.Lock()
	last = sts.requests[len(sts.requests)-1]
	sts.mu.Unlock()
	if err != nil || !strings.Contains(stdout, `"AccessKeyId":"ASIAFAKE3"`) || last.Get("Action") != "AssumeRoleWithWebIdentity" {
		t.Fatalf("GovCloud role: %v, %s via %s\n%s", err, stdout, last.Get("Action"), stderr)
	}
	_, _, err = runCLI(a, "credential-process", "--role", wdGovView, "--via", "saml", "--sts-endpoint", sts.srv.URL)
	if err == nil || !strings.Contains(err.Error(), "use --via web-identity") || strings.Contains(err.Error(), "id_token") {
		t.Errorf("GovCloud role --via saml: %v", err)
	}
	mu.Lock()
	want = saved
	mu.Unlock()
	// 4c. --duration against the session length in wardend's listing
	// (prod/ReadOnly: 1h), and a typo'd role.
	for _, role := range []string{"prod/ReadOnly", wdReadOnly} {
		_, _, err = runCLI(a, "creds", "--role", role, "--duration", "2h", "--sts-endpoint", sts.srv.URL)
		if err == nil || !strings.Contains(err.Error(), "prod/ReadOnly allows sessions of at most 1h") {
			t.Errorf("--role %s --duration 2h: %v", role, err)
		}
	}
	if _, _, err = runCLI(a, "creds", "--role", "prod/ReadOnyl"); err == nil || !strings.Contains(err.Error(), "did you mean prod/ReadOnly?") {
		t.Errorf("a typo'd role: %v", err)
	}

	// 5. A role bob does not hold (the example rules make it eligible for
	// him: the refusal says how to request it): wardend refuses the exchange.
	for _, via := range []string{ViaSAML, ViaWebIdentity} {
		stdout, stderr, err = runCLI(a, "credential-process", "--role", "arn:aws:iam::111122223333:role/AdministratorAccess",
			"--via", via, "--sts-endpoint", sts.srv.URL)
		if err == nil || !(strings.Contains(err.Error(), "do not hold") || strings.Contains(err.Error(), "is eligible, not standing")) || stdout != "" {
			t.Errorf("--via %s, a role not held: %v, stdout %q", via, err, stdout)
		}
	}
	if sts.calls.Load() != 3 {
		t.Errorf("STS was called for a role not held (%d calls)", sts.calls.Load())
	}

	// 6. logout; then credential-process (no cache, no terminal) fails with
	// one line on stderr and nothing on stdout, as the real binary.
	if _, stderr, err := runCLI(a, "logout"); err != nil || !strings.Contains(stderr, "Revoked the sign-in of bob") {
		t.Fatalf("logout: %v\n%s", err, stderr)
	}
	stdout, _, err = runCLI(a, "credential-process", "--role", wdReadOnly, "--sts-endpoint", sts.srv.URL)
	if !errors.Is(err, ErrLoginRequired) || stdout != "" {
		t.Fatalf("credential-process after logout: %v, stdout %q", err, stdout)
	}
	bin := buildWarden(t)
	cmd := exec.Command(bin, "credential-process", "--role", wdReadOnly, "--sts-endpoint", sts.srv.URL)
	cmd.Env = append(os.Environ(), "WARDEN_CONFIG_DIR="+a.ConfigDir, "WARDEN_CACHE_DIR="+a.CacheDir)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || out.Len() != 0 ||
		strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "run `warden login`") {
		t.Fatalf("warden credential-process after logout: %v, stdout %q, stderr %q", err, out.String(), errb.String())
	}
	if n := sts.calls.Load(); n != 3 {
		t.Errorf("%d STS calls in all, want 3", n)
	}
}

// BenchmarkNewRoleRealIdP: signed in at a real wardend (login once in the
// setup), each iteration asks for credentials for a role whose cache entry
// was removed: the token exchange at wardend (LDAP lookup, rules, signed
// SAML response) and the fake STS, over loopback HTTP.
func BenchmarkNewRoleRealIdP(b *testing.B) {
	idp := wdStart(b)
	want := wdExpect{roleARN: wdReadOnly, providerARN: wdProvider, duration: "3600", roleName: "ReadOnly", account: "111122223333"}
	sts := newWdSTS(b, idp, false, func() wdExpect { return want })
	a := testApp(b)
	wdLogin(b, a, idp, "bob")
	path := a.credsPath(credsKey(ViaSAML, wdReadOnly))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		_ = os.Remove(path)
		if _, stderr, err := runCLI(a, "credential-process", "--role", wdReadOnly, "--sts-endpoint", sts.srv.URL); err != nil {
			b.Fatalf("%v\n%s", err, stderr)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
	if p := sts.problems(); len(p) > 0 {
		b.Fatalf("fake STS: %v", p)
	}
	if int(sts.calls.Load()) != b.N {
		b.Fatalf("%d STS calls for %d iterations", sts.calls.Load(), b.N)
	}
}
