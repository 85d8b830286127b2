package cli

// The device login end to end against a real wardend (internal/app.Run on
// real Redis and the real OpenLDAP of the LDAP_* env): the CLI's commands as
// the device, an HTTP client with a cookie jar signing in as bob through the
// real /login and /device pages as the user.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/app/apptest"
)

// e2eRules grants bob's groups two roles in one account.
const e2eRules = `
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
  - id: eng
    group: engineering
    roles:
      - arn: arn:aws:iam::111122223333:role/ReadOnly
        max_session_seconds: 5400
`

// e2eIdP is a running wardend.
type e2eIdP struct {
	base string
	pw   string
	off  *atomic.Int64 // wardend's clock offset
}

// startWardend runs the real wardend (app.Run) on a loopback listener with
// real Redis and OpenLDAP, a 1 s device poll interval and 1 min device
// codes; it stops when the test ends.
func startWardend(t *testing.T) *e2eIdP {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(e2eRules), 0o600); err != nil {
		t.Fatal(err)
	}
	o, pw := apptest.RealOptions(t, rules)
	idp := &e2eIdP{pw: pw, off: &atomic.Int64{}}
	o.Now = func() time.Time { return time.Now().Add(time.Duration(idp.off.Load())) }
	idp.base = apptest.Start(t, o)
	return idp
}

var (
	e2eFormRE   = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	e2eActionRE = regexp.MustCompile(`action="([^"]*)"`)
	e2eInputRE  = regexp.MustCompile(`<input\b[^>]*>`)
	e2eNameRE   = regexp.MustCompile(`\bname="([^"]*)"`)
	e2eValueRE  = regexp.MustCompile(`\bvalue="([^"]*)"`)
)

// e2eForm returns the fields of the form of page that posts to action.
func e2eForm(page, action string) (url.Values, error) {
	for _, m := range e2eFormRE.FindAllStringSubmatch(page, -1) {
		a := e2eActionRE.FindStringSubmatch(m[1])
		if a == nil || html.UnescapeString(a[1]) != action {
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
		return f, nil
	}
	return nil, fmt.Errorf("no form to %s in the page", action)
}

// e2eUser is the person at the browser: signs in as user and approves (or
// denies) the code, through the real pages.
type e2eUser struct {
	idp  *e2eIdP
	c    *http.Client
	user string
}

func newE2EUser(idp *e2eIdP, user string) *e2eUser {
	jar, _ := cookiejar.New(nil)
	return &e2eUser{idp: idp, user: user, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (u *e2eUser) page(resp *http.Response, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
	}
	return string(b), err
}

// open follows link (verification_uri or verification_uri_complete), signs
// in, fills in code when the form is empty, and approves or denies.
func (u *e2eUser) open(link, code string, approve bool) error {
	page, err := u.page(u.c.Get(link))
	if err != nil {
		return err
	}
	if f, err := e2eForm(page, "/login"); err == nil {
		f.Set("username", u.user)
		f.Set("password", u.idp.pw)
		if page, err = u.page(u.c.PostForm(u.idp.base+"/login", f)); err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
	}
	f, err := e2eForm(page, "/device")
	if err != nil {
		return err
	}
	if f.Get("user_code") == "" {
		f.Set("user_code", code)
	}
	if page, err = u.page(u.c.PostForm(u.idp.base+"/device", f)); err != nil {
		return err
	}
	action := "/device/approve"
	if !approve {
		action = "/device/deny"
	}
	if f, err = e2eForm(page, action); err != nil {
		return err
	}
	_, err = u.page(u.c.PostForm(u.idp.base+action, f))
	return err
}

// syncBuffer is a bytes.Buffer safe for the spinner and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI executes `warden args...` on a with fresh output buffers.
func runCLI(a *App, args ...string) (stdout, stderr string, err error) {
	var out bytes.Buffer
	errb := &syncBuffer{}
	a.Stdout, a.Stderr = &out, errb
	root := Root(a)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

func TestLoginRolesLogoutE2E(t *testing.T) {
	idp := startWardend(t)
	a := testApp(t)
	if _, _, err := runCLI(a, "configure", "--idp-url", idp.base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(a, "roles", "--no-login"); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("roles before login: %v", err)
	}

	// The browser opens verification_uri_complete; bob approves there.
	bob := newE2EUser(idp, "bob")
	var opened []string
	browserErr := make(chan error, 1)
	a.OpenBrowser = func(u string) error {
		opened = append(opened, u)
		go func() { browserErr <- bob.open(u, "", true) }()
		return nil
	}
	a.IsTerminal = func() bool { return true } // the spinner runs too
	stdout, stderr, err := runCLI(a, "login")
	if err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if err := <-browserErr; err != nil {
		t.Fatalf("approval: %v", err)
	}
	if stdout != "" {
		t.Errorf("login wrote to stdout: %q", stdout)
	}
	for _, want := range []string{"To sign in, open " + idp.base + "/device", "enter the code:", "QR code", "█", "Signed in as bob."} {
		if !strings.Contains(stderr, want) {
			t.Errorf("login stderr lacks %q:\n%s", want, stderr)
		}
	}
	if len(opened) != 1 || !strings.HasPrefix(opened[0], idp.base+"/device?user_code=") {
		t.Fatalf("browser opened on %v", opened)
	}
	if m := mode(t, a.tokenPath()); m != 0o600 {
		t.Errorf("token.json mode %o", m)
	}
	if m := mode(t, a.CacheDir); m != 0o700 {
		t.Errorf("cache dir mode %o", m)
	}
	var tc tokenCache
	if ok, _ := readJSON(a.tokenPath(), &tc); !ok || tc.RefreshToken == "" || tc.IDToken == "" || tc.Issuer == "" || tc.Username != "bob" {
		t.Fatalf("token cache: %+v", tc)
	}
	if strings.Contains(stderr, tc.AccessToken) || strings.Contains(stderr, tc.RefreshToken) {
		t.Fatal("a token was printed")
	}

	// Signed in: no prompt at all, with a valid access token...
	opened = nil
	if _, stderr, err := runCLI(a, "login"); err != nil || !strings.Contains(stderr, "Already signed in as bob until") || len(opened) != 0 {
		t.Fatalf("second login: %v %q %v", err, stderr, opened)
	}
	// ...and with only the refresh token (the access token expired).
	a.Now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	idp.off.Store(int64(20 * time.Minute))
	if _, stderr, err := runCLI(a, "login"); err != nil || !strings.Contains(stderr, "Already signed in as bob until") || len(opened) != 0 {
		t.Fatalf("login with a refresh token only: %v %q %v", err, stderr, opened)
	}
	var tc2 tokenCache
	_, _ = readJSON(a.tokenPath(), &tc2)
	if tc2.RefreshToken == tc.RefreshToken || tc2.AccessToken == tc.AccessToken {
		t.Fatal("the refresh did not rotate the tokens")
	}
	a.Now, tc = time.Now, tc2
	idp.off.Store(0)

	// bob's roles, from userinfo.
	stdout, _, err = runCLI(a, "roles")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ACCOUNT NAME", "prod", "111122223333", "Developer", "1h", "ReadOnly", "1h30m"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("roles table lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, err = runCLI(a, "roles", "--json")
	var roles []Role
	if err != nil || json.Unmarshal([]byte(stdout), &roles) != nil || len(roles) != 2 {
		t.Fatalf("roles --json: %v %q", err, stdout)
	}
	want := Role{RoleARN: "arn:aws:iam::111122223333:role/Developer", AccountID: "111122223333", AccountName: "prod",
		RoleName: "Developer", Partition: "aws", SessionSeconds: 3600}
	if roles[0] != want && roles[1] != want {
		t.Fatalf("roles %+v lack %+v", roles, want)
	}

	// logout revokes at the IdP and wipes the cache.
	if err := os.MkdirAll(filepath.Join(a.CacheDir, "creds"), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(a.CacheDir, "creds", "x.json"), []byte("{}"), 0o600)
	_, stderr, err = runCLI(a, "logout")
	if err != nil || !strings.Contains(stderr, "Revoked the sign-in of bob") || !strings.Contains(stderr, "1 cached credential") {
		t.Fatalf("logout: %v\n%s", err, stderr)
	}
	for _, p := range []string{a.tokenPath(), a.rolesPath(), filepath.Join(a.CacheDir, "creds")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the logout", p)
		}
	}
	// The revoked refresh token no longer works at the IdP.
	resp, err := http.PostForm(idp.base+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tc.RefreshToken}, "client_id": {ClientID}})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after logout: %d %v", resp.StatusCode, body)
	}
	if _, _, err := runCLI(a, "roles", "--no-login"); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("roles after logout: %v", err)
	}
	if _, stderr, err := runCLI(a, "logout"); err != nil || !strings.Contains(stderr, "Not signed in") {
		t.Fatalf("second logout: %v %q", err, stderr)
	}
}

// --no-browser: nothing is opened; the user types the printed code at the
// printed URL.
func TestLoginNoBrowserE2E(t *testing.T) {
	idp := startWardend(t)
	a := testApp(t)
	if err := a.SaveConfig(Config{IdPURL: idp.base}); err != nil {
		t.Fatal(err)
	}
	a.OpenBrowser = func(string) error { t.Error("browser opened with --no-browser"); return nil }
	errb := &syncBuffer{}
	a.Stderr = errb
	done := make(chan error, 1)
	go func() {
		root := Root(a)
		root.SetArgs([]string{"login", "--no-browser"})
		done <- root.Execute()
	}()
	re := regexp.MustCompile(`open (\S+)\nand enter the code:  (\S+)\n`)
	var m []string
	for i := 0; m == nil && i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		m = re.FindStringSubmatch(errb.String())
	}
	if m == nil {
		t.Fatalf("no URL and code printed:\n%s", errb.String())
	}
	if m[1] != idp.base+"/device" {
		t.Fatalf("printed URL %q", m[1])
	}
	if err := newE2EUser(idp, "bob").open(m[1], m[2], true); err != nil {
		t.Fatalf("approval: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("login: %v\n%s", err, errb.String())
	}
	if tok, err := a.AccessToken(context.Background(), false); err != nil || tok == "" {
		t.Fatalf("AccessToken after login: %v", err)
	}
}

// A denied request and an expired code end the login with a clear error.
func TestLoginDeniedAndExpiredE2E(t *testing.T) {
	idp := startWardend(t)
	for _, tc := range []struct {
		name    string
		browser func(u string) error
		want    error
	}{
		{"denied", func(u string) error { return newE2EUser(idp, "bob").open(u, "", false) }, ErrAccessDenied},
		{"expired", func(string) error { idp.off.Store(int64(2 * time.Minute)); return nil }, ErrCodeExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer idp.off.Store(0)
			a := testApp(t)
			if err := a.SaveConfig(Config{IdPURL: idp.base}); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			a.OpenBrowser = func(u string) error { go func() { errc <- tc.browser(u) }(); return nil }
			_, stderr, err := runCLI(a, "login")
			if !errors.Is(err, tc.want) {
				t.Fatalf("login: %v, want %v\n%s", err, tc.want, stderr)
			}
			if err := <-errc; err != nil {
				t.Fatalf("browser: %v", err)
			}
			if _, err := os.Stat(a.tokenPath()); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a token was cached")
			}
		})
	}
}

// logout without the IdP still wipes the cache and says the revocation
// failed.
func TestLogoutOffline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	a := testApp(t)
	seedExpired(t, a, dead, "rt-1")
	_, stderr, err := runCLI(a, "logout")
	if err != nil || !strings.Contains(stderr, "Could not revoke") || !strings.Contains(stderr, "Removed the cached tokens") {
		t.Fatalf("offline logout: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(a.tokenPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("token.json survived")
	}
}
