package cli

// Helpers of e2e_wardend_test.go: a real wardend seeded with
// config/mappings.example.yaml, the person at the browser (cookie jar, the
// real /login and /device pages), and a fake STS that checks every request
// with independent verifiers (xmlsec1 for the SAML signature, coreos/go-oidc
// for the web-identity token).

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/app/apptest"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/wardenidp/warden/internal/testenv"
)

// wdIdP is a running wardend.
type wdIdP struct {
	base string
	pw   string
}

// wdStart runs the real wardend (app.Run) on loopback with real Redis and
// OpenLDAP and the rules of config/mappings.example.yaml (read-only); it
// stops when the test ends.
func wdStart(t testing.TB) *wdIdP {
	t.Helper()
	rules, err := filepath.Abs(filepath.Join("..", "..", "config", "mappings.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o, pw := apptest.RealOptions(t, rules)
	return &wdIdP{base: apptest.Start(t, o), pw: pw}
}

// wdApprove is bob at the browser: opens link, signs in at /login as user,
// enters code when the form has none, confirms and approves.
func wdApprove(idp *wdIdP, user, link, code string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page := func(resp *http.Response, err error) (string, error) {
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
	p, err := page(c.Get(link))
	if err != nil {
		return err
	}
	if f, err := e2eForm(p, "/login"); err == nil {
		f.Set("username", user)
		f.Set("password", idp.pw)
		if p, err = page(c.PostForm(idp.base+"/login", f)); err != nil {
			return fmt.Errorf("sign in: %w", err)
		}
	}
	f, err := e2eForm(p, "/device")
	if err != nil {
		return err
	}
	if f.Get("user_code") == "" {
		f.Set("user_code", code)
	}
	if p, err = page(c.PostForm(idp.base+"/device", f)); err != nil {
		return err
	}
	if f, err = e2eForm(p, "/device/approve"); err != nil {
		return err
	}
	_, err = page(c.PostForm(idp.base+"/device/approve", f))
	return err
}

// wdLogin configures a for idp and runs `warden login --no-browser`; the
// URL and code printed on stderr are approved by user through the pages.
func wdLogin(t testing.TB, a *App, idp *wdIdP, user string) string {
	t.Helper()
	if _, _, err := runCLI(a, "configure", "--idp-url", idp.base); err != nil {
		t.Fatalf("configure: %v", err)
	}
	a.OpenBrowser = func(string) error { t.Error("browser opened with --no-browser"); return nil }
	errb := &syncBuffer{}
	a.Stdout, a.Stderr = &syncBuffer{}, errb
	done := make(chan error, 1)
	go func() {
		root := Root(a)
		root.SetArgs([]string{"login", "--no-browser"})
		done <- root.Execute()
	}()
	re := regexp.MustCompile(`open (\S+)\nand enter the code:  (\S+)\n`)
	var m []string
	for i := 0; m == nil && i < 200; i++ {
		time.Sleep(25 * time.Millisecond)
		m = re.FindStringSubmatch(errb.String())
	}
	if m == nil {
		t.Fatalf("login printed no URL and code:\n%s", errb.String())
	}
	if m[1] != idp.base+"/device" {
		t.Fatalf("login printed the URL %q", m[1])
	}
	if err := wdApprove(idp, user, m[1], m[2]); err != nil {
		t.Fatalf("approval as %s: %v", user, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login: %v\n%s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("login did not finish after the approval:\n%s", errb.String())
	}
	return errb.String()
}

// wdSTS is a fake STS: it checks every request and records what it saw.
// With deep set, the SAML signature is verified with xmlsec1 against the
// certificate of wardend's /saml/metadata, and web-identity tokens with
// coreos/go-oidc against wardend's discovery and JWKS.
type wdSTS struct {
	srv   *httptest.Server
	deep  bool
	calls atomic.Int32

	mu       sync.Mutex
	errs     []string
	requests []url.Values

	xmlsec, cert string
	verifier     *oidc.IDTokenVerifier
	exp          time.Time
}

// wdExpect is what the fake STS wants in each request.
type wdExpect struct {
	roleARN, providerARN, duration, roleName, account string
}

func newWdSTS(t testing.TB, idp *wdIdP, deep bool, want func() wdExpect) *wdSTS {
	t.Helper()
	s := &wdSTS{deep: deep, exp: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	if deep {
		s.xmlsec = testenv.Binary(t, "xmlsec1")
		s.cert = wdMetadataCert(t, idp)
		p, err := oidc.NewProvider(context.Background(), idp.base)
		if err != nil {
			t.Fatalf("go-oidc discovery at wardend: %v", err)
		}
		s.verifier = p.Verifier(&oidc.Config{ClientID: "sts.amazonaws.com"})
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.calls.Add(1)
		_ = r.ParseForm()
		p := r.PostForm
		s.mu.Lock()
		s.requests = append(s.requests, p)
		s.mu.Unlock()
		var problems []string
		bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
		if r.Header.Get("Authorization") != "" {
			bad("the request is signed")
		}
		exp := want()
		if p.Get("RoleArn") != exp.roleARN {
			bad("RoleArn %q, want %q", p.Get("RoleArn"), exp.roleARN)
		}
		if p.Get("DurationSeconds") != exp.duration {
			bad("DurationSeconds %q, want %q", p.Get("DurationSeconds"), exp.duration)
		}
		action := p.Get("Action")
		switch action {
		case "AssumeRoleWithSAML":
			if p.Get("PrincipalArn") != exp.providerARN {
				bad("PrincipalArn %q, want %q", p.Get("PrincipalArn"), exp.providerARN)
			}
			problems = append(problems, s.checkSAML(p.Get("SAMLAssertion"), exp)...)
		case "AssumeRoleWithWebIdentity":
			if p.Get("RoleSessionName") == "" {
				bad("no RoleSessionName")
			}
			problems = append(problems, s.checkWebIdentity(r.Context(), p.Get("WebIdentityToken"), exp)...)
		default:
			bad("Action %q", action)
		}
		if len(problems) > 0 {
			s.mu.Lock()
			s.errs = append(s.errs, problems...)
			s.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>%s</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
				html.EscapeString(strings.Join(problems, "; ")))
			return
		}
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials><AccessKeyId>ASIAFAKE%[2]d</AccessKeyId><SecretAccessKey>fake-secret</SecretAccessKey><SessionToken>fake-session</SessionToken><Expiration>%[3]s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::%[4]s:assumed-role/%[5]s/bob</Arn><AssumedRoleId>AROAFAKE:bob</AssumedRoleId></AssumedRoleUser></%[1]sResult><ResponseMetadata><RequestId>r%[2]d</RequestId></ResponseMetadata></%[1]sResponse>`,
			action, n, s.exp.Format(time.RFC3339), exp.account, exp.roleName)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// problems returns and forgets what the fake STS found wrong.
func (s *wdSTS) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.errs
	s.errs = nil
	return e
}

// wdMetadataCert writes the signing certificate of wardend's SAML metadata
// as PEM and returns its path.
func wdMetadataCert(t testing.TB, idp *wdIdP) string {
	t.Helper()
	resp, err := http.Get(idp.base + "/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/saml/metadata: %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`<(?:ds:)?X509Certificate[^>]*>([^<]+)</`).FindSubmatch(md)
	if m == nil {
		t.Fatalf("no certificate in the metadata:\n%s", md)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(t.TempDir(), "idp-cert.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert
}

// samlDoc is the part of a SAML Response the fake STS reads.
type samlDoc struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:protocol Response"`
	Destination string   `xml:"Destination,attr"`
	Assertions  []struct {
		Subject struct {
			Confirmations []struct {
				Data []struct {
					Recipient string `xml:"Recipient,attr"`
				} `xml:"SubjectConfirmationData"`
			} `xml:"SubjectConfirmation"`
		} `xml:"Subject"`
		Audiences  []string `xml:"Conditions>AudienceRestriction>Audience"`
		Attributes []struct {
			Name   string   `xml:"Name,attr"`
			Values []string `xml:"AttributeValue"`
		} `xml:"AttributeStatement>Attribute"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
}

const wdACS = "https://signin.aws.amazon.com/saml" // AWS's sign-in ACS (aws partition)

func (s *wdSTS) checkSAML(b64 string, exp wdExpect) (problems []string) {
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return []string{"SAMLAssertion is not base64"}
	}
	var d samlDoc
	if err := xml.Unmarshal(raw, &d); err != nil {
		return []string{"SAMLAssertion is not a SAML Response: " + err.Error()}
	}
	if d.Destination != wdACS {
		bad("Destination %q", d.Destination)
	}
	if len(d.Assertions) != 1 {
		return append(problems, fmt.Sprintf("%d assertions", len(d.Assertions)))
	}
	as := d.Assertions[0]
	var recipients []string
	for _, sc := range as.Subject.Confirmations {
		for _, d := range sc.Data {
			recipients = append(recipients, d.Recipient)
		}
	}
	if len(recipients) != 1 || recipients[0] != wdACS {
		bad("Recipient %q", recipients)
	}
	// The SP entityID; working IdPs add the ACS URL (rules item 6).
	if !slices.Contains(as.Audiences, "urn:amazon:webservices") || slices.ContainsFunc(as.Audiences, func(a string) bool {
		return a != "urn:amazon:webservices" && a != wdACS
	}) {
		bad("Audience %q", as.Audiences)
	}
	var roles [][]string
	for _, at := range as.Attributes {
		if at.Name == samlRoleAttribute {
			roles = append(roles, at.Values)
		}
	}
	if len(roles) != 1 || len(roles[0]) != 1 || roles[0][0] != exp.roleARN+","+exp.providerARN {
		bad("Role attributes %q, want exactly [[%s,%s]]", roles, exp.roleARN, exp.providerARN)
	}
	if !s.deep {
		return problems
	}
	f, err := os.CreateTemp("", "wd-saml-*.xml")
	if err != nil {
		return append(problems, err.Error())
	}
	defer os.Remove(f.Name())
	_, _ = f.Write(raw)
	f.Close()
	out, err := exec.Command(s.xmlsec, "--verify", "--enabled-key-data", "rsa", "--pubkey-cert-pem", s.cert,
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
		"--node-xpath", "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']", f.Name()).CombinedOutput()
	if err != nil {
		bad("xmlsec1 rejects the assertion's signature: %v: %s", err, out)
	}
	return problems
}

func (s *wdSTS) checkWebIdentity(ctx context.Context, tok string, exp wdExpect) (problems []string) {
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if !s.deep {
		if strings.Count(tok, ".") != 2 {
			bad("WebIdentityToken is not a JWS")
		}
		return problems
	}
	id, err := s.verifier.Verify(ctx, tok)
	if err != nil {
		return []string{"go-oidc rejects the WebIdentityToken: " + err.Error()}
	}
	var c struct {
		IssuedAt int64 `json:"iat"`
		Expiry   int64 `json:"exp"`
		Tags     struct {
			PrincipalTags map[string][]string `json:"principal_tags"`
		} `json:"https://aws.amazon.com/tags"`
	}
	if err := id.Claims(&c); err != nil {
		return []string{"claims: " + err.Error()}
	}
	if d := c.Expiry - c.IssuedAt; d <= 0 || d > 300 {
		bad("exp-iat = %d s, want (0, 300]", d)
	}
	if got := c.Tags.PrincipalTags["WardenRole"]; len(got) != 1 || got[0] != exp.roleName {
		bad("WardenRole tag %q, want %q", got, exp.roleName)
	}
	if got := c.Tags.PrincipalTags["WardenAccount"]; len(got) != 1 || got[0] != exp.account {
		bad("WardenAccount tag %q, want %q", got, exp.account)
	}
	return problems
}
