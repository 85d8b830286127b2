package app

import (
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/testenv"
)

// portalOptions is openLDAPOptions with the example rules seeded
// (config/mappings.example.yaml, through admin.rules_file).
func portalOptions(t testing.TB) Options {
	o := openLDAPOptions(t)
	file := filepath.Join(t.TempDir(), "mappings.yaml")
	if err := os.WriteFile(file, devconfig.ExampleRules, 0o600); err != nil {
		t.Fatal(err)
	}
	o.Admin.RulesFile = file
	o.Admin.RulesReadOnly = true // the file wins over what an earlier run stored
	return o
}

// waitRoles signs b in already; it reloads / until the portal lists roles
// (watchRules compiles the seeded rules just after start).
func (b *browser) waitRoles() string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ := b.get("/")
		if code == http.StatusOK && strings.Contains(body, `class="console"`) {
			return body
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the portal lists no roles after 10s: %d\n%s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	samlFormRe = regexp.MustCompile(`<form method="post" action="([^"]+)" id="saml-post">`)
	samlRespRe = regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`)
	relayRe    = regexp.MustCompile(`name="RelayState" value="([^"]+)"`)
	roleBtnRe  = regexp.MustCompile(`class="console" name="role" value="([^"]+)"`)
)

// samlResponse is the part of a SAML Response the test reads.
type samlResponse struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:protocol Response"`
	Destination string   `xml:"Destination,attr"`
	Issuer      string   `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	Status      struct {
		Code struct {
			Value string `xml:"Value,attr"`
		} `xml:"StatusCode"`
	} `xml:"Status"`
	Assertions []struct {
		Signature *struct{} `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
		Subject   struct {
			NameID string `xml:"NameID"`
		} `xml:"Subject"`
		Attributes []struct {
			Name   string   `xml:"Name,attr"`
			Values []string `xml:"AttributeValue"`
		} `xml:"AttributeStatement>Attribute"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
}

func (r samlResponse) attr(name string) []string {
	for _, a := range r.Assertions[0].Attributes {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}

// TestPortalOpenLDAP is step 3's portal end to end against the real
// OpenLDAP and Redis: bob signs in, sees his roles by account, and gets a
// signed one-role response for prod/ReadOnly; a role he does not hold is
// 403. The Assertion's signature is checked by xmlsec1 against the
// certificate of /saml/metadata.
func TestPortalOpenLDAP(t *testing.T) {
	o := portalOptions(t)
	base := startApp(t, o)
	b := newBrowser(t, base)
	if code, body := b.signIn("bob", os.Getenv("LDAP_USER_PW")); code != http.StatusOK {
		t.Fatalf("sign-in: %d\n%s", code, body)
	}
	home := b.waitRoles()
	var buttons []string
	for _, m := range roleBtnRe.FindAllStringSubmatch(home, -1) {
		buttons = append(buttons, m[1])
	}
	want := []string{ // accounts by name (prod, sandbox, staging), roles by name
		"arn:aws:iam::111122223333:role/ReadOnly", "arn:aws:iam::111122223333:role/ViewOnly",
		"arn:aws:iam::444455556666:role/PowerUser", "arn:aws:iam::444455556666:role/ViewOnly",
	}
	if strings.Join(buttons, " ") != strings.Join(want, " ") {
		t.Errorf("Console buttons\n got %v\nwant %v", buttons, want)
	}
	for _, s := range []string{"prod", "111122223333", "staging", "sandbox", "aws-us-gov", "not from here", "8 h"} {
		if !strings.Contains(home, s) {
			t.Errorf("portal lacks %q", s)
		}
	}
	csrf := csrfRE.FindStringSubmatch(home)[1]

	dest := "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
	code, body, hdr := b.post("/aws/console", url.Values{"csrf_token": {csrf},
		"role": {"arn:aws:iam::111122223333:role/ReadOnly"}, "destination": {dest}})
	if code != http.StatusOK {
		t.Fatalf("POST /aws/console: %d\n%s", code, body)
	}
	if m := samlFormRe.FindStringSubmatch(body); m == nil || m[1] != "https://signin.aws.amazon.com/saml" {
		t.Errorf("form action %v", m)
	}
	if m := relayRe.FindStringSubmatch(body); m == nil || html.UnescapeString(m[1]) != dest {
		t.Errorf("RelayState %v", m)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://signin.aws.amazon.com") {
		t.Errorf("CSP %q", csp)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
	}
	m := samlRespRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no SAMLResponse:\n%s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	var resp samlResponse
	if err := xml.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("response XML: %v\n%s", err, raw)
	}
	if len(resp.Assertions) != 1 || resp.Assertions[0].Signature == nil {
		t.Fatalf("want one signed Assertion:\n%s", raw)
	}
	if resp.Destination != "https://signin.aws.amazon.com/saml" || resp.Issuer != base+"/saml/metadata" ||
		resp.Status.Code.Value != "urn:oasis:names:tc:SAML:2.0:status:Success" {
		t.Errorf("Destination %q Issuer %q Status %q", resp.Destination, resp.Issuer, resp.Status.Code.Value)
	}
	if got := resp.attr("https://aws.amazon.com/SAML/Attributes/Role"); len(got) != 1 ||
		got[0] != "arn:aws:iam::111122223333:role/ReadOnly,arn:aws:iam::111122223333:saml-provider/warden" {
		t.Errorf("Role %q, want exactly prod ReadOnly", got)
	}
	if got := resp.attr("https://aws.amazon.com/SAML/Attributes/SessionDuration"); len(got) != 1 || got[0] != "3600" {
		t.Errorf("SessionDuration %q", got)
	}
	if got := resp.attr("https://aws.amazon.com/SAML/Attributes/RoleSessionName"); len(got) != 1 || got[0] != "bob" {
		t.Errorf("RoleSessionName %q", got)
	}
	if id := resp.Assertions[0].Subject.NameID; id == "" || strings.Contains(id, "bob") {
		t.Errorf("NameID %q: want opaque", id)
	}
	verifyAssertion(t, b, raw)

	// a role bob does not hold, by name and by ARN
	if code, body, _ := b.get("/aws/console?role=prod/AdministratorAccess"); code != http.StatusForbidden {
		t.Errorf("prod/AdministratorAccess: %d\n%s", code, body)
	}
	if code, _, _ := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {"arn:aws:iam::111122223333:role/AdministratorAccess"}}); code != http.StatusForbidden {
		t.Errorf("AdministratorAccess ARN: %d", code)
	}
	// a destination outside the AWS console
	if code, _, _ := b.get("/aws/console?role=prod/ReadOnly&destination=" + url.QueryEscape("https://evil.example/")); code != http.StatusBadRequest {
		t.Errorf("bad destination: %d", code)
	}
	// a GovCloud role, with sign-in configured for the aws partition
	if code, _, _ := b.get("/aws/console?role=sandbox/ViewOnly"); code != http.StatusUnprocessableEntity {
		t.Errorf("gov role: %d", code)
	}
	// by account ID, as a bookmark: a role with its own session length
	code, body, _ = b.get("/aws/console?role=444455556666/PowerUser")
	if code != http.StatusOK {
		t.Fatalf("staging PowerUser: %d", code)
	}
	raw, _ = base64.StdEncoding.DecodeString(html.UnescapeString(samlRespRe.FindStringSubmatch(body)[1]))
	resp = samlResponse{}
	if err := xml.Unmarshal(raw, &resp); err != nil || len(resp.Assertions) != 1 {
		t.Fatalf("%v", err)
	}
	if got := resp.attr("https://aws.amazon.com/SAML/Attributes/SessionDuration"); len(got) != 1 || got[0] != "28800" {
		t.Errorf("PowerUser SessionDuration %q", got)
	}

	// alice (admins) does not get bob's developer role, but her own
	a := newBrowser(t, base)
	a.signIn("alice", os.Getenv("LDAP_USER_PW"))
	a.waitRoles()
	if code, _, _ := a.get("/aws/console?role=prod/ReadOnly"); code != http.StatusForbidden {
		t.Errorf("alice prod/ReadOnly: %d", code)
	}
	if code, _, _ := a.get("/aws/console?role=prod/AdministratorAccess"); code != http.StatusOK {
		t.Errorf("alice prod/AdministratorAccess: %d", code)
	}
}

// verifyAssertion checks the Assertion's signature with xmlsec1 (an
// independent verifier) against the signing certificate of /saml/metadata.
func verifyAssertion(t *testing.T, b *browser, response []byte) {
	t.Helper()
	xmlsec := testenv.Binary(t, "xmlsec1")
	code, md, _ := b.get("/saml/metadata")
	if code != http.StatusOK {
		t.Fatalf("/saml/metadata: %d", code)
	}
	m := regexp.MustCompile(`<(?:ds:)?X509Certificate[^>]*>([^<]+)</`).FindStringSubmatch(md)
	if m == nil {
		t.Fatalf("no certificate in the metadata:\n%s", md)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[1]), ""))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	doc := filepath.Join(dir, "response.xml")
	_ = os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(doc, response, 0o600)
	verify := func(file string) error {
		return exec.Command(xmlsec, "--verify", "--enabled-key-data", "rsa", "--pubkey-cert-pem", cert,
			"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", file).Run()
	}
	if err := verify(doc); err != nil {
		t.Errorf("xmlsec1 rejects the Assertion signature: %v", err)
	}
	// and it would notice a changed role
	tampered := filepath.Join(dir, "tampered.xml")
	_ = os.WriteFile(tampered, []byte(strings.Replace(string(response), ":role/", ":role/Tampered", 1)), 0o600)
	if err := verify(tampered); err == nil {
		t.Error("xmlsec1 accepts a tampered Assertion")
	}
}
