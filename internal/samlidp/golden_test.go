package samlidp

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update to accept):\n%s", path, t.Name(), got)
	}
}

// indent re-indents a signed document for reading (the golden file shows
// the shape; signatures are checked elsewhere on the unindented bytes).
func indent(t *testing.T, raw []byte) []byte {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	doc.Indent(2)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenAWS: the AWS response's shape with a fixed clock, IDs (seeded
// random source) and keys; byte-for-byte, so signatures are stable too.
// The MFA case shows the REFEDS MFA AuthnContextClassRef, the AuthnInstant
// of the password (20 minutes before) and the WardenAuth tag.
func TestGoldenAWS(t *testing.T) {
	for _, c := range []struct {
		name   string
		sign   bool
		user   string
		role   string
		relay  string
		region string
		tag    string
		authn  identity.Authn // zero: a password alone, now
	}{
		{"aws-assertion-signed.golden.xml", false, "alice", "arn:aws:iam::111122223333:role/AdministratorAccess", "", "", "", identity.Authn{}},
		{"aws-response-signed.golden.xml", true, "bob", "arn:aws:iam::111122223333:role/ReadOnly", "https://console.aws.amazon.com/s3/", "eu-west-1", "", identity.Authn{}},
		{"aws-mfa.golden.xml", false, "mia", roleMFA, "", "", tagKey, totpAt(fixedTime.Add(-20 * time.Minute))},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := func(cfg *Config, d *Deps) { cfg.AWS.SignResponse, cfg.AWS.Region, d.AuthnTag = c.sign, c.region, c.tag }
			f := newFixture(t, opt)
			post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers[c.user], c.authn, grantOf(t, f.rules, c.user, c.role), c.relay)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(post.SAMLResponse)
			golden(t, c.name, indent(t, raw))
			// Same inputs, same bytes: nothing in the output depends on
			// anything but the clock, the random source and the keys.
			g := newFixture(t, opt)
			again, err := g.idp.AWSConsoleAuthn(context.Background(), testUsers[c.user], c.authn, grantOf(t, g.rules, c.user, c.role), c.relay)
			if err != nil {
				t.Fatal(err)
			}
			if again.SAMLResponse != post.SAMLResponse {
				t.Error("two runs with the same clock, random source and keys differ")
			}
		})
	}
}

// TestMetadata: /saml/metadata's content (item 22 and the part 2)
// and its golden file, with the current and next certificates.
func TestMetadata(t *testing.T) {
	next := loadSigner(t, "test2")
	f := newFixture(t)
	f.ring.mu.Lock()
	f.ring.pub = append(f.ring.pub, next)
	f.ring.mu.Unlock()
	srv := f.server(t, testPublicURL)
	b := browser(t)
	ts := newTestServer(t, srv.Handler())
	resp, err := b.Get(ts + "/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if ct := resp.Header.Get("Content-Type"); ct != "application/samlmetadata+xml" {
		t.Errorf("Content-Type %s", ct)
	}
	// Item 22: 1,000-10,000,000 characters, UTF-8, no BOM, <= 10 keys.
	if n := utf8.RuneCountInString(body); n < 1000 || n > 10_000_000 || !utf8.ValidString(body) || strings.HasPrefix(body, "\ufeff") {
		t.Errorf("metadata of %d characters, valid UTF-8 %v", n, utf8.ValidString(body))
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatal(err)
	}
	ed := doc.Root()
	if ed.Tag != "EntityDescriptor" || ed.SelectAttrValue("entityID", "") != f.idp.EntityID() {
		t.Fatalf("root %s entityID %s", ed.Tag, ed.SelectAttrValue("entityID", ""))
	}
	if ed.SelectAttr("validUntil") != nil || ed.SelectAttr("cacheDuration") != nil {
		t.Error("validUntil/cacheDuration would expire the IAM provider")
	}
	idp := ed.SelectElement("IDPSSODescriptor")
	if idp.SelectAttrValue("WantAuthnRequestsSigned", "") != "false" {
		t.Error("WantAuthnRequestsSigned")
	}
	var certs []string
	for _, kd := range idp.SelectElements("KeyDescriptor") {
		if kd.SelectAttrValue("use", "") != "signing" {
			t.Errorf("KeyDescriptor use=%q", kd.SelectAttrValue("use", ""))
		}
		certs = append(certs, kd.FindElement(".//X509Certificate").Text())
	}
	want := []string{base64.StdEncoding.EncodeToString(f.ring.cur.Cert.Raw), base64.StdEncoding.EncodeToString(next.Cert.Raw)}
	if strings.Join(certs, " ") != strings.Join(want, " ") || len(certs) > 10 {
		t.Errorf("certificates: %d, want current then next", len(certs))
	}
	bindings := map[string]string{}
	for _, s := range idp.SelectElements("SingleSignOnService") {
		bindings[s.SelectAttrValue("Binding", "")] = s.SelectAttrValue("Location", "")
	}
	for _, bnd := range []string{"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect", "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"} {
		if bindings[bnd] != testPublicURL+"/saml/sso" {
			t.Errorf("SSO %s at %q", bnd, bindings[bnd])
		}
	}
	golden(t, "metadata.golden.xml", []byte(body))

	// More than 10 published keys: the first 10 (IAM's limit).
	f.ring.mu.Lock()
	for len(f.ring.pub) < 12 {
		f.ring.pub = append(f.ring.pub, keys.Signer{Key: next.Key, Cert: loadSigner(t, "sp").Cert})
	}
	f.ring.mu.Unlock()
	md, err := f.idp.metadata()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(md), "<X509Certificate "); n != 10 {
		t.Errorf("%d keys published, want 10", n)
	}
}
