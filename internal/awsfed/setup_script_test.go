package awsfed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/testenv"
)

// scriptFixture is a setup of two accounts: prod with SAML and OIDC, two
// roles (one with a path, one requiring MFA) and a pattern rule; dev with
// one role whose sessions are shorter than IAM's minimum MaxSessionDuration.
func scriptFixture(t *testing.T, thumbprint string) Setup {
	t.Helper()
	s, err := BuildSetup([]SetupAccount{
		{ID: "111122223333", Name: "prod", SAMLProvider: "Warden", Roles: []SetupRole{
			{ARN: "arn:aws:iam::111122223333:role/ReadOnly", SessionSeconds: 7200},
			{ARN: "arn:aws:iam::111122223333:role/ops/Admin", SessionSeconds: 14400, RequireMFA: true, MFAMethods: []string{"webauthn"}},
		}, Patterns: []SetupPattern{{RuleID: "team.roles", RoleARN: "arn:aws:iam::${account}:role/team/${role}", SessionSeconds: 10800}}},
		{ID: "444455556666", Name: "dev $HOME `x`", SAMLProvider: "Warden", Roles: []SetupRole{
			{ARN: "arn:aws:iam::444455556666:role/Dev", SessionSeconds: 900},
		}},
	}, SetupOptions{MetadataURL: "https://sso.example.com/saml/metadata", SAML: true, SAMLPartition: "aws",
		Issuer: "https://sso.example.com", OIDCThumbprint: thumbprint, SourceIdentity: true, MFAMethods: []string{"webauthn", "totp"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// samlMetadata is an IdP metadata document with a real certificate: IAM
// (and moto) want at least 1,000 characters.
func samlMetadata(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sso.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sso.example.com/saml/metadata">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` +
		base64.StdEncoding.EncodeToString(der) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sso.example.com/saml/sso"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sso.example.com/saml/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`
}

// motoAWS runs the aws CLI against moto with the credentials of account
// (moto gives assumed-role credentials the role's account).
type motoAWS struct {
	t        *testing.T
	aws, url string
	home     string
	creds    map[string][]string // account → env
}

func newMotoAWS(t *testing.T) *motoAWS {
	m := &motoAWS{t: t, url: testenv.Moto(t), aws: testenv.Binary(t, "/usr/bin/aws"), home: t.TempDir(), creds: map[string][]string{}}
	// A wrapper that sends every call of the script to moto, as
	// AWS_ENDPOINT_URL would with an awscli that knows it.
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s --endpoint-url %s \"$@\"\n", m.aws, m.url)
	if err := os.WriteFile(filepath.Join(m.home, "aws"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *motoAWS) env(account string, extra ...string) []string {
	m.t.Helper()
	base := []string{"HOME=" + m.home, "PATH=" + m.home + ":/usr/bin:/bin", "AWS_CONFIG_FILE=" + m.home + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + m.home + "/credentials", "AWS_PAGER=", "AWS_DEFAULT_REGION=us-east-1"}
	if m.creds[account] == nil {
		out := m.run(append(base, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"), m.aws, "--endpoint-url", m.url,
			"sts", "assume-role", "--role-arn", "arn:aws:iam::"+account+":role/setup", "--role-session-name", "setup", "--output", "json")
		var res struct {
			Credentials struct{ AccessKeyId, SecretAccessKey, SessionToken string }
		}
		if err := json.Unmarshal(out, &res); err != nil {
			m.t.Fatalf("%v: %s", err, out)
		}
		c := res.Credentials
		m.creds[account] = []string{"AWS_ACCESS_KEY_ID=" + c.AccessKeyId, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey, "AWS_SESSION_TOKEN=" + c.SessionToken}
	}
	return append(append(base, m.creds[account]...), extra...)
}

func (m *motoAWS) run(env []string, name string, args ...string) []byte {
	m.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		m.t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// iam calls IAM in account and decodes the JSON answer.
func (m *motoAWS) iam(account string, args ...string) map[string]any {
	m.t.Helper()
	out := m.run(m.env(account), m.aws, append([]string{"--endpoint-url", m.url, "iam", "--output", "json"}, args...)...)
	var res map[string]any
	if len(bytes.TrimSpace(out)) == 0 {
		return res // an action that answers nothing
	}
	if err := json.Unmarshal(out, &res); err != nil {
		m.t.Fatalf("%v: %s", err, out)
	}
	return res
}

// state is what IAM holds of the fixture in account: roles by name with
// their ID (a new ID means re-created), trust policy and max duration,
// and the providers.
func (m *motoAWS) state(account string) map[string]any {
	m.t.Helper()
	out := map[string]any{}
	for _, r := range m.iam(account, "list-roles")["Roles"].([]any) {
		r := r.(map[string]any)
		if strings.HasPrefix(r["RoleName"].(string), "setup") {
			continue
		}
		out["role "+r["Path"].(string)+r["RoleName"].(string)] = []any{r["RoleId"], r["AssumeRolePolicyDocument"], r["MaxSessionDuration"]}
	}
	out["saml"] = m.iam(account, "list-saml-providers")["SAMLProviderList"]
	out["oidc"] = m.iam(account, "get-open-id-connect-provider", "--open-id-connect-provider-arn", OIDCProviderARN("aws", account, "https://sso.example.com"))
	return out
}

// asJSON decodes a policy of ours the way the AWS CLI hands one back.
func asJSON(t *testing.T, p PolicyDocument) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(p.JSON()), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestScriptAgainstMoto runs the generated script with Debian's awscli
// against moto's IAM in two accounts: it creates the providers and roles
// with the right trust policies and MaxSessionDuration, a second run
// changes nothing, a run after a drift sets things right again, and a
// pattern rule's function creates the role it is called with.
func TestScriptAgainstMoto(t *testing.T) {
	t.Parallel()
	m := newMotoAWS(t)
	sh := testenv.Binary(t, "sh")
	s := scriptFixture(t, "")
	var script bytes.Buffer
	if err := s.WriteScript(&script); err != nil {
		t.Fatal(err)
	}
	// The operator names the roles of the pattern rule.
	text := strings.Replace(script.String(), "  # pattern_111122223333_team_roles ROLE_NAME\n",
		"  pattern_111122223333_team_roles Team1\n  pattern_111122223333_team_roles Team2 /other/\n", 1)
	if text == script.String() {
		t.Fatalf("no commented call of the pattern function:\n%s", text)
	}
	path := filepath.Join(m.home, "warden-aws-setup.sh")
	meta := filepath.Join(m.home, "warden-metadata.xml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(meta, []byte(samlMetadata(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	runScript := func(account string, extra ...string) string {
		t.Helper()
		return string(m.run(m.env(account, append([]string{"WARDEN_METADATA=" + meta}, extra...)...), sh, path))
	}

	const real1, real2 = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280", "06b25927c42a721631c1efd9431e648fa62e1e39"
	out := runScript("111122223333", "WARDEN_OIDC_THUMBPRINT="+real1)
	for _, want := range []string{"SAML provider arn:aws:iam::111122223333:saml-provider/Warden: created",
		"OIDC provider arn:aws:iam::111122223333:oidc-provider/sso.example.com: created", "role ReadOnly: created", "role Admin: created",
		"role Team1: created", "role Team2: created"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run lacks %q:\n%s", want, out)
		}
	}
	runScript("444455556666")

	// What IAM holds is what the setup says.
	for _, a := range s.Accounts {
		for _, r := range a.Roles {
			got := m.iam(a.ID, "get-role", "--role-name", r.Name)["Role"].(map[string]any)
			if got["Path"] != r.Path || got["MaxSessionDuration"] != float64(r.MaxSessionDuration) ||
				!reflect.DeepEqual(got["AssumeRolePolicyDocument"], asJSON(t, r.TrustPolicy)) {
				t.Errorf("%s: IAM has %v", r.ARN, got)
			}
		}
	}
	if d := m.iam("444455556666", "get-role", "--role-name", "Dev")["Role"].(map[string]any)["MaxSessionDuration"]; d != float64(3600) {
		t.Errorf("Dev: MaxSessionDuration %v, want IAM's minimum 3600 for 900 s sessions", d)
	}
	p := s.Accounts[0].Patterns[0]
	for name, path := range map[string]string{"Team1": "/team/", "Team2": "/other/"} {
		got := m.iam("111122223333", "get-role", "--role-name", name)["Role"].(map[string]any)
		want := asJSON(t, p.TrustPolicy)
		wantJSON, _ := json.Marshal(want)
		_ = json.Unmarshal([]byte(strings.ReplaceAll(string(wantJSON), `"`+PatternRoleName+`"`, `"`+name+`"`)), &want)
		if got["Path"] != path || got["MaxSessionDuration"] != float64(10800) || !reflect.DeepEqual(got["AssumeRolePolicyDocument"], want) {
			t.Errorf("pattern role %s: IAM has %v", name, got)
		}
	}
	oidc := m.iam("111122223333", "get-open-id-connect-provider", "--open-id-connect-provider-arn", s.Accounts[0].OIDCProviderARN)
	if !reflect.DeepEqual(oidc["ClientIDList"], []any{"sts.amazonaws.com"}) || !reflect.DeepEqual(oidc["ThumbprintList"], []any{real1}) {
		t.Errorf("OIDC provider %v", oidc)
	}
	saml := m.iam("111122223333", "get-saml-provider", "--saml-provider-arn", s.Accounts[0].SAMLProviderARN)
	if !strings.Contains(fmt.Sprint(saml["SAMLMetadataDocument"]), "sso.example.com/saml/sso") {
		t.Errorf("SAML provider %v", saml)
	}

	// Idempotent: a second run leaves everything as it was, the
	// thumbprint too (the placeholder never overwrites one).
	before := m.state("111122223333")
	out = runScript("111122223333")
	if after := m.state("111122223333"); !reflect.DeepEqual(before, after) {
		t.Errorf("second run changed IAM:\nbefore %v\nafter  %v", before, after)
	}
	if strings.Contains(out, "created") {
		t.Errorf("second run created something:\n%s", out)
	}

	// Drift is set right, and a new thumbprint replaces the old one.
	m.iam("111122223333", "update-role", "--role-name", "ReadOnly", "--max-session-duration", "3600")
	m.iam("111122223333", "update-assume-role-policy", "--role-name", "ReadOnly", "--policy-document", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	runScript("111122223333", "WARDEN_OIDC_THUMBPRINT="+real2)
	after := m.state("111122223333")
	if !reflect.DeepEqual(before["role /ReadOnly"], after["role /ReadOnly"]) {
		t.Errorf("drift not set right: %v, want %v", after["role /ReadOnly"], before["role /ReadOnly"])
	}
	if got := after["oidc"].(map[string]any)["ThumbprintList"]; !reflect.DeepEqual(got, []any{real2}) {
		t.Errorf("thumbprint %v, want %s", got, real2)
	}

	// Credentials of an account without setup: a clear refusal.
	cmd := exec.Command(sh, path)
	cmd.Env = m.env("999988887777", "WARDEN_METADATA="+meta)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "nothing to set up in account 999988887777: run it with credentials of 111122223333, 444455556666") {
		t.Errorf("foreign account: %v %s", err, b)
	}
}

// TestScriptRefusesBadInput runs the script with an aws that records its
// calls and answers like STS for sts: a pattern role name that IAM would
// refuse stops the script before any IAM call for it, and the MFA role
// and the account name with shell characters come out intact.
func TestScriptRefusesBadInput(t *testing.T) {
	sh := testenv.Binary(t, "sh")
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	fake := "#!/bin/sh\necho \"$*\" >> " + log + "\ncase \"$1 $2\" in 'sts get-caller-identity') echo 444455556666 ;; 'iam get-role') exit 254 ;; esac\n"
	if err := os.WriteFile(filepath.Join(dir, "aws"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	var script bytes.Buffer
	if err := scriptFixture(t, "").WriteScript(&script); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(script.String(), "  iam_region=''\n", "  iam_region=''\n  pattern_111122223333_team_roles 'a b'\n", 2)
	path := filepath.Join(dir, "setup.sh")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, path)
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "WARDEN_METADATA=/dev/null"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "invalid role name 'a b'") || !strings.Contains(string(out), "Setting up account 444455556666 (dev $HOME `x`)") {
		t.Errorf("%v: %s", err, out)
	}
	calls, _ := os.ReadFile(log)
	if strings.Contains(string(calls), "a b") || strings.Contains(string(calls), "create-role") {
		t.Errorf("calls after a bad role name:\n%s", calls)
	}
}
