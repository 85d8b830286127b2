package samlidp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/testenv"
)

const (
	genericSPID  = "https://app.example.org/saml/metadata"
	genericSPACS = "https://app.example.org/saml/acs"
)

// withGenericSP registers the SP of testdata/pysaml2-sp-metadata.xml.
func withGenericSP(c *Config, _ *Deps) {
	c.ServiceProviders = []SPConfig{{Name: "app", MetadataFile: "testdata/pysaml2-sp-metadata.xml", GroupsFilter: "^dev"}}
}

// genericResponse makes a response for the generic SP the way the SSO
// handler does (genericAssertion + buildResponse), unsolicited.
func genericResponse(t testing.TB, f *fixture, user string) string {
	t.Helper()
	e, ok := f.idp.sps.lookup(genericSPID)
	if !ok {
		t.Fatal("no generic SP")
	}
	md := e.metadata()
	req := &saml.IdpAuthnRequest{IDP: f.idp.saml, ServiceProviderMetadata: md, SPSSODescriptor: &md.SPSSODescriptors[0],
		ACSEndpoint: &md.SPSSODescriptors[0].AssertionConsumerServices[0]}
	now := f.clock.Now()
	a, err := f.idp.genericAssertion(e, testUsers[user], req, identity.PasswordOnly(now), now)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.idp.buildResponse(a, genericSPACS, "", e.signResponse(), now)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Base64
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func certPEM(t testing.TB, f *fixture) string {
	return writeFile(t, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ring.Current().Cert.Raw}))
}

// xmlsecVerify runs xmlsec1 on the signature at xpath; nil when it verifies.
func xmlsecVerify(t testing.TB, xmlsec, cert, doc, xpath string) error {
	t.Helper()
	cmd := exec.Command(xmlsec, "--verify", "--enabled-key-data", "rsa", "--pubkey-cert-pem", cert,
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
		"--node-xpath", xpath, writeFile(t, "doc.xml", []byte(doc)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: out}
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("xmlsec1 said: %s", out)
	}
	return nil
}

const (
	xpResponseSig  = "/*[local-name()='Response']/*[local-name()='Signature']"
	xpAssertionSig = "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']"
)

// TestXMLSec verifies our signatures with xmlsec1 (the key from the
// certificate given on the command line only; never --insecure) and checks
// that a tampered copy, or another key, fails.
func TestXMLSec(t *testing.T) {
	xmlsec := testenv.Binary(t, "xmlsec1")
	for _, signResponse := range []bool{false, true} {
		f := newFixture(t, withGenericSP, withAuthnTag, func(c *Config, _ *Deps) { c.AWS.SignResponse = signResponse })
		cert := certPEM(t, f)
		// A sign-in with a second factor, for a role that demands one: the
		// signed assertion states it (AuthnContextClassRef, WardenAuth tag).
		post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["mia"], totpAt(fixedTime.Add(-time.Hour)),
			grantOf(t, f.rules, "mia", roleMFA), "")
		if err != nil {
			t.Fatal(err)
		}
		for name, b64 := range map[string]string{"aws": post.SAMLResponse, "generic": genericResponse(t, f, "bob")} {
			raw, _ := base64.StdEncoding.DecodeString(b64)
			doc := string(raw)
			signedResp := signResponse && name == "aws"
			if err := xmlsecVerify(t, xmlsec, cert, doc, xpAssertionSig); err != nil {
				t.Fatalf("%s: assertion signature: %v %s", name, err, err.(*exec.ExitError).Stderr)
			}
			if signedResp {
				if err := xmlsecVerify(t, xmlsec, cert, doc, xpResponseSig); err != nil {
					t.Fatalf("%s: response signature: %v %s", name, err, err.(*exec.ExitError).Stderr)
				}
			}
			// Tampered: a value inside the assertion changes (for AWS also
			// the method claimed: a password sign-in passed off as MFA).
			swaps := [][2]string{{">Bob Brown<", ">mallory<"}}
			if name == "aws" {
				if !strings.Contains(doc, ">"+identity.ACRMFA+"<") || !strings.Contains(doc, `Name="`+AttrPrincipalTag+tagKey+`"`) {
					t.Fatalf("aws: no MFA context class or %s tag in\n%s", tagKey, doc)
				}
				swaps = [][2]string{{">mia<", ">mallory<"}, {">totp<", ">webauthn<"},
					{">" + identity.ACRMFA + "<", ">" + identity.ACRPassword + "<"}}
			}
			var tampered string
			for _, sw := range swaps {
				tampered = strings.Replace(doc, sw[0], sw[1], 1)
				if tampered == doc {
					t.Fatalf("%s: nothing to tamper with (%s)", name, sw[0])
				}
				if err := xmlsecVerify(t, xmlsec, cert, tampered, xpAssertionSig); err == nil {
					t.Errorf("%s: xmlsec1 verified an assertion with %s changed to %s", name, sw[0], sw[1])
				}
			}
			if signedResp {
				if err := xmlsecVerify(t, xmlsec, cert, tampered, xpResponseSig); err == nil {
					t.Errorf("%s: xmlsec1 verified a tampered response", name)
				}
				// The Response's own attributes are covered too.
				d2 := strings.Replace(doc, `Destination="https://signin.aws.amazon.com/saml"`, `Destination="https://evil.example.com/saml"`, 1)
				if err := xmlsecVerify(t, xmlsec, cert, d2, xpResponseSig); err == nil {
					t.Errorf("%s: xmlsec1 verified a response with a changed Destination", name)
				}
			}
			// Another key does not verify it.
			other := writeFile(t, "other.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: loadSigner(t, "test2").Cert.Raw}))
			if err := xmlsecVerify(t, xmlsec, other, doc, xpAssertionSig); err == nil {
				t.Errorf("%s: verified with another key", name)
			}
		}
	}
}

// pysaml2 runs testdata/pysaml2_sp_check.py.
func pysaml2(t testing.TB, idpMD []byte, spID, acs, b64 string) (ok bool, out map[string]any) {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "testdata/pysaml2_sp_check.py", writeFile(t, "idp.xml", idpMD), spID, acs,
		writeFile(t, "resp.b64", []byte(b64)))
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("pysaml2 check: %v %s", err, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("pysaml2 check output %q: %v", b, err)
	}
	return out["ok"] == true, out
}

func requirePysaml2(t *testing.T) {
	testenv.Binary(t, "xmlsec1")
	if err := exec.Command("/usr/bin/python3", "-c", "import saml2.client").Run(); err != nil {
		msg := "/usr/bin/python3 cannot import saml2 (apt-get install python3-pysaml2)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// TestPysaml2 has pysaml2 act as the SP, trusting our metadata: it accepts
// our responses (AWS and generic) and refuses tampered, expired and
// wrong-audience ones.
func TestPysaml2(t *testing.T) {
	requirePysaml2(t)
	f := newFixture(t, withGenericSP)
	f.clock.Set(time.Now())
	md, err := f.idp.metadata()
	if err != nil {
		t.Fatal(err)
	}
	grant := grantOf(t, f.rules, "bob", "arn:aws:iam::111122223333:role/ReadOnly")
	post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], f.password(), grant, "")
	if err != nil {
		t.Fatal(err)
	}
	const awsACS = "https://signin.aws.amazon.com/saml"
	ok, out := pysaml2(t, md, "urn:amazon:webservices", awsACS, post.SAMLResponse)
	if !ok {
		t.Fatalf("pysaml2 refused our AWS response: %v", out["error"])
	}
	attrs, _ := out["attributes"].(map[string]any)
	if roles, _ := attrs[AttrRole].([]any); len(roles) != 1 || roles[0] != grant.RoleARN+","+grant.ProviderARN {
		t.Errorf("pysaml2 read Role %v", attrs[AttrRole])
	}
	if out["name_id"] != f.idp.persistentID("urn:amazon:webservices", testUsers["bob"]) {
		t.Errorf("pysaml2 read NameID %v", out["name_id"])
	}

	gen := genericResponse(t, f, "bob")
	ok, out = pysaml2(t, md, genericSPID, genericSPACS, gen)
	if !ok {
		t.Fatalf("pysaml2 refused our generic response: %v", out["error"])
	}
	attrs, _ = out["attributes"].(map[string]any)
	if u, _ := attrs["uid"].([]any); len(u) != 1 || u[0] != "bob" {
		t.Errorf("pysaml2 read uid %v (all: %v)", attrs["uid"], attrs)
	}
	if g, _ := attrs["groups"].([]any); len(g) != 1 || g[0] != "developers" {
		t.Errorf("groups filtered by ^dev: %v", attrs["groups"])
	}

	raw, _ := base64.StdEncoding.DecodeString(post.SAMLResponse)
	tampered := base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(raw), ":role/ReadOnly,", ":role/Admin,", 1)))
	if ok, out := pysaml2(t, md, "urn:amazon:webservices", awsACS, tampered); ok {
		t.Error("pysaml2 accepted a tampered response")
	} else {
		t.Logf("tampered: %v", out["error"])
	}
	if ok, out := pysaml2(t, md, "https://other.example.org/sp", awsACS, post.SAMLResponse); ok {
		t.Error("pysaml2 accepted a response for another audience")
	} else {
		t.Logf("wrong audience: %v", out["error"])
	}
	f.clock.Set(time.Now().Add(-2 * time.Hour))
	old, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], f.password(), grant, "")
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := pysaml2(t, md, "urn:amazon:webservices", awsACS, old.SAMLResponse); ok {
		t.Error("pysaml2 accepted an expired response")
	} else {
		t.Logf("expired: %v", out["error"])
	}
	// Signed by a key the metadata does not publish.
	f.ring.mu.Lock()
	f.ring.cur = loadSigner(t, "test2")
	f.ring.mu.Unlock()
	f.clock.Set(time.Now())
	forged, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], f.password(), grant, "")
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := pysaml2(t, md, "urn:amazon:webservices", awsACS, forged.SAMLResponse); ok {
		t.Error("pysaml2 accepted a response signed with an unpublished key")
	} else {
		t.Logf("unpublished key: %v", out["error"])
	}
}
