package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/awsfed"
)

const (
	tRole     = "arn:aws:iam::111122223333:role/ReadOnly"
	tProvider = "arn:aws:iam::111122223333:saml-provider/Warden"
)

// fakeIdP serves discovery and the token exchange; it counts exchanges
// and answers a one-role SAML response.
type fakeIdP struct {
	srv       *httptest.Server
	exchanges atomic.Int32
	holds     map[string]bool
	// needMFA: roles refused with insufficient_user_authentication, with
	// their mfa_methods ("" for any second factor).
	needMFA map[string]string
}

func samlFor(role string) string {
	x := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Assertion><saml:AttributeStatement>` +
		`<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>bob</saml:AttributeValue></saml:Attribute>` +
		`<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>` + role + `,` + tProvider + `</saml:AttributeValue></saml:Attribute>` +
		`</saml:AttributeStatement></saml:Assertion></samlp:Response>`
	return base64.StdEncoding.EncodeToString([]byte(x))
}

func newFakeIdP(t testing.TB) *fakeIdP {
	f := &fakeIdP{holds: map[string]bool{tRole: true}, needMFA: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"device_authorization_endpoint":%q,"userinfo_endpoint":%q,"revocation_endpoint":%q}`,
			f.srv.URL, f.srv.URL+"/oauth/token", f.srv.URL+"/oauth/device_authorization", f.srv.URL+"/oauth/userinfo", f.srv.URL+"/oauth/revoke")
	})
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		f.exchanges.Add(1)
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		p := r.PostForm
		if p.Get("grant_type") != grantTokenExchange || p.Get("client_id") != "warden-cli" || p.Get("subject_token") != "AT-good" ||
			p.Get("subject_token_type") != tokenTypeAccess || p.Get("requested_token_type") != tokenTypeSAML2 {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_request","error_description":"bad exchange request"}`)
			return
		}
		if methods, ok := f.needMFA[p.Get("resource")]; ok {
			w.WriteHeader(400)
			body := map[string]string{"error": "insufficient_user_authentication",
				"error_description": "this role needs a sign-in with a second factor", "acr_values": "https://refeds.org/profile/mfa"}
			if methods != "" {
				body["mfa_methods"] = methods
			}
			json.NewEncoder(w).Encode(body)
			return
		}
		if !f.holds[p.Get("resource")] {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_target","error_description":"the user does not hold the role"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"issued_token_type":%q,"token_type":"N_A","expires_in":300}`, samlFor(p.Get("resource")), tokenTypeSAML2)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// fakeSTS checks each AssumeRoleWithSAML request and counts them.
type fakeSTS struct {
	srv   *httptest.Server
	calls atomic.Int32
	errs  chan string
	code  string // answer this error when set
	exp   time.Time
}

func newFakeSTS(t testing.TB) *fakeSTS {
	f := &fakeSTS{errs: make(chan string, 100), exp: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		r.ParseForm()
		p := r.PostForm
		bad := func(s string) { f.errs <- s; http.Error(w, s, 400) }
		if r.Header.Get("Authorization") != "" {
			bad("signed request")
			return
		}
		if p.Get("Action") != "AssumeRoleWithSAML" || p.Get("RoleArn") != tRole || p.Get("PrincipalArn") != tProvider {
			bad("bad body: " + p.Encode())
			return
		}
		if d := p.Get("DurationSeconds"); d != "" && d != "3600" && d != "7200" {
			bad("DurationSeconds " + d)
			return
		}
		raw, err := base64.StdEncoding.DecodeString(p.Get("SAMLAssertion"))
		if err != nil || bytes.Count(raw, []byte("Attributes/Role\"")) != 1 || bytes.Count(raw, []byte("AttributeValue>"+tRole+",")) != 1 {
			bad("SAML assertion does not hold exactly one Role value")
			return
		}
		if f.code != "" {
			w.WriteHeader(403)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>nope</Message></Error><RequestId>1</RequestId></ErrorResponse>`, f.code)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleWithSAMLResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithSAMLResult><Credentials><AccessKeyId>ASIA%d</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>st</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/ReadOnly/bob</Arn><AssumedRoleId>A:bob</AssumedRoleId></AssumedRoleUser></AssumeRoleWithSAMLResult></AssumeRoleWithSAMLResponse>`,
			f.calls.Load(), f.exp.Format(time.RFC3339))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSTS) check(t *testing.T) {
	t.Helper()
	for {
		select {
		case e := <-f.errs:
			t.Error("fake STS:", e)
		default:
			return
		}
	}
}

// signedInApp is an App with a config for idp and a cached access token.
func signedInApp(t testing.TB, idp string, now func() time.Time) (*App, *bytes.Buffer, *bytes.Buffer) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	a := &App{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Now: now, HTTP: &http.Client{Timeout: 10 * time.Second},
		ConfigDir: filepath.Join(dir, "config"), CacheDir: filepath.Join(dir, "cache"),
		IsTerminal: func() bool { return false }, OpenBrowser: func(string) error { return ErrNoBrowser }}
	if err := a.SaveConfig(Config{IdPURL: idp}); err != nil {
		t.Fatal(err)
	}
	if err := ensureDir(a.CacheDir); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(a.tokenPath(), tokenCache{IdPURL: idp, Issuer: idp, ClientID: ClientID, AccessToken: "AT-good",
		Expiry: now().Add(time.Hour), Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	return a, &out, &errb
}

func run(a *App, args ...string) error {
	root := Root(a)
	root.SetArgs(args)
	return root.ExecuteContext(context.Background())
}

func TestCredentialProcessCacheAndConcurrency(t *testing.T) {
	idp, sts := newFakeIdP(t), newFakeSTS(t)
	now := time.Now()
	clock := func() time.Time { return now }
	a, out, _ := signedInApp(t, idp.srv.URL, clock)

	// 16 concurrent callers: one exchange, one STS call.
	var wg sync.WaitGroup
	results := make([]string, 16)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var o bytes.Buffer
			b := *a
			b.Stdout = &o
			if err := run(&b, "credential-process", "--role", tRole, "--sts-endpoint", sts.srv.URL); err != nil {
				t.Error(err)
			}
			results[i] = o.String()
		}(i)
	}
	wg.Wait()
	sts.check(t)
	if n := sts.calls.Load(); n != 1 {
		t.Errorf("%d STS calls for 16 concurrent callers, want 1", n)
	}
	if n := idp.exchanges.Load(); n != 1 {
		t.Errorf("%d exchanges, want 1", n)
	}
	want := fmt.Sprintf(`{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"sk","SessionToken":"st","Expiration":%q,"AccountId":"111122223333"}`+"\n", sts.exp.Format(time.RFC3339))
	for _, r := range results {
		if r != want {
			t.Fatalf("output %q, want %q", r, want)
		}
	}
	// The cache file: 0600 in a 0700 directory.
	p := a.credsPath(credsKey(ViaSAML, tRole))
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("cache file %v %v", st, err)
	}
	if st, err := os.Stat(filepath.Dir(p)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("cache dir %v %v", st, err)
	}
	// 16 minutes before expiry: reused. 15 minutes before: renewed.
	now = sts.exp.Add(-16 * time.Minute)
	if err := run(a, "credential-process", "--role", tRole, "--sts-endpoint", sts.srv.URL); err != nil || sts.calls.Load() != 1 {
		t.Errorf("16 min left: err %v, %d calls", err, sts.calls.Load())
	}
	now = sts.exp.Add(-15 * time.Minute)
	// The token cache's access token must still be valid at the new time.
	writeJSON(a.tokenPath(), tokenCache{IdPURL: idp.srv.URL, Issuer: idp.srv.URL, ClientID: ClientID, AccessToken: "AT-good", Expiry: now.Add(time.Hour)})
	out.Reset()
	if err := run(a, "credential-process", "--role", tRole, "--sts-endpoint", sts.srv.URL); err != nil || sts.calls.Load() != 2 {
		t.Errorf("15 min left: err %v, %d calls", err, sts.calls.Load())
	}
	if !strings.Contains(out.String(), `"AccessKeyId":"ASIA2"`) {
		t.Errorf("renewed output %s", out)
	}
	sts.check(t)
}

func TestCredentialProcessErrors(t *testing.T) {
	idp, sts := newFakeIdP(t), newFakeSTS(t)
	a, out, _ := signedInApp(t, idp.srv.URL, time.Now)
	// A role the user does not hold.
	other := "arn:aws:iam::111122223333:role/Admin"
	err := run(a, "credential-process", "--role", other, "--sts-endpoint", sts.srv.URL)
	if err == nil || err.Error() != "you do not hold role "+other+"; `warden roles` lists yours" {
		t.Errorf("err %v", err)
	}
	// STS refuses: advice.
	sts.code = "IDPRejectedClaim"
	err = run(a, "credential-process", "--role", tRole, "--sts-endpoint", sts.srv.URL)
	if err == nil || !strings.Contains(err.Error(), "wardend aws setup") || strings.Contains(err.Error(), "\n") {
		t.Errorf("err %v", err)
	}
	// Not signed in, no terminal: ErrLoginRequired, one line, nothing on stdout.
	os.Remove(a.tokenPath())
	err = run(a, "credential-process", "--role", tRole, "--sts-endpoint", sts.srv.URL)
	if err != ErrLoginRequired || strings.Contains(err.Error(), "\n") || out.Len() != 0 {
		t.Errorf("err %v, stdout %q", err, out)
	}
	if err := run(a, "credential-process"); err == nil {
		t.Error("no --role accepted")
	}
	if err := run(a, "credential-process", "--role", "arn:aws:iam::1:role/x"); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("bad ARN: %v", err)
	}
	if err := run(a, "creds", "--role", tRole, "--duration", "1m"); err == nil || !strings.Contains(err.Error(), "15m") {
		t.Errorf("bad duration: %v", err)
	}
	sts.check(t)
}

// TestExchangeNeedsMFA: the IdP's insufficient_user_authentication (RFC
// 9470) becomes one line that says what to run; a role that accepts only a
// passkey says so.
func TestExchangeNeedsMFA(t *testing.T) {
	idp, sts := newFakeIdP(t), newFakeSTS(t)
	const (
		admin = "arn:aws:iam::111122223333:role/Admin"
		glass = "arn:aws:iam::111122223333:role/ops/BreakGlass"
	)
	idp.needMFA[admin] = ""
	idp.needMFA[glass] = "webauthn"
	a, out, _ := signedInApp(t, idp.srv.URL, time.Now)
	for _, c := range []struct{ role, want string }{
		{admin, `role Admin needs a sign-in with a second factor: run "warden login --mfa"`},
		{glass, `role BreakGlass needs a sign-in with a passkey: run "warden login --mfa"`},
	} {
		for _, cmd := range []string{"credential-process", "creds"} {
			err := run(a, cmd, "--role", c.role, "--sts-endpoint", sts.srv.URL)
			var xe *ExchangeError
			if err == nil || err.Error() != c.want || !errors.As(err, &xe) || !xe.NeedsMFA() {
				t.Errorf("%s %s: %v, want %q", cmd, c.role, err, c.want)
			}
		}
	}
	if out.Len() != 0 || sts.calls.Load() != 0 {
		t.Errorf("stdout %q, %d STS calls", out, sts.calls.Load())
	}
}

func TestCredsFormatsAndConsole(t *testing.T) {
	idp, sts := newFakeIdP(t), newFakeSTS(t)
	a, out, _ := signedInApp(t, idp.srv.URL, time.Now)
	if err := run(a, "creds", "--role", tRole, "--sts-endpoint", sts.srv.URL, "--duration", "2h", "--region", "eu-west-1"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"export AWS_ACCESS_KEY_ID=ASIA1\n", "export AWS_SESSION_TOKEN=st\n", "export AWS_REGION=eu-west-1\n", "export AWS_CREDENTIAL_EXPIRATION="} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("env output lacks %q:\n%s", w, out)
		}
	}
	var got url.Values
	fed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		fmt.Fprint(w, `{"SigninToken":"SIGNIN"}`)
	}))
	defer fed.Close()
	out.Reset()
	if err := run(a, "console", "--role", tRole, "--sts-endpoint", sts.srv.URL, "--print", "--federation-endpoint", fed.URL,
		"--destination", "https://console.aws.amazon.com/s3/"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Get("Session"), `"sessionId":"ASIA1"`) || !strings.HasPrefix(out.String(), fed.URL+"?Action=login") ||
		!strings.Contains(out.String(), "SigninToken=SIGNIN") {
		t.Errorf("console: %v %s", got, out)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("%d STS calls: the console did not reuse the cache", sts.calls.Load())
	}
	sts.check(t)
}

func TestPrincipalFromSAML(t *testing.T) {
	if p, err := principalFromSAML(samlFor(tRole), tRole); err != nil || p != tProvider {
		t.Errorf("%q %v", p, err)
	}
	if _, err := principalFromSAML(samlFor(tRole), "arn:aws:iam::111122223333:role/Other"); err == nil {
		t.Error("found a role that is not there")
	}
	if _, err := principalFromSAML("!!", tRole); err == nil {
		t.Error("bad base64 accepted")
	}
}

func TestPicker(t *testing.T) {
	roles := []Role{
		{RoleARN: "arn:aws:iam::111122223333:role/ReadOnly", AccountID: "111122223333", AccountName: "prod", RoleName: "ReadOnly"},
		{RoleARN: "arn:aws:iam::444455556666:role/Admin", AccountID: "444455556666", AccountName: "dev", RoleName: "Admin"},
		{RoleARN: "arn:aws:iam::444455556666:role/ReadOnly", AccountID: "444455556666", AccountName: "dev", RoleName: "ReadOnly"},
	}
	for _, tc := range []struct{ keys, want string }{
		{"\r", roles[0].RoleARN},
		{"\x1b[B\r", roles[1].RoleARN},
		{"devro\r", roles[2].RoleARN},
		{"adm\x7f\x7f\x7fdvad\r", roles[1].RoleARN},
	} {
		r, err := runPicker(&chunkReader{keys: tc.keys}, &bytes.Buffer{}, roles)
		if err != nil || r.RoleARN != tc.want {
			t.Errorf("keys %q: %v %v, want %s", tc.keys, r.RoleARN, err, tc.want)
		}
	}
	if _, err := runPicker(&chunkReader{keys: "\x03"}, &bytes.Buffer{}, roles); err == nil {
		t.Error("Ctrl-C picked a role")
	}
}

// chunkReader returns one key (escape sequences whole) per Read.
type chunkReader struct{ keys string }

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.keys == "" {
		return 0, fmt.Errorf("eof")
	}
	n := 1
	if strings.HasPrefix(c.keys, "\x1b[") {
		n = 3
	}
	n = copy(p, c.keys[:n])
	c.keys = c.keys[n:]
	return n, nil
}

var _ = awsfed.Credentials{}

// BenchmarkNewRoleCredentials: signed in, credentials for a role not in the
// cache (token exchange + STS, both local fakes over HTTP).
func BenchmarkNewRoleCredentials(b *testing.B) {
	idp, sts := newFakeIdP(b), newFakeSTS(b)
	a, _, _ := signedInApp(b, idp.srv.URL, time.Now)
	a.Stdout = io.Discard
	path := a.credsPath(credsKey(ViaSAML, tRole))
	for i := 0; i < b.N; i++ {
		os.Remove(path)
		if err := run(a, "credential-process", "--role", tRole, "--sts-endpoint", sts.srv.URL); err != nil {
			b.Fatal(err)
		}
	}
}
