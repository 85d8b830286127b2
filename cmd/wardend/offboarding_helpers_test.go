package main

// Helpers of offboarding_test.go: a directory the test changes (its own
// groups and users, on OpenLDAP or Samba AD), a real wardend (app.Run)
// against it, the person at the browser (cookie jar, the real pages), the
// CLI's side of the OIDC endpoints, and the admin (alice) reading the audit
// log.

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/app"
	"github.com/wardenidp/warden/internal/app/apptest"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// What the rules grant: group A gives role A, group B role B; the admin
// group makes its members Warden admins.
const (
	offbAccountID   = "123456789012"
	offbAccountName = "offb"
	offbRoleA       = "arn:aws:iam::123456789012:role/OffbA"
	offbRoleB       = "arn:aws:iam::123456789012:role/OffbB"
	offbProviderARN = "arn:aws:iam::123456789012:saml-provider/warden"

	offbAWSEntity     = "urn:amazon:webservices"
	offbAWSACS        = "https://signin.aws.amazon.com/saml"
	offbGenericEntity = "https://app.example.org/saml/metadata" // internal/samlidp/testdata/pysaml2-sp-metadata.xml
	offbGenericACS    = "https://app.example.org/saml/acs"
	offbRoleAttribute = "https://aws.amazon.com/SAML/Attributes/Role"

	offbRecheck = time.Second // directory.recheck_interval of the test's wardend
)

func offbRand(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// The directory

// offbDir is a real directory the test changes: its own groups (and, on
// AD, its own OU) made at the start, a user of its own per cell. Seed
// entries are never modified.
type offbDir struct {
	kind    string // "openldap" or "activedirectory"
	cfg     ldap.Config
	yaml    string // the directory block of the operator's config file
	pw      string // password of the users the test makes, and of alice
	cause   string // the access.revoke cause of the "disabled" event
	disable string // how the "disabled" event is done, for the report

	conn *goldap.Conn
	mu   sync.Mutex // one LDAP operation at a time on conn

	groupA, groupB, groupAdm string            // names, as rules and admin.groups name them
	groupDN                  map[string]string // name -> DN

	newUser     func(t *testing.T) (name, dn string, attrs map[string][]string)
	disableUser func(dn string) error
	userDNs     sync.Map // username -> DN
}

func (d *offbDir) add(t *testing.T, dn string, attrs map[string][]string) {
	t.Helper()
	req := goldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	d.mu.Lock()
	err := d.conn.Add(req)
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("ldap add %s: %v", dn, err)
	}
	t.Cleanup(func() {
		d.mu.Lock()
		err := d.conn.Del(goldap.NewDelRequest(dn, nil))
		d.mu.Unlock()
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			t.Errorf("clean up %s: %v", dn, err)
		}
	})
}

func (d *offbDir) modify(t *testing.T, dn string, controls []goldap.Control, f func(*goldap.ModifyRequest)) {
	t.Helper()
	req := goldap.NewModifyRequest(dn, controls)
	f(req)
	d.mu.Lock()
	err := d.conn.Modify(req)
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("ldap modify %s: %v", dn, err)
	}
}

// addUser makes a user of the test's own, member of groups A, B and the
// admin group; deleted when t ends.
func (d *offbDir) addUser(t *testing.T) string {
	t.Helper()
	name, dn, attrs := d.newUser(t)
	d.add(t, dn, attrs)
	d.userDNs.Store(name, dn)
	for _, g := range []string{d.groupA, d.groupB, d.groupAdm} {
		d.modify(t, d.groupDN[g], nil, func(r *goldap.ModifyRequest) { r.Add("member", []string{dn}) })
	}
	return name
}

func (d *offbDir) dnOf(t *testing.T, user string) string {
	v, ok := d.userDNs.Load(user)
	if !ok {
		t.Fatalf("no DN for %s", user)
	}
	return v.(string)
}

func (d *offbDir) removeFromGroup(t *testing.T, user, group string) {
	t.Helper()
	dn := d.dnOf(t, user)
	d.modify(t, d.groupDN[group], nil, func(r *goldap.ModifyRequest) { r.Delete("member", []string{dn}) })
}

func (d *offbDir) deleteUser(t *testing.T, user string) {
	t.Helper()
	dn := d.dnOf(t, user)
	d.mu.Lock()
	err := d.conn.Del(goldap.NewDelRequest(dn, nil))
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("ldap delete %s: %v", dn, err)
	}
}

func (d *offbDir) disableAccount(t *testing.T, user string) {
	t.Helper()
	if err := d.disableUser(d.dnOf(t, user)); err != nil {
		t.Fatalf("disable %s: %v", user, err)
	}
}

// addGroups makes the three groups (with placeholder, when the schema
// needs a member).
func (d *offbDir) addGroups(t *testing.T, id string, entry func(name string) (string, map[string][]string)) {
	d.groupA, d.groupB, d.groupAdm = "offb-"+id+"-a", "offb-"+id+"-b", "offb-"+id+"-adm"
	d.groupDN = map[string]string{}
	for _, g := range []string{d.groupA, d.groupB, d.groupAdm} {
		dn, attrs := entry(g)
		d.add(t, dn, attrs)
		d.groupDN[g] = dn
	}
}

// offbOpenLDAP is the OpenLDAP of deploy/testenv (ppolicy overlay on).
func offbOpenLDAP(t *testing.T) *offbDir {
	env := testenv.Require(t, "LDAP_URL", "LDAP_BASE_DN", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_USER_PW",
		"LDAP_ADMIN_DN", "LDAP_ADMIN_PW", "LDAP_USERS_DN", "LDAP_GROUPS_DN", "REDIS_ADDR")
	conn, err := goldap.DialURL(env["LDAP_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	base := env["LDAP_BASE_DN"]
	d := &offbDir{kind: "openldap", conn: conn, pw: env["LDAP_USER_PW"], cause: "directory.locked",
		disable: "ppolicy lock (pwdAccountLockedTime, policy cn=lockable)"}
	d.cfg = ldap.Config{Type: ldap.TypeOpenLDAP, URLs: []string{env["LDAP_URL"]}, BaseDN: base,
		BindDN: env["LDAP_BIND_DN"], BindPassword: env["LDAP_BIND_PW"]}
	d.yaml = fmt.Sprintf("directory:\n  type: openldap\n  urls: [%q]\n  base_dn: %q\n  bind_dn: %q\n  bind_password: ${LDAP_BIND_PW}\n",
		env["LDAP_URL"], base, env["LDAP_BIND_DN"])
	id := offbRand(t, 4)
	d.addGroups(t, id, func(name string) (string, map[string][]string) {
		return "cn=" + name + "," + env["LDAP_GROUPS_DN"], map[string][]string{
			"objectClass": {"groupOfNames"}, "cn": {name},
			"member": {"cn=offb-placeholder," + base}, // groupOfNames must have a member
		}
	})
	d.newUser = func(t *testing.T) (string, string, map[string][]string) {
		name := "offb-" + offbRand(t, 5)
		return name, "uid=" + name + "," + env["LDAP_USERS_DN"], map[string][]string{
			"objectClass":  {"inetOrgPerson"},
			"uid":          {name},
			"cn":           {"Offboarding " + name},
			"sn":           {"Offboarding"},
			"displayName":  {"Offboarding " + name},
			"mail":         {name + "@example.org"},
			"userPassword": {d.pw},
		}
	}
	// The seed's "locked" user, done to ours: the lockable policy and a
	// permanent lock. The relax control lets the rootdn set ppolicy's
	// operational attribute (as deploy/testenv/openldap.sh does).
	relax := goldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")
	d.disableUser = func(dn string) error {
		req := goldap.NewModifyRequest(dn, []goldap.Control{relax})
		req.Replace("pwdPolicySubentry", []string{"cn=lockable,ou=policies," + base})
		req.Replace("pwdAccountLockedTime", []string{"000001010000Z"})
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.conn.Modify(req)
	}
	return d
}

// offbActiveDirectory is the Samba AD DC of deploy/testenv, changed over
// LDAPS as the domain administrator, in an OU of the test's own.
func offbActiveDirectory(t *testing.T) *offbDir {
	env := testenv.Require(t, "AD_LDAPS_URL", "AD_BASE_DN", "AD_BIND_UPN", "AD_BIND_PW", "AD_USER_PW", "AD_CA_CERT",
		"AD_ADMIN_UPN", "AD_ADMIN_PW", "REDIS_ADDR")
	pem, err := os.ReadFile(env["AD_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := goldap.DialURL(env["AD_LDAPS_URL"], goldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Bind(env["AD_ADMIN_UPN"], env["AD_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	base := env["AD_BASE_DN"]
	d := &offbDir{kind: "activedirectory", conn: conn, pw: env["AD_USER_PW"], cause: "directory.disabled",
		disable: "userAccountControl 514 (ACCOUNTDISABLE)"}
	d.cfg = ldap.Config{Type: ldap.TypeActiveDirectory, URLs: []string{env["AD_LDAPS_URL"]}, BaseDN: base,
		BindDN: env["AD_BIND_UPN"], BindPassword: env["AD_BIND_PW"], CAFile: env["AD_CA_CERT"]}
	d.yaml = fmt.Sprintf("directory:\n  type: activedirectory\n  urls: [%q]\n  ca_file: %q\n  base_dn: %q\n  bind_dn: %q\n  bind_password: ${AD_BIND_PW}\n",
		env["AD_LDAPS_URL"], env["AD_CA_CERT"], base, env["AD_BIND_UPN"])
	id := offbRand(t, 4)
	ou := "OU=offb-" + id + "," + base
	d.add(t, ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}})
	d.addGroups(t, id, func(name string) (string, map[string][]string) {
		return "CN=" + name + "," + ou, map[string][]string{"objectClass": {"top", "group"}, "sAMAccountName": {name}}
	})
	d.newUser = func(t *testing.T) (string, string, map[string][]string) {
		name := "ob" + offbRand(t, 5) // sAMAccountName: at most 20 characters
		// unicodePwd: the password in double quotes, UTF-16LE (MS-ADTS 3.1.1.3.1.5.1).
		u := utf16.Encode([]rune(`"` + d.pw + `"`))
		pw := make([]byte, 2*len(u))
		for i, c := range u {
			pw[2*i], pw[2*i+1] = byte(c), byte(c>>8)
		}
		return name, "CN=" + name + "," + ou, map[string][]string{
			"objectClass":        {"top", "person", "organizationalPerson", "user"},
			"sAMAccountName":     {name},
			"displayName":        {"Offboarding " + name},
			"mail":               {name + "@example.test"},
			"unicodePwd":         {string(pw)},
			"userAccountControl": {"512"},
		}
	}
	d.disableUser = func(dn string) error {
		req := goldap.NewModifyRequest(dn, nil)
		req.Replace("userAccountControl", []string{"514"}) // 512 | ACCOUNTDISABLE
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.conn.Modify(req)
	}
	return d
}

// ---------------------------------------------------------------------------
// wardend

type offbWardend struct {
	base    string
	dir     *offbDir
	cfgFile string // for `wardend users revoke`
	alice   *offbBrowser
	http    *http.Client // the CLI's client
}

// offbStart runs wardend (app.Run) against d and Redis, under a key prefix
// of its own, with the rules of the test's groups (seeded, not read-only:
// the admin API may change them), the generic SP of the pysaml2 metadata,
// and a 1 s recheck interval. It writes the operator's config file for the
// same directory and Redis, and signs alice (an admin) in.
func offbStart(t *testing.T, d *offbDir) *offbWardend {
	t.Helper()
	env := testenv.Require(t, "REDIS_ADDR")
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	offbWriteFile(t, rules, fmt.Sprintf(`accounts:
  - id: "%s"
    name: %s
    saml_provider: warden
grants:
  - id: offb-a
    group: %s
    roles:
      - arn: %s
  - id: offb-b
    group: %s
    roles:
      - arn: %s
`, offbAccountID, offbAccountName, d.groupA, offbRoleA, d.groupB, offbRoleB))
	spMetadata, err := filepath.Abs(filepath.Join("..", "..", "internal", "samlidp", "testdata", "pysaml2-sp-metadata.xml"))
	if err != nil {
		t.Fatal(err)
	}

	o := app.Options{Admin: admin.Config{Groups: []string{"admins", d.groupAdm}, RulesFile: rules},
		Banner: io.Discard, DataDir: dir}
	o.Directory = d.cfg
	o.Directory.ApplyPreset()
	o.Directory.SetDefaults()
	o.Directory.RecheckInterval = offbRecheck
	o.Redis = store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	o.Redis.SetDefaults()
	o.Redis.KeyPrefix = fmt.Sprintf("warden-offb-%s-%d:", d.kind, time.Now().UnixNano())
	o.OIDC.DevicePollInterval = time.Second
	o.OIDC.DeviceCodeLifetime = 5 * time.Minute
	o.SAML.ServiceProviders = []samlidp.SPConfig{{Name: "offb-generic", MetadataFile: spMetadata}}

	// wardend's log, and the process-wide slog default (zitadel/oidc logs
	// every refused token request there), are shown when the test fails.
	logs := &offbLog{}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(o.Logger)
	t.Cleanup(func() {
		slog.SetDefault(prev)
		if t.Failed() {
			t.Logf("wardend's log (the last 200 lines):\n%s", logs.tail(200))
		}
	})
	base := apptest.Start(t, o)

	w := &offbWardend{base: base, dir: d, http: &http.Client{Timeout: 30 * time.Second}}
	w.cfgFile = filepath.Join(dir, "wardend.yaml")
	offbWriteFile(t, w.cfgFile, fmt.Sprintf("server:\n  public_url: %s\n%sadmin:\n  groups: [admins]\nredis:\n  addrs: [%q]\n  password: ${REDIS_PASSWORD:-}\n  key_prefix: %q\n",
		base, d.yaml, env["REDIS_ADDR"], o.Redis.KeyPrefix))
	w.alice = w.browser(t)
	w.alice.signIn(t, "alice", d.pw)
	return w
}

// offbLog is a log sink safe for concurrent use.
type offbLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *offbLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *offbLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func offbWriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// The browser

// offbBrowser is a person's browser: a cookie jar, redirects not followed.
type offbBrowser struct {
	base string
	c    *http.Client
	csrf string // the form token of the signed-in session (every form of a session has the same)
}

func (w *offbWardend) browser(t *testing.T) *offbBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &offbBrowser{base: w.base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// offbResp is an answer, read.
type offbResp struct {
	code int
	body string
	hdr  http.Header
}

// location is the path of a redirect's Location.
func (r offbResp) location() string {
	u, err := url.Parse(r.hdr.Get("Location"))
	if err != nil {
		return "?" + r.hdr.Get("Location")
	}
	return u.Path
}

// jsonField is a string field of a JSON body.
func (r offbResp) jsonField(name string) string {
	var m map[string]any
	if json.Unmarshal([]byte(r.body), &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

func (b *offbBrowser) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) offbResp {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = b.base + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return offbResp{code: resp.StatusCode, body: string(raw), hdr: resp.Header}
}

func (b *offbBrowser) get(t *testing.T, path string) offbResp {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil, nil)
}

func (b *offbBrowser) post(t *testing.T, path string, form url.Values) offbResp {
	t.Helper()
	return b.do(t, http.MethodPost, path, strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// land GETs path and follows redirects; it returns the last answer and
// the path it came from.
func (b *offbBrowser) land(t *testing.T, path string) (offbResp, string) {
	t.Helper()
	r := b.get(t, path)
	for n := 0; r.code >= 300 && r.code < 400; n++ {
		if n > 10 {
			t.Fatal("redirect loop")
		}
		path = r.hdr.Get("Location")
		r = b.get(t, path)
	}
	u, _ := url.Parse(path)
	return r, u.Path
}

var offbCSRFRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn walks /login and returns the home page it lands on.
func (b *offbBrowser) signIn(t *testing.T, user, pw string) string {
	t.Helper()
	r := b.get(t, "/login")
	m := offbCSRFRE.FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		t.Fatalf("GET /login: %d, csrf token found: %v", r.code, m != nil)
	}
	r = b.post(t, "/login", url.Values{"username": {user}, "password": {pw}, "csrf_token": {html.UnescapeString(m[1])}, "next": {"/"}})
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/" {
		t.Fatalf("sign-in as %s: %d to %q\n%s", user, r.code, r.hdr.Get("Location"), r.body)
	}
	r = b.get(t, "/")
	m = offbCSRFRE.FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		t.Fatalf("home page after sign-in as %s: %d", user, r.code)
	}
	b.csrf = html.UnescapeString(m[1])
	return r.body
}

// signInRefused tries to sign in and reports whether the sign-in page
// refused it (no session, the form again).
func (b *offbBrowser) signInRefused(t *testing.T, user, pw string) bool {
	t.Helper()
	r := b.get(t, "/login")
	m := offbCSRFRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("GET /login: %d, no csrf token", r.code)
	}
	r = b.post(t, "/login", url.Values{"username": {user}, "password": {pw}, "csrf_token": {html.UnescapeString(m[1])}, "next": {"/"}})
	return r.code != http.StatusSeeOther && r.code < 500
}

// offbHomeRoles is the role names of offbRoleA and offbRoleB that a home page
// lists ("OffbA,OffbB").
func offbHomeRoles(page string) string {
	var out []string
	for _, arn := range []string{offbRoleA, offbRoleB} {
		if strings.Contains(page, `value="`+arn+`"`) {
			out = append(out, offbRoleName(arn))
		}
	}
	return strings.Join(out, ",")
}

func offbRoleName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// ---------------------------------------------------------------------------
// SAML

// ssoURL is an SP-initiated AuthnRequest of sp (HTTP-Redirect binding).
func (w *offbWardend) ssoURL(t *testing.T, sp, acs string) string {
	xmlText := fmt.Sprintf(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" `+
		`ID="_%s" Version="2.0" IssueInstant="%s" Destination="%s/saml/sso" AssertionConsumerServiceURL="%s" `+
		`ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>%s</saml:Issuer></samlp:AuthnRequest>`,
		offbRand(t, 16), time.Now().UTC().Format(time.RFC3339), w.base, acs, sp)
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = fw.Write([]byte(xmlText))
	_ = fw.Close()
	return "/saml/sso?" + url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(buf.Bytes())}}.Encode()
}

var (
	offbSAMLResponseRE = regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`)
	offbFormActionRE   = regexp.MustCompile(`<form[^>]* action="([^"]+)"`)
)

// sso sends an SP-initiated request of sp and says what came of it:
// "answered to <ACS> [roles=...]" (a SAML response for the browser to post;
// the AWS Role attribute's role names), "sign-in page", or the status.
func (w *offbWardend) sso(t *testing.T, b *offbBrowser, sp, acs string) string {
	t.Helper()
	r, path := b.land(t, w.ssoURL(t, sp, acs))
	m := offbSAMLResponseRE.FindStringSubmatch(r.body)
	switch {
	case r.code == http.StatusOK && m != nil:
		a := offbFormActionRE.FindStringSubmatch(r.body)
		out := "answered"
		if a != nil {
			out += " to " + html.UnescapeString(a[1])
		}
		if sp == offbAWSEntity {
			out += " roles=" + offbSAMLRoles(t, html.UnescapeString(m[1]))
		}
		return out
	case r.code == http.StatusOK && path == "/login" && strings.Contains(r.body, `action="/login"`):
		return "sign-in page"
	}
	return fmt.Sprintf("%d at %s", r.code, path)
}

// offbSAMLRoles is the role names of the AWS Role attribute values of a
// SAMLResponse, each checked to name the account's provider.
func offbSAMLRoles(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("SAMLResponse is not base64: %v", err)
	}
	var doc struct {
		Assertions []struct {
			Attributes []struct {
				Name   string   `xml:"Name,attr"`
				Values []string `xml:"AttributeValue"`
			} `xml:"AttributeStatement>Attribute"`
		} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("SAMLResponse: %v", err)
	}
	var out []string
	for _, a := range doc.Assertions {
		for _, at := range a.Attributes {
			if at.Name != offbRoleAttribute {
				continue
			}
			for _, v := range at.Values {
				role, provider, _ := strings.Cut(strings.TrimSpace(v), ",")
				if provider != offbProviderARN {
					t.Errorf("Role value %q: provider %q, want %q", v, provider, offbProviderARN)
				}
				out = append(out, offbRoleName(role))
			}
		}
	}
	return strings.Join(out, ",")
}

// ---------------------------------------------------------------------------
// OAuth: the CLI's side

// offbTokens is a token endpoint answer.
type offbTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

func (w *offbWardend) postOAuth(t *testing.T, path string, form url.Values) (int, offbTokens) {
	t.Helper()
	resp, err := w.http.PostForm(w.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var tok offbTokens
	if err := json.Unmarshal(raw, &tok); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, tok
}

// deviceStart asks for a device authorization as the CLI does.
func (w *offbWardend) deviceStart(t *testing.T) (deviceCode, userCode string) {
	t.Helper()
	resp, err := w.http.PostForm(w.base+"/oauth/device_authorization", url.Values{
		"client_id": {"warden-cli"}, "scope": {"openid profile email offline_access groups roles"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var da struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&da); err != nil || resp.StatusCode != http.StatusOK || da.DeviceCode == "" {
		t.Fatalf("device authorization: %d %v", resp.StatusCode, err)
	}
	return da.DeviceCode, da.UserCode
}

// poll is one token request with a device code: the status and the
// error code ("" with tokens).
func (w *offbWardend) poll(t *testing.T, deviceCode string) (int, offbTokens) {
	t.Helper()
	return w.postOAuth(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {deviceCode}, "client_id": {"warden-cli"}})
}

// deviceConfirm is the user typing the code on /device: the confirmation
// page with its Approve button.
func (b *offbBrowser) deviceConfirm(t *testing.T, userCode string) {
	t.Helper()
	r := b.post(t, "/device", url.Values{"csrf_token": {b.csrf}, "user_code": {userCode}})
	if r.code != http.StatusOK || !strings.Contains(r.body, `action="/device/approve"`) {
		t.Fatalf("POST /device: %d, no approve form\n%s", r.code, r.body)
	}
}

func (b *offbBrowser) deviceApprove(t *testing.T, userCode string) offbResp {
	t.Helper()
	return b.post(t, "/device/approve", url.Values{"csrf_token": {b.csrf}, "user_code": {userCode}})
}

// approveDevice is a whole approval through the pages; it returns the
// device code, approved and not yet redeemed.
func (w *offbWardend) approveDevice(t *testing.T, b *offbBrowser) string {
	t.Helper()
	dc, uc := w.deviceStart(t)
	b.deviceConfirm(t, uc)
	if r := b.deviceApprove(t, uc); r.code != http.StatusOK || !strings.Contains(r.body, "You can return to your terminal") {
		t.Fatalf("POST /device/approve: %d\n%s", r.code, r.body)
	}
	return dc
}

// cliLogin is `warden login`: a device authorization approved in b,
// redeemed for tokens.
func (w *offbWardend) cliLogin(t *testing.T, b *offbBrowser) offbTokens {
	t.Helper()
	dc := w.approveDevice(t, b)
	code, tok := w.poll(t, dc)
	if code != http.StatusOK || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("device token: %d %q", code, tok.Error)
	}
	return tok
}

// Token types of RFC 8693 the CLI asks for.
const (
	offbSAML2   = "urn:ietf:params:oauth:token-type:saml2"
	offbIDToken = "urn:ietf:params:oauth:token-type:id_token"
)

// exchange asks for a role-scoped token of typ with the access token at:
// "200", or "<status> <error>".
func (w *offbWardend) exchange(t *testing.T, at, typ, role string) string {
	t.Helper()
	code, tok := w.postOAuth(t, "/oauth/token", url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {at},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {typ},
		"resource":             {role},
		"client_id":            {"warden-cli"},
	})
	return offbOutcome(code, tok.Error)
}

// refresh uses the refresh token rt: "200" (and the new tokens), or
// "<status> <error>".
func (w *offbWardend) refresh(t *testing.T, rt string) (string, offbTokens) {
	t.Helper()
	code, tok := w.postOAuth(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {rt}, "client_id": {"warden-cli"}})
	return offbOutcome(code, tok.Error), tok
}

// userinfo is the status of /oauth/userinfo with the access token at.
func (w *offbWardend) userinfo(t *testing.T, at string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.base+"/oauth/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := w.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func offbOutcome(code int, errCode string) string {
	if errCode == "" {
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("%d %s", code, errCode)
}

// ---------------------------------------------------------------------------
// The admin API

// apiCSRF is the admin API's CSRF token for b's session.
func (b *offbBrowser) apiCSRF(t *testing.T) string {
	t.Helper()
	r := b.get(t, "/admin/api/csrf")
	tok := r.jsonField("token")
	if r.code != http.StatusOK || tok == "" {
		t.Fatalf("GET /admin/api/csrf: %d %s", r.code, r.body)
	}
	return tok
}

func (b *offbBrowser) api(t *testing.T, method, path, csrf string, body any, hdr map[string]string) offbResp {
	t.Helper()
	h := map[string]string{"X-Warden-CSRF": csrf}
	for k, v := range hdr {
		h[k] = v
	}
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
		h["Content-Type"] = "application/json"
	}
	return b.do(t, method, path, rd, h)
}

// rulesVersion is the current rules version, as b reads it.
func (b *offbBrowser) rulesVersion(t *testing.T) int64 {
	t.Helper()
	r := b.get(t, "/admin/api/accounts")
	var v struct{ Version int64 }
	if err := json.Unmarshal([]byte(r.body), &v); r.code != http.StatusOK || err != nil {
		t.Fatalf("GET /admin/api/accounts: %d %s", r.code, r.body)
	}
	return v.Version
}

// adminChange is an admin API change: a new account in the catalogue,
// against rules version (read before: the change is the first request
// after the event). On 409 (another cell saved first) it reads the version
// again and retries. It returns the status and the error text.
func (b *offbBrowser) adminChange(t *testing.T, csrf string, version int64) (int, string) {
	t.Helper()
	for range 5 {
		id := fmt.Sprintf("9%011d", time.Now().UnixNano()%1e11)
		r := b.api(t, http.MethodPost, "/admin/api/accounts?comment=offboarding+test", csrf,
			map[string]string{"id": id, "name": "offb-" + id, "saml_provider": "warden"},
			map[string]string{"If-Match": fmt.Sprintf(`"%d"`, version)})
		if r.code != http.StatusConflict {
			return r.code, r.jsonField("error")
		}
		version = b.rulesVersion(t)
	}
	t.Fatal("admin change: 409 five times")
	return 0, ""
}

// adminRevokeAll is alice's "revoke all" of user (the sessions list gives
// the user's ID): the JSON answer.
func (w *offbWardend) adminRevokeAll(t *testing.T, user string) map[string]int {
	t.Helper()
	r := w.alice.get(t, "/admin/api/sessions?user="+url.QueryEscape(user))
	var list struct {
		Sessions []struct {
			UserID string `json:"user_id"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); r.code != http.StatusOK || err != nil || len(list.Sessions) == 0 {
		t.Fatalf("GET /admin/api/sessions?user=%s: %d %s", user, r.code, r.body)
	}
	r = w.alice.api(t, http.MethodDelete, "/admin/api/users/"+url.PathEscape(list.Sessions[0].UserID)+"/sessions",
		w.alice.apiCSRF(t), nil, nil)
	var out map[string]int
	if err := json.Unmarshal([]byte(r.body), &out); r.code != http.StatusOK || err != nil {
		t.Fatalf("DELETE /admin/api/users/:id/sessions: %d %s", r.code, r.body)
	}
	return out
}

// operatorRevoke runs `wardend users revoke -config FILE user`.
func (w *offbWardend) operatorRevoke(t *testing.T, user string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := usersCmd([]string{"revoke", "-config", w.cfgFile, user}, &out, &errb); code != 0 {
		t.Fatalf("wardend users revoke %s: exit %d\n%s%s", user, code, out.String(), errb.String())
	}
	return out.String()
}

// revokeEvents is the audit log's access.revoke events of user, read by
// alice through the admin API.
func (w *offbWardend) revokeEvents(t *testing.T, user string) []audit.Event {
	t.Helper()
	r := w.alice.get(t, "/admin/api/audit?action=access.revoke&limit=1000&object="+url.QueryEscape(user))
	var page struct {
		Events []audit.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.body), &page); r.code != http.StatusOK || err != nil {
		t.Fatalf("GET /admin/api/audit: %d %s", r.code, r.body)
	}
	return page.Events
}
