package samlidp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/wardenidp/warden/internal/identity"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c Config
	c.ServiceProviders = []SPConfig{{Name: "a", MetadataURL: "https://a.example.org/md"}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.RequestMaxAge != 5*time.Minute || c.AssertionLifetime != 5*time.Minute || c.AWS.Partition != "aws" ||
		c.AWS.DefaultSessionSeconds != 3600 || c.AWS.SessionNameAttribute != "username" || !c.AWS.On() {
		t.Errorf("defaults: %+v", c)
	}
	sp := c.ServiceProviders[0]
	if sp.NameIDFormat != "persistent" || sp.RefreshInterval != time.Hour || sp.Attributes != (SPAttributes{"uid", "mail", "displayName", "groups"}) {
		t.Errorf("sp defaults: %+v", sp)
	}
	bad := Config{
		EntityID: "not a url", RequestMaxAge: time.Second, AssertionLifetime: time.Hour,
		AWS: AWSConfig{Partition: "aws", Region: "us-gov-west-1", SessionNameAttribute: "Bad Name", DefaultSessionSeconds: 60},
		ServiceProviders: []SPConfig{
			{Name: "x", MetadataFile: "a", MetadataURL: "https://b"},
			{Name: "X", MetadataURL: "ftp://b", NameIDFormat: "transient", GroupsFilter: "(", RefreshInterval: time.Second,
				Attributes: SPAttributes{"uid", "a b", "displayName", "groups"}},
			{MetadataFile: "f"},
		},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"entity_id:", "request_max_age:", "assertion_lifetime:", "aws.region:", "aws.session_name_attribute:",
		"aws.default_session_seconds:", "service_providers[0]: exactly one", "service_providers[1].name:", "service_providers[1].metadata_url:",
		"service_providers[1].name_id_format:", "service_providers[1].groups_filter:", "service_providers[1].refresh_interval:",
		"service_providers[1].attributes.email:", "service_providers[2].name: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
}

func TestGenericNameIDFormats(t *testing.T) {
	for _, c := range []struct{ format, user, want, wantFormat string }{
		{NameIDEmail, "bob", "bob@example.org", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
		{NameIDUnspecified, "bob", "bob", "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"},
		{NameIDPersistent, "bob", "", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"},
		{NameIDEmail, "frank", "", ""},
	} {
		f := newFixture(t, func(cfg *Config, _ *Deps) {
			cfg.ServiceProviders = []SPConfig{{Name: "app", MetadataFile: "testdata/pysaml2-sp-metadata.xml", NameIDFormat: c.format,
				Attributes: SPAttributes{Username: "urn:oid:0.9.2342.19200300.100.1.1", Email: "-"}}}
		})
		e, _ := f.idp.sps.lookup(genericSPID)
		md := e.metadata()
		req := &saml.IdpAuthnRequest{ServiceProviderMetadata: md, ACSEndpoint: &md.SPSSODescriptors[0].AssertionConsumerServices[0]}
		a, err := f.idp.genericAssertion(e, testUsers[c.user], req, identity.PasswordOnly(fixedTime), fixedTime)
		if c.wantFormat == "" {
			if err == nil {
				t.Errorf("%s for %s: no error", c.format, c.user)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n := a.Subject.NameID
		if n.Format != c.wantFormat || (c.want != "" && n.Value != c.want) || (c.want == "" && n.Value != f.idp.persistentID(genericSPID, testUsers[c.user])) {
			t.Errorf("%s: NameID %+v", c.format, n)
		}
		attrs := a.AttributeStatements[0].Attributes
		for _, at := range attrs {
			if at.Name == "mail" || at.Name == "-" {
				t.Errorf("attribute %s sent though disabled", at.Name)
			}
		}
		if attrs[0].Name != "urn:oid:0.9.2342.19200300.100.1.1" || attrs[0].NameFormat != attrFormatURI {
			t.Errorf("username attribute %+v", attrs[0])
		}
	}
}

// TestMetadataRefresh: an SP's metadata URL is re-read; a failed refresh
// keeps the last good copy; a broken one at start is an error.
func TestMetadataRefresh(t *testing.T) {
	good, err := os.ReadFile("testdata/pysaml2-sp-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Int32 // 0 good, 1 new ACS, 2 failing
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case 0:
			w.Write(good)
		case 1:
			w.Write([]byte(strings.Replace(string(good), "https://app.example.org/saml/acs", "https://app.example.org/saml/acs2", 1)))
		default:
			http.Error(w, "down", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	f := newFixture(t, func(c *Config, _ *Deps) {
		c.ServiceProviders = []SPConfig{{Name: "app", MetadataURL: srv.URL + "/md", RefreshInterval: time.Minute}}
	})
	e, _ := f.idp.sps.lookup(genericSPID)
	acs := func() string { return e.metadata().SPSSODescriptors[0].AssertionConsumerServices[0].Location }
	mode.Store(1)
	f.idp.sps.refresh(context.Background(), e)
	if acs() != "https://app.example.org/saml/acs2" {
		t.Errorf("not refreshed: %s", acs())
	}
	mode.Store(2)
	f.idp.sps.refresh(context.Background(), e)
	if acs() != "https://app.example.org/saml/acs2" {
		t.Errorf("last good copy lost: %s", acs())
	}
	_, err = New(Config{ServiceProviders: []SPConfig{{Name: "app", MetadataURL: srv.URL + "/md"}}},
		Deps{Keys: f.ring, Rules: f.rules, Replay: f.idp.replay, Pending: f.idp.pending, PublicURL: testPublicURL, NameIDKey: make([]byte, 32)})
	if err == nil {
		t.Error("unreachable metadata at start accepted")
	}
	for _, bad := range []string{"<x", `<!DOCTYPE x []><EntityDescriptor/>`, `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>`} {
		if _, err := parseSPMetadata([]byte(bad)); err == nil {
			t.Errorf("metadata %q accepted", bad)
		}
	}
}

// TestKeyRotation: a new current key signs at once, and the metadata
// follows the published list.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	m1, _ := f.idp.metadata()
	next := loadSigner(t, "test2")
	f.ring.mu.Lock()
	f.ring.pub = append(f.ring.pub, next)
	f.ring.mu.Unlock()
	m2, _ := f.idp.metadata()
	if string(m1) == string(m2) {
		t.Fatal("metadata did not follow the ring")
	}
	f.ring.mu.Lock()
	f.ring.cur = next
	f.ring.mu.Unlock()
	post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], f.password(), grantOf(t, f.rules, "bob", "arn:aws:iam::111122223333:role/ReadOnly"), "")
	if err != nil {
		t.Fatal(err)
	}
	p := parseResponse(t, post.SAMLResponse)
	checkSignature(t, p.asr, next.Cert.Raw)
	verifyDsig(t, p.raw, next.Cert.Raw, false)
}
